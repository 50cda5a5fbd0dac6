import { readFileSync } from 'node:fs'
import { connect } from 'node:net'
import path from 'node:path'
import t from 'tap'
import { call, daemonForTest, rawExchange, removeDir, startDaemon, tempDir, until } from './helpers/daemon'
import { preloadLibrary } from './helpers/preload'

/**
 * A reply made inside its own request's uWS callbacks (the route handler, onData) is written as it
 * is, since uWS has corked the socket there; every other reply (a timer's, a promise's, one made
 * in another request's callback) must go through res.cork, or uWS writes it uncorked and warns on
 * stderr. Each kind of reply is made here, and the daemon must not have warned once.
 */
const UWS_WARNING = /must be made from within a corked callback/

t.test('replies made outside their own request callbacks are corked, those inside need not be', async (t) => {
  const d = await daemonForTest(t, ['--throttle-schedule', '--max-body-bytes', '4096'])
  // Inside the callbacks: a schedule (onData), an error from the route handler (413 on the
  // declared length), a not-found.
  t.equal((await call(`${d.url}/receive_noblock`, { lane: 'corked' })).body.code, 2)
  const declared = await rawExchange(d.port, 'POST /schedule HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n')
  t.match(declared, /^HTTP\/1\.1 413 /, 'a declared length over max_body_bytes is refused before the body comes')
  t.equal((await call(`${d.url}/no-such-endpoint`)).status, 404)
  // A timer: a blocking receive that times out, and throttled schedules answered in their slots.
  t.equal((await call(`${d.url}/receive_block`, { lane: 'corked', timeout: 0.05 })).body.code, 2)
  const throttled = await Promise.all([1, 2, 3].map((i) => call(`${d.url}/schedule`, { lane: 'corked', message: `m${i}` })))
  t.same(throttled.map((r) => r.status), [200, 200, 200])
  // Another request's callback: a parked receiver handed a job by a schedule on another connection.
  const parked = call(`${d.url}/receive_block`, { lane: 'handed' })
  await until(async () => ((await call(`${d.url}/`)).body.payload as { idle_workers: Record<string, number> }).idle_workers.handed === 1, 'the receiver parked')
  t.equal((await call(`${d.url}/schedule`, { lane: 'handed', message: 'for the parked one' })).status, 200)
  t.equal((await parked).body.message, 'for the parked one')
  t.notMatch(d.stderr(), UWS_WARNING, 'uWS never saw a write outside a corked socket')
})

t.test('requests pipelined in one packet are answered in one send each, past what uWS corks', async (t) => {
  // uWS corks a socket into one 16 KiB buffer while it runs our callbacks; a write that does not
  // fit sends it and leaves the socket uncorked for the rest of the read. Replies written as they
  // are then went out in a send for every piece (status line, each header, the body): 2,330 sends
  // for these 200 replies, and a fifth of the replies a second to pipelining clients.
  const counted = tempDir('dispenserd-sends-')
  t.teardown(() => removeDir(counted))
  const countFile = path.join(counted, 'count')
  const d = await startDaemon({ env: { LD_PRELOAD: preloadLibrary('send-count'), SEND_COUNT_FILE: countFile } })
  t.teardown(() => d.stop())
  const sends = (): number => Number(readFileSync(countFile).readBigInt64LE(0))
  const body = JSON.stringify({ lane: 'pipelined', message: 'one of many' })
  const requests = 200
  const socket = connect(d.port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  await new Promise((resolve) => socket.once('connect', resolve))
  const before = sends()
  const replies = await new Promise<number>((resolve) => {
    let text = ''
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1')
      const count = text.match(/HTTP\/1\.1 200 OK\r\n/g)?.length ?? 0
      if (count === requests) resolve(count)
    })
    socket.write(`POST /schedule HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`.repeat(requests))
  })
  t.equal(replies, requests)
  const used = sends() - before
  t.ok(used >= 1 && used <= requests, `at most one send a reply (${used} for ${requests})`)
})
