import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'
import { ApiError } from '../src/errors'
import { createLogger } from '../src/log'
import { DispatchError, DispatchRepos, createDispatchRunner, parseDispatchfile, validateDispatchArguments } from '../src/runners/dispatch'
import type { Runner, RunResult } from '../src/runners/runner'
import { type Running, call, removeDir, runToExit, startDaemon, tempDir, until } from './helpers/daemon'
import { commit, git, publish, serveGit } from './helpers/git-repos'

/**
 * Dispatch Jobs from git: real local repositories made by the test, whose Dispatchfile "compiles"
 * a shell program (copies it to bin/echo) and counts its builds in a file outside the checkout.
 * Most cases drive DispatchRepos and the runner directly; the last ones go through the daemon.
 */

const logger = createLogger('silent')
const execFileAsync = promisify(execFile)

interface Fixture {
  dir: string
  repo: string
  sha: string
  /** Gets a line per build of the echo job. */
  builds: string
  /** Written a second after the program starts, by a child it leaves running: proof the group was killed. */
  stray: string
  repos: DispatchRepos
  runner: Runner
}

function dispatchYml(builds: string, extraStep = ''): string {
  return [
    'build:',
    `  - echo built >> ${builds}`,
    '  - mkdir -p bin && cp echo.sh bin/echo && chmod +x bin/echo',
    ...(extraStep === '' ? [] : [`  - ${extraStep}`]),
    'arguments:',
    '  - {key: GOECHO, presence: required}',
    '  - {key: TIMES, type: integer}',
    'run: ./bin/echo',
    '',
  ].join('\n')
}

function fixture(t: Test): Fixture {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const repo = path.join(dir, 'repos', 'echo-job')
  mkdirSync(path.dirname(repo))
  const builds = path.join(dir, 'builds.log')
  const stray = path.join(dir, 'stray')
  const sha = commit(repo, {
    '.dispatch.yml': dispatchYml(builds),
    'echo.sh': [
      '#!/bin/sh',
      'echo "echo: $GOECHO x${TIMES:-1} job=$DISPENSERD_JOB_NUM secret=${DISPATCH_TEST_SECRET:-none}"',
      `[ "$GOECHO" = sleep ] && { (sleep 1; touch ${stray}) & sleep 30; }`,
      'exit 0',
      '',
    ].join('\n'),
  })
  const repos = new DispatchRepos({ dir: path.join(dir, 'cache'), allowedRepos: [path.join(dir, 'repos') + '/'], logger, killGraceMs: 500 })
  return { dir, repo, sha, builds, stray, repos, runner: createDispatchRunner(repos) }
}

function run(f: Fixture, message: Record<string, unknown> | string, signal = new AbortController().signal, jobNum = 1): Promise<RunResult> {
  const text = typeof message === 'string' ? message : JSON.stringify({ repo_url: f.repo, ref: f.sha, ...message })
  return f.runner.run({ lane: 'dispatch', jobNum, hash: 'a'.repeat(40), attempt: 1, priority: 512, message: text, arguments: {}, target: undefined }, { signal, logger })
}

function buildCount(f: Fixture): number {
  return existsSync(f.builds) ? readFileSync(f.builds, 'utf8').split('\n').filter(Boolean).length : 0
}

/** A run's timeout: the signal the dispatcher would abort after `ms`. */
function abortAfter(ms: number): AbortSignal {
  const controller = new AbortController()
  setTimeout(() => controller.abort('timeout'), ms)
  return controller.signal
}

/** A signal aborted once the fixture's build count reaches `builds` (the build is under way), not after a fixed time. */
function abortOnceBuilding(f: Fixture, builds: number, reason = 'timeout'): AbortSignal {
  const controller = new AbortController()
  until(() => buildCount(f) >= builds, 'the build to start', 30_000).then(
    () => controller.abort(reason),
    (err: unknown) => controller.abort(err),
  )
  return controller.signal
}

t.test('Dispatchfiles are checked field by field', (t) => {
  t.same(parseDispatchfile('build:\n  - make\narguments:\n  - {key: A, type: integer, presence: required}\n  - {key: B}\nrun: ./a\n', 'f'), {
    build: ['make'],
    arguments: [
      { key: 'A', type: 'integer', required: true },
      { key: 'B', type: 'string', required: false },
    ],
    run: './a',
  })
  t.same(parseDispatchfile('run: echo\n', 'f'), { build: [], arguments: [], run: 'echo' }, 'build and arguments are optional')
  const refused: [string, RegExp][] = [
    ['build: make\nrun: ./a\n', /^f: "build" must be a list of shell commands/],
    ['build:\n  - 3\nrun: ./a\n', /"build" must be a list/],
    ['build: []\n', /"run" must name the program/],
    ['run: ""\n', /"run" must name the program/],
    ['run: ./a --verbose\n', /"run" must name one program, not a command line/],
    ['run: ./a\narguments: {A: string}\n', /"arguments" must be a list/],
    ['run: ./a\narguments:\n  - A\n', /arguments\[0\] must be a mapping/],
    ['run: ./a\narguments:\n  - {key: "A B"}\n', /arguments\[0\]\.key must be an environment variable name/],
    ['run: ./a\narguments:\n  - {key: A}\n  - {key: A}\n', /arguments\[1\]: "A" is declared twice/],
    ['run: ./a\narguments:\n  - {key: A, type: float}\n', /arguments\[0\]\.type must be one of string, integer, number, boolean/],
    ['run: ./a\narguments:\n  - {key: A, presence: always}\n', /arguments\[0\]\.presence must be required or optional/],
    ['run: ./a\narguments:\n  - {key: A, presense: required}\n', /arguments\[0\]: unknown field "presense"/],
    ['run: ./a\nargument: []\n', /unknown field "argument"/],
    ['- run\n', /expected a mapping/],
    [': : :\n  - [', /^f: not valid YAML/],
  ]
  for (const [text, message] of refused) t.throws(() => parseDispatchfile(text, 'f'), message, JSON.stringify(text))
  t.end()
})

t.test('arguments are checked against the Dispatchfile when a job is queued', (t) => {
  const file = parseDispatchfile(dispatchYml('/dev/null'), 'f')
  t.same(validateDispatchArguments(file, { GOECHO: 'hi', TIMES: 3 }), { GOECHO: 'hi', TIMES: 3 })
  t.same(validateDispatchArguments(file, { GOECHO: 'hi', TIMES: null }), { GOECHO: 'hi' }, 'null leaves an optional argument out')
  const refused: [unknown, RegExp][] = [
    [undefined, /argument "GOECHO" is required/],
    [{ TIMES: 1 }, /argument "GOECHO" is required/],
    [{ GOECHO: 'hi', EXTRA: 1 }, /argument "EXTRA" is not declared/],
    [{ GOECHO: 'hi', TIMES: 'three' }, /argument "TIMES" must be an integer/],
    [{ GOECHO: 42 }, /argument "GOECHO" must be a string/],
    [['GOECHO'], /"arguments" must be an object/],
    [{ GOECHO: 'a\u0000b' }, /^argument "GOECHO" contains a NUL character/],
    [JSON.parse(`{"GOECHO": ${'['.repeat(20_000)}1${']'.repeat(20_000)}}`), /^argument "GOECHO" must be a string, got an array$/],
  ]
  for (const [i, [args, message]] of refused.entries()) {
    t.throws(() => validateDispatchArguments(file, args), { constructor: ApiError, codeName: 'invalid_data', message }, `case ${i}`)
  }
  t.end()
})

t.test('only allowed repositories, and only commit SHAs, ever reach git', async (t) => {
  const f = fixture(t)
  const prefix = path.join(f.dir, 'repos')
  t.ok(f.repos.isAllowed(f.repo))
  t.notOk(new DispatchRepos({ dir: f.dir, allowedRepos: [], logger }).isAllowed(f.repo), 'an empty list allows nothing')
  const bare = new DispatchRepos({ dir: f.dir, allowedRepos: ['https://git.example/team', 'git@git.example:'], logger })
  t.ok(bare.isAllowed('https://git.example/team/echo.git'))
  t.ok(bare.isAllowed('git@git.example:team/echo.git'))
  t.notOk(bare.isAllowed('https://git.example/team-b/echo.git'), 'a prefix ends at a path boundary')
  t.notOk(bare.isAllowed('https://git.example/team.evil.net/x'), 'nor at a look-alike host')
  for (const url of [`${prefix}/../elsewhere`, `${prefix}/%2E%2e/elsewhere`, `${prefix}/./echo-job`, `-u${prefix}/x`, `${prefix}/echo\njob`, '/elsewhere/repo']) {
    t.notOk(f.repos.isAllowed(url), `refused: ${JSON.stringify(url)}`)
  }
  await t.rejects(f.repos.dispatchfile('/elsewhere/repo', f.sha), { constructor: DispatchError, message: /not under dispatch.allowed_repos/ })
  const pwned = path.join(f.dir, 'pwned')
  for (const ref of ['main', 'HEAD', f.sha.slice(0, 6), `${f.sha}0`, `--upload-pack=touch ${pwned}`, `${f.sha.slice(0, 7)} --all`]) {
    await t.rejects(f.repos.dispatchfile(f.repo, ref), { constructor: DispatchError, message: '"ref" must be a commit SHA (7 to 40 hex digits)' }, ref)
  }
  t.notOk(existsSync(pwned))
  t.notOk(existsSync(path.join(f.dir, 'cache')), 'git never ran')
})

t.test('allowed_repos is compared as parsed addresses: dot segments, look-alike hosts and user names do not get out', (t) => {
  const repos = new DispatchRepos({ dir: '/nonexistent', allowedRepos: ['https://git.example', 'git@git.example:team/', '/srv/repos'], logger })
  for (const url of ['https://git.example/x.git', 'https://GIT.example:443/x', 'git@git.example:team/echo.git', 'ssh://git@git.example/~/team/echo.git', '/srv/repos/echo', 'file:///srv/repos/echo']) {
    t.ok(repos.isAllowed(url), `allowed: ${url}`)
  }
  const refused: [string, RegExp][] = [
    ['https://git.example.evil.net/x', /is not under dispatch.allowed_repos/],
    ['https://git.example@evil.net/x', /carries a user name/],
    ['https://git.example:8443/x', /is not under/],
    ['git@git.example:../other/repo', /has a "\." or "\.\." path segment/],
    ['git@git.example:team/../../other', /path segment/],
    ['git@git.example:~other/team/x', /is not under/],
    ['alice@git.example:team/x', /is not under/],
    ['/srv/repos/../elsewhere', /path segment/],
    ['/srv/repos-old/x', /is not under/],
    ['ext::sh', /is not a URL/],
  ]
  for (const [url, why] of refused) {
    t.notOk(repos.isAllowed(url), `refused: ${url}`)
    t.match(repos.refusal(url), why)
  }
  t.throws(() => new DispatchRepos({ dir: '/nonexistent', allowedRepos: ['https://git.example/team/../'], logger }), /allowed_repos\[0\] "https:\/\/git.example\/team\/..\/" has a "." or ".." path segment/)
  t.end()
})

t.test('over HTTP, where git itself would fetch "<allowed>/../evil", the repository is refused before git runs', async (t) => {
  const f = fixture(t)
  const served = path.join(f.dir, 'served')
  mkdirSync(path.join(served, 'allowed'), { recursive: true })
  mkdirSync(path.join(served, 'evil'))
  const pwned = path.join(f.dir, 'pwned')
  const evil = path.join(f.dir, 'evil-src')
  const evilSha = commit(evil, { '.dispatch.yml': `build:\n  - touch ${pwned}\nrun: /bin/true\n` })
  publish(evil, path.join(served, 'evil'), 'repo.git')
  publish(f.repo, path.join(served, 'allowed'), 'echo.git')
  const server = await serveGit(served)
  t.teardown(() => server.close())
  const escape = `${server.url}/allowed/../evil/repo.git`
  // (Not execFileSync: the server answers from this process.)
  t.match((await execFileAsync('git', ['ls-remote', escape], { encoding: 'utf8' })).stdout, evilSha, 'git itself fetches the repository outside')
  const repos = new DispatchRepos({ dir: path.join(f.dir, 'http-cache'), allowedRepos: [`${server.url}/allowed`], logger })
  const before = server.requests.length
  for (const url of [escape, `${server.url}/allowed/%2e%2E/evil/repo.git`, `${server.url}/allowed/./../evil/repo.git`, `${server.url}/allowed-not/repo.git`]) {
    await t.rejects(repos.dispatchfile(url, evilSha), { constructor: DispatchError, message: /path segment|is not under/ }, url)
  }
  const runner = createDispatchRunner(repos)
  const result = await runner.run({ lane: 'dispatch', jobNum: 1, hash: 'a'.repeat(40), attempt: 1, priority: 512, message: JSON.stringify({ repo_url: escape, ref: evilSha, arguments: {} }), arguments: {}, target: undefined }, { signal: new AbortController().signal, logger })
  t.match(result, { status: 'failed', retry: false, reason: /path segment/ })
  t.equal(server.requests.length, before, 'the server was never asked')
  t.notOk(existsSync(pwned), 'no build step of the outside repository ran')
  t.equal((await repos.dispatchfile(`${server.url}/allowed/echo.git`, f.sha)).sha, f.sha, 'a repository under the prefix is fetched over HTTP')
})

t.test('a commit is fetched into the mirror once; unknown commits and missing Dispatchfiles are refused', async (t) => {
  const f = fixture(t)
  const { sha, file } = await f.repos.dispatchfile(f.repo, f.sha.slice(0, 8).toUpperCase())
  t.equal(sha, f.sha, 'a short SHA resolves to the full one')
  t.equal(file.run, './bin/echo')
  await t.rejects(f.repos.dispatchfile(f.repo, 'f'.repeat(40)), { constructor: DispatchError, transient: false, message: `commit ${'f'.repeat(40)} is not in ${f.repo}` })
  const withFile = commit(f.repo, { README: 'the Dispatchfile goes next' })
  git(f.repo, 'rm', '--quiet', '.dispatch.yml')
  const missing = commit(f.repo, {})
  await t.rejects(f.repos.dispatchfile(f.repo, missing), { message: new RegExp(`^commit ${missing} of .* has no readable .dispatch.yml`) })
  const broken = commit(f.repo, { '.dispatch.yml': 'build: make\nrun: ./a\n' })
  await t.rejects(f.repos.dispatchfile(f.repo, broken), { message: new RegExp(`^.dispatch.yml of ${f.repo} at ${broken.slice(0, 12)}: "build" must be a list`) })
  // With the origin gone, commits already fetched still answer, from the mirror on disk.
  renameSync(f.repo, `${f.repo}-gone`)
  const restarted = new DispatchRepos({ dir: path.join(f.dir, 'cache'), allowedRepos: [f.repo], logger })
  t.equal((await restarted.dispatchfile(f.repo, withFile)).sha, withFile)
  await t.rejects(restarted.dispatchfile(f.repo, 'e'.repeat(40)), { constructor: DispatchError, transient: true, message: /^cannot fetch / })
})

t.test('a commit is built once and its program gets the job’s arguments as environment variables', async (t) => {
  const f = fixture(t)
  process.env.DISPATCH_TEST_SECRET = 'the daemon’s own'
  t.teardown(() => delete process.env.DISPATCH_TEST_SECRET)
  const [first, second] = await Promise.all([run(f, { arguments: { GOECHO: 'wheee', TIMES: 3 } }, undefined, 1), run(f, { ref: f.sha.slice(0, 10), arguments: { GOECHO: 'again' } }, undefined, 2)])
  t.same(first, { status: 'succeeded', exitCode: 0, output: 'echo: wheee x3 job=1 secret=none\n' })
  t.same(second, { status: 'succeeded', exitCode: 0, output: 'echo: again x1 job=2 secret=none\n' })
  t.equal(buildCount(f), 1, 'two jobs at once shared one build')
  const restarted = createDispatchRunner(new DispatchRepos({ dir: path.join(f.dir, 'cache'), allowedRepos: [f.repo], logger }))
  const later = await restarted.run({ lane: 'dispatch', jobNum: 3, hash: 'b'.repeat(40), attempt: 1, priority: 512, message: JSON.stringify({ repo_url: f.repo, ref: f.sha, arguments: { GOECHO: 'later' } }), arguments: {}, target: undefined }, { signal: new AbortController().signal, logger })
  t.match(later, { status: 'succeeded', output: 'echo: later x1 job=3 secret=none\n' })
  t.equal(buildCount(f), 1, 'a finished build survives a restart')
})

t.test('a failing build fails the job with the step and its output, is built again next time, and a fixed commit builds', async (t) => {
  const f = fixture(t)
  const broken = commit(f.repo, { '.dispatch.yml': dispatchYml(f.builds, 'echo compiling && echo "main.go line 3 oops" >&2 && exit 7') })
  const failed = await run(f, { ref: broken, arguments: { GOECHO: 'x' } })
  t.match(failed, { status: 'failed', reason: 'build failed: step 3 exited with code 7', output: /\$ echo compiling && .*\ncompiling\nmain\.go line 3 oops\n$/ })
  t.not((failed as { retry?: boolean }).retry, false, 'retried as the lane says')
  t.same(readdirSync(path.join(f.dir, 'cache', 'builds')), [], 'nothing half-built is left behind')
  t.match(await run(f, { ref: broken, arguments: { GOECHO: 'x' } }), { status: 'failed', reason: 'build failed: step 3 exited with code 7' })
  t.equal(buildCount(f), 2, 'a failed build is not kept: the next try builds again')
  const fixed = commit(f.repo, { '.dispatch.yml': dispatchYml(f.builds, 'echo compiling') })
  t.match(await run(f, { ref: fixed, arguments: { GOECHO: 'fixed' } }), { status: 'succeeded', output: /^echo: fixed / })
})

t.test('a run past its timeout is stopped with everything it started', async (t) => {
  const f = fixture(t)
  await run(f, { arguments: { GOECHO: 'warm' } }) // builds, so the timeout below falls in the run
  const started = Date.now()
  t.match(await run(f, { arguments: { GOECHO: 'sleep' } }, abortAfter(300)), { status: 'failed', reason: 'timeout' })
  t.ok(Date.now() - started < 3000, 'promptly')
  await new Promise((resolve) => setTimeout(resolve, 1200))
  t.notOk(existsSync(f.stray), 'the child it left running was killed with it')
})

t.test('a job that gives up on a shared build does not stop it for others; the last one to give up does', async (t) => {
  const f = fixture(t)
  const slow = commit(f.repo, { '.dispatch.yml': dispatchYml(f.builds, 'sleep 1') })
  const message = { ref: slow, arguments: { GOECHO: 'patient' } }
  const [impatient, patient] = await Promise.all([run(f, message, abortOnceBuilding(f, 1)), run(f, message)])
  t.same(impatient, { status: 'failed', reason: 'timeout' })
  t.match(patient, { status: 'succeeded', output: /^echo: patient / })
  t.equal(buildCount(f), 1)
  const slower = commit(f.repo, { '.dispatch.yml': dispatchYml(f.builds, 'sleep 1 && echo v2') })
  t.same(await run(f, { ...message, ref: slower }, abortOnceBuilding(f, 2, 'shutdown')), { status: 'failed', reason: 'shutdown' })
  t.notOk(readdirSync(path.join(f.dir, 'cache', 'builds')).some((name) => name.endsWith(`${slower}.built`)), 'the stopped build is not marked built')
  t.match(await run(f, { ...message, ref: slower }), { status: 'succeeded' }, 'the next try builds it')
  t.equal(buildCount(f), 3)
})

t.test('jobs that can never run are failed for good', async (t) => {
  const f = fixture(t)
  t.match(await run(f, 'not json'), { status: 'failed', retry: false, reason: /message must be \{"repo_url", "ref", "arguments"\}/ })
  t.match(await run(f, { arguments: {} }), { status: 'failed', retry: false, reason: 'argument "GOECHO" is required' })
  t.match(await run(f, { repo_url: '/elsewhere/repo', arguments: {} }), { status: 'failed', retry: false, reason: /not under dispatch.allowed_repos/ })
  t.match(await run(f, { ref: 'main', arguments: {} }), { status: 'failed', retry: false, reason: /must be a commit SHA/ })
  t.equal(buildCount(f), 0)
})

/** Through the daemon: POST /v0/jobs/queue checks the job, the dispatch lane runs it. */
async function daemonWithDispatch(t: Test, f: Fixture): Promise<Running> {
  const config = path.join(f.dir, 'config.json')
  writeFileSync(config, JSON.stringify({ dispatch: { allowed_repos: [path.join(f.dir, 'repos') + '/'], concurrency: 2 } }))
  const d = await startDaemon({ dataDir: path.join(f.dir, 'data'), args: ['--config', config] })
  t.teardown(() => d.stop())
  return d
}

t.test('the daemon queues Dispatch Jobs after checking them, and runs them', async (t) => {
  const f = fixture(t)
  const d = await daemonWithDispatch(t, f)
  const queue = (body: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> => call(`${d.url}/v0/jobs/queue`, { repo_url: f.repo, ref: f.sha, ...body })
  const cases: [Record<string, unknown>, number, number, RegExp][] = [
    [{ arguments: {} }, 400, 1, /argument "GOECHO" is required/],
    [{ arguments: { GOECHO: 'x', TIMES: 'three' } }, 400, 1, /"TIMES" must be an integer/],
    [{ ref: '--upload-pack=touch /tmp/pwned', arguments: { GOECHO: 'x' } }, 400, 1, /"ref" must be a commit SHA/],
    [{ ref: 'f'.repeat(40), arguments: { GOECHO: 'x' } }, 400, 1, /commit f+ is not in/],
    [{ repo_url: '/elsewhere/repo', arguments: { GOECHO: 'x' } }, 403, 13, /not under dispatch.allowed_repos/],
    [{ arguments: { GOECHO: 'a\u0000b' } }, 400, 1, /^argument "GOECHO" contains a NUL character/],
  ]
  for (const [body, status, code, message] of cases) {
    const r = await queue(body)
    t.same([r.status, r.body.code], [status, code], JSON.stringify(body))
    t.match(String(r.body.message), message)
  }
  // Written as text: 20,000 levels are more than JSON.stringify can take (they once answered 500).
  const deep = await call(`${d.url}/v0/jobs/queue`, `{"repo_url": ${JSON.stringify(f.repo)}, "ref": "${f.sha}", "arguments": {"GOECHO": ${'['.repeat(20_000)}1${']'.repeat(20_000)}}}`)
  t.same([deep.status, deep.body.code], [400, 1], 'a deep value')
  t.match(String(deep.body.message), /^argument "GOECHO" must be a string, got an array$/)
  const queued = await queue({ arguments: { GOECHO: 'wheeeeeeee', TIMES: 3 } })
  t.same([queued.status, queued.body.code], [200, 0])
  const job = async (): Promise<Record<string, unknown>> => (await call(`${d.url}/job?hash=${queued.body.hash}`)).body
  await until(async () => ['succeeded', 'dead'].includes(String((await job()).state)), 'the job to finish', 10_000)
  t.match(await job(), { state: 'succeeded', lane: 'dispatch', last_run: { exit_code: 0, output: /^echo: wheeeeeeee x3 / } })
  const steps = d.logs.filter((l) => l.msg === 'dispatch: build step')
  t.ok(steps.length > 0 && steps.every((l) => typeof l.step === 'number' && l.steps === steps.length && l.repo === f.repo), 'each build step is logged as it starts, with the repository and its place')
})

t.test('an allowed_repos prefix that does not parse stops the daemon at start, naming it', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  for (const [prefix, wanted] of [
    ['https://git.example/team/../', /dispatch: allowed_repos\[0\] "https:\/\/git.example\/team\/..\/" has a "\." or "\.\." path segment/],
    ['repos/', /allowed_repos\[0\] "repos\/" is not a URL/],
    ['https://user:secret@git.example/', /carries a password/],
  ] as const) {
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ dispatch: { allowed_repos: [prefix] } }))
    const r = await runToExit(['--config', path.join(dir, 'config.json'), '--data-dir', path.join(dir, 'data'), '--address', '127.0.0.1:0'])
    t.equal(r.code, 1, prefix)
    t.match(r.stderr, wanted)
  }
  t.notOk(existsSync(path.join(dir, 'data')), 'the data directory was not touched')
})

t.test('Dispatch Jobs are off until an operator lists allowed repositories', async (t) => {
  const d = await startDaemon()
  t.teardown(async () => {
    await d.stop()
    removeDir(d.dataDir)
  })
  const r = await call(`${d.url}/v0/jobs/queue`, { repo_url: 'https://example.com/x.git', ref: 'a'.repeat(40), arguments: {} })
  t.same([r.status, r.body.code], [403, 13])
  t.match(String(r.body.message), /Dispatch Jobs are off/)
})
