import { connect } from 'node:net'
import t from 'tap'
import { type Running, call, rawExchange, removeDir, startDaemon } from './helpers/daemon'

/** What reaches the daemon through uWebSockets.js's HTTP parser, and what does not (README, "HTTP"). */
let d: Running
t.before(async () => {
  d = await startDaemon()
})
t.teardown(async () => {
  await d.stop()
  removeDir(d.dataDir)
})

const BODY = '{"message":"framed","lane":"parser"}'
const SMUGGLED = '{"message":"smuggled","lane":"parser"}'

async function queued(url = d.url, init: RequestInit = {}): Promise<string[]> {
  return (((await call(`${url}/jobs`, undefined, init)).body.parser ?? []) as { message: string }[]).map((job) => job.message)
}

interface Outcome {
  reply: string
  closed: boolean
  ms: number
}

/** Writes `payload` on a fresh connection; resolves when the server closes it, or after `waitMs`. */
function exchange(payload: string, waitMs: number, port = d.port): Promise<Outcome> {
  return new Promise((resolve) => {
    const started = Date.now()
    const socket = connect(port, '127.0.0.1')
    let reply = ''
    const finish = (closed: boolean): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve({ reply, closed, ms: Date.now() - started })
    }
    const timer = setTimeout(() => finish(false), waitMs)
    socket.on('data', (chunk) => (reply += chunk.toString()))
    socket.on('close', () => finish(true))
    socket.on('error', () => finish(true))
    socket.write(payload)
  })
}

t.test('two different Content-Length headers are refused before the body is used', async (t) => {
  for (const [first, second] of [[String(BODY.length), '2'], ['2', String(BODY.length)], ['', String(BODY.length)]]) {
    const r = await exchange(`POST /schedule HTTP/1.1\r\nHost: x\r\nContent-Length: ${first}\r\nContent-Length: ${second}\r\n\r\n${BODY}`, 2000)
    t.match(r.reply, /^HTTP\/1\.1 400 Bad Request\r\n/, `Content-Length ${JSON.stringify(first)} then ${second}`)
    t.match(r.reply, /\r\nConnection: close\r\n/)
    t.match(r.reply, /"code":1,"message":"Content-Length headers differ \(.*\): the body cannot be delimited"/)
    t.ok(r.closed, 'and the connection is closed: what follows cannot be framed')
  }
  // Three headers, the last differing: every value is named, in order, the equal repeat included.
  const three = await exchange(`POST /schedule HTTP/1.1\r\nHost: x\r\nContent-Length: ${BODY.length}\r\nContent-Length: ${BODY.length}\r\nContent-Length: 2\r\n\r\n${BODY}`, 2000)
  t.match(three.reply, `"message":"Content-Length headers differ (\\"${BODY.length}\\", \\"${BODY.length}\\", \\"2\\"): the body cannot be delimited"`)
  t.ok(three.closed)
  t.same(await queued(), [], 'nothing was queued')
  const same = await rawExchange(d.port, `POST /schedule HTTP/1.1\r\nHost: x\r\nContent-Length: ${BODY.length}\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`, 500)
  t.match(same, /^HTTP\/1\.1 200 OK\r\n/, 'a repeated equal Content-Length is accepted')
  t.same(await queued(), ['framed'])
  await call(`${d.url}/receive_noblock`, { lane: 'parser' })
})

t.test('a reply that closes the connection runs nothing pipelined behind it in the same packet', async (t) => {
  // Inside uWS's callback a reply only marks its connection to be closed once the read is parsed,
  // and a request behind it in the same read cleared the mark and was run: after a reply that said
  // "Connection: close" (a client retries what was not answered before it), and, behind differing
  // Content-Length headers, framed by the first where a proxy in front may have framed it as the body.
  const token = 'parser-token'
  const small = await startDaemon({ args: ['--max-body-bytes', '100', '--auth-token', token] })
  t.teardown(async () => {
    await small.stop()
    removeDir(small.dataDir)
  })
  const behind = (auth: string): string => `POST /schedule HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`
  const authorized = `Authorization: Bearer ${token}\r\n`
  const hidden = behind('')
  const outcomes = {
    'differing Content-Length headers': await exchange(`POST /schedule HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: ${hidden.length}\r\n\r\n${hidden}`, 2000),
    'a declared length over max_body_bytes': await exchange(`POST /schedule HTTP/1.1\r\nHost: x\r\n${authorized}Content-Length: 150\r\n\r\n${'x'.repeat(150)}${behind(authorized)}`, 2000, small.port),
    'a wrong token': await exchange(`POST /schedule HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nContent-Length: 2\r\n\r\n{}${behind(authorized)}`, 2000, small.port),
  }
  for (const [what, r] of Object.entries(outcomes)) {
    t.notMatch(r.reply, /HTTP\/1\.1 200 OK/, `${what}: the request behind it got no reply`)
    t.ok(r.closed, `${what}: the connection is closed`)
  }
  t.same(await queued(), [], 'nothing was queued')
  t.same(await queued(small.url, { headers: { authorization: `Bearer ${token}` } }), [], 'nothing was queued behind the 413 or the 401')
})

t.test('requests the parser cannot take get no reply, run nothing, and are closed', async (t) => {
  const post = (requestLine: string, headers: string): string => `${requestLine}\r\n${headers}Content-Length: ${BODY.length}\r\n\r\n${BODY}`
  const waitsForMore = {
    'an HTTP/1.0 request': post('POST /schedule HTTP/1.0', 'Host: x\r\n'),
    'an absolute-form URL': post('POST http://x/schedule HTTP/1.1', 'Host: x\r\n'),
    'a malformed request line': post('POST  /schedule HTTP/1.1', 'Host: x\r\n'),
    'a header line without a colon': post('POST /schedule HTTP/1.1', 'Host: x\r\nNoColon\r\n'),
    'HTTP/1.1 with no header at all': 'GET /jobs HTTP/1.1\r\n\r\n',
  }
  const closedAtOnce = {
    'HTTP/1.1 without Host': post('POST /schedule HTTP/1.1', ''),
    'both Content-Length and Transfer-Encoding': post('POST /schedule HTTP/1.1', 'Host: x\r\nTransfer-Encoding: chunked\r\n'),
    'more than 4 KiB that does not parse': post('POST /schedule HTTP/1.0', `Host: x\r\nX-Padding: ${'p'.repeat(5000)}\r\n`),
  }
  const [slow, fast] = await Promise.all([
    Promise.all(Object.entries(waitsForMore).map(async ([what, payload]) => [what, await exchange(payload, 15_000)] as const)),
    Promise.all(Object.entries(closedAtOnce).map(async ([what, payload]) => [what, await exchange(payload, 15_000)] as const)),
  ])
  for (const [what, r] of slow) {
    t.equal(r.reply, '', `${what}: no reply`)
    t.ok(r.closed && r.ms >= 5000, `${what}: the server waits for the rest, then closes the connection (after ${r.ms} ms)`)
  }
  for (const [what, r] of fast) {
    t.equal(r.reply, '', `${what}: no reply`)
    t.ok(r.closed && r.ms < 2000, `${what}: closed at once (after ${r.ms} ms)`)
  }
  t.same(await queued(), [], 'none of them queued anything')
})
