import t from 'tap'
import { call, removeDir, startDaemon, until } from './helpers/daemon'

t.test('auth_token: every endpoint but GET / needs the bearer token', async (t) => {
  const d = await startDaemon({ env: { DISPENSERD_AUTH_TOKEN: 's3cret' } })
  t.teardown(async () => {
    await d.stop()
    removeDir(d.dataDir)
  })
  const auth = { headers: { Authorization: 'Bearer s3cret' } }
  t.equal((await call(`${d.url}/`)).status, 200, 'status stays open for health checks')
  for (const [path, body] of [['/jobs', undefined], ['/schedule', { message: 'x' }], ['/receive_noblock', {}], ['/receive_block', {}], ['/elsewhere', undefined]] as const) {
    const refused: Record<string, string>[] = [{}, { Authorization: 'Bearer wrong' }, { Authorization: 's3cret' }, { Authorization: 'Bearer s3cret2' }]
    for (const headers of refused) {
      const r = await call(`${d.url}${path}`, body, { headers, method: body === undefined ? 'GET' : 'POST' })
      t.same([r.status, r.body.status, r.body.code], [401, 'error', 7], `${path} with ${JSON.stringify(headers)}`)
    }
  }
  t.same((await call(`${d.url}/jobs`, undefined, auth)).body, { main: [] }, 'nothing was queued by refused requests')
  t.equal((await call(`${d.url}/schedule`, { message: 'ok' }, { ...auth, method: 'POST' })).status, 200)
  t.equal((await call(`${d.url}/receive_noblock`, {}, { headers: { Authorization: 'bearer s3cret' }, method: 'POST' })).body.message, 'ok', 'the scheme is case-insensitive')
})

t.test('listening beyond loopback without a token logs a warning; with one it does not', async (t) => {
  const open = await startDaemon({ args: ['--address', '0.0.0.0:0'] })
  t.teardown(async () => {
    await open.stop()
    removeDir(open.dataDir)
  })
  t.ok(open.logs.some((l) => l.level === 40 && /without auth_token/.test(String(l.msg))))
  const local = await startDaemon()
  t.teardown(async () => {
    await local.stop()
    removeDir(local.dataDir)
  })
  t.notOk(local.logs.some((l) => /without auth_token/.test(String(l.msg))), 'no warning on loopback')
})

t.test('receive_block with a timeout answers "empty queue" when it expires and loses nothing', async (t) => {
  const d = await startDaemon()
  t.teardown(async () => {
    await d.stop()
    removeDir(d.dataDir)
  })
  const idle = async (): Promise<number> => ((await call(`${d.url}/`)).body.payload as { idle_workers: Record<string, number> }).idle_workers.t ?? 0
  const started = Date.now()
  const expired = await call(`${d.url}/receive_block`, { lane: 't', timeout: 0.3 })
  t.ok(Date.now() - started >= 280, `waited ${Date.now() - started} ms`)
  t.same(expired.body, { status: 'ok', code: 2, message: 'empty queue' })
  t.equal(await idle(), 0, 'no longer parked')
  await call(`${d.url}/schedule`, { lane: 't', message: 'after the timeout' })
  t.same(((await call(`${d.url}/jobs`)).body.t as { message: string }[]).map((j) => j.message), ['after the timeout'], 'the job waits for the next receiver')

  const immediate = await call(`${d.url}/receive_block`, { lane: 't', timeout: 5 })
  t.equal(immediate.body.message, 'after the timeout', 'a ready job is handed over at once')
  t.same((await call(`${d.url}/receive_block`, { lane: 't', timeout: 0 })).body.code, 2, 'timeout 0 on an empty lane answers at once')

  const waiting = call(`${d.url}/receive_block`, { lane: 't', timeout: 10 })
  await until(async () => (await idle()) === 1, 'receiver parked')
  await call(`${d.url}/schedule`, { lane: 't', message: 'in time' })
  t.equal((await waiting).body.message, 'in time', 'a job that arrives before the timeout is delivered')

  for (const timeout of [-1, 'soon', 1e9, true]) {
    const r = await call(`${d.url}/receive_block`, { lane: 't', timeout })
    t.same([r.status, r.body.code], [400, 1])
    t.match(r.body.message, /"timeout" must be a number of seconds/)
  }
})

t.test('limits answer 503 code 8 naming the limit; bad lane names answer 400', async (t) => {
  const d = await startDaemon({ args: ['--max-queued-jobs', '2', '--max-parked-receivers', '1', '--max-lanes', '3', '--max-message-bytes', '10'] })
  t.teardown(async () => {
    await d.stop()
    removeDir(d.dataDir)
  })
  t.equal((await call(`${d.url}/schedule`, { message: 'one' })).status, 200)
  t.equal((await call(`${d.url}/schedule`, { message: 'two' })).status, 200)
  const full = await call(`${d.url}/schedule`, { message: 'three' })
  t.same([full.status, full.body.status, full.body.code], [503, 'error', 8])
  t.match(full.body.message, /max_queued_jobs is 2/)
  t.match((await call(`${d.url}/schedule`, { jobs: [{ message: 'a' }] })).body.message, /max_queued_jobs/, 'batches too')
  t.equal(((await call(`${d.url}/jobs`)).body.main as unknown[]).length, 2, 'nothing more was queued')

  const parked = call(`${d.url}/receive_block`, { lane: 'p' })
  await until(async () => ((await call(`${d.url}/`)).body.payload as { server: { parked_receivers: number } }).server.parked_receivers === 1, 'parked')
  const second = await call(`${d.url}/receive_block`, { lane: 'p' })
  t.same([second.status, second.body.code], [503, 8])
  t.match(second.body.message, /max_parked_receivers is 1/)

  t.equal((await call(`${d.url}/receive_noblock`, { lane: 'q' })).body.code, 2, 'asking other lanes creates none')
  for (let i = 0; i < 2; i++) await call(`${d.url}/receive_noblock`)
  t.equal((await call(`${d.url}/schedule`, { message: 'for p', lane: 'p' })).status, 200, 'a second lane is allowed')
  t.equal((await parked).body.message, 'for p', 'and its first job goes to the receiver waiting for it')
  t.equal((await call(`${d.url}/schedule`, { lane: 'r', message: 'x' })).status, 200, 'a third lane is allowed')
  await call(`${d.url}/receive_noblock`, { lane: 'r' })
  const fourth = await call(`${d.url}/schedule`, { lane: 's', message: 'x' })
  t.same([fourth.status, fourth.body.code], [503, 8])
  t.match(fourth.body.message, /max_lanes is 3/)

  await call(`${d.url}/receive_noblock`)
  const long = await call(`${d.url}/schedule`, { message: '12345678901' })
  t.same([long.status, long.body.code, long.body.message], [400, 1, '"message" is 11 bytes, over max_message_bytes (10)'])
  for (const lane of ['x'.repeat(129), 'tab\there', 'nul\u0000']) {
    const r = await call(`${d.url}/schedule`, { message: 'm', lane })
    t.same([r.status, r.body.code], [400, 1])
    t.match(r.body.message, /"lane" must be at most 128 characters, with no control characters/)
  }
})
