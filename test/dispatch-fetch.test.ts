import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import { createLogger } from '../src/log'
import { DispatchError, DispatchRepos } from '../src/runners/dispatch'
import { call, removeDir, startDaemon, tempDir, until } from './helpers/daemon'
import { type GitHttp, commit, processesMentioning, publish, serveGit } from './helpers/git-repos'

/**
 * Fetches for Dispatch Jobs, against real repositories: on disk, and over HTTP from a server in
 * this process that can hold requests unanswered, as a hung git server does. Whether git and its
 * helpers are still alive is read from /proc.
 */

const logger = createLogger('silent')

interface Served {
  dir: string
  /** The served root: `allowed/echo.git` exists. */
  server: GitHttp
  sha: string
  cache: string
}

async function served(t: Test): Promise<Served> {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const sha = commit(path.join(dir, 'src'), { '.dispatch.yml': 'run: /bin/true\n' })
  mkdirSync(path.join(dir, 'served', 'allowed'), { recursive: true })
  publish(path.join(dir, 'src'), path.join(dir, 'served', 'allowed'), 'echo.git')
  const server = await serveGit(path.join(dir, 'served'))
  t.teardown(() => server.close())
  return { dir, server, sha, cache: path.join(dir, 'cache') }
}

function mirrors(cache: string): string[] {
  const dir = path.join(cache, 'mirrors')
  return existsSync(dir) ? readdirSync(dir) : []
}

/** Fails the test at `ms` rather than waiting out a timeout the code under test may not have. */
function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  return Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms).unref())])
}

t.test('a repository that cannot be fetched says why in plain words and leaves no mirror behind', async (t) => {
  const s = await served(t)
  const local = path.join(s.dir, 'local')
  mkdirSync(local)
  const repos = new DispatchRepos({ dir: s.cache, allowedRepos: [`${local}/`, `${s.server.url}/allowed/`], logger })
  const missing = path.join(local, 'no-such-repo')
  await t.rejects(repos.dispatchfile(missing, s.sha), {
    constructor: DispatchError,
    transient: true,
    message: `cannot fetch ${missing}: '${missing}' does not appear to be a git repository; Could not read from remote repository.`,
  })
  const overHttp = `${s.server.url}/allowed/no-such-repo.git`
  const refused = await repos.dispatchfile(overHttp, s.sha).catch((err: unknown) => err as Error)
  t.match(refused, { message: new RegExp(`^cannot fetch ${overHttp}: repository '${overHttp}/' not found$`) })
  t.same(mirrors(s.cache), [], 'no mirror is kept for a repository that was never fetched')
  t.equal((await repos.dispatchfile(`${s.server.url}/allowed/echo.git`, s.sha)).sha, s.sha)
  await t.rejects(repos.dispatchfile(`${s.server.url}/allowed/echo.git`, 'f'.repeat(40)), { message: /is not in/ })
  t.equal(mirrors(s.cache).length, 1, 'a repository that was fetched keeps its mirror, even when a commit is not in it')
})

t.test('a fetch that hangs is stopped at its timeout, with every process git started', async (t) => {
  const s = await served(t)
  s.server.hold = /info\/refs/
  const repos = new DispatchRepos({ dir: s.cache, allowedRepos: [`${s.server.url}/allowed/`], logger, fetchTimeoutMs: 500 })
  const url = `${s.server.url}/allowed/echo.git`
  await t.rejects(within(10_000, repos.dispatchfile(url, s.sha)), { constructor: DispatchError, transient: true, message: `cannot fetch ${url}: no answer within 0.5 s` })
  // git-remote-http held the connection: killing git alone left it waiting on the server.
  await until(() => processesMentioning(s.server.url).length === 0 && s.server.held === 0, 'git and its helper to be gone')
  t.same(mirrors(s.cache), [], 'and its empty mirror is gone')
})

t.test('a caller that leaves stops its fetch, unless another caller still waits for it', async (t) => {
  const s = await served(t)
  s.server.hold = /info\/refs/
  const repos = new DispatchRepos({ dir: s.cache, allowedRepos: [`${s.server.url}/allowed/`], logger })
  const url = `${s.server.url}/allowed/echo.git`
  const [first, second] = [new AbortController(), new AbortController()]
  const both = [repos.dispatchfile(url, s.sha, first.signal), repos.dispatchfile(url, s.sha, second.signal)]
  await until(() => s.server.held === 1, 'the fetch to reach the server')
  first.abort('the client left')
  await t.rejects(both[0]!, { message: 'the client left' })
  t.equal(s.server.held, 1, 'the fetch goes on for the caller still waiting')
  second.abort('the client left')
  await t.rejects(both[1]!, { message: 'the client left' })
  await until(() => processesMentioning(s.server.url).length === 0 && s.server.held === 0, 'git and its helper to be gone')
  // The unfilled mirror is removed once the stopped fetch has ended (after its process exits).
  await until(() => mirrors(s.cache).length === 0, 'the mirror no fetch filled to be removed')
  t.same(mirrors(s.cache), [])
})

t.test('at most four fetches run at once; the others wait their turn', async (t) => {
  const s = await served(t)
  s.server.hold = /info\/refs/
  const repos = new DispatchRepos({ dir: s.cache, allowedRepos: [`${s.server.url}/allowed/`], logger, fetchTimeoutMs: 700 })
  const urls = Array.from({ length: 10 }, (_, i) => `${s.server.url}/allowed/repo-${i}.git`)
  const results = await within(20_000, Promise.allSettled(urls.map((url) => repos.dispatchfile(url, s.sha))))
  t.ok(results.every((r) => r.status === 'rejected' && /no answer within 0\.7 s$/.test((r.reason as Error).message)), 'each timed out in its turn')
  t.equal(s.server.mostHeld, 4, 'four at once at most')
  t.equal(new Set(s.server.requests.filter((p) => p.endsWith('info/refs'))).size, 10, 'every repository got its turn')
  await until(() => processesMentioning(s.server.url).length === 0, 'every git to be gone')
})

t.test('POST /v0/jobs/queue: a client that leaves stops the fetch; made-up repositories leave nothing on disk; shutdown stops the rest', async (t) => {
  const s = await served(t)
  const config = path.join(s.dir, 'config.json')
  writeFileSync(config, JSON.stringify({ dispatch: { allowed_repos: [`${s.server.url}/allowed/`] } }))
  const d = await startDaemon({ dataDir: path.join(s.dir, 'data'), args: ['--config', config] })
  t.teardown(() => d.stop('SIGKILL'))
  const queue = (repo: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown> }> =>
    call(`${d.url}/v0/jobs/queue`, { repo_url: `${s.server.url}/allowed/${repo}`, ref: s.sha, arguments: {} }, init)
  for (let i = 0; i < 3; i++) {
    const r = await queue(`made-up-${i}.git`)
    t.same([r.status, r.body.code], [400, 1])
    t.match(String(r.body.message), /^cannot fetch .*made-up-\d\.git: repository '.*' not found$/)
  }
  t.same(mirrors(path.join(s.dir, 'data', 'dispatch')), [], 'no mirrors left behind')

  s.server.hold = /info\/refs/
  const client = new AbortController()
  const leaving = queue('echo.git', { signal: client.signal })
  leaving.catch(() => undefined) // aborted below on purpose
  await until(() => s.server.held === 1, 'the fetch to reach the server')
  client.abort()
  await until(() => processesMentioning(s.server.url).length === 0 && s.server.held === 0, 'the fetch to stop once its client left')

  const waiting = queue('echo.git')
  await until(() => s.server.held === 1, 'another fetch to reach the server')
  t.equal(await within(15_000, d.stop('SIGTERM')), 0, 'SIGTERM stops the daemon without waiting for the fetch')
  t.match(await waiting, { status: 503, body: { code: 5 } })
  await until(() => processesMentioning(s.server.url).length === 0, 'no git outlives the daemon')
})
