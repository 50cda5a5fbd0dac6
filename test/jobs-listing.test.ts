import { readFileSync } from 'node:fs'
import { type Socket, connect } from 'node:net'
import path from 'node:path'
import t from 'tap'
import { type Running, call, removeDir, startDaemon } from './helpers/daemon'

/**
 * `GET /jobs` is written a piece at a time as the client reads it. Control characters make the
 * worst case: each is escaped to six bytes, so 40 MB of messages make a 240 MB listing. Built as
 * one buffer, that listing stalled the daemon while it was encoded, and each client that did not
 * read pinned a copy of it; past 4 GiB the buffer could not be made at all and the daemon died.
 */
const MESSAGE_CHARS = 400_000
const JOBS = 100
const LISTING_BYTES = JOBS * MESSAGE_CHARS * 6
const MiB = 1024 * 1024

let d: Running
t.before(async () => {
  d = await startDaemon({ args: ['--max-body-bytes', String(16 * MiB), '--persist-interval', '0'] })
  const message = '\u0001'.repeat(MESSAGE_CHARS)
  for (let batch = 0; batch < JOBS / 5; batch++) {
    const jobs = Array.from({ length: 5 }, (_, i) => ({ lane: 'big', message: `${message}${batch * 5 + i}` }))
    const r = await call(`${d.url}/schedule`, { jobs })
    if (r.status !== 200) throw new Error(`could not queue the jobs: ${r.text}`)
  }
  await call(`${d.url}/schedule`, { lane: 'small', message: 'a small one' })
})
t.teardown(async () => {
  await d.stop()
  removeDir(d.dataDir)
})

function rss(): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${d.proc.pid}/status`, 'utf8'))![1]) * 1024
}

/** Sends `GET /jobs` on a connection of its own and resolves once the reply has begun. */
async function startListing(): Promise<Socket> {
  const socket = connect(d.port, '127.0.0.1')
  await new Promise((resolve) => socket.once('connect', resolve))
  socket.write('GET /jobs HTTP/1.1\r\nHost: x\r\n\r\n')
  await new Promise((resolve) => socket.once('data', resolve))
  return socket
}

t.test('a large listing streams whole, byte for byte the snapshot layout, without a copy in memory', async (t) => {
  const before = rss()
  let peak = before
  const sampler = setInterval(() => (peak = Math.max(peak, rss())), 10)
  const r = await fetch(`${d.url}/jobs`)
  t.equal(r.headers.get('transfer-encoding'), 'chunked', 'a listing of many pieces is sent in chunks')
  const body = Buffer.from(await r.arrayBuffer())
  clearInterval(sampler)
  t.ok(body.length > LISTING_BYTES, `${(body.length / MiB).toFixed(0)} MiB listed`)
  const listed = JSON.parse(body.toString()) as Record<string, { message: string }[]>
  t.equal(listed.big!.length, JOBS)
  t.equal(listed.big![JOBS - 1]!.message, `${'\u0001'.repeat(MESSAGE_CHARS)}${JOBS - 1}`)
  t.same(listed.small!.map((j) => j.message), ['a small one'])
  t.ok(peak - before < LISTING_BYTES / 2, `RSS grew ${((peak - before) / MiB).toFixed(0)} MiB while listing ${(LISTING_BYTES / MiB).toFixed(0)} MiB`)

  // The snapshot shares the listing's layout: the same queue gives the same bytes.
  await d.stop()
  t.ok(body.equals(readFileSync(path.join(d.dataDir, 'queue.json'))), 'the listing is byte for byte queue.json')
  d = await startDaemon({ dataDir: d.dataDir, args: ['--max-body-bytes', String(16 * MiB), '--persist-interval', '0'] })
})

t.test('a small listing goes out in one piece with a Content-Length, as before', async (t) => {
  const other = await startDaemon()
  t.teardown(async () => {
    await other.stop()
    removeDir(other.dataDir)
  })
  await call(`${other.url}/schedule`, { message: 'one' })
  const r = await fetch(`${other.url}/jobs`)
  t.ok(Number(r.headers.get('content-length')) > 0)
  t.equal(r.headers.get('transfer-encoding'), null)
  t.match(await r.text(), /^\{\n"main": \[\n\{"job_num":1,.*"message":"one"\}\n\]\n\}\n$/s)
})

t.test('clients that read slowly or not at all do not each pin a copy; the daemon stays responsive', async (t) => {
  const before = rss()
  const absent = await Promise.all(Array.from({ length: 4 }, () => startListing()))
  for (const socket of absent) socket.pause()
  const slow = await startListing()
  let slowBytes = 0
  slow.on('data', (chunk: Buffer) => {
    slowBytes += chunk.length
    slow.pause()
    setTimeout(() => slow.resume(), 50)
  })
  t.teardown(() => [...absent, slow].forEach((socket) => socket.destroy()))
  let peak = before
  for (let i = 0; i < 20; i++) {
    const started = Date.now()
    t.equal((await call(`${d.url}/`)).status, 200)
    t.ok(Date.now() - started < 500, 'GET / is answered promptly while the listings are open')
    peak = Math.max(peak, rss())
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.ok(slowBytes > 0, `the slow reader has read ${(slowBytes / MiB).toFixed(1)} MiB`)
  t.ok(peak - before < LISTING_BYTES / 2, `five listings open: RSS grew ${((peak - before) / MiB).toFixed(0)} MiB (one listing is ${(LISTING_BYTES / MiB).toFixed(0)} MiB)`)
})

t.test('a client that leaves mid-listing frees it, and the listing is of the moment it was asked for', async (t) => {
  const reader = await startListing()
  let received = 0
  await new Promise<void>((resolve) => {
    reader.on('data', (chunk: Buffer) => {
      received += chunk.length
      if (received > 8 * MiB) resolve()
    })
  })
  reader.destroy()
  // Deleting every job while a listing is read does not change that listing: its headers are out,
  // so the daemon has taken its snapshot of the lanes. (One bulk delete, not a hundred receives:
  // those answer 240 MB, and on a loaded machine took past uWS's 10 s send timeout, which then
  // dropped the listing this test leaves unread meanwhile.)
  const listing = await fetch(`${d.url}/jobs`)
  const deleted = await call(`${d.url}/bulk`, { action: 'delete', filter: { lane: 'big' } })
  t.equal((deleted.body as { done?: number }).done, JOBS, 'every job of the lane deleted')
  const listed = (await listing.json()) as Record<string, unknown[]>
  t.equal(listed.big!.length, JOBS, 'every job queued when the listing began is in it')
  t.same((await call(`${d.url}/jobs`)).body.big, [], 'though they have been deleted since')
  // Nothing is left of the listings: memory comes back near where the queue alone keeps it.
  const held = rss()
  t.ok(held < 512 * MiB, `RSS ${(held / MiB).toFixed(0)} MiB after the listings`)
})
