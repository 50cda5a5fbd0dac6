import { spawn } from 'node:child_process'
import { chmodSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { cli } from './helpers/cli'
import { type Running, call, daemonCommand, freePort, removeDir, startDaemon, tempDir, until } from './helpers/daemon'

/** The command-line client (subcommands of bin/dispenserd) against a real daemon. */

let d: Running
let dir: string
t.before(async () => {
  dir = tempDir()
  const script = path.join(dir, 'fail.sh')
  writeFileSync(script, '#!/bin/sh\necho "cannot do $SRC" >&2\nexit 3\n')
  chmodSync(script, 0o755)
  const config = path.join(dir, 'config.json')
  writeFileSync(config, JSON.stringify({ lanes: { fails: { runner: 'exec', command: [script], arguments: [{ key: 'SRC', presence: 'required' }] } } }))
  d = await startDaemon({ dataDir: path.join(dir, 'data'), args: ['--config', config] })
})
t.teardown(async () => {
  await d.stop()
  removeDir(dir)
})

type Json = Record<string, unknown>

function lines(text: string): Json[] {
  return text.trim().split('\n').map((line) => JSON.parse(line) as Json)
}

t.test('status answers (it used to say "too many arguments"), as text or JSON', async (t) => {
  const text = await cli(d.url, ['status'])
  t.equal(text.code, 0, text.stderr)
  t.match(text.stdout, /^dispenserd \d+\.\d+\.\d+ at http:\/\/127\.0\.0\.1:\d+: up /)
  t.match(text.stdout, /^lane\s+queued\s+leased\s+delayed\s+waiting\s+runner$/m)
  t.match(text.stdout, /^fails\s+0\s+0\s+0\s+1\s+exec 0\/1 running/m)
  const json = await cli(d.url, ['status', '--json'])
  t.equal(json.code, 0)
  t.match(lines(json.stdout)[0], { name: 'dispenserd', status: 'ok', payload: { system: { pid: d.proc.pid } } })
})

t.test('status --watch reports again and again until stopped', async (t) => {
  const [cmd, ...cmdArgs] = daemonCommand()
  const proc = spawn(cmd!, [...cmdArgs, 'status', '--watch', '0.2', '--json'], { env: { ...process.env, DISPENSERD_URL: d.url }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  proc.stdout.on('data', (c: Buffer) => (out += c.toString()))
  const exited = new Promise((resolve) => proc.once('exit', resolve))
  await until(() => out.split('\n').filter((line) => line.startsWith('{')).length >= 3, 'three reports')
  await cli(d.url, ['schedule', '--lane', 'watched', 'seen'])
  await until(() => out.includes('"watched":1'), 'a report that shows the new job')
  proc.kill('SIGINT')
  await exited
  t.ok(out.trim().split('\n').every((line) => (JSON.parse(line) as Json).name === 'dispenserd'), 'every report is a whole status')
})

t.test('schedule, jobs and receive: the message on stdout, its identity on stderr', async (t) => {
  t.match((await cli(d.url, ['schedule', 'resize 1.png'])).stdout, /^job \d+ queued \(hash [0-9a-f]{40}\)\n$/)
  const urgent = await cli(d.url, ['schedule', '--lane', 'cli', '--priority', '3', '--json', 'urgent'])
  await cli(d.url, ['schedule', '--lane', 'cli', 'later'])
  await cli(d.url, ['schedule', '--lane', 'cli', '--priority', '1', '--delay', '60', 'delayed'])
  const scheduled = lines(urgent.stdout)[0]!
  t.match(scheduled, { status: 'ok', code: 0, hash: /^[0-9a-f]{40}$/ })
  const listed = lines((await cli(d.url, ['jobs', 'cli', '--json'])).stdout)[0] as Record<string, Json[]>
  t.same(Object.keys(listed), ['cli'])
  t.same(listed.cli!.map((j) => j.message), ['urgent', 'later'], 'priority order; the delayed job is not ready')
  t.match((await cli(d.url, ['jobs'])).stdout, /^cli: 2 ready\n {2}#\d+\s+prio 3\s+[0-9a-f]{12}\s+urgent$/m)

  const first = await cli(d.url, ['receive', '--lane', 'cli'])
  t.equal(first.code, 0)
  t.equal(first.stdout, 'urgent\n')
  t.match(first.stderr, `job ${scheduled.job_num} (lane cli, priority 3, hash ${scheduled.hash})`)
  t.match(lines((await cli(d.url, ['receive', '--lane', 'cli', '--json'])).stdout)[0], { code: 0, message: 'later', lane: 'cli' })
})

t.test('an empty lane is not an error unless --fail-empty', async (t) => {
  const empty = await cli(d.url, ['receive', '--lane', 'nothing-here'])
  t.same([empty.code, empty.stdout], [0, ''])
  t.match(empty.stderr, 'lane nothing-here is empty')
  t.equal((await cli(d.url, ['receive', '--lane', 'nothing-here', '--fail-empty'])).code, 4)
  const json = await cli(d.url, ['receive', '--lane', 'nothing-here', '--json', '--block', '--timeout', '0.2'])
  t.same([json.code, lines(json.stdout)[0]], [0, { status: 'ok', code: 2, message: 'empty queue' }])
})

t.test('receive --block waits for the next job', async (t) => {
  const waiting = cli(d.url, ['receive', '--block', '--lane', 'blocked', '--timeout', '15'])
  await until(async () => ((await call(`${d.url}/`)).body.payload as { idle_workers: Json }).idle_workers.blocked === 1, 'the receiver to park')
  await cli(d.url, ['schedule', '--lane', 'blocked', 'arrived'])
  const got = await waiting
  t.same([got.code, got.stdout], [0, 'arrived\n'])
})

t.test('leases: ack from the JSON line of receive --json, release and touch with HASH --lease-token', async (t) => {
  await cli(d.url, ['schedule', '--lane', 'leased', 'one'])
  await cli(d.url, ['schedule', '--lane', 'leased', 'two'])
  const leased = await cli(d.url, ['receive', '--lane', 'leased', '--lease', '30', '--json'])
  const job = lines(leased.stdout)[0]!
  t.match(job, { message: 'one', lease_token: /./, lease_expires: /Z$/ })
  const acked = await cli(d.url, ['ack'], { input: leased.stdout })
  t.same([acked.code, acked.stdout], [0, `job ${job.job_num} acked\n`], acked.stderr)
  const again = await cli(d.url, ['ack', String(job.hash), '--lease-token', String(job.lease_token)])
  t.equal(again.code, 1, 'a lease no longer in force is the daemon refusing')
  t.match(again.stderr, /code 9, HTTP 404/)

  const human = await cli(d.url, ['receive', '--lane', 'leased', '--lease', '30'])
  const [, hash, token] = /ack ([0-9a-f]{40}) --lease-token (\S+)/.exec(human.stderr) ?? []
  t.ok(hash !== undefined && token !== undefined, `the human output says how to ack: ${human.stderr}`)
  t.equal((await cli(d.url, ['touch', hash!, '--lease-token', token!, '--lease', '120'])).code, 0)
  t.equal((await cli(d.url, ['release', hash!])).code, 2, 'no token: a usage error')
  const released = await cli(d.url, ['release', hash!, '--lease-token', token!, '--delay', '30'])
  t.same([released.code, released.stdout], [0, `job ${/job (\d+)/.exec(human.stderr)![1]} released, ready again in 30 s\n`])
  t.match(lines((await cli(d.url, ['job', hash!, '--json'])).stdout)[0], { state: 'delayed', message: 'two' })
  t.match((await cli(d.url, ['job', hash!])).stdout, /^job \d+: delayed\n {2}lane {6}leased\n/)
})

t.test('runner lanes: --arg, failed, job, retry and delete', async (t) => {
  const scheduled = lines((await cli(d.url, ['schedule', '--lane', 'fails', '--arg', 'SRC=a.png', '--json'])).stdout)[0]!
  const hash = String(scheduled.hash)
  await until(async () => (await call(`${d.url}/job?hash=${hash}`)).body.state === 'dead', 'the job to die')
  const failed = await cli(d.url, ['failed', '--lane', 'fails'])
  t.match(failed.stdout, new RegExp(`^fails: 1 dead job\\n {2}#${scheduled.job_num} {2}${hash} .* exit code 3`))
  const detail = await cli(d.url, ['job', hash])
  t.match(detail.stdout, /job \d+: dead[\s\S]*last run {2}dead at .*: exit code 3\n {2}output:\n {4}cannot do a\.png/)
  t.match((await cli(d.url, ['retry', hash])).stdout, /queued again/)
  await until(async () => (await call(`${d.url}/job?hash=${hash}`)).body.state === 'dead', 'the job to die again')
  t.match((await cli(d.url, ['delete', hash])).stdout, /deleted/)
  const gone = await cli(d.url, ['job', hash])
  t.equal(gone.code, 1)
  t.match(gone.stderr, /code 11/)
  const refused = await cli(d.url, ['schedule', '--lane', 'fails', '--arguments', '{"SRC": 7}'])
  t.equal(refused.code, 1)
  t.match(refused.stderr, /argument "SRC" must be a string, got 7 \(code 1, HTTP 400\)/)
  t.equal((await cli(d.url, ['schedule', '--lane', 'fails', '--arguments', '[1]'])).code, 2)
})

t.test('schedule reads one job per line of standard input, in batches', async (t) => {
  const messages = Array.from({ length: 2500 }, (_, i) => `line ${i}`)
  const r = await cli(d.url, ['schedule', '--lane', 'bulk', '--batch-size', '1000', '--json'], { input: `${messages.join('\n')}\n\n` })
  t.equal(r.code, 0, r.stderr)
  const batches = lines(r.stdout)
  t.same(batches.map((b) => b.count), [1000, 1000, 500])
  t.equal(Number(batches[2]!.last_job_num) - Number(batches[0]!.first_job_num), 2499, 'consecutive job numbers')
  const listed = (await call(`${d.url}/jobs`)).body.bulk as Json[]
  t.same(listed.map((j) => j.message), messages)
  const human = await cli(d.url, ['schedule', '--lane', 'bulk2'], { input: 'a\nb\n' })
  t.match(human.stdout, /^2 jobs queued \(job numbers \d+-\d+\)\n$/)
})

t.test('auth: the token from --token or DISPENSERD_TOKEN', async (t) => {
  const secured = await startDaemon({ env: { DISPENSERD_AUTH_TOKEN: 'sesame' } })
  t.teardown(async () => {
    await secured.stop()
    removeDir(secured.dataDir)
  })
  const without = await cli(secured.url, ['schedule', 'x'], { env: { DISPENSERD_TOKEN: '' } })
  t.equal(without.code, 1)
  t.match(without.stderr, /code 7, HTTP 401/)
  t.equal((await cli(secured.url, ['schedule', 'x', '--token', 'sesame'])).code, 0)
  t.equal((await cli(secured.url, ['receive'], { env: { DISPENSERD_TOKEN: 'sesame' } })).stdout, 'x\n')
  t.match((await cli(secured.url, ['status'], { env: { DISPENSERD_TOKEN: '' } })).stdout, /give the token with --token/)
})

t.test('exit codes: 3 when the daemon cannot be reached, 2 for usage mistakes', async (t) => {
  const port = await freePort()
  const down = await cli(`http://127.0.0.1:${port}`, ['status'])
  t.equal(down.code, 3)
  t.match(down.stderr, `cannot reach dispenserd at http://127.0.0.1:${port}: ECONNREFUSED`)
  for (const args of [['receive', '--lease', 'soon'], ['frobnicate'], ['ack', 'abc'], ['status', '--url', 'localhost:8282'], ['schedule', '--arg', 'novalue', 'x']]) {
    const r = await cli(d.url, args)
    t.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
    t.not(r.stderr, '')
  }
})

t.test('config check validates a file as a start would, without starting', async (t) => {
  const good = path.join(dir, 'good.json')
  writeFileSync(good, JSON.stringify({ address: '127.0.0.1:9999', lanes: { echo: { runner: 'exec', command: ['/bin/echo'] } } }))
  const ok = await cli(undefined, ['config', 'check', good])
  t.equal(ok.code, 0, ok.stderr)
  t.match(ok.stdout, /good\.json: ok\n {2}address 127\.0\.0\.1:9999, .*\n {2}runner lanes: echo \(exec, concurrency 1\)/)
  const cases: [Json, RegExp][] = [
    [{ adress: '127.0.0.1:1' }, /unknown setting "adress" \(did you mean "address"\?\)/],
    [{ lanes: { x: { runner: 'exec', command: ['/no/such/program'] } } }, /lane "x": "command": \/no\/such\/program cannot be run/],
    [{ persist_interval: -1 }, /"persist_interval" must be/],
    [{ lanes: { x: { runner: 'exec', command: ['/bin/echo'], cwd: '/no/such/dir' } } }, /lane "x": "cwd": \/no\/such\/dir is not a directory/],
  ]
  for (const [values, wanted] of cases) {
    const file = path.join(dir, 'bad.json')
    writeFileSync(file, JSON.stringify(values))
    const r = await cli(undefined, ['config', 'check', file])
    t.equal(r.code, 1, JSON.stringify(values))
    t.match(r.stderr, wanted)
  }
  const missing = await cli(undefined, ['config', 'check', path.join(dir, 'none.json')])
  t.equal(missing.code, 1)
  t.match(missing.stderr, /cannot read config file/)
})

t.test('pause and resume a lane: a paused lane hands out nothing until resumed', async (t) => {
  await cli(d.url, ['schedule', '--lane', 'held', 'one'])
  const paused = await cli(d.url, ['pause', 'held'])
  t.equal(paused.code, 0, paused.stderr)
  t.equal(paused.stdout.trim(), 'lane held paused')
  const none = await cli(d.url, ['receive', '--lane', 'held', '--json'])
  t.match(lines(none.stdout)[0], { code: 2 }, 'nothing while paused')
  const resumed = await cli(d.url, ['resume', 'held', '--json'])
  t.same(lines(resumed.stdout)[0], { status: 'ok', code: 0, lane: 'held', paused: false })
  const got = await cli(d.url, ['receive', '--lane', 'held'])
  t.equal(got.stdout, 'one\n')
})

