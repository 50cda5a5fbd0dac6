import { closeSync, openSync, readSync } from 'node:fs'

/**
 * Yields the lines of a file (without line ends), reading it in large blocks: files of any size,
 * including ones larger than the longest string V8 allows, are read with bounded memory.
 */
export function* readLines(file: string, blockBytes = 16 * 1024 * 1024): Generator<string> {
  const fd = openSync(file, 'r')
  try {
    let buffer = Buffer.allocUnsafe(blockBytes)
    let filled = 0
    for (;;) {
      if (filled === buffer.length) {
        // One line longer than the block: grow it.
        const bigger = Buffer.allocUnsafe(buffer.length * 2)
        buffer.copy(bigger, 0, 0, filled)
        buffer = bigger
      }
      const read = readSync(fd, buffer, filled, buffer.length - filled, null)
      const end = filled + read
      let start = 0
      for (let nl = buffer.indexOf(10, start); nl !== -1 && nl < end; nl = buffer.indexOf(10, start)) {
        yield buffer.toString('utf8', start, nl > start && buffer[nl - 1] === 13 ? nl - 1 : nl)
        start = nl + 1
      }
      if (read === 0) {
        if (start < end) yield buffer.toString('utf8', start, end)
        return
      }
      buffer.copy(buffer, 0, start, end)
      filled = end - start
    }
  } finally {
    closeSync(fd)
  }
}
