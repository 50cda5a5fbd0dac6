import { execFileSync } from 'node:child_process'
import { chmodSync, writeFileSync } from 'node:fs'
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import t, { type Test } from 'tap'
import { createLogger } from '../src/log'
import { DispatchRepos, createDispatchRunner } from '../src/runners/dispatch'
import { createExecRunner } from '../src/runners/exec'
import { createHttpRunner } from '../src/runners/http'
import { loadRunnerModule } from '../src/runners/module'
import type { Runner, RunnerJob, RunResult } from '../src/runners/runner'
import { call, removeDir, startDaemon, tempDir, until } from './helpers/daemon'

/**
 * One contract every runner keeps, whatever it is built on (hono's habit: one suite, every
 * implementation). Each runner under test is told what to do through the job's MODE argument:
 * succeed, fail, hang, noisy (a lot of output), echo (show its GREETING argument).
 */

const logger = createLogger('silent')

function job(mode: string, extra: Record<string, unknown> = {}, message = '{}'): RunnerJob {
  return { lane: 'contract', jobNum: 7, hash: 'a'.repeat(40), attempt: 1, message, arguments: { MODE: mode, GREETING: 'hello-from-the-job', ...extra }, target: undefined }
}

/** A runner under test, and (for runners that read the job's message) how to say what to do in one. */
interface Subject {
  runner: Runner
  message?: (mode: string) => string
}

function run(runner: Runner, mode: string, signal = new AbortController().signal): Promise<RunResult> {
  return runner.run(job(mode), { signal, logger })
}

function contract(name: string, make: (t: Test) => Promise<Runner | Subject>): void {
  t.test(`${name} runner keeps the contract`, async (t) => {
    const made = await make(t)
    const subject: Subject = 'run' in made ? { runner: made } : made
    const go = (mode: string, signal = new AbortController().signal): Promise<RunResult> =>
      subject.runner.run(job(mode, {}, subject.message?.(mode)), { signal, logger })
    t.match(await go('succeed'), { status: 'succeeded' }, 'success')
    const failed = await go('fail')
    t.match(failed, { status: 'failed' }, 'failure')
    t.type((failed as { reason: unknown }).reason, 'string', 'a failure has a reason')

    const controller = new AbortController()
    const started = Date.now()
    setTimeout(() => controller.abort('timeout'), 200)
    t.match(await go('hang', controller.signal), { status: 'failed', reason: 'timeout' }, 'a hanging run ends at its timeout')
    t.ok(Date.now() - started < 3000, `promptly (${Date.now() - started} ms)`)

    const noisy = await go('noisy')
    t.ok(Buffer.byteLength(noisy.output ?? '') <= 4096, `output kept to 4 KiB (${Buffer.byteLength(noisy.output ?? '')} bytes)`)
    t.match(noisy.output, /line 9999\s*$/, 'the last of it')
    t.match((await go('echo')).output, /hello-from-the-job/, 'the job’s arguments reach the runner')
  })
}

const SCRIPT = `#!/bin/sh
case "$MODE" in
  succeed) exit 0 ;;
  fail) echo "failing on purpose" >&2; exit 3 ;;
  hang) sleep 60 & wait ;;
  noisy) i=0; while [ $i -lt 10000 ]; do echo "line $i"; i=$((i+1)); done ;;
  echo) echo "$GREETING" ;;
esac
`

contract('exec', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const script = path.join(dir, 'run.sh')
  writeFileSync(script, SCRIPT)
  chmodSync(script, 0o755)
  return createExecRunner({ lane: 'contract', config: { command: [script], kill_grace: 1 }, root: dir, logger })
})

/** A real HTTP server on loopback that behaves as the task's MODE says. */
async function taskServer(t: Test): Promise<string> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = ''
    req.on('data', (c: Buffer) => (body += c.toString()))
    req.on('end', () => {
      const { taskName, taskArgs } = JSON.parse(body) as { taskName: string; taskArgs: Record<string, string> }
      const mode = taskArgs.MODE
      if (req.url === '/status/404' || mode === 'bad') return res.writeHead(404).end('no such task')
      if (mode === 'succeed') return res.writeHead(200).end('ok')
      if (mode === 'fail') return res.writeHead(500).end('failing on purpose')
      if (mode === 'hang') return // never answers
      if (mode === 'noisy') return res.writeHead(200).end(Array.from({ length: 10000 }, (_, i) => `line ${i}\n`).join(''))
      res.writeHead(200).end(`${taskName}: ${taskArgs.GREETING}`)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

contract('http', async (t) => {
  const url = await taskServer(t)
  return createHttpRunner({ lane: 'contract', config: { target: `${url}/tasks` }, root: '/', logger })
})

const MODULE = `
exports.createRunner = (options) => ({
  async run(job, { signal }) {
    const mode = job.arguments.MODE
    if (mode === 'succeed') return { status: 'succeeded' }
    if (mode === 'fail') return { status: 'failed', reason: 'failing on purpose' }
    if (mode === 'hang') return new Promise((resolve) => signal.addEventListener('abort', () => resolve({ status: 'failed', reason: String(signal.reason) })))
    if (mode === 'noisy') return { status: 'succeeded', output: Array.from({ length: 10000 }, (_, i) => 'line ' + i + '\\n').join('').slice(-4096) }
    if (mode === 'echo') return { status: 'succeeded', output: options.lane + ': ' + job.arguments.GREETING }
    if (mode === 'garbage') return 42
    throw new Error('no such mode: ' + mode)
  },
})
`

contract('module', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  writeFileSync(path.join(dir, 'mine.js'), MODULE)
  return loadRunnerModule('./mine.js', { lane: 'contract', config: {}, root: dir, logger })
})

contract('dispatch', async (t) => {
  // A Dispatch Job whose program behaves as MODE says; its message names the repository and commit.
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const repo = path.join(dir, 'job')
  execFileSync('git', ['init', '--quiet', repo])
  writeFileSync(path.join(repo, 'run.sh'), SCRIPT)
  chmodSync(path.join(repo, 'run.sh'), 0o755)
  writeFileSync(path.join(repo, '.dispatch.yml'), 'arguments:\n  - {key: MODE}\n  - {key: GREETING}\nrun: ./run.sh\n')
  const git = (...args: string[]): string => execFileSync('git', ['-C', repo, '-c', 'user.email=t@t', '-c', 'user.name=t', ...args], { encoding: 'utf8' }).trim()
  git('add', '-A')
  git('commit', '--quiet', '-m', 'job')
  const ref = git('rev-parse', 'HEAD')
  const repos = new DispatchRepos({ dir: path.join(dir, 'cache'), allowedRepos: [repo], logger, killGraceMs: 1000 })
  return {
    runner: createDispatchRunner(repos, 1000),
    message: (mode) => JSON.stringify({ repo_url: repo, ref, arguments: { MODE: mode, GREETING: 'hello-from-the-job' } }),
  }
})

t.test('http: 4xx is final, 5xx and unreachable targets are retried, job targets must be allowed', async (t) => {
  const url = await taskServer(t)
  const runner = createHttpRunner({ lane: 'contract', config: { target: `${url}/tasks`, allowed_targets: [`${url}/status/`] }, root: '/', logger })
  const signal = new AbortController().signal
  t.match(await run(runner, 'bad'), { status: 'failed', httpStatus: 404, retry: false, reason: 'HTTP 404' })
  t.match(await run(runner, 'fail'), { status: 'failed', httpStatus: 500, retry: true })
  t.match(await runner.run({ ...job('succeed'), target: `${url}/status/404` }, { signal, logger }), { status: 'failed', httpStatus: 404 }, 'an allowed job target is used')
  t.match(await runner.run({ ...job('succeed'), target: 'http://elsewhere.invalid/x' }, { signal, logger }), { status: 'failed', retry: false, reason: /not under this lane's allowed_targets/ })
  // A port that was just free and is closed again: nothing listens there.
  const closed = createServer()
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
  const port = (closed.address() as AddressInfo).port
  await new Promise((resolve) => closed.close(resolve))
  const nowhere = createHttpRunner({ lane: 'contract', config: { target: `http://127.0.0.1:${port}/never` }, root: '/', logger })
  const refused = await run(nowhere, 'succeed')
  t.match(refused, { status: 'failed', reason: /cannot reach .*ECONNREFUSED/ })
  t.not((refused as { retry?: boolean }).retry, false, 'retried')
  t.throws(() => createHttpRunner({ lane: 'x', config: {}, root: '/', logger }), /give "target"/)
  t.throws(() => createHttpRunner({ lane: 'x', config: { target: 'ftp://x' }, root: '/', logger }), /"target" must be an http or https URL/)
})

t.test('module: a module that cannot load, or exports no runner, is refused naming the file', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  writeFileSync(path.join(dir, 'throws.js'), 'throw new Error("broken on purpose")')
  writeFileSync(path.join(dir, 'empty.js'), 'exports.nothing = 1')
  const options = { lane: 'x', config: {}, root: dir, logger }
  t.throws(() => loadRunnerModule('./throws.js', options), /throws\.js failed to load: broken on purpose/)
  t.throws(() => loadRunnerModule('./empty.js', options), /empty\.js exports no createRunner/)
  t.throws(() => loadRunnerModule('./missing.js', options), /missing\.js does not exist/)
})

t.test('the daemon survives a runner module that throws or returns garbage: those jobs fail with a reason', async (t) => {
  const dir = tempDir()
  writeFileSync(path.join(dir, 'mine.js'), MODULE)
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ lanes: { mod: { runner: './mine.js' } } }))
  // The module path is relative to the root directory (the config file's, here DISPENSERD_ROOT).
  const d = await startDaemon({ dataDir: path.join(dir, 'data'), args: ['--config', path.join(dir, 'config.json')], env: { DISPENSERD_ROOT: dir } })
  t.teardown(async () => {
    await d.stop()
    removeDir(dir)
  })
  const hashes: Record<string, string> = {}
  for (const mode of ['garbage', 'explode', 'succeed']) {
    const r = await call(`${d.url}/schedule`, { lane: 'mod', message: JSON.stringify({ arguments: { MODE: mode, nested: { ok: true } } }) })
    hashes[mode] = String(r.body.hash)
  }
  await until(async () => (await call(`${d.url}/job?hash=${hashes.succeed}`)).body.state === 'succeeded', 'the good job to succeed')
  t.match((await call(`${d.url}/job?hash=${hashes.garbage}`)).body, { state: 'dead', last_run: { reason: 'the runner returned 42, not a result' } })
  t.match((await call(`${d.url}/job?hash=${hashes.explode}`)).body, { state: 'dead', last_run: { reason: 'the runner threw: no such mode: explode' } })
})

t.test('an http lane retries 5xx answers with backoff until the endpoint succeeds', async (t) => {
  let calls = 0
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => (++calls < 3 ? res.writeHead(503).end('busy') : res.writeHead(200).end('done')))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const dir = tempDir()
  const target = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ lanes: { hooks: { runner: 'http', target, retries: 5, backoff: { base: 0.05, max: 1 } } } }))
  const d = await startDaemon({ dataDir: path.join(dir, 'data'), args: ['--config', path.join(dir, 'config.json')] })
  t.teardown(async () => {
    await d.stop()
    removeDir(dir)
  })
  const r = await call(`${d.url}/schedule`, { lane: 'hooks', message: JSON.stringify({ arguments: { order: { id: 42, items: [1, 2] } } }) })
  await until(async () => (await call(`${d.url}/job?hash=${r.body.hash}`)).body.state === 'succeeded', 'the hook to succeed', 10_000)
  t.match((await call(`${d.url}/job?hash=${r.body.hash}`)).body, { attempts: 3, last_run: { http_status: 200, output: 'done' } })
  t.equal(calls, 3)
})
