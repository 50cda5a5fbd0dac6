import { writeFileSync } from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import { CODES } from '../src/errors'
import { type Running, call, removeDir, runToExit, startDaemon, tempDir, until } from './helpers/daemon'
import { startRedis } from './helpers/redis'

/**
 * Issue 14's scheduling over the Redis store, through several real frontends (bin/dispenserd) on
 * one real redis-server: unique keys taken atomically in Redis (two frontends scheduling one key at
 * once queue it once), results any frontend reads, waits ended by a finish on another frontend, and
 * a config cron entry run by two frontends firing each slot once. What Redis does not offer is
 * refused clearly: group_weights and rate at start, "group" and run-time cron changes with code 15.
 */

async function frontend(t: Test, args: string[]): Promise<Running> {
  const d = await startDaemon({ args: ['--store', 'redis', ...args] })
  t.teardown(async () => {
    await d.stop('SIGKILL')
    removeDir(d.dataDir)
  })
  await until(async () => ((await call(`${d.url}/`)).body.payload as { store: { state: string } }).store.state === 'up', 'the frontend to connect to Redis', 15_000)
  return d
}

interface Reply {
  code: number
  job_num: number
  hash: string
  state?: string
  result?: unknown
  lease_token?: string
  held_until?: string | null
  message?: string
}

const body = (reply: { body: unknown }): Reply => reply.body as Reply

t.test('two frontends over one redis-server', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const args = ['--redis-url', redis.url]
  const [a, b] = [await frontend(t, args), await frontend(t, args)]

  t.test('one unique key scheduled at once through both frontends is queued once', async (t) => {
    const keys = Array.from({ length: 10 }, (_, i) => `order-${i}`)
    // Each key 8 times, through A and B alternately, all in flight together.
    const replies = await Promise.all(keys.flatMap((key) => Array.from({ length: 8 }, (_, i) => call(`${(i % 2 === 0 ? a : b).url}/schedule`, { lane: 'uniq', message: key, unique_key: key }).then((r) => ({ key, reply: body(r) })))))
    for (const key of keys) {
      const mine = replies.filter((r) => r.key === key).map((r) => r.reply)
      const queued = mine.filter((r) => r.code === CODES.ok.code)
      t.equal(queued.length, 1, `${key}: queued once`)
      const held = mine.filter((r) => r.code === CODES.duplicate.code)
      t.equal(held.length, 7, `${key}: the others answered code 16`)
      t.ok(
        held.every((r) => r.hash === queued[0]!.hash && r.job_num === queued[0]!.job_num && r.held_until === null),
        `${key}: each names the queued job`,
      )
    }
    const listed = (await call(`${b.url}/jobs`)).body as unknown as Record<string, { message: string }[]>
    t.same(listed.uniq!.map((j) => j.message).sort(), [...keys].sort(), 'exactly one job per key in Redis')
    await until(async () => ((await call(`${a.url}/`)).body.payload as { server: { unique_keys_held: number } }).server.unique_keys_held === 10, 'GET / to count the 10 keys held')
  })

  t.test('a key is held while the job is out and unique_for after, on every frontend, then freed', async (t) => {
    const first = body(await call(`${a.url}/schedule`, { lane: 'hold', message: 'x', unique_key: 'k', unique_for: 1.5 }))
    t.equal(first.code, 0)
    const leased = body(await call(`${b.url}/receive_noblock`, { lane: 'hold', lease: 30 }))
    t.equal(leased.hash, first.hash)
    t.equal(body(await call(`${a.url}/schedule`, { lane: 'hold', message: 'x', unique_key: 'k' })).code, CODES.duplicate.code, 'held while leased (seen from A)')
    t.equal(body(await call(`${b.url}/ack`, { hash: leased.hash, lease_token: leased.lease_token })).code, 0)
    const after = body(await call(`${a.url}/schedule`, { lane: 'hold', message: 'x', unique_key: 'k' }))
    t.equal(after.code, CODES.duplicate.code, 'held after the ack, for unique_for')
    t.equal(after.hash, first.hash)
    t.ok(after.held_until !== null && Date.parse(after.held_until!) > Date.now(), 'with the time it is held until')
    t.equal(body(await call(`${b.url}/schedule`, { lane: 'other', message: 'x', unique_key: 'k' })).code, 0, 'keys are per lane')
    await until(async () => body(await call(`${b.url}/schedule`, { lane: 'hold', message: 'x', unique_key: 'k' })).code === 0, 'the key to be free after unique_for', 10_000)
    // Deleting a queued job frees its key at once.
    const queued = body(await call(`${a.url}/schedule`, { lane: 'del', message: 'x', unique_key: 'd', unique_for: 3600 }))
    t.equal(body(await call(`${b.url}/delete`, { hash: queued.hash })).code, 0)
    t.equal(body(await call(`${a.url}/schedule`, { lane: 'del', message: 'x', unique_key: 'd' })).code, 0, 'deleted: free')
  })

  t.test('a batch with unique keys: held keys listed, the rest queued', async (t) => {
    await call(`${a.url}/schedule`, { lane: 'batch', message: 'old', unique_key: 'b1' })
    const reply = (await call(`${b.url}/schedule`, { jobs: [{ lane: 'batch', message: 'm1', unique_key: 'b1' }, { lane: 'batch', message: 'm2', unique_key: 'b2' }, { lane: 'batch', message: 'm3', unique_key: 'b2' }] })).body as unknown as { code: number; count: number; duplicates: { index: number }[] }
    t.equal(reply.code, 0)
    t.equal(reply.count, 1, 'only m2 is queued')
    t.same(reply.duplicates.map((d) => d.index), [0, 2], 'b1 held before, b2 by the batch itself')
  })

  t.test('a result given on one frontend is read from the other for keep_finished', async (t) => {
    const scheduled = body(await call(`${a.url}/schedule`, { lane: 'results', message: 'compute' }))
    const leased = body(await call(`${b.url}/receive_noblock`, { lane: 'results', lease: 30 }))
    t.equal(body(await call(`${b.url}/ack`, { hash: leased.hash, lease_token: leased.lease_token, result: { sum: 42, items: ['a', 'b'] } })).code, 0)
    const found = body(await call(`${a.url}/job?hash=${scheduled.hash}`))
    t.equal(found.state, 'succeeded')
    t.same(found.result, { sum: 42, items: ['a', 'b'] })
    // Without a result an acked job is gone, as with the in-memory store.
    await call(`${a.url}/schedule`, { lane: 'results', message: 'plain' })
    const plain = body(await call(`${a.url}/receive_noblock`, { lane: 'results', lease: 30 }))
    await call(`${b.url}/ack`, { hash: plain.hash, lease_token: plain.lease_token })
    t.equal(body(await call(`${b.url}/job?hash=${plain.hash}`)).code, CODES.job_not_found.code)
  })

  t.test('a wait on A ends when B acks the job, with its result', async (t) => {
    const started = Date.now()
    const waiting = call(`${a.url}/schedule`, { lane: 'waited', message: 'render', wait: 20 })
    let leased: Reply | undefined
    await until(async () => {
      leased = body(await call(`${b.url}/receive_noblock`, { lane: 'waited', lease: 30 }))
      return leased.code === 0
    }, 'the waited job to reach B')
    await call(`${b.url}/ack`, { hash: leased!.hash, lease_token: leased!.lease_token, result: 'done' })
    const reply = body(await waiting)
    t.equal(reply.state, 'succeeded')
    t.equal(reply.result, 'done')
    t.equal(reply.hash, leased!.hash)
    t.ok(Date.now() - started < 10_000, `answered in ${Date.now() - started} ms, not at the end of the 20 s wait`)
  })

  t.test('a wait on A ends when B takes the job for good, or deletes it', async (t) => {
    const taken = call(`${a.url}/schedule`, { lane: 'waited2', message: 'take me', wait: 20 })
    await until(async () => body(await call(`${b.url}/receive_noblock`, { lane: 'waited2' })).code === 0, 'B to take the job')
    t.equal(body(await taken).state, 'taken')
    const deleted = call(`${a.url}/schedule`, { lane: 'waited3', message: 'delete me', wait: 20 })
    let listed: { hash: string }[] = []
    await until(async () => {
      listed = ((await call(`${b.url}/jobs`)).body as unknown as Record<string, { hash: string }[]>).waited3 ?? []
      return listed.length === 1
    }, 'B to list the waited job')
    t.equal(body(await call(`${b.url}/delete`, { hash: listed[0]!.hash })).code, 0)
    const reply = body(await deleted)
    t.equal(reply.state, 'deleted')
    t.equal(reply.hash, listed[0]!.hash)
  })

  t.test('a wait on B for a key held by a queued job ends when A acks that job', async (t) => {
    const holder = body(await call(`${a.url}/schedule`, { lane: 'waited4', message: 'first', unique_key: 'w' }))
    const started = Date.now()
    const waiting = call(`${b.url}/schedule`, { lane: 'waited4', message: 'second', unique_key: 'w', wait: 20 })
    await until(async () => ((await call(`${b.url}/`)).body.payload as { server: { waited_jobs: number } }).server.waited_jobs === 1, 'B to wait')
    const leased = body(await call(`${a.url}/receive_noblock`, { lane: 'waited4', lease: 30 }))
    t.equal(leased.hash, holder.hash)
    await call(`${a.url}/ack`, { hash: leased.hash, lease_token: leased.lease_token, result: [1] })
    const reply = body(await waiting)
    t.equal(reply.state, 'succeeded')
    t.equal(reply.hash, holder.hash, 'the holder is what B waited for')
    t.same(reply.result, [1])
    t.ok(Date.now() - started < 10_000, `answered in ${Date.now() - started} ms, not at the end of the 20 s wait`)
  })

  t.test('a schedule with "group" answers code 15 naming group and the memory store', async (t) => {
    const reply = await call(`${a.url}/schedule`, { lane: 'g', message: 'x', group: 'tenant-1' })
    t.equal(reply.status, 501)
    t.equal(body(reply).code, 15)
    t.match(body(reply).message, /"group".*store "redis".*store "memory"/)
    t.equal(body(await call(`${a.url}/receive_noblock`, { lane: 'g' })).code, CODES.empty_queue.code, 'nothing was queued')
  })

  t.test('run-time cron changes answer code 15; GET /cron still lists', async (t) => {
    for (const [endpoint, payload] of [
      ['/cron/add', { name: 'x', every: 60, message: 'm' }],
      ['/cron/pause', { name: 'x' }],
      ['/cron/resume', { name: 'x' }],
      ['/cron/delete', { name: 'x' }],
    ] as const) {
      const reply = await call(`${a.url}${endpoint}`, payload)
      t.equal(reply.status, 501, endpoint)
      t.equal(body(reply).code, 15, endpoint)
      t.match(body(reply).message, new RegExp(`${endpoint.replace('/', '\\/')}.*store "redis".*store "memory"`), endpoint)
    }
    t.equal((await call(`${a.url}/cron`)).body.code, 0)
  })
})

t.test('a config cron entry run by two frontends fires each slot once', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const config = path.join(dir, 'config.json')
  writeFileSync(config, JSON.stringify({ cron: [{ name: 'tick', schedule: '* * * * * *', lane: 'ticks', message: 'tick' }] }))
  const args = ['--redis-url', redis.url, '--config', config]
  const [a, b] = [await frontend(t, args), await frontend(t, args)]
  const slotsHandled = (d: Running, msg: string): string[] => d.logs.filter((l) => l.cron === 'tick' && l.msg === msg).map((l) => l.slot as string)
  // Both frontends handle the same slots: each slot one fires and the other finds its key held.
  await until(() => slotsHandled(a, 'cron: this slot was fired already (its key is held)').length >= 2 && slotsHandled(b, 'cron: this slot was fired already (its key is held)').length >= 2, 'each frontend to find slots the other fired', 20_000)
  await a.stop('SIGKILL')
  await b.stop('SIGKILL')
  const fired = [...slotsHandled(a, 'cron fired'), ...slotsHandled(b, 'cron fired')]
  t.equal(new Set(fired).size, fired.length, `no slot fired twice (${fired.length} fired)`)
  const c = await frontend(t, ['--redis-url', redis.url])
  const listed = (await call(`${c.url}/jobs`)).body as unknown as Record<string, unknown[]>
  t.equal(listed.ticks!.length, fired.length, 'one job per fired slot in Redis')
  const both = slotsHandled(a, 'cron fired').concat(slotsHandled(a, 'cron: this slot was fired already (its key is held)'))
  const overlap = both.filter((slot) => slotsHandled(b, 'cron fired').includes(slot) || slotsHandled(b, 'cron: this slot was fired already (its key is held)').includes(slot))
  t.ok(overlap.length >= 2, `the frontends handled ${overlap.length} slots in common`)
})

t.test('group_weights and rate refuse the start with store redis, naming the setting and the store', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  for (const [setting, lane] of [
    ['group_weights', { group_weights: { big: 2 } }],
    ['rate', { rate: { jobs: 10, per: 1 } }],
  ] as const) {
    const config = path.join(dir, `${setting}.json`)
    writeFileSync(config, JSON.stringify({ lanes: { mail: lane } }))
    const run = await runToExit(['--store', 'redis', '--redis-url', 'redis://127.0.0.1:1', '--config', config, '--data-dir', dir, '--address', '127.0.0.1:0'])
    t.not(run.code, 0, `${setting}: the start is refused`)
    t.match(run.stdout + run.stderr, new RegExp(`lane "mail": "${setting}" is not offered by store "redis" \\(only store "memory" has it\\)`), setting)
  }
})
