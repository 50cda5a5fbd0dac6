import { ApiError } from '../../errors'

/** Items (jobs) one coalesced script call carries at most: a bound on how long it holds Redis. */
export const MAX_COALESCED = 1000
/**
 * Bytes (of messages) one coalesced call carries at most, unless one item alone has more. Large
 * messages gain nothing from sharing a call, and gathered without bound they made commands past
 * what the client can write (a string of 2^29 characters): a turn's large schedules go apart.
 */
export const MAX_COALESCED_BYTES = 8 * 1024 * 1024

interface Waiting<In, Out> {
  item: In
  resolve: (out: Out) => void
  reject: (err: unknown) => void
}

/**
 * Gathers the calls made on one key (a lane) during one turn of the event loop and runs them as
 * ONE call (`run`, one script), flushed by setImmediate: after the turn's I/O, so every request
 * read in that turn joins. About half of what Redis spends on a one-job script is the call
 * itself (EVALSHA, whatever the script does), so N schedules, takes or acks of one lane in one
 * script cost Redis much less than N scripts (docs/benchmarks.md). Each caller still gets its
 * own answer (`run` returns one per item, in order); when the call itself fails every caller is
 * rejected with `failure(err)`, its own error (a timeout: code 14, "the outcome is unknown", for
 * each). Calls keep their order: a key's items run in the order they were added, and batches of
 * one key are sent in that order on the one connection.
 */
export class Coalescer<In, Out> {
  private readonly pending = new Map<string, { size: number; bytes: number; waiting: Waiting<In, Out>[] }>()
  private scheduled = false

  constructor(
    private readonly run: (key: string, items: In[]) => Promise<Out[]>,
    private readonly failure: (err: unknown) => unknown,
    private readonly max = MAX_COALESCED,
  ) {}

  /** `size`: how many jobs the item carries (a batch schedule: its jobs of this lane); `bytes`: their messages' bytes. */
  add(key: string, item: In, size = 1, bytes = 0): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      let batch = this.pending.get(key)
      const full = batch !== undefined && batch.waiting.length > 0 && (batch.size + size > this.max || batch.bytes + bytes > MAX_COALESCED_BYTES)
      if (batch === undefined || full) {
        // A full batch goes now, ahead of this item: the key's order holds.
        if (batch !== undefined) this.send(key, batch.waiting)
        this.pending.set(key, (batch = { size: 0, bytes: 0, waiting: [] }))
      }
      batch.size += size
      batch.bytes += bytes
      batch.waiting.push({ item, resolve, reject })
      if (!this.scheduled) {
        this.scheduled = true
        setImmediate(() => this.flush())
      }
    })
  }

  /** Whether calls wait to be sent (at the end of this turn, or by `flush`). */
  get gathering(): boolean {
    return this.pending.size > 0
  }

  /** Sends what was gathered now (the store's close: before QUIT). */
  flush(): void {
    this.scheduled = false
    const batches = [...this.pending]
    this.pending.clear()
    for (const [key, batch] of batches) this.send(key, batch.waiting)
  }

  private send(key: string, batch: Waiting<In, Out>[]): void {
    let call: Promise<Out[]>
    try {
      call = this.run(key, batch.map((w) => w.item))
    } catch (err) {
      call = Promise.reject(err)
    }
    call.then(
      (outs) => batch.forEach((w, i) => w.resolve(outs[i]!)),
      (err: unknown) => {
        for (const w of batch) w.reject(this.failure(err))
      },
    )
  }
}

/** Each caller of a coalesced call that failed gets an error of its own (the same code and message). */
export function ownError(err: unknown): unknown {
  return err instanceof ApiError ? new ApiError(err.codeName, err.message) : err
}
