import { Job } from '../../queue/job'
import { stampOf } from '../../queue/stamp'

/*
 * A job record as the lane scripts keep it (HASH j, member -> record), written and read here: the
 * fields the scripts read by position ahead of the message, which is the rest of the record.
 */

/** A job record's fields: `job_num|created|priority|attempts|hash|message`. */
export function encodeRecord(job: { jobNum: number; created: number; priority: number; attempts: number; hash: string }, message: string): string {
  return `${job.jobNum}|${job.created}|${job.priority}|${job.attempts}|${job.hash}|${message}`
}

/** A Job from its record; `hashOf` gives the hash of a job scheduled here (no hash in the record). */
export function decodeRecord(record: string, lane: string, hashOf: () => string): Job {
  let at = 0
  const fields: string[] = []
  for (let i = 0; i < 5; i++) {
    const bar = record.indexOf('|', at)
    fields.push(record.slice(at, bar))
    at = bar + 1
  }
  const [num, created, priority, attempts, hash] = fields as [string, string, string, string, string]
  const job = new Job(Number(num), stampOf(lane, Number(priority), Number(created)), record.slice(at), hash === '' ? hashOf() : hash)
  job.attempts = Number(attempts)
  return job
}
