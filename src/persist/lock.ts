import { statSync } from 'node:fs'
import { type Server, createServer } from 'node:net'
import { readPid } from './pidfile'

/** Another live process holds the data directory. */
export class DataDirInUseError extends Error {}

export interface DataDirLock {
  /** The name the lock is held under (for logs). */
  readonly name: string
  release(): void
}

/**
 * The lock on a data directory, one daemon per directory: a Linux abstract unix socket bound under
 * a name made of the directory's device and inode numbers and its birth time. Binding it is atomic, and the kernel
 * frees it the moment its process dies, however it dies: no stale lock to read, judge and delete
 * (the pid file's old way, which could delete a newer daemon's file, and which a live unrelated
 * process reusing the pid blocked). Device and inode name the directory whatever path reaches it
 * (symlinks, bind mounts). Abstract names live in the network namespace: two daemons in different
 * network namespaces (containers) sharing one directory do not see each other's lock.
 */
export async function lockDataDir(dir: string, pidFile: string): Promise<DataDirLock> {
  // The birth time tells this directory from a later one given the same inode after it was deleted
  // (inode numbers are reused at once: seen here on ext4), which would otherwise share its lock.
  const { dev, ino, birthtimeNs } = statSync(dir, { bigint: true })
  const name = `dispenserd/data-dir/${dev}/${ino}/${birthtimeNs}`
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EADDRINUSE') {
        reject(new Error(`cannot lock data directory ${dir}: ${err.message}`))
        return
      }
      const holder = readPid(pidFile)
      reject(new DataDirInUseError(`another dispenserd${holder === undefined ? '' : ` (pid ${holder})`} is using this data directory (${dir})`))
    })
    server.listen({ path: `\0${name}` }, () => resolve())
  })
  // Nothing ever connects; the socket must not keep the process alive on its own.
  server.unref()
  return { name, release: () => closeQuietly(server) }
}

function closeQuietly(server: Server): void {
  server.close(() => undefined)
}
