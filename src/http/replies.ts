import { ApiError, CODES } from '../errors'
import type { Taken } from '../store/job-store'
import { ByteWriter, CLOSE_BRACE, COMMA, OPEN_BRACE, QUOTE } from '../queue/bytes'
import type { Held } from '../queue/held'
import { type Job, writeJobMembers, writeJobNumAndHash, writeReportMembers, writeResultMember } from '../queue/job'
import type { JobState } from '../queue/queue'
import type { UniqueHold } from '../queue/unique'
import type { FinishedState } from '../service/waiters'

/** Reply bodies shared by several endpoints. */

export const EMPTY_QUEUE_BODY = JSON.stringify({ status: 'ok', code: CODES.empty_queue.code, message: 'empty queue' })
export const SHUTTING_DOWN = 'dispenserd is shutting down'

/** Reused for every reply: uWS copies what `end` is given before it returns. */
const replyWriter = new ByteWriter(64 * 1024)
/** A reply buffer grown past this is not kept for the next reply. */
const KEPT_REPLY_BYTES = 4 * 1024 * 1024
const JOB_REPLY_START = `{"status":"ok","code":${CODES.ok.code},`

/**
 * Writes `,"lease_expires":"…","lease_token":"…"`: a lease's deadline and identity. The jobs of one
 * batch share their deadline, so the bytes up to the token are made once per deadline, not for each
 * of a thousand jobs (made per job, that string was a tenth of a leased batch receive).
 */
function writeLeaseMembers(lease: Held, out: ByteWriter): void {
  if (lease.at !== leaseStart.at) {
    leaseStart.at = lease.at
    leaseStart.bytes = Buffer.from(`,"lease_expires":"${new Date(lease.at).toISOString()}","lease_token":"`, 'latin1')
  }
  out.reserve(leaseStart.bytes.length + lease.tokenBound + 1)
  out.bytes(leaseStart.bytes)
  lease.writeToken(out)
  out.byte(QUOTE)
}

const leaseStart = { at: NaN, bytes: Buffer.alloc(0) }

/**
 * `{"status":"ok","code":0, <the job's fields>}`: the answer to a receive that got a job, with
 * `lease_expires` and `lease_token` when it is leased. The buffer is reused by the next reply:
 * send it at once.
 */
export function jobReply(job: Job, lease?: Held): Buffer {
  replyWriter.pos = 0
  replyWriter.ascii(JOB_REPLY_START)
  writeJobMembers(job, replyWriter)
  if (lease !== undefined) writeLeaseMembers(lease, replyWriter)
  replyWriter.ascii('}')
  return replyWriter.buf.subarray(0, replyWriter.pos)
}

const OK_START = Buffer.from(JOB_REPLY_START, 'latin1')

/**
 * `{"status":"ok","code":0,"job_num":N,"hash":"…"}`: the answer to a schedule of one job, as the
 * original gives it. Written as bytes into the shared reply buffer (send it at once), as receives
 * are: as a template string it was a string for the hash and another for the reply, which uWS then
 * measured and copied, and the schedule's largest allocation after the body it parses.
 */
export function scheduledReply(job: Job): Buffer {
  const out = replyWriter
  out.pos = 0
  out.bytes(OK_START)
  writeJobNumAndHash(job, out, 1) // room for the closing brace past a stored hash of any length
  out.byte(CLOSE_BRACE)
  return out.buf.subarray(0, out.pos)
}

/** A batch receive's answer: `{"status":"ok","code":0,"count":N,"jobs":[{...}, ...]}` (code 2 and no jobs when none was ready). */
export function jobsReply(taken: readonly Taken[]): Buffer {
  if (taken.length === 0) return Buffer.from(EMPTY_BATCH_BODY)
  // The shared writer, as jobReply's: a buffer per batch (and its copies as it grew past a guess)
  // was a tenth of a leased batch receive. One that grew past a few MiB (big messages) is let go.
  if (replyWriter.buf.length > KEPT_REPLY_BYTES) replyWriter.buf = Buffer.allocUnsafe(64 * 1024)
  const out = replyWriter
  out.pos = 0
  out.ascii(`${JOB_REPLY_START}"count":${taken.length},"jobs":[`)
  for (let i = 0; i < taken.length; i++) {
    const { job, lease } = taken[i]!
    out.reserve(2)
    if (i > 0) out.byte(COMMA)
    out.byte(OPEN_BRACE)
    writeJobMembers(job, out)
    if (lease !== undefined) writeLeaseMembers(lease, out)
    out.byte(CLOSE_BRACE)
  }
  out.reserve(3)
  out.ascii(']}')
  return out.buf.subarray(0, out.pos)
}

export const EMPTY_BATCH_BODY = JSON.stringify({ status: 'ok', code: CODES.empty_queue.code, message: 'empty queue', count: 0, jobs: [] })

/**
 * A batch ack, release or touch: each command's answer in order, as the single request would have
 * answered it (`{"status":"ok",...}` or `{"status":"error","code":9,...}`).
 */
export function batchReply<T>(answers: readonly (T | ApiError)[], answer: (value: T) => string): string {
  const items = answers.map((a) => (a instanceof ApiError ? JSON.stringify({ status: 'error', code: a.code, message: a.message }) : answer(a)))
  return `{"status":"ok","code":0,"count":${answers.length},"results":[${items.join(',')}]}`
}

/** The answer to ack, release, touch, retry and delete: the job's number and hash (and touch's lease). */
export function leaseReply(job: Job, lease?: Held): string {
  return `{"status":"ok","code":${CODES.ok.code},"job_num":${job.jobNum},"hash":"${job.hash}"${lease === undefined ? '' : `,"lease_expires":"${new Date(lease.at).toISOString()}","lease_token":"${lease.token}"`}}`
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

/**
 * `GET /job`: the job's fields, its state and attempts, its last run's report if it has one, its
 * result if it succeeded with one, and for a queued job its position in its lane and ETA (seconds,
 * null while the lane does not drain).
 */
export function jobStateReply(job: Job, state: JobState | FinishedState, where?: { position?: number; eta: number | null }): string {
  const out = new ByteWriter(1024)
  out.ascii(`${JOB_REPLY_START}"state":"${state}",`)
  writeJobDetail(job, out, where)
  out.ascii('}')
  return out.buf.toString('utf8', 0, out.pos)
}

/** A job's members as `GET /job` and pages show them: its fields, attempts, position and ETA, last run. */
function writeJobDetail(job: Job, out: ByteWriter, where?: { position?: number | null; eta: number | null }): void {
  writeJobMembers(job, out)
  out.reserve(120)
  if (job.attempts === 0) out.ascii(',"attempts":0')
  if (where?.position !== undefined && where.position !== null) out.ascii(`,"position":${where.position},"eta_seconds":${where.eta ?? 'null'}`)
  if (job.report !== undefined) {
    out.ascii(',"last_run":{')
    const start = out.pos
    writeReportMembers(job.report, out)
    out.buf[start] = 0x20 // the report's members start with a comma
    out.ascii('}')
  }
  writeResultMember(job, out)
}

/** A page of `GET /jobs`: the query as understood, the lane's count in that state, the jobs, and where the next page starts. */
export function jobPageReply(query: { lane: string; state: string; sort: string; offset: number; limit: number }, page: { jobs: Job[]; total: number; nextCursor: string | null; positions: (number | null)[]; etas: (number | null)[] }): string {
  const out = new ByteWriter(16 * 1024)
  out.reserve(query.lane.length * 6 + 200)
  out.ascii(`${JOB_REPLY_START}"lane":`)
  out.jsonString(query.lane)
  out.ascii(`,"state":"${query.state}","sort":"${query.sort}","offset":${query.offset},"limit":${query.limit},"total":${page.total},"next_cursor":${page.nextCursor === null ? 'null' : JSON.stringify(page.nextCursor)},"jobs":[`)
  page.jobs.forEach((job, i) => {
    out.reserve(4)
    out.ascii(i === 0 ? '{' : ',{')
    writeJobDetail(job, out, { position: page.positions[i], eta: page.etas[i] ?? null })
    out.ascii('}')
  })
  out.reserve(3)
  out.ascii(']}')
  return out.buf.toString('utf8', 0, out.pos)
}

/** `GET /failed`: a page of a lane's dead jobs, newest first, each with its report. */
export function deadJobsReply(lane: string, total: number, offset: number, jobs: Job[]): string {
  const out = new ByteWriter(4096)
  out.reserve(lane.length * 6 + 100)
  out.ascii(`${JOB_REPLY_START}"lane":`)
  out.jsonString(lane)
  out.ascii(`,"total":${total},"offset":${offset},"jobs":[`)
  jobs.forEach((job, i) => {
    out.reserve(2)
    out.ascii(i === 0 ? '{' : ',{')
    writeJobMembers(job, out)
    if (job.report !== undefined) writeReportMembers(job.report, out)
    out.ascii('}')
  })
  out.reserve(3)
  out.ascii(']}')
  return out.buf.toString('utf8', 0, out.pos)
}
/** The members naming the job that holds a unique key: its number, hash, and until when a finished one holds it. */
function holderMembers(hold: UniqueHold): string {
  return `"job_num":${hold.jobNum},"hash":${JSON.stringify(hold.hash)},"held_until":${hold.active ? 'null' : `"${new Date(hold.until).toISOString()}"`}`
}

/** `/schedule` whose unique key is held: nothing queued; the job that holds the key. */
export function duplicateReply(hold: UniqueHold): string {
  const whose = hold.active ? `job ${hold.jobNum}, which is still queued or out` : `job ${hold.jobNum}, finished, until ${new Date(hold.until).toISOString()}`
  const message = `duplicate: unique_key ${JSON.stringify(hold.key)} is held on lane ${JSON.stringify(hold.lane)} by ${whose}; nothing was queued`
  return `{"status":"ok","code":${CODES.duplicate.code},"message":${JSON.stringify(message)},${holderMembers(hold)}}`
}

/**
 * A batch with unique keys: the jobs queued (consecutive numbers, in the order given) and, for each
 * entry not queued, its index and the job holding its key. Code 16 when nothing was queued.
 */
export function uniqueBatchReply(outcomes: readonly (Job | UniqueHold)[]): string {
  const queued = outcomes.filter((o): o is Job => !('key' in o))
  const duplicates = outcomes.flatMap((o, index) => ('key' in o ? [`{"index":${index},${holderMembers(o)}}`] : []))
  const range = queued.length === 0 ? '' : `,"first_job_num":${queued[0]!.jobNum},"last_job_num":${queued[queued.length - 1]!.jobNum}`
  const code = queued.length === 0 ? CODES.duplicate.code : CODES.ok.code
  return `{"status":"ok","code":${code},"count":${queued.length}${range},"duplicates":[${duplicates.join(',')}]}`
}
