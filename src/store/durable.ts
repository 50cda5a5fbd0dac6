/**
 * A value that may be used once the change that produced it is durable: what the service returns
 * for a change whose reply must wait for the journal (see JobService.durable). It is a promise to
 * everyone else (`await`, `then`, `catch`), but `when` hands its callbacks to it directly: they run the moment the journal
 * reports the write (or the fsync), in that same callback. A reply that waited on a Promise paid a
 * promise, its executor and reaction closures and a microtask, for every journaled change.
 */
export class Durable<T> implements Promise<T> {
  private done = false
  private error: unknown
  private next: ((value: T) => void) | undefined
  private failed: ((err: unknown) => void) | undefined
  /** Listeners past the first (rare: `then` on a value someone already listens to). */
  private more: [(value: T) => void, (err: unknown) => void][] | undefined

  constructor(private readonly value: T) {}

  get [Symbol.toStringTag](): string {
    return 'Durable'
  }

  /** The change is durable (no `error`), or cannot be made so: tells every listener, once. */
  settle(error?: unknown): void {
    if (this.done) return
    this.done = true
    this.error = error
    if (this.next !== undefined) this.tell(this.next, this.failed!)
    this.next = undefined
    this.failed = undefined
    const more = this.more
    this.more = undefined
    if (more !== undefined) for (const [next, failed] of more) this.tell(next, failed)
  }

  /**
   * Calls `next` with the value once durable, or `failed` with the error; `failed` also gets
   * whatever `next` throws, as with `when` on a promise. At once when already settled.
   */
  listen(next: (value: T) => void, failed: (err: unknown) => void): void {
    if (this.done) this.tell(next, failed)
    else if (this.next === undefined) {
      this.next = next
      this.failed = failed
    } else (this.more ??= []).push([next, failed])
  }

  then<R1 = T, R2 = never>(onFulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null, onRejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null): Promise<R1 | R2> {
    return new Promise<T>((resolve, reject) => this.listen(resolve, reject)).then(onFulfilled, onRejected)
  }

  catch<R = never>(onRejected?: ((reason: unknown) => R | PromiseLike<R>) | null): Promise<T | R> {
    return this.then(undefined, onRejected)
  }

  finally(onFinally?: (() => void) | null): Promise<T> {
    return new Promise<T>((resolve, reject) => this.listen(resolve, reject)).finally(onFinally)
  }

  /**
   * A throw from `failed` is raised again on its own (as an uncaught exception, where a promise's
   * would be an unhandled rejection), not here: settle runs inside the journal's loop over every
   * change of a write, and one listener's fault must not leave the others unanswered.
   */
  private tell(next: (value: T) => void, failed: (err: unknown) => void): void {
    let error = this.error
    if (error === undefined) {
      try {
        next(this.value)
        return
      } catch (err) {
        error = err
      }
    }
    try {
      failed(error)
    } catch (fault) {
      queueMicrotask(() => {
        throw fault
      })
    }
  }
}
