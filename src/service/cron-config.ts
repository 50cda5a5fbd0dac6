import { ApiError } from '../errors'
import { parseRunnerMessage } from '../runners/arguments'
import type { DispatchConfig, RunnerLane } from '../runners/lanes'
import { type CronEntry, CronEntryError, parseCronEntry } from './cron-entry'

/**
 * The config file's `cron` list, checked whole at start (and on a reload) before anything runs:
 * each entry's pattern, and its message against its lane's runner, so an entry that could never
 * fire stops the start instead of failing at each slot. Throws CronEntryError.
 */
export function parseCronList(raw: unknown, lanes: readonly RunnerLane[], dispatch: DispatchConfig | undefined): CronEntry[] {
  if (raw === undefined) return []
  if (!Array.isArray(raw)) throw new CronEntryError('"cron" must be a list of entries such as {"name": "nightly", "schedule": "0 3 * * *", "message": "..."}')
  const seen = new Set<string>()
  return raw.map((item: unknown, i) => {
    const entry = parseCronEntry(item, `cron[${i}]`)
    if (seen.has(entry.name)) throw new CronEntryError(`cron[${i}]: the name ${JSON.stringify(entry.name)} is used twice`)
    seen.add(entry.name)
    if (dispatch?.lane.lane === entry.lane) throw new CronEntryError(`cron[${i}] (${JSON.stringify(entry.name)}): lane ${JSON.stringify(entry.lane)} runs Dispatch Jobs, which cron does not schedule`)
    const runner = lanes.find(({ lane }) => lane === entry.lane)
    try {
      if (runner !== undefined) parseRunnerMessage(runner, entry.message)
    } catch (err) {
      if (err instanceof ApiError) throw new CronEntryError(`cron[${i}] (${JSON.stringify(entry.name)}): ${err.message}`)
      throw err
    }
    return entry
  })
}
