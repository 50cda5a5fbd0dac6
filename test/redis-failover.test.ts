import t from 'tap'
import { call, removeDir, startDaemon, until } from './helpers/daemon'
import { masterOf, startCluster } from './helpers/redis'

/**
 * A master failover on a real cluster of 3 masters and 3 replicas: the master serving one lane is
 * killed with SIGKILL while a frontend schedules to lanes on every master. That lane answers 503
 * code 14 for a bounded time and then works again (its replica took over); the other lanes go on;
 * every schedule that was answered 200 is still there afterwards.
 */

const LANES = ['main', 'a', 'b', 'c', 'd', 'e', 'f', 'g']

t.test('a failover stalls only the failing shard\'s lanes, for a bounded time, and loses nothing answered', async (t) => {
  const cluster = await startCluster(3, 1)
  t.teardown(() => cluster.stop())
  const d = await startDaemon({ args: ['--store', 'redis', '--redis-cluster', cluster.addresses.join(',')] })
  t.teardown(async () => {
    await d.stop('SIGKILL')
    removeDir(d.dataDir)
  })
  await until(async () => (((await call(`${d.url}/`)).body.payload as { store: { state: string } }).store.state === 'up'), 'the frontend to connect', 15_000)

  const masters = new Map<string, number>()
  for (const lane of LANES) masters.set(lane, await masterOf(cluster, `{${lane}}`))
  const victim = masters.get('main')!
  const others = LANES.filter((lane) => masters.get(lane) !== victim)
  t.ok(others.length > 0, 'some lanes live on other masters')
  const killed = cluster.nodes.find((node) => node.port === victim)!

  const acked = new Map<string, string[]>(LANES.map((lane) => [lane, []]))
  const errors = new Map<string, { at: number; code: unknown }[]>(LANES.map((lane) => [lane, []]))
  let killedAt = 0
  let stop = false
  const load = Promise.all(
    LANES.map(async (lane) => {
      for (let i = 0; !stop; i++) {
        const reply = await call(`${d.url}/schedule`, { lane, message: `${lane}-${i}` })
        if (reply.status === 200) acked.get(lane)!.push(reply.body.hash as string)
        else {
          errors.get(lane)!.push({ at: Date.now(), code: reply.body.code })
          await new Promise((r) => setTimeout(r, 50))
        }
      }
    }),
  )
  await new Promise((r) => setTimeout(r, 1000))
  killedAt = Date.now()
  await killed.stop()
  // Back when the victim's lane has been answered 200 again for a while.
  await until(() => {
    const last = errors.get('main')!.at(-1)
    return last !== undefined && Date.now() - last.at > 1500
  }, 'the failing shard\'s lane to work again', 30_000)
  stop = true
  await load

  const stalled = errors.get('main')!
  t.ok(stalled.length > 0, 'the killed master\'s lane was refused for a while')
  t.ok(stalled.every((e) => e.code === 14), 'with code 14 only')
  const outage = stalled.at(-1)!.at - killedAt
  t.ok(outage < 15_000, `its lane answered again ${outage} ms after the kill (node timeout 2 s)`)
  for (const lane of others) t.ok(errors.get(lane)!.length <= 2, `lane ${lane} on another master: ${errors.get(lane)!.length} refusals`)

  for (const lane of LANES) {
    const listed = JSON.parse(await fetch(`${d.url}/jobs`).then((r) => r.text())) as Record<string, { hash: string }[]>
    const present = new Set((listed[lane] ?? []).map((j) => j.hash))
    const missing = acked.get(lane)!.filter((hash) => !present.has(hash))
    t.equal(missing.length, 0, `lane ${lane}: every answered schedule is there (${acked.get(lane)!.length})`)
  }
})
