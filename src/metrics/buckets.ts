/**
 * A histogram's counts, kept as plain numbers: `observe` is a short loop over the bounds and three
 * additions, with nothing allocated, so it can run for every job. Rendered as a Prometheus
 * histogram (cumulative `_bucket`s, `_sum`, `_count`) only when scraped.
 */
export class Buckets {
  /** Observations at or below each bound and above the one before; the last slot is above every bound. */
  readonly counts: Float64Array
  sum = 0
  count = 0

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1)
  }

  /** `weight` observations of `value` (jobs of a batch that waited equally long are one call). */
  observe(value: number, weight = 1): void {
    const { bounds } = this
    let i = 0
    while (i < bounds.length && value > bounds[i]!) i++
    this.counts[i]! += weight
    this.sum += value * weight
    this.count += weight
  }
}

/** Seconds from half a millisecond to an hour: a job may wait that long for a consumer. */
export const LATENCY_BOUNDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600]

/** Seconds from 10 ms to an hour (a run's timeout is at most what a lane allows). */
export const DURATION_BOUNDS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600]
