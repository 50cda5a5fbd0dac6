import t from 'tap'
import { call, removeDir, runToExit, startDaemon, tempDir, until } from './helpers/daemon'
import { startRedis } from './helpers/redis'

/**
 * `dispenserd migrate` moves an in-memory store's jobs (queue.json and the journal of a daemon
 * killed with SIGKILL, so some jobs are only in the journal) into Redis: a daemon over Redis then
 * serves the same jobs in the same order, with the same numbers, priorities and hashes.
 */

interface Listed {
  job_num: number
  hash: string
  priority: number
  message: string
  lane: string
}

t.test('migrate keeps order, priorities, job numbers and hashes; refuses a prefix in use', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const dataDir = tempDir()
  t.teardown(() => removeDir(dataDir))

  const memory = await startDaemon({ dataDir, args: ['--persistence', 'journal', '--journal-fsync', 'always'] })
  const priorities = [5, 1, 4294967295, 1, 0, 5, 512, 0]
  for (const [i, priority] of priorities.entries()) await call(`${memory.url}/schedule`, { lane: i % 2 === 0 ? 'main' : 'other', priority, message: `m${i}|${'ü'.repeat(i)}` })
  const delayed = (await call(`${memory.url}/schedule`, { lane: 'main', message: 'later', delay: 3600 })).body as unknown as Listed
  const taken = (await call(`${memory.url}/receive_noblock`, { lane: 'other' })).body as unknown as Listed
  const before = JSON.parse(await fetch(`${memory.url}/jobs`).then((r) => r.text())) as Record<string, Listed[]>
  // Killed: the last changes are only in the journal, which migrate replays as a start would.
  await memory.stop('SIGKILL')

  const args = ['migrate', '--data-dir', dataDir, '--redis-url', redis.url, '--redis-prefix', 'moved']
  const migrated = await runToExit(args, { DISPENSERD_ROOT: dataDir })
  t.equal(migrated.code, 0, migrated.stdout + migrated.stderr)
  t.match(migrated.stdout, /migrated into Redis/)

  const d = await startDaemon({ args: ['--store', 'redis', '--redis-url', redis.url, '--redis-prefix', 'moved'] })
  t.teardown(async () => {
    await d.stop('SIGKILL')
    removeDir(d.dataDir)
  })
  await until(async () => (((await call(`${d.url}/`)).body.payload as { store: { state: string } }).store.state === 'up'), 'the Redis daemon to connect', 15_000)
  const after = JSON.parse(await fetch(`${d.url}/jobs`).then((r) => r.text())) as Record<string, Listed[]>
  const shape = (jobs: Listed[]): unknown[] => jobs.map(({ job_num, hash, priority, message, lane }) => ({ job_num, hash, priority, message, lane }))
  for (const lane of ['main', 'other']) t.same(shape(after[lane]!), shape(before[lane]!), `lane ${lane}: the same jobs in the same order`)
  t.notOk(JSON.stringify(after).includes(taken.hash), 'the job taken before the kill stays taken')

  const found = await call(`${d.url}/job?hash=${delayed.hash}`)
  t.equal(found.body.state, 'delayed', 'a delayed job found by its old hash, still delayed')
  const first = (await call(`${d.url}/receive_noblock`, { lane: 'main' })).body as unknown as Listed
  t.equal(first.hash, before.main![0]!.hash)
  const next = (await call(`${d.url}/schedule`, { lane: 'main', message: 'new' })).body as unknown as Listed
  t.ok(next.job_num > Math.max(delayed.job_num, ...Object.values(before).flat().map((j) => j.job_num)), 'job numbers continue above the old ones')

  const again = await runToExit(args, { DISPENSERD_ROOT: dataDir })
  t.equal(again.code, 1, 'a prefix that holds lanes is refused')
  t.match(again.stdout, /already holds/)
})
