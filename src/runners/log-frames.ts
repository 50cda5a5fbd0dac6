import { OutputTail } from './runner'

/**
 * The engine's log stream for a container without a TTY: frames of an 8-byte header (stream 1 for
 * stdout or 2 for stderr, three zero bytes, the payload's length as a big-endian uint32) and the
 * payload. Chunks split frames anywhere; the payloads go to an OutputTail, so only the last 4 KiB
 * are kept however long the log. Bytes after the last whole frame (podman adds a newline) are not
 * output.
 */
export class LogFrames {
  readonly output = new OutputTail()
  private header = Buffer.alloc(0)
  /** Payload bytes still to come of the current frame. */
  private remaining = 0

  push(chunk: Buffer): void {
    let at = 0
    while (at < chunk.length) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - at)
        this.output.push(chunk.subarray(at, at + take))
        this.remaining -= take
        at += take
        continue
      }
      const need = 8 - this.header.length
      this.header = Buffer.concat([this.header, chunk.subarray(at, at + need)])
      at += need
      if (this.header.length < 8) return
      this.remaining = this.header.readUInt32BE(4)
      this.header = Buffer.alloc(0)
    }
  }

  toString(): string {
    return this.output.toString()
  }
}
