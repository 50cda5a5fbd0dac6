import type { LaneSettingsByName } from './lane-settings'

/** A lane's rate: `jobs` every `perMs`, and at most `burst` at once after a quiet spell. */
export interface RateSpec {
  jobs: number
  perMs: number
  burst: number
}

/** A token bucket: refilled at the rate, holding at most `burst` tokens; a job taken spends one. */
class TokenBucket {
  private tokens: number
  private last: number

  constructor(
    readonly spec: RateSpec,
    now: number,
  ) {
    this.tokens = spec.burst
    this.last = now
  }

  /** Spends up to `want` whole tokens; returns how many. */
  take(want: number, now: number): number {
    this.refill(now)
    const granted = Math.min(want, Math.floor(this.tokens))
    this.tokens -= granted
    return granted
  }

  available(now: number): number {
    this.refill(now)
    return Math.floor(this.tokens)
  }

  /** How long until `tokens` whole tokens are there (at least 1 ms). */
  msUntil(tokens: number, now: number): number {
    this.refill(now)
    return Math.max(1, Math.ceil(((tokens - this.tokens) * this.spec.perMs) / this.spec.jobs))
  }

  private refill(now: number): void {
    if (now > this.last) this.tokens = Math.min(this.spec.burst, this.tokens + ((now - this.last) * this.spec.jobs) / this.spec.perMs)
    this.last = now
  }
}

/**
 * Rate limits per lane (the lanes' `rate`): a token bucket each. Receivers and runner slots wait for
 * tokens rather than being refused: the job service asks here before each take and, when a lane is
 * out of tokens with receivers waiting, looks again once the next token is due.
 */
export class RateLimits {
  private readonly buckets = new Map<string, TokenBucket>()

  /** Whether any lane is limited (the hot path asks this first, and nothing more when none is). */
  get active(): boolean {
    return this.buckets.size > 0
  }

  /** The lanes' rates from their settings; a lane whose rate is unchanged keeps its tokens. */
  configure(settings: LaneSettingsByName, now: number): void {
    for (const [lane, bucket] of [...this.buckets]) {
      const spec = settings[lane]?.rate
      if (spec === undefined || JSON.stringify(spec) !== JSON.stringify(bucket.spec)) this.buckets.delete(lane)
    }
    for (const [lane, { rate }] of Object.entries(settings)) if (rate !== undefined && !this.buckets.has(lane)) this.buckets.set(lane, new TokenBucket(rate, now))
  }

  /** How many of `want` jobs `lane` may give now (spent from its tokens); `want` when it has no rate. */
  grant(lane: string, want: number, now: number): number {
    const bucket = this.buckets.get(lane)
    return bucket === undefined ? want : bucket.take(want, now)
  }

  /**
   * Whether `lane` has at least `tokens` tokens now (none are spent), or a full bucket when its
   * burst is fewer: a batch receiver's `min` above the burst could otherwise never be met.
   */
  has(lane: string, tokens: number, now: number): boolean {
    const bucket = this.buckets.get(lane)
    return bucket === undefined || bucket.available(now) >= Math.min(tokens, bucket.spec.burst)
  }

  /** How long until `lane` has `tokens` tokens (or a full bucket, as `has` counts). */
  msUntil(lane: string, tokens: number, now: number): number {
    const bucket = this.buckets.get(lane)
    return bucket === undefined ? 0 : bucket.msUntil(Math.min(tokens, bucket.spec.burst), now)
  }
}
