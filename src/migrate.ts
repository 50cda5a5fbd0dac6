import type { Config } from './config'
import { ConfigError, parseAddress } from './config'
import type { Logger } from './log'
import { lockDataDir } from './persist/lock'
import { readJournal } from './persist/replay'
import { SnapshotStore } from './persist/store'
import { Queue } from './queue/queue'
import { BackgroundTasks } from './service/tasks'
import { RedisStore } from './store/redis/redis-store'

/**
 * `dispenserd migrate`: moves the in-memory store's jobs (data_dir's queue.json, dead.json and
 * journal, as a start would load them) into the Redis store named by redis.url or redis.cluster
 * and redis.prefix. Every lane keeps its serving order; jobs keep their numbers, priorities,
 * hashes, attempts and delays; job numbers continue above the old ones. The data directory is
 * locked meanwhile (no daemon may run on it) and left as it was. Returns the exit code.
 */
export async function migrate(config: Config, logger: Logger): Promise<number> {
  if (config.redis_url === '' && config.redis_cluster.length === 0) {
    throw new ConfigError('migrate needs the Redis store: give redis.url (--redis-url) or redis.cluster (--redis-cluster)')
  }
  const lock = await lockDataDir(config.data_dir, config.pid_file)
  const tasks = new BackgroundTasks(logger)
  let store: RedisStore | undefined
  try {
    const replay = readJournal(config.data_dir, logger)
    const queue = new Queue()
    const loaded = new SnapshotStore(config.data_dir, logger).load(queue, replay.state)
    const target = config.redis_url !== '' ? { url: config.redis_url } : { cluster: config.redis_cluster.map((node) => parseAddress(node)!) }
    store = new RedisStore({ target, prefix: config.redis_prefix, logger })
    store.start(tasks)
    if (!(await store.connected(15_000))) throw new Error('could not connect to Redis within 15 s')
    const written = await store.importJobs(queue.snapshot(), queue.allDead(), queue.nextJobNum)
    logger.info({ data_dir: config.data_dir, loaded, jobs: written.jobs, dead: written.dead, next_job_num: queue.nextJobNum, prefix: config.redis_prefix }, 'migrated into Redis')
    return 0
  } catch (err) {
    logger.error({ err: (err as Error).message, data_dir: config.data_dir }, 'migrate failed')
    return 1
  } finally {
    tasks.stopAll()
    await store?.close()
    lock.release()
  }
}
