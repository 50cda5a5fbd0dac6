import { writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { type Running, call, removeDir, tempDir, until } from './helpers/daemon'
import { type JobReply, frontend, parked } from './helpers/frontends'
import { parseSamples, valueOf } from './helpers/metrics-text'
import { startRedis } from './helpers/redis'

/**
 * The operators' API (issue 11) through several frontends (the real bin/dispenserd) over one real
 * redis-server: a pause holds on every frontend at once and a resume on any of them wakes the
 * others' receivers, pages and finds by number see every frontend's jobs, a move within a lane
 * works, and what the Redis store does not offer (a move to another lane, a kill of another
 * frontend's run, ready jobs by age) answers 501 code 15. /healthz and /readyz tell of Redis.
 */

async function schedule(d: Running, lane: string, message: string, priority = 1): Promise<JobReply> {
  const reply = await call(`${d.url}/schedule`, { lane, message, priority })
  if (reply.status !== 200) throw new Error(reply.text)
  return reply.body as unknown as JobReply
}

t.test('operators\' requests through two frontends over one standalone redis-server', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const args = ['--redis-url', redis.url]
  const [a, b] = [await frontend(t, args), await frontend(t, args)]

  t.test('a receive_block parked after a receive_noblock found the lane empty is woken by a job scheduled elsewhere', async (t) => {
    t.equal((await call(`${b.url}/receive_noblock`, { lane: 'quiet' })).body.code, 2)
    const waiting = call(`${b.url}/receive_block`, { lane: 'quiet', timeout: 20 })
    await until(async () => (await parked(b)) === 1, 'the receiver to park on B')
    const sent = Date.now()
    await schedule(a, 'quiet', 'hello')
    const got = await waiting
    t.equal((got.body as unknown as JobReply).message, 'hello')
    // B polls the lanes it registered on every second: well under that means the hint woke it.
    t.ok(Date.now() - sent < 900, `served ${Date.now() - sent} ms after the schedule`)
  })

  t.test('a pause on A holds on B at once; a resume on B wakes A\'s parked receiver', async (t) => {
    await schedule(a, 'held', 'one')
    await schedule(a, 'held', 'two')
    await schedule(a, 'held', 'three')
    t.same((await call(`${a.url}/pause`, { lane: 'held' })).body, { status: 'ok', code: 0, lane: 'held', paused: true })
    // Straight after the pause, before B's once-a-second read of the counts could know of it.
    t.equal((await call(`${b.url}/receive_noblock`, { lane: 'held' })).body.code, 2, 'B hands nothing')
    t.equal((await call(`${b.url}/receive_noblock`, { lane: 'held', count: 5 })).body.code, 2, 'nor a batch')
    t.equal((await call(`${a.url}/receive_noblock`, { lane: 'held' })).body.code, 2, 'nor A')
    const waitingOnA = call(`${a.url}/receive_block`, { lane: 'held', timeout: 20 })
    await until(async () => (await parked(a)) === 1, 'a receiver to park on A')
    await until(async () => {
      const lanes = (await call(`${b.url}/lanes`)).body.lanes as { lane: string; paused: boolean }[]
      return lanes.find((l) => l.lane === 'held')?.paused === true
    }, 'B\'s /lanes to show the lane paused', 5000)
    const metrics = parseSamples(await (await fetch(`${b.url}/metrics`)).text())
    t.equal(valueOf(metrics, 'dispenserd_lane_paused', { lane: 'held' }), 1, 'B\'s metrics show the pause')
    t.equal(await parked(a), 1, 'A\'s receiver still waits')
    const resumed = Date.now()
    t.same((await call(`${b.url}/resume`, { lane: 'held' })).body, { status: 'ok', code: 0, lane: 'held', paused: false })
    const got = await waitingOnA
    t.equal((got.body as unknown as JobReply).message, 'one', 'A hands again, in order')
    // A polls its lanes every second whatever the hints say: well under that means the resume woke it.
    t.ok(Date.now() - resumed < 900, `A's receiver served ${Date.now() - resumed} ms after the resume`)
    t.equal(((await call(`${b.url}/receive_noblock`, { lane: 'held' })).body as unknown as JobReply).message, 'two')
    t.equal(((await call(`${a.url}/receive_noblock`, { lane: 'held' })).body as unknown as JobReply).message, 'three')
    t.equal((await call(`${a.url}/pause`, { lane: 'no-such-lane' })).body.code, 1, 'an unknown lane is refused')
    // A lane made on A a moment ago, before B's once-a-second read of the lanes.
    await schedule(a, 'fresh', 'new')
    t.match((await call(`${b.url}/pause`, { lane: 'fresh' })).body, { code: 0, paused: true }, 'a lane just made on another frontend')
    t.equal((await call(`${a.url}/receive_noblock`, { lane: 'fresh' })).body.code, 2)
  })

  t.test('pages of a lane and finds by number on B see jobs scheduled on A', async (t) => {
    const scheduled: JobReply[] = []
    for (let i = 0; i < 25; i++) scheduled.push(await schedule(a, 'paged', `job ${i}${i % 5 === 0 ? ' needle' : ''}`, i % 3))
    const order = [...scheduled.keys()].sort((x, y) => (x % 3) - (y % 3) || x - y).map((i) => scheduled[i]!.hash)
    const walked: string[] = []
    const positions: number[] = []
    let cursor: string | null = null
    do {
      const query: string = `lane=paged&limit=10${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`
      const page = await call(`${b.url}/jobs?${query}`)
      t.equal(page.status, 200, page.text)
      t.equal(page.body.total, 25)
      for (const job of page.body.jobs as { hash: string; position: number }[]) {
        walked.push(job.hash)
        positions.push(job.position)
      }
      cursor = page.body.next_cursor as string | null
    } while (cursor !== null)
    t.same(walked, order, 'walked by cursor in serving order')
    t.same(positions, [...order.keys()], 'each with its position')
    const offset = await call(`${b.url}/jobs?lane=paged&offset=20&limit=10`)
    t.same((offset.body.jobs as { hash: string }[]).map((j) => j.hash), order.slice(20))
    const search = await call(`${b.url}/jobs?lane=paged&q=needle`)
    t.same((search.body.jobs as { message: string }[]).map((j) => j.message).sort(), ['job 0 needle', 'job 10 needle', 'job 15 needle', 'job 20 needle', 'job 5 needle'])

    const found = await call(`${b.url}/job?job_num=${scheduled[4]!.job_num}`)
    t.equal(found.status, 200, found.text)
    t.match(found.body, { hash: scheduled[4]!.hash, state: 'queued', position: order.indexOf(scheduled[4]!.hash) })
    t.equal((await call(`${b.url}/job?job_num=999999999`)).body.code, 11, 'an unknown number')

    const leased = (await call(`${a.url}/receive_noblock`, { lane: 'paged', lease: 60 })).body as unknown as JobReply
    t.equal(leased.hash, order[0])
    t.match((await call(`${b.url}/job?job_num=${leased.job_num}`)).body, { state: 'leased', hash: leased.hash })
    const leasedPage = await call(`${b.url}/jobs?lane=paged&state=leased`)
    t.same((leasedPage.body.jobs as { hash: string }[]).map((j) => j.hash), [leased.hash], 'a page of leased jobs')
    t.equal((await call(`${b.url}/ack`, { hash: leased.hash, lease_token: leased.lease_token })).status, 200)
    t.equal((await call(`${a.url}/job?job_num=${leased.job_num}`)).body.code, 11, 'acked: gone from the index too')

    const delayed = await call(`${a.url}/schedule`, { lane: 'paged', message: 'later', delay: 600 })
    const delayedPage = await call(`${b.url}/jobs?lane=paged&state=delayed`)
    t.same((delayedPage.body.jobs as { hash: string }[]).map((j) => j.hash), [delayed.body.hash])

    for (const cursor of ['x', '99999999999.1', '1.9999999999999999']) {
      const bad = await call(`${b.url}/jobs?lane=paged&cursor=${cursor}`)
      t.match([bad.status, bad.body.code, bad.body.message], [400, 1, /"cursor" .* is not a cursor of this lane's pages/], `cursor ${cursor}`)
    }

    const byAge = await call(`${b.url}/jobs?lane=paged&sort=oldest`)
    t.equal(byAge.status, 501)
    t.equal(byAge.body.code, 15)
    t.match(byAge.body.message, /sorted by "oldest" is not offered by the Redis store.*sort=order.*memory store/)
  })

  t.test('a move within the lane works on any frontend; to another lane it answers 501 code 15', async (t) => {
    const first = await schedule(a, 'moves', 'first', 5)
    const last = await schedule(a, 'moves', 'last', 9)
    const moved = await call(`${b.url}/move`, { hash: last.hash, priority: 1 })
    t.same(moved.body, { status: 'ok', code: 0, job_num: last.job_num, hash: last.hash, lane: 'moves', priority: 1 })
    t.equal(((await call(`${a.url}/receive_noblock`, { lane: 'moves', lease: 60 })).body as unknown as JobReply).hash, last.hash, 'served first now')
    t.match((await call(`${b.url}/move`, { hash: last.hash, priority: 0 })).body, { code: 12, message: /leased; move it once that ends/ })
    const across = await call(`${b.url}/move`, { hash: first.hash, lane: 'elsewhere' })
    t.equal(across.status, 501)
    t.equal(across.body.code, 15)
    t.match(across.body.message, /another lane .*"moves" to "elsewhere".* not offered by the Redis store.*memory store/)
    t.match((await call(`${a.url}/job?hash=${first.hash}`)).body, { state: 'queued', lane: 'moves', priority: 5 }, 'the job stays where it was')
    const bulk = await call(`${a.url}/bulk`, { action: 'relocate', hashes: [first.hash], lane: 'elsewhere' })
    t.match(bulk.body, { matched: 1, done: 0, failed: 1, errors: [{ hash: first.hash, code: 15 }] })
  })

  t.test('/metrics and /lanes show the store\'s counts on every frontend', async (t) => {
    for (let i = 0; i < 4; i++) await schedule(a, 'counted', `c${i}`)
    for (const d of [a, b]) {
      await until(async () => valueOf(parseSamples(await (await fetch(`${d.url}/metrics`)).text()), 'dispenserd_jobs', { lane: 'counted', state: 'ready' }) === 4, 'the count in the metrics', 5000)
      const lanes = (await call(`${d.url}/lanes`)).body.lanes as { lane: string; ready: number }[]
      t.equal(lanes.find((l) => l.lane === 'counted')?.ready, 4)
    }
    const scheduledOnA = (d: string): number | undefined => valueOf(parseSamples(d), 'dispenserd_jobs_scheduled_total', { lane: 'counted' })
    t.equal(scheduledOnA(await (await fetch(`${a.url}/metrics`)).text()), 4, 'counters are each frontend\'s own')
    t.not(scheduledOnA(await (await fetch(`${b.url}/metrics`)).text()), 4)
  })
})

t.test('POST /kill of a run on another frontend answers 501 code 15; on its own frontend it kills', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const config = path.join(dir, 'config.json')
  writeFileSync(config, JSON.stringify({ lanes: { slow: { runner: 'exec', command: ['sleep', '60'], concurrency: 1, retries: 0 } } }))
  const args = ['--redis-url', redis.url, '--config', config]
  // Only A runs at first, so the run is A's; B comes up once it runs (concurrency 1 keeps B idle).
  const a = await frontend(t, args)
  const job = await schedule(a, 'slow', '{}')
  await until(async () => (await call(`${a.url}/job?hash=${job.hash}`)).body.state === 'running', 'the job to run on A')
  const b = await frontend(t, args)
  const elsewhere = await call(`${b.url}/kill`, { hash: job.hash })
  t.equal(elsewhere.status, 501)
  t.equal(elsewhere.body.code, 15)
  t.match(elsewhere.body.message, new RegExp(`job ${job.job_num} is running on another frontend.*Redis store.*memory store`))
  t.equal((await call(`${b.url}/job?hash=${job.hash}`)).body.state, 'running', 'still running')
  const killed = await call(`${a.url}/kill`, { hash: job.hash })
  t.equal(killed.status, 200, killed.text)
  await until(async () => (await call(`${b.url}/job?hash=${job.hash}`)).body.state === 'dead', 'the job to be dead, seen from B')
})

t.test('/readyz answers 503 code 14 while Redis cannot be reached and /healthz says so; both recover', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const a = await frontend(t, ['--redis-url', redis.url])
  t.same((await call(`${a.url}/healthz`)).body, { status: 'ok', code: 0, alive: true, store: { type: 'redis', state: 'up' } })
  t.equal((await call(`${a.url}/readyz`)).status, 200)
  const writable = async (): Promise<number | undefined> => valueOf(parseSamples(await (await fetch(`${a.url}/metrics`)).text()), 'dispenserd_store_writable')
  t.equal(await writable(), 1, 'the metrics say the store is writable while Redis answers')
  redis.pause()
  t.teardown(() => redis.resume())
  // A request that needs Redis finds out first; readiness follows from the connection's state.
  t.equal((await call(`${a.url}/schedule`, { lane: 'x', message: 'y' })).body.code, 14)
  await until(async () => (await call(`${a.url}/readyz`)).status === 503, 'readyz to say not ready', 10_000)
  const readyz = await call(`${a.url}/readyz`)
  t.equal(readyz.body.code, 14)
  t.match(readyz.body.message, /^not ready: the job store \(Redis\) is not connected/)
  t.same((await call(`${a.url}/healthz`)).body, { status: 'ok', code: 0, alive: true, store: { type: 'redis', state: 'down' } }, 'alive, store down')
  t.equal(await writable(), 0)
  redis.resume()
  await until(async () => (await call(`${a.url}/readyz`)).status === 200, 'readyz to say ready again', 15_000)
  t.equal(await writable(), 1, 'and writable again once it answers')
  t.equal((await call(`${a.url}/healthz`)).body.store && ((await call(`${a.url}/healthz`)).body.store as { state: string }).state, 'up')
})
