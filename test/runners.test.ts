import { chmodSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import { backoffMs } from '../src/runners/dispatcher'
import { type Running, call, removeDir, runToExit, startDaemon, tempDir, until } from './helpers/daemon'

/**
 * Runner lanes against the real daemon and real child processes: a small shell script that
 * succeeds, fails, sleeps or records what it was given, depending on its SRC argument.
 */

const SCRIPT = `#!/bin/sh
echo "start $SRC $DISPENSERD_JOB_NUM $DISPENSERD_ATTEMPT $(date +%s%N)" >> "$LOG"
echo "working on $SRC (attempt $DISPENSERD_ATTEMPT)"
case "$SRC" in
  fail*) echo "cannot do $SRC" >&2; exit 3 ;;
  sleep*) sleep 30 ;;
  slow*) sleep 0.4 ;;
  gate*) while [ ! -e "$LOG.gate" ]; do sleep 0.02; done ;;
  env*) env | sort ;;
esac
echo "end $SRC $(date +%s%N)" >> "$LOG"
`

interface Setup {
  d: Running
  dir: string
  log: string
}

async function withLane(t: Test, lane: Record<string, unknown>, args: string[] = [], dir = tempDir()): Promise<Setup> {
  const script = path.join(dir, 'work.sh')
  writeFileSync(script, SCRIPT)
  chmodSync(script, 0o755)
  const log = path.join(dir, 'runs.log')
  const config = path.join(dir, 'config.json')
  const spec = { runner: 'exec', command: [script], arguments: [{ key: 'SRC', type: 'string', presence: 'required' }, { key: 'LOG', type: 'string', presence: 'required' }], ...lane }
  writeFileSync(config, JSON.stringify({ lanes: { work: spec } }))
  const d = await startDaemon({ dataDir: path.join(dir, 'data'), args: ['--config', config, ...args] })
  t.teardown(async () => {
    await d.stop()
    removeDir(dir)
  })
  return { d, dir, log }
}

async function schedule(s: Setup, src: string, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await call(`${s.d.url}/schedule`, { lane: 'work', message: JSON.stringify({ arguments: { SRC: src, LOG: s.log } }), ...extra })
  if (r.status !== 200) throw new Error(`schedule failed: ${r.text}`)
  return String(r.body.hash)
}

async function job(s: Setup, hash: string): Promise<Record<string, unknown>> {
  return (await call(`${s.d.url}/job?hash=${hash}`)).body
}

async function counters(s: Setup): Promise<Record<string, number>> {
  return ((await call(`${s.d.url}/`)).body.payload as { runners: Record<string, Record<string, number>> }).runners.work!
}

function starts(log: string): string[][] {
  return existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter((l) => l.startsWith('start')).map((l) => l.split(' ')) : []
}

t.test('a job runs with its arguments as environment variables and a minimal environment', async (t) => {
  const s = await withLane(t, {}, [], tempDir())
  const hash = await schedule(s, 'env-check')
  await until(async () => (await job(s, hash)).state === 'succeeded', 'the job to succeed')
  const done = await job(s, hash)
  const run = done.last_run as Record<string, unknown>
  t.match(run, { state: 'succeeded', exit_code: 0, reason: null })
  t.match(String(run.output), /SRC=env-check/)
  t.match(String(run.output), /DISPENSERD_LANE=work/)
  t.notMatch(String(run.output), /DISPENSERD_AUTH_TOKEN|TAP_/, "the daemon's own environment is not passed on")
  t.equal(done.attempts, 1)
  t.match(await counters(s), { runner: 'exec', started: 1, succeeded: 1, failed: 0, running: 0 })
})

t.test('a failing job is retried with growing delays, then dead; retry and delete act on it', async (t) => {
  const s = await withLane(t, { retries: 2, backoff: { base: 0.2, max: 10 } })
  const hash = await schedule(s, 'fail-me')
  await until(async () => (await job(s, hash)).state === 'dead', 'the job to be dead', 10_000)
  const runs = starts(s.log).map((fields) => Number(fields[4]) / 1e6)
  t.equal(runs.length, 3, 'one run and two retries')
  const gaps = [runs[1]! - runs[0]!, runs[2]! - runs[1]!]
  t.ok(gaps[0]! >= 100 && gaps[1]! >= 200, `backoff waits at least half of 0.2 s, then of 0.4 s: ${gaps.map(Math.round).join(', ')} ms`)
  const dead = await job(s, hash)
  t.match(dead.last_run, { state: 'dead', reason: 'exit code 3', exit_code: 3, output: /cannot do fail-me/ })
  const failed = await call(`${s.d.url}/failed?lane=work`)
  t.match(failed.body, { status: 'ok', lane: 'work', total: 1, jobs: [{ hash, reason: 'exit code 3', attempts: 3 }] })
  t.match(await counters(s), { started: 3, failed: 3, retried: 2, dead: 1 })
  t.ok(s.d.logs.some((l) => l.msg === 'job failed; no retries left: dead' && l.lane === 'work' && l.reason === 'exit code 3'))

  t.equal((await call(`${s.d.url}/retry`, { hash })).status, 200)
  await until(async () => (await job(s, hash)).state === 'dead' && starts(s.log).length === 6, 'the retried job to die again', 10_000)
  t.equal((await call(`${s.d.url}/delete`, { hash })).status, 200)
  t.same((await call(`${s.d.url}/job?hash=${hash}`)).body.code, 11, 'gone')
  t.match((await call(`${s.d.url}/failed`, { lane: 'work' })).body, { total: 0, jobs: [] })
})

t.test('a timeout kills the run and is recorded as the reason', async (t) => {
  const s = await withLane(t, { timeout: 0.5, retries: 0, kill_grace: 1 })
  const hash = await schedule(s, 'sleep-forever')
  await until(async () => (await job(s, hash)).state === 'dead', 'the job to time out', 10_000)
  t.match((await job(s, hash)).last_run, { reason: 'timeout' })
})

t.test('concurrency bounds the runs at once; 0 pauses the lane', async (t) => {
  const s = await withLane(t, { concurrency: 2 }, ['--log-level', 'debug'])
  const hashes: string[] = []
  for (let i = 0; i < 6; i++) hashes.push(await schedule(s, `slow-${i}`))
  let most = 0
  await until(async () => {
    most = Math.max(most, (await counters(s)).running!)
    return (await counters(s)).succeeded === 6
  }, 'all six to finish', 15_000)
  t.ok(most >= 1 && most <= 2, `at most 2 ran at once (saw ${most})`)
  // In the order the daemon started them: two programs started together may write their lines in either order.
  const jobNums = s.d.logs.filter((l) => l.msg === 'job started').map((l) => Number(l.job_num))
  t.equal(jobNums.length, 6)
  t.same(jobNums, [...jobNums].sort((a, b) => a - b), 'in order')
  t.same(starts(s.log).map((f) => f[1]).sort(), ['slow-0', 'slow-1', 'slow-2', 'slow-3', 'slow-4', 'slow-5'])

  const paused = await withLane(t, { concurrency: 0 })
  const waiting = await schedule(paused, 'never-runs')
  await new Promise((r) => setTimeout(r, 300))
  t.equal((await job(paused, waiting)).state, 'queued')
  t.equal(starts(paused.log).length, 0)
})

t.test('bad messages for a runner lane are refused at schedule time, naming the key', async (t) => {
  const s = await withLane(t, {})
  const cases: [unknown, RegExp][] = [
    [{ arguments: { LOG: 'x' } }, /argument "SRC" is required/],
    [{ arguments: { SRC: 5, LOG: 'x' } }, /argument "SRC" must be a string/],
    [{ arguments: { SRC: 'a', LOG: 'x', EXTRA: '1' } }, /"EXTRA" is not declared/],
    [{ arguments: [] }, /"arguments" must be an object/],
    [{ argumentz: {} }, /unknown field "argumentz"/],
    [{ arguments: { SRC: 'a\u0000b', LOG: 'x' } }, /argument "SRC" contains a NUL character/],
  ]
  for (const [message, wanted] of cases) {
    const r = await call(`${s.d.url}/schedule`, { lane: 'work', message: JSON.stringify(message) })
    t.same([r.status, r.body.code], [400, 1], JSON.stringify(message))
    t.match(String(r.body.message), wanted)
  }
  // 20,000 levels: JSON.parse takes them, JSON.stringify overflows its stack (this once answered 500).
  const deep = await call(`${s.d.url}/schedule`, { lane: 'work', message: `{"arguments": {"LOG": "x", "SRC": ${'['.repeat(20_000)}1${']'.repeat(20_000)}}}` })
  t.same([deep.status, deep.body.code], [400, 1], 'a deep value')
  t.match(String(deep.body.message), /^argument "SRC" is nested more than 64 levels deep$/)
  const plain = await call(`${s.d.url}/schedule`, { lane: 'work', message: 'not json' })
  t.match(plain.body, { code: 1, message: /must be a JSON object/ })
  const batch = await call(`${s.d.url}/schedule`, { jobs: [{ lane: 'work', message: JSON.stringify({ arguments: { SRC: 'a', LOG: s.log } }) }, { lane: 'work', message: '{}' }] })
  t.match(batch.body, { code: 1, message: /^jobs\[1\]: argument "SRC" is required/ })
  t.same(starts(s.log), [], 'nothing was queued')
  for (const endpoint of ['/receive_noblock', '/receive_block']) {
    const r = await call(`${s.d.url}${endpoint}`, { lane: 'work' })
    t.same([r.status, r.body.code], [409, 12], `${endpoint} on a runner lane`)
    t.match(String(r.body.message), /served by the exec runner/)
  }
})

t.test('runner lanes take the arguments as a top-level object too, checked the same way', async (t) => {
  const s = await withLane(t, {})
  const r = await call(`${s.d.url}/schedule`, { lane: 'work', arguments: { SRC: 'top-level', LOG: s.log } })
  t.same([r.status, r.body.code], [200, 0], r.text)
  await until(async () => (await job(s, String(r.body.hash))).state === 'succeeded', 'the job to succeed')
  const done = await job(s, String(r.body.hash))
  t.same(JSON.parse(String(done.message)), { arguments: { SRC: 'top-level', LOG: s.log } }, 'the same message as the string form')
  t.match(String((done.last_run as { output: string }).output), /working on top-level/)
  const batch = await call(`${s.d.url}/schedule`, { jobs: [{ lane: 'work', arguments: { SRC: 'b1', LOG: s.log } }, { lane: 'work', message: JSON.stringify({ arguments: { SRC: 'b2', LOG: s.log } }) }] })
  t.match(batch.body, { code: 0, count: 2 })
  const refused: [Record<string, unknown>, RegExp][] = [
    [{ lane: 'work', arguments: { SRC: 5, LOG: s.log } }, /argument "SRC" must be a string/],
    [{ lane: 'work', arguments: { LOG: s.log } }, /argument "SRC" is required/],
    [{ lane: 'work', arguments: ['SRC'] }, /"arguments" must be a JSON object/],
    [{ lane: 'work', arguments: { SRC: 'a', LOG: s.log }, message: 'both' }, /either "message" or "arguments"/],
    [{ lane: 'work', arguments: { SRC: 'a', LOG: s.log }, target: 7 }, /"target" must be a string/],
    [{ lane: 'main', arguments: { SRC: 'a' } }, /lane "main" has no runner: "arguments" are for runner lanes/],
    [{ jobs: [{ lane: 'work', arguments: { SRC: 'a', LOG: s.log } }, { lane: 'other', arguments: {} }] }, /^jobs\[1\]: lane "other" has no runner/],
  ]
  for (const [body, wanted] of refused) {
    const reply = await call(`${s.d.url}/schedule`, body)
    t.same([reply.status, reply.body.code], [400, 1], JSON.stringify(body))
    t.match(String(reply.body.message), wanted)
  }
  t.same(Object.keys((await call(`${s.d.url}/jobs`)).body).sort(), ['main', 'work'], 'no lane was created by a refused job')
})

t.test('without an arguments spec, a job sets only the variables allowed_env admits, and by default none', async (t) => {
  const s = await withLane(t, { arguments: undefined, allowed_env: ['SRC', 'LOG', 'THUMB_*'] })
  // PYTHONWARNINGS and BROWSER together once ran a shell command through a Python job.
  for (const key of ['PYTHONWARNINGS', 'BROWSER', 'JAVA_TOOL_OPTIONS', 'GIT_SSH_COMMAND', 'http_proxy', 'PATH', 'LD_PRELOAD']) {
    const r = await call(`${s.d.url}/schedule`, { lane: 'work', message: JSON.stringify({ arguments: { SRC: 'env-x', LOG: s.log, [key]: 'x' } }) })
    t.same([r.status, r.body.code], [400, 1], key)
    t.match(String(r.body.message), `argument "${key}" is not allowed on lane "work" (allowed_env: SRC, LOG, THUMB_*)`)
  }
  const hash = await schedule(s, 'env-allowed', { message: JSON.stringify({ arguments: { SRC: 'env-allowed', LOG: s.log, THUMB_WIDTH: 320 } }) })
  await until(async () => (await job(s, hash)).state === 'succeeded', 'the job to succeed')
  t.match((await job(s, hash)).last_run, { output: /THUMB_WIDTH=320/ })

  const none = await withLane(t, { arguments: undefined, command: ['/bin/true'] })
  const refused = await call(`${none.d.url}/schedule`, { lane: 'work', message: JSON.stringify({ arguments: { SRC: 'x' } }) })
  t.same([refused.status, refused.body.code], [400, 1])
  t.match(String(refused.body.message), 'lane "work" takes no arguments (it declares neither "arguments" nor "allowed_env")')
  t.equal((await call(`${none.d.url}/schedule`, { lane: 'work', message: JSON.stringify({ arguments: {} }) })).status, 200)
})

t.test('runner slots do not count against max_parked_receivers: a full limit neither crashes the daemon nor stops the lane', async (t) => {
  const dir = tempDir()
  const s = await withLane(t, {}, ['--max-parked-receivers', '1'], dir)
  const status = async (): Promise<Record<string, number>> => (await call(`${s.d.url}/`)).body.payload as Record<string, number>
  const gated = await schedule(s, 'gate-1')
  await until(async () => (await job(s, gated)).state === 'running', 'the job to run')
  // One client fills the limit while the slot is busy; the slot parks again after its run.
  const parked = call(`${s.d.url}/receive_block`, { lane: 'other' })
  parked.catch(() => undefined) // awaited below; a daemon that died must fail the test there, not as an unhandled rejection
  await until(async () => ((await status()).server as unknown as Record<string, number>).parked_receivers === 1, 'the client to park')
  writeFileSync(`${s.log}.gate`, '')
  await until(async () => (await job(s, gated)).state === 'succeeded', 'the job to succeed')
  const next = await schedule(s, 'after')
  await until(async () => (await job(s, next)).state === 'succeeded', 'the next job to run: the slot parked again')
  t.equal(s.d.proc.exitCode, null, 'the daemon is still running')
  t.match(await status(), { server: { parked_receivers: 1 }, idle_workers: { work: 1, other: 1 } }, 'the idle slot is not a parked receiver')
  const full = await call(`${s.d.url}/receive_block`, { lane: 'third', timeout: 5 })
  t.same([full.status, full.body.code], [503, 8], 'clients are still held to the limit')
  await call(`${s.d.url}/schedule`, { lane: 'other', message: 'for the client' })
  t.equal((await parked).body.message, 'for the client')
  await call(`${s.d.url}/schedule`, { lane: 'kept', message: 'in the snapshot' })
  t.equal(await s.d.stop(), 0)
  const saved = JSON.parse(readFileSync(path.join(dir, 'data', 'queue.json'), 'utf8')) as Record<string, { message: string }[]>
  t.same(saved.kept?.map((j) => j.message), ['in the snapshot'], 'SIGTERM wrote the final snapshot')
})

t.test('shutdown puts running jobs back; a restart runs them again; dead jobs survive', async (t) => {
  const dir = tempDir()
  const first = await withLane(t, { retries: 0, timeout: 60, concurrency: 2 }, ['--shutdown-grace', '0'], dir)
  const sleeping = await schedule(first, 'sleep-long')
  const failing = await schedule(first, 'fail-once')
  await until(async () => (await job(first, sleeping)).state === 'running' && (await job(first, failing)).state === 'dead', 'one running, one dead')
  t.equal(await first.d.stop(), 0)
  t.ok(first.d.logs.some((l) => l.msg === 'job interrupted; put back in its lane' && l.reason === 'shutdown'))
  const saved = JSON.parse(readFileSync(path.join(dir, 'data', 'queue.json'), 'utf8')) as Record<string, { hash: string }[]>
  t.same(saved.work!.map((j) => j.hash), [sleeping], 'the interrupted job is in queue.json')
  t.ok(readdirSync(path.join(dir, 'data')).includes('dead.json'))

  const second = await startDaemon({ dataDir: path.join(dir, 'data'), args: ['--config', path.join(dir, 'config.json'), '--shutdown-grace', '0'] })
  t.teardown(() => second.stop())
  const again = { ...first, d: second }
  await until(async () => (await job(again, sleeping)).state === 'running', 'the interrupted job to run again')
  t.equal((await job(again, sleeping)).attempts, 1, 'the interrupted try did not count')
  t.match(await job(again, failing), { state: 'dead', last_run: { reason: 'exit code 3' } }, 'the dead job and its report survived')
})

t.test('dead jobs and retries survive SIGKILL with the journal', async (t) => {
  const dir = tempDir()
  const first = await withLane(t, { retries: 0 }, ['--persistence', 'journal'], dir)
  const dead = await schedule(first, 'fail-a')
  const retried = await schedule(first, 'fail-b')
  await until(async () => (await job(first, dead)).state === 'dead' && (await job(first, retried)).state === 'dead', 'both dead')
  await call(`${first.d.url}/retry`, { hash: retried })
  await until(async () => starts(first.log).length === 3, 'the retried job to run')
  await until(async () => (await job(first, retried)).state === 'dead', 'it to die again')
  // GET /job can show the death a moment before its record is written (records are written once per
  // turn of the event loop); a schedule's reply waits for its own record, written after that one.
  await call(`${first.d.url}/schedule`, { lane: 'main', message: 'written after the death' })
  await first.d.stop('SIGKILL')
  const second = await startDaemon({ dataDir: path.join(dir, 'data'), args: ['--config', path.join(dir, 'config.json'), '--persistence', 'journal'] })
  t.teardown(() => second.stop())
  const failed = await call(`${second.url}/failed?lane=work`)
  t.same((failed.body.jobs as { hash: string }[]).map((j) => j.hash).sort(), [dead, retried].sort())
  t.equal(starts(first.log).length, 3, 'nothing ran again')
})

t.test('a runner lane that cannot start stops the daemon with a message naming the lane', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const notExecutable = path.join(dir, 'plain.txt')
  writeFileSync(notExecutable, 'not a program')
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ runner: 'teleport' }, /lane "thumbs": unknown runner "teleport"/],
    [{ runner: 'exec' }, /lane "thumbs": "command" must be a non-empty array/],
    [{ runner: 'exec', command: [path.join(dir, 'missing.sh')] }, /lane "thumbs": "command": .*missing\.sh cannot be run/],
    [{ runner: 'exec', command: [notExecutable] }, /lane "thumbs": "command": .*plain\.txt cannot be run/],
    [{ runner: 'exec', command: ['/bin/true'], concurrency: -1 }, /lane "thumbs": "concurrency" must be an integer from 0/],
    [{ runner: 'exec', command: ['/bin/true'], arguments: [{ key: 'A B' }] }, /arguments\[0\]\.key must be an environment variable name/],
    [{ runner: 'exec', command: ['/bin/true'], allowed_env: ['*'] }, /lane "thumbs": allowed_env\[0\]: "\*" would let a job set any variable/],
  ]
  for (const [spec, wanted] of cases) {
    const config = path.join(dir, 'config.json')
    writeFileSync(config, JSON.stringify({ lanes: { thumbs: spec } }))
    const r = await runToExit(['--config', config, '--data-dir', path.join(dir, 'data'), '--address', '127.0.0.1:0'])
    t.equal(r.code, 1, JSON.stringify(spec))
    t.match(r.stderr, wanted)
  }
  t.notOk(existsSync(path.join(dir, 'data')), 'the data directory was not touched')
})

t.test('schedule with a delay: the job waits, then is served in order', async (t) => {
  const d = await startDaemon()
  t.teardown(async () => {
    await d.stop()
    removeDir(d.dataDir)
  })
  const later = await call(`${d.url}/schedule`, { message: 'later', delay: 0.4 })
  await call(`${d.url}/schedule`, { message: 'now' })
  t.equal((await call(`${d.url}/receive_noblock`)).body.message, 'now')
  t.equal((await call(`${d.url}/receive_noblock`)).body.code, 2, 'the delayed job is not ready')
  t.match((await call(`${d.url}/job?hash=${later.body.hash}`)).body, { state: 'delayed', message: 'later' })
  t.equal((await call(`${d.url}/receive_block`, { timeout: 5 })).body.message, 'later')
  t.same((await call(`${d.url}/schedule`, { message: 'x', delay: -1 })).body.code, 1)
})

t.test('backoff doubles from base, is capped at max, and is jittered within half of it', (t) => {
  t.equal(backoffMs(1, 2000, 3_600_000, () => 0), 1000)
  t.equal(backoffMs(1, 2000, 3_600_000, () => 1), 2000)
  t.equal(backoffMs(4, 2000, 3_600_000, () => 1), 16_000)
  t.equal(backoffMs(40, 2000, 3_600_000, () => 1), 3_600_000)
  t.equal(backoffMs(40, 2000, 3_600_000, () => 0), 1_800_000)
  t.end()
})

t.test('a running job is its runner’s: /ack, /release and /touch on it answer 409 and change nothing', async (t) => {
  const s = await withLane(t, { timeout: 60 })
  const hash = await schedule(s, 'slow-held')
  await until(async () => (await job(s, hash)).state === 'running', 'the job to start')
  for (const [path, extra] of [['/release', {}], ['/ack', {}], ['/touch', { lease: 60 }]] as const) {
    const r = await call(`${s.d.url}${path}`, { hash, lease_token: 'guessed', ...extra })
    t.same([r.status, r.body.code], [409, 12], `${path} on a running job`)
    t.match(r.body.message, /running on lane "work"/)
  }
  await until(async () => (await job(s, hash)).state === 'succeeded', 'the run to finish')
  t.equal(starts(s.log).length, 1, 'it ran once')
  t.match(await counters(s), { started: 1, succeeded: 1, failed: 0 })
})
