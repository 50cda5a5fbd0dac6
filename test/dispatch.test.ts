import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import { parseDispatchfile } from '../src/runners/dispatch'
import { type Running, call, removeDir, runToExit, startDaemon, tempDir, until } from './helpers/daemon'

/**
 * Dispatch Jobs from git, end to end: a real local repository made by the test, with a
 * Dispatchfile whose build step "compiles" a shell program; the daemon fetches the commit,
 * builds it once and runs it with the job's arguments as environment variables.
 */

function git(repo: string, ...args: string[]): string {
  return execFileSync('git', ['-C', repo, '-c', 'user.email=t@example.com', '-c', 'user.name=t', ...args], { encoding: 'utf8' }).trim()
}

/** Commits `files` to `repo` (created if need be); returns the commit's SHA. */
function commit(repo: string, files: Record<string, string>): string {
  if (!existsSync(path.join(repo, '.git'))) execFileSync('git', ['init', '--quiet', repo])
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(repo, name), text)
  git(repo, 'add', '-A')
  git(repo, 'commit', '--quiet', '-m', 'change')
  return git(repo, 'rev-parse', 'HEAD')
}

interface Setup {
  d: Running
  repo: string
  sha: string
  builds: string
}

async function setup(t: Test, dispatch: Record<string, unknown> = {}): Promise<Setup> {
  const dir = tempDir()
  const repo = path.join(dir, 'echo-job')
  const builds = path.join(dir, 'builds.log')
  const sha = commit(repo, {
    '.dispatch.yml': `build:\n  - echo built >> ${builds}\n  - mkdir -p bin && cp echo.sh bin/echo && chmod +x bin/echo\narguments:\n  - {key: GOECHO, type: string, presence: required}\n  - {key: TIMES, type: integer, presence: optional}\nrun: ./bin/echo\n`,
    'echo.sh': '#!/bin/sh\necho "echo: $GOECHO x${TIMES:-1}"\n[ "$GOECHO" = "sleep" ] && sleep 30\nexit 0\n',
  })
  const config = path.join(dir, 'config.json')
  writeFileSync(config, JSON.stringify({ dispatch: { allowed_repos: [path.join(dir, 'echo')], concurrency: 2, ...dispatch } }))
  const d = await startDaemon({ dataDir: path.join(dir, 'data'), args: ['--config', config] })
  t.teardown(async () => {
    await d.stop()
    removeDir(dir)
  })
  return { d, repo, sha, builds }
}

async function queue(s: Setup, body: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
  return call(`${s.d.url}/v0/jobs/queue`, { repo_url: s.repo, ref: s.sha, ...body })
}

async function finished(s: Setup, hash: unknown): Promise<Record<string, unknown>> {
  await until(async () => ['succeeded', 'dead'].includes(String((await call(`${s.d.url}/job?hash=${hash}`)).body.state)), 'the job to finish', 15_000)
  return (await call(`${s.d.url}/job?hash=${hash}`)).body
}

t.test('a Dispatch Job is built once per commit and run with its arguments as environment variables', async (t) => {
  const s = await setup(t)
  const first = await queue(s, { arguments: { GOECHO: 'wheeeeeeee', TIMES: 3 } })
  t.same([first.status, first.body.code], [200, 0])
  const second = await queue(s, { ref: s.sha.slice(0, 10), arguments: { GOECHO: 'again' } })
  t.equal(second.status, 200, 'a short SHA works too')
  t.match(await finished(s, first.body.hash), { state: 'succeeded', lane: 'dispatch', last_run: { exit_code: 0, output: 'echo: wheeeeeeee x3\n' } })
  t.match(await finished(s, second.body.hash), { state: 'succeeded', last_run: { output: 'echo: again x1\n' } })
  t.equal(readFileSync(s.builds, 'utf8'), 'built\n', 'the build ran once for both jobs')
})

t.test('bad Dispatch Jobs are refused at queue time, naming the problem', async (t) => {
  const s = await setup(t)
  const cases: [Record<string, unknown>, number, number, RegExp][] = [
    [{ arguments: {} }, 400, 1, /argument "GOECHO" is required/],
    [{ arguments: { GOECHO: 'x', EXTRA: 1 } }, 400, 1, /"EXTRA" is not declared/],
    [{ arguments: { GOECHO: 'x', TIMES: 'three' } }, 400, 1, /"TIMES" must be an integer/],
    [{ ref: 'main', arguments: { GOECHO: 'x' } }, 400, 1, /"ref" must be a commit SHA/],
    [{ ref: '--upload-pack=touch /tmp/pwned', arguments: { GOECHO: 'x' } }, 400, 1, /"ref" must be a commit SHA/],
    [{ ref: 'f'.repeat(40), arguments: { GOECHO: 'x' } }, 400, 1, /commit f+ is not in/],
    [{ repo_url: '/elsewhere/repo', arguments: { GOECHO: 'x' } }, 403, 13, /not under dispatch.allowed_repos/],
    [{ lane: 'other', arguments: { GOECHO: 'x' } }, 400, 1, /Dispatch Jobs run on lane "dispatch"/],
  ]
  for (const [body, status, code, message] of cases) {
    const r = await queue(s, body)
    t.same([r.status, r.body.code], [status, code], JSON.stringify(body))
    t.match(String(r.body.message), message)
  }
  const direct = await call(`${s.d.url}/schedule`, { lane: 'dispatch', message: '{}' })
  t.same([direct.status, direct.body.code], [409, 12], 'the dispatch lane takes jobs only through /v0/jobs/queue')
  t.same(((await call(`${s.d.url}/`)).body.payload as { runners: Record<string, { started: number }> }).runners.dispatch!.started, 0, 'nothing ran')
})

t.test('a failing build fails the job with the step and its output; a fixed commit builds', async (t) => {
  const s = await setup(t, { retries: 0 })
  const broken = commit(s.repo, { '.dispatch.yml': 'build:\n  - echo "compiling" && exit 7\nrun: ./bin/echo\n' })
  const r = await queue(s, { ref: broken, arguments: {} })
  t.match(await finished(s, r.body.hash), { state: 'dead', last_run: { reason: /build failed: step 1 .* exit code 7/, output: /compiling/ } })
  const fixed = commit(s.repo, { '.dispatch.yml': 'build:\n  - mkdir -p bin && cp echo.sh bin/echo && chmod +x bin/echo\nrun: ./bin/echo\n' })
  const ok = await queue(s, { ref: fixed, arguments: {} })
  t.match(await finished(s, ok.body.hash), { state: 'succeeded' })
})

t.test('a Dispatch Job that runs past its timeout is stopped', async (t) => {
  const s = await setup(t, { timeout: 0.5, retries: 0 })
  const r = await queue(s, { arguments: { GOECHO: 'sleep' } })
  t.match(await finished(s, r.body.hash), { state: 'dead', last_run: { reason: 'timeout' } })
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
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ dispatch: { allowed_repos: ['https://x/'], runner: 'exec' } }))
  const refused = await runToExit(['--config', path.join(dir, 'config.json'), '--data-dir', path.join(dir, 'data'), '--address', '127.0.0.1:0'])
  t.equal(refused.code, 1)
  t.match(refused.stderr, /dispatch: "runner" and "arguments" come from each repository/)
})

t.test('Dispatchfiles are checked field by field', (t) => {
  t.match(parseDispatchfile('build:\n  - make\narguments:\n  - {key: A, type: integer, presence: required}\nrun: ./a\n', 'f'), { build: ['make'], arguments: [{ key: 'A', type: 'integer', required: true }], run: './a' })
  t.throws(() => parseDispatchfile('build: make\nrun: ./a\n', 'f'), /f: "build" must be a list/)
  t.throws(() => parseDispatchfile('build: []\n', 'f'), /"run" must name the program/)
  t.throws(() => parseDispatchfile('run: ./a\narguments:\n  - {key: "A B"}\n', 'f'), /arguments\[0\]\.key/)
  t.throws(() => parseDispatchfile('run: ./a\narguments:\n  - {key: A, type: float}\n', 'f'), /arguments\[0\]\.type/)
  t.throws(() => parseDispatchfile(': : :\n  - [', 'f'), /not valid YAML/)
  t.end()
})
