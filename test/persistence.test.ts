import { copyFileSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { call, removeDir, runToExit, startDaemon, tempDir, until } from './helpers/daemon'

const FIXTURE = path.join(__dirname, 'fixtures', 'original-queue.json')

t.test('SIGTERM writes the snapshot and a restart restores the same /jobs', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const first = await startDaemon({ dataDir: dir, args: ['--persist-interval', '0'] })
  for (const [lane, priority, message] of [['main', 5, 'a'], ['main', 1, 'b'], ['video', 3, 'c'], ['main', 5, 'd']] as const) {
    await call(`${first.url}/schedule`, { lane, priority, message })
  }
  await call(`${first.url}/schedule`, { lane: 'empty', message: 'taken' })
  await call(`${first.url}/receive_noblock`, { lane: 'empty' })
  const before = (await call(`${first.url}/jobs`)).body
  const parked = call(`${first.url}/receive_block`, { lane: 'waiting' })
  await until(async () => ((await call(`${first.url}/`)).body.payload as { idle_workers: Record<string, number> }).idle_workers.waiting === 1, 'receiver parked')
  t.equal(await first.stop('SIGTERM'), 0, 'exit code 0')
  const dismissed = await parked
  t.same([dismissed.status, dismissed.body.code], [503, 5], 'the parked receiver is answered 503 shutting down')
  t.ok(first.logs.some((l) => l.msg === 'snapshot written' && l.jobs === 4))
  t.equal(existsSync(path.join(dir, 'dispenserd.pid')), false, 'pid file removed')

  const second = await startDaemon({ dataDir: dir })
  t.teardown(() => second.stop())
  t.same((await call(`${second.url}/jobs`)).body, before, 'an emptied lane is kept; one only waited on is not')
  const next = await call(`${second.url}/schedule`, { message: 'e' })
  t.equal(next.body.job_num, 6, 'job numbers continue')
})

t.test('SIGINT shuts down the same way', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const d = await startDaemon({ dataDir: dir })
  await call(`${d.url}/schedule`, { message: 'kept' })
  t.equal(await d.stop('SIGINT'), 0)
  const saved = JSON.parse(readFileSync(path.join(dir, 'queue.json'), 'utf8')) as Record<string, { message: string }[]>
  t.same(saved.main!.map((j) => j.message), ['kept'])
})

t.test('job numbers grow across restarts even when the queue was emptied', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const first = await startDaemon({ dataDir: dir })
  for (let i = 0; i < 3; i++) await call(`${first.url}/schedule`, { message: `m${i}` })
  for (let i = 0; i < 3; i++) await call(`${first.url}/receive_noblock`)
  await first.stop()
  const second = await startDaemon({ dataDir: dir })
  t.teardown(() => second.stop())
  t.equal((await call(`${second.url}/schedule`, { message: 'next' })).body.job_num, 4)
})

t.test('a queue.json written by the original Go daemon loads in order', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  copyFileSync(FIXTURE, path.join(dir, 'queue.json'))
  const d = await startDaemon({ dataDir: dir })
  t.teardown(() => d.stop())
  const listed = (await call(`${d.url}/jobs`)).body as Record<string, Record<string, unknown>[]>
  t.same(Object.keys(listed).sort(), ['archived', 'email', 'main', 'video'])
  t.same(listed.main!.map((j) => j.job_num), [4, 2])
  t.same(listed.main![0], {
    job_num: 4,
    hash: '5066400f81e3ba8e6160279b4fad9d6ed5598584',
    timestamp: '2017-02-06T05:48:14Z',
    lane: 'main',
    priority: 1,
    message: 'first',
  })
  t.equal(listed.main![1]!.message, '{"stringified":"json","n":1}')
  t.same(listed.video!.map((j) => j.message), ['transcode 1.mp4'])
  t.equal((await call(`${d.url}/schedule`, { message: 'new' })).body.job_num, 10, 'numbering continues after the highest')
  t.equal((await call(`${d.url}/receive_noblock`, { lane: 'video' })).body.message, 'transcode 1.mp4')
})

t.test('an empty queue.json (as the original build creates) is an empty queue', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  writeFileSync(path.join(dir, 'queue.json'), '')
  const d = await startDaemon({ dataDir: dir })
  t.teardown(() => d.stop())
  t.same((await call(`${d.url}/jobs`)).body, { main: [] })
})

t.test('a corrupt queue.json is refused and left untouched', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const file = path.join(dir, 'queue.json')
  for (const [content, problem] of [
    ['{"main": [{"job_num": 1, "message": "x"}', /not valid JSON/],
    ['{"main": [{"job_num": "one", "message": "x"}]}', /lane "main", job 0: "job_num" must be a positive integer/],
    ['{"main": {"job_num": 1}}', /lane "main": expected an array of jobs/],
    ['[1,2]', /expected an object/],
    ['{"main": [{"job_num": 1, "message": "x", "priority": -4}]}', /"priority"/],
  ] as const) {
    writeFileSync(file, content)
    const mtime = statSync(file).mtimeMs
    const r = await runToExit(['--address', '127.0.0.1:0', '--data-dir', dir])
    t.not(r.code, 0, `refused: ${content}`)
    t.match(r.stderr, file, 'the message names the file')
    t.match(r.stderr, problem)
    t.equal(readFileSync(file, 'utf8'), content, 'file content untouched')
    t.equal(statSync(file).mtimeMs, mtime, 'file not rewritten')
    t.equal(existsSync(path.join(dir, 'dispenserd.pid')), false, 'no pid file left behind')
  }
})

t.test('persist_interval writes snapshots while running', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const d = await startDaemon({ dataDir: dir, args: ['--persist-interval', '1'] })
  await call(`${d.url}/schedule`, { message: 'periodic' })
  const file = path.join(dir, 'queue.json')
  const snapshot = async (): Promise<Record<string, unknown>> => ((await call(`${d.url}/`)).body.payload as { snapshot: Record<string, unknown> }).snapshot
  // The status is updated once the file is renamed and its directory synced: wait for that.
  await until(async () => (await snapshot()).last_jobs === 1, 'a periodic snapshot holding the job', 20_000)
  t.ok(readFileSync(file, 'utf8').includes('periodic'))
  t.equal((await snapshot()).last_error, null)
  // A crash (SIGKILL) after a periodic snapshot keeps what that snapshot held.
  await d.stop('SIGKILL')
  const again = await startDaemon({ dataDir: dir })
  t.teardown(() => again.stop())
  t.equal((await call(`${again.url}/receive_noblock`)).body.message, 'periodic')
})

t.test('--no-persist neither loads nor writes queue.json', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  copyFileSync(FIXTURE, path.join(dir, 'queue.json'))
  const d = await startDaemon({ dataDir: dir, args: ['--no-persist'] })
  t.same((await call(`${d.url}/jobs`)).body, { main: [] })
  await call(`${d.url}/schedule`, { message: 'volatile' })
  t.equal(await d.stop(), 0)
  t.equal(readFileSync(path.join(dir, 'queue.json'), 'utf8'), readFileSync(FIXTURE, 'utf8'))
})

t.test('a second daemon on the same data directory or port refuses to start', async (t) => {
  const dir = tempDir()
  const other = tempDir()
  t.teardown(() => {
    removeDir(dir)
    removeDir(other)
  })
  const d = await startDaemon({ dataDir: dir })
  t.teardown(() => d.stop())
  const sameDir = await runToExit(['--address', '127.0.0.1:0', '--data-dir', dir])
  t.not(sameDir.code, 0)
  t.match(sameDir.stderr, `another dispenserd (pid ${d.proc.pid}) is using this data directory`)
  const samePort = await runToExit(['--address', `127.0.0.1:${d.port}`, '--data-dir', other])
  t.not(samePort.code, 0)
  t.match(samePort.stderr, `cannot listen on 127.0.0.1:${d.port}`)
  t.equal(existsSync(path.join(other, 'dispenserd.pid')), false, 'the refused daemon released its lock')
  t.equal((await call(`${d.url}/`)).status, 200, 'the first daemon is unaffected')
})

t.test('a stale pid file from a dead process is taken over', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  writeFileSync(path.join(dir, 'dispenserd.pid'), '999999999\n')
  const d = await startDaemon({ dataDir: dir })
  t.teardown(() => d.stop())
  t.equal(readFileSync(path.join(dir, 'dispenserd.pid'), 'utf8').trim(), String(d.proc.pid))
})

t.test('jobs restored with long hashes no scheme derives are answered and written back whole', async (t) => {
  // queue.json keeps a hash it cannot derive as a string of any length. With a long one and a
  // message of escapes, the writer ran out of the room it had made for the job: GET /job answered
  // cut-off JSON, and the snapshot at shutdown wrote a queue.json the next start refused.
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const timestamp = '2026-11-22T04:11:00Z'
  const jobs = Array.from({ length: 40 }, (_, i) => ({
    job_num: i + 1,
    hash: `${'h'.repeat(1000)}${i}`,
    timestamp,
    lane: 'main',
    priority: 1,
    // The first job's length puts a later one across the snapshot writer's first 256 KiB.
    message: i === 0 ? 'a'.repeat(5450) : '\u0001'.repeat(1000),
  }))
  const lone = { job_num: 41, hash: 'h'.repeat(400), timestamp, lane: 'other', priority: 1, message: '\u0001'.repeat(400) }
  writeFileSync(path.join(dir, 'queue.json'), JSON.stringify({ main: jobs, other: [lone] }))
  const first = await startDaemon({ dataDir: dir })
  t.teardown(() => first.stop())
  const shown = await fetch(`${first.url}/job?job_num=41`).then((r) => r.text())
  t.match(parsedOrText(shown), { hash: lone.hash, message: lone.message }, 'GET /job answers the whole job as JSON')
  t.equal(await first.stop('SIGTERM'), 0)
  const second = await startDaemon({ dataDir: dir })
  t.teardown(() => second.stop())
  t.same((await call(`${second.url}/jobs`)).body, { main: jobs, other: [lone] }, 'the snapshot written at shutdown loads back as it was')
})

function parsedOrText(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return `not JSON (${text.length} characters): ${text.slice(-60)}`
  }
}
