import { chmodSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import { Queue } from '../src/queue/queue'
import { JobHistory } from '../src/queue/history'
import { Job } from '../src/queue/job'
import { stampOf } from '../src/queue/stamp'
import { type Running, call, removeDir, startDaemon, tempDir, until } from './helpers/daemon'

/** What a client can make the daemon keep: every kept job counts, no name sticks around unasked. */

async function daemon(t: Test, args: string[] = [], env: NodeJS.ProcessEnv = {}, dataDir?: string): Promise<Running> {
  const d = await startDaemon({ args, env, dataDir })
  t.teardown(() => d.stop())
  return d
}

t.test('dead jobs count against max_queued_jobs and max_queued_bytes until retried or deleted', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const script = path.join(dir, 'fail.sh')
  writeFileSync(script, '#!/bin/sh\nexit 1\n')
  chmodSync(script, 0o755)
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ lanes: { work: { runner: 'exec', command: [script], allowed_env: ['N'] } } }))
  const d = await daemon(t, ['--config', path.join(dir, 'config.json'), '--max-queued-jobs', '2', '--max-queued-bytes', '1000'], {}, path.join(dir, 'data'))
  const hashes: string[] = []
  for (const n of ['1', '2']) hashes.push(String((await call(`${d.url}/schedule`, { lane: 'work', message: JSON.stringify({ arguments: { N: n } }) })).body.hash))
  await until(async () => ((await call(`${d.url}/`)).body.payload as { server: { dead_jobs_total: number } }).server.dead_jobs_total === 2, 'both jobs dead')
  const refused = await call(`${d.url}/schedule`, { message: 'one more' })
  t.same([refused.status, refused.body.code], [503, 8])
  t.match(refused.body.message, /the queue holds 2 jobs \(2 of them dead: retry or delete them\); max_queued_jobs is 2/)
  t.equal((await call(`${d.url}/delete`, { hash: hashes[0] })).status, 200)
  t.equal((await call(`${d.url}/schedule`, { message: 'one more' })).status, 200, 'a deleted dead job frees its place')
  const server = ((await call(`${d.url}/`)).body.payload as { server: Record<string, number> }).server
  t.match(server, { queued_jobs_total: 2, dead_jobs_total: 1 })
})

t.test('succeeded jobs are bounded by count and by bytes, oldest forgotten first', (t) => {
  const history = new JobHistory({ keepFinishedMs: () => 60_000, maxFinished: 100, maxFinishedBytes: 250 })
  const jobs = Array.from({ length: 5 }, (_, i) => new Job(i + 1, stampOf('work', 1, 0), 'x'.repeat(100)))
  for (const job of jobs) history.succeeded(job, 1000)
  t.same(jobs.map((j) => history.finishedJob(j.hash, 1000) !== undefined), [false, false, false, true, true], 'two of 100 bytes fit in 250')
  t.equal(history.forgotten, 3)
  t.end()
})

t.test('receives do not create lanes: max_lanes stays free, and nothing of them is saved', async (t) => {
  const d = await daemon(t, ['--max-lanes', '3'])
  for (let i = 0; i < 20; i++) t.equal((await call(`${d.url}/receive_noblock`, { lane: `asked-${i}`, lease: i % 2 === 0 ? 5 : undefined })).body.code, 2)
  // A parked receiver on an unknown lane waits for it; when it leaves, the name is forgotten.
  const leaving = new AbortController()
  const parked = call(`${d.url}/receive_block`, { lane: 'waited-for' }, { signal: leaving.signal }).catch(() => undefined)
  await until(async () => ((await call(`${d.url}/`)).body.payload as { idle_workers: Record<string, number> }).idle_workers['waited-for'] === 1, 'the receiver parked')
  leaving.abort()
  await parked
  await until(async () => !Object.hasOwn(((await call(`${d.url}/`)).body.payload as { idle_workers: object }).idle_workers, 'waited-for'), 'the name forgotten')
  t.same(Object.keys((await call(`${d.url}/jobs`)).body), ['main'])
  // A receiver waiting on a lane gets the first job scheduled to it.
  const waiting = call(`${d.url}/receive_block`, { lane: 'new' })
  await until(async () => ((await call(`${d.url}/`)).body.payload as { idle_workers: Record<string, number> }).idle_workers.new === 1, 'the receiver parked')
  t.equal((await call(`${d.url}/schedule`, { lane: 'new', message: 'first' })).status, 200)
  t.equal((await waiting).body.message, 'first')
  t.equal((await call(`${d.url}/schedule`, { lane: 'another', message: 'x' })).status, 200, 'lanes are still free for jobs')
  t.equal(await d.stop(), 0)
  const saved = await daemon(t, [], {}, d.dataDir)
  t.same(Object.keys((await call(`${saved.url}/jobs`)).body).sort(), ['another', 'main', 'new'], 'only lanes that had jobs are saved')
})

t.test('a lane called __proto__ (or constructor) is counted, listed and saved like any other', async (t) => {
  const d = await daemon(t)
  for (const lane of ['__proto__', 'constructor', 'toString']) t.equal((await call(`${d.url}/schedule`, { lane, message: lane })).status, 200)
  const payload = (await call(`${d.url}/`)).body.payload as Record<string, Record<string, unknown>>
  for (const lane of ['__proto__', 'constructor', 'toString']) {
    t.ok(Object.hasOwn(payload.queued_jobs!, lane), `queued_jobs has ${lane}`)
    t.equal(Object.getOwnPropertyDescriptor(payload.queued_jobs!, lane)?.value, 1)
    t.equal(Object.getOwnPropertyDescriptor(payload.leased_jobs!, lane)?.value, 0)
  }
  t.equal(await d.stop(), 0)
  const again = await daemon(t, [], {}, d.dataDir)
  const listed = JSON.parse((await call(`${again.url}/jobs`)).text) as Record<string, { message: string }[]>
  t.same(Object.getOwnPropertyDescriptor(listed, '__proto__')?.value.map((j: { message: string }) => j.message), ['__proto__'])
  t.equal((await call(`${again.url}/receive_noblock`, { lane: '__proto__' })).body.message, '__proto__')
})

t.test('with auth_token, GET / stays open but shows the queues only to requests with the token', async (t) => {
  const d = await daemon(t, [], { DISPENSERD_AUTH_TOKEN: 's3cret' })
  const open = await call(`${d.url}/`)
  t.equal(open.status, 200)
  t.match(open.body, { name: 'dispenserd', status: 'ok' })
  t.notOk('queued_jobs' in (open.body.payload as object), 'no per-lane detail without the token')
  t.ok(open.text.length < 400, `a small answer (${open.text.length} bytes)`)
  const detailed = await call(`${d.url}/`, undefined, { headers: { Authorization: 'Bearer s3cret' } })
  t.same((detailed.body.payload as { queued_jobs: object }).queued_jobs, { main: 0 })
})

t.test('status counts come from counters: leased and delayed per lane without walking the jobs', (t) => {
  const q = new Queue()
  for (let i = 0; i < 1000; i++) q.schedule({ lane: `l${i % 10}`, priority: 1, message: 'm', delayMs: Math.floor(i / 10) % 2 === 0 ? 60_000 : undefined })
  for (let i = 0; i < 100; i++) q.receiveLeased(`l${i % 10}`, 60_000)
  const stats = q.stats()
  t.same([stats.queued.l0, stats.leased.l0, stats.delayed.l0], [40, 10, 50])
  t.end()
})
