import { readFileSync, statSync } from 'node:fs'
import { isJsonObject } from '../json'
import { DEFAULT_LANE, MAX_PRIORITY } from '../queue/job'
import type { RunReport } from '../queue/job'
import type { RestoredJob } from '../queue/queue'
import type { SavedHold } from '../queue/unique'
import { parseJobLine, releaseBlock } from './job-line'
import { type LineSpan, readLineSpans } from './lines'

/**
 * The `queue.json` format of the original dispenserd: an object mapping each lane to its jobs in
 * serving order, each job with job_num, hash, timestamp, lane, priority and message. It is written
 * by `encodeJobsByLane` (queue/listing.ts), the same encoding `GET /jobs` answers with, one job per
 * line. Such files are read line by line, whatever their size; any other layout of the same JSON
 * (the original's indented one) is parsed whole.
 */
export class SnapshotFormatError extends Error {}

/** Where a job was read, for messages; a function when building the text for every job would cost (a million lines). */
type Where = string | (() => string)

function fail(where: Where, problem: string): never {
  throw new SnapshotFormatError(`${typeof where === 'string' ? where : where()}: ${problem}`)
}

let lastTimeText = ''
let lastTime: number | undefined

/** Seconds since the epoch; consecutive jobs mostly share a timestamp, so the last one is kept. */
function parseTime(text: string): number | undefined {
  if (text !== lastTimeText) {
    const ms = Date.parse(text)
    lastTimeText = text
    lastTime = Number.isNaN(ms) ? undefined : Math.floor(ms / 1000)
  }
  return lastTime
}

/** One job object of a snapshot (or a journal record), checked; throws SnapshotFormatError. */
export function decodeJob(raw: unknown, laneKey: string, where: Where): RestoredJob {
  if (!isJsonObject(raw)) fail(where, 'expected a job object')
  const { job_num: jobNum, hash, timestamp, lane, priority, message, attempts, not_before: notBefore, unique_key: uniqueKey, unique_for: uniqueFor, group } = raw
  if (typeof jobNum !== 'number' || !Number.isSafeInteger(jobNum) || jobNum < 1) fail(where, '"job_num" must be a positive integer')
  if (typeof message !== 'string') fail(where, '"message" must be a string')
  if (priority !== undefined && (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0 || priority > MAX_PRIORITY)) {
    fail(where, `"priority" must be an integer from 0 to ${MAX_PRIORITY}`)
  }
  if (lane !== undefined && lane !== null && typeof lane !== 'string') fail(where, '"lane" must be a string')
  if (hash !== undefined && typeof hash !== 'string') fail(where, '"hash" must be a string')
  if (attempts !== undefined && (typeof attempts !== 'number' || !Number.isSafeInteger(attempts) || attempts < 0)) fail(where, '"attempts" must be a whole number')
  const readyAt = notBefore === undefined ? undefined : typeof notBefore === 'string' ? Date.parse(notBefore) : NaN
  if (readyAt !== undefined && Number.isNaN(readyAt)) fail(where, '"not_before" must be an RFC 3339 time')
  if (uniqueKey !== undefined && typeof uniqueKey !== 'string') fail(where, '"unique_key" must be a string')
  if (group !== undefined && typeof group !== 'string') fail(where, '"group" must be a string')
  if (uniqueKey !== undefined && (typeof uniqueFor !== 'number' || !(uniqueFor >= 0))) fail(where, '"unique_for" must be a number of seconds')
  let created: number | undefined
  if (timestamp !== undefined) {
    created = typeof timestamp === 'string' ? parseTime(timestamp) : undefined
    if (created === undefined) fail(where, '"timestamp" must be an RFC 3339 time')
  }
  return {
    jobNum,
    hash: hash === '' ? undefined : hash,
    created,
    lane: typeof lane === 'string' && lane !== '' ? lane : laneKey,
    priority: priority ?? 512,
    message,
    attempts: attempts as number | undefined,
    notBefore: readyAt,
    unique: uniqueKey === undefined ? undefined : { key: uniqueKey, forMs: Math.round((uniqueFor as number) * 1000) },
    group: group as string | undefined,
  }
}

/** A unique key held by a finished job, from state.json or a journal record; throws SnapshotFormatError. */
export function decodeHold(raw: unknown, where: string): SavedHold {
  if (!isJsonObject(raw)) fail(where, 'expected a unique key hold object')
  const { lane, key, hash, job_num: jobNum, until } = raw
  if (typeof lane !== 'string' || typeof key !== 'string' || typeof hash !== 'string') fail(where, 'a unique key hold needs "lane", "key" and "hash" strings')
  if (typeof jobNum !== 'number' || !Number.isSafeInteger(jobNum) || jobNum < 1) fail(where, '"job_num" must be a positive integer')
  if (typeof until !== 'number' || !Number.isSafeInteger(until) || until < 0) fail(where, '"until" must be a time in ms since the epoch')
  return { lane, key, hash, jobNum, until }
}

/** The run report written after a dead job's fields (see writeReportMembers); throws SnapshotFormatError. */
export function decodeReport(raw: Record<string, unknown>, where: string): RunReport {
  const { started_at: startedAt, finished_at: finishedAt, duration_ms: durationMs, reason, exit_code: exitCode, http_status: httpStatus, output } = raw
  const time = (value: unknown, name: string): number => {
    const parsed = typeof value === 'string' ? Date.parse(value) : NaN
    if (Number.isNaN(parsed)) fail(where, `"${name}" must be an RFC 3339 time`)
    return Math.floor(parsed / 1000)
  }
  const orNull = (value: unknown, name: string, type: 'string' | 'number'): never | string | number | null => {
    if (value === null || value === undefined) return null
    if (typeof value !== type) fail(where, `"${name}" must be a ${type} or null`)
    return value as string | number
  }
  return {
    state: raw.state === 'succeeded' || raw.state === 'failed' ? raw.state : 'dead',
    startedAt: time(startedAt, 'started_at'),
    finishedAt: time(finishedAt, 'finished_at'),
    durationMs: typeof durationMs === 'number' && durationMs >= 0 ? durationMs : 0,
    reason: orNull(reason, 'reason', 'string') as string | null,
    exitCode: orNull(exitCode, 'exit_code', 'number') as number | null,
    httpStatus: orNull(httpStatus, 'http_status', 'number') as number | null,
    output: typeof output === 'string' ? output : '',
  }
}

/** Receives what a snapshot holds, lane by lane, as it is read. */
export interface SnapshotSink {
  lane(name: string): void
  /** `raw` is the job's object as read, for fields beyond a job's own (a dead job's report). */
  job(job: RestoredJob, raw: Record<string, unknown>): void
}

/** Largest file parsed whole when it is not in our one-job-per-line layout. */
const MAX_WHOLE_FILE_BYTES = 256 * 1024 * 1024

/** Reads a snapshot file into `sink`; returns the number of jobs. Throws SnapshotFormatError. */
export function readSnapshotFile(file: string, sink: SnapshotSink): number {
  const size = statSync(file).size
  const lines = readLineSpans(file)
  const first = nextContentLine(lines)
  if (first === undefined) {
    sink.lane(DEFAULT_LANE) // an empty file, as the original's build creates
    return 0
  }
  const second = first === '{' ? nextContentLine(lines) : undefined
  if (second !== undefined && (second === '}' || LANE_HEADER.test(second))) {
    try {
      return decodeLines(second, lines, sink)
    } finally {
      // Stopped at the closing } (or at damage): the file is closed, and its last block let go.
      lines.return(undefined)
      releaseBlock()
    }
  }
  lines.return(undefined)
  if (size > MAX_WHOLE_FILE_BYTES) {
    fail('layout', `a file over ${MAX_WHOLE_FILE_BYTES} bytes must have one job per line, as dispenserd writes it`)
  }
  return decodeText(readFileSync(file, 'utf8'), sink)
}

function text({ buf, start, end }: LineSpan): string {
  return buf.toString('utf8', start, end)
}

function nextContentLine(lines: Iterator<LineSpan>): string | undefined {
  for (let r = lines.next(); !r.done; r = lines.next()) {
    const line = text(r.value)
    if (line.trim() !== '') return line
  }
  return undefined
}

/** `"lane": [`, or `"lane": []` with an optional comma for an empty lane. */
const LANE_HEADER = /^("(?:[^"\\]|\\.)*"): \[(\])?,?$/

function decodeLines(second: string, lines: Iterator<LineSpan>, sink: SnapshotSink): number {
  let lineNo = 2
  let lane: string | undefined
  let count = 0
  let jobInLane = 0
  let span: LineSpan | undefined
  for (let line: string | undefined = second; line !== undefined || span !== undefined; ) {
    const where = lineNo
    // A job line is read from its bytes when it is exactly as we write it.
    const fast = line === undefined && lane !== undefined ? fastJob(span!, lane) : undefined
    if (fast !== undefined) {
      sink.job(fast, NO_EXTRA_MEMBERS)
      count++
      jobInLane++
    } else {
      line ??= text(span!)
      if (line === '}') return count
      if (lane === undefined) {
        const header = LANE_HEADER.exec(line)
        if (header === null) fail(`line ${where}`, 'expected a lane such as "main": [')
        const name = JSON.parse(header[1]!) as string
        sink.lane(name || DEFAULT_LANE)
        if (header[2] === undefined) {
          lane = name || DEFAULT_LANE
          jobInLane = 0
        }
      } else if (line === ']' || line === '],') {
        lane = undefined
      } else {
        count += decodeJobLine(line, lane, where, jobInLane++, sink)
      }
    }
    next()
    // Lane headers and ends are short: read as text. Job lines stay bytes until needed.
    line = span === undefined ? undefined : lane === undefined || isLaneEnd(span) ? text(span) : undefined
  }
  fail(`line ${lineNo}`, 'the file ends before its closing }')

  function next(): void {
    lineNo++
    const r = lines.next()
    span = r.done ? undefined : r.value
  }
}

/** A job line read the general way (JSON.parse), which also words every error. */
function decodeJobLine(line: string, lane: string, where: number, jobInLane: number, sink: SnapshotSink): number {
  const place = (): string => `line ${where} (lane ${JSON.stringify(lane)}, job ${jobInLane})`
  let raw: unknown
  try {
    raw = JSON.parse(line.endsWith(',') ? line.slice(0, -1) : line)
  } catch (err) {
    fail(`line ${where}`, `not valid JSON: ${(err as Error).message}`)
  }
  sink.job(decodeJob(raw, lane, place), raw as Record<string, unknown>)
  return 1
}

function fastJob(span: LineSpan, lane: string): RestoredJob | undefined {
  const { buf, start } = span
  const end = buf[span.end - 1] === 0x2c ? span.end - 1 : span.end
  return buf[start] === 0x7b ? parseJobLine(buf, start, end, lane) : undefined
}

/** `]` or `],` (a lane's end), or `}` (the file's). */
function isLaneEnd({ buf, start, end }: LineSpan): boolean {
  const c = buf[start]
  return (c === 0x5d || c === 0x7d) && end - start <= 2
}

/** What the fast path hands the sink for `raw`: its lines have no members beyond a job's own. */
const NO_EXTRA_MEMBERS: Record<string, unknown> = Object.freeze({})

/** Any JSON layout of the same shape, parsed whole (the original daemon indents its file). */
function decodeText(text: string, sink: SnapshotSink): number {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    fail('not valid JSON', (err as Error).message)
  }
  if (!isJsonObject(parsed)) fail('top level', 'expected an object mapping lane names to arrays of jobs')
  let count = 0
  for (const [laneKey, list] of Object.entries(parsed)) {
    const lane = laneKey || DEFAULT_LANE
    sink.lane(lane)
    if (list === null) continue // Go writes a nil slice as null
    if (!Array.isArray(list)) fail(`lane ${JSON.stringify(laneKey)}`, 'expected an array of jobs')
    list.forEach((raw, i) => sink.job(decodeJob(raw, lane, `lane ${JSON.stringify(laneKey)}, job ${i}`), raw as Record<string, unknown>))
    count += list.length
  }
  return count
}
