import type { ChangeLog } from './changes'

/**
 * What the store keeps of a cron entry: run-time entries whole, config-file entries for their pause
 * and the slots they have handled (the definition comes from the file at each start).
 */
export interface CronRecord {
  name: string
  /** The entry as written (config file or `POST /cron/add`); checked again whenever it is read back. */
  entry: Record<string, unknown>
  source: 'config' | 'api'
  paused: boolean
  /** Slots at or before this time (ms since the epoch) are handled: fired, skipped, or before the entry existed. */
  handledUntil: number
  /** The last slot fired (ms since the epoch), if any. */
  lastFired: number | null
}

/** Cron records by name. Pure data; every change is told to the change log (the journal). */
export class CronTable {
  private readonly records = new Map<string, CronRecord>()

  constructor(private readonly changes: ChangeLog) {}

  all(): CronRecord[] {
    return [...this.records.values()].map((record) => ({ ...record }))
  }

  save(record: CronRecord): void {
    const copy = { ...record }
    this.records.set(record.name, copy)
    this.changes.cronChanged(record.name, copy)
  }

  delete(name: string): void {
    if (!this.records.delete(name)) return
    this.changes.cronChanged(name, undefined)
  }

  /** A record read back from state.json or the journal (undefined: deleted since). */
  restore(name: string, record: CronRecord | undefined): void {
    if (record === undefined) this.records.delete(name)
    else this.records.set(name, { ...record })
  }
}
