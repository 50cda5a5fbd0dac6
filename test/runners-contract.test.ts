import { execFileSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { type RequestListener, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import t, { type Test } from 'tap'
import { createLogger } from '../src/log'
import { DispatchRepos, createDispatchRunner } from '../src/runners/dispatch'
import { createExecRunner } from '../src/runners/exec'
import { createHttpRunner } from '../src/runners/http'
import { loadRunnerModule } from '../src/runners/module'
import type { Runner, RunnerJob, RunResult } from '../src/runners/runner'
import { createContainerRunner } from '../src/runners/container'
import { call, removeDir, startDaemon, tempDir, until } from './helpers/daemon'
import { SUITE_LABELS, engineSkip, removeNamespace, testEngine, uniqueNamespace } from './helpers/engine'

/**
 * One contract every runner keeps, whatever it is built on (hono's habit: one suite, every
 * implementation). Each runner under test is told what to do through the job's MODE argument:
 * succeed, fail, hang, noisy (a lot of output), echo (show its GREETING argument).
 */

const logger = createLogger('silent')

function job(mode: string, extra: Record<string, unknown> = {}, message = '{}'): RunnerJob {
  return { lane: 'contract', jobNum: 7, hash: 'a'.repeat(40), attempt: 1, priority: 512, message, arguments: { MODE: mode, GREETING: 'hello-from-the-job', ...extra }, target: undefined }
}

/** A runner under test, and (for runners that read the job's message) how to say what to do in one. */
interface Subject {
  runner: Runner
  message?: (mode: string) => string
}

function run(runner: Runner, mode: string, signal = new AbortController().signal): Promise<RunResult> {
  return runner.run(job(mode), { signal, logger })
}

/** `promptMs`: how soon after the abort a hanging run must end (a container's kill and wait go through its engine). */
function contract(name: string, make: (t: Test) => Promise<Runner | Subject>, skip: string | false = false, promptMs = 2000): void {
  t.test(`${name} runner keeps the contract`, { skip }, async (t) => {
    const made = await make(t)
    const subject: Subject = 'run' in made ? { runner: made } : made
    const go = (mode: string, signal = new AbortController().signal): Promise<RunResult> =>
      subject.runner.run(job(mode, {}, subject.message?.(mode)), { signal, logger })
    t.match(await go('succeed'), { status: 'succeeded' }, 'success')
    const failed = await go('fail')
    t.match(failed, { status: 'failed' }, 'failure')
    t.type((failed as { reason: unknown }).reason, 'string', 'a failure has a reason')

    const controller = new AbortController()
    let abortedAt = Infinity
    setTimeout(() => {
      abortedAt = Date.now()
      controller.abort('timeout')
    }, 200)
    t.match(await go('hang', controller.signal), { status: 'failed', reason: 'timeout' }, 'a hanging run ends at its timeout')
    t.ok(Date.now() - abortedAt < promptMs, `promptly (${Date.now() - abortedAt} ms after the abort)`)

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

/** A real HTTP server on 127.0.0.1 (closed at the end of the test); resolves to its base URL. */
async function listen(t: Test, handler: RequestListener): Promise<string> {
  const server = createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** A task endpoint that behaves as the task's MODE says. */
function taskServer(t: Test): Promise<string> {
  return listen(t, (req, res) => {
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

contract(
  'container',
  async (t) => {
    // The same script, as the command of a container of the test image; MODE arrives in its environment.
    const namespace = uniqueNamespace()
    t.teardown(() => removeNamespace(namespace))
    const config = { engine: testEngine!.url, image: testEngine!.image, command: ['sh', '-c', SCRIPT], namespace, labels: SUITE_LABELS, keep_exited_for: 0, timeout: 30 }
    const runner = createContainerRunner({ lane: 'contract', config, root: '/', logger })
    t.teardown(() => runner.close?.())
    return runner
  },
  engineSkip,
  // podman's kill and wait take 0.2-1 s here, and several seconds on a loaded machine.
  10_000,
)

t.test('http: 4xx is final, 5xx and unreachable targets are retried', async (t) => {
  const url = await taskServer(t)
  const runner = createHttpRunner({ lane: 'contract', config: { target: `${url}/tasks` }, root: '/', logger })
  t.match(await run(runner, 'bad'), { status: 'failed', httpStatus: 404, retry: false, reason: 'HTTP 404', output: 'no such task' })
  t.match(await run(runner, 'fail'), { status: 'failed', httpStatus: 500, retry: true, reason: 'HTTP 500' })
  // A port that was just free and is closed again: nothing listens there.
  const closed = createServer()
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
  const port = (closed.address() as AddressInfo).port
  await new Promise((resolve) => closed.close(resolve))
  const nowhere = createHttpRunner({ lane: 'contract', config: { target: `http://127.0.0.1:${port}/never` }, root: '/', logger })
  const refused = await run(nowhere, 'succeed')
  t.match(refused, { status: 'failed', reason: /^cannot reach http:\/\/127\.0\.0\.1:\d+\/never: connection refused \(ECONNREFUSED\)$/ })
  t.not((refused as { retry?: boolean }).retry, false, 'retried')
})

t.test('http: the POST is JSON naming the task, with the job’s arguments as they are', async (t) => {
  const seen: unknown[] = []
  const url = await listen(t, (req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => (body += c.toString()))
    req.on('end', () => {
      seen.push({ method: req.method, path: req.url, contentType: req.headers['content-type'], body: JSON.parse(body) })
      res.writeHead(204).end()
    })
  })
  const args = { order: { id: 42, items: [1, 2] }, rush: true }
  const named = createHttpRunner({ lane: 'hooks', config: { target: `${url}/tasks`, task_name: 'ship-order' }, root: '/', logger })
  t.match(await named.run({ ...job('succeed'), arguments: args }, { signal: new AbortController().signal, logger }), { status: 'succeeded', httpStatus: 204, output: '' })
  const unnamed = createHttpRunner({ lane: 'hooks', config: { target: `${url}/tasks` }, root: '/', logger })
  await unnamed.run({ ...job('succeed'), arguments: {} }, { signal: new AbortController().signal, logger })
  t.same(seen, [
    { method: 'POST', path: '/tasks', contentType: 'application/json', body: { taskName: 'ship-order', taskArgs: args } },
    { method: 'POST', path: '/tasks', contentType: 'application/json', body: { taskName: 'hooks', taskArgs: {} } },
  ])
})

t.test('http: a job’s own target is used only under allowed_targets, compared as a parsed URL', async (t) => {
  const url = await taskServer(t)
  const runner = createHttpRunner({ lane: 'contract', config: { allowed_targets: [`${url}/status/`, 'http://localhost'] }, root: '/', logger })
  const signal = new AbortController().signal
  const to = (target: string | undefined): Promise<RunResult> => runner.run({ ...job('succeed'), target }, { signal, logger })
  t.match(await to(`${url}/status/404`), { status: 'failed', httpStatus: 404 }, 'an allowed job target is used')
  const refusals: [string | undefined, RegExp][] = [
    ['http://elsewhere.invalid/x', /is not under this lane's allowed_targets/],
    [`${url}/status/../admin`, /is not under this lane's allowed_targets/],
    ['http://localhost.elsewhere.invalid/x', /is not under this lane's allowed_targets/],
    [`http://localhost@127.0.0.1:${new URL(url).port}/status/404`, /carries a user name or password/],
    ['status/404', /is not a URL/],
    ['file:///etc/passwd', /is not an http or https URL/],
    [undefined, /the job names no target and the lane has none/],
  ]
  for (const [target, reason] of refusals) t.match(await to(target), { status: 'failed', retry: false, reason }, String(target))
  // A prefix without a trailing slash ends at a path segment all the same.
  const bare = createHttpRunner({ lane: 'contract', config: { allowed_targets: [`${url}/status`] }, root: '/', logger })
  const toBare = (target: string): Promise<RunResult> => bare.run({ ...job('succeed'), target }, { signal, logger })
  t.match(await toBare(`${url}/status/404`), { status: 'failed', httpStatus: 404 })
  t.match(await toBare(`${url}/statusx/404`), { status: 'failed', retry: false, reason: /is not under this lane's allowed_targets/ }, 'a look-alike path')
  t.match(await toBare(`${url.replace('127.0.0.1', 'localhost')}/status/404`), { status: 'failed', retry: false, reason: /is not under/ }, 'another host name')
})

t.test('http: a lane configured wrongly is refused at creation, naming the key', async (t) => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{}, /give "target"/],
    [{ target: 'ftp://app/x' }, /"target" must be an http or https URL/],
    [{ target: 'app/x' }, /"target" must be an http or https URL/],
    [{ target: 42 }, /"target" must be an http or https URL/],
    [{ target: 'http://user:secret@app/x' }, /"target" .*no user name or password/],
    [{ allowed_targets: 'http://app/' }, /"allowed_targets" must be a list/],
    [{ allowed_targets: ['http://app/', 7] }, /"allowed_targets\[1\]" must be/],
    [{ allowed_targets: ['http://app/hooks?key=1'] }, /"allowed_targets\[0\]" must be a URL prefix with no query or fragment/],
    [{ target: 'http://app/x', task_name: 3 }, /"task_name" must be a non-empty string/],
  ]
  for (const [config, wanted] of cases) t.throws(() => createHttpRunner({ lane: 'x', config, root: '/', logger }), wanted, JSON.stringify(config))
})

t.test('module: createRunner, a default export and module.exports = function all load', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const make = "(options) => ({ run: async () => ({ status: 'succeeded', output: options.lane + ' ' + options.config.greeting }) })"
  const modules = { 'named.js': `exports.createRunner = ${make}`, 'default.js': `exports.default = ${make}`, 'function.cjs': `module.exports = ${make}` }
  mkdirSync(path.join(dir, 'runners'))
  for (const [name, text] of Object.entries(modules)) {
    writeFileSync(path.join(dir, 'runners', name), text)
    const runner = loadRunnerModule(`./runners/${name}`, { lane: 'mod', config: { greeting: 'hi' }, root: dir, logger })
    t.match(await run(runner, 'succeed'), { status: 'succeeded', output: 'mod hi' }, name)
  }
})

t.test('module: a module that cannot load, or exports no runner, is refused naming the file', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const modules = {
    'throws.js': 'throw new Error("broken on purpose")',
    'syntax.js': 'exports.createRunner = (',
    'empty.js': 'exports.nothing = 1',
    'null.js': 'module.exports = null',
    'refuses.js': 'exports.createRunner = () => { throw new Error("no settings") }',
    'runless.js': 'exports.createRunner = () => ({})',
  }
  for (const [name, text] of Object.entries(modules)) writeFileSync(path.join(dir, name), text)
  const options = { lane: 'x', config: {}, root: dir, logger }
  const cases: [string, RegExp][] = [
    ['./throws.js', /throws\.js failed to load: broken on purpose/],
    ['./syntax.js', /syntax\.js failed to load: /],
    ['./empty.js', /empty\.js exports no createRunner/],
    ['./null.js', /null\.js exports no createRunner/],
    ['./refuses.js', /refuses\.js: createRunner threw: no settings/],
    ['./runless.js', /runless\.js: createRunner returned no object with a run/],
    ['./missing.js', /missing\.js does not exist/],
  ]
  for (const [spec, wanted] of cases) t.throws(() => loadRunnerModule(spec, options), wanted, spec)
})

t.test('module: a run that throws, rejects or resolves to garbage is a failed result; close is passed on', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  writeFileSync(
    path.join(dir, 'wild.js'),
    `exports.createRunner = () => ({
      run(job) {
        const mode = job.arguments.MODE
        if (mode === 'throw') throw new Error('thrown at once')
        if (mode === 'reject') return Promise.reject(new Error('rejected later'))
        if (mode === 'reasonless') return Promise.resolve({ status: 'failed' })
        if (mode === 'sideways') return Promise.resolve({ status: 'sideways' })
        return Promise.resolve('done')
      },
      close() { require('node:fs').writeFileSync(__dirname + '/closed', 'yes') },
    })`,
  )
  const runner = loadRunnerModule('./wild.js', { lane: 'x', config: {}, root: dir, logger })
  const cases: [string, string][] = [
    ['throw', 'the runner threw: thrown at once'],
    ['reject', 'the runner threw: rejected later'],
    ['reasonless', 'the runner gave no reason'],
    ['sideways', 'the runner returned a result with status "sideways"'],
    ['string', 'the runner returned "done", not a result'],
  ]
  for (const [mode, reason] of cases) t.match(await run(runner, mode), { status: 'failed', reason }, mode)
  await runner.close?.()
  t.ok(existsSync(path.join(dir, 'closed')), 'the module’s close ran')
})

/** Processes of a process group that are still alive (zombies waiting for a reaper are not). */
function liveMembers(pgid: number): number[] {
  const members: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      // After the command name in parentheses: state, parent pid, process group.
      const [state, , group] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (Number(group) === pgid && state !== 'Z') members.push(Number(entry))
    } catch {
      // it ended while we looked
    }
  }
  return members
}

t.test('exec: a timeout stops the whole process group, SIGKILL for what ignores SIGTERM', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const script = path.join(dir, 'spawns.sh')
  const pidFile = path.join(dir, 'pid')
  // Two children: one that dies on SIGTERM, one that ignores it; `$$` is the group's id.
  writeFileSync(script, `#!/bin/sh\nsleep 60 &\n(trap '' TERM; exec sleep 61) &\necho $$ > "$PID_FILE"\nwait\n`)
  chmodSync(script, 0o755)
  const runner = createExecRunner({ lane: 'x', config: { command: [script], kill_grace: 0.5 }, root: dir, logger })
  const controller = new AbortController()
  const result = runner.run({ ...job('hang'), arguments: { PID_FILE: pidFile } }, { signal: controller.signal, logger })
  let pgid = 0
  await until(() => existsSync(pidFile) && (pgid = Number(readFileSync(pidFile, 'utf8'))) > 0 && liveMembers(pgid).length >= 3, 'the script and its two children')
  const abortedAt = Date.now()
  controller.abort('timeout')
  t.match(await result, { status: 'failed', reason: 'timeout' })
  t.ok(Date.now() - abortedAt < 2000, `promptly (${Date.now() - abortedAt} ms after the abort)`)
  await until(() => liveMembers(pgid).length === 0, `no process left in group ${pgid}`, 1000)
  t.pass(`group ${pgid} is empty`)
})

t.test('exec: a run ends when its program exits, though a child it left behind holds stdout', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const script = path.join(dir, 'leaves.sh')
  writeFileSync(script, '#!/bin/sh\nsleep 30 &\necho started\nexit 0\n')
  chmodSync(script, 0o755)
  const runner = createExecRunner({ lane: 'x', config: { command: [script] }, root: dir, logger })
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort('timeout'), 1000)
  t.match(await runner.run(job('succeed'), { signal: controller.signal, logger }), { status: 'succeeded', exitCode: 0, output: 'started\n' })
  clearTimeout(timer)
})

t.test('exec: a lane configured wrongly is refused at creation, naming the key', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  writeFileSync(path.join(dir, 'plain.txt'), 'not a program')
  const cases: [Record<string, unknown>, RegExp][] = [
    [{}, /"command" must be a non-empty array of strings/],
    [{ command: [] }, /"command" must be a non-empty array of strings/],
    [{ command: './run.sh' }, /"command" must be a non-empty array of strings/],
    [{ command: ['./missing.sh'] }, /"command": .*missing\.sh cannot be run/],
    [{ command: ['./plain.txt'] }, /"command": .*plain\.txt cannot be run/],
    [{ command: ['.'] }, /"command": .* cannot be run \(not a file\)/],
    [{ command: ['no-such-program-anywhere'] }, /"command": no-such-program-anywhere is not on PATH/],
    [{ command: ['/bin/true'], kill_grace: -1 }, /"kill_grace" must be a number of seconds/],
  ]
  for (const [config, wanted] of cases) t.throws(() => createExecRunner({ lane: 'x', config, root: dir, logger }), wanted, JSON.stringify(config))
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
