import { accessSync, constants, mkdirSync, statSync } from 'node:fs'
import path from 'node:path'

/** A directory the daemon needs cannot be made or written: the message names the setting and the fix. */
export class DirectoryError extends Error {}

/**
 * Makes `dir` (and missing parents) and checks the daemon can write in it; `setting` is the config
 * key that names it, for the message. Not `mkdirSync(dir, {recursive: true})`: under /proc or /sys
 * that never returns (seen with Node 20: `--data-dir /proc/x` spun at 100% CPU and ignored SIGTERM).
 */
export function prepareDirectory(dir: string, setting: string): void {
  const fix = `choose another with --${setting.replace(/_/g, '-')} or DISPENSERD_${setting.toUpperCase()}, or give the daemon's user write access to it`
  const missing: string[] = []
  let existing = path.resolve(dir)
  for (;;) {
    try {
      if (!statSync(existing).isDirectory()) throw new DirectoryError(`${setting}: ${existing} is not a directory; ${fix}`)
      break
    } catch (err) {
      if (err instanceof DirectoryError) throw err
      const code = (err as NodeJS.ErrnoException).code
      if (code !== 'ENOENT') throw new DirectoryError(`${setting}: cannot use ${existing} (${code ?? (err as Error).message}); ${fix}`)
      const parent = path.dirname(existing)
      if (parent === existing) throw new DirectoryError(`${setting}: no part of ${dir} exists; ${fix}`)
      missing.unshift(existing)
      existing = parent
    }
  }
  for (const each of missing) {
    try {
      mkdirSync(each)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EEXIST') continue
      throw new DirectoryError(`${setting}: cannot create ${each} (${code === 'EACCES' ? 'permission denied' : (code ?? (err as Error).message)}); ${fix}`)
    }
  }
  try {
    accessSync(dir, constants.W_OK | constants.X_OK)
  } catch {
    throw new DirectoryError(`${setting}: ${path.resolve(dir)} is not writable by this user; ${fix}`)
  }
}
