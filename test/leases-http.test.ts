import t from 'tap'
import { type Running, call, daemonForTest as daemon, removeDir, startDaemon, until } from './helpers/daemon'

/** Leased receives over HTTP against the real daemon: lease, ack, release, touch, expiry. */

async function schedule(d: Running, ...messages: string[]): Promise<string[]> {
  const hashes: string[] = []
  for (const message of messages) hashes.push(String((await call(`${d.url}/schedule`, { message })).body.hash))
  return hashes
}

async function listed(d: Running, lane = 'main'): Promise<string[]> {
  const jobs = (await call(`${d.url}/jobs`)).body[lane] as { message: string }[]
  return jobs.map((j) => j.message)
}

async function counts(d: Running): Promise<{ leased: number; delayed: number }> {
  const payload = (await call(`${d.url}/`)).body.payload as Record<string, Record<string, number>>
  return { leased: payload.leased_jobs!.main!, delayed: payload.delayed_jobs!.main! }
}

t.test('a leased job is out until its lease expires, then first in line again', async (t) => {
  const d = await daemon(t)
  await schedule(d, 'a', 'b', 'c')
  const leased = await call(`${d.url}/receive_noblock`, { lease: 0.4 })
  t.equal(leased.body.message, 'a')
  const expires = Date.parse(String(leased.body.lease_expires))
  t.ok(expires > Date.now() && expires <= Date.now() + 400, `lease_expires ${leased.body.lease_expires} is within 0.4 s`)
  t.same(await listed(d), ['b', 'c'])
  t.same(await counts(d), { leased: 1, delayed: 0 })
  await until(async () => (await listed(d)).length === 3, 'the lease to expire')
  t.same(await listed(d), ['a', 'b', 'c'], 'back at its original place')
  // The log line is read from the daemon's stdout, which may come a moment after the reply that showed the job back.
  await until(() => d.logs.some((l) => l.msg === 'job put back' && l.reason === 'lease expired' && l.job_num === 1 && l.lane === 'main'), 'the put-back log line')
  const late = await call(`${d.url}/ack`, { hash: leased.body.hash, lease_token: leased.body.lease_token })
  t.same([late.status, late.body.status, late.body.code], [404, 'error', 9], 'an expired lease cannot be acked')
})

t.test('ack removes a leased job for good; a second ack is refused', async (t) => {
  const d = await daemon(t)
  const [hash] = await schedule(d, 'only')
  const leased = await call(`${d.url}/receive_noblock`, { lease: 30 })
  t.equal(leased.body.hash, hash)
  const token = leased.body.lease_token
  const acked = await call(`${d.url}/ack`, { hash, lease_token: token })
  t.same(acked.body, { status: 'ok', code: 0, job_num: 1, hash })
  t.same(await counts(d), { leased: 0, delayed: 0 })
  t.same(await listed(d), [])
  t.equal((await call(`${d.url}/ack`, { hash, lease_token: token })).body.code, 9)
})

t.test('release puts the job back at once, or after a delay', async (t) => {
  const d = await daemon(t)
  await schedule(d, 'a', 'b')
  const first = await call(`${d.url}/receive_noblock`, { lease: 30 })
  t.equal((await call(`${d.url}/release`, { hash: first.body.hash, lease_token: first.body.lease_token })).status, 200)
  t.same(await listed(d), ['a', 'b'], 'released: first again')
  const again = await call(`${d.url}/receive_noblock`, { lease: 30 })
  t.equal(again.body.message, 'a')
  t.equal((await call(`${d.url}/release`, { hash: again.body.hash, lease_token: again.body.lease_token, delay: 0.5 })).status, 200)
  t.same(await listed(d), ['b'], 'delayed: not ready yet')
  t.same(await counts(d), { leased: 0, delayed: 1 })
  t.equal((await call(`${d.url}/receive_noblock`)).body.message, 'b', 'the delayed job is not handed out')
  t.equal((await call(`${d.url}/receive_noblock`)).body.code, 2)
  const waited = await call(`${d.url}/receive_block`, { timeout: 5 })
  t.equal(waited.body.message, 'a', 'handed to a parked receiver once the delay is over')
})

t.test('touch extends a lease', async (t) => {
  const d = await daemon(t)
  await schedule(d, 'slow work')
  const leased = await call(`${d.url}/receive_noblock`, { lease: 0.5 })
  const lease = { hash: leased.body.hash, lease_token: leased.body.lease_token }
  const touched = await call(`${d.url}/touch`, { ...lease, lease: 10 })
  t.equal(touched.status, 200)
  t.equal(touched.body.lease_token, leased.body.lease_token, 'the same lease')
  t.ok(Date.parse(String(touched.body.lease_expires)) > Date.now() + 9000, 'the new deadline is about 10 s away')
  const firstDeadline = Date.parse(String(leased.body.lease_expires))
  await until(() => Date.now() > firstDeadline + 300, 'the first deadline to pass')
  t.same(await counts(d), { leased: 1, delayed: 0 }, 'still leased past the first deadline')
  t.equal((await call(`${d.url}/ack`, lease)).status, 200)
})

t.test('receive_block with a lease: the parked receiver gets a leased job', async (t) => {
  const d = await daemon(t)
  const waiting = call(`${d.url}/receive_block`, { lease: 30, lane: 'jobs' })
  await until(async () => ((await call(`${d.url}/`)).body.payload as { idle_workers: Record<string, number> }).idle_workers.jobs === 1, 'receiver parked')
  await call(`${d.url}/schedule`, { message: 'x', lane: 'jobs' })
  const got = await waiting
  t.equal(got.body.message, 'x')
  t.type(got.body.lease_expires, 'string')
  t.equal(((await call(`${d.url}/`)).body.payload as { leased_jobs: Record<string, number> }).leased_jobs.jobs, 1)
})

t.test('bad lease requests get a clear error and change nothing', async (t) => {
  const d = await daemon(t)
  await schedule(d, 'kept')
  const cases: [string, unknown, RegExp][] = [
    ['/receive_noblock', { lease: 0 }, /"lease" must be a number of seconds above 0/],
    ['/receive_noblock', { lease: -1 }, /"lease"/],
    ['/receive_noblock', { lease: 'ten' }, /"lease"/],
    ['/receive_block', { lease: 1e12 }, /"lease"/],
    ['/ack', {}, /missing hash/],
    ['/ack', { hash: 42 }, /"hash" must be a string/],
    ['/release', { hash: 'x'.repeat(200) }, /"hash" must be a string/],
    ['/ack', { hash: 'abc' }, /missing lease_token/],
    ['/ack', { hash: 'abc', lease_token: 7 }, /"lease_token" must be a string/],
    ['/release', { hash: 'abc', lease_token: 't', delay: -5 }, /"delay"/],
    ['/touch', { hash: 'abc', lease_token: 't', lease: 0 }, /"lease"/],
    ['/ack', '[1,2]', /JSON object/],
  ]
  for (const [path, body, message] of cases) {
    const r = await call(`${d.url}${path}`, body)
    t.same([r.status, r.body.status, r.body.code], [400, 'error', 1], `${path} ${JSON.stringify(body)}`)
    t.match(String(r.body.message), message)
  }
  for (const path of ['/ack', '/release', '/touch']) {
    const r = await call(`${d.url}${path}`, { hash: 'not-a-leased-hash', lease_token: 'x' })
    t.same([r.status, r.body.code], [404, 9], `${path} of an unknown hash`)
  }
  t.same(await listed(d), ['kept'])
})

t.test('leased jobs survive a restart as queued, in order; delayed ones stay delayed', async (t) => {
  const d = await startDaemon()
  t.teardown(() => removeDir(d.dataDir))
  await schedule(d, 'a', 'b', 'c')
  await call(`${d.url}/receive_noblock`, { lease: 60 })
  const b = await call(`${d.url}/receive_noblock`, { lease: 60 })
  await call(`${d.url}/release`, { hash: b.body.hash, lease_token: b.body.lease_token, delay: 600 })
  t.same(await listed(d), ['c'])
  t.equal(await d.stop(), 0)
  const again = await startDaemon({ dataDir: d.dataDir })
  t.teardown(() => again.stop())
  t.same(await listed(again), ['a', 'c'])
  t.same(await counts(again), { leased: 0, delayed: 1 }, 'b is still delayed')
  t.match((await call(`${again.url}/job?hash=${b.body.hash}`)).body, { state: 'delayed', message: 'b' })
})
