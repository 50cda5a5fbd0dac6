/*
 * Counts the daemon's sends on its sockets, for tests: loaded into the real daemon with LD_PRELOAD,
 * it adds one for each call of send() (what uWS writes with) to a 64-bit count kept in the file
 * $SEND_COUNT_FILE, shared with the test through mmap.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

static int64_t *count;

__attribute__((constructor)) static void open_count(void) {
  const char *file = getenv("SEND_COUNT_FILE");
  if (file == NULL) return;
  int fd = open(file, O_RDWR | O_CREAT, 0644);
  if (fd < 0 || ftruncate(fd, sizeof *count) != 0) return;
  void *shared = mmap(NULL, sizeof *count, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (shared != MAP_FAILED) count = shared;
}

ssize_t send(int fd, const void *buf, size_t len, int flags) {
  static ssize_t (*real)(int, const void *, size_t, int);
  if (real == NULL) real = (ssize_t (*)(int, const void *, size_t, int))dlsym(RTLD_NEXT, "send");
  if (count != NULL) __atomic_add_fetch(count, 1, __ATOMIC_RELAXED);
  return real(fd, buf, len, flags);
}
