import { createHash } from 'node:crypto'
import type { DeadlineTimer } from '../deadlines'
import { ApiError } from '../errors'
import type { Logger } from '../log'
import type { CronRecord } from '../queue/cron-table'
import { Job } from '../queue/job'
import { type JobStore, type Maybe, notOffered, then, when } from '../store/job-store'
import { type CronEntry, CronEntryError, parseCronEntry } from './cron-entry'
import type { JobService, Scheduled } from './job-service'

/** A slot fired at most this late counts as on time; one later is missed (see `missed`). */
export const ON_TIME_MS = 60_000

/**
 * How long a fired slot's unique key stays held once its job is finished. What keeps a slot from
 * firing twice is the entry's record of the slots it handled (saved with the job, in one change);
 * the key covers what that record cannot: two daemons over one store firing the same slot at once,
 * and a record lost while its job was not (a torn last journal write).
 */
const SLOT_KEY_HOLD_MS = 2 * ON_TIME_MS

/** The timer looks again at least this often, so a wall clock stepped forward is noticed soon. */
const RECHECK_MS = 60_000

/** A slot's job hash: derived from the entry and the fire time, the same in every daemon and after a restart. */
export function slotHash(name: string, slot: number): string {
  return createHash('sha1').update(`cron\n${name}\n${slot}`).digest('hex')
}

/** An entry as the daemon runs it: its definition, its record, and counters since start. */
interface LiveEntry {
  entry: CronEntry
  record: CronRecord
  fired: number
  lastError: string | null
}

/** How `GET /cron` and `POST /cron/add` show an entry. */
export interface CronView {
  name: string
  source: CronRecord['source']
  entry: Record<string, unknown>
  paused: boolean
  next_fire_at: string | null
  last_fired_at: string | null
  fired: number
  last_error: string | null
}

const iso = (ms: number | null | undefined): string | null => (ms === null || ms === undefined ? null : new Date(ms).toISOString())

/**
 * Cron and repeating jobs (desaster's cron module): entries from the config file and added at run
 * time, each scheduling an ordinary job per slot through the job service. One timer for all
 * entries, armed for the earliest next slot; each firing runs as the background task "cron".
 *
 * A slot fires once: the entry's record (`handledUntil`, kept by the store with the jobs) moves
 * past every slot it handles, in the same change as the slot's job, and slots at or before it
 * never fire again, whatever the wall clock does. The job's hash is derived from the entry's name
 * and the slot, and the job holds a unique key for its slot.
 */
export class CronScheduler {
  private readonly entries = new Map<string, LiveEntry>()
  private readonly timer: DeadlineTimer

  /** Jobs are scheduled through `service`; entries' records are kept by `store`. `clock`: ms since the epoch. */
  constructor(
    private readonly service: JobService,
    private readonly store: JobStore,
    private readonly logger: Logger,
    private readonly clock: () => number = Date.now,
  ) {
    this.timer = this.service.tasks.onDeadlines('cron', () => this.fireDue(), () => this.nextDeadline(), this.clock)
  }

  /**
   * At start: the config file's entries (checked by the config) with their records, and the run-time
   * entries the store kept. Slots missed while the daemon was down follow each entry's `missed`.
   */
  start(configured: readonly CronEntry[]): Maybe<void> {
    return then(this.store.cronRecords(), (records) => {
      const kept = new Map(records.map((record) => [record.name, record]))
      for (const record of records) {
        if (record.source !== 'api') continue
        try {
          this.entries.set(record.name, { entry: parseCronEntry(record.entry, `cron entry ${JSON.stringify(record.name)}`), record, fired: 0, lastError: null })
        } catch (err) {
          this.logger.error({ cron: record.name, reason: (err as Error).message }, 'a cron entry added at run time no longer fits; it stays saved but does not fire')
        }
      }
      return this.configure(configured, kept)
    })
  }

  /** A reload: the config file's entries are now these (run-time entries stay as they are). */
  setConfigEntries(configured: readonly CronEntry[]): Maybe<void> {
    return this.configure(configured, new Map([...this.entries].map(([name, live]) => [name, live.record])))
  }

  private configure(configured: readonly CronEntry[], kept: Map<string, CronRecord>): Maybe<void> {
    const changes: Maybe<void>[] = []
    const names = new Set(configured.map((entry) => entry.name))
    for (const [name, record] of kept) {
      if (record.source !== 'config' || names.has(name)) continue
      this.entries.delete(name)
      changes.push(this.store.deleteCron(name))
    }
    const now = this.clock()
    for (const entry of configured) {
      const before = kept.get(entry.name)
      if (before?.source === 'api') this.logger.warn({ cron: entry.name }, 'a cron entry of the config file replaces the one of that name added at run time')
      const record: CronRecord =
        before?.source === 'config'
          ? { ...before, entry: entry.raw }
          : { name: entry.name, entry: entry.raw, source: 'config', paused: entry.paused, handledUntil: now, lastFired: null }
      const live = this.entries.get(entry.name)
      this.entries.set(entry.name, { entry, record, fired: live?.fired ?? 0, lastError: live?.lastError ?? null })
      if (before === undefined || JSON.stringify(before) !== JSON.stringify(record)) changes.push(this.store.saveCron(record))
    }
    this.timer.arm(now)
    return all(changes)
  }

  stop(): void {
    this.timer.stop()
  }

  /** `POST /cron/add`: a run-time entry, kept by the store; answered once durable. */
  add(raw: unknown): Maybe<CronView> {
    this.runTimeChanges('/cron/add')
    let entry: CronEntry
    try {
      entry = parseCronEntry(raw, 'the entry')
    } catch (err) {
      if (err instanceof CronEntryError) throw new ApiError('invalid_data', err.message)
      throw err
    }
    if (this.entries.has(entry.name)) throw new ApiError('conflict', `a cron entry named ${JSON.stringify(entry.name)} exists; delete it first`)
    this.service.checkMessage(entry.lane, entry.message)
    const record: CronRecord = { name: entry.name, entry: entry.raw, source: 'api', paused: entry.paused, handledUntil: this.clock(), lastFired: null }
    const live: LiveEntry = { entry, record, fired: 0, lastError: null }
    return then(this.store.saveCron(record), () => {
      this.entries.set(entry.name, live)
      this.timer.arm(this.nextDeadline())
      this.logger.info({ cron: entry.name, lane: entry.lane }, 'cron entry added')
      return this.service.durable(this.view(live), () => `the cron entry ${JSON.stringify(entry.name)} is kept in memory only, until the next snapshot`)
    })
  }

  /** Pauses or resumes an entry; slots that pass while it is paused are skipped. */
  setPaused(name: string, paused: boolean): Maybe<CronView> {
    this.runTimeChanges(paused ? '/cron/pause' : '/cron/resume')
    const live = this.find(name)
    const record: CronRecord = { ...live.record, paused, handledUntil: paused ? live.record.handledUntil : Math.max(live.record.handledUntil, this.clock()) }
    return then(this.store.saveCron(record), () => {
      live.record = record
      this.timer.arm(this.nextDeadline())
      this.logger.info({ cron: name }, paused ? 'cron entry paused' : 'cron entry resumed')
      return this.service.durable(this.view(live), () => `the cron entry ${JSON.stringify(name)} is ${paused ? 'paused' : 'resumed'} in memory only, until the next snapshot`)
    })
  }

  /** Deletes a run-time entry (the config file's are removed from the file). */
  delete(name: string): Maybe<CronView> {
    this.runTimeChanges('/cron/delete')
    const live = this.find(name)
    if (live.record.source === 'config') throw new ApiError('conflict', `the cron entry ${JSON.stringify(name)} comes from the config file: remove it there (and reload), or pause it`)
    return then(this.store.deleteCron(name), () => {
      this.entries.delete(name)
      this.logger.info({ cron: name }, 'cron entry deleted')
      return this.service.durable(this.view(live), () => `the cron entry ${JSON.stringify(name)} is deleted in memory only, until the next snapshot`)
    })
  }

  /**
   * Run-time changes are kept with the jobs by the in-memory store only: over Redis each frontend
   * runs the config file's entries, and a change made through one would not reach the others.
   */
  private runTimeChanges(endpoint: string): void {
    if (this.store.kind !== 'memory') throw notOffered(`${endpoint} (run-time cron changes; the config file's "cron" entries do run)`, this.store.kind)
  }

  list(): CronView[] {
    return [...this.entries.values()].map((live) => this.view(live))
  }

  /** What `GET /` shows: each entry's next and last firing. */
  status(): Record<string, { next_fire_at: string | null; last_fired_at: string | null; paused: boolean }> {
    const out = Object.create(null) as ReturnType<CronScheduler['status']>
    for (const [name, live] of this.entries) {
      const view = this.view(live)
      out[name] = { next_fire_at: view.next_fire_at, last_fired_at: view.last_fired_at, paused: view.paused }
    }
    return out
  }

  private find(name: string): LiveEntry {
    const live = this.entries.get(name)
    if (live === undefined) throw new ApiError('cron_not_found', `no cron entry is named ${JSON.stringify(name)}`)
    return live
  }

  private view({ entry, record, fired, lastError }: LiveEntry): CronView {
    return {
      name: record.name,
      source: record.source,
      entry: record.entry,
      paused: record.paused,
      next_fire_at: record.paused ? null : iso(entry.next(Math.max(record.handledUntil, this.clock()))),
      last_fired_at: iso(record.lastFired),
      fired,
      last_error: lastError,
    }
  }

  /** When the timer must look again: the earliest next slot, and at least every RECHECK_MS. */
  private nextDeadline(): number {
    const now = this.clock()
    let at = now + RECHECK_MS
    for (const { entry, record } of this.entries.values()) {
      if (record.paused) continue
      const next = entry.next(Math.max(record.handledUntil, now))
      if (next !== undefined && next < at) at = next
    }
    return at
  }

  /**
   * The task: every entry whose latest slot is not handled yet fires it (or skips it, if missed).
   * Run by the timer; public so tests can drive it with an injected clock.
   */
  fireDue(): void {
    const now = this.clock()
    for (const live of this.entries.values()) {
      const { entry, record } = live
      if (record.paused) continue
      const slot = entry.latest(now)
      // A slot at or before handledUntil was handled, however the wall clock moved since.
      if (slot === undefined || slot <= record.handledUntil) continue
      const onTime = now - slot <= ON_TIME_MS
      const skipped = entry.next(record.handledUntil) !== slot
      if (!onTime || skipped) {
        this.logger.warn({ cron: entry.name, lane: entry.lane, slot: iso(slot), first_missed: iso(entry.next(record.handledUntil)), policy: entry.missed }, onTime || entry.missed === 'once' ? 'cron: slots were missed; firing the latest once' : 'cron: slots were missed; skipped')
      }
      this.handle(live, slot, onTime || entry.missed === 'once')
    }
  }

  /**
   * Marks `slot` handled and, if `fire`, schedules its job: both in the same turn, so with the
   * journal they are written together.
   */
  private handle(live: LiveEntry, slot: number, fire: boolean): void {
    const { entry } = live
    const record = (fired: boolean): void => {
      live.record = { ...live.record, handledUntil: slot, lastFired: fired ? slot : live.record.lastFired }
      when(this.store.saveCron(live.record), () => undefined, (err: unknown) => this.logger.error({ cron: entry.name, err }, 'cron: the slot could not be recorded'))
    }
    const hash = slotHash(entry.name, slot)
    const failed = (err: unknown): void => {
      live.lastError = `${iso(this.clock())}: ${err instanceof Error ? err.message : String(err)}`
      this.logger.error({ cron: entry.name, lane: entry.lane, hash, slot: iso(slot), reason: live.lastError }, 'cron: the slot could not be fired; skipped')
    }
    if (!fire) return record(false)
    let scheduled: Maybe<Scheduled[]>
    try {
      const unique = { key: `cron:${entry.name}:${new Date(slot).toISOString()}`, forMs: SLOT_KEY_HOLD_MS }
      scheduled = this.service.scheduleUnique([{ lane: entry.lane, priority: entry.priority, message: entry.message, hash, unique }], false)
    } catch (err) {
      failed(err)
      return record(false)
    }
    record(true)
    when(
      scheduled,
      ([outcome]) => {
        live.lastError = null
        if (!(outcome instanceof Job)) return this.logger.info({ cron: entry.name, lane: entry.lane, hash, slot: iso(slot) }, 'cron: this slot was fired already (its key is held)')
        live.fired++
        this.logger.info({ cron: entry.name, lane: outcome.lane, job_num: outcome.jobNum, hash, slot: iso(slot) }, 'cron fired')
      },
      failed,
    )
  }
}

/** Waits for every change (plain values need no wait). */
function all(changes: Maybe<void>[]): Maybe<void> {
  const pending = changes.filter((change): change is Promise<void> => change instanceof Promise)
  return pending.length === 0 ? undefined : Promise.all(pending).then(() => undefined)
}
