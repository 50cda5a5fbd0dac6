import { isDeepStrictEqual } from 'node:util'
import { type Config, SETTINGS, allRunnerLanes, queueLimits } from './config'
import { warnIfOpen } from './http/auth'
import type { Routes } from './http/routes'
import type { HttpServer } from './http/server'
import { type Logger, moreVerbose } from './log'
import type { JobService } from './service/job-service'
import type { Dispatcher } from './runners/dispatcher'
import type { DispatchConfig, RunnerLane } from './runners/lanes'
import { DEFAULT_LANE_SETTINGS, SCHEDULING_KEYS } from './service/lane-settings'
import type { CronScheduler } from './service/cron'
import { when } from './store/job-store'

/**
 * SIGHUP: what a configuration read again can change in a running daemon. Settings that only steer
 * what happens next apply at once; those that shape what is already open or on disk (the address,
 * the data directory, persistence, lanes added, removed or set up differently) are left as they
 * are and reported as needing a restart. Nothing here touches a job.
 */

/** The configuration in effect (reloads change it) and whether shutdown has begun. */
export interface Live {
  config: Config
  stopping: boolean
}

/** What a reload changes, and where the address's host is for the warning about a missing token. */
export interface Reloadable {
  logger: Logger
  service: JobService
  dispatcher: Dispatcher
  routes: Routes
  http: HttpServer
  host: string
  cron: CronScheduler
}

/** Applies what it can of `next` at once; logs what changed and what waits for a restart. */
export function reload(live: Live, next: Config, { logger, service, dispatcher, routes, http, host, cron }: Reloadable): void {
  if (live.stopping) {
    logger.warn('configuration not reloaded: shutting down')
    return
  }
  const { config, changed, needsRestart } = planReload(live.config, next)
  service.setLimits(queueLimits(config))
  http.setAuthToken(config.auth_token)
  http.setMaxBodyBytes(config.max_body_bytes)
  routes.setThrottles(config.throttle_receive, config.throttle_schedule)
  for (const lane of allRunnerLanes(config)) dispatcher.setConcurrency(lane.lane, lane.concurrency)
  service.setLaneSettings(config.lane_settings)
  when(cron.setConfigEntries(config.cron), () => undefined, (err: unknown) => logger.error({ err }, 'reload: the cron entries could not be saved'))
  // Said at the more talkative of the old and new levels, so turning logging down is logged too.
  logger.level = moreVerbose(logger, live.config.log_level, config.log_level)
  logger.info({ changed }, Object.keys(changed).length === 0 ? 'configuration reloaded; nothing to change' : 'configuration reloaded')
  if (needsRestart.length > 0) logger.warn({ needs_restart: needsRestart }, 'configuration reloaded, but these changes need a restart to take effect')
  logger.level = config.log_level
  live.config = config
  if ('auth_token' in changed) warnIfOpen(config.auth_token, host, config.address, logger, config.tls_cert !== undefined)
}

/** Settings a reload applies at once. */
export const RELOADABLE: ReadonlySet<keyof Config> = new Set<keyof Config>([
  'log_level',
  'auth_token',
  'max_body_bytes',
  'max_queued_jobs',
  'max_queued_bytes',
  'max_message_bytes',
  'max_lanes',
  'max_parked_receivers',
  'max_result_bytes',
  'throttle_receive',
  'throttle_schedule',
  'shutdown_grace',
])

export interface ReloadPlan {
  /** What is in effect after the reload: the new value where it applies at once, the old one elsewhere. */
  config: Config
  /** What changes now: its name → "old -> new" (the auth token says only "set", "changed" or "removed"). */
  changed: Record<string, string>
  /** Changed in the configuration, but kept as it is until a restart. */
  needsRestart: string[]
}

export function planReload(current: Config, next: Config): ReloadPlan {
  const plan: ReloadPlan = { config: { ...current }, changed: {}, needsRestart: [] }
  for (const { key, kind } of SETTINGS) {
    const [before, after] = [current[key], next[key]]
    if (isDeepStrictEqual(before, after)) continue
    if (!RELOADABLE.has(key)) {
      plan.needsRestart.push(key)
      continue
    }
    plan.changed[key] = kind.type === 'secret' ? secretChange(String(before), String(after)) : `${String(before)} -> ${String(after)}`
    Object.assign(plan.config, { [key]: after })
  }
  plan.config.lanes = reloadLanes(current.lanes, next.lanes, plan)
  plan.config.dispatch = reloadDispatch(current.dispatch, next.dispatch, plan)
  // Lanes' scheduling settings (unique_for) steer only what is scheduled next: they apply at once.
  plan.config.lane_settings = next.lane_settings
  // So do cron entries: the scheduler takes the new list (records of slots handled are kept).
  plan.config.cron = next.cron
  const raw = (entries: Config['cron']): unknown[] => entries.map((entry) => entry.raw)
  if (!isDeepStrictEqual(raw(current.cron), raw(next.cron))) plan.changed.cron = `${current.cron.map((e) => e.name).join(', ') || '(none)'} -> ${next.cron.map((e) => e.name).join(', ') || '(none)'}`
  for (const lane of new Set([...Object.keys(current.lane_settings), ...Object.keys(next.lane_settings)])) {
    const [before, after] = [current.lane_settings[lane] ?? DEFAULT_LANE_SETTINGS, next.lane_settings[lane] ?? DEFAULT_LANE_SETTINGS]
    if (!isDeepStrictEqual(before, after)) plan.changed[`lanes.${lane} (scheduling)`] = `${JSON.stringify(before)} -> ${JSON.stringify(after)}`
  }
  return plan
}

function secretChange(before: string, after: string): string {
  if (before === '') return 'set'
  return after === '' ? 'removed' : 'changed'
}

function reloadLanes(current: RunnerLane[], next: RunnerLane[], plan: ReloadPlan): RunnerLane[] {
  const kept = new Set(current.map(({ lane }) => lane))
  for (const { lane } of next) if (!kept.has(lane)) plan.needsRestart.push(`lanes.${lane} (added)`)
  return current.map((lane) => {
    const update = next.find(({ lane: name }) => name === lane.lane)
    if (update !== undefined) return reloadLane(lane, update, `lanes.${lane.lane}`, plan)
    plan.needsRestart.push(`lanes.${lane.lane} (removed)`)
    return lane
  })
}

/** A lane's concurrency applies at once; any other key of its block waits for a restart. */
function reloadLane(current: RunnerLane, next: RunnerLane, at: string, plan: ReloadPlan): RunnerLane {
  for (const key of new Set([...Object.keys(current.config), ...Object.keys(next.config)])) {
    if (key === 'concurrency' || (SCHEDULING_KEYS as readonly string[]).includes(key)) continue
    if (!isDeepStrictEqual(current.config[key], next.config[key])) plan.needsRestart.push(`${at}.${key}`)
  }
  if (current.concurrency === next.concurrency) return current
  plan.changed[`${at}.concurrency`] = `${current.concurrency} -> ${next.concurrency}`
  return { ...current, concurrency: next.concurrency }
}

function reloadDispatch(current: DispatchConfig | undefined, next: DispatchConfig | undefined, plan: ReloadPlan): DispatchConfig | undefined {
  if (current === undefined || next === undefined) {
    if (current !== next) plan.needsRestart.push(next === undefined ? 'dispatch (turned off)' : 'dispatch (turned on)')
    return current
  }
  if (!isDeepStrictEqual(current.allowedRepos, next.allowedRepos)) plan.needsRestart.push('dispatch.allowed_repos')
  if (current.lane.lane !== next.lane.lane) {
    plan.needsRestart.push('dispatch.lane')
    return current
  }
  return { ...current, lane: reloadLane(current.lane, next.lane, 'dispatch', plan) }
}
