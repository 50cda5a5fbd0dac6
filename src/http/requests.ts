import { ApiError } from '../errors'
import { isJsonObject, jsonText } from '../json'
import { DEFAULT_LANE, DEFAULT_PRIORITY, MAX_PRIORITY } from '../queue/job'
import { MAX_UNIQUE_FOR_SECONDS } from '../service/lane-settings'
import type { UniqueScheduleInput } from '../service/job-service'
import type { LeaseCommand } from '../service/job-service'

/**
 * Turns request bodies into validated commands. Every rejection is an `invalid_data` error whose
 * message names the field and the problem. As in the original, JSON `null` counts as absent.
 */
type Fields = Record<string, unknown>

export function invalid(message: string): ApiError {
  return new ApiError('invalid_data', message)
}

/** What an empty body holds: one object for all of them (frozen: no parser writes to its fields). */
const NO_FIELDS: Fields = Object.freeze({})

/** A `\u` escape of a UTF-16 surrogate (D800–DFFF): only a body holding one can parse into a lone surrogate. */
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/

/**
 * Replaces every lone surrogate (an escape such as "\ud800" without its pair) in the parsed body,
 * in place, by U+FFFD, as the original's Go decoder reads it. Every store then keeps the same text:
 * Redis holds UTF-8, which has no lone surrogates, and would make the same replacement for its own
 * jobs only. A loop over a stack, not recursion: JSON.parse reads a body nested 30,000 deep, and
 * this must not overflow where it did not.
 */
function makeWellFormed(fields: Fields): void {
  const stack: unknown[] = [fields]
  for (let value = stack.pop(); value !== undefined; value = stack.pop()) {
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const item: unknown = value[i]
        if (typeof item === 'string') value[i] = item.toWellFormed()
        else if (typeof item === 'object' && item !== null) stack.push(item)
      }
    } else if (isJsonObject(value)) {
      const keys = Object.keys(value)
      if (!keys.every((key) => key.isWellFormed())) renameMembers(value, keys)
      for (const key of Object.keys(value)) {
        const member = value[key]
        if (typeof member === 'string') value[key] = member.toWellFormed()
        else if (typeof member === 'object' && member !== null) stack.push(member)
      }
    }
  }
}

/**
 * Gives `object` its members again under well-formed names, as if JSON.parse had read them so:
 * names that become the same are one member, in the first one's place with the last one's value
 * (JSON's rule), and every other member keeps its place. (defineProperty: an own "__proto__"
 * member stays a member, as JSON.parse made it.)
 */
function renameMembers(object: Fields, keys: string[]): void {
  const members = keys.map((key) => [key.toWellFormed(), object[key]] as const)
  for (const key of keys) delete object[key]
  for (const [key, member] of members) Object.defineProperty(object, key, { value: member, writable: true, enumerable: true, configurable: true })
}

/** An empty body is an empty object; anything else must be a JSON object. */
export function parseJsonObject(body: Buffer): Fields {
  if (body.length === 0) return NO_FIELDS
  const text = body.toString('utf8')
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw invalid(`invalid JSON in request body: ${(err as Error).message}`)
  }
  if (!isJsonObject(parsed)) throw invalid('request body must be a JSON object')
  // Most bodies have no escape at all: one native search, and no walk.
  if (text.indexOf('\\u') >= 0 && SURROGATE_ESCAPE.test(text)) makeWellFormed(parsed)
  return parsed
}

export const MAX_LANE_LENGTH = 128
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/

export function laneField(fields: Fields): string {
  const lane = fields.lane
  if (lane === undefined || lane === null || lane === '') return DEFAULT_LANE
  if (typeof lane !== 'string') throw invalid('"lane" must be a string')
  if (lane.length > MAX_LANE_LENGTH || CONTROL_CHARACTER.test(lane)) {
    throw invalid(`"lane" must be at most ${MAX_LANE_LENGTH} characters, with no control characters`)
  }
  return lane
}

export function priorityField(fields: Fields): number {
  const priority = fields.priority
  if (priority === undefined || priority === null) return DEFAULT_PRIORITY
  if (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0 || priority > MAX_PRIORITY) {
    throw invalid(`"priority" must be an integer from 0 to ${MAX_PRIORITY}`)
  }
  return priority
}

function parseJob(fields: Fields): UniqueScheduleInput {
  const delayMs = secondsField(fields.delay, 'delay', false)
  const job: UniqueScheduleInput = { message: messageField(fields), lane: laneField(fields), priority: priorityField(fields) }
  if (delayMs !== undefined && delayMs > 0) job.delayMs = delayMs
  if (fields.arguments !== undefined && fields.arguments !== null) job.fromArguments = true
  const unique = uniqueFields(fields)
  if (unique !== undefined) job.unique = unique
  const group = fields.group
  if (group !== undefined && group !== null) {
    if (typeof group !== 'string' || group === '' || group.length > MAX_LANE_LENGTH || CONTROL_CHARACTER.test(group)) {
      throw invalid(`"group" must be a string of 1 to ${MAX_LANE_LENGTH} characters, with no control characters`)
    }
    job.group = group
  }
  return job
}

/**
 * The message: `message`, or for runner lanes `arguments` (and `target`) at the top level, which
 * become the message runner lanes take as a string: `{"arguments": {...}, "target": "..."}`.
 */
function messageField(fields: Fields): string {
  const { message, arguments: args, target } = fields
  if (args !== undefined && args !== null) {
    if (message !== undefined && message !== null) throw invalid('give either "message" or "arguments", not both')
    if (!isJsonObject(args)) throw invalid('"arguments" must be a JSON object of the job\'s arguments')
    if (target !== undefined && target !== null && typeof target !== 'string') throw invalid('"target" must be a string')
    return jsonField(target === undefined || target === null ? { arguments: args } : { arguments: args, target }, 'arguments')
  }
  if (target !== undefined && target !== null) throw invalid('"target" goes with "arguments" (runner lanes)')
  if (message === undefined || message === null) throw invalid('missing message')
  if (typeof message !== 'string') throw invalid('"message" must be a string')
  return message
}

/** `value` as JSON text, for a field the daemon keeps as text (`arguments`, an ack's `result`). */
function jsonField(value: unknown, field: string): string {
  const text = jsonText(value)
  if (text === undefined) throw invalid(`"${field}" is nested too deep: send a flatter JSON value`)
  return text
}

export const MAX_UNIQUE_KEY_LENGTH = 1024

/** `unique_key` and `unique_for` (seconds; left to the lane's `unique_for` when absent). */
function uniqueFields(fields: Fields): UniqueScheduleInput['unique'] {
  const key = fields.unique_key
  const forMs = fields.unique_for === undefined || fields.unique_for === null ? undefined : uniqueForField(fields.unique_for)
  if (key === undefined || key === null) {
    if (forMs !== undefined) throw invalid('"unique_for" needs a "unique_key"')
    return undefined
  }
  if (typeof key !== 'string' || key === '' || key.length > MAX_UNIQUE_KEY_LENGTH) throw invalid(`"unique_key" must be a string of 1 to ${MAX_UNIQUE_KEY_LENGTH} characters`)
  return { key, forMs }
}

function uniqueForField(value: unknown): number {
  if (typeof value !== 'number' || !(value >= 0 && value <= MAX_UNIQUE_FOR_SECONDS)) throw invalid(`"unique_for" must be a number of seconds from 0 to ${MAX_UNIQUE_FOR_SECONDS}`)
  return Math.round(value * 1000)
}

/**
 * `/schedule` takes one job (`{message, lane?, priority?}`) or a batch (`{"jobs": [...]}`);
 * `unique` is set when a job carries a unique key (such a schedule may queue less than it was given).
 */
export type ScheduleRequest = ({ batch: false; job: UniqueScheduleInput; waitMs: number | undefined } | { batch: true; jobs: UniqueScheduleInput[] }) & { unique: boolean }

export function parseSchedule(fields: Fields): ScheduleRequest {
  const jobs = fields.jobs
  if (jobs === undefined || jobs === null) {
    const job = parseJob(fields)
    return { batch: false, job, unique: job.unique !== undefined, waitMs: secondsField(fields.wait, 'wait', true) }
  }
  if (fields.wait !== undefined && fields.wait !== null) throw invalid('"wait" is for one job, not a batch')
  if (fields.message !== undefined && fields.message !== null) throw invalid('give either "message" or "jobs", not both')
  if (!Array.isArray(jobs) || jobs.length === 0) throw invalid('"jobs" must be a non-empty array of jobs')
  const parsed = jobs.map((entry: unknown, i) => {
    try {
      if (!isJsonObject(entry)) throw invalid('must be a JSON object')
      return parseJob(entry)
    } catch (err) {
      throw invalid(`jobs[${i}]: ${(err as Error).message}`)
    }
  })
  return { batch: true, jobs: parsed, unique: parsed.some((job) => job.unique !== undefined) }
}

/** The longest `timeout`, `lease` or `delay`: Node timers hold at most 2^31-1 ms. */
export const MAX_SECONDS = 2147483

/**
 * An optional number of seconds (the field `name`'s `value`), in milliseconds; `min` is exclusive
 * when `positive`. The fields take their values by name where they call (here, also in intField
 * and countField): `fields[name]` in one place for every name was a megamorphic load per field.
 */
function secondsField(value: unknown, name: string, positive: boolean): number | undefined {
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > MAX_SECONDS || (positive && value <= 0)) {
    throw invalid(`"${name}" must be a number of seconds ${positive ? 'above 0' : 'from 0'} up to ${MAX_SECONDS}`)
  }
  return Math.max(Math.round(value * 1000), positive ? 1 : 0)
}

export interface Receive {
  lane: string
  /** Lease the job for this long instead of taking it for good. */
  leaseMs: number | undefined
  /** Up to this many jobs in one reply (a batch reply); undefined: one job, the original's reply. */
  count: number | undefined
}

/** The most jobs one receive may ask for, and one batch ack, release or touch may name. */
export const MAX_BATCH = 1000

/** The field `name`'s `value`, a whole number from `min` to `max`, or undefined when absent. */
function intField(value: unknown, name: string, min: number, max: number): number | undefined {
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw invalid(`"${name}" must be an integer from ${min} to ${max}`)
  return value
}

export function parseReceive(fields: Fields): Receive {
  return { lane: laneField(fields), leaseMs: secondsField(fields.lease, 'lease', true), count: intField(fields.count, 'count', 1, MAX_BATCH) }
}

export interface BlockingReceive extends Receive {
  /** Answer "empty queue" after this long with no job; undefined waits for ever. */
  timeoutMs: number | undefined
  /** With `count`: wait until this many jobs are ready (or the timeout passes); default 1. */
  min: number
}

export function parseBlockingReceive(fields: Fields): BlockingReceive {
  const receive = parseReceive(fields)
  const min = intField(fields.min, 'min', 1, MAX_BATCH)
  if (min !== undefined && (receive.count === undefined || min > receive.count)) throw invalid('"min" needs "count", and must not exceed it')
  return { ...receive, timeoutMs: secondsField(fields.timeout, 'timeout', false), min: min ?? 1 }
}


function tokenField(fields: Fields): string {
  const token = fields.lease_token
  if (token === undefined || token === null || token === '') throw invalid('missing lease_token (the leased receive answered it with the job)')
  if (typeof token !== 'string' || token.length > 128) throw invalid('"lease_token" must be a string of at most 128 characters')
  return token
}

export function hashField(fields: Fields): string {
  const hash = fields.hash
  if (hash === undefined || hash === null || hash === '') throw invalid('missing hash')
  if (typeof hash !== 'string' || hash.length > 128) throw invalid('"hash" must be a string of at most 128 characters')
  return hash
}

/** One lease command, or a batch of them (`{"leases": [{"hash", "lease_token", ...}, ...]}`). */
export type LeaseCommands = { batch: false; command: LeaseCommand } | { batch: true; commands: LeaseCommand[] }

function leaseCommands(fields: Fields, one: (fields: Fields) => LeaseCommand): LeaseCommands {
  const leases = fields.leases
  if (leases === undefined || leases === null) return { batch: false, command: one(fields) }
  if (fields.hash !== undefined && fields.hash !== null) throw invalid('give either "hash" or "leases", not both')
  if (!Array.isArray(leases) || leases.length === 0 || leases.length > MAX_BATCH) throw invalid(`"leases" must be a list of 1 to ${MAX_BATCH} {"hash", "lease_token"} objects`)
  return {
    batch: true,
    commands: leases.map((entry: unknown, i) => {
      try {
        if (!isJsonObject(entry)) throw invalid('must be a JSON object')
        return one(entry)
      } catch (err) {
        throw invalid(`leases[${i}]: ${(err as Error).message}`)
      }
    }),
  }
}

/** An ack may carry what the consumer returns (JSON text), shown by GET /job while the job is kept. */
const ack = (fields: Fields): LeaseCommand => {
  const result = fields.result
  return { hash: hashField(fields), token: tokenField(fields), ms: undefined, result: result === undefined || result === null ? undefined : jsonField(result, 'result') }
}
const release = (fields: Fields): LeaseCommand => ({ hash: hashField(fields), token: tokenField(fields), ms: secondsField(fields.delay, 'delay', false) })
const touch = (fields: Fields): LeaseCommand => ({ hash: hashField(fields), token: tokenField(fields), ms: secondsField(fields.lease, 'lease', true) })

export function parseAck(fields: Fields): LeaseCommands {
  return leaseCommands(fields, ack)
}

export function parseRelease(fields: Fields): LeaseCommands {
  return leaseCommands(fields, release)
}

export function parseTouch(fields: Fields): LeaseCommands {
  return leaseCommands(fields, touch)
}

/** `/job`, `/retry`, `/delete`: a job named by its hash. */
export function parseHash(fields: Fields): string {
  return hashField(fields)
}

export interface FailedQuery {
  lane: string
  offset: number
  limit: number
}

/** The field `name`'s `raw` value: a whole number from a JSON number or, from a query string, its decimal text. */
export function countField(raw: unknown, name: string, fallback: number, min: number, max: number): number {
  if (raw === undefined || raw === null || raw === '') return fallback
  const value = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw invalid(`"${name}" must be an integer from ${min} to ${max}`)
  return value
}

export function parseFailed(fields: Fields): FailedQuery {
  return { lane: laneField(fields), offset: countField(fields.offset, 'offset', 0, 0, 1e9), limit: countField(fields.limit, 'limit', 50, 1, 1000) }
}

export interface DispatchJobRequest {
  repoUrl: string
  ref: string
  arguments: unknown
  lane: string | undefined
  priority: number
}

/** `POST /v0/jobs/queue` (the Dispatch seed's): `{repo_url, ref, arguments, lane?, priority?}`. */
export function parseDispatchJob(fields: Fields): DispatchJobRequest {
  const { repo_url: repoUrl, ref } = fields
  if (typeof repoUrl !== 'string' || repoUrl === '') throw invalid('"repo_url" must be the URL of a git repository')
  if (typeof ref !== 'string' || ref === '') throw invalid('"ref" must be a commit SHA')
  const lane = fields.lane === undefined || fields.lane === null ? undefined : laneField(fields)
  return { repoUrl, ref, arguments: fields.arguments, lane, priority: priorityField(fields) }
}

/** The fields of a query string (`hash=...&lane=...`), for the GET endpoints. */
export function queryFields(query: string): Fields {
  return Object.fromEntries(new URLSearchParams(query))
}
