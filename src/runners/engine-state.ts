import type { Logger } from '../log'
import type { Unavailable } from './runner'

/**
 * Whether a container lane's engine answers. A run that cannot reach it marks it down; the lane then
 * starts nothing (the dispatcher asks `availability` before a slot takes a job) until the upkeep's
 * next ping gets an answer, so an engine that is restarting does not burn the jobs' retries.
 */
export class EngineState {
  private downSince: number | undefined
  private reason: string | undefined
  private back: Promise<void> | undefined
  private resume: (() => void) | undefined

  constructor(
    private readonly address: string,
    private readonly logger: Logger,
  ) {}

  get reachable(): boolean {
    return this.reason === undefined
  }

  down(reason: string): void {
    if (this.reason !== undefined) return
    this.reason = reason
    this.downSince = Date.now()
    this.back = new Promise((resolve) => (this.resume = resolve))
    this.logger.warn({ engine: this.address, reason }, 'container engine unreachable: the lane starts nothing until it answers again')
  }

  up(): void {
    if (this.reason === undefined) return
    this.logger.info({ engine: this.address, down_ms: Date.now() - this.downSince! }, 'container engine answers again: the lane starts jobs')
    this.reason = undefined
    this.downSince = undefined
    this.resume!()
  }

  availability(): Unavailable | undefined {
    return this.reason === undefined ? undefined : { reason: this.reason, until: this.back! }
  }

  /** For `GET /`. */
  status(): { address: string; reachable: boolean; error: string | null; down_since: string | null } {
    return {
      address: this.address,
      reachable: this.reason === undefined,
      error: this.reason ?? null,
      down_since: this.downSince === undefined ? null : new Date(this.downSince).toISOString(),
    }
  }
}
