import * as fsPromises from 'node:fs/promises'
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
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`)
  const handle = await fs.open(temporary, 'w', 0o644)
  try {
    for (const piece of pieces) await handle.write(piece)
    await handle.sync()
  } catch (err) {
    await handle.close().catch(() => undefined)
    await fs.unlink(temporary).catch(() => undefined)
    throw err
  }
  await handle.close()
  try {
    await fs.rename(temporary, file)
  } catch (err) {
    await fs.unlink(temporary).catch(() => undefined)
    throw err
  }
  const dir = await fs.open(path.dirname(file), 'r')
  try {
    await dir.sync()
  } finally {
    await dir.close()
  }
}
