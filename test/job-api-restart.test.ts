import t from 'tap'
import { type Running, call, removeDir, startDaemon, tempDir } from './helpers/daemon'

/** What the operators' API changes survives a restart: paused lanes and moved jobs, after a clean stop and after a kill with the journal. */

const JOURNAL = ['--persistence', 'journal', '--journal-fsync', 'always', '--persist-interval', '0']

async function ok(d: Running, endpoint: string, body?: unknown): Promise<Record<string, unknown>> {
  const r = await call(`${d.url}${endpoint}`, body)
  if (r.status !== 200) throw new Error(`${endpoint}: ${r.status} ${r.text}`)
  return r.body
}

async function isPaused(d: Running, lane: string): Promise<boolean> {
  const text = await (await fetch(`${d.url}/metrics`)).text()
  const m = new RegExp(`^dispenserd_lane_paused\\{lane="${lane}"\\} (\\d)$`, 'm').exec(text)
  if (m === null) throw new Error(`no dispenserd_lane_paused for ${lane}`)
  return m[1] === '1'
}

t.test('a paused lane stays paused after a clean restart (state.json)', async (t) => {
  const dataDir = tempDir()
  t.teardown(() => removeDir(dataDir))
  const first = await startDaemon({ dataDir })
  await ok(first, '/schedule', { lane: 'a', message: 'x' })
  await ok(first, '/pause', { lane: 'a' })
  t.equal(await first.stop(), 0)
  const second = await startDaemon({ dataDir })
  t.teardown(() => second.stop())
  t.equal(await isPaused(second, 'a'), true)
  t.match(await ok(second, '/receive_noblock', { lane: 'a' }), { code: 2 }, 'it serves nothing')
  await ok(second, '/resume', { lane: 'a' })
  t.match(await ok(second, '/receive_noblock', { lane: 'a' }), { message: 'x' })
})

t.test('journal: pause, resume and moves survive a kill (their records replayed), restored jobs are found by hash and number', async (t) => {
  const dataDir = tempDir()
  t.teardown(() => removeDir(dataDir))
  const first = await startDaemon({ dataDir, args: JOURNAL })
  const batch = await ok(first, '/schedule', { jobs: [{ lane: 'a', message: 'one' }, { lane: 'a', message: 'two' }, { lane: 'b', message: 'three' }] })
  const firstNum = batch.first_job_num as number
  const one = await ok(first, `/job?job_num=${firstNum}`)
  const two = await ok(first, `/job?job_num=${firstNum + 1}`)
  await ok(first, '/pause', { lane: 'a' })
  await ok(first, '/pause', { lane: 'b' })
  await ok(first, '/resume', { lane: 'b' })
  await ok(first, '/move', { hash: one.hash, lane: 'c', priority: 9 })
  await ok(first, '/bulk', { action: 'reprioritize', hashes: [two.hash], priority: 3 })
  await first.stop('SIGKILL')

  const second = await startDaemon({ dataDir, args: JOURNAL })
  t.teardown(() => second.stop('SIGKILL'))
  t.equal(await isPaused(second, 'a'), true, 'a: paused')
  t.equal(await isPaused(second, 'b'), false, 'b: paused, then resumed')
  t.match(await ok(second, `/job?hash=${String(one.hash)}`), { state: 'queued', lane: 'c', priority: 9, job_num: firstNum }, 'moved, with its hash')
  t.match(await ok(second, `/job?job_num=${firstNum + 1}`), { state: 'queued', lane: 'a', priority: 3, hash: two.hash }, 'reprioritized; found by number')
  t.match(await ok(second, '/delete', { hash: two.hash }), { job_num: firstNum + 1 }, 'a restored job of a plain lane can be deleted by hash')
  t.match(await ok(second, '/receive_noblock', { lane: 'c' }), { hash: one.hash })
})
