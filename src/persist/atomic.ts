import * as fsPromises from 'node:fs/promises'
import { readdirSync, statSync, unlinkSync } from 'node:fs'
import path from 'node:path'

/** The file-system calls an atomic write makes; tests pass one that fails (disk full, ...). */
export interface WriteFs {
  open(file: string, flags: string, mode?: number): Promise<Pick<fsPromises.FileHandle, 'write' | 'sync' | 'close'>>
  rename(from: string, to: string): Promise<void>
  unlink(file: string): Promise<void>
}

export const realFs: WriteFs = fsPromises

/**
 * Replaces `file` atomically with the concatenated `pieces`: they are written to a temporary file
 * in the same directory, flushed to disk, renamed over `file`, and the directory is flushed so the
 * rename itself survives a crash. Until the rename the previous file is whole; on any error the
 * temporary file is removed and the previous file is untouched.
 *
 * Pieces are written one at a time with an await in between, so a large file (a snapshot of
 * millions of jobs, larger than any single JS string may be) never blocks the event loop for long.
 */
export async function writeFileAtomically(file: string, pieces: Iterable<Uint8Array>, fs: WriteFs = realFs): Promise<void> {
  await writeFilesAtomically([{ file, pieces }], fs)
}

/**
 * Replaces several files of one directory together: every temporary file is written and synced
 * first, then they are renamed one right after another, so a crash leaves either all old files or
 * (but for the microseconds between renames) all new ones.
 */
export async function writeFilesAtomically(files: { file: string; pieces: Iterable<Uint8Array> }[], fs: WriteFs = realFs): Promise<void> {
  const temporaries: string[] = []
  try {
    for (const { file, pieces } of files) {
      const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`)
      temporaries.push(temporary)
      const handle = await fs.open(temporary, 'w', 0o644)
      try {
        for (const piece of pieces) await handle.write(piece)
        await handle.sync()
      } finally {
        await handle.close().catch(() => undefined)
      }
    }
    for (let i = 0; i < files.length; i++) await fs.rename(temporaries[i]!, files[i]!.file)
  } catch (err) {
    for (const temporary of temporaries) await fs.unlink(temporary).catch(() => undefined)
    throw err
  }
  const dir = await fs.open(path.dirname(files[0]!.file), 'r')
  try {
    await dir.sync()
  } finally {
    await dir.close()
  }
}

/** Temporary files of atomic writes to `file`s of `dir`: `.<name>.<pid>.tmp`. */
function isTemporaryOf(entry: string, names: readonly string[]): boolean {
  const match = /^\.(.+)\.\d+\.tmp$/.exec(entry)
  return match !== null && names.includes(match[1]!)
}

/**
 * Removes temporaries left by writes a kill cut short (a daemon killed mid-snapshot leaves one as
 * large as the snapshot). Call only while holding the directory's lock: then no write is under way.
 * Returns what was removed, with sizes, for the log.
 */
export function removeStaleTemporaries(dir: string, names: readonly string[]): { file: string; bytes: number }[] {
  const removed: { file: string; bytes: number }[] = []
  for (const entry of readdirSync(dir)) {
    if (!isTemporaryOf(entry, names)) continue
    const file = path.join(dir, entry)
    const bytes = statSync(file).size
    unlinkSync(file)
    removed.push({ file, bytes })
  }
  return removed
}
