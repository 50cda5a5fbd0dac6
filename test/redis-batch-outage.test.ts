import t from 'tap'
import { call, removeDir, startDaemon, until } from './helpers/daemon'
import { masterOf, startCluster } from './helpers/redis'

/**
 * A batch over lanes on different masters of a cluster, one of them down: the batch is atomic per
 * lane only, so the lanes on live masters are queued. The 503 must say which jobs are queued, or
 * a client resending the batch (as "not made" or "unknown" invites it to) queues those twice.
 */
t.test('a batch half-written while one master is down names the jobs that were queued', async (t) => {
  const cluster = await startCluster(3)
  t.teardown(() => cluster.stop())
  const d = await startDaemon({ args: ['--store', 'redis', '--redis-cluster', cluster.addresses.join(',')] })
  t.teardown(async () => {
    await d.stop('SIGKILL')
    removeDir(d.dataDir)
  })
  await until(async () => ((await call(`${d.url}/`)).body.payload as { store: { state: string } }).store.state === 'up', 'the frontend to connect', 15_000)

  const lanes = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']
  const masters = await Promise.all(lanes.map((lane) => masterOf(cluster, `dispenserd:{${lane}}:r`)))
  const live = lanes[0]!
  const dead = lanes[masters.findIndex((port) => port !== masters[0])]!
  // Both lanes exist (ids made) before the master goes.
  t.equal((await call(`${d.url}/schedule`, { jobs: [{ lane: live, message: 'before' }, { lane: dead, message: 'before' }] })).status, 200)
  t.equal((await call(`${d.url}/receive_noblock`, { lane: live })).body.message, 'before')
  await cluster.nodes.find((node) => node.port === masters[lanes.indexOf(dead)])!.stop()

  const reply = await call(`${d.url}/schedule`, { jobs: [{ lane: dead, message: 'lost' }, { lane: live, message: 'kept 1' }, { lane: live, message: 'kept 2' }] })
  t.equal(reply.status, 503)
  t.equal(reply.body.code, 14)
  t.match(reply.body.message, /^jobs\[1\], jobs\[2\] of the batch are queued .*; for the others: the job store \(Redis\) is unavailable/)
  const taken = [(await call(`${d.url}/receive_noblock`, { lane: live })).body.message, (await call(`${d.url}/receive_noblock`, { lane: live })).body.message]
  t.same(taken, ['kept 1', 'kept 2'], 'the jobs the reply named are queued')
})
