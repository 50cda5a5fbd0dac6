import type { Config } from '../config'
import { parseAddress } from '../config'
import type { Logger } from '../log'
import type { HistoryLimits } from '../queue/history'
import type { BackgroundTasks } from '../service/tasks'
import type { JobStore } from './job-store'
import { MemoryStore } from './memory-store'
import { RedisStore } from './redis/redis-store'

/** A store as the daemon runs it: its chores started with the service's tasks, closed at shutdown. */
export interface OpenStore {
  store: JobStore
  start(tasks: BackgroundTasks): void
  close(): Promise<void>
}

/**
 * The store `config.store` names. Memory: queue.json (and the journal) in the data directory.
 * Redis: nothing on disk (Redis's own persistence applies); runner lanes' concurrency holds across
 * every daemon sharing the lanes, read from `concurrency` as reloads change it.
 */
export function openStore(config: Config, logger: Logger, runnerLanes: string[], history: HistoryLimits, concurrency: (lane: string) => number): OpenStore {
  if (config.store === 'redis') {
    const target = config.redis_url !== '' ? { url: config.redis_url } : { cluster: config.redis_cluster.map((node) => parseAddress(node)!) }
    const store = new RedisStore({
      target,
      prefix: config.redis_prefix,
      logger,
      history,
      runnerLanes: new Map(runnerLanes.map((lane) => [lane, () => concurrency(lane)])),
    })
    if (config.persist_queue) logger.info('store "redis": queue.json and the journal are not used; Redis\'s own persistence (AOF, replicas) keeps the jobs')
    return { store, start: (tasks) => store.start(tasks), close: () => store.close() }
  }
  const store = new MemoryStore({
    logger,
    runnerLanes,
    history,
    persistence: !config.persist_queue
      ? undefined
      : {
          dataDir: config.data_dir,
          journal: config.persistence === 'journal' ? { fsync: config.journal_fsync, fsyncMs: config.journal_fsync_ms, maxBytes: config.journal_max_bytes } : undefined,
        },
  })
  return { store, start: (tasks) => store.start(tasks, config.persist_queue ? config.persist_interval * 1000 : 0), close: () => store.close() }
}
