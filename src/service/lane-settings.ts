import { isJsonObject } from '../json'
import { unknownKey } from '../suggest'

/**
 * What the job service decides per lane beyond the runner (scheduling policy), from the config
 * file's `lanes`: a block with a `runner` is a runner lane that may also take these keys; a block
 * without one declares a consumer lane's settings only.
 */
export interface LaneSettings {
  /** How long a finished job keeps its unique key when a schedule gives `unique_key` without `unique_for` (ms). */
  uniqueForMs: number
}

/** The longest `unique_for`, in seconds: a year. */
export const MAX_UNIQUE_FOR_SECONDS = 31_536_000

/** Keys every lane block takes for its scheduling settings (runner lanes beside their own). */
export const SCHEDULING_KEYS = ['unique_for'] as const

export const DEFAULT_LANE_SETTINGS: LaneSettings = { uniqueForMs: 0 }

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
      const problem = unknownKey(block, SCHEDULING_KEYS, `lanes.${lane}`, 'a lane served by a runner names it in "runner"')
      if (problem !== undefined) throw new LaneSettingsError(problem)
    }
    out[lane] = parseBlock(lane, block)
  }
  return out
}

function parseBlock(lane: string, block: Record<string, unknown>): LaneSettings {
  const uniqueFor = block.unique_for
  if (uniqueFor !== undefined && (typeof uniqueFor !== 'number' || !(uniqueFor >= 0 && uniqueFor <= MAX_UNIQUE_FOR_SECONDS))) {
    throw new LaneSettingsError(`lane ${JSON.stringify(lane)}: "unique_for" must be a number of seconds from 0 to ${MAX_UNIQUE_FOR_SECONDS}`)
  }
  return { uniqueForMs: Math.round(((uniqueFor as number | undefined) ?? 0) * 1000) }
}
