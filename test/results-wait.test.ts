import { writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import t from 'tap'
import { type Running, call, daemonForTest, removeDir, startDaemon, tempDir, until } from './helpers/daemon'

/**
 * Results and waited schedules against the real daemon: /ack's "result" and a runner's result are
 * shown by GET /job while the job is kept (and survive a SIGKILL with the journal); /schedule with
 * "wait" answers when the job finishes, or with its state when the wait runs out.
 */

async function lease(d: Running, lane = 'main'): Promise<{ hash: string; lease_token: string }> {
  const got = await call(`${d.url}/receive_noblock`, { lane, lease: 30 })
  return { hash: String(got.body.hash), lease_token: String(got.body.lease_token) }
}

t.test('an ack with a result keeps the job as succeeded, with it; across a SIGKILL too (journal)', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const args = ['--persistence', 'journal']
  const d = await startDaemon({ dataDir: dir, args })
  await call(`${d.url}/schedule`, { message: 'resize a.png' })
  await call(`${d.url}/schedule`, { message: 'no result' })
  const first = await lease(d)
  const acked = await call(`${d.url}/ack`, { ...first, result: { width: 320, path: '/out/a.png' } })
  t.equal(acked.body.code, 0)
  const job = await call(`${d.url}/job?hash=${first.hash}`)
  t.match(job.body, { state: 'succeeded', message: 'resize a.png', result: { width: 320, path: '/out/a.png' } })
  const second = await lease(d)
  await call(`${d.url}/ack`, second)
  t.equal((await call(`${d.url}/job?hash=${second.hash}`)).status, 404, 'acked without a result: gone, as before')
  t.equal(await d.stop('SIGKILL'), null)
  const again = await startDaemon({ dataDir: dir, args })
  t.teardown(() => again.stop())
  t.match((await call(`${again.url}/job?hash=${first.hash}`)).body, { state: 'succeeded', result: { width: 320 } }, 'kept across the kill')
  t.equal(await again.stop('SIGTERM'), 0)
  const third = await startDaemon({ dataDir: dir, args })
  t.teardown(() => third.stop())
  t.match((await call(`${third.url}/job?hash=${first.hash}`)).body, { state: 'succeeded', result: { width: 320 } }, 'and across a snapshot (dead.json)')
})

t.test('results are size-limited and must be JSON', async (t) => {
  const d = await daemonForTest(t, ['--max-result-bytes', '100'])
  await call(`${d.url}/schedule`, { message: 'a' })
  const held = await lease(d)
  const big = await call(`${d.url}/ack`, { ...held, result: 'x'.repeat(200) })
  t.equal(big.status, 400)
  t.equal(big.body.message, '"result" is 202 bytes of JSON, over max_result_bytes (100)')
  t.equal((await call(`${d.url}/ack`, { ...held, result: [1, 2] })).body.code, 0, 'the lease is still in force after the refusal')
})

t.test('a waited schedule answers when its job is acked, with the result', async (t) => {
  const d = await daemonForTest(t)
  const waited = call(`${d.url}/schedule`, { message: 'render', wait: 30 })
  let held: { hash: string; lease_token: string } | undefined
  await until(async () => {
    const got = await call(`${d.url}/receive_noblock`, { lease: 30 })
    if (got.body.code === 0) held = { hash: String(got.body.hash), lease_token: String(got.body.lease_token) }
    return held !== undefined
  }, 'the job to be queued')
  await call(`${d.url}/ack`, { ...held!, result: { pages: 3 } })
  const reply = await waited
  t.match(reply.body, { status: 'ok', code: 0, state: 'succeeded', hash: held!.hash, message: 'render', result: { pages: 3 } })
})

t.test('a waited schedule handed at once to a parked receiver answers "taken"', async (t) => {
  const d = await daemonForTest(t)
  const parked = call(`${d.url}/receive_block`, {})
  await until(async () => ((await call(`${d.url}/`)).body.payload as { server: { parked_receivers: number } }).server.parked_receivers === 1, 'the receiver to park')
  const reply = await call(`${d.url}/schedule`, { message: 'quick', wait: 30 })
  t.match(reply.body, { code: 0, state: 'taken' })
  t.equal((await parked).body.hash, reply.body.hash)
})

t.test('a wait that runs out answers with the job and its state; the job stays', async (t) => {
  const d = await daemonForTest(t)
  const started = Date.now()
  const reply = await call(`${d.url}/schedule`, { message: 'slow', wait: 0.3 })
  t.ok(Date.now() - started >= 290, 'waited')
  t.same(Object.keys(reply.body).sort(), ['code', 'hash', 'job_num', 'state', 'status'])
  t.equal(reply.body.state, 'queued')
  t.equal((await call(`${d.url}/receive_noblock`, {})).body.hash, reply.body.hash)
  const delayed = await call(`${d.url}/schedule`, { message: 'later', delay: 60, wait: 0.1 })
  t.equal(delayed.body.state, 'delayed')
  t.equal((await call(`${d.url}/schedule`, { jobs: [{ message: 'a' }], wait: 1 })).body.message, '"wait" is for one job, not a batch')
  t.equal((await call(`${d.url}/schedule`, { message: 'a', wait: 0 })).body.message, '"wait" must be a number of seconds above 0 up to 2147483')
})

t.test('a waited schedule whose key is held waits for the holder', async (t) => {
  const d = await daemonForTest(t)
  const first = await call(`${d.url}/schedule`, { message: 'once', unique_key: 'k', unique_for: 60 })
  const waited = call(`${d.url}/schedule`, { message: 'once', unique_key: 'k', wait: 30 })
  await until(async () => ((await call(`${d.url}/`)).body.payload as { server: { waited_jobs: number } }).server.waited_jobs === 1, 'the schedule to wait')
  const held = await lease(d)
  t.equal(held.hash, first.body.hash)
  await call(`${d.url}/ack`, { ...held, result: 'done' })
  t.match((await waited).body, { state: 'succeeded', hash: first.body.hash, result: 'done' })
  const after = await call(`${d.url}/schedule`, { message: 'once', unique_key: 'k', wait: 30 })
  t.equal(after.body.code, 16, 'held by a finished job: answered at once')
})

t.test('a runner lane: the http runner\'s JSON answer is the result; waits see success and death', async (t) => {
  const target = createServer((req, res) => {
    let body = ''
    req.on('data', (chunk: Buffer) => (body += chunk.toString()))
    req.on('end', () => {
      const args = (JSON.parse(body) as { taskArgs: { N: number } }).taskArgs
      if (args.N < 0) {
        res.writeHead(400).end('negative')
        return
      }
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ square: args.N * args.N }))
    })
  })
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve))
  t.teardown(() => target.close())
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const config = path.join(dir, 'config.json')
  writeFileSync(config, JSON.stringify({ lanes: { math: { runner: 'http', target: `http://127.0.0.1:${(target.address() as AddressInfo).port}/` } } }))
  const d = await startDaemon({ dataDir: dir, args: ['--config', config] })
  t.teardown(() => d.stop())
  const ok = await call(`${d.url}/schedule`, { lane: 'math', message: JSON.stringify({ arguments: { N: 7 } }), wait: 30 })
  t.match(ok.body, { state: 'succeeded', result: { square: 49 }, last_run: { state: 'succeeded', http_status: 200 } })
  t.match((await call(`${d.url}/job?hash=${String(ok.body.hash)}`)).body, { state: 'succeeded', result: { square: 49 } })
  const dead = await call(`${d.url}/schedule`, { lane: 'math', message: JSON.stringify({ arguments: { N: -1 } }), wait: 30 })
  t.match(dead.body, { state: 'dead', last_run: { state: 'dead', reason: 'HTTP 400', http_status: 400 } })
  t.notOk('result' in dead.body)
})

t.test('a batch of acks carries a result per lease', async (t) => {
  const d = await daemonForTest(t)
  await call(`${d.url}/schedule`, { jobs: [{ message: 'a' }, { message: 'b' }] })
  const a = await lease(d)
  const b = await lease(d)
  const acked = await call(`${d.url}/ack`, { leases: [{ ...a, result: 1 }, b] })
  t.equal(acked.body.code, 0)
  t.match((await call(`${d.url}/job?hash=${a.hash}`)).body, { state: 'succeeded', result: 1 })
  t.equal((await call(`${d.url}/job?hash=${b.hash}`)).status, 404)
})
