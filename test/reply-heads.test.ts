import t from 'tap'
import { type Running, call, rawExchange, removeDir, startDaemon } from './helpers/daemon'

/**
 * The bytes of a reply's head, as clients of the original dispenserd see them: the status line,
 * then Content-Type, any header of the reply's own, uWS's Date and uWebSockets, and the framing.
 * Replies are written with as few calls into uWS as can be (exchange.ts), so this pins what those
 * calls must add up to. Requests with and without a body, bodiless ones without Content-Length,
 * and chunked bodies are framed and read the same way whichever path reads them (body.ts).
 */
let d: Running
t.before(async () => {
  d = await startDaemon({ args: ['--max-body-bytes', '1000'] })
})
t.teardown(async () => {
  await d.stop()
  removeDir(d.dataDir)
})

const DATE = /Date: [A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT\r\n/g

/** One request on a fresh connection; the reply with its Date masked. */
async function exchange(request: string, waitMs = 500): Promise<string> {
  return (await rawExchange(d.port, request, waitMs)).replace(DATE, 'Date: <date>\r\n')
}

function post(path: string, body?: string): string {
  return body === undefined ? `POST ${path} HTTP/1.1\r\nHost: x\r\n\r\n` : `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
}

function head(status: string, ...headers: string[]): string {
  return `HTTP/1.1 ${status}\r\n${headers.map((h) => `${h}\r\n`).join('')}`
}

const JSON_HEAD = (status: string, length: number, ...more: string[]): string =>
  head(status, 'Content-Type: application/json', ...more, 'Date: <date>', 'uWebSockets: 20', `Content-Length: ${length}`) + '\r\n'

t.test('JSON replies: status line, Content-Type, Date, uWebSockets, Content-Length, body', async (t) => {
  const scheduled = await exchange(post('/schedule', '{"message":"m","lane":"heads"}'))
  const hash = /"hash":"([0-9a-f]{40})"/.exec(scheduled)?.[1]
  t.ok(hash, scheduled)
  const scheduledBody = `{"status":"ok","code":0,"job_num":1,"hash":"${hash}"}`
  t.equal(scheduled, JSON_HEAD('200 OK', scheduledBody.length) + scheduledBody)

  // Without Content-Length (as receivers mostly send), with Content-Length 0, and chunked.
  const received = await exchange(post('/receive_noblock', '{"lane":"heads"}'))
  const receivedBody = received.slice(received.indexOf('\r\n\r\n') + 4)
  t.match(JSON.parse(receivedBody), { status: 'ok', code: 0, job_num: 1, hash, lane: 'heads', message: 'm' })
  t.equal(received, JSON_HEAD('200 OK', receivedBody.length) + receivedBody)
  const empty = JSON.stringify({ status: 'ok', code: 2, message: 'empty queue' })
  t.equal(await exchange(post('/receive_noblock')), JSON_HEAD('200 OK', empty.length) + empty, 'no Content-Length')
  t.equal(await exchange(`POST /receive_noblock HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`), JSON_HEAD('200 OK', empty.length) + empty, 'Content-Length: 0')
  t.equal(await exchange(post('/receive_noblock', '{"lane":"heads"}')), JSON_HEAD('200 OK', empty.length) + empty, 'a body')

  await call(`${d.url}/schedule`, { message: 'chunked', lane: 'heads' })
  const chunked = await exchange(`POST /receive_noblock HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{"lane":"heads"}\r\n0\r\n\r\n`)
  const job = chunked.slice(chunked.indexOf('\r\n\r\n') + 4)
  t.match(JSON.parse(job), { status: 'ok', code: 0, lane: 'heads', message: 'chunked' }, 'a chunked body is read')
  t.equal(chunked, JSON_HEAD('200 OK', Buffer.byteLength(job)) + job)

  const missing = JSON.stringify({ status: 'error', code: 1, message: 'missing message' })
  t.equal(await exchange(post('/schedule')), JSON_HEAD('400 Bad Request', missing.length) + missing, 'a bodiless schedule')
  t.equal(await exchange(post('/schedule', '{}')), JSON_HEAD('400 Bad Request', missing.length) + missing)
  const notFound = JSON.stringify({ status: 'error', code: 3, message: 'no such endpoint: /nope' })
  t.equal(await exchange('GET /nope HTTP/1.1\r\nHost: x\r\n\r\n'), JSON_HEAD('404 Not Found', notFound.length) + notFound)
})

t.test('a reply that closes the connection says so after Content-Type', async (t) => {
  const tooLarge = JSON.stringify({ status: 'error', code: 4, message: 'request body exceeds max_body_bytes (1000 bytes)' })
  t.equal(await exchange(`POST /schedule HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n`), JSON_HEAD('413 Payload Too Large', tooLarge.length, 'Connection: close') + tooLarge)
})

t.test('replies of another type carry their own Content-Type and headers', async (t) => {
  const page = '<!doctype html><meta http-equiv="refresh" content="0; url=/ui/"><a href="/ui/">dispenserd dashboard</a>'
  t.equal(
    await exchange('GET /ui HTTP/1.1\r\nHost: x\r\n\r\n'),
    head('200 OK', 'Content-Type: text/html; charset=utf-8', 'Refresh: 0; url=/ui/', 'Date: <date>', 'uWebSockets: 20', `Content-Length: ${page.length}`) + '\r\n' + page,
  )
  const metrics = await exchange('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n')
  t.match(metrics, /^HTTP\/1\.1 200 OK\r\nContent-Type: text\/plain; version=0\.0\.4; charset=utf-8\r\nDate: <date>\r\nuWebSockets: 20\r\nContent-Length: \d+\r\n\r\n# HELP /)
})

t.test('a streamed reply: status line, Content-Type, Date, uWebSockets, chunked', async (t) => {
  // A daemon of its own: the listing must be larger than the body limit of the one above lets a batch be.
  const big = await startDaemon()
  t.teardown(async () => {
    await big.stop()
    removeDir(big.dataDir)
  })
  await call(`${big.url}/schedule`, { jobs: Array.from({ length: 3000 }, (_, i) => ({ message: `streamed ${i}`, lane: 'streamed' })) })
  const listing = (await rawExchange(big.port, 'GET /jobs HTTP/1.1\r\nHost: x\r\n\r\n', 1000)).replace(DATE, 'Date: <date>\r\n')
  t.equal(listing.slice(0, listing.indexOf('\r\n\r\n') + 4), head('200 OK', 'Content-Type: application/json', 'Date: <date>', 'uWebSockets: 20', 'Transfer-Encoding: chunked') + '\r\n')
})
