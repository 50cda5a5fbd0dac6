/*
 * A paused fsync for tests: loaded into the real daemon with LD_PRELOAD, it makes fsync() and
 * fdatasync() on journal files (journal.*.log) wait at a gate the test opens one sync at a time.
 *
 *   $FSYNC_GATE_DIR/allow    the test writes N: syncs number 1..N may run (absent: none may)
 *   $FSYNC_GATE_DIR/started  one line per sync as it reaches the gate: "<n> <file> <size>"
 *   $FSYNC_GATE_DIR/synced   one line per sync once done: "<n> <file> <size>"
 *   $FSYNC_GATE_DIR/fail     the test writes N: sync number N fails with EIO once let through
 *                            (not run, and not noted in "synced": nothing it covered is durable)
 *
 * <size> is the file's size when the sync was called: what that sync made durable. After a kill,
 * truncating each journal file to its largest synced size emulates a power loss at that moment.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long count = 0;

static int journal_path(int fd, char *path, size_t size) {
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t len = readlink(link, path, size - 1);
  if (len < 0) return 0;
  path[len] = 0;
  const char *base = strrchr(path, '/');
  return base != NULL && strncmp(base + 1, "journal.", 8) == 0;
}

static long number_in(const char *dir, const char *name) {
  char file[4096];
  snprintf(file, sizeof file, "%s/%s", dir, name);
  FILE *f = fopen(file, "r");
  if (f == NULL) return 0;
  long n = 0;
  if (fscanf(f, "%ld", &n) != 1) n = 0;
  fclose(f);
  return n;
}

static void note(const char *dir, const char *name, long n, const char *path, long long size) {
  char file[4096];
  snprintf(file, sizeof file, "%s/%s", dir, name);
  pthread_mutex_lock(&lock);
  FILE *f = fopen(file, "a");
  if (f != NULL) {
    fprintf(f, "%ld %s %lld\n", n, path, size);
    fclose(f);
  }
  pthread_mutex_unlock(&lock);
}

static int gated(int fd, int (*real)(int)) {
  const char *dir = getenv("FSYNC_GATE_DIR");
  char path[4096];
  if (dir == NULL || !journal_path(fd, path, sizeof path)) return real(fd);
  struct stat st;
  long long size = fstat(fd, &st) == 0 ? (long long)st.st_size : -1;
  pthread_mutex_lock(&lock);
  long n = ++count;
  pthread_mutex_unlock(&lock);
  note(dir, "started", n, path, size);
  struct timespec pause = {0, 1000000};
  while (number_in(dir, "allow") < n) nanosleep(&pause, NULL);
  if (number_in(dir, "fail") == n) {
    errno = EIO;
    return -1;
  }
  int result = real(fd);
  note(dir, "synced", n, path, size);
  return result;
}

int fdatasync(int fd) {
  static int (*real)(int);
  if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  return gated(fd, real);
}

int fsync(int fd) {
  static int (*real)(int);
  if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  return gated(fd, real);
}
