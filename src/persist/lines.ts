import { closeSync, openSync, readSync } from 'node:fs'

/** A line of a file as bytes: `buf[start..end)`, without its line end. Valid until the next line is read. */
export interface LineSpan {
  buf: Buffer
  start: number
  end: number
}

/**
 * Yields the lines of a file as spans of the block they were read into (one object, updated for
 * each line), reading in large blocks: files of any size, including ones larger than the longest
 * string V8 allows, are read with bounded memory, and a caller that can read a line's bytes makes
 * no string of it.
 */
export function* readLineSpans(file: string, blockBytes = 16 * 1024 * 1024): Generator<LineSpan> {
  const fd = openSync(file, 'r')
  const span: LineSpan = { buf: Buffer.allocUnsafe(blockBytes), start: 0, end: 0 }
  try {
    let filled = 0
    for (;;) {
      if (filled === span.buf.length) {
        // One line longer than the block: grow it.
        const bigger = Buffer.allocUnsafe(span.buf.length * 2)
        span.buf.copy(bigger, 0, 0, filled)
        span.buf = bigger
      }
      const buffer = span.buf
      const read = readSync(fd, buffer, filled, buffer.length - filled, null)
      const end = filled + read
      let start = 0
      for (let nl = buffer.indexOf(10, start); nl !== -1 && nl < end; nl = buffer.indexOf(10, start)) {
        span.start = start
        span.end = nl > start && buffer[nl - 1] === 13 ? nl - 1 : nl
        yield span
        start = nl + 1
      }
      if (read === 0) {
        if (start < end) {
          span.start = start
          span.end = end
          yield span
        }
        return
      }
      buffer.copy(buffer, 0, start, end)
      filled = end - start
    }
  } finally {
    closeSync(fd)
  }
}

/** Yields the lines of a file as strings (without line ends); see readLineSpans. */
export function* readLines(file: string, blockBytes = 16 * 1024 * 1024): Generator<string> {
  for (const { buf, start, end } of readLineSpans(file, blockBytes)) yield buf.toString('utf8', start, end)
}
