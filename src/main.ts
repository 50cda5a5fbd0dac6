import path from 'node:path'
import { version } from '../package.json'
import type { Config } from './config'
import { allRunnerLanes, parseAddress, queueLimits } from './config'
import { warnIfOpen } from './http/auth'
import { checkTlsFiles, tlsFiles } from './http/tls'
import { HTTP_ENGINE, type HttpServer, startHttpServer } from './http/server'
import { Routes } from './http/routes'
import type { Logger } from './log'
import { releasePidFile, writePidFile } from './persist/pidfile'
import { type DataDirLock, lockDataDir } from './persist/lock'
import { prepareDirectory } from './persist/data-dir'
import { removeStaleTemporaries } from './persist/atomic'
import { SNAPSHOT_FILES } from './persist/store'
import { JobService } from './service/job-service'
import { CronScheduler } from './service/cron'
import { DEFAULT_KEEP_FINISHED_MS } from './service/lane-settings'
import { jobLog } from './service/job-log'
import { Exposition, type MetricSources } from './metrics/exposition'
import { overview } from './metrics/overview'
import { RATE_SAMPLE_MS } from './service/rates'
import { loadUiFiles } from './http/ui-assets'
import { JobMetrics } from './metrics/job-metrics'
import { type OpenStore, openStore } from './store/open'
import { Dispatcher } from './runners/dispatcher'
import { DispatchRepos, validateDispatchArguments } from './runners/dispatch'
import type { DispatchIntake } from './http/routes'
import { createRunner } from './runners/registry'
import { type Live, reload } from './reload'

export { version }

export interface Daemon {
  readonly port: number
  /** SIGHUP: applies what it can of `next` at once; logs what changed and what needs a restart. */
  reload(next: Config): void
  /** Stops serving, writes the final snapshot and closes; resolves to the process exit code. */
  shutdown(reason: string): Promise<number>
}

function memoryUsage(): { rss: number; heap_used: number } {
  const { rss, heapUsed } = process.memoryUsage()
  return { rss, heap_used: heapUsed }
}

/**
 * Wires the daemon: data directory lock, queue, snapshot, HTTP server, periodic snapshots. The
 * configuration arrives checked whole; what can still fail here (a runner that cannot be built, the
 * data directory, the snapshot, the address) fails before anything is served, and a failure after
 * listening began closes the listener again: a daemon that did not start serves nothing.
 */
export async function startDaemon(config: Config, logger: Logger): Promise<Daemon> {
  const startedAt = Date.now()
  // TLS files and runners first: what cannot be used stops the daemon before it touches the data directory.
  const tls = tlsFiles(config)
  if (tls !== undefined) checkTlsFiles(tls)
  const { dispatch } = config
  const repos = dispatch === undefined ? undefined : new DispatchRepos({ dir: path.join(config.data_dir, 'dispatch'), allowedRepos: dispatch.allowedRepos, logger })
  const runnerLanes = allRunnerLanes(config).map((spec) => ({ spec, runner: createRunner(spec, config.root, logger, repos) }))
  const keepFinished = new Map(runnerLanes.map(({ spec }) => [spec.lane, spec.keepFinishedMs]))
  let consumerKeep = (_lane: string): number => DEFAULT_KEEP_FINISHED_MS
  prepareDirectory(config.data_dir, 'data_dir')
  const lock = await lockDataDir(config.data_dir, config.pid_file)
  try {
    writePidFile(config.pid_file)
    for (const { file, bytes } of removeStaleTemporaries(config.data_dir, SNAPSHOT_FILES)) {
      logger.warn({ file, bytes }, 'removed a temporary file left by a snapshot that was cut short')
    }
    const live: Live = { config, stopping: false }
    // Runner lanes keep succeeded jobs for their keep_finished; other lanes keep jobs acked with a
    // result for their lane settings' (read when a job finishes: a reload changes them).
    const history = { keepFinishedMs: (lane: string) => keepFinished.get(lane) ?? consumerKeep(lane), maxFinished: config.max_finished_jobs, maxFinishedBytes: config.max_finished_bytes }
    const concurrency = (lane: string): number => allRunnerLanes(live.config).find((spec) => spec.lane === lane)?.concurrency ?? 1
    const opened = openStore(config, logger, runnerLanes.map(({ spec }) => spec.lane), history, concurrency)
    const { store } = opened
    const service = new JobService({ store, logger, limits: queueLimits(config) })
    service.setLaneSettings(config.lane_settings)
    consumerKeep = (lane) => service.keepFinishedMs(lane)
    service.events.subscribe(jobLog(logger))
    const jobMetrics = new JobMetrics()
    service.events.subscribe(jobMetrics)
    const dispatcher = new Dispatcher(runnerLanes, service, logger)
    service.setLanePolicy(dispatcher)
    service.tasks.add('drain rates', () => service.drainRates.sample()).every(RATE_SAMPLE_MS)
    const sources: MetricSources = {
      laneStats: () => service.laneStats(),
      totals: () => service.totals(),
      pausedLanes: () => service.pausedLanes(),
      tasks: () => service.tasks.status(),
      store: () => service.storeStats(),
      runners: () => dispatcher.counters(),
      jobs: jobMetrics,
    }
    opened.start(service.tasks)
    const cron = new CronScheduler(service, store, logger)
    await cron.start(config.cron)
    const routes = new Routes({
      service,
      logger,
      version,
      throttleReceive: config.throttle_receive,
      throttleSchedule: config.throttle_schedule,
      journaled: store.defersReplies,
      cron,
      dispatch: repos === undefined ? undefined : dispatchIntake(repos, dispatch!.lane.lane),
      statusExtras: () => ({
        server: {
          uptime_seconds: Math.floor((Date.now() - startedAt) / 1000),
          http_engine: HTTP_ENGINE,
          ...service.totals(),
          memory: memoryUsage(),
        },
        limits: service.limitsInForce(),
        paused_lanes: [...service.pausedLanes()],
        runners: dispatcher.counters(),
        cron: cron.status(),
        ...service.status(),
      }),
      metrics: new Exposition(sources),
      overview: () => overview(sources, (lane) => service.drainRates.rate(lane)),
    })
    const { host, port } = parseAddress(config.address)!
    const dashboard = { update: () => JSON.stringify(overview(sources, (lane) => service.drainRates.rate(lane))), intervalMs: 1000 }
    const http = await startHttpServer({ host, port, authToken: config.auth_token, maxBodyBytes: config.max_body_bytes, routes, logger, live: dashboard, ui: loadUiFiles(), tls })
    try {
      // Runner slots before the first log line that says the daemon is up.
      dispatcher.start()
    } catch (err) {
      http.close()
      throw err
    }
    if (HTTP_ENGINE.includes('fallback')) logger.warn('the native uWebSockets.js build did not load; serving with its slow fallback')
    warnIfOpen(config.auth_token, host, config.address, logger, tls !== undefined)
    logger.info({ address: `${host}:${http.port}`, https: tls !== undefined, engine: HTTP_ENGINE, data_dir: config.data_dir, store: config.store, version }, 'listening')

    return {
      port: http.port,
      reload: (next) => reload(live, next, { logger, service, dispatcher, routes, http, host, cron }),
      shutdown: makeShutdown({ live, logger, service, store: opened, dispatcher, routes, http, lock, cron }),
    }
  } catch (err) {
    releasePidFile(config.pid_file)
    lock.release()
    throw err
  }
}

/** `POST /v0/jobs/queue` checks a job against its Dispatchfile before it is queued. */
function dispatchIntake(repos: DispatchRepos, lane: string): DispatchIntake {
  return {
    lane,
    refusal: (repoUrl) => repos.refusal(repoUrl),
    async prepare(repoUrl, ref, args, signal) {
      const { sha, file } = await repos.dispatchfile(repoUrl, ref, signal)
      return JSON.stringify({ repo_url: repoUrl, ref: sha, arguments: validateDispatchArguments(file, args) })
    },
  }
}

interface Parts {
  live: Live
  logger: Logger
  service: JobService
  store: OpenStore
  dispatcher: Dispatcher
  routes: Routes
  http: HttpServer
  lock: DataDirLock
  cron: CronScheduler
}

function makeShutdown({ live, logger, service, store, dispatcher, routes, http, lock, cron }: Parts): Daemon['shutdown'] {
  let done: Promise<number> | undefined
  const run = async (reason: string): Promise<number> => {
    live.stopping = true
    const { config } = live
    logger.info({ reason }, 'shutting down')
    http.stopAccepting()
    cron.stop()
    routes.beginShutdown()
    // Running jobs get shutdown_grace to finish; then they are stopped and put back in their lanes.
    await dispatcher.stop(config.shutdown_grace * 1000)
    service.stop()
    // Takes under way for dismissed receivers end, and their jobs go back, while the store is open.
    await service.settle()
    // Replies waiting for the journal go out (or their jobs go back), then the final snapshot.
    let code = 0
    try {
      await store.close()
    } catch {
      code = 1
    }
    http.close()
    // A pid file left behind tells `dispenserd stop` the shutdown was not clean.
    if (code === 0) releasePidFile(config.pid_file)
    lock.release()
    logger.info({ exit_code: code, jobs: service.totals().queued_jobs_total }, code === 0 ? 'stopped' : 'stopped; the final snapshot FAILED')
    return code
  }
  return (reason) => (done ??= run(reason))
}
