import { readFileSync, unlinkSync, writeFileSync } from 'node:fs'

/** The pid file doubles as the lock on the data directory: one daemon per directory. */
export class DataDirInUseError extends Error {}

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

/** Creates the pid file, taking over a stale one; throws when a live process holds it. */
export function acquirePidFile(file: string): void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx' })
      return
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const holder = readPid(file)
    if (holder !== undefined && holder !== process.pid && isAlive(holder)) {
      throw new DataDirInUseError(`another dispenserd (pid ${holder}) is using this data directory (pid file ${file})`)
    }
    unlinkSync(file) // stale: its process is gone
  }
  throw new DataDirInUseError(`could not create pid file ${file}: another process keeps recreating it`)
}

/** Removes the pid file if it is still ours. */
export function releasePidFile(file: string): void {
  if (readPid(file) === process.pid) unlinkSync(file)
}
