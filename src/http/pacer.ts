/**
 * Spaces operations at least `intervalMs` apart without blocking anyone: each caller reserves the
 * next free slot and is told how long to wait for it. The original's throttles slept 25 ms while
 * holding its global lock; this keeps its rate (40/s) while other endpoints go on being served.
 */
export class Pacer {
  private nextSlot = 0

  constructor(private readonly intervalMs: number) {}

  /** Reserves a slot; returns the milliseconds to wait before using it. */
  reserve(nowMs: number): number {
    const slot = Math.max(nowMs, this.nextSlot)
    this.nextSlot = slot + this.intervalMs
    return slot - nowMs
  }
}
