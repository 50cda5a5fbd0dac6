import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { ApiError } from '../src/errors'
import { createLogger } from '../src/log'
import { BackgroundTasks } from '../src/service/tasks'
import { RedisStore } from '../src/store/redis/redis-store'
import { until } from './helpers/daemon'
import { startRedis } from './helpers/redis'

/**
 * The Redis store gathers the schedules, receives and acks of one lane made in the same turn of
 * the event loop into one script call (src/store/redis/coalesce.ts). What each caller gets is in
 * the store contract suite; here: that they are gathered (the server counts the scripts it ran),
 * and that when the gathered call times out every caller is answered code 14 on its own, saying
 * the outcome is unknown.
 */

const logger = createLogger('silent')

async function open(t: Test, url: string, commandTimeoutMs: number): Promise<RedisStore> {
  const store = new RedisStore({ commandTimeoutMs, target: { url }, prefix: `coalesce-${randomBytes(4).toString('hex')}`, logger })
  const tasks = new BackgroundTasks(logger)
  store.start(tasks)
  t.teardown(async () => {
    tasks.stopAll()
    await store.close()
  })
  await until(() => (store.status().store as { state: string }).state === 'up', 'the Redis store to connect', 15_000)
  return store
}

/** Scripts the server has run (EVALSHA and EVAL calls). */
async function scriptCalls(admin: Redis): Promise<number> {
  const info = await admin.info('commandstats')
  let calls = 0
  for (const m of info.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)) calls += Number(m[1])
  return calls
}

t.test('32 schedules, 32 receives and 32 acks of one lane in one turn: a few scripts, not 96', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const admin = new Redis(redis.port)
  t.teardown(() => admin.disconnect())
  const store = await open(t, redis.url, 10_000)
  await store.schedule([{ lane: 'gather', priority: 1, message: 'first' }])
  await store.take('gather', undefined)

  // The once-a-second counts read may fall inside a step: a few scripts are allowed for it.
  let before = await scriptCalls(admin)
  const jobs = (await Promise.all(Array.from({ length: 32 }, (_, i) => store.schedule([{ lane: 'gather', priority: i % 2, message: `m${i}` }])))).flat()
  const scheduling = (await scriptCalls(admin)) - before
  t.ok(scheduling <= 4, `32 schedules ran as ${scheduling} scripts`)

  before = await scriptCalls(admin)
  const taken = await Promise.all(jobs.map(() => store.take('gather', 60_000)))
  const taking = (await scriptCalls(admin)) - before
  t.ok(taking <= 4, `32 receives ran as ${taking} scripts`)
  t.equal(new Set(taken.map((x) => x?.job.hash)).size, 32, 'each receive its own job')

  before = await scriptCalls(admin)
  const acked = await Promise.all(taken.map((x) => store.ack(x!.job.hash, x!.lease!.token)))
  const acking = (await scriptCalls(admin)) - before
  t.ok(acking <= 4, `32 acks ran as ${acking} scripts`)
  t.same(acked.map((j) => j.hash), taken.map((x) => x!.job.hash), 'each ack answered with its own job')
})

t.test('a gathered call that times out answers every caller 503 code 14 on its own: the outcome is unknown', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const store = await open(t, redis.url, 500)
  await store.schedule(Array.from({ length: 8 }, (_, i) => ({ lane: 'hang', priority: 1, message: `leased${i}` })))
  const leased = await Promise.all(Array.from({ length: 8 }, () => store.take('hang', 60_000)))
  await store.schedule([{ lane: 'hang', priority: 2, message: 'ready' }])

  redis.pause()
  t.teardown(() => redis.resume())
  const started = Date.now()
  const settled = await Promise.allSettled([
    ...Array.from({ length: 8 }, (_, i) => store.schedule([{ lane: 'hang', priority: 1, message: `during${i}` }])),
    ...Array.from({ length: 8 }, () => store.take('hang', 60_000)),
    ...leased.map((x) => store.ack(x!.job.hash, x!.lease!.token)),
  ])
  const ms = Date.now() - started
  const errors = settled.map((s) => (s.status === 'rejected' ? (s.reason as unknown) : undefined))
  t.ok(
    errors.every((err) => err instanceof ApiError && err.codeName === 'store_unavailable' && /outcome is unknown/.test(err.message)),
    'every caller: code 14, the outcome unknown',
  )
  t.equal(new Set(errors).size, errors.length, 'each caller its own error')
  t.ok(ms < 3000, `answered in ${ms} ms (command timeout 500 ms)`)

  redis.resume()
  await until(async () => (await store.schedule([{ lane: 'hang', priority: 3, message: 'after' }]).then(() => true, () => false)), 'schedules to work again', 10_000)
  // What the timed-out calls sent ran once Redis woke (their outcome was unknown, not refused), and at most once.
  const messages: string[] = []
  for (;;) {
    const taken = await store.take('hang', undefined)
    if (taken === undefined) break
    messages.push(taken.job.message)
  }
  for (let i = 0; i < 8; i++) t.ok(messages.filter((m) => m === `during${i}`).length <= 1, `during${i} queued at most once`)
  t.ok(messages.includes('after'))
})

t.test('close() first carries out and answers the calls gathered in this turn: none is sent after QUIT', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const admin = new Redis(redis.port)
  t.teardown(() => admin.disconnect())
  const prefix = `coalesce-${randomBytes(4).toString('hex')}`
  const store = new RedisStore({ commandTimeoutMs: 10_000, target: { url: redis.url }, prefix, logger })
  const tasks = new BackgroundTasks(logger)
  store.start(tasks)
  await until(() => (store.status().store as { state: string }).state === 'up', 'the Redis store to connect', 15_000)
  await store.schedule([{ lane: 'bye', priority: 1, message: 'leased' }])
  const leased = (await store.take('bye', 60_000))!
  await store.schedule([{ lane: 'bye', priority: 1, message: 'taken' }])

  // The daemon closes the store on SIGTERM, possibly in the turn that read these requests.
  const calls = Promise.allSettled([store.take('bye', undefined), store.schedule([{ lane: 'bye', priority: 1, message: 'late' }]), store.ack(leased.job.hash, leased.lease!.token)])
  tasks.stopAll()
  await store.close()
  const [taken, scheduled, acked] = await calls
  t.equal(taken.status === 'fulfilled' ? taken.value?.job.message : String(taken.reason), 'taken', 'the receive got its job')
  t.equal(scheduled.status === 'fulfilled' ? scheduled.value[0]!.message : String(scheduled.reason), 'late', 'the schedule was made')
  t.equal(acked.status === 'fulfilled' ? acked.value.message : String(acked.reason), 'leased', 'the ack was made')
  // The job hash holds the records by member and the lane's index of job numbers ('#<number>' fields).
  const records = Object.entries(await admin.hgetall(`${prefix}:{bye}:j`)).filter(([field]) => !field.startsWith('#'))
  const left = records.map(([, record]) => record.split('|').slice(5).join('|'))
  t.same(left, ['late'], 'in Redis: the job scheduled, not the ones taken and acked')
})

t.test('schedules keep the order they came in when the frontend must fetch job numbers for the first of them', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const store = await open(t, redis.url, 10_000)
  // A frontend takes job numbers in blocks of 1000: this leaves one in its first block.
  await store.schedule(Array.from({ length: 999 }, (_, i) => ({ lane: 'numbers', priority: 1, message: `early${i}` })))
  // Two numbers are more than are left: this batch waits for the next block; what comes after it waits too.
  const scheduled = await Promise.all([
    store.schedule([{ lane: 'numbers', priority: 1, message: 'batch0' }, { lane: 'numbers', priority: 1, message: 'batch1' }]),
    store.schedule([{ lane: 'numbers', priority: 1, message: 'single' }]),
    store.schedule(Array.from({ length: 1500 }, (_, i) => ({ lane: 'numbers', priority: 1, message: `big${i}` }))),
    store.schedule([{ lane: 'numbers', priority: 1, message: 'last' }]),
  ])
  const served: string[] = []
  for (;;) {
    const taken = await store.take('numbers', undefined)
    if (taken === undefined) break
    if (!taken.job.message.startsWith('early')) served.push(taken.job.message)
  }
  const order = scheduled.flat().map((job) => job.message)
  t.same(served, order, 'served in the order the schedules came')
  const numbers = scheduled.flat().map((job) => job.jobNum)
  t.same(numbers, [...numbers].sort((a, b) => a - b), 'with job numbers in that order')
})

t.test('two schedules of 270 MB messages in one turn are not gathered into one command past what the client can write', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const admin = new Redis(redis.port)
  t.teardown(() => admin.disconnect())
  const unhandled: unknown[] = []
  const onUnhandled = (err: unknown): void => void unhandled.push(err)
  process.on('unhandledRejection', onUnhandled)
  t.teardown(() => void process.off('unhandledRejection', onUnhandled))
  const store = await open(t, redis.url, 60_000)
  // Gathered, the two would be one command over V8's longest string (2^29 - 24 characters): ioredis
  // failed to write it (RangeError for both callers), and the command's own timer then rejected
  // a promise nobody held, which stops the daemon.
  const message = 'x'.repeat(270_000_000)
  const settled = await Promise.allSettled([store.schedule([{ lane: 'huge', priority: 1, message }]), store.schedule([{ lane: 'huge', priority: 1, message }])])
  t.same(settled.map((s) => (s.status === 'fulfilled' ? s.value[0]!.message.length : String(s.reason))), [270_000_000, 270_000_000], 'both queued')
  const fields = await admin.hkeys(`${(store.status().store as { prefix: string }).prefix}:{huge}:j`)
  t.equal(fields.filter((field) => !field.startsWith('#')).length, 2, 'two records (beside the index of job numbers)')
  await admin.del(`${(store.status().store as { prefix: string }).prefix}:{huge}:j`)
  t.same(unhandled, [], 'no promise left to reject unhandled')
})
