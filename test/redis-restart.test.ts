import t from 'tap'
import { call, until } from './helpers/daemon'
import { startFrontend, startRedis } from './helpers/redis'

/**
 * Redis restarted without its data (no persistence, as a cache is often run; or an AOF that lost
 * its last second) while frontends run on: lane ids and the job number counter start again, so
 * what a frontend cached before may now be another lane's id or another frontend's numbers. Jobs
 * scheduled afterwards must still get hashes and job numbers of their own.
 */

interface Scheduled {
  hash: string
  job_num: number
}

t.test('after Redis restarts empty, two jobs never share a hash or a job number', async (t) => {
  let redis = await startRedis()
  t.teardown(() => redis.stop())
  const [a, b] = [await startFrontend(t, ['--redis-url', redis.url]), await startFrontend(t, ['--redis-url', redis.url])]
  // Each takes a block of job numbers (A 1-1000, B 1001-2000); w gets lane id 1, x id 2.
  t.equal((await call(`${a.url}/schedule`, { lane: 'w', message: 'before' })).status, 200)
  t.equal((await call(`${b.url}/schedule`, { lane: 'x', message: 'before' })).status, 200)

  const port = redis.port
  await redis.stop()
  redis = await startRedis(port)
  // A makes the first lanes of the empty Redis: z and y get ids 1 and 2, B's id for x.
  await until(async () => (await call(`${a.url}/schedule`, { lane: 'z', message: 'on z' })).status === 200, 'A to reconnect', 15_000)
  const y = (await call(`${a.url}/schedule`, { lane: 'y', message: 'on y' })).body as unknown as Scheduled
  await until(async () => (await call(`${b.url}/receive_noblock`, { lane: 'x' })).status === 200, 'B to reconnect', 15_000)
  const x = (await call(`${b.url}/schedule`, { lane: 'x', message: 'on x' })).body as unknown as Scheduled
  t.not(x.hash, y.hash, 'two jobs, two hashes')
  t.equal((await call(`${a.url}/job?hash=${x.hash}`)).body.message, 'on x', 'A finds the job B scheduled on x by its hash')
  t.equal((await call(`${b.url}/job?hash=${y.hash}`)).body.message, 'on y', 'B finds the job A scheduled on y by its hash')

  // A frontend started now takes a fresh block of numbers: above every number A and B hold.
  const c = await startFrontend(t, ['--redis-url', redis.url])
  const fromC = (await call(`${c.url}/schedule`, { jobs: [{ lane: 'v', message: '1' }, { lane: 'v', message: '2' }, { lane: 'v', message: '3' }] })).body as { first_job_num: number; last_job_num: number }
  const numbers = [y.job_num, x.job_num]
  for (let n = fromC.first_job_num; n <= fromC.last_job_num; n++) numbers.push(n)
  t.equal(new Set(numbers).size, numbers.length, `no job number twice: ${numbers.join(', ')}`)
})
