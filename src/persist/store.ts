import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import type { Logger } from '../log'
import { encodeJobsByLane } from '../queue/listing'
import type { Queue } from '../queue/queue'
import { type WriteFs, realFs, writeFileAtomically } from './atomic'
import { readSnapshotFile } from './snapshot'

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
  }

  /** Loads both files into `queue`; returns how many jobs were restored. */
  load(queue: Queue): number {
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
    if (!existsSync(this.queueFile)) return 0
    try {
      return readSnapshotFile(this.queueFile, { lane: (name) => queue.declareLane(name), job: (job) => queue.restore(job) })
    } catch (err) {
      throw new UnreadableSnapshotError(`${this.queueFile}: ${(err as Error).message}`)
    }
  }

  /**
   * Writes a snapshot of the queue as it is now. Saves run one after another; the returned promise
   * settles when this one is on disk, and rejects (after logging) when it could not be written.
   */
  save(queue: Queue, reason: string): Promise<void> {
    const run = async (): Promise<void> => {
      const started = performance.now()
      const lanes = queue.snapshot()
      const jobs = lanes.reduce((sum, lane) => sum + lane.count, 0)
      try {
        // State first: a crash between the two writes leaves a next_job_num that is only too high.
        const stateText = `${JSON.stringify({ next_job_num: queue.nextJobNum })}\n`
        mkdirSync(path.dirname(this.queueFile), { recursive: true })
        await writeFileAtomically(this.stateFile, [Buffer.from(stateText)], this.fs)
        await writeFileAtomically(this.queueFile, encodeJobsByLane(lanes), this.fs)
      } catch (err) {
        this.status.last_error = `${new Date().toISOString()}: ${(err as Error).message}`
        this.logger.error({ err, file: this.queueFile, reason }, 'snapshot failed; the previous queue.json is intact')
        throw err
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
