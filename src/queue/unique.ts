import { type HeapItem, IndexedHeap } from './heap'
import type { Job } from './job'

/** A job's unique key and how long it stays held once the job is finished. */
export interface UniqueSpec {
  key: string
  /** Held this long after the job is finished (taken for good, acked, succeeded, dead); 0: released then. */
  forMs: number
}

/**
 * Who holds a unique key on a lane: a job that is queued, leased, running or delayed (`until` is
 * Infinity, `job` set), or one that finished and holds the key until `until` (ms since the epoch).
 */
export class UniqueHold implements HeapItem {
  heapIndex = -1

  constructor(
    readonly lane: string,
    readonly key: string,
    readonly hash: string,
    readonly jobNum: number,
    public until: number,
    public job: Job | undefined,
  ) {}

  get active(): boolean {
    return this.until === Infinity
  }
}

/** A finished hold as saved in state.json and the journal. */
export interface SavedHold {
  lane: string
  key: string
  hash: string
  jobNum: number
  until: number
}

/** Lane and key in one map key; the lane's length first, so no lane and key pair reads as another. */
function slot(lane: string, key: string): string {
  return `${lane.length}:${lane}${key}`
}

/**
 * The unique keys held on each lane (Sidekiq's unique jobs, desaster's "timed requeue blacklist").
 * Active holds follow their jobs; finished ones wait in a heap by expiry and are dropped, a few at a
 * time, as keys are looked up or finished, so no timer is needed and memory follows what is held.
 * Pure data: the queue tells it when jobs come and go.
 */
export class UniqueKeys {
  private readonly holds = new Map<string, UniqueHold>()
  private readonly expiring = new IndexedHeap<UniqueHold>((a, b) => a.until < b.until)

  get size(): number {
    return this.holds.size
  }

  /** The hold on `key` of `lane` in force at `now`, if any. */
  holder(lane: string, key: string, now: number): UniqueHold | undefined {
    this.sweep(now)
    const hold = this.holds.get(slot(lane, key))
    return hold !== undefined && hold.until > now ? hold : undefined
  }

  /** `job` (queued, or back in its lane) holds its key; a key another active job holds stays with it. */
  hold(job: Job, spec: UniqueSpec): void {
    const at = slot(job.lane, spec.key)
    const current = this.holds.get(at)
    if (current?.active === true && current.jobNum !== job.jobNum) return
    if (current !== undefined) this.expiring.remove(current)
    this.holds.set(at, new UniqueHold(job.lane, spec.key, job.hash, job.jobNum, Infinity, job))
  }

  /**
   * `job` is finished: its key stays held `forMs` from `now`. Returns the hold to record (undefined
   * when the key was not this job's).
   */
  finish(job: Job, spec: UniqueSpec, now: number): UniqueHold | undefined {
    const hold = this.holds.get(slot(job.lane, spec.key))
    if (hold === undefined || hold.jobNum !== job.jobNum) return undefined
    this.sweep(now)
    this.expiring.remove(hold)
    hold.job = undefined
    hold.until = now + spec.forMs
    if (spec.forMs > 0) this.expiring.push(hold)
    else this.holds.delete(slot(job.lane, spec.key))
    return hold
  }

  /** `job` is gone at an operator's request: its key is free at once. Returns the hold to record. */
  release(job: Job, spec: UniqueSpec): UniqueHold | undefined {
    const at = slot(job.lane, spec.key)
    const hold = this.holds.get(at)
    if (hold === undefined || hold.jobNum !== job.jobNum) return undefined
    this.expiring.remove(hold)
    this.holds.delete(at)
    hold.job = undefined
    hold.until = 0
    return hold
  }

  /** A finished hold read back from state.json or the journal; a key an active job holds stays its. */
  restore(saved: SavedHold, now: number): void {
    if (saved.until <= now) return
    const at = slot(saved.lane, saved.key)
    const current = this.holds.get(at)
    if (current?.active === true) return
    if (current !== undefined) this.expiring.remove(current)
    const hold = new UniqueHold(saved.lane, saved.key, saved.hash, saved.jobNum, saved.until, undefined)
    this.holds.set(at, hold)
    this.expiring.push(hold)
  }

  /** Finished holds still in force (for snapshots; active ones are saved with their jobs). */
  finished(now: number): SavedHold[] {
    this.sweep(now)
    return this.expiring.copy().map(({ lane, key, hash, jobNum, until }) => ({ lane, key, hash, jobNum, until }))
  }

  private sweep(now: number): void {
    for (let top = this.expiring.peek(); top !== undefined && top.until <= now; top = this.expiring.peek()) {
      this.expiring.pop()
      this.holds.delete(slot(top.lane, top.key))
    }
  }
}
