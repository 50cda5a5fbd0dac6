import { isJsonObject } from '../json'
import { ENV_NAME, type EnvPattern, parseAllowedEnv } from './environment'
import { parseRepoLocation } from './location'

/**
 * Runner lanes, from the config file's `lanes` object: each key a lane served by a runner. Every
 * problem is reported with the lane's name and the key, and stops the daemon at start.
 */

export const ARGUMENT_TYPES = ['string', 'integer', 'number', 'boolean'] as const
export type ArgumentType = (typeof ARGUMENT_TYPES)[number]

export interface ArgumentSpec {
  key: string
  type: ArgumentType
  required: boolean
}

export interface RunnerLane {
  lane: string
  /** "exec", "http", or the path of a module. */
  runner: string
  /** Runs at once; 0 pauses the lane (jobs wait). */
  concurrency: number
  timeoutMs: number
  retries: number
  backoff: { baseMs: number; maxMs: number }
  keepFinishedMs: number
  /** The declared arguments; undefined when the lane declares none. */
  arguments: ArgumentSpec[] | undefined
  /** Exec lanes without declared arguments: the variable names a job may set (none if undefined). */
  allowedEnv: EnvPattern[] | undefined
  /** The lane's block as written, runner-specific keys included. */
  config: Record<string, unknown>
}

export class LaneConfigError extends Error {}

const COMMON_KEYS = new Set(['runner', 'concurrency', 'timeout', 'retries', 'backoff', 'keep_finished', 'arguments'])

export function parseLanes(raw: unknown): RunnerLane[] {
  if (raw === undefined) return []
  if (!isJsonObject(raw)) throw new LaneConfigError('"lanes" must be an object mapping lane names to their runner settings')
  return Object.entries(raw).map(([lane, block]) => parseLane(lane, block))
}

function parseLane(lane: string, block: unknown): RunnerLane {
  const fail = (problem: string): never => {
    throw new LaneConfigError(`lane ${JSON.stringify(lane)}: ${problem}`)
  }
  if (lane === '' || lane.length > 128) fail('a lane name must be 1 to 128 characters')
  if (!isJsonObject(block)) return fail('expected an object of settings')
  const number = (key: string, fallback: number, min: number, max: number, integer = true): number => {
    const value = block[key]
    if (value === undefined) return fallback
    if (typeof value !== 'number' || (integer && !Number.isInteger(value)) || !(value >= min && value <= max)) {
      return fail(`"${key}" must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`)
    }
    return value
  }
  const runner = block.runner
  if (typeof runner !== 'string' || runner === '') fail('"runner" must be "exec", "http" or the path of a runner module')
  const backoff = block.backoff ?? {}
  if (!isJsonObject(backoff)) fail('"backoff" must be an object such as {"base": 2, "max": 3600}')
  const backoffNumber = (key: string, fallback: number): number => {
    const value = (backoff as Record<string, unknown>)[key]
    if (value === undefined) return fallback
    if (typeof value !== 'number' || !(value > 0 && value <= 2147483)) return fail(`"backoff.${key}" must be a number of seconds above 0`)
    return value
  }
  const args = block.arguments === undefined ? undefined : parseSpec(block.arguments, fail)
  return {
    lane,
    runner: runner as string,
    concurrency: number('concurrency', 1, 0, 10_000),
    timeoutMs: number('timeout', 300, 0.001, 2147483, false) * 1000,
    retries: number('retries', 0, 0, 1000),
    backoff: { baseMs: backoffNumber('base', 2) * 1000, maxMs: backoffNumber('max', 3600) * 1000 },
    keepFinishedMs: number('keep_finished', 3600, 0, 2147483, false) * 1000,
    arguments: args,
    allowedEnv: parseEnvAllowlist(block, runner as string, args !== undefined, fail),
    config: block,
  }
}

/** `allowed_env`, an exec lane's alternative to declaring its arguments one by one. */
function parseEnvAllowlist(block: Record<string, unknown>, runner: string, declared: boolean, fail: (problem: string) => never): EnvPattern[] | undefined {
  const raw = block.allowed_env
  if (raw === undefined) return undefined
  if (runner !== 'exec') return fail('"allowed_env" is for exec lanes, whose arguments become environment variables')
  if (declared) return fail('give "arguments" or "allowed_env", not both: declared arguments already say which names a job may set')
  const patterns = parseAllowedEnv(raw, 'allowed_env')
  return typeof patterns === 'string' ? fail(patterns) : patterns
}

function parseSpec(raw: unknown, fail: (problem: string) => never): ArgumentSpec[] {
  if (!Array.isArray(raw)) return fail('"arguments" must be a list of {"key", "type", "presence"}')
  const seen = new Set<string>()
  return raw.map((entry: unknown, i) => {
    if (!isJsonObject(entry)) return fail(`arguments[${i}] must be an object`)
    const { key, type, presence } = entry
    if (typeof key !== 'string' || !ENV_NAME.test(key)) return fail(`arguments[${i}].key must be an environment variable name (letters, digits, _)`)
    if (seen.has(key)) return fail(`arguments[${i}]: "${key}" is declared twice`)
    seen.add(key)
    const kind = type ?? 'string'
    if (!(ARGUMENT_TYPES as readonly unknown[]).includes(kind)) return fail(`arguments[${i}].type must be one of ${ARGUMENT_TYPES.join(', ')}`)
    if (presence !== undefined && presence !== 'required' && presence !== 'optional') return fail(`arguments[${i}].presence must be "required" or "optional"`)
    return { key, type: kind as ArgumentType, required: presence === 'required' }
  })
}

export interface DispatchConfig {
  allowedRepos: string[]
  lane: RunnerLane
}

/**
 * The `dispatch` block: `{"allowed_repos": ["https://git.example/team/"], "lane": "dispatch", ...}`
 * plus the lane settings (concurrency, timeout, retries, backoff, keep_finished) of the lane its
 * jobs run on. Without allowed repositories Dispatch Jobs are off.
 */
export function parseDispatch(raw: unknown): DispatchConfig | undefined {
  if (raw === undefined) return undefined
  if (!isJsonObject(raw)) throw new LaneConfigError('"dispatch" must be an object such as {"allowed_repos": ["https://git.example/team/"]}')
  const { allowed_repos: allowed = [], lane = 'dispatch', ...settings } = raw
  if (!Array.isArray(allowed)) throw new LaneConfigError('dispatch: "allowed_repos" must be a list of repository URL prefixes')
  for (const [i, prefix] of allowed.entries()) {
    const location = typeof prefix === 'string' ? parseRepoLocation(prefix) : 'is not a string'
    if (typeof location === 'string') throw new LaneConfigError(`dispatch: allowed_repos[${i}] ${JSON.stringify(prefix)} ${location}`)
  }
  if (typeof lane !== 'string') throw new LaneConfigError('dispatch: "lane" must be a lane name')
  if (allowed.length === 0) return undefined
  if ('runner' in settings || 'arguments' in settings) throw new LaneConfigError('dispatch: "runner" and "arguments" come from each repository, not the config')
  return { allowedRepos: allowed as string[], lane: parseLane(lane, { ...settings, runner: 'dispatch' }) }
}

/** Keys of a lane block the common parser does not read: for runners to check their own. */
export function runnerKeys(lane: RunnerLane): string[] {
  return Object.keys(lane.config).filter((key) => !COMMON_KEYS.has(key))
}
