import { statSync } from 'node:fs'
import { crc32 } from 'node:zlib'
import type { Logger } from '../log'
import type { RestoredJob } from '../queue/queue'
import { journalFile, journalGenerations } from './journal'
import { readLines } from './lines'
import { Progress } from './progress'
import type { RunReport } from '../queue/job'
import { decodeHold, decodeJob, decodeReport } from './snapshot'
import type { SavedHold } from '../queue/unique'
import type { CronRecord } from '../queue/cron-table'
import { decodeCronRecord } from './cron-records'

export interface DeadJob {
  dead: RestoredJob
  report: RunReport
}

/** A succeeded job kept for `GET /job` until `until` (ms since the epoch), with its report (runner lanes) and result. */
export interface FinishedJob {
  finished: RestoredJob
  report: RunReport | undefined
  result: string | undefined
  until: number
}

/** A succeeded job's line in dead.json or its journal record; throws SnapshotFormatError. */
export function decodeFinished(raw: Record<string, unknown>, laneKey: string, where: string): FinishedJob {
  const until = typeof raw.kept_until === 'string' ? Date.parse(raw.kept_until) : NaN
  if (Number.isNaN(until)) throw new Error(`${where}: "kept_until" must be an RFC 3339 time`)
  return {
    finished: decodeJob(raw, laneKey, where),
    report: raw.started_at === undefined ? undefined : decodeReport(raw, where),
    result: raw.result === undefined ? undefined : JSON.stringify(raw.result),
    until,
  }
}

/**
 * What the journal says about each job it mentions: its last record decides. `schedule` and
 * `return` (which carry the whole job) and `lease` mean the job is there; `take` and `ack` mean it
 * is gone. Jobs the journal does not mention are as the snapshot has them. `pause` and `resume`
 * name a lane instead of a job; the last of them for a lane decides whether it is paused.
 *
 * Because only the last record counts, replaying records the snapshot already reflects does no
 * harm: a crash at any point of a compaction (snapshot written, old generations not yet deleted)
 * restores every job exactly once.
 */
export class JournalState {
  /**
   * job_num → the job (queued), null when it is gone, 'present' when it is there with its content
   * in the snapshot, or a dead job with its report.
   */
  readonly jobs = new Map<number, RestoredJob | null | 'present' | DeadJob | FinishedJob>()
  records = 0
  highestJobNum = 0
  /** Lanes paused or resumed by the records: the last record of each lane decides. */
  readonly paused = new Map<string, boolean>()
  /** Unique keys held by finished jobs (or freed: `until` 0), by lane and key; the last record wins. */
  readonly uniqueHolds = new Map<string, SavedHold>()
  /** Cron records by name (undefined: deleted); the last record wins. */
  readonly cron = new Map<string, CronRecord | undefined>()

  /**
   * Tells the journal what a snapshot file holds of a job. Returns true when the journal mentions
   * the job, so its last record decides (restored from `jobs` afterwards); a job known only to be
   * there (leased since the snapshot) takes this content.
   */
  provide(job: RestoredJob): boolean {
    const said = this.jobs.get(job.jobNum)
    if (said === undefined) return false
    if (said === 'present') this.jobs.set(job.jobNum, job)
    return true
  }

  apply(op: string, fields: Record<string, unknown>, where: string): void {
    if (op === 'pause' || op === 'resume') {
      if (typeof fields.lane !== 'string') throw new Error(`${where}: "lane" must be a string`)
      this.paused.set(fields.lane, op === 'pause')
      this.records++
      return
    }
    if (op === 'cron') {
      const { name, record } = fields
      if (typeof name !== 'string') throw new Error(`${where}: a cron record needs a "name"`)
      this.cron.set(name, record === null ? undefined : decodeCronRecord(record, where))
      this.records++
      return
    }
    const jobNum = fields.job_num
    if (typeof jobNum !== 'number' || !Number.isSafeInteger(jobNum) || jobNum < 1) throw new Error(`${where}: "job_num" must be a positive integer`)
    switch (op) {
      case 'schedule':
      case 'return':
        this.jobs.set(jobNum, decodeJob(fields, 'main', where))
        break
      case 'lease':
        // Only a job that is there can be leased: its content is in an earlier record or the snapshot.
        if (!this.jobs.has(jobNum)) this.jobs.set(jobNum, 'present')
        break
      case 'bury':
        this.jobs.set(jobNum, { dead: decodeJob(fields, 'main', where), report: decodeReport(fields, where) })
        break
      case 'finish':
        this.jobs.set(jobNum, decodeFinished(fields, 'main', where))
        break
      case 'take':
      case 'ack':
      case 'delete':
        this.jobs.set(jobNum, null)
        break
      case 'unique': {
        const hold = decodeHold(fields, where)
        this.uniqueHolds.set(JSON.stringify([hold.lane, hold.key]), hold)
        break
      }
      default:
        throw new Error(`${where}: unknown op ${JSON.stringify(op)}`)
    }
    this.records++
    if (jobNum > this.highestJobNum) this.highestJobNum = jobNum
  }
}

/**
 * A journal file damaged somewhere other than its last record: not a write cut short by a crash.
 * The daemon must not start (the records after the damage were acknowledged), and the file is left
 * as it is for the operator.
 */
export class DamagedJournalError extends Error {}

/** Reads every journal generation in `dir`, oldest first. Throws DamagedJournalError. */
export function readJournal(dir: string, logger: Logger): { state: JournalState; generations: number[] } {
  const state = new JournalState()
  const generations = journalGenerations(dir)
  if (generations.length === 0) return { state, generations }
  const files = generations.map((generation) => journalFile(dir, generation))
  logger.info({ files: files.length, bytes: files.reduce((sum, file) => sum + statSync(file).size, 0) }, 'replaying journal')
  const progress = new Progress(logger, 'still replaying journal', 'records', { files: files.length })
  for (const file of files) readGeneration(file, state, logger, progress)
  return { state, generations }
}

/**
 * Replays one file. Records are appended in order, so a crash mid-write can damage only the last
 * one: that one is skipped with a warning. A bad record with anything after it is damage (a bad
 * disk, a stray write, a flipped bit), and replaying around it would silently drop acknowledged
 * changes, so it stops the start, naming the file and the byte offset.
 */
function readGeneration(file: string, state: JournalState, logger: Logger, progress: Progress): void {
  let lineNo = 0
  let offset = 0
  let bad: { line: number; offset: number; problem: string } | undefined
  for (const line of readLines(file)) {
    lineNo++
    progress.tick()
    if (bad !== undefined) {
      throw new DamagedJournalError(
        `${file} is damaged at byte ${bad.offset} (line ${bad.line}: ${bad.problem}), and records follow it, so it is not a write cut short by a crash. ` +
          `The daemon will not start on it: the files are untouched. Restore the file from a backup, or, to start without the records from that byte on ` +
          `(losing them), truncate it there: truncate -s ${bad.offset} ${file}`,
      )
    }
    const problem = replayLine(line, state, `${file}:${lineNo}`)
    if (problem !== undefined) bad = { line: lineNo, offset, problem }
    offset += Buffer.byteLength(line) + 1
  }
  if (bad !== undefined) {
    const ignored = statSync(file).size - bad.offset
    logger.warn({ file, offset: bad.offset, line: bad.line, problem: bad.problem, ignored_bytes: ignored }, 'journal: torn last record skipped (a write cut short by a crash)')
  }
}

/** Applies one line; returns what is wrong with it, if anything. */
function replayLine(line: string, state: JournalState, where: string): string | undefined {
  if (line === '') return 'an empty line'
  if (line.length < 11 || line[8] !== ' ') return 'no checksum'
  const json = line.slice(9)
  if (crc32(json) !== Number.parseInt(line.slice(0, 8), 16)) return 'checksum mismatch'
  let fields: Record<string, unknown>
  try {
    fields = JSON.parse(json) as Record<string, unknown>
  } catch (err) {
    return `not valid JSON: ${(err as Error).message}`
  }
  try {
    state.apply(String(fields.op), fields, where)
  } catch (err) {
    return (err as Error).message
  }
  return undefined
}
