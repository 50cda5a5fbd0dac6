import type { HttpResponse } from 'uWebSockets.js'

/** Bytes written in one turn of the event loop before the rest waits for the next turn. */
const TURN_BYTES = 4 * 1024 * 1024
/**
 * While the client is behind, each write is at most this much. uWS keeps whatever the socket did
 * not take and sends it before the next write; a small write lets that happen without adding
 * more than this to what it keeps.
 */
const CATCH_UP_BYTES = 4 * 1024

/**
 * A reply body written as chunks (HTTP chunked encoding) while the client reads it: the next
 * piece is produced only when the socket has taken the previous one. So a listing of any size
 * holds, per client, the piece being written plus what uWS keeps of the last write (about two
 * pieces), whether the client reads fast, slowly or not at all. One that stops reading is
 * dropped by uWS's 10 s send timeout; one that leaves is noticed through `stop`.
 */
export class StreamedReply {
  private piece: Uint8Array | undefined
  private offset = 0
  /** Whether the last write left nothing behind in uWS. */
  private caughtUp = true
  private stopped = false

  constructor(
    private readonly res: HttpResponse,
    private readonly pieces: Iterator<Uint8Array>,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Writes the first pieces; call corked, after the status line and headers. */
  start(first: Uint8Array, second: Uint8Array): void {
    this.res.onWritable(() => this.safely(() => this.pump()))
    if (!this.res.write(first)) this.caughtUp = false
    this.piece = second
    if (this.caughtUp) this.pump()
  }

  /** The client went away: drop the rest (and the snapshot it was made from). */
  stop(): void {
    this.stopped = true
    this.piece = undefined
  }

  /** Runs a step from a uWS callback or a timer: a throw there would end the process. */
  private safely(step: () => boolean): boolean {
    try {
      return step()
    } catch (err) {
      this.stop()
      this.onError(err)
      return true
    }
  }

  /** Writes until the socket pushes back, the turn's budget is spent or the body ends. */
  private pump(): boolean {
    let budget = TURN_BYTES
    while (!this.stopped) {
      if (this.piece === undefined) {
        const next = this.pieces.next()
        if (next.done) {
          this.stopped = true
          this.res.end()
          return true
        }
        this.piece = next.value
        this.offset = 0
      }
      const left = this.piece.length - this.offset
      const size = this.caughtUp ? left : Math.min(left, CATCH_UP_BYTES)
      const written = this.res.write(this.piece.subarray(this.offset, this.offset + size))
      this.offset += size
      if (this.offset === this.piece.length) this.piece = undefined
      this.caughtUp = written
      if (!written) return false
      budget -= size
      if (budget <= 0) {
        setImmediate(() => this.nextTurn())
        return true
      }
    }
    return true
  }

  private nextTurn(): void {
    if (this.stopped) return
    this.safely(() => {
      this.res.cork(() => this.pump())
      return true
    })
  }
}
