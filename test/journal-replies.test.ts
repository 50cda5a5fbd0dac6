import { mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { type Socket, connect } from 'node:net'
import path from 'node:path'
import t, { type Test } from 'tap'
import { FsyncGate } from './helpers/fsync-gate'
import { type Reply, type Running, call, removeDir, startDaemon, until } from './helpers/daemon'

/**
 * The journal's reply path under attack, with the real daemon, real sockets and real files: since
 * replies to changes wait on a Durable whose listeners run inside the journal's write and
 * fdatasync callbacks, each reply must go out once, only after its own records are on disk
 * (synced, in always mode), never to a client that left (uWS aborts the process on a write to an
 * aborted response), and never as 200 for a change a failed write or fdatasync left out of the
 * journal. The daemon's fdatasyncs are held at a gate (helpers/fsync-gate.c) so that a reply that
 * must not have come yet is checked while its fsync is surely still running.
 */

const ALWAYS = ['--persistence', 'journal', '--journal-fsync', 'always', '--persist-interval', '0']

interface Gated {
  gate: FsyncGate
  d: Running
}

async function gatedDaemon(t: Test, args: string[] = ALWAYS): Promise<Gated> {
  const gate = new FsyncGate()
  const d = await startDaemon({ args, env: gate.env })
  t.teardown(async () => {
    gate.open()
    await d.stop('SIGKILL')
    removeDir(d.dataDir)
    removeDir(gate.dir)
  })
  return { gate, d }
}

/** The same data directory, without the gate (after a kill). */
async function restarted(t: Test, dataDir: string): Promise<Running> {
  const d = await startDaemon({ dataDir, args: ALWAYS })
  t.teardown(() => d.stop('SIGKILL'))
  return d
}

/** The daemon met no fault of its own: nothing fatal logged, still running and answering. */
async function stillHealthy(t: Test, d: Running): Promise<void> {
  t.equal((await call(`${d.url}/healthz`)).status, 200, 'the daemon still answers')
  const faults = d.logs.filter((l) => (l.level ?? 0) >= 60 || /uncaught|unhandled/.test(String(l.msg)))
  t.same(faults, [], 'no fault was logged')
  t.equal(d.proc.exitCode, null, 'the daemon is still running')
}

/** Each journal file's lines, with the offset each ends at. */
function journalLines(dir: string): { file: string; line: string; end: number }[] {
  const out: { file: string; line: string; end: number }[] = []
  for (const file of readdirSync(dir).filter((f) => /^journal\.\d+\.log$/.test(f)).sort()) {
    const bytes = readFileSync(path.join(dir, file))
    let start = 0
    for (let nl = bytes.indexOf(10); nl !== -1; start = nl + 1, nl = bytes.indexOf(10, start)) out.push({ file, line: bytes.toString('utf8', start, nl), end: nl + 1 })
  }
  return out
}

/**
 * Checked the moment a reply came: every record matching one of `needles` is in a part of its
 * file that a finished fdatasync covered (the gate notes a sync done before the daemon hears of it).
 */
function assertSynced(t: Test, gate: FsyncGate, dir: string, needles: RegExp[], what: string): void {
  const synced = new Map<string, number>()
  for (const { file, size } of gate.synced()) synced.set(path.basename(file), Math.max(size, synced.get(path.basename(file)) ?? 0))
  const lines = journalLines(dir)
  const missing: string[] = []
  for (const needle of needles) {
    const found = lines.filter((l) => needle.test(l.line))
    if (found.length === 0) missing.push(`${needle} (no record)`)
    for (const l of found) if ((synced.get(l.file) ?? 0) < l.end) missing.push(`${needle} in ${l.file} ends at ${l.end}, synced to ${synced.get(l.file) ?? 0}`)
  }
  t.same(missing, [], `${what}: its records were synced before the reply`)
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Sends `request` while the gate holds every new fdatasync: it must not be answered while the
 * fsync it waits for is held; once let through, it is answered, with `needles`' records synced.
 */
async function heldThenAnswered(t: Test, { gate, d }: Gated, what: string, request: () => Promise<Reply>, needles: () => RegExp[]): Promise<Reply> {
  gate.close()
  const before = gate.started().length
  let answered: Reply | undefined
  const reply = request().then((r) => {
    answered = r
    assertSynced(t, gate, d.dataDir, needles(), what)
    return r
  })
  await gate.waitStarted(before + 1, `the fdatasync of ${what}`)
  await sleep(100)
  t.equal(answered, undefined, `${what}: no reply while its fdatasync is held`)
  gate.open()
  const r = await reply
  t.equal(r.status, 200, `${what}: answered 200 once synced (${r.text.slice(0, 120)})`)
  return r
}

/** A raw HTTP/1.1 exchange on its own connection: what came back, and the socket to cut. */
function rawPost(port: number, url: string, body: unknown): { socket: Socket; received: () => string; closed: Promise<void> } {
  const socket = connect(port, '127.0.0.1')
  let received = ''
  socket.on('data', (chunk: Buffer) => (received += chunk.toString()))
  socket.on('error', () => undefined)
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  const text = JSON.stringify(body)
  socket.write(`POST ${url} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`)
  return { socket, received: () => received, closed }
}

function responses(text: string): number {
  return (text.match(/HTTP\/1\.1 \d{3}/g) ?? []).length
}

function leases(r: Reply): { hash: string; lease_token: string; job_num: number }[] {
  return (r.body.jobs as { hash: string; lease_token: string; job_num: number }[]) ?? [r.body as unknown as { hash: string; lease_token: string; job_num: number }]
}

async function schedule(d: Running, messages: string[], lane = 'main'): Promise<void> {
  for (let i = 0; i < messages.length; i += 5000) {
    const r = await call(`${d.url}/schedule`, { jobs: messages.slice(i, i + 5000).map((message) => ({ message, lane })) })
    if (r.status !== 200) throw new Error(`schedule answered ${r.status}: ${r.text}`)
  }
}

async function laneCount(d: Running, lane = 'main'): Promise<number> {
  const r = await call(`${d.url}/jobs?lane=${lane}&state=ready&limit=1`)
  return Number(r.body.total)
}

/**
 * A bulk delete of lane "main" whose fdatasyncs failed is either refused (503 code 10) or, answered
 * 200, kept: after a kill, a power loss and a start with the repair snapshot's state gone, no job
 * it was answered as deleting is back.
 */
async function refusedOrKept(t: Test, { gate, d }: Gated, reply: Reply): Promise<void> {
  if (reply.status !== 200) {
    t.same([reply.status, reply.body.code], [503, 10], 'the bulk is answered 503 code 10')
    return
  }
  await d.stop('SIGKILL')
  gate.powerLoss(d.dataDir)
  rmSync(path.join(d.dataDir, 'state.json'), { recursive: true, force: true })
  const again = await restarted(t, d.dataDir)
  t.equal(await laneCount(again), 0, 'after a power loss no job the bulk was answered as deleting is back')
}

t.test('always mode: a bulk whose first changes\' fdatasync failed is not answered 200 on a later file\'s fsync', async (t) => {
  // A bulk changes a thousand jobs a turn, each turn's records in their own write and fdatasync;
  // its reply waited only on the journal's state after the last turn. An fdatasync failing on an
  // early turn's records breaks the journal, which then writes the later turns to a fresh file:
  // synced there, the last turn answered the bulk 200, and the early turns' changes were in no
  // synced file. (The failure lands within the bulk's first turns: the bulk runs 20 of them.)
  const { gate, d } = await gatedDaemon(t)
  const messages = Array.from({ length: 20_000 }, (_, i) => `m${i}`)
  await schedule(d, messages)
  // The repair snapshot the failure sets off cannot be written (state.json is a directory with a
  // file in it): the journal is all that keeps the bulk's changes.
  mkdirSync(path.join(d.dataDir, 'state.json', 'x'), { recursive: true })
  const before = gate.started().length
  gate.failAt(before + 1) // the first fdatasync after the bulk starts fails with EIO
  const reply = await call(`${d.url}/bulk`, { action: 'delete', filter: { lane: 'main' } })
  const generations = readdirSync(d.dataDir).filter((f) => /^journal\.\d+\.log$/.test(f))
  t.comment(`bulk answered ${reply.status} ${reply.text.slice(0, 300)}; journal files ${generations.join(' ')}`)
  if (reply.status === 200) t.equal(reply.body.done, messages.length, 'answered 200: every job deleted')
  await refusedOrKept(t, { gate, d }, reply)
})


t.test('always mode: every kind of change is answered only once its own records are synced', async (t) => {
  const g = await gatedDaemon(t)
  const { d } = g
  const url = d.url
  await schedule(d, ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'])
  const num = (r: Reply): number => Number(r.body.job_num)
  const rec = (op: string, jobNum: number): RegExp => new RegExp(`"op":"${op}","job_num":${jobNum}[,}]`)

  const s = await heldThenAnswered(t, g, 'a schedule', () => call(`${url}/schedule`, { message: 's', lane: 'other' }), () => [])
  t.ok(num(s) > 0)
  // (the schedule's record: its job_num is known only from the reply)
  assertSynced(t, g.gate, d.dataDir, [rec('schedule', num(s))], 'a schedule')
  const one = await heldThenAnswered(t, g, 'a leased receive', () => call(`${url}/receive_noblock`, { lease: 60 }), () => [])
  assertSynced(t, g.gate, d.dataDir, [rec('lease', num(one))], 'a leased receive')
  const batch = await heldThenAnswered(t, g, 'a leased batch receive', () => call(`${url}/receive_noblock`, { lease: 60, count: 4 }), () => [])
  const taken = leases(batch)
  t.equal(taken.length, 4, 'four jobs in the batch')
  assertSynced(t, g.gate, d.dataDir, taken.map((j) => rec('lease', j.job_num)), 'a leased batch receive')
  const plain = await heldThenAnswered(t, g, 'a plain receive', () => call(`${url}/receive_noblock`, {}), () => [])
  assertSynced(t, g.gate, d.dataDir, [rec('take', num(plain))], 'a plain receive')

  await heldThenAnswered(t, g, 'an ack', () => call(`${url}/ack`, { hash: one.body.hash, lease_token: one.body.lease_token }), () => [rec('ack', num(one))])
  const [x, y, z, w] = taken as [(typeof taken)[0], (typeof taken)[0], (typeof taken)[0], (typeof taken)[0]]
  await heldThenAnswered(t, g, 'a release', () => call(`${url}/release`, { hash: x.hash, lease_token: x.lease_token }), () => [rec('return', x.job_num)])
  const acks = await heldThenAnswered(
    t,
    g,
    'a batch ack (one stale)',
    () => call(`${url}/ack`, { leases: [{ hash: y.hash, lease_token: y.lease_token }, { hash: x.hash, lease_token: x.lease_token }, { hash: z.hash, lease_token: z.lease_token }] }),
    () => [rec('ack', y.job_num), rec('ack', z.job_num)],
  )
  t.same((acks.body.results as { code: number }[]).map((r) => r.code), [0, 9, 0], 'the batch ack answers each lease')
  // Touches are not journaled: one or a batch of them is answered at once, even while the gate
  // holds every fdatasync (a batch waited for the journal, and was refused while it was broken).
  g.gate.close()
  const touched = await call(`${url}/touch`, { hash: w.hash, lease_token: w.lease_token })
  t.equal(touched.status, 200, 'a touch is answered while an fdatasync would be held')
  const touchedMany = await call(`${url}/touch`, { leases: [{ hash: w.hash, lease_token: w.lease_token }] })
  t.same([touchedMany.status, (touchedMany.body.results as { code: number }[]).map((r) => r.code)], [200, [0]], 'so is a batch touch')
  g.gate.open()
  await heldThenAnswered(t, g, 'a batch release', () => call(`${url}/release`, { leases: [{ hash: w.hash, lease_token: w.lease_token }] }), () => [rec('return', w.job_num)])
  const ready = (await call(`${url}/jobs?lane=main&state=ready&limit=10`)).body.jobs as { hash: string; job_num: number }[]
  const [p, q, r2] = ready as [(typeof ready)[0], (typeof ready)[0], (typeof ready)[0]]
  await heldThenAnswered(t, g, 'a delete', () => call(`${url}/delete`, { hash: p.hash }), () => [rec('delete', p.job_num)])
  await heldThenAnswered(t, g, 'a move', () => call(`${url}/move`, { hash: q.hash, lane: 'moved', priority: 3 }), () => [rec('return', q.job_num)])
  await heldThenAnswered(t, g, 'a pause', () => call(`${url}/pause`, { lane: 'main' }), () => [/"op":"pause","lane":"main"/])
  await heldThenAnswered(t, g, 'a resume', () => call(`${url}/resume`, { lane: 'main' }), () => [/"op":"resume","lane":"main"/])
  const rest = ((await call(`${url}/jobs?lane=main&state=ready&limit=10`)).body.jobs as { hash: string; job_num: number }[]).filter((j) => j.hash !== r2.hash)
  await heldThenAnswered(t, g, 'a bulk delete', () => call(`${url}/bulk`, { action: 'delete', hashes: rest.map((j) => j.hash) }), () => rest.map((j) => rec('delete', j.job_num)))
  await stillHealthy(t, d)
})

t.test('always mode: clients that leave while their replies wait for the fdatasync: no crash, changes kept, takes put back, all of it synced', async (t) => {
  const { gate, d } = await gatedDaemon(t)
  const url = d.url
  await schedule(d, ['a', 'b', 'c', 'd', 'e', 'f'])
  const leased = (await call(`${url}/receive_noblock`, { lease: 60 })).body as { hash: string; lease_token: string; job_num: number }
  // The last job in serving order: the receives below take the four before it.
  const doomed = ((await call(`${url}/jobs?lane=main&state=ready&limit=10`)).body.jobs as { hash: string; message: string }[]).find((j) => j.message === 'f')!.hash
  gate.close()
  const parked = rawPost(d.port, '/receive_block', { lane: 'blk', lease: 60 })
  const parkedBatch = rawPost(d.port, '/receive_block', { lane: 'blk2', count: 5, min: 2 })
  await until(async () => Number(((await call(`${url}/`)).body.payload as { server: { parked_receivers: number } }).server.parked_receivers) === 2, 'both receivers parked')
  const leaving = [
    rawPost(d.port, '/schedule', { message: 'left', lane: 's' }),
    rawPost(d.port, '/ack', { hash: leased.hash, lease_token: leased.lease_token }),
    rawPost(d.port, '/receive_noblock', { lease: 60, count: 3 }),
    rawPost(d.port, '/receive_noblock', {}),
    rawPost(d.port, '/bulk', { action: 'delete', hashes: [doomed] }),
    parked,
    parkedBatch,
  ]
  // The hand-overs to the parked receivers: their schedules' replies wait too (and are not cut).
  const feeding = [call(`${url}/schedule`, { message: 'to-blk', lane: 'blk' }), call(`${url}/schedule`, { jobs: [{ message: 'to-blk2-1', lane: 'blk2' }, { message: 'to-blk2-2', lane: 'blk2' }] })]
  const needles = [/"op":"schedule".*"message":"left"/, new RegExp(`"op":"ack","job_num":${leased.job_num}[,}]`), /"op":"delete"/, /"op":"take"/]
  await until(() => {
    const lines = journalLines(d.dataDir).map((l) => l.line)
    const count = (op: string): number => lines.filter((l) => l.includes(`"op":"${op}"`)).length
    return needles.every((n) => lines.some((l) => n.test(l))) && count('lease') >= 1 + 3 + 1 && count('take') >= 1 + 2
  }, 'every change written, its fdatasync held').catch((err: unknown) => {
    t.comment(journalLines(d.dataDir).map((l) => l.line.slice(9, 90)).join('\n'))
    throw err
  })
  t.ok(gate.started().length > gate.synced().length, 'an fdatasync is held')
  leaving.forEach(({ socket }, i) => (i % 2 === 0 ? socket.destroy() : socket.resetAndDestroy()))
  await Promise.all(leaving.map((l) => l.closed))
  t.equal((await call(`${url}/healthz`)).status, 200, 'a request after the clients left is served (their aborts are seen)')
  gate.open()
  t.same((await Promise.all(feeding)).map((r) => r.status), [200, 200], 'the schedules that fed the parked receivers are answered')
  await until(() => d.logs.filter((l) => l.msg === 'job put back' && l.reason === 'receiver disconnected').length >= 3 + 1 + 1 + 2, 'the undelivered takes put back')
  await stillHealthy(t, d)
  const lanes = async (dd: Running): Promise<Record<string, string[]>> => {
    const all = (await call(`${dd.url}/jobs`)).body as Record<string, { message: string }[]>
    return Object.fromEntries(Object.entries(all).map(([lane, jobs]) => [lane, jobs.map((j) => j.message).sort()]))
  }
  const expected = { main: ['b', 'c', 'd', 'e'], s: ['left'], blk: ['to-blk'], blk2: ['to-blk2-1', 'to-blk2-2'] }
  const now = await lanes(d)
  t.same(now, expected, 'the schedule and the ack stay made, the bulk delete too; every take went back')
  t.equal((await call(`${url}/job?hash=${leased.hash}`)).status, 404, 'the acked job is gone')
  // Each put-back is synced (always mode): a power loss right now keeps all of the above.
  const size = journalLines(d.dataDir).at(-1)!
  await until(() => gate.synced().some((r) => path.basename(r.file) === size.file && r.size >= size.end), 'the put-backs synced')
  await d.stop('SIGKILL')
  gate.powerLoss(d.dataDir)
  const again = await restarted(t, d.dataDir)
  t.same(await lanes(again), expected, 'after a power loss: the same jobs in the same lanes')
})

t.test('always mode: a schedule waiting for its job ("wait") is not answered at a SIGTERM before its fdatasync', async (t) => {
  // At shutdown each waited schedule is answered with its job's state; one whose schedule was
  // still waiting for its fdatasync was answered 200 with a job number that a power loss then lost.
  const { gate, d } = await gatedDaemon(t)
  gate.close()
  const before = gate.started().length
  let answered: Reply | undefined
  const waited = call(`${d.url}/schedule`, { message: 'waited', wait: 60 }).then(
    (r) => (answered = r),
    () => undefined,
  )
  await gate.waitStarted(before + 1, 'the fdatasync of the waited schedule')
  d.proc.kill('SIGTERM')
  await until(() => d.logs.some((l) => l.msg === 'shutting down'), 'the shutdown begun')
  await sleep(200)
  t.equal(answered, undefined, 'no reply while the schedule\'s fdatasync is held')
  if (answered !== undefined) {
    // What a power loss now does to the job it was answered about.
    await d.stop('SIGKILL')
    gate.powerLoss(d.dataDir)
    const again = await restarted(t, d.dataDir)
    t.same(((await call(`${again.url}/jobs`)).body.main as { message: string }[] | undefined)?.map((j) => j.message) ?? [], ['waited'], `the job answered as ${answered.text} survives a power loss`)
    return
  }
  gate.open()
  const r = (await waited) as Reply
  t.equal(r.status, 200, 'answered once synced')
  t.match(r.body, { job_num: 1, state: 'queued' }, 'with its job, still queued')
  t.equal(await d.exited, 0, 'the daemon stops cleanly')
})

t.test('always mode: an fdatasync failing (EIO) under replies of every kind answers each once, 503 code 10, and the takes stay queued', async (t) => {
  const { gate, d } = await gatedDaemon(t)
  const url = d.url
  await schedule(d, ['a', 'b', 'c', 'd', 'e', 'f', 'g'])
  const leased = (await call(`${url}/receive_noblock`, { lease: 60 })).body as { hash: string; lease_token: string; job_num: number }
  const parked = rawPost(d.port, '/receive_block', { lane: 'blk', lease: 60, timeout: 30 })
  await until(async () => Number(((await call(`${url}/`)).body.payload as { server: { parked_receivers: number } }).server.parked_receivers) === 1, 'the receiver parked')
  gate.close()
  const before = gate.started().length
  gate.failAt(before + 1)
  const requests = [
    rawPost(d.port, '/schedule', { message: 'refused', lane: 's' }),
    rawPost(d.port, '/ack', { hash: leased.hash, lease_token: leased.lease_token }),
    rawPost(d.port, '/receive_noblock', { lease: 60, count: 3 }),
    rawPost(d.port, '/receive_noblock', {}),
    rawPost(d.port, '/schedule', { message: 'to-blk', lane: 'blk' }),
    parked,
  ]
  await until(() => {
    const lines = journalLines(d.dataDir).map((l) => l.line)
    const count = (op: string): number => lines.filter((l) => l.includes(`"op":"${op}"`)).length
    return lines.some((l) => l.includes('"message":"refused"')) && lines.some((l) => l.includes('"message":"to-blk"')) && count('ack') === 1 && count('lease') === 1 + 3 + 1 && count('take') === 1
  }, 'every change written')
  await gate.waitStarted(before + 1, 'the fdatasync that fails')
  await sleep(100)
  t.same(requests.map((r) => responses(r.received())), [0, 0, 0, 0, 0, 0], 'nothing answered while the fdatasyncs are held')
  // The first fails; those begun while it ran cover the same file, and whatever they report, that
  // file is no longer trusted.
  gate.allow(before + 1)
  await until(() => d.logs.some((l) => l.msg === 'journal write failed; changes are refused until a snapshot succeeds'), 'the failure')
  gate.open()
  await until(() => requests.every((r) => responses(r.received()) >= 1), 'every reply')
  await sleep(100)
  const replies = requests.map((r) => r.received())
  t.same(replies.map(responses), [1, 1, 1, 1, 1, 1], 'each request answered once')
  for (const [i, text] of replies.entries()) t.match(text, /^HTTP\/1\.1 503[^]*"code":10/, `request ${i}: 503 code 10 (${text.slice(text.indexOf('{'), text.indexOf('{') + 160)})`)
  t.match(replies[2], /the jobs stay queued/)
  t.match(replies[3], /the job stays queued/)
  t.match(replies[5], /the job stays queued/)
  for (const r of requests) r.socket.destroy()
  gate.open()
  await stillHealthy(t, d)
  const ready = (await call(`${url}/jobs`)).body as Record<string, { message: string }[]>
  t.same(ready.main?.map((j) => j.message).sort(), ['b', 'c', 'd', 'e', 'f', 'g'], 'the takes went back')
  t.same(ready.blk?.map((j) => j.message), ['to-blk'], 'the parked receiver\'s job went back')
  await d.stop('SIGKILL')
  const again = await restarted(t, d.dataDir)
  const after = (await call(`${again.url}/jobs`)).body as Record<string, { message: string }[]>
  t.same(after.main?.map((j) => j.message).sort(), ['b', 'c', 'd', 'e', 'f', 'g'], 'after a kill: the takes answered 503 are still queued')
  t.same(after.blk?.map((j) => j.message), ['to-blk'], 'and the parked receiver\'s job, once')
})

t.test('always mode: a parked receive whose timeout passes while its hand-over waits for the fdatasync is answered once, with the job', async (t) => {
  const { gate, d } = await gatedDaemon(t)
  const one = rawPost(d.port, '/receive_block', { lane: 'blk', lease: 60, timeout: 0.3 })
  const many = rawPost(d.port, '/receive_block', { lane: 'blk2', count: 5, min: 2, timeout: 0.3 })
  await until(async () => Number(((await call(`${d.url}/`)).body.payload as { server: { parked_receivers: number } }).server.parked_receivers) === 2, 'both receivers parked')
  gate.close()
  const before = gate.started().length
  const feeding = [call(`${d.url}/schedule`, { message: 'x', lane: 'blk' }), call(`${d.url}/schedule`, { jobs: [{ message: 'y1', lane: 'blk2' }, { message: 'y2', lane: 'blk2' }] })]
  await gate.waitStarted(before + 1, 'the fdatasync of the hand-overs')
  await sleep(600) // both timeouts pass while the hand-overs wait
  t.same([responses(one.received()), responses(many.received())], [0, 0], 'neither is answered while its hand-over waits')
  gate.open()
  await Promise.all(feeding)
  await until(() => responses(one.received()) >= 1 && responses(many.received()) >= 1, 'both answered')
  await sleep(200)
  t.equal(responses(one.received()), 1, 'the single receive is answered once')
  t.match(one.received(), /^HTTP\/1\.1 200[^]*"message":"x"/, 'with its job')
  t.equal(responses(many.received()), 1, 'the batch receive is answered once')
  t.match(many.received(), /^HTTP\/1\.1 200[^]*"count":2[^]*"y1"[^]*"y2"/, 'with both jobs')
  one.socket.destroy()
  many.socket.destroy()
  await stillHealthy(t, d)
  t.same(Object.values((await call(`${d.url}/jobs`)).body).flat(), [], 'no job is left queued (none was handed twice)')
})

t.test('always mode: a SIGTERM while replies wait for the fdatasync answers them once it ends, then stops cleanly', async (t) => {
  const { gate, d } = await gatedDaemon(t)
  await schedule(d, ['a', 'b', 'c'])
  const leased = (await call(`${d.url}/receive_noblock`, { lease: 60 })).body as { hash: string; lease_token: string }
  gate.close()
  const before = gate.started().length
  const waiting = [
    call(`${d.url}/schedule`, { message: 's' }),
    call(`${d.url}/receive_noblock`, { lease: 60, count: 1 }),
    call(`${d.url}/receive_noblock`, {}),
    call(`${d.url}/ack`, { hash: leased.hash, lease_token: leased.lease_token }),
  ]
  await until(() => journalLines(d.dataDir).filter((l) => /"op":"(schedule|lease|take|ack)"/.test(l.line)).length === 3 + 1 + 1 + 1 + 1 + 1, 'every change written')
  await gate.waitStarted(before + 1, 'an fdatasync held')
  d.proc.kill('SIGTERM')
  await until(() => d.logs.some((l) => l.msg === 'shutting down'), 'the shutdown begun')
  gate.open()
  const replies = await Promise.all(waiting)
  t.same(replies.map((r) => r.status), [200, 200, 200, 200], 'each is answered 200')
  t.equal(await d.exited, 0, 'the daemon stops cleanly')
  const again = await restarted(t, d.dataDir)
  // a: acked; one of b and c taken for good, the other leased (a restart ends the lease); s: scheduled.
  const leasedNow = (replies[1]!.body.jobs as { message: string }[])[0]!.message
  t.not(leasedNow, replies[2]!.body.message, 'the two receives got different jobs')
  t.same(((await call(`${again.url}/jobs`)).body.main as { message: string }[]).map((j) => j.message).sort(), [leasedNow, 's'].sort(), 'the restart holds what was answered')
})

t.test('always mode: a bulk split across two journal files by a compaction is answered only once both are synced', async (t) => {
  // A compaction asked for by the bulk's own records (journal_max_bytes) starts a new file in a
  // microtask; the bulk, which awaited each job, went on writing to the new file within the same
  // turn, and its reply waited on that file only: the old file's records could fail to sync (or
  // still be syncing) while the bulk was answered 200. No snapshot is written here (state.json is
  // a directory), so the journal alone keeps the bulk's changes.
  const { gate, d } = await gatedDaemon(t, [...ALWAYS, '--journal-max-bytes', '1024'])
  mkdirSync(path.join(d.dataDir, 'state.json', 'x'), { recursive: true })
  const messages = Array.from({ length: 1000 }, (_, i) => `m${i}`)
  await schedule(d, messages)
  await until(() => d.logs.some((l) => l.msg === 'snapshot failed; the previous queue.json is intact'), 'the compaction the schedules asked for, failed')
  const hashes = ((await call(`${d.url}/jobs`)).body.main as { hash: string }[]).map((j) => j.hash)
  t.equal(hashes.length, 1000)
  gate.close()
  const before = gate.started().length
  let answered: Reply | undefined
  const bulk = call(`${d.url}/bulk`, { action: 'delete', hashes }).then((r) => (answered = r))
  await until(() => journalLines(d.dataDir).filter((l) => l.line.includes('"op":"delete"')).length === 1000, 'the bulk written')
  await gate.waitStarted(before + 1, 'an fdatasync of the bulk')
  await sleep(100)
  t.equal(answered, undefined, 'not answered while its fdatasyncs are held')
  // The last fdatasync begun on the file holding the bulk's first records fails; those before it pass.
  const first = journalLines(d.dataDir).find((l) => l.line.includes('"op":"delete"'))!.file
  const onFirst = gate.started().filter((s) => s.n > before && path.basename(s.file) === first)
  t.comment(`fdatasyncs begun: ${JSON.stringify(gate.started().filter((s) => s.n > before).map((s) => [s.n, path.basename(s.file), s.size]))}`)
  const failing = onFirst.at(-1)!.n
  gate.failAt(failing)
  gate.allow(failing)
  await until(() => d.logs.some((l) => l.msg === 'journal write failed; changes are refused until a snapshot succeeds'), 'the failure')
  gate.open()
  const r = await bulk
  t.comment(`bulk answered ${r.status} ${r.text.slice(0, 200)}; files ${readdirSync(d.dataDir).join(' ')}`)
  await refusedOrKept(t, { gate, d }, r)
})

t.test('always mode: a duplicate (code 16) is not answered before the schedule of the job it names is synced', async (t) => {
  // "duplicate ... held by job N; nothing was queued" tells the client its work is in job N: said
  // while job N's schedule still waited for its fdatasync, a power loss then lost both.
  const { gate, d } = await gatedDaemon(t)
  gate.close()
  const before = gate.started().length
  const first = call(`${d.url}/schedule`, { message: 'first', unique_key: 'k' }).catch(() => undefined)
  await gate.waitStarted(before + 1, 'the fdatasync of the first schedule')
  let answered: Reply | undefined
  const second = call(`${d.url}/schedule`, { message: 'second', unique_key: 'k' }).then(
    (r) => (answered = r),
    () => undefined,
  )
  await sleep(300)
  t.equal(answered, undefined, 'the duplicate is not answered while the job it would name is not synced')
  if (answered !== undefined) {
    t.comment(`answered ${answered.text}`)
    await d.stop('SIGKILL')
    gate.powerLoss(d.dataDir)
    const again = await restarted(t, d.dataDir)
    t.same(((await call(`${again.url}/jobs`)).body.main as { message: string }[] | undefined)?.map((j) => j.message) ?? [], ['first'], `after a power loss the job the duplicate named is there`)
    return
  }
  gate.open()
  const r = (await second) as Reply
  t.same([r.status, r.body.code, r.body.job_num], [200, 16, 1], 'answered as a duplicate of job 1 once that is synced')
  t.equal((await first)?.status, 200)
})

// Journal: a callback waiting on a newer file also waits for the fdatasyncs of older files still
// under way, and hears of their failure (it answered code 16 here before).
t.test('always mode: a duplicate answered in a newer journal file waits for the older file\'s fdatasync too', async (t) => {
  // The key's holder is scheduled in file 1, whose fdatasync is held; its record alone asks for a
  // compaction, which starts file 2 (and then fails: state.json is a directory). The duplicate
  // waits on file 2's fdatasync only: file 1's fails, the holder is answered 503 ("in memory
  // only"), yet the duplicate is answered code 16 naming it, and a power loss loses it.
  const { gate, d } = await gatedDaemon(t, [...ALWAYS, '--journal-max-bytes', '1024'])
  mkdirSync(path.join(d.dataDir, 'state.json', 'x'), { recursive: true })
  gate.close()
  const before = gate.started().length
  const holder = call(`${d.url}/schedule`, { message: 'x'.repeat(1100), unique_key: 'k' })
  await gate.waitStarted(before + 1, 'the fdatasync of the holder\'s schedule (file 1)')
  await until(() => d.logs.some((l) => l.msg === 'snapshot failed; the previous queue.json is intact'), 'the compaction the holder asked for, failed (file 2 begun)')
  const duplicate = call(`${d.url}/schedule`, { message: 'y', unique_key: 'k' })
  await gate.waitStarted(before + 2, 'a second fdatasync, once the duplicate waits in file 2')
  gate.failAt(before + 1)
  gate.allow(before + 1)
  await until(() => d.logs.some((l) => l.msg === 'journal write failed; changes are refused until a snapshot succeeds'), 'the failure')
  gate.open()
  const [h, dup] = await Promise.all([holder, duplicate])
  t.comment(`holder ${h.status} ${h.text.slice(0, 160)}; duplicate ${dup.status} ${dup.text.slice(0, 160)}`)
  t.equal(h.status, 503, 'the holder is answered 503')
  t.not(dup.body.code, 16, 'the duplicate does not name a job whose schedule failed to sync')
})
