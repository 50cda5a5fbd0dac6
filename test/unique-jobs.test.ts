import { writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { call, daemonForTest, removeDir, startDaemon, tempDir, until } from './helpers/daemon'

/**
 * Unique jobs against the real daemon: a schedule whose unique_key is held on its lane queues
 * nothing and answers code 16 with the holder's hash (HTTP 200, status "ok"); keys are held while
 * the job is queued or out and for unique_for after it finished; batches; lane defaults; restarts.
 */

t.test('a held key answers code 16 with the holder, not an error; another lane or key is free', async (t) => {
  const d = await daemonForTest(t)
  const first = await call(`${d.url}/schedule`, { message: 'a', unique_key: 'report-7' })
  t.equal(first.body.code, 0)
  const again = await call(`${d.url}/schedule`, { message: 'b', unique_key: 'report-7' })
  t.equal(again.status, 200)
  t.equal(again.body.status, 'ok')
  t.equal(again.body.code, 16)
  t.equal(again.body.hash, first.body.hash)
  t.equal(again.body.job_num, first.body.job_num)
  t.equal(again.body.held_until, null, 'held by a queued job')
  t.match(again.body.message, /unique_key "report-7" is held on lane "main" by job 1/)
  t.equal((await call(`${d.url}/schedule`, { message: 'c', unique_key: 'report-7', lane: 'other' })).body.code, 0, 'keys are per lane')
  t.equal((await call(`${d.url}/schedule`, { message: 'd', unique_key: 'report-8' })).body.code, 0)
  const status = await call(`${d.url}/`)
  t.equal((status.body.payload as { queued_jobs: Record<string, number> }).queued_jobs.main, 2, 'the duplicate was not queued')
  t.equal((status.body.payload as { server: { unique_keys_held: number } }).server.unique_keys_held, 3)
  const got = await call(`${d.url}/receive_noblock`, {})
  t.equal(got.body.unique_key, 'report-7', 'a received job shows its key')
  t.equal(got.body.unique_for, 0)
})

t.test('the key is held while the job is out and for unique_for after it finished', async (t) => {
  const d = await daemonForTest(t)
  const job = await call(`${d.url}/schedule`, { message: 'a', unique_key: 'k', unique_for: 1.5 })
  const leased = await call(`${d.url}/receive_noblock`, { lease: 30 })
  t.equal((await call(`${d.url}/schedule`, { message: 'a', unique_key: 'k' })).body.code, 16, 'held while leased')
  const acked = Date.now()
  await call(`${d.url}/ack`, { hash: leased.body.hash, lease_token: leased.body.lease_token })
  const after = await call(`${d.url}/schedule`, { message: 'a', unique_key: 'k' })
  t.equal(after.body.code, 16, 'held after the ack')
  t.equal(after.body.hash, job.body.hash)
  const heldUntil = Date.parse(String(after.body.held_until))
  t.ok(heldUntil >= acked + 1400 && heldUntil <= Date.now() + 1600, `held until about 1.5 s after the ack (${String(after.body.held_until)})`)
  let queued: Record<string, unknown> = {}
  await until(async () => {
    queued = (await call(`${d.url}/schedule`, { message: 'a', unique_key: 'k' })).body
    return queued.code === 0
  }, 'the key to be free again')
  t.ok(Date.now() >= heldUntil, 'not before its time')
  t.not(queued.hash, job.body.hash, 'a new job')
})

t.test('without unique_for the key is free once the job is taken; a release keeps it held', async (t) => {
  const d = await daemonForTest(t)
  await call(`${d.url}/schedule`, { message: 'a', unique_key: 'k' })
  const leased = await call(`${d.url}/receive_noblock`, { lease: 30 })
  await call(`${d.url}/release`, { hash: leased.body.hash, lease_token: leased.body.lease_token })
  t.equal((await call(`${d.url}/schedule`, { message: 'a', unique_key: 'k' })).body.code, 16, 'released: queued again, still held')
  await call(`${d.url}/receive_noblock`, {})
  t.equal((await call(`${d.url}/schedule`, { message: 'a', unique_key: 'k' })).body.code, 0, 'taken for good: free')
})

t.test('deleting a job frees its key at once', async (t) => {
  const d = await daemonForTest(t)
  const delayed = await call(`${d.url}/schedule`, { message: 'a', unique_key: 'k', unique_for: 3600, delay: 60 })
  t.equal((await call(`${d.url}/schedule`, { message: 'a', unique_key: 'k' })).body.code, 16, 'a delayed job holds its key')
  t.equal((await call(`${d.url}/delete`, { hash: delayed.body.hash })).body.code, 0)
  t.equal((await call(`${d.url}/schedule`, { message: 'a', unique_key: 'k' })).body.code, 0)
})

t.test('batches queue what is free and name the holders of the rest', async (t) => {
  const d = await daemonForTest(t)
  const held = await call(`${d.url}/schedule`, { message: 'x', unique_key: 'k1' })
  const batch = await call(`${d.url}/schedule`, {
    jobs: [
      { message: 'a', unique_key: 'k1' },
      { message: 'b', unique_key: 'k2' },
      { message: 'c' },
      { message: 'd', unique_key: 'k2' },
    ],
  })
  t.equal(batch.body.code, 0)
  t.equal(batch.body.count, 2)
  t.equal(batch.body.first_job_num, 2)
  t.equal(batch.body.last_job_num, 3, 'the queued jobs get consecutive numbers')
  const duplicates = batch.body.duplicates as { index: number; job_num: number; hash: string }[]
  t.same(duplicates.map((dup) => [dup.index, dup.job_num]), [[0, 1], [3, 2]], 'held before, and by an earlier entry of the same batch')
  t.equal(duplicates[0]!.hash, held.body.hash)
  const all = await call(`${d.url}/schedule`, { jobs: [{ message: 'a', unique_key: 'k1' }, { message: 'b', unique_key: 'k2' }] })
  t.equal(all.body.code, 16, 'nothing queued: code 16')
  t.equal(all.body.count, 0)
  t.notOk('first_job_num' in all.body)
  const bad = await call(`${d.url}/schedule`, { jobs: [{ message: 'a', unique_key: 'k9' }, { message: 'b', unique_for: 5 }] })
  t.equal(bad.status, 400)
  t.match(bad.body.message, 'jobs[1]: "unique_for" needs a "unique_key"')
  t.equal((await call(`${d.url}/schedule`, { message: 'a', unique_key: 'k9' })).body.code, 0, 'a refused batch holds no key')
})

t.test('unique_key and unique_for are validated', async (t) => {
  const d = await daemonForTest(t)
  for (const [body, problem] of [
    [{ message: 'a', unique_key: 7 }, '"unique_key" must be a string of 1 to 1024 characters'],
    [{ message: 'a', unique_key: '' }, '"unique_key" must be a string of 1 to 1024 characters'],
    [{ message: 'a', unique_key: 'k'.repeat(1025) }, '"unique_key" must be a string of 1 to 1024 characters'],
    [{ message: 'a', unique_key: 'k', unique_for: -1 }, '"unique_for" must be a number of seconds from 0 to 31536000'],
    [{ message: 'a', unique_key: 'k', unique_for: '5' }, '"unique_for" must be a number of seconds from 0 to 31536000'],
  ] as const) {
    const reply = await call(`${d.url}/schedule`, body)
    t.equal(reply.status, 400, JSON.stringify(body).slice(0, 60))
    t.equal(reply.body.message, problem)
  }
})

t.test('a lane default unique_for applies to keys given without one', async (t) => {
  const dir = tempDir()
  const config = path.join(dir, 'config.json')
  writeFileSync(config, JSON.stringify({ lanes: { emails: { unique_for: 3600 } } }))
  const d = await startDaemon({ dataDir: dir, args: ['--config', config] })
  t.teardown(async () => {
    await d.stop()
    removeDir(dir)
  })
  await call(`${d.url}/schedule`, { lane: 'emails', message: 'welcome', unique_key: 'user-1' })
  await call(`${d.url}/receive_noblock`, { lane: 'emails' })
  const again = await call(`${d.url}/schedule`, { lane: 'emails', message: 'welcome', unique_key: 'user-1' })
  t.equal(again.body.code, 16, "held for the lane's unique_for after the take")
  t.ok(Date.parse(String(again.body.held_until)) > Date.now() + 3500_000)
  await call(`${d.url}/schedule`, { lane: 'main', message: 'welcome', unique_key: 'user-1' })
  await call(`${d.url}/receive_noblock`, { lane: 'main' })
  t.equal((await call(`${d.url}/schedule`, { lane: 'main', message: 'welcome', unique_key: 'user-1' })).body.code, 0, 'other lanes keep no default')
  const typo = await call(`${d.url}/schedule`, { lane: 'emails', message: 'x', unique_key: 'user-2', unique_for: 0 })
  t.equal(typo.body.code, 0, 'an explicit unique_for wins')
})

for (const mode of ['journal', 'snapshot'] as const) {
  t.test(`keys hold across a ${mode === 'journal' ? 'SIGKILL (journal)' : 'restart (snapshot)'}`, async (t) => {
    const dir = tempDir()
    t.teardown(() => removeDir(dir))
    const args = mode === 'journal' ? ['--persistence', 'journal'] : []
    const first = await startDaemon({ dataDir: dir, args })
    const queued = await call(`${first.url}/schedule`, { message: 'q', unique_key: 'queued' })
    const done = await call(`${first.url}/schedule`, { message: 'd', unique_key: 'done', unique_for: 3600 })
    await call(`${first.url}/schedule`, { message: 'f', unique_key: 'free', unique_for: 0 })
    // Take "done" and "free" (priority order = job order: q first, so lease it and put it back).
    const q = await call(`${first.url}/receive_noblock`, { lease: 60 })
    t.equal(q.body.hash, queued.body.hash)
    const takenDone = await call(`${first.url}/receive_noblock`, {})
    t.equal(takenDone.body.hash, done.body.hash)
    await call(`${first.url}/receive_noblock`, {})
    await call(`${first.url}/release`, { hash: q.body.hash, lease_token: q.body.lease_token })
    t.equal(await first.stop(mode === 'journal' ? 'SIGKILL' : 'SIGTERM'), mode === 'journal' ? null : 0)

    const second = await startDaemon({ dataDir: dir, args })
    t.teardown(() => second.stop())
    const a = await call(`${second.url}/schedule`, { message: 'q', unique_key: 'queued' })
    t.equal(a.body.code, 16, 'held by the job queued before the restart')
    t.equal(a.body.hash, queued.body.hash)
    const b = await call(`${second.url}/schedule`, { message: 'd', unique_key: 'done' })
    t.equal(b.body.code, 16, 'held by the job finished before the restart')
    t.equal(b.body.hash, done.body.hash)
    t.not(b.body.held_until, null)
    t.equal((await call(`${second.url}/schedule`, { message: 'f', unique_key: 'free' })).body.code, 0, 'a key freed before the restart stays free')
    // Once more: the holds now come from the state.json written at that clean stop.
    t.equal(await second.stop('SIGTERM'), 0)
    const third = await startDaemon({ dataDir: dir, args })
    t.teardown(() => third.stop())
    t.equal((await call(`${third.url}/schedule`, { message: 'd', unique_key: 'done' })).body.code, 16, 'held after a second restart')
    t.equal((await call(`${third.url}/schedule`, { message: 'q', unique_key: 'queued' })).body.code, 16)
  })
}
