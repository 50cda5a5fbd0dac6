import { ApiError, CODES } from '../errors'
import { ByteWriter } from '../queue/bytes'
import { type Job, writeJobMembers } from '../queue/job'

/** Reply bodies shared by several endpoints. */

export const EMPTY_QUEUE_BODY = JSON.stringify({ status: 'ok', code: CODES.empty_queue.code, message: 'empty queue' })
export const SHUTTING_DOWN = 'dispenserd is shutting down'

/** Reused for every reply: uWS copies what `end` is given before it returns. */
const replyWriter = new ByteWriter(64 * 1024)
const JOB_REPLY_START = `{"status":"ok","code":${CODES.ok.code},`

/**
 * `{"status":"ok","code":0, <the job's fields>}`: the answer to a receive that got a job, with
 * `lease_expires` when it is leased. The buffer is reused by the next reply: send it at once.
 */
export function jobReply(job: Job, leaseUntil?: number): Buffer {
  replyWriter.pos = 0
  replyWriter.ascii(JOB_REPLY_START)
  writeJobMembers(job, replyWriter)
  if (leaseUntil !== undefined) replyWriter.ascii(`,"lease_expires":"${new Date(leaseUntil).toISOString()}"`)
  replyWriter.ascii('}')
  return replyWriter.buf.subarray(0, replyWriter.pos)
}

/** The answer to ack, release and touch: the job's number and hash (and the new deadline). */
export function leaseReply(job: Job, leaseUntil?: number): string {
  const expires = leaseUntil === undefined ? '' : `,"lease_expires":"${new Date(leaseUntil).toISOString()}"`
  return `{"status":"ok","code":${CODES.ok.code},"job_num":${job.jobNum},"hash":"${job.hash}"${expires}}`
}

/**
 * Where replies to changes wait until the change is on disk (the journal). Without one, replies
 * go out at once.
 */
export interface Durability {
  /** Set while changes cannot be made durable; they are refused. */
  readonly broken: Error | undefined
  whenDurable(callback: (err: Error | undefined) => void): void
}

/** The error for a change whose journal record could not be written; `outcome` says what became of it. */
export function journalFailed(err: Error, outcome: string): ApiError {
  return new ApiError('journal_failed', `the journal could not be written (${err.message}); ${outcome}`)
}
