import { readFileSync, unlinkSync, writeFileSync } from 'node:fs'

/**
 * The pid file tells `dispenserd stop` (and operators) which process serves a data directory. It is
 * information only: the lock is lock.ts's, so a pid file is written only by the holder of the lock
 * and removed only by it, and a stale one is simply overwritten.
 */

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export function readPid(file: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8'), 10)
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

/** Writes our pid (call while holding the data directory's lock). */
export function writePidFile(file: string): void {
  writeFileSync(file, `${process.pid}\n`)
}

/** Removes the pid file if it is still ours. */
export function releasePidFile(file: string): void {
  if (readPid(file) === process.pid) unlinkSync(file)
}
