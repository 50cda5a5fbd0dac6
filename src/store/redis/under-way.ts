/**
 * The calls to Redis under way: the store's close waits for them (and for what their answers
 * start) before it sends QUIT, so that a request read before a shutdown is carried out and
 * answered rather than sent after QUIT or cut off.
 */
export class CallsUnderWay {
  private count = 0
  private idle: (() => void) | undefined

  get size(): number {
    return this.count
  }

  async run<T>(call: () => Promise<T>): Promise<T> {
    this.count++
    try {
      return await call()
    } finally {
      if (--this.count === 0 && this.idle !== undefined) {
        const idle = this.idle
        this.idle = undefined
        idle()
      }
    }
  }

  /** Resolves once no call is under way, or at `deadline` (a Date.now() time) at the latest. */
  ended(deadline: number): Promise<void> {
    if (this.count === 0) return Promise.resolve()
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.max(deadline - Date.now(), 0))
      this.idle = () => {
        clearTimeout(timer)
        resolve()
      }
    })
  }
}
