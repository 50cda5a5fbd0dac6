import { closeSync, fdatasync, fsyncSync, openSync, readdirSync, unlinkSync, write } from 'node:fs'
import path from 'node:path'
import { crc32 } from 'node:zlib'
import type { FSYNC_MODES } from '../config'
import type { Logger } from '../log'
import { ByteWriter } from '../queue/bytes'
import type { ChangeLog, ReturnReason } from '../queue/changes'
import { type Job, writeJobMembers } from '../queue/job'

export type FsyncMode = (typeof FSYNC_MODES)[number]

/** `journal.00000042.log`: generation 42. Generations sort by name. */
const FILE_PATTERN = /^journal\.(\d{8,})\.log$/

export function journalFile(dir: string, generation: number): string {
  return path.join(dir, `journal.${String(generation).padStart(8, '0')}.log`)
}

/** The journal generations present in `dir`, oldest first. */
export function journalGenerations(dir: string): number[] {
  return readdirSync(dir)
    .map((name) => FILE_PATTERN.exec(name))
    .filter((m) => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b)
}

/** The calls the journal makes on its files; tests pass one that fails (disk full, ...). */
export interface JournalFs {
  open(file: string): number
  write(fd: number, data: Uint8Array, done: (err: Error | null) => void): void
  sync(fd: number, done: (err: Error | null) => void): void
  close(fd: number): void
  syncDir(dir: string): void
}

export const realJournalFs: JournalFs = {
  open: (file) => openSync(file, 'a', 0o644),
  write: (fd, data, done) => writeAll(fd, data, done),
  sync: (fd, done) => fdatasync(fd, done),
  close: (fd) => closeSync(fd),
  syncDir(dir) {
    const fd = openSync(dir, 'r')
    try {
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
  },
}

function writeAll(fd: number, data: Uint8Array, done: (err: Error | null) => void): void {
  write(fd, data, 0, data.length, null, (err, written) => {
    if (err !== null) done(err)
    else if (written < data.length) writeAll(fd, data.subarray(written), done)
    else done(null)
  })
}

/** Called once the records appended before it are written (and synced, as the mode says). */
export type DurableCallback = (err: Error | undefined) => void

/** Records appended in one stretch, bound for one generation's file. */
class Batch {
  readonly out = new ByteWriter(64 * 1024)
  readonly callbacks: DurableCallback[] = []
  constructor(readonly generation: number) {}
  get empty(): boolean {
    return this.out.pos === 0 && this.callbacks.length === 0
  }
}

export interface JournalOptions {
  dir: string
  fsync: FsyncMode
  /** With fsync "interval": at most this long between a write and its fsync. */
  fsyncMs: number
  /** The generation to append to first (one past any on disk). */
  generation: number
  /** Past this many bytes in one generation, `onFull` asks for a compaction (once per generation). */
  maxBytes: number
  onFull: () => void
  /** A write or fsync failed: the journal refuses changes until a compaction succeeds. */
  onFailure: (err: Error) => void
  logger: Logger
  fs?: JournalFs
}

/**
 * The append-only journal: one line per change, `<crc32 of the JSON, 8 hex digits> <JSON>\n`.
 * Records of one event-loop turn form a batch; one batch at a time is written (and synced, in
 * "always" mode) while the next one gathers, so the cost of an fsync is shared by every request
 * that arrived during the previous one (group commit). Replies wait, through `whenDurable`, until
 * their record is written: in every mode a process crash loses nothing that was answered.
 *
 * Each snapshot starts a new generation (`rotate`); once the snapshot is on disk the older
 * generations are deleted (`compacted`).
 */
export class Journal implements ChangeLog {
  private readonly fs: JournalFs
  private readonly batches: Batch[]
  private fd: number | undefined
  private fdGeneration = -1
  private flushing = false
  private flushArmed = false
  private lastSync = 0
  private syncTimer: NodeJS.Timeout | undefined
  private bytesInGeneration = 0
  private askedForCompaction = false
  private failure: Error | undefined
  /** The generation whose write failed: its later records are not written (a snapshot covers them). */
  private failedGeneration = -1

  constructor(private readonly options: JournalOptions) {
    this.fs = options.fs ?? realJournalFs
    this.batches = [new Batch(options.generation)]
  }

  /** True when every mutating reply must wait for `whenDurable`. */
  readonly deferReplies = true

  /** The error that broke the journal, while it is broken. */
  get broken(): Error | undefined {
    return this.failure
  }

  get generation(): number {
    return this.open.generation
  }

  scheduled(job: Job): void {
    this.jobRecord('schedule', job)
  }

  taken(job: Job): void {
    this.numberRecord('take', job)
  }

  leased(job: Job): void {
    this.numberRecord('lease', job)
  }

  acked(job: Job): void {
    this.numberRecord('ack', job)
  }

  returned(job: Job, _reason: ReturnReason): void {
    this.jobRecord('return', job)
  }

  /** Runs `callback` once everything appended so far is written (and synced, per the mode). */
  whenDurable(callback: DurableCallback): void {
    this.open.callbacks.push(callback)
    this.arm()
  }

  /**
   * Starts a new generation: records appended from now on go to its file. Called at the moment a
   * snapshot is captured, so the snapshot holds exactly what the older generations describe.
   */
  rotate(): number {
    const next = this.open.generation + 1
    this.batches.push(new Batch(next))
    this.bytesInGeneration = 0
    this.askedForCompaction = false
    this.arm()
    return next
  }

  /**
   * A snapshot captured when `generation` began is on disk: older generations are deleted once
   * written, and a broken journal is whole again (the snapshot holds what its records missed).
   */
  compacted(generation: number): void {
    this.whenDurable((err) => {
      if (err !== undefined) return
      for (const old of journalGenerations(this.options.dir)) {
        if (old < generation) unlinkSync(journalFile(this.options.dir, old))
      }
      if (this.failure !== undefined) {
        this.options.logger.warn({ generation }, 'journal working again after a snapshot')
        this.failure = undefined
      }
    })
  }

  /** Writes what is pending, syncs, and closes the file (at shutdown). */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.whenDurable(() => resolve()))
    clearTimeout(this.syncTimer)
    if (this.fd !== undefined && this.options.fsync !== 'never' && this.failure === undefined) {
      await new Promise<void>((resolve) => this.fs.sync(this.fd!, () => resolve()))
    }
    if (this.fd !== undefined) this.fs.close(this.fd)
    this.fd = undefined
  }

  private get open(): Batch {
    return this.batches[this.batches.length - 1]!
  }

  private jobRecord(op: string, job: Job): void {
    const out = this.open.out
    const start = this.startRecord(out, op)
    writeJobMembers(job, out)
    this.endRecord(out, start)
  }

  private numberRecord(op: string, job: Job): void {
    const out = this.open.out
    const start = this.startRecord(out, op)
    out.ascii(',"job_num":')
    out.uint(job.jobNum)
    this.endRecord(out, start)
  }

  /** Leaves room for the checksum; the record's JSON starts right after it. */
  private startRecord(out: ByteWriter, op: string): number {
    out.reserve(64)
    out.pos += 9 // "xxxxxxxx "
    const start = out.pos
    out.ascii(`{"op":"${op}"`)
    if (op === 'schedule' || op === 'return') out.ascii(',')
    return start
  }

  private endRecord(out: ByteWriter, start: number): void {
    out.reserve(2)
    out.ascii('}')
    const sum = crc32(out.buf.subarray(start, out.pos))
    const end = out.pos
    out.pos = start - 9
    out.hex32(sum)
    out.ascii(' ')
    out.pos = end
    out.ascii('\n')
    this.bytesInGeneration += out.pos - start + 9
    if (!this.askedForCompaction && this.bytesInGeneration > this.options.maxBytes) {
      this.askedForCompaction = true
      this.options.onFull()
    }
    this.arm()
  }

  /** Flushes after the current turn: everything appended in it goes out as one batch. */
  private arm(): void {
    if (this.flushArmed || this.flushing) return
    this.flushArmed = true
    setImmediate(() => {
      this.flushArmed = false
      this.flushNext()
    })
  }

  /** The next batch to write, or undefined when there is nothing to do. */
  private takeBatch(): Batch | undefined {
    if (this.batches.length > 1) return this.batches.shift()
    const batch = this.batches[0]!
    if (batch.empty) return undefined
    this.batches[0] = new Batch(batch.generation)
    return batch
  }

  private flushNext(): void {
    const batch = this.takeBatch()
    if (batch === undefined) return
    this.flushing = true
    const done = (err: Error | null): void => {
      this.flushing = false
      if (err !== null) this.fail(err, batch.generation)
      const outcome = err ?? (batch.generation <= this.failedGeneration ? this.failure : undefined)
      for (const callback of batch.callbacks) callback(outcome ?? undefined)
      this.flushNext()
    }
    if (this.failure !== undefined && batch.generation <= this.failedGeneration) {
      // That generation is broken: its records are not written; the next snapshot covers them.
      done(null)
      return
    }
    try {
      this.useGeneration(batch.generation)
    } catch (err) {
      done(err as Error)
      return
    }
    const data = batch.out.buf.subarray(0, batch.out.pos)
    const afterWrite = (err: Error | null): void => {
      if (err !== null || !this.syncNow()) done(err)
      else this.fs.sync(this.fd!, done)
    }
    if (data.length === 0) afterWrite(null)
    else this.fs.write(this.fd!, data, afterWrite)
  }

  /** Whether this flush syncs: always in "always", at most every fsyncMs in "interval". */
  private syncNow(): boolean {
    const { fsync, fsyncMs } = this.options
    if (fsync === 'always') return true
    if (fsync === 'never') return false
    const now = Date.now()
    if (now - this.lastSync >= fsyncMs) {
      this.lastSync = now
      return true
    }
    // Make sure the last writes of a quiet spell are synced too.
    this.syncTimer ??= setTimeout(() => {
      this.syncTimer = undefined
      this.whenDurable(() => undefined)
    }, fsyncMs)
    return false
  }

  /** Opens the generation's file, closing (after syncing) the previous one. */
  private useGeneration(generation: number): void {
    if (this.fdGeneration === generation) return
    if (this.fd !== undefined) {
      if (this.options.fsync !== 'never') fsyncSync(this.fd)
      this.fs.close(this.fd)
      this.fdGeneration = -1
      this.fd = undefined
    }
    this.fd = this.fs.open(journalFile(this.options.dir, generation))
    this.fdGeneration = generation
    // The new file's directory entry must survive a crash as well as its contents.
    if (this.options.fsync !== 'never') this.fs.syncDir(this.options.dir)
  }

  private fail(err: Error, generation: number): void {
    this.failedGeneration = Math.max(this.failedGeneration, generation)
    if (this.fd !== undefined && this.fdGeneration === generation) {
      this.fs.close(this.fd)
      this.fd = undefined
      this.fdGeneration = -1
    }
    if (this.failure !== undefined) return
    this.failure = err
    this.options.logger.error({ err, generation }, 'journal write failed; changes are refused until a snapshot succeeds')
    this.options.onFailure(err)
  }
}
