import t from 'tap'
import { parseJsonObject, parseSchedule } from '../src/http/requests'
import { type Running, call, rawExchange, removeDir, startDaemon, until } from './helpers/daemon'

/** Malformed traffic must never take the daemon down or lose or invent jobs. */
let d: Running
t.before(async () => {
  d = await startDaemon({ args: ['--max-body-bytes', '65536'] })
})
t.teardown(async () => {
  await d.stop()
  removeDir(d.dataDir)
})

async function healthy(): Promise<boolean> {
  const r = await call(`${d.url}/schedule`, { message: 'probe', lane: 'probe' })
  const got = await call(`${d.url}/receive_noblock`, { lane: 'probe' })
  return r.status === 200 && got.body.message === 'probe'
}

t.test('garbage bytes and broken request lines', async (t) => {
  const payloads: (string | Buffer)[] = [
    Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)),
    'NOT HTTP AT ALL\r\n\r\n',
    'GET\r\n\r\n',
    `POST /schedule HTTP/1.1\r\nContent-Length: -5\r\n\r\n`,
    `POST /schedule HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n`,
    `POST /schedule HTTP/1.1\r\n${'X-Long: ' + 'a'.repeat(10_000)}\r\n\r\n`,
    `POST /schedule HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nbroken\r\n`,
    Buffer.from([0, 0, 0, 0, 0xff, 0xfe, 0x0d, 0x0a, 0x0d, 0x0a]),
  ]
  for (const payload of payloads) await rawExchange(d.port, payload, 300)
  t.ok(await healthy())
})

t.test('truncated bodies and clients vanishing mid-request', async (t) => {
  for (let i = 0; i < 20; i++) {
    // Declares 100 bytes, sends 10, then closes.
    await rawExchange(d.port, `POST /schedule HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"message"`, 20)
    // Parks a receive, then vanishes.
    await rawExchange(d.port, `POST /receive_block HTTP/1.1\r\nHost: x\r\nContent-Length: 15\r\n\r\n{"lane":"ghost"}`, 20)
  }
  const jobs = (await call(`${d.url}/jobs`)).body as Record<string, unknown[]>
  t.same(jobs.main, [], 'no partial job was queued')
  const status = (await call(`${d.url}/`)).body.payload as { idle_workers: Record<string, number> }
  t.equal(status.idle_workers.ghost ?? 0, 0, 'vanished receivers are not parked')
  await call(`${d.url}/schedule`, { message: 'for a live one', lane: 'ghost' })
  t.equal((await call(`${d.url}/receive_noblock`, { lane: 'ghost' })).body.message, 'for a live one', 'no job went to a vanished receiver')
  t.ok(await healthy())
})

t.test('JSON of every shape to every endpoint', async (t) => {
  const shapes: unknown[] = [
    null, true, 0, -1, 1e308, '', 'x', [], [null], {}, { message: [] }, { message: {} }, { message: true },
    { lane: {} }, { lane: null, message: 'ok-null-lane' }, { priority: null, message: 'ok-null-priority' },
    { priority: 1e20, message: 'x' }, { priority: NaN, message: 'x' }, { message: 'x'.repeat(60_000) },
    { message: '\u0000\ud83d\ude00 unicode', lane: 'ünï' }, { __proto__: { message: 'proto' } },
    { constructor: 'x', message: 'constructor-ok' }, JSON.parse('{"__proto__": {"lane": "evil"}, "message": "proto-key"}'),
    { hash: {} }, { hash: [] }, { hash: 'x', delay: -1 }, { hash: 'x', delay: 1e308 }, { hash: 'x', lease: 'soon' },
    { lease: 0 }, { lease: 1e-9 }, { lease: 1e308 }, { lease: [] }, { timeout: -0, lease: 0.001 },
  ]
  const endpoints = ['/', '/jobs', '/schedule', '/receive_noblock', '/ack', '/release', '/touch', '/nope']
  let accepted = 0
  for (const shape of shapes) {
    for (const endpoint of endpoints) {
      const r = await call(`${d.url}${endpoint}`, JSON.stringify(shape) ?? 'undefined')
      t.ok([200, 400, 404].includes(r.status), `${endpoint} ${JSON.stringify(shape)?.slice(0, 40)} -> ${r.status}`)
      if (endpoint === '/schedule' && r.status === 200) accepted++
      if (r.status !== 200) t.equal(r.body.status, 'error')
    }
  }
  // The accepted schedules were taken right back by /receive_noblock in the same round, so the
  // count of jobs received equals the count accepted: nothing lost, nothing invented.
  t.ok(accepted >= 5, `${accepted} well-formed schedules were accepted`)
  t.ok(await healthy())
})

t.test('a deeply nested body holding a lone surrogate is read like any other body', async (t) => {
  // 30,000 levels of arrays in an ignored member, and lone surrogates (read as U+FFFD) beside it:
  // the well-forming of the parsed value must not recurse once a level.
  const depth = 30_000
  const body = `{"message":"a\\ud800b","lane":"deep","extra":${'['.repeat(depth)}"\\udc00"${']'.repeat(depth)}}`
  const r = await call(`${d.url}/schedule`, body)
  t.equal(r.status, 200, JSON.stringify(r.body).slice(0, 200))
  const got = await call(`${d.url}/receive_noblock`, { lane: 'deep' })
  t.equal(got.body.message, 'a\ufffdb')
  t.ok(await healthy())
})

t.test('members whose names become the same once lone surrogates are replaced: the last one wins, in the first one\'s place', (t) => {
  // Read as if the body held U+FFFD where each lone surrogate is, as the original's decoder reads
  // it: "a\ud800" and "a\ufffd" are one name, whose last value wins (JSON's rule) in its first place.
  const body = '{"arguments":{"a\\ud800":1,"a\\ufffd":2,"k\\udc00":3,"z":4,"k\\ufffd":5}}'
  const request = parseSchedule(parseJsonObject(Buffer.from(body)))
  t.equal(request.batch ? undefined : request.job.message, JSON.stringify(JSON.parse(body.replace(/\\ud[89a-f]\w\w/g, '\\ufffd'))))
  t.equal(request.batch ? undefined : request.job.message, '{"arguments":{"a\ufffd":2,"k\ufffd":5,"z":4}}')
  t.end()
})

t.test('arguments nested too deep to be made into a message are refused, not answered 500', async (t) => {
  const depth = 30_000
  const r = await call(`${d.url}/schedule`, `{"lane":"deep-args","arguments":{"a":${'['.repeat(depth)}1${']'.repeat(depth)}}}`)
  t.equal(r.status, 400, JSON.stringify(r.body).slice(0, 200))
  t.match(r.body.message, /"arguments"/)
  t.ok(await healthy())
})

t.test('an ack whose result is nested too deep to be kept is refused, not answered 500, and the job stays leased', async (t) => {
  await call(`${d.url}/schedule`, { message: 'deep result', lane: 'deep-result' })
  const leased = await call(`${d.url}/receive_noblock`, { lane: 'deep-result', lease: 30 })
  const lease = `"hash":${JSON.stringify(leased.body.hash)},"lease_token":${JSON.stringify(leased.body.lease_token)}`
  const depth = 30_000
  const r = await call(`${d.url}/ack`, `{${lease},"result":${'['.repeat(depth)}1${']'.repeat(depth)}}`)
  t.equal(r.status, 400, JSON.stringify(r.body).slice(0, 200))
  t.match(r.body.message, /"result"/)
  const acked = await call(`${d.url}/ack`, `{${lease},"result":[1]}`)
  t.equal(acked.status, 200, 'the lease was left as it was')
})

t.test('a cron entry whose arguments are nested too deep is refused, not answered 500, and not added', async (t) => {
  const depth = 30_000
  const r = await call(`${d.url}/cron/add`, `{"name":"deep","every":3600,"arguments":{"a":${'['.repeat(depth)}1${']'.repeat(depth)}}}`)
  t.equal(r.status, 400, JSON.stringify(r.body).slice(0, 200))
  t.match(r.body.message, /"arguments"/)
  t.same((await call(`${d.url}/cron`)).body.entries, [])
})

t.test('hundreds of connections opened and dropped', async (t) => {
  await Promise.all(Array.from({ length: 300 }, (_, i) => rawExchange(d.port, i % 2 === 0 ? '' : 'POST /sche', 50)))
  t.ok(await healthy())
})

t.test('a slow client (one byte at a time) holds up no one else', async (t) => {
  const { connect } = await import('node:net')
  const socket = connect(d.port, '127.0.0.1')
  await new Promise((r) => socket.once('connect', r))
  const request = 'POST /schedule HTTP/1.1\r\nHost: x\r\nContent-Length: 22\r\n\r\n{"message":"dripped"}\n'
  let i = 0
  const drip = setInterval(() => {
    if (i < request.length) socket.write(request[i++]!)
  }, 20)
  t.teardown(() => {
    clearInterval(drip)
    socket.destroy()
  })
  // While it drips, other clients are answered at once.
  for (let k = 0; k < 20; k++) {
    const started = Date.now()
    t.equal((await call(`${d.url}/`)).status, 200)
    t.ok(Date.now() - started < 500, 'answered promptly')
  }
  let reply = ''
  socket.on('data', (c) => (reply += c.toString()))
  // Polled, not slept: on a busy machine the drip's timer runs late.
  await until(() => i === request.length && reply !== '', 'the dripped request to be answered', 15_000)
  t.match(reply, /^HTTP\/1\.1 200/, 'the slow request is served when it is complete')
  t.equal((await call(`${d.url}/receive_noblock`)).body.message, 'dripped')
})

t.test('after all of it, heap use comes back near where it started', async (t) => {
  const heapUsed = async (): Promise<number> => ((await call(`${d.url}/`)).body.payload as { server: { memory: { heap_used: number } } }).server.memory.heap_used
  const before = await heapUsed()
  // A burst of garbage: oversized bodies, vanished receivers, jobs in and out.
  for (let round = 0; round < 5; round++) {
    await Promise.all(Array.from({ length: 50 }, () => rawExchange(d.port, `POST /schedule HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n${'{'.repeat(30000)}`, 30)))
    await Promise.all(Array.from({ length: 200 }, (_, i) => call(`${d.url}/schedule`, { message: `m${i}`.repeat(50), lane: `burst${i % 10}` })))
    for (let i = 0; i < 10; i++) for (let k = 0; k < 20; k++) await call(`${d.url}/receive_noblock`, { lane: `burst${i}` })
  }
  // Garbage is collected in its own time: wait (bounded) for the heap to settle.
  let after = await heapUsed()
  const deadline = Date.now() + 20_000
  while (after > before + 16 * 1024 * 1024 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250))
    await Promise.all(Array.from({ length: 100 }, () => call(`${d.url}/receive_noblock`, { lane: 'idle' })))
    after = await heapUsed()
  }
  t.ok(after <= before + 16 * 1024 * 1024, `heap ${(before / 2 ** 20).toFixed(1)} MB before, ${(after / 2 ** 20).toFixed(1)} MB after`)
})

t.test('the daemon survived all of it and shuts down cleanly', async (t) => {
  t.equal(d.proc.exitCode, null, 'still running')
  t.ok(await healthy())
  t.equal(await d.stop(), 0)
})
