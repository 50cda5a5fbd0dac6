import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import { type Config, resolveConfig } from '../src/config'
import { planReload } from '../src/reload'
import { type LogLine, type Running, call, removeDir, startDaemon, tempDir, until } from './helpers/daemon'

/**
 * SIGHUP reads the config file again and applies what it safely can, against the real daemon: it
 * used to end the process with no log line and no snapshot.
 */

interface Setup {
  d: Running
  dir: string
  configFile: string
}

async function withConfig(t: Test, values: Record<string, unknown>, args: string[] = []): Promise<Setup> {
  const dir = tempDir()
  const configFile = path.join(dir, 'config.json')
  writeFileSync(configFile, JSON.stringify(values))
  const d = await startDaemon({ dataDir: path.join(dir, 'data'), args: ['--config', configFile, ...args] })
  t.teardown(async () => {
    await d.stop()
    removeDir(dir)
  })
  return { d, dir, configFile }
}

const isReloadLine = (line: LogLine): boolean => /^configuration (not )?reloaded/.test(String(line.msg))

/** Writes the file (if given), sends SIGHUP and resolves to the reload's first log line. */
async function hup(s: Setup, values?: Record<string, unknown> | string): Promise<LogLine> {
  if (values !== undefined) writeFileSync(s.configFile, typeof values === 'string' ? values : JSON.stringify(values))
  const seen = s.d.logs.filter(isReloadLine).length
  s.d.proc.kill('SIGHUP')
  await until(() => s.d.logs.filter(isReloadLine).length > seen, 'the reload log line')
  return s.d.logs.filter(isReloadLine)[seen]!
}

async function schedule(s: Setup, message: string, token?: string): Promise<number> {
  const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` }
  return (await call(`${s.d.url}/schedule`, { message }, { headers })).status
}

t.test('SIGHUP applies new limits, auth token and log level; the daemon keeps serving', async (t) => {
  const s = await withConfig(t, { max_queued_jobs: 2, log_level: 'info' })
  t.equal(await schedule(s, 'one'), 200)
  t.equal(await schedule(s, 'two'), 200)
  t.equal(await schedule(s, 'three'), 503, 'max_queued_jobs 2 holds before the reload')

  const line = await hup(s, { max_queued_jobs: 5, log_level: 'debug', auth_token: 'sekrit', max_body_bytes: 200, persist_interval: 60 })
  t.equal(line.msg, 'configuration reloaded')
  t.same(line.changed, { max_queued_jobs: '2 -> 5', log_level: 'info -> debug', auth_token: 'set', max_body_bytes: '1048576 -> 200' })
  t.notOk(JSON.stringify(s.d.logs).includes('sekrit'), 'the token is never logged')
  await until(() => s.d.logs.some((l) => l.msg === 'configuration reloaded, but these changes need a restart to take effect'), 'the restart line')
  t.same(s.d.logs.find((l) => Array.isArray(l.needs_restart))!.needs_restart, ['persist_interval'])

  t.equal(await schedule(s, 'three'), 401, 'the new token is required')
  t.equal(await schedule(s, 'three', 'sekrit'), 200, 'and the new limit lets a third job in')
  await until(() => s.d.logs.some((l) => l.msg === 'scheduled' && l.job_num === 3), 'a debug line for job 3')
  t.equal(await schedule(s, 'x'.repeat(300), 'sekrit'), 413, 'the new max_body_bytes applies')
  t.equal((await call(`${s.d.url}/`)).status, 200)

  const off = await hup(s, { max_queued_jobs: 5, log_level: 'warn' })
  t.same(off.changed, { log_level: 'debug -> warn', auth_token: 'removed', max_body_bytes: '200 -> 1048576' }, 'turning logging down is still logged')
  t.equal(await schedule(s, 'four'), 200, 'no token needed any more')
  // This reload's warning is written after any line scheduling job 4 could have made.
  await hup(s, { max_queued_jobs: 5, log_level: 'warn', persist_interval: 61 })
  t.notOk(s.d.logs.some((l) => l.msg === 'scheduled' && l.job_num === 4), 'debug lines stopped')
})

t.test('a bad config file on SIGHUP is logged and changes nothing', async (t) => {
  const s = await withConfig(t, { max_queued_jobs: 1 })
  t.equal(await schedule(s, 'one'), 200)
  const broken: [string | Record<string, unknown>, RegExp][] = [
    ['{ not json', /not valid JSON/],
    [{ max_queued_jobs: 5, auth_tokn: 'x' }, /unknown setting "auth_tokn" \(did you mean "auth_token"\?\)/],
    [{ max_queued_jobs: 'five' }, /"max_queued_jobs" must be an integer/],
    [{ max_queued_jobs: 5, lanes: { work: { runner: 'exec', command: ['/bin/true'], concurency: 2 } } }, /unknown setting "lanes.work.concurency" \(did you mean "concurrency"\?\)/],
  ]
  for (const [values, reason] of broken) {
    const line = await hup(s, values)
    t.equal(line.msg, 'configuration not reloaded; the settings in effect stay as they are')
    t.equal(line.level, 50)
    t.match(line.reason, reason)
    t.equal(await schedule(s, 'two'), 503, 'max_queued_jobs is still 1')
  }
  const fixed = await hup(s, { max_queued_jobs: 2 })
  t.same(fixed.changed, { max_queued_jobs: '1 -> 2' }, 'a later good file applies against the settings in effect')
  t.equal(await schedule(s, 'two'), 200)
})

t.test('the default config file removed: SIGHUP refuses rather than falling back to defaults', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  mkdirSync(path.join(dir, 'config'))
  const configFile = path.join(dir, 'config', 'config.json')
  writeFileSync(configFile, JSON.stringify({ auth_token: 'sekrit' }))
  const d = await startDaemon({ dataDir: path.join(dir, 'data'), env: { DISPENSERD_ROOT: dir } })
  t.teardown(() => d.stop())
  rmSync(configFile)
  const line = await hup({ d, dir, configFile })
  t.match(line, { msg: 'configuration not reloaded; the settings in effect stay as they are', reason: /cannot read config file/ })
  t.equal(await schedule({ d, dir, configFile }, 'x'), 401, 'the token is still required')
})

t.test('SIGHUP while the daemon is starting does not stop it, and the file is read again', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  // A runner module that holds the start until the test says go, after telling it the pid.
  writeFileSync(
    path.join(dir, 'slow.js'),
    `const fs = require('fs'), path = require('path')
exports.createRunner = (options) => {
  fs.writeFileSync(path.join(options.root, 'starting'), String(process.pid))
  while (!fs.existsSync(path.join(options.root, 'go'))) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10)
  return { run: async () => ({ status: 'succeeded' }) }
}`,
  )
  const configFile = path.join(dir, 'config.json')
  const values = (max: number): Record<string, unknown> => ({ max_queued_jobs: max, lanes: { slow: { runner: './slow.js' } } })
  writeFileSync(configFile, JSON.stringify(values(1)))
  const starting = startDaemon({ dataDir: path.join(dir, 'data'), args: ['--config', configFile], env: { DISPENSERD_ROOT: dir } })
  await until(() => existsSync(path.join(dir, 'starting')), 'the start to reach the runner module')
  writeFileSync(configFile, JSON.stringify(values(2)))
  process.kill(Number(readFileSync(path.join(dir, 'starting'), 'utf8')), 'SIGHUP')
  writeFileSync(path.join(dir, 'go'), '')
  const d = await starting
  t.teardown(() => d.stop())
  await until(() => d.logs.some(isReloadLine), 'the reload')
  t.same(d.logs.find(isReloadLine)!.changed, { max_queued_jobs: '1 -> 2' })
  const s = { d, dir, configFile }
  t.equal(await schedule(s, 'one'), 200)
  t.equal(await schedule(s, 'two'), 200, 'the limit read again applies')
})

t.test('SIGHUP then SIGTERM: the scheduled job is in the snapshot', async (t) => {
  const s = await withConfig(t, {})
  const { body } = await call(`${s.d.url}/schedule`, { message: 'keep me' })
  const line = await hup(s)
  t.equal(line.msg, 'configuration reloaded; nothing to change')
  t.equal(await s.d.stop('SIGTERM'), 0)
  t.match(readFileSync(path.join(s.d.dataDir, 'queue.json'), 'utf8'), `"hash":"${String(body.hash)}"`)
})

t.test('SIGHUP turns a throttle on and off', async (t) => {
  const s = await withConfig(t, {})
  await hup(s, { throttle_schedule: true })
  const started = Date.now()
  await Promise.all(Array.from({ length: 6 }, (_, i) => schedule(s, `t${i}`)))
  t.ok(Date.now() - started >= 5 * 25, 'six schedules took at least 125 ms')
  t.same((await hup(s, {})).changed, { throttle_schedule: 'true -> false' })
})

/** An exec lane whose jobs run until the file named by their GATE argument exists. */
async function gatedLane(t: Test, concurrency: number): Promise<Setup & { lane: (c: number) => Record<string, unknown> }> {
  const dir = tempDir()
  const script = path.join(dir, 'wait.sh')
  writeFileSync(script, '#!/bin/sh\nwhile [ ! -e "$GATE" ]; do sleep 0.01; done\n')
  chmodSync(script, 0o755)
  const lane = (c: number): Record<string, unknown> => ({ lanes: { work: { runner: 'exec', command: [script], concurrency: c, arguments: [{ key: 'GATE', presence: 'required' }] } } })
  const configFile = path.join(dir, 'config.json')
  writeFileSync(configFile, JSON.stringify(lane(concurrency)))
  const d = await startDaemon({ dataDir: path.join(dir, 'data'), args: ['--config', configFile] })
  t.teardown(async () => {
    writeFileSync(path.join(dir, 'open'), '')
    await d.stop()
    removeDir(dir)
  })
  return { d, dir, configFile, lane }
}

t.test('SIGHUP raises and lowers a lane\'s concurrency; lowering lets running jobs finish', async (t) => {
  const s = await gatedLane(t, 1)
  const counters = async (): Promise<Record<string, number>> =>
    ((await call(`${s.d.url}/`)).body.payload as { runners: Record<string, Record<string, number>> }).runners.work!
  const run = async (gate: string): Promise<string> => {
    const r = await call(`${s.d.url}/schedule`, { lane: 'work', message: JSON.stringify({ arguments: { GATE: path.join(s.dir, gate) } }) })
    return String(r.body.hash)
  }
  const first = [await run('a'), await run('a'), await run('a')]
  await until(async () => (await counters()).running === 1, 'one run')

  t.same((await hup(s, s.lane(3))).changed, { 'lanes.work.concurrency': '1 -> 3' })
  await until(async () => (await counters()).running === 3, 'three runs')

  t.same((await hup(s, s.lane(1))).changed, { 'lanes.work.concurrency': '3 -> 1' })
  t.match(await counters(), { concurrency: 1, running: 3 }, 'the running jobs go on')
  writeFileSync(path.join(s.dir, 'a'), '')
  await until(async () => (await counters()).succeeded === 3, 'the three to finish')
  for (const hash of first) t.equal((await call(`${s.d.url}/job?hash=${hash}`)).body.state, 'succeeded', 'not aborted')

  const second = [await run('b'), await run('b'), await run('b')]
  await until(async () => (await counters()).running === 1, 'one run')
  const states = await Promise.all(second.map(async (hash) => (await call(`${s.d.url}/job?hash=${hash}`)).body.state))
  t.same(states, ['running', 'queued', 'queued'], 'one slot is left')
  t.same((await hup(s, s.lane(0))).changed, { 'lanes.work.concurrency': '1 -> 0' })
  writeFileSync(path.join(s.dir, 'b'), '')
  await until(async () => (await counters()).succeeded === 4, 'the running one to finish')
  t.match(await counters(), { concurrency: 0, running: 0 }, 'paused: nothing more starts')
  t.equal((await call(`${s.d.url}/job?hash=${second[1]}`)).body.state, 'queued')
})

function config(values: Record<string, unknown>): Config {
  return resolveConfig({ flags: {}, env: {}, root: '/srv', cwd: '/srv', file: { name: 'config.json', values } }).config
}

t.test('what a reload applies, and what it leaves for a restart', (t) => {
  const exec = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ runner: 'exec', command: ['/bin/true'], ...extra })
  const before = config({
    address: '127.0.0.1:1',
    lanes: { a: exec(), b: exec({ backoff: { base: 1, max: 2 } }), c: exec() },
    dispatch: { allowed_repos: ['https://git.example/'], concurrency: 1 },
  })
  const after = config({
    address: '127.0.0.1:2',
    max_lanes: 3,
    lanes: { a: exec({ concurrency: 4, timeout: 9 }), b: exec({ backoff: { max: 2, base: 1 } }), d: exec() },
    dispatch: { allowed_repos: ['https://git.example/', 'https://other/'], concurrency: 2 },
  })
  const plan = planReload(before, after)
  t.same(plan.changed, { max_lanes: '10000 -> 3', 'lanes.a.concurrency': '1 -> 4', 'dispatch.concurrency': '1 -> 2' })
  t.same(plan.needsRestart.sort(), ['address', 'dispatch.allowed_repos', 'lanes.a.timeout', 'lanes.c (removed)', 'lanes.d (added)'].sort())
  t.equal(plan.config.address, '127.0.0.1:1', 'what needs a restart stays as it is')
  t.equal(plan.config.max_lanes, 3)
  t.same(plan.config.lanes.map((l) => [l.lane, l.concurrency, l.timeoutMs]), [['a', 4, 300_000], ['b', 1, 300_000], ['c', 1, 300_000]])
  t.equal(plan.config.dispatch?.lane.concurrency, 2)
  t.same(planReload(plan.config, after).changed, {}, 'a second reload of the same file changes nothing more')
  t.end()
})

t.test('a reload of the same Redis cluster list changes nothing (lists compare by content)', (t) => {
  const values = { store: 'redis', redis: { cluster: ['10.0.0.1:7000', '10.0.0.2:7000'] } }
  const plan = planReload(config(values), config(values))
  t.same(plan.needsRestart, [])
  t.same(plan.changed, {})
  t.same(planReload(config(values), config({ ...values, redis: { cluster: ['10.0.0.3:7000'] } })).needsRestart, ['redis_cluster'])
  t.end()
})
