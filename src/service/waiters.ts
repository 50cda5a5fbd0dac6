import type { Held } from '../queue/held'
import type { Job } from '../queue/job'
import type { EventStream, JobEventListener } from './events'

/** How a waited-for job ended: succeeded (acked, or its run succeeded), dead, taken for good by a plain receive, or deleted. */
export type FinishedState = 'succeeded' | 'dead' | 'taken' | 'deleted'

/** Someone waiting for a job to finish (`/schedule` with `wait`). */
export interface FinishWaiter {
  /** Told which job it waits for, as soon as it is scheduled (or found holding the key). */
  watching(jobNum: number, hash: string): void
  finished(job: Job, state: FinishedState): void
}

/**
 * Who waits for which job to finish, by job number. Listens to the event stream only while someone
 * waits, so jobs nobody waits for cost nothing more.
 */
export class FinishWaiters implements JobEventListener {
  private readonly byJob = new Map<number, Set<FinishWaiter>>()
  /** Each waited job's hash, to ask a shared store how it ended. */
  private readonly hashes = new Map<number, string>()
  private unsubscribe: (() => void) | undefined

  /** `unwatched(hash)`: nobody waits for that job any more (a shared store may forget its end). */
  constructor(
    private readonly events: EventStream,
    private readonly unwatched: (hash: string) => void = () => undefined,
  ) {}

  /** The jobs waited for, by number and hash. */
  watched(): [number, string][] {
    return [...this.hashes]
  }

  /** Jobs someone waits for. */
  get size(): number {
    return this.byJob.size
  }

  add(jobNum: number, hash: string, waiter: FinishWaiter): void {
    waiter.watching(jobNum, hash)
    this.hashes.set(jobNum, hash)
    let waiting = this.byJob.get(jobNum)
    if (waiting === undefined) this.byJob.set(jobNum, (waiting = new Set()))
    waiting.add(waiter)
    this.unsubscribe ??= this.events.subscribe(this)
  }

  remove(jobNum: number, waiter: FinishWaiter): void {
    const waiting = this.byJob.get(jobNum)
    if (waiting === undefined || !waiting.delete(waiter)) return
    if (waiting.size === 0) {
      this.byJob.delete(jobNum)
      const hash = this.hashes.get(jobNum)!
      this.hashes.delete(jobNum)
      this.unwatched(hash)
    }
    if (this.byJob.size > 0) return
    this.unsubscribe?.()
    this.unsubscribe = undefined
  }

  taken(job: Job, lease: Held | undefined): void {
    // Leased (to a consumer or a runner slot) is not finished: its ack or run decides.
    if (lease === undefined) this.finish(job, 'taken')
  }

  acked(job: Job): void {
    this.finish(job, 'succeeded')
  }

  succeeded(job: Job): void {
    this.finish(job, 'succeeded')
  }

  dead(job: Job): void {
    this.finish(job, 'dead')
  }

  deleted(job: Job): void {
    this.finish(job, 'deleted')
  }

  /** A job finished, as told by a store shared with other processes (finished in one of them). */
  finish(job: Job, state: FinishedState): void {
    const waiting = this.byJob.get(job.jobNum)
    if (waiting === undefined) return
    for (const waiter of [...waiting]) {
      this.remove(job.jobNum, waiter)
      waiter.finished(job, state)
    }
  }
}
