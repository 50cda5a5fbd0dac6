import { randomBytes } from 'node:crypto'
import t from 'tap'
import { createLogger } from '../src/log'
import { BackgroundTasks } from '../src/service/tasks'
import { RedisStore } from '../src/store/redis/redis-store'
import { until } from './helpers/daemon'
import { startRedis } from './helpers/redis'

/**
 * The Redis store's sweep (src/store/redis/sweep.ts) reports the leases that ran out, for the job
 * log's "job put back" and dispenserd_jobs_expired_total: those it moved back itself and those a
 * take found expired (and moved back) since the last sweep. A sweep that fails reports nothing; what
 * it had to report goes to the next one.
 */

const logger = createLogger('silent')

t.test('a lease a take found expired is reported by the sweep after one that failed', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const store = new RedisStore({ commandTimeoutMs: 2000, target: { url: redis.url }, prefix: `sweep-${randomBytes(4).toString('hex')}`, logger })
  const tasks = new BackgroundTasks(logger)
  store.start(tasks)
  t.teardown(async () => {
    tasks.stopAll()
    await store.close()
  })
  t.ok(await store.connected(15_000), 'connected')

  const [job] = await store.schedule([{ lane: 'swept', priority: 1, message: 'once leased' }])
  t.ok(await store.take('swept', 1), 'leased for 1 ms')
  await until(async () => (await store.find(job!.hash))?.state === 'queued', 'the lease to run out')
  // This take finds the lease expired (it puts the job back and takes it again) and notes it.
  const again = await store.take('swept', 60_000)
  t.equal(again?.job.hash, job!.hash, 'taken again')

  // Up as the sweep starts (a count read that timed out on a loaded machine marks it down for a while).
  await until(() => (store.status().store as { state: string }).state === 'up', 'the store to be up')
  redis.pause()
  t.teardown(() => redis.resume())
  await t.rejects(store.expireDue(), { code: 14 }, 'the sweep fails while Redis hangs')
  redis.resume()

  const next = await store.expireDue()
  t.same(
    next.leases.map((expired) => expired.hash),
    [job!.hash],
    'the next sweep reports the lease',
  )
})
