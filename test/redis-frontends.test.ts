import { chmodSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import Ajv2020 from 'ajv/dist/2020'
import { Redis } from 'ioredis'
import t from 'tap'
import { type Reply, call, freePort, removeDir, startDaemon, tempDir, until } from './helpers/daemon'
import { type JobReply, frontend, parked, storeState } from './helpers/frontends'
import { type RedisCluster, startCluster, startRedis } from './helpers/redis'

/**
 * Several daemons ("frontends", the real bin/dispenserd) sharing one Redis store: what one does the
 * others see at once, leases cross frontends, a frontend killed with SIGKILL loses no leased job,
 * and Redis hanging or down is answered 503 code 14 (never a hung request), reported in GET /, and
 * recovered from by itself.
 */

t.test('frontends over one standalone redis-server', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const args = ['--redis-url', redis.url]
  const [a, b] = [await frontend(t, args), await frontend(t, args)]

  t.test('a receive_block parked on B gets a job scheduled on A promptly', async (t) => {
    const waiting = call(`${b.url}/receive_block`, { lane: 'wake', timeout: 10 })
    await until(async () => (await parked(b)) === 1, 'the receiver to park on B')
    const sent = Date.now()
    const scheduled = await call(`${a.url}/schedule`, { lane: 'wake', message: 'from A' })
    const got = await waiting
    const ms = Date.now() - sent
    t.equal(got.status, 200)
    t.equal((got.body as unknown as JobReply).hash, (scheduled.body as unknown as JobReply).hash)
    // B polls its lanes every second whatever the hints say: well under that means the hint woke it.
    t.ok(ms < 800, `delivered in ${ms} ms`)
  })

  t.test('a lone surrogate in a request is read as U+FFFD, as the in-memory store and the original read it', async (t) => {
    // JSON.stringify writes a lone surrogate as the escape \ud800: the bodies below carry escapes.
    const scheduled = await call(`${a.url}/schedule`, { lane: 'odd\udc00lane', message: 'a\ud800b' })
    t.equal(scheduled.status, 200)
    const got = (await call(`${b.url}/receive_noblock`, { lane: 'odd\ufffdlane' })).body as unknown as JobReply
    t.same([got.message, got.lane], ['a\ufffdb', 'odd\ufffdlane'])
  })

  t.test('a lease taken on A is touched, released and acked on B', async (t) => {
    await call(`${a.url}/schedule`, { lane: 'cross', message: 'one', priority: 1 })
    await call(`${a.url}/schedule`, { lane: 'cross', message: 'two', priority: 1 })
    const leased = (await call(`${a.url}/receive_noblock`, { lane: 'cross', lease: 30 })).body as unknown as JobReply
    t.equal(leased.message, 'one')
    const touched = await call(`${b.url}/touch`, { hash: leased.hash, lease_token: leased.lease_token, lease: 60 })
    t.equal(touched.status, 200)
    t.ok(Date.parse(touched.body.lease_expires as string) > Date.now() + 50_000)
    t.equal((await call(`${b.url}/release`, { hash: leased.hash, lease_token: leased.lease_token })).status, 200)
    const again = (await call(`${b.url}/receive_noblock`, { lane: 'cross', lease: 30 })).body as unknown as JobReply
    t.equal(again.hash, leased.hash, 'released to its place, ahead of "two"')
    t.equal((await call(`${a.url}/ack`, { hash: again.hash, lease_token: leased.lease_token })).body.code, 9, 'the first lease ended')
    t.equal((await call(`${a.url}/ack`, { hash: again.hash, lease_token: again.lease_token })).status, 200)
    t.equal(((await call(`${b.url}/receive_noblock`, { lane: 'cross' })).body as unknown as JobReply).message, 'two')
    const job = await call(`${b.url}/job?hash=${leased.hash}`)
    t.equal(job.body.code, 11, 'acked: gone')
  })

  t.test('a frontend killed with SIGKILL loses no leased job', async (t) => {
    const c = await frontend(t, args)
    const hashes: string[] = []
    for (let i = 0; i < 20; i++) hashes.push(((await call(`${c.url}/schedule`, { lane: 'kill', message: `k${i}`, priority: 1 })).body as unknown as JobReply).hash)
    for (let i = 0; i < 10; i++) t.equal((await call(`${c.url}/receive_noblock`, { lane: 'kill', lease: 1 })).body.code, 0)
    await c.stop('SIGKILL')
    const got: string[] = []
    await until(async () => {
      const reply = (await call(`${b.url}/receive_noblock`, { lane: 'kill' })).body as unknown as JobReply
      if (reply.code === 0) got.push(reply.hash)
      return got.length === 20
    }, 'every job back from the dead frontend', 10_000)
    t.equal(got.length, 20)
    t.same(new Set(got), new Set(hashes), 'all 20 jobs, none twice')
  })

  t.test('a batch receive_block parked on B waits for "min" jobs scheduled on A', async (t) => {
    const waiting = call(`${b.url}/receive_block`, { lane: 'batches', count: 3, min: 2, lease: 30, timeout: 10 })
    await until(async () => (await parked(b)) === 1, 'the batch receiver to park on B')
    await call(`${a.url}/schedule`, { lane: 'batches', message: 'one' })
    await new Promise((r) => setTimeout(r, 300))
    t.equal(await parked(b), 1, 'one job is not enough')
    await call(`${a.url}/schedule`, { lane: 'batches', message: 'two' })
    const got = await waiting
    t.equal(got.body.count, 2)
    t.same((got.body.jobs as JobReply[]).map((j) => j.message), ['one', 'two'])
    const acks = await call(`${a.url}/ack`, { leases: (got.body.jobs as JobReply[]).map((j) => ({ hash: j.hash, lease_token: j.lease_token })) })
    t.equal(acks.status, 200, acks.text)
  })

  t.test('GET /jobs and GET / see what every frontend did', async (t) => {
    await call(`${a.url}/schedule`, { jobs: [{ lane: 'seen', message: 'x', priority: 2 }, { lane: 'seen', message: 'y', priority: 1 }] })
    const listing = JSON.parse((await fetch(`${b.url}/jobs`).then((r) => r.text())) || '{}') as Record<string, { message: string }[]>
    t.same(listing.seen!.map((j) => j.message), ['y', 'x'])
    await until(async () => {
      const { body } = await call(`${b.url}/`)
      return ((body.payload as Record<string, Record<string, number>>).queued_jobs!.seen ?? 0) === 2
    }, 'B\'s counts to show the lane', 5000)
  })
})

t.test('a runner lane\'s concurrency holds across frontends; a dead job is retried from another frontend', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const script = path.join(dir, 'work.sh')
  writeFileSync(script, '#!/bin/sh\necho "start $(date +%s%N)" >> "$LOG"\nsleep 0.2\necho "end $(date +%s%N)" >> "$LOG"\n[ "$FAIL" = yes ] && exit 3\nexit 0\n')
  chmodSync(script, 0o755)
  const log = path.join(dir, 'runs.log')
  const config = path.join(dir, 'config.json')
  const args = [{ key: 'LOG', type: 'string', presence: 'required' }, { key: 'FAIL', type: 'string' }]
  writeFileSync(config, JSON.stringify({ lanes: { work: { runner: 'exec', command: [script], concurrency: 1, retries: 0, arguments: args } } }))
  const [a, b] = [await frontend(t, ['--redis-url', redis.url, '--config', config]), await frontend(t, ['--redis-url', redis.url, '--config', config])]
  const hashes: string[] = []
  for (let i = 0; i < 6; i++) {
    const reply = await call(`${(i % 2 === 0 ? a : b).url}/schedule`, { lane: 'work', message: JSON.stringify({ arguments: { LOG: log, ...(i === 5 ? { FAIL: 'yes' } : {}) } }) })
    hashes.push((reply.body as unknown as JobReply).hash)
  }
  await until(async () => (await call(`${b.url}/job?hash=${hashes[5]}`)).body.state === 'dead', 'the failing job to die', 20_000)
  for (const hash of hashes.slice(0, 5)) t.equal((await call(`${a.url}/job?hash=${hash}`)).body.state, 'succeeded')
  const events = readFileSync(log, 'utf8').trim().split('\n').map((line) => line.split(' ') as ['start' | 'end', string])
  t.equal(events.length, 12)
  let running = 0
  let most = 0
  for (const [kind] of events.sort((x, y) => (BigInt(x[1]) < BigInt(y[1]) ? -1 : 1))) {
    running += kind === 'start' ? 1 : -1
    most = Math.max(most, running)
  }
  t.equal(most, 1, 'never two runs at once, whichever frontend started them')
  const failed = await call(`${a.url}/failed?lane=work`)
  t.equal(failed.body.total, 1)
  t.equal((await call(`${a.url}/retry`, { hash: hashes[5] })).status, 200)
  await until(async () => (await call(`${b.url}/job?hash=${hashes[5]}`)).body.state === 'dead', 'the retried job to run and die again', 20_000)
})

t.test('Redis hanging (SIGSTOP) is answered 503 code 14 within the command timeout; after SIGCONT all works again', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const a = await frontend(t, ['--redis-url', redis.url])
  t.equal((await call(`${a.url}/schedule`, { lane: 'hang', message: 'before' })).status, 200)
  redis.pause()
  const started = Date.now()
  const refused = await call(`${a.url}/schedule`, { lane: 'hang', message: 'during' })
  const ms = Date.now() - started
  t.equal(refused.status, 503)
  t.equal(refused.body.code, 14)
  t.match(refused.body.message, /outcome is unknown/)
  t.equal(refused.headers.get('retry-after'), '1')
  t.ok(ms < 2500, `answered in ${ms} ms (command timeout 1000 ms)`)
  const receive = await call(`${a.url}/receive_noblock`, { lane: 'hang' })
  t.equal(receive.body.code, 14)
  const blocked = await call(`${a.url}/receive_block`, { lane: 'hang-empty', timeout: 1 })
  t.equal(blocked.body.code, 14, 'a parked receiver whose wait ends during the outage is told of it, not "empty queue"')
  await until(async () => (await storeState(a)) === 'down', 'GET / to report the store down')
  redis.resume()
  await until(async () => (await call(`${a.url}/schedule`, { lane: 'hang', message: 'after' })).status === 200, 'schedules to work again', 10_000)
  await until(async () => (await storeState(a)) === 'up', 'GET / to report the store up')
  const messages: string[] = []
  for (;;) {
    const reply = (await call(`${a.url}/receive_noblock`, { lane: 'hang' })).body as unknown as JobReply
    if (reply.code !== 0) break
    messages.push(reply.message)
  }
  t.equal(messages[0], 'before')
  t.ok(messages.includes('after'))
})

t.test('SIGTERM while Redis still runs the requests read before it: each is answered, and a job taken for a reply is not lost', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const admin = new Redis(redis.port)
  t.teardown(() => admin.disconnect())
  const a = await startDaemon({ args: ['--store', 'redis', '--redis-url', redis.url] })
  t.teardown(async () => {
    await a.stop('SIGKILL')
    removeDir(a.dataDir)
  })
  await until(async () => (await storeState(a)) === 'up', 'the frontend to connect to Redis', 15_000)
  await call(`${a.url}/schedule`, { lane: 'bye', message: 'leased' })
  const leased = (await call(`${a.url}/receive_noblock`, { lane: 'bye', lease: 60 })).body as unknown as JobReply
  await call(`${a.url}/schedule`, { lane: 'bye', message: 'taken' })

  // Redis holds every script back (CLIENT PAUSE WRITE) until the daemon is shutting down.
  await admin.call('CLIENT', 'PAUSE', '30000', 'WRITE')
  t.teardown(() => admin.call('CLIENT', 'UNPAUSE').then(() => undefined))
  const answered = (reply: Promise<Reply>): Promise<Reply | string> => reply.catch((err: Error) => `no answer (${String((err.cause as { code?: string } | undefined)?.code ?? err.message)})`)
  const replies = Promise.all([
    answered(call(`${a.url}/receive_noblock`, { lane: 'bye' })),
    answered(call(`${a.url}/schedule`, { lane: 'bye', message: 'late' })),
    answered(call(`${a.url}/ack`, { hash: leased.hash, lease_token: leased.lease_token })),
  ])
  await until(async () => /blocked_clients:[1-9]/.test(await admin.info('clients')), 'the requests to reach Redis')
  const exited = a.stop('SIGTERM')
  await until(() => a.logs.some((line) => line.msg === 'shutting down'), 'the shutdown to begin')
  await admin.call('CLIENT', 'UNPAUSE')
  const [received, scheduled, acked] = await replies
  t.equal(await exited, 0)

  // Done (Redis answers well within the command timeout, 1 s, on a quiet machine), or refused
  // with 503: code 5 for a request read after the SIGTERM, code 14 on a machine too loaded.
  for (const reply of [received, scheduled, acked]) {
    t.ok(typeof reply !== 'string' && (reply.status === 200 || reply.body.code === 5 || reply.body.code === 14), `answered: ${typeof reply === 'string' ? reply : reply.text}`)
  }
  const left = (await admin.hvals('dispenserd:{bye}:j')).map((record) => record.split('|').slice(5).join('|'))
  const delivered = typeof received !== 'string' && received.status === 200 ? (received.body as unknown as JobReply).message : undefined
  // (A receive answered code 14 was told the outcome is unknown: its job may have been taken.)
  if (typeof received === 'string' || received.body.code !== 14) {
    t.ok(delivered === 'taken' || left.includes('taken'), `the job taken for the receive was delivered or is still queued (delivered: ${delivered}; left: ${left.join(', ')})`)
  }
  if (typeof scheduled !== 'string' && scheduled.status === 200) t.ok(left.includes('late'), 'the job scheduled is queued')
  if (typeof acked !== 'string' && acked.status === 200) t.notOk(left.includes('leased'), 'the job acked is gone')
})

t.test('a batch of 40,000 short jobs (a 1 MiB body allows it) is queued whole, in order', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const a = await frontend(t, ['--redis-url', redis.url])
  // Lane "main", the default: with a lane named in each job the body would pass 1 MiB.
  const jobs = Array.from({ length: 40_000 }, (_, i) => ({ message: `j${i}` }))
  const queued = await call(`${a.url}/schedule`, { jobs })
  t.equal(queued.status, 200, queued.text.slice(0, 300))
  t.equal(queued.body.count, 40_000)
  const got = await call(`${a.url}/receive_noblock`, { count: 1000 })
  t.same((got.body.jobs as JobReply[] | undefined)?.map((j) => j.message), jobs.slice(0, 1000).map((j) => j.message))
})

t.test('max_queued_jobs holds against a burst of schedules on one frontend: its own schedules count at once', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const a = await frontend(t, ['--redis-url', redis.url, '--max-queued-jobs', '10'])
  t.equal((await call(`${a.url}/schedule`, { lane: 'burst', message: 'first' })).status, 200)
  // Read together, these are admitted in one turn, before the script that queues them has run.
  const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => call(`${a.url}/schedule`, { lane: 'burst', message: `m${i}` })))
  t.equal(replies.filter((r) => r.status === 200).length, 9, 'nine more fit')
  t.ok(replies.every((r) => r.status === 200 || r.body.code === 8), 'the others are refused with code 8')
})

t.test('past Redis\'s maxmemory a schedule answers 503 code 8 and consumers can still drain; an evicting policy is refused', async (t) => {
  const redis = await startRedis(undefined, ['--maxmemory', '4mb', '--maxmemory-policy', 'noeviction'])
  t.teardown(() => redis.stop())
  const a = await frontend(t, ['--redis-url', redis.url])
  const big = 'x'.repeat(200_000)
  let refused: Awaited<ReturnType<typeof call>> | undefined
  for (let i = 0; i < 100 && refused === undefined; i++) {
    const reply = await call(`${a.url}/schedule`, { lane: 'full', message: big })
    if (reply.status !== 200) refused = reply
  }
  t.ok(refused, 'a schedule was refused before 20 MB went into a 4 MB Redis')
  t.equal(refused!.status, 503)
  t.equal(refused!.body.code, 8)
  t.match(refused!.body.message, /maxmemory.*nothing was queued/)
  const taken = await call(`${a.url}/receive_noblock`, { lane: 'full', lease: 30 })
  t.equal(taken.body.code, 0, 'takes still work past maxmemory')
  t.equal((await call(`${a.url}/ack`, { hash: taken.body.hash, lease_token: taken.body.lease_token })).status, 200, 'and acks')

  const lru = await startRedis(undefined, ['--maxmemory-policy', 'allkeys-lru'])
  t.teardown(() => lru.stop())
  const d = await startDaemon({ args: ['--store', 'redis', '--redis-url', lru.url] })
  t.teardown(async () => {
    await d.stop('SIGKILL')
    removeDir(d.dataDir)
  })
  await until(async () => String((((await call(`${d.url}/`)).body.payload as { store: { error: string | null } }).store.error)).includes('noeviction'), 'GET / to name the policy')
  t.equal((await call(`${d.url}/schedule`, { message: 'x' })).body.code, 14, 'nothing is served over an evicting Redis')
})

t.test('a frontend starts while Redis is down, says so, answers 503 (nothing changed), and recovers by itself', async (t) => {
  const port = await freePort()
  const d = await startDaemon({ args: ['--store', 'redis', '--redis-url', `redis://127.0.0.1:${port}`] })
  t.teardown(async () => {
    await d.stop('SIGKILL')
    removeDir(d.dataDir)
  })
  t.not(await storeState(d), 'up')
  const refused = await call(`${d.url}/schedule`, { message: 'x' })
  t.equal(refused.status, 503)
  t.equal(refused.body.code, 14)
  t.match(refused.body.message, /nothing was changed|not made/)
  const redis = await startRedis(port)
  t.teardown(() => redis.stop())
  await until(async () => (await call(`${d.url}/schedule`, { message: 'x' })).status === 200, 'the frontend to reconnect', 15_000)
  t.equal((await storeState(d)), 'up')
})

t.test('frontends over a 3-master cluster', async (t) => {
  let cluster: RedisCluster | undefined = await startCluster(3)
  t.teardown(async () => {
    await cluster?.stop()
    cluster = undefined
  })
  const args = ['--redis-cluster', cluster.addresses.join(',')]
  const [a, b] = [await frontend(t, args), await frontend(t, args)]
  const lanes = ['main', 'a', 'b', 'c', 'd', 'e']
  const waiting = call(`${b.url}/receive_block`, { lane: 'parked', timeout: 10 })
  await until(async () => (await parked(b)) === 1, 'the receiver to park on B')
  await call(`${a.url}/schedule`, { lane: 'parked', message: 'woken' })
  t.equal(((await waiting).body as unknown as JobReply).message, 'woken')
  for (const lane of lanes) await call(`${a.url}/schedule`, { jobs: [{ lane, message: `${lane}2`, priority: 2 }, { lane, message: `${lane}1`, priority: 1 }] })
  for (const lane of lanes) {
    t.equal(((await call(`${b.url}/receive_noblock`, { lane })).body as unknown as JobReply).message, `${lane}1`)
    t.equal(((await call(`${b.url}/receive_noblock`, { lane })).body as unknown as JobReply).message, `${lane}2`)
  }
})

t.test('GET / and a 503 code 14 over Redis fit the OpenAPI document', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const a = await frontend(t, ['--redis-url', redis.url])
  const ajv = new Ajv2020({ strict: false, allErrors: true })
  ajv.addSchema((await call(`${a.url}/openapi.json`)).body, 'openapi')
  const check = (route: string, method: string, status: number, body: unknown): void => {
    const validate = ajv.getSchema(`openapi#/paths/${route.replace(/\//g, '~1')}/${method}/responses/${status}/content/application~1json/schema`)!
    t.ok(validate(body), `${route} ${status}: ${ajv.errorsText(validate.errors)}`)
  }
  check('/', 'get', 200, (await call(`${a.url}/`)).body)
  await redis.stop()
  const refused = await call(`${a.url}/schedule`, { message: 'x' })
  t.equal(refused.body.code, 14)
  check('/schedule', 'post', 503, refused.body)
  check('/', 'get', 200, (await call(`${a.url}/`)).body)
})
