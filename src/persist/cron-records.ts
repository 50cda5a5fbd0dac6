import { isJsonObject } from '../json'
import type { CronRecord } from '../queue/cron-table'

/** Cron records as saved in state.json and journal records: snake_case JSON, times in ms since the epoch. */

export function encodeCronRecord(record: CronRecord): Record<string, unknown> {
  return { name: record.name, entry: record.entry, source: record.source, paused: record.paused, handled_until: record.handledUntil, last_fired: record.lastFired }
}

/** Throws an Error naming `where` and the field when `raw` is not a cron record. */
export function decodeCronRecord(raw: unknown, where: string): CronRecord {
  const fail = (problem: string): never => {
    throw new Error(`${where}: ${problem}`)
  }
  if (!isJsonObject(raw)) return fail('expected a cron record object')
  const { name, entry, source, paused, handled_until: handledUntil, last_fired: lastFired } = raw
  if (typeof name !== 'string' || name === '') fail('a cron record needs a "name"')
  if (!isJsonObject(entry)) fail('a cron record needs an "entry" object')
  if (source !== 'config' && source !== 'api') fail('"source" must be "config" or "api"')
  if (typeof paused !== 'boolean') fail('"paused" must be true or false')
  if (typeof handledUntil !== 'number' || !Number.isSafeInteger(handledUntil)) fail('"handled_until" must be a time in ms since the epoch')
  if (lastFired !== null && (typeof lastFired !== 'number' || !Number.isSafeInteger(lastFired))) fail('"last_fired" must be a time in ms since the epoch or null')
  return { name: name as string, entry: entry as Record<string, unknown>, source: source as CronRecord['source'], paused: paused as boolean, handledUntil: handledUntil as number, lastFired: lastFired as number | null }
}
