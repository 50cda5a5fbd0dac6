import { connect } from 'node:net'
import pino from 'pino'
import t from 'tap'
import type { TemplatedApp, us_listen_socket, us_socket } from 'uWebSockets.js'
import { readBody } from '../src/http/body'
import { uwsHandler } from '../src/http/route'
import { uWS } from '../src/http/uws'

/**
 * A throw in a handler or in one of uWS's callbacks (onData, onWritable, onAborted) must not
 * reach uWS: from there it ends the process, this test's included. Each route below throws at
 * one of those places, on a real uWS server in this process.
 */
const logged: Record<string, unknown>[] = []
const logger = pino({ level: 'error' }, { write: (line: string) => logged.push(JSON.parse(line) as Record<string, unknown>) })

const PIECE = new Uint8Array(256 * 1024).fill(0x20)
function* failingPieces(failAt: number): Generator<Uint8Array> {
  for (let i = 0; ; i++) {
    if (i === failAt) throw new RangeError(`piece ${i} could not be made`)
    yield PIECE
  }
}

let abortRouteReached: () => void = () => {}
let app: TemplatedApp
let port: number
let token: us_listen_socket
t.before(async () => {
  app = uWS.App()
  app.any('/handler', uwsHandler('/handler', logger, () => {
    throw new RangeError('Invalid array length')
  }))
  app.any('/body', uwsHandler('/body', logger, (ex, res) => readBody(res, ex, 1 << 20, () => {
    throw new TypeError('cannot read the body')
  })))
  app.any('/abort', uwsHandler('/abort', logger, (ex) => {
    ex.onAbort(() => {
      throw new Error('cleanup failed')
    })
    abortRouteReached()
  }))
  app.any('/first-piece', uwsHandler('/first-piece', logger, (ex) => ex.stream(failingPieces(0))))
  app.any('/later-piece', uwsHandler('/later-piece', logger, (ex) => ex.stream(failingPieces(40))))
  app.any('/fine', uwsHandler('/fine', logger, (ex) => ex.send(200, '{"status":"ok"}')))
  await new Promise<void>((resolve) => app.listen('127.0.0.1', 0, (listenToken) => {
    token = listenToken as us_listen_socket
    port = uWS.us_socket_local_port(token as unknown as us_socket)
    resolve()
  }))
})
t.teardown(() => {
  uWS.us_listen_socket_close(token)
  ;(app as unknown as { close(): void }).close()
})

async function stillServing(): Promise<boolean> {
  return (await fetch(`http://127.0.0.1:${port}/fine`)).status === 200
}

function loggedFor(url: string): Record<string, unknown> | undefined {
  return logged.find((line) => line.url === url && line.msg === 'request failed')
}

t.test('a throw in the handler is answered 500 with code 6 and logged with the URL', async (t) => {
  const r = await fetch(`http://127.0.0.1:${port}/handler`)
  t.equal(r.status, 500)
  const body = (await r.json()) as { status: string; code: number; message: string }
  t.match(body, { status: 'error', code: 6, message: /^internal error; it is logged as request [0-9a-z]+-\d+$/ })
  const line = loggedFor('/handler')
  t.match(line, { err: { message: 'Invalid array length' } })
  t.ok(body.message.endsWith(` ${String(line?.request_id)}`), 'the reply and the log line name the same request')
  t.ok(await stillServing())
})

t.test('a throw while reading the body (onData) is answered 500', async (t) => {
  const r = await fetch(`http://127.0.0.1:${port}/body`, { method: 'POST', body: '{"message":"x"}' })
  t.equal(r.status, 500)
  t.equal(((await r.json()) as { code: number }).code, 6)
  t.match(loggedFor('/body'), { err: { message: 'cannot read the body' } })
  t.ok(await stillServing())
})

t.test('a throw in onAborted is logged and goes no further', async (t) => {
  const socket = connect(port, '127.0.0.1')
  await new Promise((resolve) => socket.once('connect', resolve))
  // The handler leaves the request waiting; closing the connection then fires onAborted.
  await new Promise<void>((resolve) => {
    abortRouteReached = resolve
    socket.write('GET /abort HTTP/1.1\r\nHost: x\r\n\r\n')
  })
  socket.destroy()
  const deadline = Date.now() + 5000
  while (loggedFor('/abort') === undefined && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  t.match(loggedFor('/abort'), { err: { message: 'cleanup failed' } })
  t.ok(await stillServing())
})

t.test('a listing whose first piece fails is answered 500', async (t) => {
  const r = await fetch(`http://127.0.0.1:${port}/first-piece`)
  t.equal(r.status, 500)
  t.ok(await stillServing())
})

t.test('a listing that fails after it began is cut off, not ended as if whole', async (t) => {
  const r = await fetch(`http://127.0.0.1:${port}/later-piece`)
  t.equal(r.status, 200, 'the status line went out before the failure')
  await t.rejects(r.arrayBuffer(), 'the body ends in an error, so the client cannot take it for the whole listing')
  t.match(loggedFor('/later-piece'), { err: { message: 'piece 40 could not be made' } })
  t.ok(await stillServing())
})
