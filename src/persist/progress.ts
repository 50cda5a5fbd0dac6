import type { Logger } from '../log'

/**
 * Progress of a long load, for operators and for `-d` (which waits while lines keep coming): a
 * line at most once a second (`everyMs`), with how many items are done. A million-job snapshot
 * takes seconds to load, and silence that long looks like a hang. The clock is looked at once
 * every 4096 items only, so counting costs nothing measurable per job.
 */
export class Progress {
  private done = 0
  private readonly started: number
  private nextAt: number

  constructor(
    private readonly logger: Logger,
    private readonly msg: string,
    /** What is counted: the field the count goes in ("jobs", "records"). */
    private readonly unit: string,
    private readonly fields: Record<string, unknown>,
    private readonly everyMs = 1000,
    private readonly now: () => number = Date.now,
  ) {
    this.started = now()
    this.nextAt = this.started + everyMs
  }

  tick(): void {
    if ((++this.done & 4095) !== 0) return
    const now = this.now()
    if (now < this.nextAt) return
    this.nextAt = now + this.everyMs
    this.logger.info({ ...this.fields, [this.unit]: this.done, elapsed_ms: now - this.started }, this.msg)
  }
}
