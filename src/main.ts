import { mkdirSync } from 'node:fs'
import { version } from '../package.json'
import type { Config } from './config'
import { parseAddress } from './config'
import { isLoopback } from './http/auth'
import { HTTP_ENGINE, type HttpServer, startHttpServer } from './http/server'
import { Routes } from './http/routes'
import type { Logger } from './log'
import { acquirePidFile, releasePidFile } from './persist/pidfile'
import { SnapshotStore } from './persist/store'
import { Queue } from './queue/queue'

export { version }

export interface Daemon {
  readonly port: number
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

/** Wires the daemon: data directory lock, queue, snapshot, HTTP server, periodic snapshots. */
export async function startDaemon(config: Config, logger: Logger): Promise<Daemon> {
  const startedAt = Date.now()
  mkdirSync(config.data_dir, { recursive: true })
  acquirePidFile(config.pid_file)
  try {
    const queue = new Queue({
      limits: {
        maxQueuedJobs: config.max_queued_jobs,
        maxQueuedBytes: config.max_queued_bytes,
        maxMessageBytes: config.max_message_bytes,
        maxLanes: config.max_lanes,
        maxParkedReceivers: config.max_parked_receivers,
      },
    })
    const store = config.persist_queue ? new SnapshotStore(config.data_dir, logger) : undefined
    if (store !== undefined) {
      const loadStarted = performance.now()
      const restored = store.load(queue)
      const duration = Math.round(performance.now() - loadStarted)
      logger.info({ file: store.queueFile, jobs: restored, next_job_num: queue.nextJobNum, duration_ms: duration }, 'queue loaded')
    }
    const routes = new Routes({
      queue,
      logger,
      version,
      throttleReceive: config.throttle_receive,
      throttleSchedule: config.throttle_schedule,
      statusExtras: () => ({
        server: {
          uptime_seconds: Math.floor((Date.now() - startedAt) / 1000),
          http_engine: HTTP_ENGINE,
          next_job_num: queue.nextJobNum,
          queued_jobs_total: queue.totalQueued,
          queued_bytes: queue.queuedBytes,
          parked_receivers: queue.parkedReceivers,
          memory: memoryUsage(),
        },
        snapshot: store === undefined ? { enabled: false } : { enabled: true, file: store.queueFile, ...store.status },
      }),
    })
    const { host, port } = parseAddress(config.address)!
    const http = await startHttpServer({ host, port, authToken: config.auth_token, maxBodyBytes: config.max_body_bytes, routes, logger })
    if (HTTP_ENGINE.includes('fallback')) logger.warn('the native uWebSockets.js build did not load; serving with its slow fallback')
    if (config.auth_token === '' && !isLoopback(host)) {
      logger.warn({ address: config.address }, 'listening beyond this machine without auth_token: anyone who can reach it can read, schedule and take jobs')
    }
    logger.info({ address: `${host}:${http.port}`, engine: HTTP_ENGINE, data_dir: config.data_dir, version }, 'listening')

    const stopSnapshots =
      store !== undefined && config.persist_interval > 0
        ? every(config.persist_interval * 1000, () => void store.save(queue, 'interval').catch(() => undefined))
        : undefined
    return { port: http.port, shutdown: makeShutdown({ config, logger, queue, store, routes, http, stopSnapshots }) }
  } catch (err) {
    releasePidFile(config.pid_file)
    throw err
  }
}

interface Parts {
  config: Config
  logger: Logger
  queue: Queue
  store: SnapshotStore | undefined
  routes: Routes
  http: HttpServer
  stopSnapshots: (() => void) | undefined
}

function makeShutdown({ config, logger, queue, store, routes, http, stopSnapshots }: Parts): Daemon['shutdown'] {
  let done: Promise<number> | undefined
  const run = async (reason: string): Promise<number> => {
    logger.info({ reason }, 'shutting down')
    http.stopAccepting()
    routes.beginShutdown()
    stopSnapshots?.()
    let code = 0
    if (store !== undefined) {
      try {
        await store.save(queue, 'shutdown')
      } catch {
        code = 1
      }
    }
    http.close()
    // A pid file left behind tells `dispenserd stop` the shutdown was not clean.
    if (code === 0) releasePidFile(config.pid_file)
    logger.info({ exit_code: code, jobs: queue.totalQueued }, code === 0 ? 'stopped' : 'stopped; the final snapshot FAILED')
    return code
  }
  return (reason) => (done ??= run(reason))
}
