/**
 * At most `max` tasks at once; the rest wait in line, in arrival order. A waiting task whose
 * signal fires leaves the line at once (its caller is gone) and never runs.
 */
export class Limiter {
  private running = 0
  private readonly line = new Set<() => void>()

  constructor(readonly max: number) {}

  /** Tasks running now and waiting in line. */
  get load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.line.size }
  }

  async run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.acquire(signal)
    try {
      return await task()
    } finally {
      this.release()
    }
  }

  private acquire(signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) return Promise.reject(new Error(String(signal.reason)))
    if (this.running < this.max) {
      this.running++
      return Promise.resolve()
    }
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.line.delete(go)
        reject(new Error(String(signal!.reason)))
      }
      const go = (): void => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      }
      this.line.add(go)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  /** A finished task hands its place straight to the next in line, so no newcomer can slip in between. */
  private release(): void {
    const next = this.line.values().next()
    if (next.done) {
      this.running--
      return
    }
    this.line.delete(next.value)
    next.value()
  }
}
