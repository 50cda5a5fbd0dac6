import type { Job } from './job'
import type { CronRecord } from './cron-table'
import type { SavedHold } from './unique'

/**
 * Every change to the set of jobs a restart must reproduce, told in the order it happens (the
 * journal implements this). What a restart needs is only whether each job is still there:
 * `scheduled` and `returned` say it is (and carry it whole), `taken` and `acked` say it is gone,
 * `leased` says it is out with a consumer (back in its lane after a restart), `buried` that it is
 * dead (kept, with its report, outside its lane), `deleted` that it is gone. `returned` also
 * carries a job moved to another lane or priority (its record holds the new ones).
 */
export interface ChangeLog {
  scheduled(job: Job): void
  /** A plain receive took the job for good. */
  taken(job: Job): void
  leased(job: Job): void
  acked(job: Job): void
  /**
   * The job is back: released, its lease expired, or a reply carrying it could not be delivered
   * (it had been taken, so the record must carry the whole job).
   */
  returned(job: Job, reason: ReturnReason): void
  /** A run failed with no retries left: the job is dead, kept with its report until retried or deleted. */
  buried(job: Job): void
  /** Done and kept a while for `GET /job` (until `until`), with its result and report: the record carries it whole. */
  finished(job: Job, until: number): void
  /** Gone for good at an operator's request. */
  deleted(job: Job): void
  /** An operator paused or resumed a lane (not about a job: kept across restarts all the same). */
  lanePaused(lane: string, paused: boolean): void
  /**
   * A finished job holds its unique key until `hold.until` (0: the key is free). Keys held by jobs
   * still here are restored with those jobs.
   */
  uniqueHeld(hold: SavedHold): void
  /** A cron entry's record was added or changed (fired, paused), or deleted (undefined). */
  cronChanged(name: string, record: CronRecord | undefined): void
}

export type ReturnReason = 'released' | 'lease expired' | 'not delivered' | 'retried' | 'moved'

export const NO_CHANGE_LOG: ChangeLog = {
  scheduled() {},
  taken() {},
  leased() {},
  acked() {},
  returned() {},
  buried() {},
  deleted() {},
  lanePaused() {},
  finished() {},
  uniqueHeld() {},
  cronChanged() {},
}
