import t from 'tap'
import { call, until } from './helpers/daemon'
import { masterOf, startCluster, startFrontend, storeState } from './helpers/redis'

/**
 * A 3-master cluster with the master of one lane killed (no replica takes over): the lanes on the
 * live masters go on as before. A batch over lanes on both is atomic per lane only, so its 503
 * must say which jobs are queued (a client resending the batch would queue those twice), with
 * unique keys or without, and a
 * receive_block on a live lane that waits in vain is "empty queue", not 503. A take whose lane's
 * id cannot be read (the lane directory's master hangs) does not take the job while saying it did not.
 */
t.test('one master of a cluster down', async (t) => {
  const cluster = await startCluster(3)
  t.teardown(() => cluster.stop())
  const d = await startFrontend(t, ['--redis-cluster', cluster.addresses.join(',')])

  const lanes = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']
  const masters = await Promise.all(lanes.map((lane) => masterOf(cluster, `dispenserd:{${lane}}:r`)))
  const meta = await masterOf(cluster, 'dispenserd:{meta}:lanes')
  // The dead lane's master serves neither the live lane nor the lane directory.
  const live = lanes[0]!
  const dead = lanes[masters.findIndex((port) => port !== masters[0] && port !== meta)]!
  // Both lanes exist (ids made) before the master goes.
  t.equal((await call(`${d.url}/schedule`, { jobs: [{ lane: live, message: 'before' }, { lane: dead, message: 'before' }] })).status, 200)
  t.equal((await call(`${d.url}/receive_noblock`, { lane: live })).body.message, 'before')
  // Lanes on the third master (neither the dead lane's nor the lane directory's), found while all answer.
  const third = cluster.addresses.map((address) => Number(address.split(':')[1])).find((port) => port !== meta && port !== masters[lanes.indexOf(dead)])!
  const fresh: string[] = []
  for (let i = 0; fresh.length < 5; i++) if ((await masterOf(cluster, `dispenserd:{fresh-${i}}:r`)) === third) fresh.push(`fresh-${i}`)
  await cluster.nodes.find((node) => node.port === masters[lanes.indexOf(dead)])!.stop()

  t.test('a batch half-written names the jobs that were queued', async (t) => {
    const reply = await call(`${d.url}/schedule`, { jobs: [{ lane: dead, message: 'lost' }, { lane: live, message: 'kept 1' }, { lane: live, message: 'kept 2' }] })
    t.equal(reply.status, 503)
    t.equal(reply.body.code, 14)
    t.match(reply.body.message, /^jobs\[1\], jobs\[2\] of the batch are queued .*; for the others: the job store \(Redis\) is unavailable/)
    const taken = [(await call(`${d.url}/receive_noblock`, { lane: live })).body.message, (await call(`${d.url}/receive_noblock`, { lane: live })).body.message]
    t.same(taken, ['kept 1', 'kept 2'], 'the jobs the reply named are queued')
  })

  t.test('a batch with unique keys half-written names the jobs that were queued', async (t) => {
    const jobs = [
      { lane: dead, message: 'lost', unique_key: 'u-lost' },
      { lane: live, message: 'kept once', unique_key: 'u-kept' },
      { lane: live, message: 'kept, no key' },
    ]
    const reply = await call(`${d.url}/schedule`, { jobs })
    t.equal(reply.status, 503)
    t.equal(reply.body.code, 14)
    t.match(reply.body.message, /^jobs\[1\], jobs\[2\] of the batch are queued .*; for the others: the job store \(Redis\) is unavailable/)
    const taken = [(await call(`${d.url}/receive_noblock`, { lane: live })).body.message, (await call(`${d.url}/receive_noblock`, { lane: live })).body.message]
    t.same(taken, ['kept once', 'kept, no key'], 'the jobs the reply named are queued')
  })

  t.test('a receive_block on a live lane that times out is "empty queue"; on the dead lane, 503', async (t) => {
    await until(async () => (await storeState(d)) === 'down', 'the frontend to notice the dead master', 15_000)
    const [onLive, onDead] = await Promise.all([
      call(`${d.url}/receive_block`, { lane: live, timeout: 1, lease: 30 }),
      call(`${d.url}/receive_block`, { lane: dead, timeout: 1, lease: 30 }),
    ])
    t.equal(onLive.body.code, 2, `the live lane: ${JSON.stringify(onLive.body)}`)
    t.equal(onLive.status, 200)
    t.equal(onDead.body.code, 14, `the dead lane: ${JSON.stringify(onDead.body)}`)
    t.equal((await call(`${d.url}/schedule`, { lane: live, message: 'still served' })).status, 200)
  })

  t.test('a take on a lane new to this frontend while the lane directory\'s master hangs: a 503 that says nothing changed leaves the job queued', async (t) => {
    const b = await startFrontend(t, ['--redis-cluster', cluster.addresses.join(',')])
    const metaNode = cluster.nodes.find((node) => node.port === meta)!
    let tried = false
    for (const lane of fresh) {
      if (tried) break
      const { hash } = (await call(`${d.url}/schedule`, { lane, message: 'keep me' })).body as { hash: string }
      metaNode.pause()
      try {
        // B reads lanes every second: this try only counts if B has not met the lane yet.
        if (lane in ((await call(`${b.url}/`)).body.payload as { queued_jobs: Record<string, number> }).queued_jobs) continue
        tried = true
        const reply = await call(`${b.url}/receive_noblock`, { lane })
        metaNode.resume()
        if (reply.status === 200) {
          t.equal(reply.body.hash, hash, 'delivered')
        } else {
          t.equal(reply.body.code, 14)
          if (/nothing was changed|not made/.test(reply.body.message as string)) {
            t.equal((await call(`${d.url}/job?hash=${hash}`)).body.state, 'queued', `"${reply.body.message}": the job is still queued`)
          }
        }
      } finally {
        metaNode.resume()
      }
    }
    t.ok(tried, 'a lane B had not met yet was tried')
  })
})
