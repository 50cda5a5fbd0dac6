import { closeSync, fdatasync, fsyncSync, openSync, readdirSync, unlinkSync, writeSync } from 'node:fs'
import path from 'node:path'
import { crc32 } from 'node:zlib'
import type { FSYNC_MODES } from '../config'
import type { Logger } from '../log'
import { ByteWriter, CLOSE_BRACE, jsonStringBound } from '../queue/bytes'
import type { ChangeLog, ReturnReason } from '../queue/changes'
import { type Job, writeFinishedMembers, writeJobMembers, writeReportMembers } from '../queue/job'
import type { SavedHold } from '../queue/unique'
import type { CronRecord } from '../queue/cron-table'
import { encodeCronRecord } from './cron-records'

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
  write(fd: number, data: Uint8Array): void
  sync(fd: number, done: (err: Error | null) => void): void
  /** fsync on the spot (when a file is left for the next one, and at close). */
  syncNow(fd: number): void
  close(fd: number): void
  syncDir(dir: string): void
}

export const realJournalFs: JournalFs = {
  open: (file) => openSync(file, 'a', 0o644),
  write: (fd, data) => {
    for (let off = 0; off < data.length; ) off += writeSync(fd, data, off)
  },
  sync: (fd, done) => fdatasync(fd, done),
  syncNow: (fd) => fsyncSync(fd),
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


/**
 * The start of each kind of record, `{"op":"…"` and what follows up to its first value, as bytes
 * made once: copying them is one typed-array read a byte, where writing the text with
 * `ByteWriter.ascii` loaded `charCodeAt` through a generic inline-cache call in the daemon (perf:
 * Builtins_LoadIC under the journal's records), as it did in the reply writer (see ByteWriter.bytes).
 */
function recordStarts<const Op extends string>(ops: readonly Op[], then: string): Record<Op, Buffer> {
  return Object.fromEntries(ops.map((op) => [op, Buffer.from(`{"op":"${op}"${then}`, 'latin1')])) as Record<Op, Buffer>
}
/** Records followed by a job's members (`"job_num":…`, see writeJobMembers). */
const JOB_RECORD = recordStarts(['schedule', 'return', 'bury', 'finish'], ',')
/** Records of a job's number alone. */
const NUMBER_RECORD = recordStarts(['take', 'lease', 'ack', 'delete'], ',"job_num":')
const LANE_RECORD = recordStarts(['pause', 'resume'], ',"lane":')
/** Records of rare kinds, whose members JSON.stringify writes (see fieldsRecord). */
const FIELDS_RECORD = recordStarts(['unique', 'cron'], '')
const SPACE = 0x20
const NEWLINE = 0x0a

/** fdatasyncs that may run at once (see startSync). */
const MAX_SYNCS = 2

/** Called once the records appended before it are written (and synced, as the mode says). */
export type DurableCallback = (err: Error | undefined) => void

/**
 * An fdatasync of one generation's file and the callbacks waiting for it. Callbacks answer in the
 * order of the records: a newer file's wait for the fdatasyncs of older files that are still under
 * way (a compaction begins a file while the old one syncs), and hear of their failure.
 */
interface SyncUnderway {
  readonly generation: number
  readonly callbacks: DurableCallback[]
  /** Its own fdatasync's outcome, once ended. */
  outcome: Error | undefined
}

/** Writers of written batches, reused: a batch per event-loop turn would otherwise allocate 64 KiB. */
const spareWriters: ByteWriter[] = []

/** Records appended in one stretch, bound for one generation's file. */
class Batch {
  readonly out = spareWriters.pop() ?? new ByteWriter(64 * 1024)
  readonly callbacks: DurableCallback[] = []
  constructor(
    readonly generation: number,
    /** The generation's file, opened when the generation began (see rotate). */
    readonly fd?: number,
  ) {}

  /** Hands the writer back for another batch (its bytes are written by now). */
  recycle(): void {
    this.out.pos = 0
    if (spareWriters.length < 4 && this.out.buf.length <= 1024 * 1024) spareWriters.push(this.out)
  }
  get empty(): boolean {
    return this.out.pos === 0 && this.callbacks.length === 0
  }
}

/** Counters of what the journal did since start, for metrics. */
export interface JournalStats {
  /** Bytes in the current generation's file. */
  bytes: number
  writtenBytes: number
  fsyncs: number
  fsyncMsTotal: number
  fsyncMsMax: number
  /** Writes and fsyncs that failed. */
  errors: number
}

export interface JournalOptions {
  dir: string
  fsync: FsyncMode
  /** With fsync "interval": at most this long between a write and its fsync. */
  fsyncMs: number
  /** The generation to append to first (one past any on disk). */
  generation: number
  /**
   * Past this many bytes in one generation, `onFull` asks for a compaction (once per generation);
   * see `compactAfter` for how the threshold follows the snapshot's size.
   */
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
  private flushArmed = false
  /** fdatasyncs running on the thread pool (at most MAX_SYNCS at a time). */
  private syncing = 0
  /** Written, waiting for the next fdatasync ("always" mode). */
  private unsynced: DurableCallback[] = []
  /** Run when the running fdatasync ends (close and rotation wait for it). */
  private afterSync: (() => void)[] = []
  private lastSync = 0
  /** Bytes were written since the last fdatasync began. */
  private dirty = false
  /** An fdatasync was asked for while MAX_SYNCS were running: start it when one ends. */
  private syncOwed = false
  private syncTimer: NodeJS.Timeout | undefined
  private bytesInGeneration = 0
  private askedForCompaction = false
  private compactAt: number
  private failure: Error | undefined
  /** The generation whose write failed: its later records are not written (a snapshot covers them). */
  private failedGeneration = -1
  /** The newest generation whose fdatasync failed: nothing in it is trusted as synced. */
  private syncFailedGeneration = -1
  /** fdatasyncs running on each file descriptor: a file left behind is closed once they end. */
  private readonly syncsOn = new Map<number, number>()
  /** fdatasyncs under way, oldest first, with the callbacks each will answer. */
  private readonly underway: SyncUnderway[] = []
  /** Callbacks of a newer file's ended fdatasync, held until those of older files under way have ended. */
  private readonly held: SyncUnderway[] = []
  private readonly retired = new Set<number>()

  /** Opens the first generation's file: a journal that cannot be written stops the start. */
  constructor(private readonly options: JournalOptions) {
    this.fs = options.fs ?? realJournalFs
    this.compactAt = options.maxBytes
    this.batches = [new Batch(options.generation, this.openGeneration(options.generation))]
  }

  private readonly counters = { writtenBytes: 0, fsyncs: 0, fsyncMsTotal: 0, fsyncMsMax: 0, errors: 0 }

  /** True when every mutating reply must wait for `whenDurable`. */
  readonly deferReplies = true

  /** The error that broke the journal, while it is broken. */
  get broken(): Error | undefined {
    return this.failure
  }

  get generation(): number {
    return this.open.generation
  }

  stats(): JournalStats {
    return { bytes: this.bytesInGeneration, ...this.counters }
  }

  scheduled(job: Job): void {
    this.jobRecord(JOB_RECORD.schedule, job)
  }

  taken(job: Job): void {
    this.numberRecord(NUMBER_RECORD.take, job)
  }

  leased(job: Job): void {
    this.numberRecord(NUMBER_RECORD.lease, job)
  }

  acked(job: Job): void {
    this.numberRecord(NUMBER_RECORD.ack, job)
  }

  returned(job: Job, _reason: ReturnReason): void {
    this.jobRecord(JOB_RECORD.return, job)
  }

  buried(job: Job): void {
    this.jobRecord(JOB_RECORD.bury, job)
  }

  finished(job: Job, until: number): void {
    const out = this.open.out
    const start = this.startRecord(out, JOB_RECORD.finish)
    writeFinishedMembers(job, until, out)
    this.endRecord(out, start)
  }

  deleted(job: Job): void {
    this.numberRecord(NUMBER_RECORD.delete, job)
  }

  lanePaused(lane: string, paused: boolean): void {
    const out = this.open.out
    const start = this.startRecord(out, paused ? LANE_RECORD.pause : LANE_RECORD.resume)
    out.reserve(jsonStringBound(lane))
    out.jsonString(lane)
    this.endRecord(out, start)
  }

  uniqueHeld({ lane, key, hash, jobNum, until }: SavedHold): void {
    this.fieldsRecord(FIELDS_RECORD.unique, { lane, key, hash, job_num: jobNum, until })
  }

  cronChanged(name: string, record: CronRecord | undefined): void {
    this.fieldsRecord(FIELDS_RECORD.cron, { name, record: record === undefined ? null : encodeCronRecord(record) })
  }

  /** Runs `callback` once everything appended so far is written (and synced, per the mode). */
  whenDurable(callback: DurableCallback): void {
    this.open.callbacks.push(callback)
    this.arm()
  }

  /**
   * Writes what was appended so far now instead of at the end of the turn: callbacks that wait
   * only for the write ("interval" and "never" mode) run before this returns; "always" mode's start
   * their fdatasync sooner.
   */
  writeNow(): void {
    this.flush()
  }

  /**
   * Starts a new generation: records appended from now on go to its file. Called at the moment a
   * snapshot is captured, so the snapshot holds exactly what the older generations describe.
   * Returns undefined when the new file cannot be created (a read-only or full disk): the journal
   * then goes on appending to the file it has, and that snapshot compacts nothing.
   */
  rotate(): number | undefined {
    const next = this.open.generation + 1
    let fd: number
    try {
      fd = this.openGeneration(next)
    } catch (err) {
      this.options.logger.warn({ err, generation: next }, 'journal: cannot start a new file; appending to the current one, which a later snapshot will compact')
      // Ask again only after as many bytes more, not at every record.
      this.compactAt = this.bytesInGeneration + this.options.maxBytes
      this.askedForCompaction = false
      return undefined
    }
    this.batches.push(new Batch(next, fd))
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
      // Runs inside the journal's loop over a sync's callbacks: a file that cannot be deleted is
      // logged and left for the next compaction (replaying records the snapshot already holds does
      // no harm, see JournalState), not thrown past the other callbacks of that sync.
      try {
        for (const old of journalGenerations(this.options.dir)) if (old < generation) unlinkSync(journalFile(this.options.dir, old))
      } catch (err) {
        this.options.logger.warn({ err, generation }, 'journal: cannot delete the files this snapshot compacted; they are left for the next compaction')
      }
      // Only a failure in a file the snapshot holds is mended: a callback may be answered after a
      // newer file failed (held behind an older file's fdatasync, see syncFile).
      if (this.failure !== undefined && this.failedGeneration < generation) {
        this.options.logger.warn({ generation }, 'journal working again after a snapshot')
        this.failure = undefined
      }
    })
  }

  /**
   * A snapshot of `snapshotBytes` was written: the next compaction comes once the journal is at
   * least that large too (and at least maxBytes), as Redis rewrites its AOF when it has doubled.
   * So a compaction's cost is always paid for by as many bytes of journal: a large queue is not
   * rewritten whole every few megabytes.
   */
  compactAfter(snapshotBytes: number): void {
    this.compactAt = Math.max(this.options.maxBytes, snapshotBytes)
  }

  /** Writes what is pending, syncs, and closes the file (at shutdown). */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.whenDurable(() => resolve()))
    clearTimeout(this.syncTimer)
    if (this.syncing > 0) await new Promise<void>((resolve) => this.afterSync.push(resolve))
    // A generation begun by the last snapshot and never written to: its (empty) file stays.
    for (const batch of this.batches) if (batch.fd !== undefined && batch.fd !== this.fd) this.fs.close(batch.fd)
    if (this.fd === undefined) return
    if (this.options.fsync !== 'never' && this.fdGeneration > this.syncFailedGeneration) this.fs.syncNow(this.fd)
    this.fs.close(this.fd)
    this.fd = undefined
  }

  private get open(): Batch {
    return this.batches[this.batches.length - 1]!
  }

  private jobRecord(op: Buffer, job: Job): void {
    const out = this.open.out
    const start = this.startRecord(out, op)
    writeJobMembers(job, out)
    if (op === JOB_RECORD.bury) writeReportMembers(job.report!, out)
    this.endRecord(out, start)
  }

  private numberRecord(op: Buffer, job: Job): void {
    const out = this.open.out
    const start = this.startRecord(out, op)
    out.uint(job.jobNum)
    this.endRecord(out, start)
  }

  /** A record of a rare kind (not one per job): its fields as JSON.stringify writes them. */
  private fieldsRecord(op: Buffer, fields: Record<string, unknown>): void {
    const out = this.open.out
    const start = this.startRecord(out, op)
    const members = Buffer.from(`,${JSON.stringify(fields).slice(1, -1)}`)
    out.reserve(members.length + 2)
    out.bytes(members)
    this.endRecord(out, start)
  }

  /** Leaves room for the checksum; the record's JSON starts right after it, with `op` (one of the starts above). */
  private startRecord(out: ByteWriter, op: Buffer): number {
    out.reserve(64)
    out.pos += 9 // "xxxxxxxx "
    const start = out.pos
    out.bytes(op)
    return start
  }

  private endRecord(out: ByteWriter, start: number): void {
    out.reserve(2)
    out.byte(CLOSE_BRACE)
    const sum = crc32(out.buf.subarray(start, out.pos))
    const end = out.pos
    out.pos = start - 9
    out.hex32(sum)
    out.byte(SPACE)
    out.pos = end
    out.byte(NEWLINE)
    this.bytesInGeneration += out.pos - start + 9
    if (!this.askedForCompaction && this.bytesInGeneration > this.compactAt) {
      this.askedForCompaction = true
      this.options.onFull()
    }
    this.arm()
  }

  /** Flushes after the current turn: everything appended in it goes out as one batch. */
  private arm(): void {
    if (this.flushArmed) return
    this.flushArmed = true
    setImmediate(() => {
      this.flushArmed = false
      this.flush()
    })
  }

  /**
   * Writes every pending batch (a write to the page cache: microseconds, so it is done in line),
   * then answers its callbacks: at once in "interval" and "never" mode, after the next fdatasync in
   * "always" mode. One fdatasync runs at a time, on the thread pool, while the loop goes on taking
   * requests; when it ends, everything written meanwhile is synced by the next one (group commit).
   */
  private flush(): void {
    for (;;) {
      const next = this.batches.length > 1 || !this.batches[0]!.empty ? this.batches[0]! : undefined
      if (next === undefined) break
      const batch = this.takeBatch()!
      const err = this.writeBatch(batch)
      batch.recycle()
      if (err !== undefined) {
        for (const callback of batch.callbacks) callback(err)
      } else if (this.options.fsync === 'always') {
        for (const callback of batch.callbacks) this.unsynced.push(callback)
      } else {
        for (const callback of batch.callbacks) callback(undefined)
        if (this.options.fsync === 'interval') this.syncLater()
      }
    }
    // In "always" mode every record written is synced, a reply waiting for it or not (a job put
    // back after its client left has no reply, but must survive a power loss all the same).
    if (this.unsynced.length > 0 || (this.options.fsync === 'always' && this.dirty)) this.startSync()
  }

  /** Writes a batch to its generation's file; returns the error that keeps it from disk, if any. */
  private writeBatch(batch: Batch): Error | undefined {
    // That generation is broken: its records are not written; the next snapshot covers them.
    if (this.failure !== undefined && batch.generation <= this.failedGeneration) return this.failure
    try {
      this.useGeneration(batch)
      if (batch.out.pos > 0) {
        this.fs.write(this.fd!, batch.out.buf.subarray(0, batch.out.pos))
        this.counters.writtenBytes += batch.out.pos
        this.dirty = true
      }
      return undefined
    } catch (err) {
      this.fail(err as Error, batch.generation)
      return err as Error
    }
  }

  /**
   * Starts an fdatasync for everything written so far. A second may start while one runs: what
   * was written after the first began waits for about one fsync instead of one and a half. Each
   * callback waits for a sync that began after its record was written, whichever ends first. A
   * sync asked for while MAX_SYNCS run is owed, and starts as soon as one of them ends.
   */
  private startSync(): void {
    if (this.fd === undefined || (!this.dirty && this.unsynced.length === 0)) return
    if (this.syncing >= MAX_SYNCS) {
      this.syncOwed = true
      return
    }
    const callbacks = this.unsynced
    this.unsynced = []
    this.dirty = false
    this.syncOwed = false
    this.syncFile(this.fd, this.fdGeneration, callbacks)
  }

  /** An fdatasync of `fd` on the thread pool; `callbacks` hear how it went. */
  private syncFile(fd: number, generation: number, callbacks: DurableCallback[]): void {
    this.syncing++
    this.syncsOn.set(fd, (this.syncsOn.get(fd) ?? 0) + 1)
    this.lastSync = Date.now()
    const sync: SyncUnderway = { generation, callbacks, outcome: undefined }
    this.underway.push(sync)
    const started = performance.now()
    this.fs.sync(fd, (err) => {
      this.syncing--
      this.underway.splice(this.underway.indexOf(sync), 1)
      const ms = performance.now() - started
      this.counters.fsyncs++
      this.counters.fsyncMsTotal += ms
      this.counters.fsyncMsMax = Math.max(this.counters.fsyncMsMax, ms)
      const left = this.syncsOn.get(fd)! - 1
      if (left > 0) this.syncsOn.set(fd, left)
      else {
        this.syncsOn.delete(fd)
        if (this.retired.delete(fd)) this.fs.close(fd)
      }
      if (err !== null) this.fail(err, generation, 'sync')
      // Linux reports a writeback error once per file: a later fdatasync of a file whose earlier one
      // failed may succeed though its pages were lost. Nothing in that file is trusted any more.
      sync.outcome = err ?? (generation <= this.syncFailedGeneration ? this.failure : undefined)
      // Out of `underway` (and not held), its callbacks are reachable from here only: no copy.
      if (this.olderUnderway(generation)) this.held.push(sync)
      else for (const callback of sync.callbacks) callback(sync.outcome)
      this.releaseHeld()
      if (this.syncing === 0) {
        const waiting = this.afterSync
        this.afterSync = []
        for (const resume of waiting) resume()
      }
      if (this.syncOwed) this.startSync()
      this.flush()
    })
  }

  /** Whether an fdatasync of a file older than `generation` is still under way. */
  private olderUnderway(generation: number): boolean {
    for (const sync of this.underway) if (sync.generation < generation) return true
    return false
  }

  /** Answers the held callbacks whose older files' fdatasyncs have all ended. */
  private releaseHeld(): void {
    for (let i = 0; i < this.held.length; ) {
      const sync = this.held[i]!
      if (this.olderUnderway(sync.generation)) {
        i++
        continue
      }
      this.held.splice(i, 1)
      for (const callback of sync.callbacks) callback(sync.outcome)
    }
  }

  /**
   * A write or fdatasync of `generation` failed: every callback waiting on a newer file hears of it
   * now. Their records came after the lost ones, so "everything appended so far" is not on disk
   * for them either (a duplicate names a job whose schedule was in the failed file; a take takes a
   * job scheduled there).
   */
  private failNewer(generation: number, err: Error): void {
    const failed: DurableCallback[] = []
    for (const sync of this.underway) if (sync.generation > generation) failed.push(...sync.callbacks.splice(0))
    for (const sync of this.held) if (sync.generation > generation) failed.push(...sync.callbacks.splice(0))
    if (this.fdGeneration > generation) failed.push(...this.unsynced.splice(0))
    for (const batch of this.batches) if (batch.generation > generation) failed.push(...batch.callbacks.splice(0))
    for (const callback of failed) callback(err)
  }

  /** "interval" mode: an fdatasync at most journal_fsync_ms after any write, none while idle. */
  private syncLater(): void {
    if (this.syncTimer !== undefined) return
    const wait = Math.max(0, this.options.fsyncMs - (Date.now() - this.lastSync))
    this.syncTimer = setTimeout(() => {
      this.syncTimer = undefined
      this.startSync()
    }, wait)
  }

  /** The next batch to write, or undefined when there is nothing to do. */
  private takeBatch(): Batch | undefined {
    if (this.batches.length > 1) return this.batches.shift()
    const batch = this.batches[0]!
    if (batch.empty) return undefined
    this.batches[0] = new Batch(batch.generation)
    return batch
  }

  /**
   * Makes the batch's generation the one written to. The file left behind is synced on the thread
   * pool (what waited for a sync of it hears from that one) and closed once no fdatasync runs on
   * it: the new file is written meanwhile, so a slow disk never holds records back in memory.
   */
  private useGeneration(batch: Batch): void {
    if (this.fdGeneration === batch.generation) return
    if (this.fd !== undefined) this.retire(this.fd, this.fdGeneration)
    this.fd = batch.fd ?? this.openGeneration(batch.generation)
    this.fdGeneration = batch.generation
  }

  private retire(fd: number, generation: number): void {
    const callbacks = this.unsynced
    this.unsynced = []
    this.dirty = false
    this.syncOwed = false
    this.retired.add(fd)
    // Synced even while the journal is broken (records answered before a later write failed are
    // in it), unless its own fdatasync failed: then nothing in it counts.
    if (generation <= this.syncFailedGeneration) for (const callback of callbacks) callback(this.failure)
    else if (this.options.fsync !== 'never') this.syncFile(fd, generation, callbacks)
    if (!this.syncsOn.has(fd) && this.retired.delete(fd)) this.fs.close(fd)
  }

  private startFreshGeneration(): void {
    const next = this.open.generation + 1
    try {
      this.batches.push(new Batch(next, this.openGeneration(next)))
      this.bytesInGeneration = 0
    } catch (err) {
      // The disk refuses a new file too: later records wait for the repair snapshot.
      this.options.logger.error({ err, generation: next }, 'journal: cannot start a new file after a failure')
    }
  }

  /** Creates (or opens, to append) a generation's file; its directory entry is synced too. */
  private openGeneration(generation: number): number {
    const fd = this.fs.open(journalFile(this.options.dir, generation))
    try {
      // The new file's directory entry must survive a crash as well as its contents.
      if (this.options.fsync !== 'never') this.fs.syncDir(this.options.dir)
    } catch (err) {
      this.fs.close(fd)
      throw err
    }
    return fd
  }

  private fail(err: Error, generation: number, what: 'write' | 'sync' = 'write'): void {
    this.counters.errors++
    this.failedGeneration = Math.max(this.failedGeneration, generation)
    if (what === 'sync') this.syncFailedGeneration = Math.max(this.syncFailedGeneration, generation)
    // Records from now on (jobs put back when their replies failed, leases expiring) go to a new
    // file, so they are not lost with the broken one's; replay reads them after it.
    if (this.open.generation <= this.failedGeneration) this.startFreshGeneration()
    if (this.failure === undefined) {
      this.failure = err
      this.options.logger.error({ err, generation }, 'journal write failed; changes are refused until a snapshot succeeds')
      this.options.onFailure(err)
    }
    // Last: the callbacks may append and write at once (writeNow), and must find the journal
    // broken, writing a new file (else the failed file's pending records were written, and its
    // unsynced callbacks answered with this.failure still undefined: durable). An fdatasync's
    // failure concerns only callbacks that wait for fdatasyncs: "interval" and "never" mode answer
    // once written, and the newer files' records are written.
    if (what === 'write' || this.options.fsync === 'always') this.failNewer(generation, err)
  }
}
