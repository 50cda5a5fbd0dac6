import { CODES, ApiError } from '../errors'
import type { CronScheduler, CronView } from '../service/cron'
import { answer } from './answer'
import type { Operation } from './operation'

export interface CronOperations {
  list: Operation<void>
  add: Operation<Record<string, unknown>>
  pause: Operation<string>
  resume: Operation<string>
  delete: Operation<string>
}

const entryReply = (view: CronView): string => JSON.stringify({ status: 'ok', code: CODES.ok.code, cron: view })

function nameField(fields: Record<string, unknown>): string {
  const name = fields.name
  if (typeof name !== 'string' || name === '') throw new ApiError('invalid_data', 'missing "name" (of a cron entry)')
  return name
}

/** `/cron` (list) and `/cron/add`, `/cron/pause`, `/cron/resume`, `/cron/delete`: cron entries at run time. */
export function cronOperations(cron: CronScheduler): CronOperations {
  const byName = (run: (name: string) => ReturnType<CronScheduler['delete']>): Operation<string> => ({
    parse: nameField,
    pacer: undefined,
    changes: true,
    run: (ex, name) => answer(ex, run(name), entryReply),
  })
  return {
    list: {
      parse: () => undefined,
      pacer: undefined,
      changes: false,
      run: (ex) => ex.send(200, JSON.stringify({ status: 'ok', code: CODES.ok.code, entries: cron.list() })),
    },
    add: {
      // The entry is checked whole by the scheduler (the same rules as the config file's `cron`).
      parse: (fields) => fields,
      pacer: undefined,
      changes: true,
      run: (ex, fields) => answer(ex, cron.add(fields), entryReply),
    },
    pause: byName((name) => cron.setPaused(name, true)),
    resume: byName((name) => cron.setPaused(name, false)),
    delete: byName((name) => cron.delete(name)),
  }
}
