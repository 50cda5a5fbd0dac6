import { type ByteWriter, jsonStringBound } from './bytes'
import { processHashes } from './hash'
import type { HeapItem } from './heap'

export const DEFAULT_LANE = 'main'
export const DEFAULT_PRIORITY = 512
export const MAX_PRIORITY = 4294967295

/**
 * One queued job, kept small because millions may wait: `created` is whole seconds since the epoch
 * (the original's timestamps have second resolution) and is rendered only when shown; the hash of
 * a job scheduled by this process is derived from its number (see hash.ts) instead of stored;
 * `lane` is the lane's own name string, shared by all its jobs.
 */
export class Job implements HeapItem {
  heapIndex = -1
  /** What only some jobs need (runs, delays), made on first use: most jobs carry one empty field. */
  private extra: JobExtra | undefined = undefined

  constructor(
    readonly jobNum: number,
    readonly created: number,
    readonly lane: string,
    readonly priority: number,
    readonly message: string,
    /** Set for jobs restored from a snapshot (and by tests); null means derived. */
    private readonly storedHash: string | null = null,
  ) {}

  /** Runs started (runner lanes); saved with the job so retries count across restarts. */
  get attempts(): number {
    return this.extra?.attempts ?? 0
  }

  set attempts(count: number) {
    if (count !== 0 || this.extra !== undefined) this.more().attempts = count
  }

  /** How its last run ended (runner lanes), for inspection. */
  get report(): RunReport | undefined {
    return this.extra?.report
  }

  set report(report: RunReport | undefined) {
    if (report !== undefined || this.extra !== undefined) this.more().report = report
  }

  /** While delayed: when it becomes ready (ms since the epoch); saved, so a delay outlives a restart. */
  get notBefore(): number {
    return this.extra?.notBefore ?? 0
  }

  set notBefore(at: number) {
    if (at !== 0 || this.extra !== undefined) this.more().notBefore = at
  }

  private more(): JobExtra {
    return (this.extra ??= { attempts: 0, report: undefined, notBefore: 0 })
  }

  /** Whether the hash is stored (restored from a snapshot) rather than derived from the job number. */
  get hasStoredHash(): boolean {
    return this.storedHash !== null
  }

  /** The same job in another lane or at another priority (relocated), with its number, hash, time and history. */
  movedTo(lane: string, priority: number): Job {
    const moved = new Job(this.jobNum, this.created, lane, priority, this.message, this.storedHash)
    moved.extra = this.extra === undefined ? undefined : { ...this.extra }
    return moved
  }

  get hash(): string {
    return this.storedHash ?? processHashes.hashOf(this.jobNum)
  }

  /** The hash it was restored with, or null where its hash is derived from its number. */
  get restoredHash(): string | null {
    return this.storedHash
  }

  /** Writes the hash as a JSON string literal. */
  writeHash(out: ByteWriter): void {
    if (this.storedHash !== null) {
      out.reserve(jsonStringBound(this.storedHash))
      out.jsonString(this.storedHash)
      return
    }
    out.ascii('"')
    processHashes.writeHash(this.jobNum, out)
    out.ascii('"')
  }
}

interface JobExtra {
  attempts: number
  report: RunReport | undefined
  notBefore: number
}

/** How a run of a job ended, as shown by `GET /job` and `GET /failed`. */
export interface RunReport {
  state: 'succeeded' | 'failed' | 'dead'
  /** Seconds since the epoch. */
  startedAt: number
  finishedAt: number
  durationMs: number
  reason: string | null
  exitCode: number | null
  httpStatus: number | null
  /** The last 4 KiB of the run's output. */
  output: string
}

/** Serving order, as a comparator: lower priority number first, then strict FIFO by job number. */
export function compareJobs(a: Job, b: Job): number {
  return a.priority - b.priority || a.jobNum - b.jobNum
}

let cachedSecond = NaN
let cachedText = ''

/** RFC 3339 in UTC with second resolution, e.g. `2026-11-22T04:11:00Z`. */
export function rfc3339(seconds: number): string {
  if (seconds !== cachedSecond) {
    cachedSecond = seconds
    cachedText = new Date(seconds * 1000).toISOString().slice(0, 19) + 'Z'
  }
  return cachedText
}

/**
 * Writes a job's fields as JSON object members, in the original's order: job_num, hash, timestamp,
 * lane, priority, message. Used for every job received, listed or saved.
 */
export function writeJobMembers(job: Job, out: ByteWriter): void {
  out.reserve(jsonStringBound(job.message) + jsonStringBound(job.lane) + 400)
  out.ascii('"job_num":')
  out.uint(job.jobNum)
  out.ascii(',"hash":')
  job.writeHash(out)
  out.ascii(',"timestamp":"')
  out.ascii(rfc3339(job.created))
  out.ascii('","lane":')
  out.jsonString(job.lane)
  out.ascii(',"priority":')
  out.uint(job.priority)
  out.ascii(',"message":')
  out.jsonString(job.message)
  if (job.attempts > 0) {
    out.ascii(',"attempts":')
    out.uint(job.attempts)
  }
  if (job.notBefore > 0) out.ascii(`,"not_before":"${new Date(job.notBefore).toISOString()}"`)
}

/**
 * Writes a run report as more JSON members (after a job's): kept with dead jobs in `dead.json` and
 * the journal, and shown by `GET /job` and `GET /failed`.
 */
export function writeReportMembers(report: RunReport, out: ByteWriter): void {
  out.reserve(jsonStringBound(report.output) + jsonStringBound(report.reason ?? '') + 300)
  out.ascii(`,"state":"${report.state}","started_at":"${rfc3339(report.startedAt)}","finished_at":"${rfc3339(report.finishedAt)}","duration_ms":`)
  out.uint(report.durationMs)
  out.ascii(',"reason":')
  if (report.reason === null) out.ascii('null')
  else out.jsonString(report.reason)
  out.ascii(`,"exit_code":${wholeOrNull(report.exitCode)},"http_status":${wholeOrNull(report.httpStatus)},"output":`)
  out.jsonString(report.output)
}

/** A whole number as JSON, or null (NaN or a fraction would make the line unreadable). */
function wholeOrNull(value: number | null): string {
  return value !== null && Number.isSafeInteger(value) ? String(value) : 'null'
}
