import { isJsonObject } from '../json'
import { unknownKey } from '../suggest'
import type { RateSpec } from './rate-limits'

/**
 * What the job service decides per lane beyond the runner (scheduling policy), from the config
 * file's `lanes`: a block with a `runner` is a runner lane that may also take these keys; a block
 * without one declares a consumer lane's settings only.
 */
export interface LaneSettings {
  /** How long a finished job keeps its unique key when a schedule gives `unique_key` without `unique_for` (ms). */
  uniqueForMs: number
  /** Consumer lanes: how long a job acked with a result stays visible to `GET /job` (ms; runner lanes have their own). */
  keepFinishedMs: number
  /** How the lane's groups share a priority (weighted round-robin); undefined: every group weighs 1. */
  groupWeights: Readonly<Record<string, number>> | undefined
  /** How fast the lane's jobs may be taken (a token bucket); undefined: as fast as receivers take them. */
  rate: RateSpec | undefined
}

/** The largest weight of a group. */
export const MAX_GROUP_WEIGHT = 1000

/** How long a job acked with a result is kept by default: an hour, as runner lanes keep theirs. */
export const DEFAULT_KEEP_FINISHED_MS = 3_600_000

/** The longest `unique_for`, in seconds: a year. */
export const MAX_UNIQUE_FOR_SECONDS = 31_536_000

/** Keys every lane block takes for its scheduling settings (runner lanes beside their own). */
export const SCHEDULING_KEYS = ['unique_for', 'group_weights', 'rate'] as const

/** A consumer lane's block takes these; a runner lane's has its own `keep_finished`. */
const CONSUMER_KEYS = [...SCHEDULING_KEYS, 'keep_finished']

export const DEFAULT_LANE_SETTINGS: LaneSettings = { uniqueForMs: 0, keepFinishedMs: DEFAULT_KEEP_FINISHED_MS, groupWeights: undefined, rate: undefined }

export class LaneSettingsError extends Error {}

/** Whether a `lanes` block is a consumer lane's (no runner): its jobs go to receivers. */
export function isConsumerLaneBlock(block: unknown): boolean {
  return isJsonObject(block) && block.runner === undefined
}

/** Settings by lane name (an object without a prototype: a lane may be called `__proto__`). */
export type LaneSettingsByName = Record<string, LaneSettings>

/** The scheduling settings of every block of `lanes` (runner lanes' own keys are checked by runners/lanes.ts). */
export function parseLaneSettings(raw: unknown): LaneSettingsByName {
  const out = Object.create(null) as LaneSettingsByName
  if (!isJsonObject(raw)) return out
  for (const [lane, block] of Object.entries(raw)) {
    if (!isJsonObject(block)) continue
    if (isConsumerLaneBlock(block)) {
      const problem = unknownKey(block, CONSUMER_KEYS, `lanes.${lane}`, 'a lane served by a runner names it in "runner"')
      if (problem !== undefined) throw new LaneSettingsError(problem)
    }
    out[lane] = parseBlock(lane, block)
  }
  return out
}

function parseBlock(lane: string, block: Record<string, unknown>): LaneSettings {
  const seconds = (key: string, fallbackMs: number, max: number): number => {
    const value = block[key]
    if (value === undefined) return fallbackMs
    if (typeof value !== 'number' || !(value >= 0 && value <= max)) throw new LaneSettingsError(`lane ${JSON.stringify(lane)}: "${key}" must be a number of seconds from 0 to ${max}`)
    return Math.round(value * 1000)
  }
  // A runner lane's keep_finished is its runner's (runners/lanes.ts) and is checked there.
  const keepFinishedMs = isConsumerLaneBlock(block) ? seconds('keep_finished', DEFAULT_KEEP_FINISHED_MS, 2147483) : DEFAULT_KEEP_FINISHED_MS
  return { uniqueForMs: seconds('unique_for', 0, MAX_UNIQUE_FOR_SECONDS), keepFinishedMs, groupWeights: parseWeights(lane, block.group_weights), rate: parseRate(lane, block.rate) }
}

/** `{"jobs": N, "per": seconds, "burst": M}`: N jobs every `per` seconds (default 1), at most M at once (default 1). */
function parseRate(lane: string, raw: unknown): RateSpec | undefined {
  if (raw === undefined) return undefined
  const fail = (what: string): never => {
    throw new LaneSettingsError(`lane ${JSON.stringify(lane)}: "rate" ${what}`)
  }
  if (!isJsonObject(raw)) return fail('must be an object such as {"jobs": 10, "per": 1, "burst": 5}')
  const problem = unknownKey(raw, ['jobs', 'per', 'burst'], `lanes.${lane}.rate`)
  if (problem !== undefined) throw new LaneSettingsError(problem)
  const { jobs, per = 1, burst = 1 } = raw
  if (typeof jobs !== 'number' || !Number.isInteger(jobs) || jobs < 1 || jobs > 1e9) fail('"jobs" must be a whole number from 1 to 1000000000')
  if (typeof per !== 'number' || !(per >= 0.001 && per <= 86_400)) fail('"per" must be a number of seconds from 0.001 to 86400')
  if (typeof burst !== 'number' || !Number.isInteger(burst) || burst < 1 || burst > 1e9) fail('"burst" must be a whole number from 1 to 1000000000')
  return { jobs: jobs as number, perMs: (per as number) * 1000, burst: burst as number }
}

function parseWeights(lane: string, raw: unknown): Record<string, number> | undefined {
  if (raw === undefined) return undefined
  const problem = `lane ${JSON.stringify(lane)}: "group_weights" must be an object of group names and whole weights from 1 to ${MAX_GROUP_WEIGHT}, such as {"big-customer": 3}`
  if (!isJsonObject(raw)) throw new LaneSettingsError(problem)
  const weights = Object.create(null) as Record<string, number>
  for (const [group, weight] of Object.entries(raw)) {
    if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 1 || weight > MAX_GROUP_WEIGHT) throw new LaneSettingsError(`${problem}; ${JSON.stringify(group)} has ${JSON.stringify(weight)}`)
    weights[group] = weight
  }
  return weights
}
