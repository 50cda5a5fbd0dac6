import { connect } from 'node:net'
import t from 'tap'
import { version } from '../package.json'
import { type Running, call, rawExchange, removeDir, startDaemon, until } from './helpers/daemon'

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/

let d: Running
t.before(async () => {
  d = await startDaemon({ args: ['--max-body-bytes', '4096'] })
})
t.teardown(async () => {
  await d.stop()
  removeDir(d.dataDir)
})

type JobView = { job_num: number; hash: string; timestamp: string; lane: string; priority: number; message: string }

async function jobs(): Promise<Record<string, JobView[]>> {
  return (await call(`${d.url}/jobs`)).body as Record<string, JobView[]>
}

async function drain(lane = 'main'): Promise<string[]> {
  const out: string[] = []
  for (;;) {
    const r = await call(`${d.url}/receive_noblock`, { lane })
    if (r.body.code === 2) return out
    out.push(r.body.message as string)
  }
}

async function idle(lane = 'main'): Promise<number> {
  const status = await call(`${d.url}/`)
  return ((status.body.payload as { idle_workers: Record<string, number> }).idle_workers[lane]) ?? 0
}

t.test('GET / has the original status shape', async (t) => {
  const r = await call(`${d.url}/`)
  t.equal(r.status, 200)
  t.equal(r.headers.get('content-type'), 'application/json')
  t.equal(r.body.name, 'dispenserd')
  t.equal(r.body.version, version)
  t.match(r.body.timestamp, RFC3339)
  t.equal(r.body.status, 'ok')
  const payload = r.body.payload as Record<string, Record<string, unknown>>
  t.equal(payload.system!.pid, d.proc.pid)
  t.type(payload.system!.cpu_count, 'number')
  t.same(payload.queued_jobs, { main: 0 })
  t.same(payload.idle_workers, { main: 0 })
  t.match(payload.server!.http_engine, /native/, 'the native uWebSockets.js build is loaded')
  t.same(Object.keys(payload.tasks!).sort(), ['cron', 'drain rates', 'lease and delay reaper', 'snapshot'], 'the background tasks, by name')
})

t.test('GET / shows each background task’s runs, last run and error', async (t) => {
  const tasks = async (): Promise<Record<string, { runs: number; last_run_at: string | null; last_error: string | null }>> =>
    ((await call(`${d.url}/`)).body.payload as { tasks: Record<string, { runs: number; last_run_at: string | null; last_error: string | null }> }).tasks
  const before = (await tasks())['lease and delay reaper']!.runs
  await call(`${d.url}/schedule`, { message: 'leased briefly' })
  await call(`${d.url}/receive_noblock`, { lease: 0.05 })
  await until(async () => (await tasks())['lease and delay reaper']!.runs > before, 'the reaper to run')
  const reaper = (await tasks())['lease and delay reaper']!
  t.match(reaper, { last_error: null })
  t.ok(Date.parse(String(reaper.last_run_at)) > Date.now() - 10_000, 'ran just now')
  t.equal((await call(`${d.url}/receive_noblock`, {})).body.message, 'leased briefly', 'and put the job back')
})

t.test('schedule, list and receive keep priority order with FIFO ties', async (t) => {
  const specs: [number | undefined, string][] = [[7, 'a'], [undefined, 'default'], [1, 'b'], [7, 'c'], [0, 'd'], [4294967295, 'max'], [1, 'e']]
  const replies = []
  for (const [priority, message] of specs) replies.push(await call(`${d.url}/schedule`, { priority, message }))
  for (const r of replies) {
    t.equal(r.status, 200)
    t.equal(r.body.status, 'ok')
    t.equal(r.body.code, 0)
    t.match(r.body.hash, /^[0-9a-f]{40}$/)
  }
  const nums = replies.map((r) => r.body.job_num as number)
  t.same(nums, nums.map((_, i) => nums[0]! + i), 'job numbers grow one by one')

  const listed = (await jobs()).main!
  t.same(listed.map((j) => j.message), ['d', 'b', 'e', 'a', 'c', 'default', 'max'])
  for (const job of listed) {
    t.same(Object.keys(job), ['job_num', 'hash', 'timestamp', 'lane', 'priority', 'message'])
    t.match(job.timestamp, RFC3339)
    t.equal(job.lane, 'main')
  }
  t.equal(listed.find((j) => j.message === 'default')!.priority, 512)

  const first = await call(`${d.url}/receive_noblock`)
  t.same(
    { status: first.body.status, code: first.body.code, message: first.body.message },
    { status: 'ok', code: 0, message: 'd' },
  )
  t.equal(first.body.job_num, listed[0]!.job_num)
  t.equal(first.body.hash, listed[0]!.hash)
  t.same(await drain(), ['b', 'e', 'a', 'c', 'default', 'max'])
  const empty = await call(`${d.url}/receive_noblock`)
  t.same(empty.body, { status: 'ok', code: 2, message: 'empty queue' })
})

t.test('a single schedule answers the original\'s bytes: status, code, job_num, hash, in that order', async (t) => {
  // The reply is written as bytes (replies.ts scheduledReply); a job with a unique key is answered the same way.
  for (const body of [{ message: 'plain' }, { message: 'keyed', unique_key: 'bytes-check' }, { message: 'prioritized', priority: 3 }]) {
    const r = await call(`${d.url}/schedule`, body)
    t.equal(r.status, 200)
    t.match(r.body.hash, /^[0-9a-f]{40}$/)
    t.equal(r.text, `{"status":"ok","code":0,"job_num":${r.body.job_num as number},"hash":"${r.body.hash as string}"}`, JSON.stringify(body))
    t.equal(r.headers.get('content-type'), 'application/json')
  }
  await drain()
})

t.test('lanes: separate queues, empty lane name means main, used lanes stay listed; receives create none', async (t) => {
  await call(`${d.url}/schedule`, { message: 'v1', lane: 'video' })
  await call(`${d.url}/schedule`, { message: 'm1', lane: '' })
  t.same((await call(`${d.url}/receive_noblock`, { lane: 'email' })).body, { status: 'ok', code: 2, message: 'empty queue' })
  const before = await jobs()
  t.same(Object.keys(before).sort(), ['main', 'video'], 'asking a lane for a job does not create it')
  t.same(before.main!.map((j) => j.message), ['m1'])
  t.same(await drain('video'), ['v1'])
  t.same(await drain(), ['m1'])
  const after = await jobs()
  t.same(after, { main: [], video: [] }, 'emptied lanes are still known')
  const status = (await call(`${d.url}/`)).body.payload as Record<string, unknown>
  t.same(status.queued_jobs, { main: 0, video: 0 })
})

t.test('every route answers GET and POST alike', async (t) => {
  t.equal((await call(`${d.url}/`, undefined, { method: 'POST' })).body.name, 'dispenserd')
  t.same((await call(`${d.url}/jobs`, undefined, { method: 'POST' })).body.main, [])
  t.equal((await call(`${d.url}/receive_noblock`)).body.code, 2)
  const r = await call(`${d.url}/schedule`)
  t.same([r.status, r.body.message], [400, 'missing message'])
})

t.test('unknown paths answer 404 with a JSON error', async (t) => {
  const r = await call(`${d.url}/nope/deeper?x=1`)
  t.equal(r.status, 404)
  t.equal(r.headers.get('content-type'), 'application/json')
  t.same(r.body, { status: 'error', code: 3, message: 'no such endpoint: /nope/deeper' })
})

t.test('bad input answers 400 code 1 naming the problem, and queues nothing', async (t) => {
  const cases: [string, unknown, RegExp][] = [
    ['/schedule', '{}', /^missing message$/],
    ['/schedule', '{"message":null}', /^missing message$/],
    ['/schedule', 'garbage', /invalid JSON/],
    ['/schedule', '{"message":"x"', /invalid JSON/],
    ['/schedule', '[]', /must be a JSON object/],
    ['/schedule', '"text"', /must be a JSON object/],
    ['/schedule', 'null', /must be a JSON object/],
    ['/schedule', '42', /must be a JSON object/],
    ['/schedule', { message: 5 }, /"message" must be a string/],
    ['/schedule', { message: { a: 1 } }, /"message" must be a string/],
    ['/schedule', { message: 'x', priority: -1 }, /"priority" must be an integer from 0 to 4294967295/],
    ['/schedule', { message: 'x', priority: 1.5 }, /"priority"/],
    ['/schedule', { message: 'x', priority: '1' }, /"priority"/],
    ['/schedule', { message: 'x', priority: 4294967296 }, /"priority"/],
    ['/schedule', { message: 'x', priority: true }, /"priority"/],
    ['/schedule', { message: 'x', lane: 5 }, /"lane" must be a string/],
    ['/schedule', { message: 'x', lane: ['a'] }, /"lane" must be a string/],
    ['/receive_noblock', 'garbage', /invalid JSON/],
    ['/receive_noblock', { lane: 7 }, /"lane" must be a string/],
    ['/receive_block', '[1]', /must be a JSON object/],
    ['/receive_block', { lane: false }, /"lane" must be a string/],
  ]
  for (const [path, body, message] of cases) {
    const r = await call(`${d.url}${path}`, body)
    t.equal(r.status, 400, `${path} ${JSON.stringify(body)}`)
    t.equal(r.body.status, 'error')
    t.equal(r.body.code, 1)
    t.match(r.body.message, message)
  }
  t.same(await jobs(), { main: [], video: [] }, 'nothing was queued')
  t.equal(await idle(), 0, 'no receiver was parked')
})

t.test('the limits of priority are accepted', async (t) => {
  t.equal((await call(`${d.url}/schedule`, { message: 'lo', priority: 0 })).status, 200)
  t.equal((await call(`${d.url}/schedule`, { message: 'hi', priority: 4294967295 })).status, 200)
  t.same(await drain(), ['lo', 'hi'])
})

t.test('a body over max_body_bytes answers 413 and the daemon keeps serving', async (t) => {
  const big = { message: 'x'.repeat(5000) }
  const r = await call(`${d.url}/schedule`, big)
  t.equal(r.status, 413)
  t.same([r.body.status, r.body.code], ['error', 4])
  t.match(r.body.message, /max_body_bytes \(4096 bytes\)/)
  // Chunked upload with no Content-Length: the limit is enforced while reading.
  const chunk = 'x'.repeat(3000)
  const raw = await rawExchange(
    d.port,
    `POST /schedule HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${(chunk.length).toString(16)}\r\n${chunk}\r\n${(chunk.length).toString(16)}\r\n${chunk}\r\n0\r\n\r\n`,
  )
  t.match(raw, /^HTTP\/1\.1 413/)
  t.equal((await call(`${d.url}/schedule`, { message: 'after' })).status, 200)
  t.same(await drain(), ['after'])
})

t.test('parked receivers are served oldest first', async (t) => {
  const order: string[] = []
  const waits: Promise<void>[] = []
  for (let i = 0; i < 3; i++) {
    waits.push(
      call(`${d.url}/receive_block`, { lane: 'fifo' }).then((r) => {
        order.push(`receiver${i}:${r.body.message as string}`)
      }),
    )
    await until(async () => (await idle('fifo')) === i + 1, `receiver ${i} parked`)
  }
  for (const m of ['one', 'two', 'three']) await call(`${d.url}/schedule`, { message: m, lane: 'fifo' })
  await Promise.all(waits)
  t.same(order.sort(), ['receiver0:one', 'receiver1:two', 'receiver2:three'])
  t.equal(await idle('fifo'), 0)
})

t.test('a receive_block with no body waits on main', async (t) => {
  const got = call(`${d.url}/receive_block`, undefined, { method: 'POST' })
  await until(async () => (await idle()) === 1, 'receiver parked')
  await call(`${d.url}/schedule`, { message: 'for main' })
  const r = await got
  t.same([r.status, r.body.code, r.body.message, r.body.lane], [200, 0, 'for main', 'main'])
})

t.test('a receiver that disconnects while parked is removed and loses nothing', async (t) => {
  const controller = new AbortController()
  const pending = fetch(`${d.url}/receive_block`, { method: 'POST', body: '{"lane":"gone"}', signal: controller.signal }).catch((e: Error) => e)
  await until(async () => (await idle('gone')) === 1, 'receiver parked')
  controller.abort()
  t.type(await pending, Error)
  await until(async () => (await idle('gone')) === 0, 'idle_workers to drop')
  await call(`${d.url}/schedule`, { message: 'kept', lane: 'gone' })
  t.same((await jobs()).gone!.map((j) => j.message), ['kept'])
  t.same(await drain('gone'), ['kept'])
})

t.test('200 concurrent receivers each get exactly one job', async (t) => {
  const n = 200
  const receivers = Array.from({ length: n }, () => call(`${d.url}/receive_block`, { lane: 'crowd' }))
  await until(async () => (await idle('crowd')) === n, `${n} receivers parked`, 15_000)
  await Promise.all(Array.from({ length: n }, (_, i) => call(`${d.url}/schedule`, { message: `job${i}`, lane: 'crowd' })))
  const replies = await Promise.all(receivers)
  const messages = replies.map((r) => r.body.message as string)
  t.equal(new Set(messages).size, n, 'every receiver got a different job')
  t.same([...messages].sort(), Array.from({ length: n }, (_, i) => `job${i}`).sort())
  t.same((await jobs()).crowd, [])
  t.equal(await idle('crowd'), 0)
})

t.test('one keep-alive connection carries many requests, pipelined too', async (t) => {
  const socket = connect(d.port, '127.0.0.1')
  await new Promise((r) => socket.once('connect', r))
  let received = ''
  const answers = (): number => (received.match(/HTTP\/1\.1 200/g) ?? []).length
  const answered = (n: number): Promise<void> =>
    new Promise((resolve) => {
      const check = (): void => {
        if (answers() < n) return
        socket.off('data', check)
        resolve()
      }
      socket.on('data', check)
      check()
    })
  socket.on('data', (chunk) => (received += chunk.toString()))
  const request = (i: number): string => {
    const body = JSON.stringify({ message: `ka${i}`, lane: 'keepalive' })
    return `POST /schedule HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`
  }
  // 200 sequential requests, each sent after the previous answer.
  for (let i = 0; i < 200; i++) {
    socket.write(request(i))
    await answered(i + 1)
  }
  // 100 more written in one go (pipelined).
  socket.write(Array.from({ length: 100 }, (_, i) => request(200 + i)).join(''))
  await answered(300)
  t.equal(answers(), 300)
  t.equal(socket.destroyed, false, 'the same connection is still open')
  socket.destroy()
  const listed = (await jobs()).keepalive!
  t.same(listed.map((j) => j.message), Array.from({ length: 300 }, (_, i) => `ka${i}`))
  t.equal((await drain('keepalive')).length, 300)
})

t.test('a batch of jobs is queued whole, with consecutive job numbers', async (t) => {
  const parked = call(`${d.url}/receive_block`, { lane: 'batch-b' })
  await until(async () => (await idle('batch-b')) === 1, 'receiver parked')
  const r = await call(`${d.url}/schedule`, {
    jobs: [
      { message: 'b1', lane: 'batch', priority: 5 },
      { message: 'b0', lane: 'batch', priority: 1 },
      { message: 'to the parked one', lane: 'batch-b' },
      { message: 'b2', lane: 'batch', priority: 5 },
    ],
  })
  t.equal(r.status, 200)
  t.same([r.body.status, r.body.code, r.body.count], ['ok', 0, 4])
  t.equal((r.body.last_job_num as number) - (r.body.first_job_num as number), 3)
  t.equal((await parked).body.message, 'to the parked one')
  const listed = (await jobs()).batch!
  t.same(listed.map((j) => j.message), ['b0', 'b1', 'b2'])
  t.same(listed.map((j) => j.job_num), [1, 0, 3].map((i) => (r.body.first_job_num as number) + i))
  t.same(await drain('batch'), ['b0', 'b1', 'b2'])
})

t.test('one invalid entry rejects the whole batch, naming its index', async (t) => {
  const cases: [unknown, RegExp][] = [
    [{ jobs: [{ message: 'ok' }, { message: 'ok' }, { message: 'x', priority: -1 }] }, /^jobs\[2\]: "priority" must be an integer/],
    [{ jobs: [{}] }, /^jobs\[0\]: missing message$/],
    [{ jobs: [{ message: 'ok' }, 'text'] }, /^jobs\[1\]: must be a JSON object$/],
    [{ jobs: [{ message: 'ok', lane: 3 }] }, /^jobs\[0\]: "lane" must be a string$/],
    [{ jobs: [] }, /"jobs" must be a non-empty array/],
    [{ jobs: { message: 'x' } }, /"jobs" must be a non-empty array/],
    [{ jobs: [{ message: 'x' }], message: 'y' }, /either "message" or "jobs"/],
  ]
  for (const [body, message] of cases) {
    const r = await call(`${d.url}/schedule`, body)
    t.same([r.status, r.body.code], [400, 1], JSON.stringify(body))
    t.match(r.body.message, message)
  }
  const all = await jobs()
  t.same(Object.values(all).flat(), [], 'nothing was queued')
})
