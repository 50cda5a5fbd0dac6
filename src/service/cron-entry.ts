import { Cron } from 'croner'
import { isJsonObject, jsonText } from '../json'
import { DEFAULT_LANE, DEFAULT_PRIORITY, MAX_PRIORITY } from '../queue/job'
import { unknownKey } from '../suggest'

/** What to do with slots that passed while the daemon was down (or its clock jumped ahead). */
export const MISSED_POLICIES = ['skip', 'once'] as const
export type MissedPolicy = (typeof MISSED_POLICIES)[number]

/** The keys of a cron entry, in the config file's `cron` list and in `POST /cron/add`. */
export const CRON_KEYS = ['name', 'schedule', 'every', 'timezone', 'lane', 'priority', 'message', 'arguments', 'missed', 'paused'] as const

/** The longest `every`, in seconds: a year. */
export const MAX_EVERY_SECONDS = 31_536_000

/**
 * One cron entry, checked: when it fires (a cron pattern of 5 or 6 fields, parsed by croner, or
 * every N seconds counted from the epoch, so every daemon agrees on the slots), and the job it
 * schedules each time.
 */
export interface CronEntry {
  name: string
  lane: string
  priority: number
  message: string
  missed: MissedPolicy
  /** Paused from the start. */
  paused: boolean
  /** The entry as written, kept by the store and shown back. */
  raw: Record<string, unknown>
  /** The first slot strictly after `t` (ms since the epoch), if there is one. */
  next(t: number): number | undefined
  /** The latest slot at or before `t`, if there is one. */
  latest(t: number): number | undefined
}

export class CronEntryError extends Error {}

const NAME = /^[^\u0000-\u001f\u007f]{1,128}$/

/** Checks an entry as written; throws CronEntryError naming the key and what it must be. */
export function parseCronEntry(raw: unknown, at: string): CronEntry {
  if (!isJsonObject(raw)) throw new CronEntryError(`${at} must be an object such as {"name": "nightly", "schedule": "0 3 * * *", "message": "..."}`)
  const problem = unknownKey(raw, CRON_KEYS, at)
  if (problem !== undefined) throw new CronEntryError(problem)
  const { name, lane = DEFAULT_LANE, priority = DEFAULT_PRIORITY, missed = 'skip', paused = false } = raw
  const fail = (what: string): never => {
    throw new CronEntryError(`${at}${typeof name === 'string' ? ` (${JSON.stringify(name)})` : ''}: ${what}`)
  }
  if (typeof name !== 'string' || !NAME.test(name)) fail('"name" must be a string of 1 to 128 characters, with no control characters')
  if (typeof lane !== 'string' || lane.length > 128 || /[\u0000-\u001f\u007f]/.test(lane)) fail('"lane" must be a lane name of at most 128 characters')
  if (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0 || priority > MAX_PRIORITY) fail(`"priority" must be an integer from 0 to ${MAX_PRIORITY}`)
  if (!(MISSED_POLICIES as readonly unknown[]).includes(missed)) fail('"missed" must be "skip" (the default) or "once"')
  if (typeof paused !== 'boolean') fail('"paused" must be true or false')
  const slots = parseSlots(raw, fail)
  return {
    name: name as string,
    lane: (lane as string) || DEFAULT_LANE,
    priority: priority as number,
    message: parseMessage(raw, fail),
    missed: missed as MissedPolicy,
    paused: paused as boolean,
    raw,
    ...slots,
  }
}

/** `message` as is, or `arguments` as a runner lane's message (`{"arguments": {...}}`). */
function parseMessage(raw: Record<string, unknown>, fail: (what: string) => never): string {
  const { message, arguments: args } = raw
  if (message !== undefined && args !== undefined) fail('give "message" or "arguments", not both')
  if (args !== undefined) {
    if (!isJsonObject(args)) fail('"arguments" must be an object (the job\'s arguments on a runner lane)')
    const text = jsonText({ arguments: args })
    if (text === undefined) fail('"arguments" is nested too deep: send a flatter JSON object')
    return text
  }
  if (typeof message !== 'string') fail('"message" must be a string (or give "arguments")')
  return message as string
}

function parseSlots(raw: Record<string, unknown>, fail: (what: string) => never): Pick<CronEntry, 'next' | 'latest'> {
  const { schedule, every, timezone } = raw
  if ((schedule === undefined) === (every === undefined)) fail('give "schedule" (a cron pattern) or "every" (seconds), one of them')
  if (every !== undefined) {
    if (timezone !== undefined) fail('"timezone" goes with "schedule", not "every"')
    if (typeof every !== 'number' || !Number.isInteger(every) || every < 1 || every > MAX_EVERY_SECONDS) fail(`"every" must be a whole number of seconds from 1 to ${MAX_EVERY_SECONDS}`)
    const ms = (every as number) * 1000
    return { next: (t) => (Math.floor(t / ms) + 1) * ms, latest: (t) => Math.floor(t / ms) * ms }
  }
  if (typeof schedule !== 'string' || schedule.trim() === '') fail('"schedule" must be a cron pattern such as "*/5 * * * *" (5 fields, or 6 with seconds first)')
  if (timezone !== undefined && (typeof timezone !== 'string' || timezone === '')) fail('"timezone" must be an IANA time zone such as "Europe/Berlin"')
  let cron: Cron
  try {
    cron = new Cron(schedule as string, { paused: true, timezone: timezone as string | undefined, mode: '5-or-6-parts' })
    cron.nextRun()
  } catch (err) {
    return fail(`"schedule" ${JSON.stringify(schedule)}${timezone === undefined ? '' : ` in time zone ${JSON.stringify(timezone)}`} is not valid: ${(err as Error).message}`)
  }
  return {
    next: (t) => cron.nextRun(new Date(t))?.getTime(),
    // previousRuns looks strictly before its reference: a slot at exactly `t` counts as at or before.
    latest: (t) => cron.previousRuns(1, new Date(t + 1))[0]?.getTime(),
  }
}
