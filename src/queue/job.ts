import { type ByteWriter, QUOTE, jsonStringBound } from './bytes'
import { type HashScheme, processHashes } from './hash'
import { type LaneStamps, Stamp } from './stamp'
import type { UniqueSpec } from './unique'

export const DEFAULT_LANE = 'main'
export const DEFAULT_PRIORITY = 512
export const MAX_PRIORITY = 4294967295

/**
 * One queued job, kept small because millions may wait: its lane, priority, creation time and hash
 * scheme are in a Stamp shared with the jobs scheduled beside it (see stamp.ts); `created` is whole
 * seconds since the epoch (the original's timestamps have second resolution) and is rendered only
 * when shown; the hash of a job is derived from its number by its stamp's scheme (see hash.ts)
 * unless a string was stored.
 */
export class Job {
  /**
   * Its Stamp, or, once the job needs something of its own (a stored hash string, runs, a delay, a
   * group...), a JobExtra that holds the Stamp too: one field, because millions of jobs need no more.
   */
  private place: Stamp | JobExtra

  constructor(
    readonly jobNum: number,
    stamp: Stamp,
    readonly message: string,
    /** A hash as restored from a snapshot (or given by a store or a test); null: the stamp's scheme derives it. */
    hash: string | null = null,
  ) {
    this.place = hash === null ? stamp : new JobExtra(stamp, hash)
  }

  private get stamp(): Stamp {
    const place = this.place
    return place instanceof Stamp ? place : place.stamp
  }

  private get extra(): JobExtra | undefined {
    const place = this.place
    return place instanceof Stamp ? undefined : place
  }

  /** The lane's own name string, shared by all its jobs. */
  get lane(): string {
    return this.stamp.lane
  }

  get priority(): number {
    return this.stamp.priority
  }

  /** Whole seconds since the epoch. */
  get created(): number {
    return this.stamp.created
  }

  /** A stored hash string, else the scheme that derives it (null: this process's). */
  private get storedHash(): string | HashScheme | null {
    const place = this.place
    return place instanceof Stamp ? place.scheme : (place.hash ?? place.stamp.scheme)
  }

  /** Whether it has anything of its own beyond its number, message and stamp (most jobs have not). */
  get hasExtra(): boolean {
    return !(this.place instanceof Stamp)
  }

  /** Runs started (runner lanes); saved with the job so retries count across restarts. */
  get attempts(): number {
    return this.extra?.attempts ?? 0
  }

  set attempts(count: number) {
    if (count !== 0 || this.extra !== undefined) this.extended().attempts = count
  }

  /** How its last run ended (runner lanes), for inspection. */
  get report(): RunReport | undefined {
    return this.extra?.report
  }

  set report(report: RunReport | undefined) {
    if (report !== undefined || this.extra !== undefined) this.extended().report = report
  }

  /** While delayed: when it becomes ready (ms since the epoch); saved, so a delay outlives a restart. */
  get notBefore(): number {
    return this.extra?.notBefore ?? 0
  }

  set notBefore(at: number) {
    if (at !== 0 || this.extra !== undefined) this.extended().notBefore = at
  }

  /** What its consumer (ack) or runner returned when it succeeded, as JSON text. */
  get result(): string | undefined {
    return this.extra?.result
  }

  set result(json: string | undefined) {
    if (json !== undefined || this.extra !== undefined) this.extended().result = json
  }

  /** The group (a tenant, a customer) it is served fairly among, within its priority; none: not grouped. */
  get group(): string | undefined {
    return this.extra?.group
  }

  set group(group: string | undefined) {
    if (group !== undefined || this.extra !== undefined) this.extended().group = group
  }

  /** The unique key it holds on its lane, if it was scheduled with one. */
  get unique(): UniqueSpec | undefined {
    return this.extra?.unique
  }

  set unique(spec: UniqueSpec | undefined) {
    if (spec !== undefined || this.extra !== undefined) this.extended().unique = spec
  }

  private extended(): JobExtra {
    const place = this.place
    if (!(place instanceof Stamp)) return place
    return (this.place = new JobExtra(place, null))
  }

  /** Whether the hash is stored as a string rather than derived from the job number by some scheme. */
  get hasStoredHash(): boolean {
    return typeof this.storedHash === 'string'
  }

  /** The scheme that derives its hash from its number, or undefined when the hash is stored as it is. */
  get scheme(): HashScheme | undefined {
    const stored = this.storedHash
    return typeof stored === 'string' ? undefined : (stored ?? processHashes)
  }

  /**
   * The same job at `priority` in the lane whose stamps are `to` (relocated), with its number, hash,
   * time and history: its stamp comes from that lane's table, so it shares the lane's name string.
   */
  movedTo(to: LaneStamps, priority: number): Job {
    const stamp = this.stamp
    const moved = new Job(this.jobNum, to.of(priority, stamp.created, stamp.scheme), this.message)
    const extra = this.extra
    if (extra !== undefined) moved.place = extra.copyAt(moved.stamp)
    return moved
  }

  get hash(): string {
    const stored = this.storedHash
    return typeof stored === 'string' ? stored : (stored ?? processHashes).hashOf(this.jobNum)
  }

  /** The hash it was restored with as a string, or null where its hash is derived from its number. */
  get restoredHash(): string | null {
    const stored = this.storedHash
    return typeof stored === 'string' ? stored : null
  }

  /**
   * Writes the hash as a JSON string literal. A stored hash may be of any length (one no scheme
   * derives, from another daemon's queue.json), so it makes its own room, keeping `after` bytes
   * free past it: the room its caller had made for what it writes next.
   */
  writeHash(out: ByteWriter, after: number): void {
    const stored = this.storedHash
    if (typeof stored === 'string') {
      out.reserve(jsonStringBound(stored) + after)
      out.jsonString(stored)
      return
    }
    out.byte(QUOTE)
    ;(stored ?? processHashes).writeHash(this.jobNum, out)
    out.byte(QUOTE)
  }
}

/** What a job has of its own beyond its number and message, made only for the jobs that need it. */
class JobExtra {
  attempts = 0
  report: RunReport | undefined = undefined
  notBefore = 0
  unique: UniqueSpec | undefined = undefined
  result: string | undefined = undefined
  group: string | undefined = undefined

  constructor(
    readonly stamp: Stamp,
    /** A stored hash string; null: the stamp's scheme derives it. */
    readonly hash: string | null,
  ) {}

  /** The same at another stamp (a moved job). */
  copyAt(stamp: Stamp): JobExtra {
    const copy = new JobExtra(stamp, this.hash)
    copy.attempts = this.attempts
    copy.report = this.report
    copy.notBefore = this.notBefore
    copy.unique = this.unique
    copy.result = this.result
    copy.group = this.group
    return copy
  }
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

/** The last `,"timestamp":"…","lane":…,"priority":` written: jobs side by side mostly share both. */
const middle = { created: NaN, lane: '', bytes: Buffer.alloc(0) }

/** `,"timestamp":"<created>","lane":<lane as JSON>,"priority":`, made once for a run of jobs that share them. */
function timestampAndLane(created: number, lane: string): Buffer {
  if (created !== middle.created || lane !== middle.lane) {
    middle.created = created
    middle.lane = lane
    middle.bytes = Buffer.from(`,"timestamp":"${rfc3339(created)}","lane":${JSON.stringify(lane)},"priority":`)
  }
  return middle.bytes
}

/** The member names every job has, as bytes: a batch receive writes them a thousand times (see ByteWriter.bytes). */
const JOB_NUM_NAME = Buffer.from('"job_num":', 'latin1')
const HASH_NAME = Buffer.from(',"hash":', 'latin1')
const MESSAGE_NAME = Buffer.from(',"message":', 'latin1')

/** Writes `"job_num":N,"hash":"…"`: the members a job's replies start with. */
export function writeJobNumAndHash(job: Job, out: ByteWriter, after = 0): void {
  // The number's 16 digits at most and a derived hash's 42 bytes (a stored one reserves its own,
  // on top of the `after` bytes the caller reserved for what follows).
  out.reserve(JOB_NUM_NAME.length + 16 + HASH_NAME.length + 42)
  out.bytes(JOB_NUM_NAME)
  out.uint(job.jobNum)
  out.bytes(HASH_NAME)
  job.writeHash(out, after)
}

/**
 * Writes a job's fields as JSON object members, in the original's order: job_num, hash, timestamp,
 * lane, priority, message. Used for every job received, listed or saved.
 */
export function writeJobMembers(job: Job, out: ByteWriter): void {
  const room = jsonStringBound(job.message) + jsonStringBound(job.lane) + 400
  out.reserve(room)
  writeJobNumAndHash(job, out, room)
  out.bytes(timestampAndLane(job.created, job.lane))
  out.uint(job.priority)
  out.bytes(MESSAGE_NAME)
  out.jsonString(job.message)
  // Most jobs have no extra members: one test instead of four.
  if (!job.hasExtra) return
  if (job.attempts > 0) {
    out.ascii(',"attempts":')
    out.uint(job.attempts)
  }
  if (job.notBefore > 0) out.ascii(`,"not_before":"${new Date(job.notBefore).toISOString()}"`)
  const group = job.group
  if (group !== undefined) {
    out.reserve(jsonStringBound(group) + 12)
    out.ascii(',"group":')
    out.jsonString(group)
  }
  const unique = job.unique
  if (unique !== undefined) {
    out.reserve(jsonStringBound(unique.key) + 40)
    out.ascii(',"unique_key":')
    out.jsonString(unique.key)
    out.ascii(`,"unique_for":${unique.forMs / 1000}`)
  }
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

/**
 * A succeeded job kept for `GET /job` (in dead.json and the journal's `finish` record): its last
 * run's report if it ran on a runner lane, its result, and until when it is kept.
 */
export function writeFinishedMembers(job: Job, until: number, out: ByteWriter): void {
  writeJobMembers(job, out)
  if (job.report !== undefined) writeReportMembers(job.report, out)
  writeResultMember(job, out)
  out.reserve(48)
  out.ascii(`,"kept_until":"${new Date(until).toISOString()}"`)
}

/** `,"result":…` when the job left a result (JSON text already, checked when it was given). */
export function writeResultMember(job: Job, out: ByteWriter): void {
  if (job.result === undefined) return
  const result = Buffer.from(job.result)
  out.reserve(result.length + 12)
  out.ascii(',"result":')
  out.bytes(result)
}

/** A whole number as JSON, or null (NaN or a fraction would make the line unreadable). */
function wholeOrNull(value: number | null): string {
  return value !== null && Number.isSafeInteger(value) ? String(value) : 'null'
}
