import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import type { Logger } from '../log'
import { encodeDeadJobs, encodeJobsByLane } from '../queue/listing'
import type { Queue } from '../queue/queue'
import { hashSchemes } from '../queue/hash'
import type { Job } from '../queue/job'
import { type WriteFs, realFs, writeFileAtomically, writeFilesAtomically } from './atomic'
import { type RestoredJob, restoredHashOf } from '../queue/queue'
import { type DeadJob, type FinishedJob, type JournalState, decodeFinished } from './replay'
import { decodeHold, decodeReport, readSnapshotFile } from './snapshot'
import type { SavedHold } from '../queue/unique'
import type { CronRecord } from '../queue/cron-table'
import { decodeCronRecord, encodeCronRecord } from './cron-records'
import { Progress } from './progress'

/** The journal as a snapshot sees it: started anew when a snapshot is captured, trimmed once it is written. */
export interface Compactable {
  rotate(): number | undefined
  compacted(generation: number): void
  compactAfter(snapshotBytes: number): void
}

/** The files a snapshot writes, in the data directory. */
export const SNAPSHOT_FILES = ['queue.json', 'state.json', 'dead.json'] as const

/** Passes pieces through, adding up their size. */
function* counted(pieces: Iterable<Uint8Array>, total: { bytes: number }): Generator<Uint8Array> {
  for (const piece of pieces) {
    total.bytes += piece.length
    yield piece
  }
}

/** A snapshot that exists but cannot be read: the daemon must not start (and never overwrite it). */
export class UnreadableSnapshotError extends Error {}

export interface SnapshotStatus {
  last_saved_at: string | null
  last_duration_ms: number | null
  last_jobs: number | null
  /** Bytes of the last queue.json written. */
  last_bytes: number | null
  last_error: string | null
  /** Snapshots that failed since start. */
  errors: number
}

function readIfExists(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new UnreadableSnapshotError(`cannot read ${file}: ${(err as Error).message}`)
  }
}

/**
 * `queue.json` (the original's format) plus `state.json`, which keeps what the original format has
 * no room for: the next job number, so numbers keep growing across restarts even when the queue
 * was empty. Both are replaced atomically: a crash mid-write leaves the previous file whole.
 */
export class SnapshotStore {
  readonly queueFile: string
  readonly stateFile: string
  /** Dead jobs of runner lanes, with their last run's report, in queue.json's layout. */
  readonly deadFile: string
  private deadFileExists = false
  /** Dead jobs of the dead.json on disk (job number → hash); see retriedSinceDeadFile. */
  private onDiskDead = new Map<number, string>()
  readonly status: SnapshotStatus = { last_saved_at: null, last_duration_ms: null, last_jobs: null, last_bytes: null, last_error: null, errors: 0 }
  private pending: Promise<void> = Promise.resolve()

  constructor(
    dataDir: string,
    private readonly logger: Logger,
    /** The file system snapshots are written through; tests inject faults here. */
    private readonly fs: WriteFs = realFs,
  ) {
    this.queueFile = path.join(dataDir, 'queue.json')
    this.stateFile = path.join(dataDir, 'state.json')
    this.deadFile = path.join(dataDir, 'dead.json')
  }

  /**
   * Loads the snapshot into `queue`, then what the journal (if given) says happened since; returns
   * the number of jobs restored. Each job is restored at most once, and the newest word on it wins:
   * the journal's last record, then dead.json, then queue.json. dead.json is renamed into place
   * before queue.json (see save), so it is never the older of the two: a job in both died since
   * queue.json was written, and a job retried since the previous dead.json is carried in dead.json
   * too (marked "retried"), so a crash between the two renames neither loses nor doubles a job.
   */
  load(queue: Queue, journal?: JournalState): number {
    const { holds, cron } = this.loadState(queue)
    const dead = this.readDead()
    let restored = 0
    const restore = (job: RestoredJob): void => {
      queue.restore(job)
      restored++
    }
    /** A job the journal mentions is restored from the journal, with this content if it has none. */
    const journalSays = (job: RestoredJob): boolean => journal?.provide(job) === true
    if (existsSync(this.queueFile)) {
      this.logger.info({ file: this.queueFile, bytes: statSync(this.queueFile).size }, 'loading queue')
      const progress = new Progress(this.logger, 'still loading', 'jobs', { file: this.queueFile })
      // Most loads have no dead.json: its three look-ups a job are skipped then (a million jobs, 30-50 ms).
      const deadFileEmpty = dead.dead.size === 0 && dead.finished.size === 0 && dead.retried.size === 0
      const fromQueueFile = (job: RestoredJob): void => {
        progress.tick()
        if (!deadFileEmpty) dead.retried.delete(job.jobNum) // queue.json has it: dead.json's copy is not needed
        if (journalSays(job)) return
        // Otherwise it died or succeeded since (dead.json is newer).
        if (deadFileEmpty || (!dead.dead.has(job.jobNum) && !dead.finished.has(job.jobNum))) restore(job)
      }
      try {
        readSnapshotFile(this.queueFile, { lane: (name) => queue.declareLane(name), job: fromQueueFile })
      } catch (err) {
        throw new UnreadableSnapshotError(`${this.queueFile}: ${(err as Error).message}`)
      }
    }
    for (const { dead: job, report } of dead.dead.values()) if (!journalSays(job)) queue.restoreDead(job, report)
    for (const job of dead.retried.values()) if (!journalSays(job)) restore(job)
    const finished = [...dead.finished.values()].filter(({ finished: job }) => !journalSays(job))
    if (journal !== undefined) {
      for (const [jobNum, said] of journal.jobs) {
        if (said === null) continue
        if (said === 'present') this.logger.warn({ job_num: jobNum }, 'journal: a leased job is neither in the snapshot nor in the journal; skipped')
        else if ('dead' in said) queue.restoreDead(said.dead, said.report)
        else if ('finished' in said) finished.push(said)
        else restore(said)
      }
      queue.reserveJobNumsBelow(journal.highestJobNum + 1)
      for (const [lane, paused] of journal.paused) queue.restorePaused(lane, paused)
    }
    // After the jobs, which hold their own keys: a finished hold never takes a key from a job here.
    // The journal's records are newer than state.json's list (see save), so they go last.
    // Succeeded jobs oldest first, as they are kept (the oldest are forgotten first).
    for (const job of finished.sort((a, b) => a.until - b.until)) queue.restoreFinished(job.finished, job.report, job.result, job.until)
    for (const hold of holds) queue.restoreUniqueHold(hold)
    for (const hold of journal?.uniqueHolds.values() ?? []) queue.restoreUniqueHold(hold)
    for (const record of cron) queue.cron.restore(record.name, record)
    for (const [name, record] of journal?.cron ?? []) queue.cron.restore(name, record)
    // What dead.json holds as dead, and what it carries as retried that queue.json lacks (dead.json
    // was renamed without queue.json): the next dead.json must carry those too, until a queue.json
    // holding them is in place.
    this.onDiskDead = new Map([...dead.dead.values()].map(({ dead: job }) => [job.jobNum, restoredHashOf(job) ?? '']))
    for (const job of dead.retried.values()) this.onDiskDead.set(job.jobNum, restoredHashOf(job) ?? '')
    return restored
  }

  /**
   * state.json: the next job number; and, returned to be restored after the jobs, the unique keys
   * finished jobs hold and the cron entries' records.
   */
  private loadState(queue: Queue): { holds: SavedHold[]; cron: CronRecord[] } {
    const stateText = readIfExists(this.stateFile)
    if (stateText === undefined || stateText.trim() === '') return { holds: [], cron: [] }
    let state: { next_job_num?: unknown; unique_holds?: unknown; cron?: unknown; paused_lanes?: unknown; hash_keys?: unknown }
    try {
      state = JSON.parse(stateText) as typeof state
    } catch (err) {
      throw new UnreadableSnapshotError(`${this.stateFile}: not valid JSON: ${(err as Error).message}`)
    }
    const next = state.next_job_num
    if (typeof next !== 'number' || !Number.isSafeInteger(next) || next < 1) {
      throw new UnreadableSnapshotError(`${this.stateFile}: "next_job_num" must be a positive integer`)
    }
    queue.reserveJobNumsBelow(next)
    const paused = state.paused_lanes ?? []
    if (!Array.isArray(paused) || !paused.every((lane) => typeof lane === 'string')) {
      throw new UnreadableSnapshotError(`${this.stateFile}: "paused_lanes" must be an array of lane names`)
    }
    for (const lane of paused) queue.restorePaused(lane, true)
    const keys = state.hash_keys ?? []
    if (!Array.isArray(keys) || !keys.every((key) => typeof key === 'string' && hashSchemes.adopt(key))) {
      throw new UnreadableSnapshotError(`${this.stateFile}: "hash_keys" must be an array of 56-digit lowercase hex keys`)
    }
    const { unique_holds: holds = [], cron = [] } = state
    if (!Array.isArray(holds) || !Array.isArray(cron)) throw new UnreadableSnapshotError(`${this.stateFile}: "unique_holds" and "cron" must be lists`)
    try {
      return { holds: holds.map((raw, i) => decodeHold(raw, `unique_holds[${i}]`)), cron: cron.map((raw, i) => decodeCronRecord(raw, `cron[${i}]`)) }
    } catch (err) {
      throw new UnreadableSnapshotError(`${this.stateFile}: ${(err as Error).message}`)
    }
  }

  /**
   * dead.json: dead jobs with their reports, jobs retried since the dead.json before it, and
   * succeeded jobs kept for GET /job (with `kept_until`).
   */
  private readDead(): { dead: Map<number, DeadJob>; retried: Map<number, RestoredJob>; finished: Map<number, FinishedJob> } {
    const dead = new Map<number, DeadJob>()
    const retried = new Map<number, RestoredJob>()
    const finished = new Map<number, FinishedJob>()
    if (!existsSync(this.deadFile)) return { dead, retried, finished }
    this.deadFileExists = true
    const job = (restored: RestoredJob, raw: Record<string, unknown>): void => {
      if (raw.retried === true) retried.set(restored.jobNum, restored)
      else if (raw.kept_until !== undefined) finished.set(restored.jobNum, decodeFinished(raw, restored.lane, `${this.deadFile}: job ${restored.jobNum}`))
      else dead.set(restored.jobNum, { dead: restored, report: decodeReport(raw, `${this.deadFile}: job ${restored.jobNum}`) })
    }
    try {
      readSnapshotFile(this.deadFile, { lane: () => undefined, job })
    } catch (err) {
      throw new UnreadableSnapshotError(`${this.deadFile}: ${(err as Error).message}`)
    }
    return { dead, retried, finished }
  }

  /**
   * Writes a snapshot of the queue as it is now. Saves run one after another; the returned promise
   * settles when this one is on disk, and rejects (after logging) when it could not be written.
   */
  save(queue: Queue, reason: string, journal?: Compactable): Promise<void> {
    const run = async (): Promise<void> => {
      const started = performance.now()
      const lanes = queue.snapshot()
      // Paused lanes are kept in state.json (queue.json has no room for them), captured with the jobs.
      const paused = queue.pausedLanes()
      const holds = queue.finishedUniqueHolds()
      const cron = queue.cron.all()
      const dead = queue.allDead()
      const finished = queue.allFinished()
      const retried = this.retriedSinceDeadFile(queue, dead)
      // From here on the journal's new generation holds exactly what this snapshot lacks.
      const generation = journal?.rotate()
      const jobs = lanes.reduce((sum, lane) => sum + lane.count, 0)
      const size = { bytes: 0 }
      const deadNow = new Map([...dead.values()].flat().map((job) => [job.jobNum, job.hash]))
      try {
        // State first: a crash between the two writes leaves a next_job_num that is only too high.
        mkdirSync(path.dirname(this.queueFile), { recursive: true })
        await writeFileAtomically(this.stateFile, encodeState(queue.nextJobNum, holds, cron, paused, hashSchemes.keys()), this.fs)
        const files = [{ file: this.queueFile, pieces: counted(encodeJobsByLane(lanes), size) }]
        // dead.json goes with queue.json, renamed first (see load): a job moves between the two
        // when it dies or is retried.
        if (dead.size > 0 || retried.length > 0 || finished.length > 0 || this.deadFileExists) files.unshift({ file: this.deadFile, pieces: encodeDeadJobs(dead, retried, finished) })
        await writeFilesAtomically(files, this.fs)
        this.deadFileExists = files.length > 1
        this.onDiskDead = deadNow
      } catch (err) {
        // dead.json may have been replaced without queue.json: remember both sets of dead jobs.
        for (const [jobNum, hash] of deadNow) this.onDiskDead.set(jobNum, hash)
        this.status.last_error = `${new Date().toISOString()}: ${(err as Error).message}`
        this.status.errors++
        this.logger.error({ err, file: this.queueFile, reason }, 'snapshot failed; the previous queue.json is intact')
        throw err
      }
      if (generation !== undefined) {
        journal!.compacted(generation)
        journal!.compactAfter(size.bytes)
      }
      const duration = Math.round(performance.now() - started)
      Object.assign(this.status, { last_saved_at: new Date().toISOString(), last_duration_ms: duration, last_jobs: jobs, last_bytes: size.bytes, last_error: null })
      this.logger.info({ file: this.queueFile, jobs, duration_ms: duration, reason }, 'snapshot written')
    }
    const next = this.pending.then(run, run)
    this.pending = next.catch(() => undefined)
    return next
  }

  /**
   * Jobs dead in the dead.json on disk that are back in a lane now (retried): the next dead.json
   * carries them too, so a crash after it is renamed and before queue.json is loses none of them.
   */
  private retriedSinceDeadFile(queue: Queue, dead: Map<string, Job[]>): Job[] {
    if (this.onDiskDead.size === 0) return []
    const deadNow = new Set([...dead.values()].flat().map((job) => job.jobNum))
    const retried: Job[] = []
    for (const [jobNum, hash] of this.onDiskDead) {
      if (deadNow.has(jobNum)) continue
      const found = queue.findJob(hash)
      if (found !== undefined && found.job.jobNum === jobNum && found.state !== 'dead' && found.state !== 'succeeded') retried.push(found.job)
    }
    return retried
  }
}

/**
 * state.json: `{"next_job_num": N, "hash_keys": [...], "paused_lanes": [...], "cron": [...], "unique_holds": [...]}`,
 * a hold per line, in pieces of about 256 KiB. `hash_keys` are the hash schemes of this process and
 * of the earlier ones whose jobs are still here (see HashSchemes): the next process recognises
 * their hashes.
 */
function* encodeState(nextJobNum: number, holds: SavedHold[], cron: CronRecord[], paused: string[], hashKeys: string[]): Generator<Buffer> {
  let text = `{"next_job_num":${nextJobNum},"hash_keys":${JSON.stringify(hashKeys)}`
  if (paused.length > 0) text += `,"paused_lanes":${JSON.stringify(paused)}`
  if (cron.length > 0) text += `,"cron":[${cron.map((record) => `\n${JSON.stringify(encodeCronRecord(record))}`).join(',')}\n]`
  if (holds.length > 0) {
    text += ',"unique_holds":['
    for (let i = 0; i < holds.length; i++) {
      const { lane, key, hash, jobNum, until } = holds[i]!
      text += `${i === 0 ? '' : ','}\n${JSON.stringify({ lane, key, hash, job_num: jobNum, until })}`
      if (text.length >= 256 * 1024) {
        yield Buffer.from(text)
        text = ''
      }
    }
    text += '\n]'
  }
  yield Buffer.from(`${text}}\n`)
}
