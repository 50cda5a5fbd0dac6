import t from 'tap'
import { type Running, call, removeDir, startDaemon, until } from './helpers/daemon'
import { startRedis } from './helpers/redis'

/**
 * Redis restarted without its data (no persistence, as a cache is often run; or an AOF that lost
 * its last second) while frontends run on: lane ids start again from 1, so an id a frontend cached
 * before may now be another lane's. Jobs scheduled afterwards must still get hashes of their own.
 */
t.test('after Redis restarts empty, lane ids cached before do not give two jobs one hash', async (t) => {
  let redis = await startRedis()
  t.teardown(() => redis.stop())
  const up = async (d: Running): Promise<boolean> => ((await call(`${d.url}/`)).body.payload as { store: { state: string } }).store.state === 'up'
  const frontends: Running[] = []
  for (let i = 0; i < 2; i++) {
    const d = await startDaemon({ args: ['--store', 'redis', '--redis-url', redis.url] })
    t.teardown(async () => {
      await d.stop('SIGKILL')
      removeDir(d.dataDir)
    })
    await until(() => up(d), 'the frontend to connect', 15_000)
    frontends.push(d)
  }
  const [a, b] = frontends as [Running, Running]
  t.equal((await call(`${b.url}/schedule`, { lane: 'x', message: 'before' })).status, 200, 'B knows lane x (id 1)')

  const port = redis.port
  await redis.stop()
  redis = await startRedis(port)
  // A makes the first lane of the empty Redis: y gets id 1, the id B knew x by.
  let y: { hash?: string } = {}
  await until(async () => (y = (await call(`${a.url}/schedule`, { lane: 'y', message: 'on y' })).body).hash !== undefined, 'A to reconnect', 15_000)
  await until(async () => (await call(`${b.url}/receive_noblock`, { lane: 'x' })).status === 200, 'B to reconnect', 15_000)
  const x = (await call(`${b.url}/schedule`, { lane: 'x', message: 'on x' })).body as { hash: string }
  t.not(x.hash, y.hash, 'two jobs, two hashes')
  t.equal((await call(`${a.url}/job?hash=${x.hash}`)).body.message, 'on x', 'A finds the job B scheduled on x by its hash')
  t.equal((await call(`${b.url}/job?hash=${y.hash}`)).body.message, 'on y', 'B finds the job A scheduled on y by its hash')
})
