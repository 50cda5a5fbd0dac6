/** Node timers overflow past 2^31-1 ms (~24.8 days), so a later deadline is approached in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * One timer for every lease and delay deadline (beanstalkd's way): armed for the earliest, and on
 * firing `fire` handles what is due and returns the next deadline, if any.
 */
export class DeadlineTimer {
  private timer: NodeJS.Timeout | undefined
  private armedAt = Infinity
  private stopped = false

  constructor(
    private readonly fire: () => number | undefined,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Makes sure the timer goes off by `at` (ms since the epoch). */
  arm(at: number): void {
    if (this.stopped || at >= this.armedAt) return
    clearTimeout(this.timer)
    this.armedAt = at
    this.timer = setTimeout(() => {
      this.armedAt = Infinity
      this.timer = undefined
      const next = this.clock() >= at ? this.fire() : at
      if (next !== undefined) this.arm(next)
    }, Math.min(Math.max(at - this.clock(), 0), MAX_TIMER_MS))
    // Deadlines alone do not keep the process alive: the server (or a test) does.
    this.timer.unref()
  }

  stop(): void {
    this.stopped = true
    clearTimeout(this.timer)
  }
}
