import { writeFileSync } from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import { type Running, call, removeDir, startDaemon, tempDir, until } from './helpers/daemon'

/** Batch receives (`count`, `min`) and batch ack, release and touch (`leases`) against the real daemon. */

interface BatchJob {
  job_num: number
  hash: string
  message: string
  priority: number
  lease_token?: string
  lease_expires?: string
}

async function daemon(t: Test, args: string[] = [], dataDir?: string): Promise<Running> {
  const d = await startDaemon({ args, dataDir })
  t.teardown(() => d.stop())
  return d
}

async function schedule(d: Running, lane: string, ...messages: string[]): Promise<void> {
  const r = await call(`${d.url}/schedule`, { jobs: messages.map((message, i) => ({ message, lane, priority: i % 2 })) })
  if (r.status !== 200) throw new Error(r.text)
}

const messagesOf = (jobs: unknown): string[] => (jobs as BatchJob[]).map((j) => j.message)

t.test('receive_noblock with count answers up to that many jobs in serving order, then an empty batch', async (t) => {
  const d = await daemon(t)
  t.teardown(() => removeDir(d.dataDir))
  await schedule(d, 'main', 'a', 'b', 'c', 'd', 'e') // priorities 0 1 0 1 0: a c e b d
  const first = await call(`${d.url}/receive_noblock`, { count: 3 })
  t.match(first.body, { status: 'ok', code: 0, count: 3 })
  t.same(messagesOf(first.body.jobs), ['a', 'c', 'e'])
  t.notOk('lease_token' in (first.body.jobs as BatchJob[])[0]!, 'taken for good: no lease')
  const rest = await call(`${d.url}/receive_noblock`, { count: 10 })
  t.same([rest.body.count, messagesOf(rest.body.jobs)], [2, ['b', 'd']])
  const none = await call(`${d.url}/receive_noblock`, { count: 10 })
  t.same(none.body, { status: 'ok', code: 2, message: 'empty queue', count: 0, jobs: [] })
  const single = await call(`${d.url}/receive_noblock`)
  t.same(single.body, { status: 'ok', code: 2, message: 'empty queue' }, 'without count the original reply')
})

t.test('a leased batch: each job its own lease; a batch ack answers each item, an expired token among them', async (t) => {
  const d = await daemon(t)
  t.teardown(() => removeDir(d.dataDir))
  await schedule(d, 'main', 'a', 'b', 'c')
  const got = await call(`${d.url}/receive_noblock`, { count: 3, lease: 30 })
  const jobs = got.body.jobs as BatchJob[]
  t.same(messagesOf(jobs), ['a', 'c', 'b'], 'in serving order (priorities 0, 1, 0)')
  t.equal(new Set(jobs.map((j) => j.lease_token)).size, 3, 'three leases, three tokens')
  const leases = jobs.map((j) => ({ hash: j.hash, lease_token: j.lease_token }))
  const touched = await call(`${d.url}/touch`, { leases: [{ ...leases[0], lease: 60 }] })
  t.match(touched.body, { status: 'ok', code: 0, count: 1, results: [{ status: 'ok', code: 0, job_num: jobs[0]!.job_num, lease_token: jobs[0]!.lease_token }] })
  const released = await call(`${d.url}/release`, { leases: [leases[2]] })
  t.match(released.body, { count: 1, results: [{ status: 'ok', code: 0 }] })
  const acked = await call(`${d.url}/ack`, { leases: [leases[0], { ...leases[1], lease_token: 'stale' }, leases[1], leases[2]] })
  t.equal(acked.status, 200)
  const results = acked.body.results as { status: string; code: number }[]
  t.same(results.map((r) => [r.status, r.code]), [['ok', 0], ['error', 9], ['ok', 0], ['error', 9]], 'each item answered as the single request would be')
  const listed = (await call(`${d.url}/jobs`)).body.main as BatchJob[]
  t.same(listed.map((j) => j.message), [jobs[2]!.message], 'the first two acked, the third released back')
})

t.test('receive_block with count and min waits for min jobs, or takes what there is at its timeout', async (t) => {
  const d = await daemon(t)
  t.teardown(() => removeDir(d.dataDir))
  const idle = async (lane: string): Promise<number> => ((await call(`${d.url}/`)).body.payload as { idle_workers: Record<string, number> }).idle_workers[lane] ?? 0
  const waiting = call(`${d.url}/receive_block`, { lane: 'w', count: 5, min: 2, timeout: 30 })
  await until(async () => (await idle('w')) === 1, 'the batch receiver to park')
  await schedule(d, 'w', 'one')
  await until(async () => (await call(`${d.url}/jobs`)).body.w !== undefined, 'the job queued')
  t.equal(await idle('w'), 1, 'one job is not enough: still waiting')
  await schedule(d, 'w', 'two')
  const got = await waiting
  t.same([got.body.count, messagesOf(got.body.jobs)], [2, ['one', 'two']])

  await schedule(d, 'late', 'only')
  const short = await call(`${d.url}/receive_block`, { lane: 'late', count: 5, min: 3, timeout: 0.2 })
  t.same([short.body.count, messagesOf(short.body.jobs)], [1, ['only']], 'at its timeout it takes what there is')
  const empty = await call(`${d.url}/receive_block`, { lane: 'late', count: 5, timeout: 0.1 })
  t.same(empty.body, { status: 'ok', code: 2, message: 'empty queue', count: 0, jobs: [] })
})

t.test('a parked batch receiver waiting for its min does not hold back the receivers parked behind it', async (t) => {
  // A receive arriving now would take a ready job at once: one parked earlier must not wait for it
  // (nor be told "empty queue" at its timeout while the job sits there).
  const d = await daemon(t)
  t.teardown(() => removeDir(d.dataDir))
  const idle = async (): Promise<number> => ((await call(`${d.url}/`)).body.payload as { idle_workers: Record<string, number> }).idle_workers.h ?? 0
  const five = call(`${d.url}/receive_block`, { lane: 'h', count: 5, min: 5, timeout: 30 })
  await until(async () => (await idle()) === 1, 'the batch receiver for five to park')
  const single = call(`${d.url}/receive_block`, { lane: 'h', timeout: 5 })
  await until(async () => (await idle()) === 2, 'the single receiver to park')
  const two = call(`${d.url}/receive_block`, { lane: 'h', count: 3, min: 2, timeout: 5 })
  await until(async () => (await idle()) === 3, 'the batch receiver for two to park')
  await schedule(d, 'h', 'first')
  t.same((await single).body.message, 'first', 'the single receiver behind the batch for five')
  await schedule(d, 'h', 'second', 'third')
  t.same(messagesOf((await two).body.jobs), ['second', 'third'], 'the batch for two, once two are ready')
  t.equal(await idle(), 1, 'the batch for five still waits')
  await schedule(d, 'h', 'a', 'b', 'c', 'd', 'e')
  t.same((await five).body.count, 5, 'and gets its five')
})

t.test('max_parked_receivers counts a receiver that will wait though a job is ready: fewer than its min, or no token', async (t) => {
  const dir = tempDir()
  const config = path.join(dir, 'config.json')
  writeFileSync(config, JSON.stringify({ lanes: { slow: { rate: { jobs: 1, per: 3600 } } } }))
  const d = await daemon(t, ['--config', config, '--max-parked-receivers', '1'], dir)
  t.teardown(() => removeDir(dir))
  const parked = async (): Promise<number> => ((await call(`${d.url}/`)).body.payload as { server: { parked_receivers: number } }).server.parked_receivers
  await schedule(d, 'few', 'one')
  await schedule(d, 'slow', 'a', 'b')
  t.equal((await call(`${d.url}/receive_noblock`, { lane: 'slow' })).body.message, 'a', 'the only token spent')
  const first = call(`${d.url}/receive_block`, { lane: 'other', timeout: 30 })
  await until(async () => (await parked()) === 1, 'one receiver to park')
  for (const body of [{ lane: 'few', count: 5, min: 3 }, { lane: 'slow' }, { lane: 'slow', count: 5 }]) {
    const r = await call(`${d.url}/receive_block`, { ...body, timeout: 30 })
    t.same([r.status, r.body.code], [503, 8], `refused at once: ${JSON.stringify(body)}`)
    t.match(r.body.message, /max_parked_receivers is 1/)
  }
  t.equal(await parked(), 1, 'nothing more parked')
  await schedule(d, 'few', 'two', 'three')
  t.equal((await call(`${d.url}/receive_block`, { lane: 'few', count: 5, min: 3, timeout: 30 })).body.count, 3, 'with its min ready it takes them at once, limit or not')
  await schedule(d, 'other', 'for the first')
  t.equal((await first).body.message, 'for the first')
})

t.test('a batch take is durable before it is answered: after SIGKILL the jobs it answered for good or acked are gone, the rest are there', async (t) => {
  const args = ['--persistence', 'journal', '--journal-fsync', 'always', '--persist-interval', '0']
  const d = await daemon(t, args)
  await schedule(d, 'main', 'a', 'b', 'c', 'd')
  const got = await call(`${d.url}/receive_noblock`, { count: 3 })
  t.equal(got.body.count, 3)
  // Leased: a lease ends with the process, so every leased job not acked comes back.
  await schedule(d, 'leased', 'a', 'b', 'c', 'd', 'e')
  const leased = (await call(`${d.url}/receive_noblock`, { lane: 'leased', count: 3, lease: 600 })).body.jobs as BatchJob[]
  t.same(messagesOf(leased), ['a', 'c', 'e'])
  const acked = await call(`${d.url}/ack`, { leases: [{ hash: leased[0]!.hash, lease_token: leased[0]!.lease_token }] })
  t.match(acked.body.results, [{ code: 0 }])
  await d.stop('SIGKILL')
  const again = await startDaemon({ args, dataDir: d.dataDir })
  t.teardown(async () => {
    await again.stop()
    removeDir(d.dataDir)
  })
  const jobs = (await call(`${again.url}/jobs`)).body
  t.same(messagesOf(jobs.main), ['d'])
  t.same(messagesOf(jobs.leased), ['c', 'e', 'b', 'd'], 'the leased jobs not acked are back in their places')
})

t.test('bad batch requests answer 400 naming the problem and change nothing', async (t) => {
  const d = await daemon(t)
  t.teardown(() => removeDir(d.dataDir))
  await schedule(d, 'main', 'kept')
  const cases: [string, unknown, RegExp][] = [
    ['/receive_noblock', { count: 0 }, /"count" must be an integer from 1 to 1000/],
    ['/receive_noblock', { count: 1001 }, /"count"/],
    ['/receive_noblock', { count: 'all' }, /"count"/],
    ['/receive_block', { min: 2 }, /"min" needs "count"/],
    ['/receive_block', { count: 2, min: 3 }, /must not exceed it/],
    ['/ack', { leases: [] }, /"leases" must be a list of 1 to 1000/],
    ['/ack', { leases: [{ hash: 'h' }] }, /leases\[0\]: missing lease_token/],
    ['/release', { leases: [{ hash: 'h', lease_token: 't', delay: -1 }] }, /leases\[0\]: "delay"/],
    ['/touch', { hash: 'h', leases: [{ hash: 'h', lease_token: 't' }] }, /either "hash" or "leases"/],
  ]
  for (const [path, body, message] of cases) {
    const r = await call(`${d.url}${path}`, body)
    t.same([r.status, r.body.code], [400, 1], `${path} ${JSON.stringify(body)}`)
    t.match(r.body.message, message)
  }
  t.same(messagesOf((await call(`${d.url}/jobs`)).body.main), ['kept'])
})

t.test('batch and single replies are written as JSON.stringify writes them, whatever the messages hold', async (t) => {
  // The reply writer copies messages natively and checks the bytes (ByteWriter.jsonString): escapes,
  // non-ASCII and long messages must come out as the JSON the original wrote.
  const d = await daemon(t)
  t.teardown(() => removeDir(d.dataDir))
  const messages = ['0'.repeat(64), 'quote " backslash \\', 'controls \u0000\u001f\n\t DEL \u007f', 'é ü ✓ \u2028 🚀', 'lone \ud800 surrogate', '', 'x'.repeat(3000), '{"json":"inside"}']
  const all = [...messages, ...messages, ...messages]
  await schedule(d, 'main', ...all)
  const got: string[] = []
  for (const body of [{ count: 8 }, { count: 8, lease: 30 }, {}, { lease: 30 }, { count: 100 }]) {
    const r = await call(`${d.url}/receive_noblock`, body)
    t.equal(r.text, JSON.stringify(r.body), `${JSON.stringify(body)}: the bytes JSON.stringify writes`)
    if (r.body.jobs !== undefined) got.push(...messagesOf(r.body.jobs))
    else got.push(r.body.message as string)
  }
  const byPriority = all.filter((_, i) => i % 2 === 0).concat(all.filter((_, i) => i % 2 === 1))
  // A lone surrogate is read as U+FFFD, as the original's Go decoder reads it (and Redis keeps it).
  t.same(got, byPriority.map((message) => message.toWellFormed()), 'every message as it was scheduled, in serving order')
  t.ok(got.includes('lone \ufffd surrogate'))
})
