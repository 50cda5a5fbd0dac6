import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import type { Logger } from '../log'
import { encodeDeadJobs, encodeJobsByLane } from '../queue/listing'
import type { Queue } from '../queue/queue'
import { type WriteFs, realFs, writeFileAtomically, writeFilesAtomically } from './atomic'
import type { RestoredJob } from '../queue/queue'
import type { JournalState } from './replay'
import { decodeReport, readSnapshotFile } from './snapshot'

/** The journal as a snapshot sees it: started anew when a snapshot is captured, trimmed once it is written. */
export interface Compactable {
  rotate(): number
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
  last_error: string | null
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
  readonly status: SnapshotStatus = { last_saved_at: null, last_duration_ms: null, last_jobs: null, last_error: null }
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
   * Loads both files into `queue`, then what the journal (if given) says happened since: jobs it
   * says are gone are skipped, jobs it says are there are restored once. Returns the job count.
   */
  load(queue: Queue, journal?: JournalState): number {
    const stateText = readIfExists(this.stateFile)
    if (stateText !== undefined && stateText.trim() !== '') {
      let next: unknown
      try {
        next = (JSON.parse(stateText) as { next_job_num?: unknown }).next_job_num
      } catch (err) {
        throw new UnreadableSnapshotError(`${this.stateFile}: not valid JSON: ${(err as Error).message}`)
      }
      if (typeof next !== 'number' || !Number.isSafeInteger(next) || next < 1) {
        throw new UnreadableSnapshotError(`${this.stateFile}: "next_job_num" must be a positive integer`)
      }
      queue.reserveJobNumsBelow(next)
    }
    let restored = 0
    const restore = (job: RestoredJob): void => {
      queue.restore(job)
      restored++
    }
    if (existsSync(this.queueFile)) {
      const fromSnapshot = (job: RestoredJob): void => {
        const said = journal?.jobs.get(job.jobNum)
        if (said === undefined) return restore(job)
        if (said === null || (typeof said === 'object' && 'dead' in said)) return // gone or dead since the snapshot
        journal!.jobs.delete(job.jobNum) // there, and the snapshot's copy is it
        restore(job)
      }
      try {
        readSnapshotFile(this.queueFile, { lane: (name) => queue.declareLane(name), job: fromSnapshot })
      } catch (err) {
        throw new UnreadableSnapshotError(`${this.queueFile}: ${(err as Error).message}`)
      }
    }
    this.loadDead(queue, journal, restore)
    if (journal !== undefined) {
      for (const [jobNum, job] of journal.jobs) {
        if (job === null) continue
        if (job === 'present') this.logger.warn({ job_num: jobNum }, 'journal: a leased job is neither in the snapshot nor in the journal; skipped')
        else if ('dead' in job) queue.restoreDead(job.dead, job.report)
        else restore(job)
      }
      queue.reserveJobNumsBelow(journal.highestJobNum + 1)
    }
    return restored
  }

  /** Dead jobs from `dead.json`, unless the journal says what became of them since. */
  private loadDead(queue: Queue, journal: JournalState | undefined, restore: (job: RestoredJob) => void): void {
    if (!existsSync(this.deadFile)) return
    this.deadFileExists = true
    const fromSnapshot = (job: RestoredJob, raw: Record<string, unknown>): void => {
      const said = journal?.jobs.get(job.jobNum)
      if (said === undefined) {
        queue.restoreDead(job, decodeReport(raw, `${this.deadFile}: job ${job.jobNum}`))
      } else if (said === 'present') {
        // Retried and leased since the snapshot: queued again, and this is its content.
        journal!.jobs.delete(job.jobNum)
        restore(job)
      }
      // Otherwise the journal has the job's own last record (gone, queued or dead again).
    }
    try {
      readSnapshotFile(this.deadFile, { lane: () => undefined, job: fromSnapshot })
    } catch (err) {
      throw new UnreadableSnapshotError(`${this.deadFile}: ${(err as Error).message}`)
    }
  }

  /**
   * Writes a snapshot of the queue as it is now. Saves run one after another; the returned promise
   * settles when this one is on disk, and rejects (after logging) when it could not be written.
   */
  save(queue: Queue, reason: string, journal?: Compactable): Promise<void> {
    const run = async (): Promise<void> => {
      const started = performance.now()
      const lanes = queue.snapshot()
      const dead = queue.allDead()
      // From here on the journal's new generation holds exactly what this snapshot lacks.
      const generation = journal?.rotate()
      const jobs = lanes.reduce((sum, lane) => sum + lane.count, 0)
      const size = { bytes: 0 }
      try {
        // State first: a crash between the two writes leaves a next_job_num that is only too high.
        const stateText = `${JSON.stringify({ next_job_num: queue.nextJobNum })}\n`
        mkdirSync(path.dirname(this.queueFile), { recursive: true })
        await writeFileAtomically(this.stateFile, [Buffer.from(stateText)], this.fs)
        const files = [{ file: this.queueFile, pieces: counted(encodeJobsByLane(lanes), size) }]
        // dead.json goes with queue.json: a job moves between the two when it dies or is retried.
        if (dead.size > 0 || this.deadFileExists) files.push({ file: this.deadFile, pieces: encodeDeadJobs(dead) })
        await writeFilesAtomically(files, this.fs)
        this.deadFileExists = files.length > 1
      } catch (err) {
        this.status.last_error = `${new Date().toISOString()}: ${(err as Error).message}`
        this.logger.error({ err, file: this.queueFile, reason }, 'snapshot failed; the previous queue.json is intact')
        throw err
      }
      if (generation !== undefined) {
        journal!.compacted(generation)
        journal!.compactAfter(size.bytes)
      }
      const duration = Math.round(performance.now() - started)
      Object.assign(this.status, { last_saved_at: new Date().toISOString(), last_duration_ms: duration, last_jobs: jobs, last_error: null })
      this.logger.info({ file: this.queueFile, jobs, duration_ms: duration, reason }, 'snapshot written')
    }
    const next = this.pending.then(run, run)
    this.pending = next.catch(() => undefined)
    return next
  }
}
