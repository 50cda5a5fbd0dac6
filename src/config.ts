import path from 'node:path'
import { isJsonObject } from './json'
import type { QueueLimits } from './service/limits'
import { type DispatchConfig, LaneConfigError, type RunnerLane, parseDispatch, parseLanes } from './runners/lanes'
import { closest, unknownKey } from './suggest'
import { type LaneSettingsByName, LaneSettingsError, parseLaneSettings } from './service/lane-settings'
import { type CronEntry, CronEntryError } from './service/cron-entry'
import { parseCronList } from './service/cron-config'

/**
 * Every setting, in one table: its config-file key, flag, environment variable, type and default.
 * The flag parser, the environment reader, the file validator and `--help` are all built from it.
 * Precedence: flag > environment > config file > default.
 */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]
export const LOG_FORMATS = ['auto', 'pretty', 'json'] as const
export type LogFormat = (typeof LOG_FORMATS)[number]
export const PERSISTENCE_MODES = ['snapshot', 'journal'] as const
export const FSYNC_MODES = ['always', 'interval', 'never'] as const
export const STORES = ['memory', 'redis'] as const

export interface Config {
  address: string
  persist_queue: boolean
  persist_interval: number
  throttle_receive: boolean
  throttle_schedule: boolean
  max_body_bytes: number
  log_level: LogLevel
  log_format: LogFormat
  data_dir: string
  pid_file: string
  log_file: string
  auth_token: string
  /** HTTPS: the certificate and its key (PEM files); both or neither. */
  tls_cert: string | undefined
  tls_key: string | undefined
  max_queued_jobs: number
  max_queued_bytes: number
  max_message_bytes: number
  max_lanes: number
  max_parked_receivers: number
  persistence: (typeof PERSISTENCE_MODES)[number]
  journal_fsync: (typeof FSYNC_MODES)[number]
  journal_fsync_ms: number
  journal_max_bytes: number
  shutdown_grace: number
  max_finished_jobs: number
  max_finished_bytes: number
  max_result_bytes: number
  /** Where jobs are kept: in this process (memory) or in Redis, shared by every daemon using it. */
  store: (typeof STORES)[number]
  /** The Redis store's server (redis:// or rediss:// URL), or the cluster's nodes; one of the two. */
  redis_url: string
  redis_cluster: string[]
  /** Starts every Redis key of this installation. */
  redis_prefix: string
  /** Runner lanes, from the config file only (parsed by runners/lanes.ts). */
  lanes: RunnerLane[]
  /** Cron entries from the config file only (service/cron-config.ts). */
  cron: CronEntry[]
  /** Every lane block's scheduling settings (service/lane-settings.ts), runner lanes' included. */
  lane_settings: LaneSettingsByName
  /** Dispatch Jobs from git, from the config file only (runners/lanes.ts); undefined when off. */
  dispatch: DispatchConfig | undefined
  /** The directory relative paths in the config file resolve against (runner commands and modules). */
  root: string
}

type Kind =
  | { type: 'boolean' }
  | { type: 'integer'; min: number; max: number }
  | { type: 'address' }
  | { type: 'choice'; values: readonly string[] }
  | { type: 'path' }
  | { type: 'secret' }
  | { type: 'text'; pattern: RegExp; expected: string }
  | { type: 'nodes' }

export interface Setting {
  key: keyof Config
  /** The flag's name without dashes; booleans get `--name` and `--no-name`. */
  flag: string
  /** The flag's value placeholder in --help (booleans take none). */
  arg?: string
  kind: Kind
  help: string
  /** Where the config file holds it, when not at the top level under its key (e.g. `redis.url`). */
  file?: { block: string; key: string }
}

const INT32_MAX = 2147483647

export const SETTINGS: readonly Setting[] = [
  { key: 'address', arg: 'host:port', flag: 'address', kind: { type: 'address' }, help: 'host:port to listen on' },
  { key: 'persist_queue', flag: 'persist', kind: { type: 'boolean' }, help: 'load data/queue.json at start and save it periodically and at shutdown' },
  { key: 'persist_interval', arg: 'seconds', flag: 'persist-interval', kind: { type: 'integer', min: 0, max: INT32_MAX }, help: 'seconds between snapshots (0: only at shutdown)' },
  { key: 'throttle_receive', flag: 'throttle-receive', kind: { type: 'boolean' }, help: 'serve at most one receive every 25 ms' },
  { key: 'throttle_schedule', flag: 'throttle-schedule', kind: { type: 'boolean' }, help: 'accept at most one schedule every 25 ms' },
  { key: 'max_body_bytes', arg: 'bytes', flag: 'max-body-bytes', kind: { type: 'integer', min: 1, max: 512 * 1024 * 1024 }, help: 'largest request body accepted (413 above it)' },
  { key: 'log_level', arg: 'level', flag: 'log-level', kind: { type: 'choice', values: LOG_LEVELS }, help: `one of ${LOG_LEVELS.join(', ')}` },
  { key: 'log_format', arg: 'format', flag: 'log-format', kind: { type: 'choice', values: LOG_FORMATS }, help: 'pretty (for people), json (for log shippers), or auto: pretty on a terminal, json otherwise' },
  { key: 'data_dir', arg: 'dir', flag: 'data-dir', kind: { type: 'path' }, help: 'directory for queue.json, the pid file and the log file' },
  { key: 'pid_file', arg: 'file', flag: 'pid-file', kind: { type: 'path' }, help: 'pid file, for `dispenserd stop` (default: DATA_DIR/dispenserd.pid)' },
  { key: 'log_file', arg: 'file', flag: 'log-file', kind: { type: 'path' }, help: 'where -d writes the log (default: DATA_DIR/dispenserd.log)' },
  { key: 'tls_cert', arg: 'file', flag: 'tls-cert', kind: { type: 'path' }, help: 'serve HTTPS with this certificate (PEM; with --tls-key)' },
  { key: 'tls_key', arg: 'file', flag: 'tls-key', kind: { type: 'path' }, help: "the certificate's private key (PEM)" },
  { key: 'max_queued_jobs', arg: 'n', flag: 'max-queued-jobs', kind: { type: 'integer', min: 0, max: 1e12 }, help: 'schedules past this many queued jobs answer 503 (0: no limit)' },
  { key: 'max_queued_bytes', arg: 'bytes', flag: 'max-queued-bytes', kind: { type: 'integer', min: 0, max: 2 ** 50 }, help: 'schedules past this many bytes of queued messages answer 503 (0: no limit)' },
  { key: 'max_message_bytes', arg: 'bytes', flag: 'max-message-bytes', kind: { type: 'integer', min: 0, max: 512 * 1024 * 1024 }, help: 'longest message accepted (0: only max_body_bytes limits it)' },
  { key: 'max_lanes', arg: 'n', flag: 'max-lanes', kind: { type: 'integer', min: 0, max: 1e9 }, help: 'requests that would create more lanes answer 503 (0: no limit)' },
  { key: 'max_parked_receivers', arg: 'n', flag: 'max-parked-receivers', kind: { type: 'integer', min: 0, max: 1e9 }, help: 'receive_block calls past this many waiting answer 503 (0: no limit)' },
  { key: 'persistence', arg: 'mode', flag: 'persistence', kind: { type: 'choice', values: PERSISTENCE_MODES }, help: 'snapshot (queue.json only) or journal (every change appended to a journal as well)' },
  { key: 'journal_fsync', arg: 'mode', flag: 'journal-fsync', kind: { type: 'choice', values: FSYNC_MODES }, help: 'always (answer after fsync), interval (fsync every journal_fsync_ms) or never (leave it to the OS)' },
  { key: 'journal_fsync_ms', arg: 'ms', flag: 'journal-fsync-ms', kind: { type: 'integer', min: 1, max: 60_000 }, help: 'with journal_fsync interval: the longest wait between a write and its fsync' },
  { key: 'journal_max_bytes', arg: 'bytes', flag: 'journal-max-bytes', kind: { type: 'integer', min: 1024, max: 2 ** 40 }, help: 'take a snapshot (which empties the journal) once the journal grows past this and past the last snapshot' },
  { key: 'shutdown_grace', arg: 'seconds', flag: 'shutdown-grace', kind: { type: 'integer', min: 0, max: 3600 }, help: 'at shutdown, how long running jobs may finish before they are stopped and put back' },
  { key: 'max_finished_jobs', arg: 'n', flag: 'max-finished-jobs', kind: { type: 'integer', min: 0, max: 10_000_000 }, help: 'succeeded jobs of runner lanes kept for GET /job at most (each lane keeps them keep_finished seconds)' },
  { key: 'max_finished_bytes', arg: 'bytes', flag: 'max-finished-bytes', kind: { type: 'integer', min: 0, max: 2 ** 40 }, help: 'bytes of messages of succeeded jobs kept for GET /job at most, the oldest forgotten first (0: no bound but max_finished_jobs)' },
  { key: 'max_result_bytes', arg: 'bytes', flag: 'max-result-bytes', kind: { type: 'integer', min: 0, max: 512 * 1024 * 1024 }, help: 'largest result (JSON) an ack or a run may leave for GET /job (0: only max_body_bytes limits it)' },
  { key: 'store', arg: 'store', flag: 'store', kind: { type: 'choice', values: STORES }, help: 'memory (jobs kept in this process) or redis (in Redis or a Redis/Valkey cluster, shared by every daemon using it)' },
  { key: 'redis_url', arg: 'url', flag: 'redis-url', kind: { type: 'secret' }, file: { block: 'redis', key: 'url' }, help: 'with store redis: the server, redis://[user:password@]host:port[/db] (rediss:// for TLS)' },
  { key: 'redis_cluster', arg: 'host:port,...', flag: 'redis-cluster', kind: { type: 'nodes' }, file: { block: 'redis', key: 'cluster' }, help: 'with store redis: some nodes of a Redis/Valkey cluster (instead of redis_url)' },
  { key: 'redis_prefix', arg: 'prefix', flag: 'redis-prefix', kind: { type: 'text', pattern: /^[A-Za-z0-9_.:-]{1,64}$/, expected: 'letters, digits, _ . : - (1 to 64)' }, file: { block: 'redis', key: 'prefix' }, help: 'with store redis: the start of every key (installations sharing one Redis need different prefixes)' },
  { key: 'auth_token', arg: 'token', flag: 'auth-token', kind: { type: 'secret' }, help: 'when set, every endpoint but GET / requires "Authorization: Bearer TOKEN" (prefer the environment variable)' },
]

export function envName(setting: Setting): string {
  return `DISPENSERD_${setting.key.toUpperCase()}`
}

/** Defaults as the original ships them, plus ours. Paths are relative to the root directory. */
export const DEFAULTS = {
  address: '0.0.0.0:8282',
  persist_queue: true,
  persist_interval: 3600,
  throttle_receive: false,
  throttle_schedule: false,
  max_body_bytes: 1024 * 1024,
  log_level: 'info',
  log_format: 'auto',
  auth_token: '',
  max_queued_jobs: 10_000_000,
  max_queued_bytes: 1024 * 1024 * 1024,
  max_message_bytes: 1024 * 1024,
  max_lanes: 10_000,
  max_parked_receivers: 50_000,
  persistence: 'snapshot',
  journal_fsync: 'always',
  journal_fsync_ms: 50,
  journal_max_bytes: 64 * 1024 * 1024,
  shutdown_grace: 30,
  max_finished_jobs: 10_000,
  max_finished_bytes: 64 * 1024 * 1024,
  max_result_bytes: 64 * 1024,
  store: 'memory',
  redis_url: '',
  redis_cluster: [] as string[],
  redis_prefix: 'dispenserd',
} as const

/** The limits the queue enforces. */
export function queueLimits(config: Config): QueueLimits {
  return {
    maxQueuedJobs: config.max_queued_jobs,
    maxQueuedBytes: config.max_queued_bytes,
    maxMessageBytes: config.max_message_bytes,
    maxLanes: config.max_lanes,
    maxParkedReceivers: config.max_parked_receivers,
    maxResultBytes: config.max_result_bytes,
  }
}

export class ConfigError extends Error {}

export interface ConfigSources {
  /** Flag values as typed (strings, or booleans for on/off flags), keyed by config key. */
  flags: Partial<Record<keyof Config, string | boolean>>
  env: NodeJS.ProcessEnv
  /** The parsed config file, if there is one, and its name for messages. */
  file?: { name: string; values: unknown }
  /** Relative paths from the file and the defaults resolve against this; flags and env against cwd. */
  root: string
  cwd: string
}

export interface ResolvedConfig {
  config: Config
  warnings: string[]
}

export function parseAddress(address: string): { host: string; port: number } | undefined {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:\s[\]]*):(\d{1,5})$/.exec(address)
  if (match === null) return undefined
  const port = Number(match[2])
  if (port > 65535) return undefined
  const host = match[1]!.replace(/^\[(.*)\]$/, '$1')
  return { host: host === '' ? '0.0.0.0' : host, port }
}

function describe(kind: Kind): string {
  switch (kind.type) {
    case 'boolean': return 'true or false'
    case 'integer': return `an integer from ${kind.min} to ${kind.max}`
    case 'address': return 'host:port with a port from 0 (any free port) to 65535'
    case 'choice': return `one of ${kind.values.join(', ')}`
    case 'path': return 'a non-empty path'
    case 'secret': return 'a string'
    case 'text': return kind.expected
    case 'nodes': return 'a list of host:port (an array in the file, comma-separated in a flag or the environment)'
  }
}

/** A list of host:port with a port from 1 to 65535. */
function checkNodes(value: unknown): string[] | undefined {
  if (!Array.isArray(value) || value.length === 0) return undefined
  for (const node of value) {
    if (typeof node !== 'string') return undefined
    const parsed = parseAddress(node)
    if (parsed === undefined || parsed.port === 0 || !node.includes(':') || node.startsWith(':')) return undefined
  }
  return value as string[]
}

/** Checks a value of its JSON type; returns undefined when it does not fit. */
function check(kind: Kind, value: unknown): Config[keyof Config] | undefined {
  switch (kind.type) {
    case 'boolean': return typeof value === 'boolean' ? value : undefined
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value) && value >= kind.min && value <= kind.max ? value : undefined
    case 'address': return typeof value === 'string' && parseAddress(value) !== undefined ? value : undefined
    case 'choice': return typeof value === 'string' && kind.values.includes(value) ? (value as Config[keyof Config]) : undefined
    case 'path': return typeof value === 'string' && value !== '' ? value : undefined
    case 'secret': return typeof value === 'string' ? value : undefined
    case 'text': return typeof value === 'string' && kind.pattern.test(value) ? value : undefined
    case 'nodes': return checkNodes(value)
  }
}

/** Converts text from a flag or an environment variable to its JSON type, then checks it. */
function fromText(kind: Kind, text: string | boolean): Config[keyof Config] | undefined {
  if (typeof text === 'boolean') return check(kind, text)
  const trimmed = text.trim()
  switch (kind.type) {
    case 'boolean':
      if (/^(true|1|yes|on)$/i.test(trimmed)) return true
      if (/^(false|0|no|off)$/i.test(trimmed)) return false
      return undefined
    case 'integer': return /^-?\d+$/.test(trimmed) ? check(kind, Number(trimmed)) : undefined
    case 'nodes': return trimmed === '' ? undefined : check(kind, trimmed.split(',').map((node) => node.trim()))
    default: return check(kind, text)
  }
}

export function resolveConfig(sources: ConfigSources): ResolvedConfig {
  const warnings: string[] = []
  checkEnvironment(sources.env, warnings)
  const fileValues = readFileValues(sources)
  const resolved: Partial<Record<keyof Config, unknown>> = {}

  for (const setting of SETTINGS) {
    const { key, kind } = setting
    const flag = sources.flags[key]
    const env = sources.env[envName(setting)]
    let value: Config[keyof Config] | undefined
    let base = sources.root
    if (flag !== undefined) {
      value = fromText(kind, flag)
      if (value === undefined) throw new ConfigError(`--${setting.flag}: expected ${describe(kind)}, got ${JSON.stringify(flag)}`)
      base = sources.cwd
    } else if (env !== undefined && env !== '') {
      value = fromText(kind, env)
      if (value === undefined) throw new ConfigError(`${envName(setting)}: expected ${describe(kind)}, got ${JSON.stringify(env)}`)
      base = sources.cwd
    } else if (fileValues !== undefined && hasFileValue(fileValues, setting)) {
      const [name, raw] = fileValue(fileValues, setting)
      value = check(kind, raw)
      if (value === undefined) {
        throw new ConfigError(`${sources.file!.name}: "${name}" must be ${describe(kind)}, got ${JSON.stringify(raw)}`)
      }
    }
    resolved[key] = kind.type === 'path' && typeof value === 'string' ? path.resolve(base, value) : value
  }

  const dataDir = (resolved.data_dir as string | undefined) ?? path.resolve(sources.root, 'data')
  const config: Config = {
    ...DEFAULTS,
    ...(Object.fromEntries(Object.entries(resolved).filter(([, v]) => v !== undefined)) as Partial<Config>),
    data_dir: dataDir,
    ...readRunnerLanes(sources.file?.name, fileValues),
    root: sources.root,
    pid_file: (resolved.pid_file as string | undefined) ?? path.join(dataDir, 'dispenserd.pid'),
    log_file: (resolved.log_file as string | undefined) ?? path.join(dataDir, 'dispenserd.log'),
    tls_cert: resolved.tls_cert as string | undefined,
    tls_key: resolved.tls_key as string | undefined,
  }
  if ((config.tls_cert === undefined) !== (config.tls_key === undefined)) {
    throw new ConfigError(`${config.tls_cert === undefined ? 'tls_key' : 'tls_cert'} is set without ${config.tls_cert === undefined ? 'tls_cert' : 'tls_key'}: HTTPS needs both the certificate and its key`)
  }
  if (config.persistence === 'journal' && !config.persist_queue) {
    throw new ConfigError('persistence "journal" needs persist_queue: turn persist_queue on, or use persistence "snapshot"')
  }
  checkStore(config)
  return { config, warnings }
}

/** The Redis store needs one place to connect to: a URL or cluster nodes. */
function checkStore(config: Config): void {
  const hasUrl = config.redis_url !== ''
  const hasCluster = config.redis_cluster.length > 0
  if (config.store !== 'redis') return
  if (hasUrl === hasCluster) {
    throw new ConfigError(`store "redis" needs ${hasUrl ? 'either' : 'one of'} redis.url (--redis-url, DISPENSERD_REDIS_URL) ${hasUrl ? 'or' : 'and'} redis.cluster (--redis-cluster, DISPENSERD_REDIS_CLUSTER)${hasUrl ? ', not both' : ''}`)
  }
  if (hasUrl && !/^rediss?:\/\/[^/\s]/.test(config.redis_url)) {
    throw new ConfigError(`redis.url must be redis://host:port or rediss://host:port, got ${JSON.stringify(config.redis_url.replace(/\/\/[^@/]*@/, '//***@'))}`)
  }
  // Fair groups and rate limits keep their state in this process: over Redis every frontend would
  // serve and count alone, so a lane asking for them is refused rather than quietly unfair.
  for (const [lane, settings] of Object.entries(config.lane_settings)) {
    const setting = settings.groupWeights !== undefined ? 'group_weights' : settings.rate !== undefined ? 'rate' : undefined
    if (setting !== undefined) {
      throw new ConfigError(`lane ${JSON.stringify(lane)}: "${setting}" is not offered by store "redis" (only store "memory" has it): remove it from the lane, or use store "memory"`)
    }
  }
}

function hasFileValue(values: Record<string, unknown>, setting: Setting): boolean {
  if (setting.file === undefined) return setting.key in values
  const block = values[setting.file.block]
  return isJsonObject(block) && setting.file.key in block
}

/** The setting's name in the file (`redis.url`) and its value there. */
function fileValue(values: Record<string, unknown>, setting: Setting): [string, unknown] {
  if (setting.file === undefined) return [setting.key, values[setting.key]]
  return [`${setting.file.block}.${setting.file.key}`, (values[setting.file.block] as Record<string, unknown>)[setting.file.key]]
}

function readFileValues(sources: ConfigSources): Record<string, unknown> | undefined {
  if (sources.file === undefined) return undefined
  const { name, values } = sources.file
  if (!isJsonObject(values)) {
    throw new ConfigError(`${name}: expected a JSON object of settings`)
  }
  // A typo must not leave a setting at its default unnoticed: "adress" would listen on every interface.
  const topLevel = SETTINGS.filter((s) => s.file === undefined).map((s) => s.key)
  const blocks = [...new Set(SETTINGS.flatMap((s) => (s.file === undefined ? [] : [s.file.block])))]
  const problem = unknownKey(values, [...topLevel, ...blocks, 'lanes', 'dispatch', 'cron'], '')
  if (problem !== undefined) throw new ConfigError(`${name}: ${problem}`)
  for (const block of blocks) {
    if (!(block in values)) continue
    const inner = values[block]
    if (!isJsonObject(inner)) throw new ConfigError(`${name}: "${block}" must be an object`)
    const blockProblem = unknownKey(inner, SETTINGS.filter((s) => s.file?.block === block).map((s) => s.file!.key), block)
    if (blockProblem !== undefined) throw new ConfigError(`${name}: ${blockProblem}`)
  }
  return values
}

/** The lanes of `lanes` and the Dispatch Jobs lane, if there is one. */
export function allRunnerLanes(config: Pick<Config, 'lanes' | 'dispatch'>): RunnerLane[] {
  return config.dispatch === undefined ? config.lanes : [...config.lanes, config.dispatch.lane]
}

/** The file's runner lanes and Dispatch Jobs, checked whole; problems name the file. */
function readRunnerLanes(name: string | undefined, values: Record<string, unknown> | undefined): Pick<Config, 'lanes' | 'dispatch' | 'lane_settings' | 'cron'> {
  try {
    const lanes = parseLanes(values?.lanes)
    const laneSettings = parseLaneSettings(values?.lanes)
    const dispatch = parseDispatch(values?.dispatch)
    if (dispatch !== undefined && lanes.some(({ lane }) => lane === dispatch.lane.lane)) {
      throw new LaneConfigError(`lane ${JSON.stringify(dispatch.lane.lane)} is declared in "lanes" and is also the "dispatch" lane`)
    }
    return { lanes, dispatch, lane_settings: laneSettings, cron: parseCronList(values?.cron, lanes, dispatch) }
  } catch (err) {
    if (err instanceof LaneConfigError || err instanceof LaneSettingsError || err instanceof CronEntryError) throw new ConfigError(`${name}: ${err.message}`)
    throw err
  }
}

/**
 * Variables named DISPENSERD_* that are ours but not settings: read at start (ROOT, CONFIG), by the
 * tests (TEST_BIN), by a command-line client (URL, TOKEN, CA), or handed to runner jobs (the rest).
 */
const OTHER_VARIABLES = ['DISPENSERD_ROOT', 'DISPENSERD_CONFIG', 'DISPENSERD_TEST_BIN', 'DISPENSERD_URL', 'DISPENSERD_TOKEN', 'DISPENSERD_CA', 'DISPENSERD_LANE', 'DISPENSERD_JOB_NUM', 'DISPENSERD_JOB_HASH', 'DISPENSERD_ATTEMPT']

/**
 * A DISPENSERD_* variable that names nothing of ours: a near miss of a known name (a typo such as
 * DISPENSERD_AUTH_TOKN, which would start without auth) stops the daemon; anything else is only
 * warned about, since the environment is shared with other programs and other versions.
 */
function checkEnvironment(env: NodeJS.ProcessEnv, warnings: string[]): void {
  const known = [...SETTINGS.map(envName), ...OTHER_VARIABLES]
  for (const name of Object.keys(env)) {
    if (!name.toUpperCase().startsWith('DISPENSERD_') || known.includes(name)) continue
    const near = closest(name.toUpperCase(), known)
    if (near !== undefined) throw new ConfigError(`environment variable ${name} is not a setting (did you mean ${near}?)`)
    warnings.push(`environment variable ${name} is not a setting of dispenserd; ignored`)
  }
}
