import type { Exchange } from './exchange'

/**
 * Changes whose replies wait for the journal, gathered over one turn of the event loop's reading.
 *
 * uWS closes a connection on which a request arrives while a reply is pending, so the connection of
 * such a change must not be read again until it is answered. Each is run once the rest of its
 * read is parsed (a request pipelined behind it in the same read has closed the connection by
 * then, and the change is not made), all of them in one callback, followed by the journal's write.
 * With `journal_fsync` "interval" or "never" that write is all a reply waits for, so the replies go
 * out in the same callback, before the event loop polls the sockets again: their connections need
 * not stop being read. Only the changes still unanswered after it (waiting for an fsync, or for a
 * job to finish) stop their connection's reading, still before that poll. Stopping and resuming a
 * connection's reading costs three epoll_ctl calls, as much as the request's own read and write.
 * (libuv reads sockets twice in one poll only when 1,024 were ready at once: a request arriving on
 * a held change's connection in between closes it before the change is run, as one in the same
 * read does.)
 */
export class HeldChanges {
  private turn: { runs: (() => void)[]; exchanges: Exchange[] } | undefined

  /** `writeNow` writes the changes made so far (the journal's write, done at once). */
  constructor(private readonly writeNow: () => void) {}

  /** Runs `run` after the current read, then holds `ex`'s reading if it is still unanswered. */
  add(ex: Exchange, run: () => void): void {
    if (this.turn === undefined) {
      const turn = { runs: [run], exchanges: [ex] }
      this.turn = turn
      // Both callbacks are queued now, while the sockets are read, so they run one after the other
      // in the loop's check phase, with the promises the first settles answered in between.
      setImmediate(() => {
        this.turn = undefined
        for (const each of turn.runs) each()
        this.writeNow()
      })
      setImmediate(() => {
        for (const each of turn.exchanges) each.holdReading()
      })
      return
    }
    this.turn.runs.push(run)
    this.turn.exchanges.push(ex)
  }
}
