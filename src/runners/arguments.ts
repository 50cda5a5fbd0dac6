import { ApiError } from '../errors'
import { isJsonObject } from '../json'
import { type ArgumentSpec, ENV_NAME, type RunnerLane } from './lanes'

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

/** Runners that hand arguments to a program as environment variables (names and values must fit). */
const ENVIRONMENT_RUNNERS = new Set(['exec', 'container'])

/**
 * Names that change how a program loads or what a shell runs, refused as undeclared arguments (a
 * lane may still declare them on purpose). DISPENSERD_ names are the daemon's own.
 */
const DANGEROUS = /^(PATH|HOME|IFS|ENV|BASH_ENV|SHELLOPTS|BASHOPTS|PS4|CDPATH|NODE_OPTIONS|NODE_PATH|PYTHONPATH|PYTHONHOME|PYTHONSTARTUP|PERL5LIB|PERL5OPT|PERLLIB|RUBYOPT|RUBYLIB|GCONV_PATH|LOCPATH|GLIBC_TUNABLES|LD_.*|DYLD_.*|MALLOC_.*|DISPENSERD_.*)$/

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
  if (lane.arguments !== undefined) return { arguments: checkDeclared(lane.arguments, args), target }
  return { arguments: ENVIRONMENT_RUNNERS.has(lane.runner) ? checkUndeclared(args) : args, target }
}

function checkUndeclared(args: Record<string, unknown>): Record<string, ArgumentValue> {
  for (const [key, value] of Object.entries(args)) {
    if (!ENV_NAME.test(key)) throw invalid(`argument ${JSON.stringify(key)}: names must be environment variable names (letters, digits, _; not starting with a digit)`)
    if (DANGEROUS.test(key)) throw invalid(`argument "${key}" is refused: it would change how the program loads or runs (declare it in the lane's "arguments" to allow it)`)
    if (!isScalar(value)) throw invalid(`argument "${key}" must be a string, number or boolean`)
  }
  return args as Record<string, ArgumentValue>
}

export function checkDeclared(spec: ArgumentSpec[], args: Record<string, unknown>): Record<string, ArgumentValue> {
  const declared = new Map(spec.map((s) => [s.key, s]))
  for (const key of Object.keys(args)) {
    if (!declared.has(key)) throw invalid(`argument ${JSON.stringify(key)} is not declared for this lane (declared: ${spec.map((s) => s.key).join(', ') || 'none'})`)
  }
  for (const { key, type, required } of spec) {
    const value = args[key]
    if (value === undefined || value === null) {
      if (required) throw invalid(`argument "${key}" is required`)
      continue
    }
    const fits =
      type === 'string' ? typeof value === 'string' : type === 'boolean' ? typeof value === 'boolean' : type === 'integer' ? Number.isSafeInteger(value) : typeof value === 'number' && Number.isFinite(value)
    if (!fits) throw invalid(`argument "${key}" must be ${type === 'integer' ? 'an integer' : `a ${type}`}, got ${JSON.stringify(value)}`)
  }
  return Object.fromEntries(Object.entries(args).filter(([, v]) => v !== null)) as Record<string, ArgumentValue>
}

function isScalar(value: unknown): value is ArgumentValue {
  return typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))
}
