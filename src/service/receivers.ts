import { ApiError, OutcomeUnknown } from '../errors'
import type { Logger } from '../log'
import { type JobStore, type Taken, isPromise, when } from '../store/job-store'
import { journalFailed } from './commit'
import type { EventStream } from './events'
import type { RateLimits } from './rate-limits'
import type { Receiver } from './receiver'

/** What the parked receivers ask of the job service about a lane. */
export interface ReceiverHost {
  /** Whether the service holds the lane's jobs back itself (a paused lane in memory): none is handed out. */
  holdsBack(lane: string): boolean
  /** Whether a batch receive waiting for `min` jobs could take them now (JobService.batchReady). */
  batchReady(lane: string, min: number): boolean
  /** Whether the lane may have a job ready now (JobService.hasReady). */
  hasReady(lane: string): boolean
}

export interface ParkedReceiversOptions {
  store: JobStore
  events: EventStream
  /** The service's rate limits: a take for a parked receiver spends the lane's tokens. */
  rates: RateLimits
  logger: Logger
  clock: () => number
  service: ReceiverHost
}

/**
 * The receivers parked on each lane (consumers in `/receive_block`, idle runner slots) and their
 * wake-ups: who waits where, oldest first, how many count against max_parked_receivers, the drain
 * that hands ready jobs to them after each change (and again when a rate-limited lane has tokens),
 * a network store's takes under way for them, and the put-back of a job whose hand-over failed.
 * The job service owns one and calls `drain` wherever a lane may have gained a ready job.
 */
export class ParkedReceivers {
  /** Receivers waiting for a job, by lane (a lane that does not exist yet too), oldest first. */
  private readonly receivers = new Map<string, Set<Receiver>>()
  /** Receivers that are clients (counted against max_parked_receivers). */
  private parkedCount = 0
  /** A timer per rate-limited lane out of tokens with receivers waiting. */
  private readonly drainLater = new Map<string, NodeJS.Timeout>()
  /** A store over the network: receivers whose take is under way (not parked meanwhile), by lane. */
  private readonly serving = new Map<Receiver, { lane: string; cancelled: boolean }>()
  private readonly takesByLane = new Map<string, number>()
  /** Takes for receivers and put-backs under way (a store over the network): shutdown waits for them. */
  private readonly underway = new Set<Promise<void>>()
  private readonly store: JobStore
  private readonly events: EventStream
  private readonly rates: RateLimits
  private readonly logger: Logger
  private readonly clock: () => number
  private readonly service: ReceiverHost

  constructor(options: ParkedReceiversOptions) {
    this.store = options.store
    this.events = options.events
    this.rates = options.rates
    this.logger = options.logger
    this.clock = options.clock
    this.service = options.service
  }

  /** Parked receivers that are clients (what `parked_receivers` shows and max_parked_receivers limits). */
  get count(): number {
    return this.parkedCount
  }

  /** Whether the lane has receivers parked or takes for them under way (a shared store's wake-ups). */
  wanted(lane: string): boolean {
    return this.receivers.has(lane) || this.takesByLane.has(lane)
  }

  /** Sets `idle[lane]` to the number of receivers parked on each lane that has any. */
  countByLane(idle: Record<string, number>): void {
    for (const [lane, waiting] of this.receivers) idle[lane] = waiting.size
  }

  /** Stops the rate limits' drain timers (shutdown). */
  stop(): void {
    for (const timer of this.drainLater.values()) clearTimeout(timer)
  }

  /**
   * Parks a receiver on a lane; it gets a job at once if one is ready. A client past
   * `maxParkedReceivers` (0: no limit) is refused (ApiError) unless it would be served at once.
   */
  park(lane: string, receiver: Receiver, maxParkedReceivers: number): void {
    const counted = receiver.countsAsParked !== false
    if (counted && maxParkedReceivers > 0 && this.parkedCount >= maxParkedReceivers && !this.servesAtOnce(lane, receiver)) {
      throw new ApiError('limit_reached', `${this.parkedCount} receivers are waiting; max_parked_receivers is ${maxParkedReceivers}`)
    }
    let waiting = this.receivers.get(lane)
    if (waiting === undefined) this.receivers.set(lane, (waiting = new Set()))
    waiting.add(receiver)
    if (counted) this.parkedCount++
    this.drain(lane)
  }

  /**
   * Whether a receiver parked now is served at once: a job is ready and, where the counts are
   * exact, its `min` are ready and the lane has the tokens. (One that would wait counts against
   * max_parked_receivers, a job ready or not.)
   */
  private servesAtOnce(lane: string, receiver: Receiver): boolean {
    return this.store.answersAtOnce ? this.service.batchReady(lane, receiver.min ?? 1) : this.service.hasReady(lane)
  }

  /** Removes a parked receiver (its client went away, its timeout passed). Returns whether it was parked. */
  cancel(lane: string, receiver: Receiver): boolean {
    const serving = this.serving.get(receiver)
    if (serving !== undefined) {
      // Its take is under way: whatever it brings goes back; the receiver gets nothing.
      if (serving.cancelled) return false
      serving.cancelled = true
      return true
    }
    const waiting = this.receivers.get(lane)
    if (waiting === undefined || !waiting.has(receiver)) return false
    this.unpark(lane, waiting, receiver)
    return true
  }

  /** Removes every parked receiver and dismisses it; for shutdown. */
  dismissAll(): void {
    for (const [receiver, serving] of this.serving) {
      if (serving.cancelled) continue
      serving.cancelled = true
      receiver.dismiss()
    }
    for (const [lane, waiting] of [...this.receivers]) {
      for (const receiver of [...waiting]) {
        this.unpark(lane, waiting, receiver)
        receiver.dismiss()
      }
    }
  }

  /**
   * Hands ready jobs to the lane's parked receivers, oldest receiver first, until one side runs out.
   * Each hand-over goes out once durable; a receiver that turns out to be gone gives its job back.
   */
  drain(lane: string): void {
    if (this.service.holdsBack(lane)) return
    const waiting = this.receivers.get(lane)
    while (waiting !== undefined && waiting.size > 0 && this.store.hasReady(lane)) {
      if (this.takesByLane.size > 0 && (this.takesByLane.get(lane) ?? 0) >= MAX_TAKES_IN_FLIGHT) return
      const receiver = this.nextToServe(lane, waiting)
      if (receiver === undefined) return
      if (this.rates.active && !this.rates.has(lane, receiver.min ?? 1, this.clock())) return this.waitForTokens(lane, receiver.min ?? 1)
      if (receiver.count !== undefined) {
        this.unpark(lane, waiting, receiver)
        // Rate limits are the in-memory store's (the Redis store refuses them), whose count is exact.
        const count = this.rates.active ? this.rates.grant(lane, Math.min(receiver.count, this.store.readyCount(lane)), this.clock()) : receiver.count
        const taken = this.store.takeMany(lane, receiver.leaseMs, count, receiver.min ?? 1, waiting.size)
        if (isPromise(taken)) this.takeFor(receiver, lane, taken)
        else this.handManyTo(receiver, lane, taken)
        continue
      }
      if (this.rates.active) this.rates.grant(lane, 1, this.clock())
      this.unpark(lane, waiting, receiver)
      const taken = this.store.take(lane, receiver.leaseMs, waiting.size)
      if (isPromise(taken)) this.takeFor(receiver, lane, taken)
      else this.handTo(receiver, lane, taken)
    }
  }

  /**
   * The oldest parked receiver that can be served now. A batch receiver waiting for more jobs than
   * are ready (its `min`) lets those behind it go first, as a receive arriving now would take the
   * job at once. A store over the network checks `min` in the take itself (its counts are a second
   * old), so there the oldest goes first.
   */
  private nextToServe(lane: string, waiting: Set<Receiver>): Receiver | undefined {
    const oldest = waiting.values().next().value as Receiver
    if ((oldest.min ?? 1) === 1 || !this.store.answersAtOnce) return oldest
    const ready = this.store.readyCount(lane)
    for (const receiver of waiting) if ((receiver.min ?? 1) <= ready) return receiver
    return undefined
  }

  /** A rate-limited lane with receivers waiting: drained again once `tokens` tokens are due. */
  private waitForTokens(lane: string, tokens: number): void {
    if (this.drainLater.has(lane)) return
    const timer = setTimeout(() => {
      this.drainLater.delete(lane)
      this.drain(lane)
    }, this.rates.msUntil(lane, tokens, this.clock()))
    timer.unref()
    this.drainLater.set(lane, timer)
  }

  /**
   * A store over the network: a take for a receiver, answered later. Meanwhile the receiver is
   * not parked; if it is cancelled (its client left, its timeout passed) what the take brings goes
   * back. A take that finds nothing parks it again (the store then wakes the lane when a job comes).
   */
  private takeFor(receiver: Receiver, lane: string, taken: Promise<Taken | Taken[] | undefined>): void {
    const serving = { lane, cancelled: false }
    this.serving.set(receiver, serving)
    this.takesByLane.set(lane, (this.takesByLane.get(lane) ?? 0) + 1)
    const settled = (): void => {
      this.serving.delete(receiver)
      const left = this.takesByLane.get(lane)! - 1
      if (left === 0) this.takesByLane.delete(lane)
      else this.takesByLane.set(lane, left)
    }
    const handled = taken.then(
      (t) => {
        settled()
        if (serving.cancelled) {
          for (const one of t === undefined ? [] : Array.isArray(t) ? t : [t]) this.putBack(one, 'receiver left while its job was taken')
        } else if (Array.isArray(t)) this.handManyTo(receiver, lane, t)
        else this.handTo(receiver, lane, t)
        this.drain(lane)
      },
      (err: unknown) => {
        settled()
        if (serving.cancelled) return
        // A take for good that got no answer may have taken the job, which nobody else will get:
        // the receiver hears so (a leased job comes back when its lease ends: it waits on).
        if (err instanceof OutcomeUnknown && receiver.leaseMs === undefined) return receiver.fail(err)
        // Redis unavailable: the receiver waits on (the store polls the lane again in a second).
        this.repark(receiver, lane, err instanceof ApiError ? undefined : err)
      },
    )
    this.track(handled)
  }

  private track(work: Promise<unknown>): void {
    const done: Promise<void> = work.then(
      () => void this.underway.delete(done),
      () => void this.underway.delete(done),
    )
    this.underway.add(done)
  }

  /**
   * Resolves once the takes for receivers and the put-backs under way have ended: at shutdown,
   * before the store closes, so a job taken for a receiver that was dismissed meanwhile goes back.
   */
  async settle(): Promise<void> {
    while (this.underway.size > 0) await Promise.all([...this.underway])
  }

  private handTo(receiver: Receiver, lane: string, taken: Taken | undefined): void {
    if (taken === undefined) {
      this.repark(receiver, lane, undefined)
      return
    }
    this.events.emit('taken', taken.job, taken.lease)
    const deliver = (err: Error | undefined): void => {
      if (err !== undefined) {
        this.putBack(taken, 'journal failed')
        receiver.fail(journalFailed(err, 'the job stays queued'))
      } else if (!receiver.deliver(taken.job, taken.lease)) {
        this.putBack(taken, 'receiver disconnected')
      }
    }
    if (this.store.defersReplies) this.store.whenDurable(deliver)
    else deliver(undefined)
  }

  private handManyTo(receiver: Receiver, lane: string, taken: Taken[]): void {
    if (taken.length === 0) {
      this.repark(receiver, lane, undefined)
      return
    }
    this.events.emitTaken(taken)
    const deliver = (err: Error | undefined): void => {
      if (err !== undefined) {
        for (const t of taken) this.putBack(t, 'journal failed')
        receiver.fail(journalFailed(err, 'the jobs stay queued'))
      } else if (!receiver.deliverMany!(taken)) {
        for (const t of taken) this.putBack(t, 'receiver disconnected')
      }
    }
    if (this.store.defersReplies) this.store.whenDurable(deliver)
    else deliver(undefined)
  }

  /** A receiver whose take found nothing (or failed) waits again, first in line. */
  private repark(receiver: Receiver, lane: string, err: unknown): void {
    if (err !== undefined) this.logger.error({ lane, err }, 'a parked receiver could not be handed a job')
    const waiting = this.receivers.get(lane)
    this.receivers.set(lane, new Set([receiver, ...(waiting ?? [])]))
    if (receiver.countsAsParked !== false) this.parkedCount++
  }

  private unpark(lane: string, waiting: Set<Receiver>, receiver: Receiver): void {
    waiting.delete(receiver)
    if (receiver.countsAsParked !== false) this.parkedCount--
    if (waiting.size === 0) this.receivers.delete(lane)
  }

  /**
   * A job whose hand-over failed (to a parked receiver, or by the service's own receives) goes
   * back if that hand-over is still its latest, and on to the next receiver.
   */
  putBack(taken: Taken, reason: string): void {
    const { job } = taken
    const back = this.store.returnUndelivered(taken)
    if (isPromise(back)) this.track(back)
    when(
      back,
      (back) => {
        if (back) {
          this.logger.warn({ lane: job.lane, job_num: job.jobNum, hash: job.hash, reason }, 'job put back')
          this.drain(job.lane)
        } else {
          this.logger.warn({ lane: job.lane, job_num: job.jobNum, hash: job.hash, reason }, 'job not put back: the lease it was handed under had already ended')
        }
      },
      (err: unknown) => this.logger.error({ lane: job.lane, job_num: job.jobNum, hash: job.hash, reason, err }, 'a job could not be put back'),
    )
  }
}

/** A store over the network: takes under way at once for one lane's parked receivers. */
const MAX_TAKES_IN_FLIGHT = 8
