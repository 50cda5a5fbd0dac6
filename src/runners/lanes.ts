import { isJsonObject } from '../json'
import { unknownKey } from '../suggest'
import { ENV_NAME, type EnvPattern, parseAllowedEnv } from './environment'
import { parseRepoLocation } from './location'
import { SCHEDULING_KEYS, isConsumerLaneBlock } from '../service/lane-settings'

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
  /** "exec", "http", "container", or the path of a module. */
  runner: string
  /** Runs at once; 0 pauses the lane (jobs wait). */
  concurrency: number
  timeoutMs: number
  retries: number
  backoff: { baseMs: number; maxMs: number }
  keepFinishedMs: number
  /** The declared arguments; undefined when the lane declares none. */
  arguments: ArgumentSpec[] | undefined
  /** Exec and container lanes without declared arguments: the variable names a job may set (none if undefined). */
  allowedEnv: EnvPattern[] | undefined
  /** The lane's block as written, runner-specific keys included. */
  config: Record<string, unknown>
}

export class LaneConfigError extends Error {}

const COMMON_KEYS = ['runner', 'concurrency', 'timeout', 'retries', 'backoff', 'keep_finished', 'arguments', ...SCHEDULING_KEYS]

/**
 * The keys each kind of lane takes beside the common ones; any other key stops the daemon, so a
 * typo cannot leave a setting at its default unnoticed. A runner module's own settings go under
 * `options` (it gets the whole block as `config`), which is the one place keys are not checked.
 */
const RUNNER_KEYS = {
  exec: ['command', 'kill_grace', 'allowed_env', 'cwd'],
  http: ['target', 'allowed_targets', 'task_name'],
  container: [
    'image', 'command', 'env', 'memory', 'cpus', 'network', 'user', 'workdir', 'labels', 'pull', 'keep_exited_for', 'upkeep_interval',
    'engine', 'engine_ca', 'engine_cert', 'engine_key', 'namespace', 'filter', 'filter_file', 'allowed_env',
  ],
  module: ['options'],
  dispatch: [],
} as const satisfies Record<string, readonly string[]>

type LaneKind = keyof typeof RUNNER_KEYS

export function isModulePath(runner: string): boolean {
  return runner.startsWith('./') || runner.startsWith('../') || runner.startsWith('/') || /\.[cm]?js$/.test(runner)
}

function laneKind(runner: string): LaneKind | undefined {
  if (runner === 'exec' || runner === 'http' || runner === 'container') return runner
  return isModulePath(runner) ? 'module' : undefined
}

/** The runner lanes of `lanes`; blocks without a runner are consumer lanes' settings (service/lane-settings.ts). */
export function parseLanes(raw: unknown): RunnerLane[] {
  if (raw === undefined) return []
  if (!isJsonObject(raw)) throw new LaneConfigError('"lanes" must be an object mapping lane names to their settings')
  return Object.entries(raw)
    .filter(([, block]) => !isConsumerLaneBlock(block))
    .map(([lane, block]) => parseLane(lane, block, `lanes.${lane}`))
}

/** Refuses the first key of `block` outside `known`, naming its path in the file. */
function checkKeys(block: Record<string, unknown>, known: readonly string[], at: string, hint?: string): void {
  const problem = unknownKey(block, known, at, hint)
  if (problem !== undefined) throw new LaneConfigError(problem)
}

/** One lane's block; `at` is its path in the file, `fixedKind` set for lanes whose runner is not the user's to name. */
function parseLane(lane: string, block: unknown, at: string, fixedKind?: LaneKind): RunnerLane {
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
  if (typeof runner !== 'string' || runner === '') return fail('"runner" must be "exec", "http", "container" or the path of a runner module')
  const kind = fixedKind ?? laneKind(runner)
  if (kind === undefined) return fail(`unknown runner ${JSON.stringify(runner)} (built in: exec, http, container; or the path of a module, such as "./runners/mine.js")`)
  checkKeys(block, [...COMMON_KEYS, ...RUNNER_KEYS[kind]], at, kind === 'module' ? 'a runner module\'s own settings go under "options"' : undefined)
  if (block.options !== undefined && !isJsonObject(block.options)) fail('"options" must be an object (the runner module\'s own settings)')
  const backoff = block.backoff ?? {}
  if (!isJsonObject(backoff)) return fail('"backoff" must be an object such as {"base": 2, "max": 3600}')
  checkKeys(backoff, ['base', 'max'], `${at}.backoff`)
  const backoffNumber = (key: string, fallback: number): number => {
    const value = backoff[key]
    if (value === undefined) return fallback
    if (typeof value !== 'number' || !(value > 0 && value <= 2147483)) return fail(`"backoff.${key}" must be a number of seconds above 0`)
    return value
  }
  const args = block.arguments === undefined ? undefined : parseSpec(block.arguments, at, fail)
  return {
    lane,
    runner,
    concurrency: number('concurrency', 1, 0, 10_000),
    timeoutMs: number('timeout', 300, 0.001, 2147483, false) * 1000,
    retries: number('retries', 0, 0, 1000),
    backoff: { baseMs: backoffNumber('base', 2) * 1000, maxMs: backoffNumber('max', 3600) * 1000 },
    keepFinishedMs: number('keep_finished', 3600, 0, 2147483, false) * 1000,
    arguments: args,
    allowedEnv: parseEnvAllowlist(block, runner, args !== undefined, fail),
    config: block,
  }
}

/** Runners whose jobs' arguments become environment variables, and so take `allowed_env`. */
export const ENVIRONMENT_RUNNERS: ReadonlySet<string> = new Set(['exec', 'container'])

/** `allowed_env`, an exec or container lane's alternative to declaring its arguments one by one. */
function parseEnvAllowlist(block: Record<string, unknown>, runner: string, declared: boolean, fail: (problem: string) => never): EnvPattern[] | undefined {
  const raw = block.allowed_env
  if (raw === undefined) return undefined
  if (!ENVIRONMENT_RUNNERS.has(runner)) return fail('"allowed_env" is for exec and container lanes, whose arguments become environment variables')
  if (declared) return fail('give "arguments" or "allowed_env", not both: declared arguments already say which names a job may set')
  const patterns = parseAllowedEnv(raw, 'allowed_env')
  return typeof patterns === 'string' ? fail(patterns) : patterns
}

function parseSpec(raw: unknown, at: string, fail: (problem: string) => never): ArgumentSpec[] {
  if (!Array.isArray(raw)) return fail('"arguments" must be a list of {"key", "type", "presence"}')
  const seen = new Set<string>()
  return raw.map((entry: unknown, i) => {
    if (!isJsonObject(entry)) return fail(`arguments[${i}] must be an object`)
    checkKeys(entry, ['key', 'type', 'presence'], `${at}.arguments[${i}]`)
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
const DISPATCH_KEYS = ['allowed_repos', 'lane', ...COMMON_KEYS.filter((key) => key !== 'runner' && key !== 'arguments')]

export function parseDispatch(raw: unknown): DispatchConfig | undefined {
  if (raw === undefined) return undefined
  if (!isJsonObject(raw)) throw new LaneConfigError('"dispatch" must be an object such as {"allowed_repos": ["https://git.example/team/"]}')
  const { allowed_repos: allowed = [], lane = 'dispatch', ...settings } = raw
  if ('runner' in settings || 'arguments' in settings) throw new LaneConfigError('dispatch: "runner" and "arguments" come from each repository, not the config')
  checkKeys(raw, DISPATCH_KEYS, 'dispatch')
  if (!Array.isArray(allowed)) throw new LaneConfigError('dispatch: "allowed_repos" must be a list of repository URL prefixes')
  for (const [i, prefix] of allowed.entries()) {
    const location = typeof prefix === 'string' ? parseRepoLocation(prefix) : 'is not a string'
    if (typeof location === 'string') throw new LaneConfigError(`dispatch: allowed_repos[${i}] ${JSON.stringify(prefix)} ${location}`)
  }
  if (typeof lane !== 'string') throw new LaneConfigError('dispatch: "lane" must be a lane name')
  if (allowed.length === 0) return undefined
  return { allowedRepos: allowed as string[], lane: parseLane(lane, { ...settings, runner: 'dispatch' }, 'dispatch', 'dispatch') }
}
