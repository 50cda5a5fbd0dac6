import type { Cluster, Redis } from 'ioredis'
import type { Logger } from '../../log'

/** How often lanes with receivers parked here are polled whatever the hints say (a hint may be lost). */
export const REPOLL_MS = 1000

/**
 * What a frontend knows of whether a lane may have work, and what tells it so. Redis never sees a
 * blocking command: receivers stay parked in the frontend; a take that finds the lane empty
 * registers the frontend as waiting in the same script (no window for a lost wake-up), and the
 * script that makes a job ready names the frontend that has waited longest on a sharded pub/sub
 * channel of the lane's slot (one frontend per job: no thundering herd). Hints are only hints: a
 * lane with receivers parked here is polled every second and when its next deadline (a lease or a
 * delay ending) passes, and the take is the authority.
 */
export class Wakeups {
  /** Lanes whose last take found nothing (and no hint since): takes wait for a hint. */
  private readonly idle = new Set<string>()
  /** Bumped by every hint: a take that found nothing while a hint arrived must not mark its lane idle. */
  private readonly epochs = new Map<string, number>()
  /** Lanes this frontend registered as waiting on (polled every REPOLL_MS). */
  private readonly registered = new Set<string>()
  private readonly subscriptions = new Map<string, Promise<void>>()
  private readonly lanesByChannel = new Map<string, string>()
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>()
  private listener: ((lane: string) => boolean) | undefined
  private poller: NodeJS.Timeout | undefined

  constructor(
    private readonly subscriber: Redis | Cluster,
    private readonly logger: Logger,
    /** Leaves the lane's waiting frontends and names the next one (a hint for receivers that left). */
    private readonly pass: (lane: string) => void,
  ) {
    subscriber.on('smessage', (channel: string) => {
      const lane = this.lanesByChannel.get(channel)
      if (lane !== undefined) this.hint(lane, true)
    })
  }

  /** `listener(lane)` drains the lane and returns whether receivers still wait on it here. */
  onWork(listener: (lane: string) => boolean): void {
    this.listener = listener
  }

  start(): void {
    this.poller ??= setInterval(() => this.pollAll(), REPOLL_MS)
    this.poller.unref()
  }

  stop(): void {
    clearInterval(this.poller)
    for (const { timer } of this.timers.values()) clearTimeout(timer)
    this.timers.clear()
  }

  mayHaveWork(lane: string): boolean {
    return !this.idle.has(lane)
  }

  epoch(lane: string): number {
    return this.epochs.get(lane) ?? 0
  }

  /**
   * A take found the lane empty. One that registered this frontend as waiting leaves the lane idle
   * until a hint, unless one came while it ran. One that did not (a receive_noblock) leaves it as it
   * was: no hint would come, so a receiver parking next must take (and register) itself.
   */
  foundEmpty(lane: string, epochAtStart: number, registered: boolean): void {
    if (!registered) return
    this.registered.add(lane)
    if (this.epoch(lane) === epochAtStart) this.idle.add(lane)
    else this.hint(lane, false)
  }

  /** A take failed (Redis unavailable): wait for the next poll rather than retry at once. */
  failed(lane: string): void {
    this.idle.add(lane)
    this.registered.add(lane)
  }

  /** This frontend made work on the lane (or may have): takes go ahead. */
  work(lane: string): void {
    this.epochs.set(lane, this.epoch(lane) + 1)
    this.idle.delete(lane)
  }

  /** Wakes receivers at `at` (this process's clock): the lane's next lease or delay deadline. */
  armDeadline(lane: string, at: number): void {
    const armed = this.timers.get(lane)
    if (armed !== undefined && armed.at <= at) return
    if (armed !== undefined) clearTimeout(armed.timer)
    const timer = setTimeout(() => {
      this.timers.delete(lane)
      this.hint(lane, false)
    }, Math.min(Math.max(at - Date.now(), 0), REPOLL_MS * 60))
    timer.unref()
    this.timers.set(lane, { at, timer })
  }

  /**
   * Subscribes to the lane's channel for this frontend before its first registering take there,
   * so no hint is sent before anyone listens. A failure is logged and forgotten: polling covers.
   */
  subscribe(lane: string, channel: string): Promise<void> {
    let pending = this.subscriptions.get(lane)
    if (pending === undefined) {
      this.lanesByChannel.set(channel, lane)
      pending = this.subscriber.ssubscribe(channel).then(
        () => undefined,
        (err: unknown) => {
          this.subscriptions.delete(lane)
          this.logger.warn({ lane, err: (err as Error).message }, 'could not subscribe to the lane\'s wake-ups; polling it every second')
        },
      )
      this.subscriptions.set(lane, pending)
    }
    return pending
  }

  /** After a reconnect: every registered lane may have work no hint told of. */
  pollAll(): void {
    for (const lane of this.registered) this.hint(lane, false)
  }

  private hint(lane: string, named: boolean): void {
    this.work(lane)
    const stillWaiting = this.listener?.(lane) ?? false
    if (stillWaiting) return
    this.registered.delete(lane)
    // Named for a job with no receiver left here: leave the waiting and pass the hint on.
    if (named) this.pass(lane)
  }
}
