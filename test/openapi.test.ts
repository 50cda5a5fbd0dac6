import { chmodSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import Ajv2020 from 'ajv/dist/2020'
import t, { type Test } from 'tap'
import { type Running, ROOT, call, removeDir, startDaemon, tempDir, until } from './helpers/daemon'

/**
 * GET /openapi.json against the daemon's real replies: every endpoint is called into each of the
 * replies it can be made to give here (success, empty, and its errors), and each reply must be one
 * the document lists for that endpoint and status, in the shape it gives. The document's paths
 * must be exactly the server's routes, and every path's success must have been seen.
 */

type Json = Record<string, unknown>
interface Doc {
  paths: Record<string, Record<string, { responses: Record<string, unknown> }>>
}

let d: Running
let secured: Running
let dir: string
let doc: Doc
const ajv = new Ajv2020({ strict: false, allErrors: true })
const seen = new Set<string>()

t.before(async () => {
  dir = tempDir()
  const script = (name: string, body: string): string => {
    const file = path.join(dir, name)
    writeFileSync(file, `#!/bin/sh\n${body}\n`)
    chmodSync(file, 0o755)
    return file
  }
  const config = path.join(dir, 'config.json')
  writeFileSync(config, JSON.stringify({
    lanes: {
      fails: { runner: 'exec', command: [script('fail.sh', 'echo no >&2; exit 3')], arguments: [{ key: 'SRC', presence: 'required' }] },
      slow: { runner: 'exec', command: [script('slow.sh', 'sleep 30')] },
    },
  }))
  d = await startDaemon({ dataDir: path.join(dir, 'data'), args: ['--config', config, '--max-body-bytes', '4096', '--max-lanes', '8', '--shutdown-grace', '0'] })
  secured = await startDaemon({ env: { DISPENSERD_AUTH_TOKEN: 'sesame' } })
  const served = await call(`${d.url}/openapi.json`)
  doc = served.body as unknown as Doc
  ajv.addSchema(served.body, 'openapi')
})
t.teardown(async () => {
  await Promise.all([d.stop(), secured.stop()])
  removeDir(dir)
  removeDir(secured.dataDir)
})

const pointer = (...parts: string[]): string => parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/')

/** One request, by the method the document gives; the reply is checked against the document. */
async function api(t: Test, route: string, body?: unknown, options: { query?: string; daemon?: Running; headers?: Record<string, string> } = {}): Promise<Json> {
  const operations = doc.paths[route]
  t.ok(operations, `${route} is documented`)
  const method = Object.keys(operations ?? {})[0]!
  const url = `${(options.daemon ?? d).url}${route}${options.query === undefined ? '' : `?${options.query}`}`
  const reply = await call(url, method === 'get' ? undefined : (body ?? {}), { method: method.toUpperCase(), headers: options.headers })
  const key = `${route} ${reply.status}`
  seen.add(key)
  if (operations?.[method]?.responses[String(reply.status)] === undefined) {
    t.fail(`${key} is not documented: ${reply.text.slice(0, 200)}`)
    return reply.body
  }
  const validate = ajv.getSchema(`openapi#/${pointer('paths', route, method, 'responses', String(reply.status), 'content', 'application/json', 'schema')}`)
  if (validate === undefined) throw new Error(`no schema for ${key}`)
  t.ok(validate(reply.body), `${key} fits the document: ${ajv.errorsText(validate.errors)} in ${reply.text.slice(0, 300)}`)
  return reply.body
}

/** A reply that is not JSON (metrics, the dashboard's files): its status and type must be the document's. */
async function raw(t: Test, route: string, url: string, options: { daemon?: Running; headers?: Record<string, string> } = {}): Promise<string> {
  const reply = await fetch(`${(options.daemon ?? d).url}${url}`, { headers: options.headers })
  const body = await reply.text()
  seen.add(`${route} ${reply.status}`)
  const documented = doc.paths[route]?.get?.responses[String(reply.status)] as { content?: Record<string, unknown> } | undefined
  t.ok(documented, `${route} ${reply.status} is documented`)
  const type = reply.headers.get('content-type') ?? ''
  t.ok(Object.keys(documented?.content ?? {}).some((documentedType) => type.startsWith(documentedType)), `${route}: ${type} is a documented type`)
  return body
}

t.test('the document is OpenAPI 3.1 and lists exactly the routes the server has', async (t) => {
  t.match(doc, { openapi: '3.1.0', info: { title: 'dispenserd' } })
  const server = readFileSync(path.join(ROOT, 'src', 'http', 'server.ts'), 'utf8')
  const routes = [...server.matchAll(/\bon\('([^']+)'/g)].map((m) => m[1]!).filter((r) => r !== '/*')
  t.same(Object.keys(doc.paths).sort(), routes.sort())
  // The checks below mean something only if a reply that does not fit is refused.
  const schema = (route: string, method: string): ReturnType<typeof ajv.getSchema> =>
    ajv.getSchema(`openapi#/${pointer('paths', route, method, 'responses', '200', 'content', 'application/json', 'schema')}`)
  t.equal(schema('/ack', 'post')!({ status: 'ok', code: 0, job_num: 1, hash: 'h', extra: 1 }), false, 'an unlisted field')
  t.equal(schema('/receive_noblock', 'post')!({ status: 'ok', code: 0, job_num: 1, hash: 'h', timestamp: '2026-01-01T00:00:00Z', lane: 'main', priority: 1 }), false, 'a missing message')
  t.equal(schema('/', 'get')!({ name: 'dispenserd', version: '1', timestamp: 'now', status: 'ok', payload: {} }), false, 'a bad timestamp and payload')
})

t.test("README's example of GET / fits the document", (t) => {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8')
  const example = /### `GET \/`: status\n\n```json\n([\s\S]*?)```/.exec(readme)?.[1]
  t.ok(example, 'the example is there')
  const validate = ajv.getSchema(`openapi#/${pointer('paths', '/', 'get', 'responses', '200', 'content', 'application/json', 'schema')}`)!
  t.ok(validate(JSON.parse(example ?? '{}')), ajv.errorsText(validate.errors))
  t.end()
})

t.test('status, with and without the token', async (t) => {
  await api(t, '/')
  await api(t, '/', undefined, { daemon: secured })
  await api(t, '/', undefined, { daemon: secured, headers: { authorization: 'Bearer sesame' } })
  await api(t, '/jobs', undefined, { daemon: secured })
  await api(t, '/openapi.json', undefined, { daemon: secured })
  await api(t, '/healthz', undefined, { daemon: secured })
  await api(t, '/readyz', undefined, { daemon: secured })
  await api(t, '/lanes', undefined, { daemon: secured })
  await api(t, '/lanes')
  await raw(t, '/metrics', '/metrics')
  await raw(t, '/metrics', '/metrics', { headers: { accept: 'application/openmetrics-text; version=1.0.0' } })
  await raw(t, '/metrics', '/metrics', { daemon: secured })
  await raw(t, '/ui', '/ui', { daemon: secured })
  t.match(await raw(t, '/ui/*', '/ui/', { daemon: secured }), /<script src="\/ui\/app.js">/)
  await raw(t, '/ui/*', '/ui/app.js', { daemon: secured })
  await raw(t, '/ui/*', '/ui/nothing.js', { daemon: secured })
})

t.test('the operators\' API: pages, lookups by number, moves, pause and resume, bulk actions', async (t) => {
  const { first_job_num: first } = await api(t, '/schedule', { jobs: [{ lane: 'ops', message: 'a' }, { lane: 'ops', message: 'b', priority: 3 }] })
  const page = await api(t, '/jobs', undefined, { query: 'lane=ops&limit=1' })
  t.match(page, { total: 2, jobs: [{ message: 'b', position: 0 }] })
  await api(t, '/jobs', undefined, { query: `lane=ops&cursor=${String(page.next_cursor)}` })
  await api(t, '/jobs', undefined, { query: 'lane=ops&state=lost' })
  const a = await api(t, '/job', undefined, { query: `job_num=${String(first)}` })
  await api(t, '/move', { hash: a.hash, priority: 1 })
  await api(t, '/move', { hash: 'unknown', priority: 1 })
  await api(t, '/pause', { lane: 'ops' })
  await api(t, '/resume', { lane: 'ops' })
  await api(t, '/pause', {})
  await api(t, '/bulk', { action: 'reprioritize', filter: { lane: 'ops' }, priority: 7 })
  await api(t, '/bulk', { action: 'delete', hashes: [a.hash, 'unknown'] })
  await api(t, '/bulk', { action: 'nope' })
})

t.test('schedule, list, receive and leases', async (t) => {
  await api(t, '/schedule', { message: 'one', priority: 1 })
  await api(t, '/schedule', { jobs: [{ message: 'two' }, { message: 'three', lane: 'other', delay: 60 }] })
  await api(t, '/schedule', { lane: 'fails', arguments: { SRC: 'a' } })
  await api(t, '/schedule', { message: 5 })
  await api(t, '/schedule', 'x'.repeat(5000))
  await api(t, '/schedule', { lane: 'fails', message: 'x' })
  for (let i = 0; i < 6; i++) await api(t, '/schedule', { lane: `many-${i}`, message: 'x' })
  await api(t, '/jobs')
  const plain = await api(t, '/receive_noblock', {})
  t.equal(plain.message, 'one')
  await api(t, '/receive_noblock', { lane: 'empty' })
  await api(t, '/receive_noblock', { lane: 'slow' })
  await api(t, '/receive_block', { lane: 'empty', timeout: 0.05 })
  const leased = await api(t, '/receive_block', { lease: 30 })
  await api(t, '/touch', { hash: leased.hash, lease_token: leased.lease_token, lease: 60 })
  await api(t, '/release', { hash: leased.hash, lease_token: leased.lease_token, delay: 30 })
  const delayed = await api(t, '/job', undefined, { query: `hash=${String(leased.hash)}` })
  t.equal(delayed.state, 'delayed')
  await api(t, '/schedule', { message: 'to ack' })
  const again = await api(t, '/receive_noblock', { lease: 30 })
  await api(t, '/ack', { hash: again.hash, lease_token: again.lease_token })
  await api(t, '/ack', { hash: again.hash, lease_token: again.lease_token })
  await api(t, '/release', { hash: again.hash })
  await api(t, '/touch', { hash: again.hash, lease_token: 'stale' })
  await api(t, '/delete', { hash: leased.hash })
  await api(t, '/schedule', { message: 'x' }, { daemon: secured })
})

t.test('batches: receives with count, and lists of leases to ack, release and touch', async (t) => {
  // Lane "other" exists already (max_lanes is reached), holding only a delayed job.
  await api(t, '/schedule', { jobs: [{ lane: 'other', message: 'a' }, { lane: 'other', message: 'b' }, { lane: 'other', message: 'c' }] })
  const taken = await api(t, '/receive_noblock', { lane: 'other', count: 2, lease: 30 })
  const jobs = taken.jobs as Json[]
  t.equal(jobs.length, 2)
  await api(t, '/touch', { leases: jobs.map((j) => ({ hash: j.hash, lease_token: j.lease_token, lease: 60 })) })
  await api(t, '/release', { leases: [{ hash: jobs[0]!.hash, lease_token: jobs[0]!.lease_token }, { hash: 'unknown', lease_token: 'x' }] })
  await api(t, '/ack', { leases: [{ hash: jobs[1]!.hash, lease_token: jobs[1]!.lease_token }] })
  await api(t, '/receive_block', { lane: 'other', count: 5, min: 5, timeout: 0.05 })
  await api(t, '/receive_block', { lane: 'other', count: 5, timeout: 0.05 })
  await api(t, '/receive_noblock', { lane: 'other', count: 3 })
  await api(t, '/receive_noblock', { lane: 'other', count: 1001 })
})

t.test('runner lanes: job, failed, retry, delete, and a running job', async (t) => {
  const scheduled = await api(t, '/schedule', { lane: 'fails', arguments: { SRC: 'b' } })
  await until(async () => (await call(`${d.url}/job?hash=${String(scheduled.hash)}`)).body.state === 'dead', 'the job to die')
  const dead = await api(t, '/job', undefined, { query: `hash=${String(scheduled.hash)}` })
  t.match(dead, { state: 'dead', last_run: { reason: 'exit code 3' } })
  const page = await api(t, '/failed', undefined, { query: 'lane=fails&limit=1' })
  t.equal((page.jobs as Json[]).length, 1)
  await api(t, '/failed', undefined, { query: 'limit=5000' })
  await api(t, '/retry', { hash: scheduled.hash })
  await api(t, '/retry', { hash: 'unknown' })
  await api(t, '/job', undefined, { query: 'hash=unknown' })
  const running = await api(t, '/schedule', { lane: 'slow', message: '{}' })
  await until(async () => (await call(`${d.url}/job?hash=${String(running.hash)}`)).body.state === 'running', 'the job to run')
  await api(t, '/delete', { hash: running.hash })
  await api(t, '/ack', { hash: running.hash, lease_token: 'x' })
  await api(t, '/kill', { hash: running.hash })
  await until(async () => (await call(`${d.url}/job?hash=${String(running.hash)}`)).body.state === 'dead', 'the killed job to be dead')
  await api(t, '/kill', { hash: running.hash })
})

t.test('unique keys, waits, results and cron entries', async (t) => {
  await api(t, '/schedule', { message: 'u', unique_key: 'k', unique_for: 60 })
  const duplicate = await api(t, '/schedule', { message: 'u', unique_key: 'k' })
  t.equal(duplicate.code, 16)
  await api(t, '/schedule', { jobs: [{ message: 'u', unique_key: 'k' }, { message: 'v', unique_key: 'k2', group: 'g' }] })
  await api(t, '/schedule', { jobs: [{ message: 'u', unique_key: 'k' }] })
  const ranOut = await api(t, '/schedule', { message: 'w', wait: 0.05 })
  t.equal(ranOut.state, 'queued')
  await call(`${d.url}/receive_noblock`, { lane: 'main', count: 100 })
  const parked = call(`${d.url}/receive_block`, { lane: 'main', timeout: 5 })
  await until(async () => ((await call(`${d.url}/`)).body.payload as { idle_workers: Record<string, number> }).idle_workers.main === 1, 'the receiver to park')
  const finished = await api(t, '/schedule', { message: 'x', wait: 5 })
  t.equal(finished.state, 'taken')
  await parked
  await api(t, '/schedule', { message: 'r' })
  let leased: Json = {}
  leased = (await call(`${d.url}/receive_noblock`, { lease: 30 })).body
  await api(t, '/ack', { hash: leased.hash, lease_token: leased.lease_token, result: { ok: true } })
  t.same((await api(t, '/job', undefined, { query: `hash=${String(leased.hash)}` })).result, { ok: true })
  await api(t, '/cron/add', { name: 'c', schedule: '0 0 1 1 *', message: 'm' })
  await api(t, '/cron/add', { name: 'c', every: 60, message: 'm' })
  await api(t, '/cron/add', { name: 'bad', schedule: '61 * * * *', message: 'm' })
  await api(t, '/cron/pause', { name: 'c' })
  await api(t, '/cron/resume', { name: 'c' })
  await api(t, '/cron/pause', { name: 'nope' })
  await api(t, '/cron')
  await api(t, '/')
  await api(t, '/cron/delete', { name: 'c' })
})

t.test('Dispatch Jobs, while off', async (t) => {
  await api(t, '/v0/jobs/queue', { repo_url: 'https://example.invalid/x.git', ref: 'abcdef1' })
  await api(t, '/v0/jobs/queue', { repo_url: 5 })
})

t.test("every path's success was seen (and each reply above was checked)", (t) => {
  for (const route of Object.keys(doc.paths)) {
    if (route === '/v0/jobs/queue') continue // needs a git repository; test/dispatch.test.ts covers it
    t.ok(seen.has(`${route} 200`), `${route} 200`)
  }
  t.ok(seen.has('/schedule 413') && seen.has('/schedule 503') && seen.has('/ack 404') && seen.has('/delete 409') && seen.has('/jobs 401'), [...seen].join(', '))
  t.end()
})
