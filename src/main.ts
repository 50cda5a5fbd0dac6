import { mkdirSync } from 'node:fs'
import path from 'node:path'
import { version } from '../package.json'
import type { Config } from './config'
import { allRunnerLanes, parseAddress, queueLimits } from './config'
import { warnIfOpen } from './http/auth'
import { HTTP_ENGINE, type HttpServer, startHttpServer } from './http/server'
import { Routes } from './http/routes'
import type { Logger } from './log'
import { releasePidFile, writePidFile } from './persist/pidfile'
import { type DataDirLock, lockDataDir } from './persist/lock'
import { removeStaleTemporaries } from './persist/atomic'
import { Journal } from './persist/journal'
import { readJournal } from './persist/replay'
import { SNAPSHOT_FILES, SnapshotStore } from './persist/store'
import { DeadlineTimer } from './deadlines'
import { Dispatcher } from './runners/dispatcher'
import { DispatchRepos, validateDispatchArguments } from './runners/dispatch'
import type { DispatchIntake } from './http/routes'
import { createRunner } from './runners/registry'
import { Queue } from './queue/queue'
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

/** Node timers overflow past 2^31-1 ms (~24.8 days), so longer intervals are waited in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1

function every(ms: number, task: () => void): () => void {
  let timer: NodeJS.Timeout
  let remaining = ms
  const arm = (): void => {
    const step = Math.min(remaining, MAX_TIMER_MS)
    timer = setTimeout(() => {
      remaining -= step
      if (remaining <= 0) {
        remaining = ms
        task()
      }
      arm()
    }, step)
  }
  arm()
  return () => clearTimeout(timer)
}

/**
 * Wires the daemon: data directory lock, queue, snapshot, HTTP server, periodic snapshots. The
 * configuration arrives checked whole; what can still fail here (a runner that cannot be built, the
 * data directory, the snapshot, the address) fails before anything is served, and a failure after
 * listening began closes the listener again: a daemon that did not start serves nothing.
 */
export async function startDaemon(config: Config, logger: Logger): Promise<Daemon> {
  const startedAt = Date.now()
  // Runners first: one that cannot be built stops the daemon before it touches the data directory.
  const { dispatch } = config
  const repos = dispatch === undefined ? undefined : new DispatchRepos({ dir: path.join(config.data_dir, 'dispatch'), allowedRepos: dispatch.allowedRepos, logger })
  const runnerLanes = allRunnerLanes(config).map((spec) => ({ spec, runner: createRunner(spec, config.root, logger, repos) }))
  const keepFinished = new Map(runnerLanes.map(({ spec }) => [spec.lane, spec.keepFinishedMs]))
  mkdirSync(config.data_dir, { recursive: true })
  const lock = await lockDataDir(config.data_dir, config.pid_file)
  try {
    writePidFile(config.pid_file)
    for (const { file, bytes } of removeStaleTemporaries(config.data_dir, SNAPSHOT_FILES)) {
      logger.warn({ file, bytes }, 'removed a temporary file left by a snapshot that was cut short')
    }
    const replay = config.persistence === 'journal' ? readJournal(config.data_dir, logger) : undefined
    const store = config.persist_queue ? new SnapshotStore(config.data_dir, logger) : undefined
    const journal = replay === undefined ? undefined : startJournal(config, logger, replay.generations, () => compact('journal full'), () => repair())
    const deadlines = new DeadlineTimer(() => {
      const { leases } = queue.expireDue()
      for (const job of leases) logger.warn({ lane: job.lane, job_num: job.jobNum, reason: 'lease expired' }, 'job put back')
      return queue.nextDeadline()
    })
    const queue = new Queue({
      changes: journal,
      onDeadline: (at) => deadlines.arm(at),
      history: { keepFinishedMs: (lane) => keepFinished.get(lane) ?? 0, maxFinished: config.max_finished_jobs, maxFinishedBytes: config.max_finished_bytes },
      limits: queueLimits(config),
    })
    for (const { spec } of runnerLanes) queue.indexLane(spec.lane)
    const dispatcher = new Dispatcher(runnerLanes, queue, logger)
    /** A snapshot that also empties the journal, in the background; then `after`, whether it was written or not. */
    const compact = (reason: string, after?: () => void): void => {
      // A failed save is the store's to report: it logs it and shows it in GET /.
      store!.save(queue, reason, journal).then(after, () => after?.())
    }
    /** After a journal failure: snapshots until one makes the journal whole again. */
    const repair = (): void => compact('journal failed', () => journal!.whenDurable(() => journal!.broken && setTimeout(repair, 5000).unref()))
    if (store !== undefined) {
      const loadStarted = performance.now()
      const restored = store.load(queue, replay?.state)
      const duration = Math.round(performance.now() - loadStarted)
      logger.info({ file: store.queueFile, jobs: restored, next_job_num: queue.nextJobNum, duration_ms: duration, journal_records: replay?.state.records }, 'queue loaded')
    }
    if (replay !== undefined && replay.generations.length > 0) compact('journal replayed')
    const routes = new Routes({
      queue,
      logger,
      version,
      throttleReceive: config.throttle_receive,
      throttleSchedule: config.throttle_schedule,
      durability: journal,
      lanes: dispatcher,
      dispatch: repos === undefined ? undefined : dispatchIntake(repos, dispatch!.lane.lane),
      statusExtras: () => ({
        server: {
          uptime_seconds: Math.floor((Date.now() - startedAt) / 1000),
          http_engine: HTTP_ENGINE,
          next_job_num: queue.nextJobNum,
          queued_jobs_total: queue.totalQueued,
          queued_bytes: queue.queuedBytes,
          parked_receivers: queue.parkedReceivers,
          leased_jobs_total: queue.leasedJobs,
          dead_jobs_total: queue.deadCount,
          finished_jobs_forgotten: queue.finishedForgotten,
          memory: memoryUsage(),
        },
        runners: dispatcher.counters(),
        snapshot: store === undefined ? { enabled: false } : { enabled: true, file: store.queueFile, ...store.status },
        journal:
          journal === undefined
            ? { enabled: false }
            : { enabled: true, fsync: config.journal_fsync, generation: journal.generation, error: journal.broken?.message ?? null },
      }),
    })
    const { host, port } = parseAddress(config.address)!
    const http = await startHttpServer({ host, port, authToken: config.auth_token, maxBodyBytes: config.max_body_bytes, routes, logger })
    try {
      // Runner slots before the first log line that says the daemon is up.
      dispatcher.start()
    } catch (err) {
      http.close()
      throw err
    }
    if (HTTP_ENGINE.includes('fallback')) logger.warn('the native uWebSockets.js build did not load; serving with its slow fallback')
    warnIfOpen(config.auth_token, host, config.address, logger)
    logger.info({ address: `${host}:${http.port}`, engine: HTTP_ENGINE, data_dir: config.data_dir, version }, 'listening')

    const stopSnapshots =
      store !== undefined && config.persist_interval > 0
        ? every(config.persist_interval * 1000, () => compact('interval'))
        : undefined
    const stopTimers = (): void => {
      stopSnapshots?.()
      deadlines.stop()
    }
    const live: Live = { config, stopping: false }
    return {
      port: http.port,
      reload: (next) => reload(live, next, { logger, queue, dispatcher, routes, http, host }),
      shutdown: makeShutdown({ live, logger, queue, store, journal, dispatcher, routes, http, stopTimers, lock }),
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

function startJournal(config: Config, logger: Logger, onDisk: number[], onFull: () => void, onFailure: () => void): Journal {
  return new Journal({
    dir: config.data_dir,
    fsync: config.journal_fsync,
    fsyncMs: config.journal_fsync_ms,
    maxBytes: config.journal_max_bytes,
    generation: (onDisk[onDisk.length - 1] ?? 0) + 1,
    onFull,
    onFailure,
    logger,
  })
}

interface Parts {
  live: Live
  logger: Logger
  queue: Queue
  store: SnapshotStore | undefined
  journal: Journal | undefined
  dispatcher: Dispatcher
  routes: Routes
  http: HttpServer
  stopTimers: () => void
  lock: DataDirLock
}

function makeShutdown({ live, logger, queue, store, journal, dispatcher, routes, http, stopTimers, lock }: Parts): Daemon['shutdown'] {
  let done: Promise<number> | undefined
  const run = async (reason: string): Promise<number> => {
    live.stopping = true
    const { config } = live
    logger.info({ reason }, 'shutting down')
    http.stopAccepting()
    routes.beginShutdown()
    // Running jobs get shutdown_grace to finish; then they are stopped and put back in their lanes.
    await dispatcher.stop(config.shutdown_grace * 1000)
    stopTimers()
    // Replies waiting for the journal go out (or their jobs go back) before the final snapshot.
    if (journal !== undefined) await new Promise((resolve) => journal.whenDurable(resolve))
    let code = 0
    if (store !== undefined) {
      try {
        await store.save(queue, 'shutdown', journal)
      } catch {
        code = 1
      }
    }
    await journal?.close()
    http.close()
    // A pid file left behind tells `dispenserd stop` the shutdown was not clean.
    if (code === 0) releasePidFile(config.pid_file)
    lock.release()
    logger.info({ exit_code: code, jobs: queue.totalQueued }, code === 0 ? 'stopped' : 'stopped; the final snapshot FAILED')
    return code
  }
  return (reason) => (done ??= run(reason))
}
