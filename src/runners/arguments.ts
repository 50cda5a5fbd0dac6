import { ApiError } from '../errors'
import { isJsonObject } from '../json'
import { ENV_NAME, isAllowedName } from './environment'
import { type ArgumentSpec, ENVIRONMENT_RUNNERS, type RunnerLane } from './lanes'

/**
 * Checks a job for a runner lane when it is scheduled (Dispatch: "if we make a malformed request,
 * we can immediately return an error"). The message is a JSON object:
 * `{"arguments": {"SRC": "a.png"}, "target": "https://..."}` (both optional).
 */

export type ArgumentValue = string | number | boolean

export interface RunnerMessage {
  arguments: Record<string, unknown>
  target: string | undefined
}


/** Levels of nesting one argument may have (http and module lanes take any JSON): plenty for any task, and far from what breaks JSON.stringify. */
export const MAX_ARGUMENT_DEPTH = 64

function invalid(message: string): ApiError {
  return new ApiError('invalid_data', message)
}

export function parseRunnerMessage(lane: RunnerLane, message: string): RunnerMessage {
  let parsed: unknown
  try {
    parsed = JSON.parse(message)
  } catch {
    throw invalid(`lane ${JSON.stringify(lane.lane)} is run by the ${lane.runner} runner: "message" must be a JSON object such as {"arguments": {...}}`)
  }
  if (!isJsonObject(parsed)) throw invalid(`lane ${JSON.stringify(lane.lane)}: "message" must be a JSON object such as {"arguments": {...}}`)
  for (const key of Object.keys(parsed)) {
    if (key !== 'arguments' && key !== 'target') throw invalid(`message: unknown field ${JSON.stringify(key)} (expected "arguments" and optionally "target")`)
  }
  const { arguments: args = {}, target } = parsed
  if (!isJsonObject(args)) throw invalid('message: "arguments" must be an object')
  if (target !== undefined && typeof target !== 'string') throw invalid('message: "target" must be a string')
  for (const [key, value] of Object.entries(args)) {
    if (isDeeperThan(value, MAX_ARGUMENT_DEPTH)) throw invalid(`argument ${quoted(key)} is nested more than ${MAX_ARGUMENT_DEPTH} levels deep`)
  }
  if (lane.arguments !== undefined) return { arguments: checkDeclared(lane.arguments, args), target }
  return { arguments: ENVIRONMENT_RUNNERS.has(lane.runner) ? checkAllowedEnv(lane, args) : args, target }
}

/** An exec or container lane without declared arguments: only names its `allowed_env` admits, scalar values. */
function checkAllowedEnv(lane: RunnerLane, args: Record<string, unknown>): Record<string, ArgumentValue> {
  const patterns = lane.allowedEnv ?? []
  for (const [key, value] of Object.entries(args)) {
    if (patterns.length === 0) throw invalid(`argument ${JSON.stringify(key)}: lane ${JSON.stringify(lane.lane)} takes no arguments (it declares neither "arguments" nor "allowed_env")`)
    if (!ENV_NAME.test(key)) throw invalid(`argument ${JSON.stringify(key)}: names must be environment variable names (letters, digits, _; not starting with a digit)`)
    if (!isAllowedName(patterns, key)) throw invalid(`argument "${key}" is not allowed on lane ${JSON.stringify(lane.lane)} (allowed_env: ${patternList(lane)})`)
    if (!isScalar(value)) throw invalid(`argument "${key}" must be a string, number or boolean`)
    refuseNul(key, value)
  }
  return args as Record<string, ArgumentValue>
}

function patternList(lane: RunnerLane): string {
  return (lane.allowedEnv ?? []).map((p) => ('name' in p ? p.name : `${p.prefix}*`)).join(', ')
}

export function checkDeclared(spec: ArgumentSpec[], args: Record<string, unknown>): Record<string, ArgumentValue> {
  const declared = new Map(spec.map((s) => [s.key, s]))
  for (const key of Object.keys(args)) {
    if (!declared.has(key)) throw invalid(`argument ${quoted(key)} is not declared for this lane (declared: ${spec.map((s) => s.key).join(', ') || 'none'})`)
  }
  for (const { key, type, required } of spec) {
    const value = args[key]
    if (value === undefined || value === null) {
      if (required) throw invalid(`argument "${key}" is required`)
      continue
    }
    const fits =
      type === 'string' ? typeof value === 'string' : type === 'boolean' ? typeof value === 'boolean' : type === 'integer' ? Number.isSafeInteger(value) : typeof value === 'number' && Number.isFinite(value)
    if (!fits) throw invalid(`argument "${key}" must be ${type === 'integer' ? 'an integer' : `a ${type}`}, got ${shown(value)}`)
    refuseNul(key, value)
  }
  return Object.fromEntries(Object.entries(args).filter(([, v]) => v !== null)) as Record<string, ArgumentValue>
}

function isScalar(value: unknown): value is ArgumentValue {
  return typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))
}

/** Declared and exec arguments become environment variables, which cannot hold a NUL: refused now, not at run time. */
function refuseNul(key: string, value: unknown): void {
  if (typeof value === 'string' && value.includes('\0')) throw invalid(`argument "${key}" contains a NUL character, which an environment variable cannot hold`)
}

/** A value as an error message shows it: a scalar, cut short; an array or object by its kind only (it may be huge or deep). */
function shown(value: unknown): string {
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'object' && value !== null) return 'an object'
  return quoted(value)
}

function quoted(value: unknown): string {
  const text = JSON.stringify(value)
  return text.length > 64 ? `${text.slice(0, 60)}…` : text
}

/** Breadth first, so a value deep enough to overflow the stack of a recursive walk is measured too. */
function isDeeperThan(value: unknown, limit: number): boolean {
  let level: unknown[] = [value]
  for (let depth = 0; level.length > 0; depth++) {
    if (depth > limit) return true
    const next: unknown[] = []
    for (const item of level) {
      if (typeof item === 'object' && item !== null) for (const child of Object.values(item)) next.push(child)
    }
    level = next
  }
  return false
}
