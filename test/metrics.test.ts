import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { type Running, call, freePort, removeDir, tempDir, until } from './helpers/daemon'
import { daemonWithScriptLane } from './helpers/runner-lane'
import { parseSamples, valueOf } from './helpers/metrics-text'

/**
 * `GET /metrics` of the real daemon (bin/dispenserd: prom-client inside the single executable),
 * checked by Debian's promtool and scraped by a real Prometheus.
 */

const TOKEN = 'metrics-secret'

let d: Running

t.before(async () => {
  const spec = { arguments: [{ key: 'CODE', type: 'integer', presence: 'required' }], retries: 1, backoff: { base: 0.01, max: 0.01 } }
  d = await daemonWithScriptLane(t, 'work', 'exit "$CODE"', { spec, env: { DISPENSERD_AUTH_TOKEN: TOKEN } })
})

const auth = { headers: { authorization: `Bearer ${TOKEN}` } }

async function post(endpoint: string, body: unknown): Promise<Record<string, unknown>> {
  const r = await call(`${d.url}${endpoint}`, body, { ...auth, method: 'POST' })
  if (r.status !== 200) throw new Error(`${endpoint}: ${r.text}`)
  return r.body
}

async function scrape(accept = '*/*'): Promise<{ text: string; type: string | null }> {
  const r = await fetch(`${d.url}/metrics`, { headers: { ...auth.headers, accept } })
  if (r.status !== 200) throw new Error(`GET /metrics answered ${r.status}: ${await r.text()}`)
  return { text: await r.text(), type: r.headers.get('content-type') }
}

t.test('/metrics needs the token like every endpoint but /', async (t) => {
  const r = await fetch(`${d.url}/metrics`)
  t.equal(r.status, 401)
})

t.test('counts per lane follow what happens to jobs', async (t) => {
  await post('/schedule', { jobs: [{ lane: 'm', message: 'a' }, { lane: 'm', message: 'b' }, { lane: 'm', message: 'c' }, { lane: 'm', message: 'd' }] })
  await post('/receive_noblock', { lane: 'm' })
  const leased = await post('/receive_noblock', { lane: 'm', lease: 30 })
  await post('/ack', { hash: leased.hash, lease_token: leased.lease_token })
  const again = await post('/receive_noblock', { lane: 'm', lease: 0.05 })
  t.ok(again.lease_token)
  // The lease runs out: the job is back, and counted as expired.
  await until(async () => valueOf(parseSamples((await scrape()).text), 'dispenserd_jobs_expired_total', { lane: 'm' }) === 1, 'the lease to expire')
  await post('/schedule', { lane: 'm', message: 'later', delay: 60 })
  const samples = parseSamples((await scrape()).text)
  t.equal(valueOf(samples, 'dispenserd_jobs_scheduled_total', { lane: 'm' }), 5)
  t.equal(valueOf(samples, 'dispenserd_jobs_received_total', { lane: 'm' }), 3)
  t.equal(valueOf(samples, 'dispenserd_jobs_acked_total', { lane: 'm' }), 1)
  t.equal(valueOf(samples, 'dispenserd_jobs', { lane: 'm', state: 'ready' }), 2)
  t.equal(valueOf(samples, 'dispenserd_jobs', { lane: 'm', state: 'delayed' }), 1)
  t.equal(valueOf(samples, 'dispenserd_jobs', { lane: 'm', state: 'leased' }), 0)
  t.equal(valueOf(samples, 'dispenserd_delivery_latency_seconds_count', { lane: 'm' }), 3)
  t.equal(valueOf(samples, 'dispenserd_delivery_latency_seconds_bucket', { lane: 'm', le: '+Inf' }), 3)
  const age = valueOf(samples, 'dispenserd_oldest_ready_job_age_seconds', { lane: 'm' })!
  t.ok(age >= 0 && age < 60, `oldest ready job is ${age} s old`)
  t.equal(valueOf(samples, 'dispenserd_kept_jobs'), 3)
  t.equal(valueOf(samples, 'dispenserd_store_info', { store: 'memory' }), 1)
  t.equal(valueOf(samples, 'dispenserd_store_writable'), 1)
  t.ok(valueOf(samples, 'process_resident_memory_bytes')! > 0, 'process metrics (prom-client defaults)')
  t.ok(valueOf(samples, 'nodejs_eventloop_lag_seconds') !== undefined, 'event-loop lag')
  t.ok(valueOf(samples, 'dispenserd_task_runs_total', { task: 'lease and delay reaper' })! >= 1, 'background tasks')
})

t.test('runner jobs are counted as the docker job dispatcher counts them: jobs_total{namespace,action,status}', async (t) => {
  await post('/schedule', { lane: 'work', message: JSON.stringify({ arguments: { CODE: 0 } }) })
  const failing = await post('/schedule', { lane: 'work', message: JSON.stringify({ arguments: { CODE: 3 } }) })
  await until(async () => (await call(`${d.url}/job?hash=${String(failing.hash)}`, undefined, auth)).body.state === 'dead', 'the failing job to die')
  const samples = parseSamples((await scrape()).text)
  t.equal(valueOf(samples, 'jobs_total', { namespace: 'work', action: 'create', status: '' }), 2, 'two jobs')
  t.equal(valueOf(samples, 'jobs_total', { namespace: 'work', action: 'start', status: '' }), 3, 'three runs: one retry')
  t.equal(valueOf(samples, 'jobs_total', { namespace: 'work', action: 'die', status: '0' }), 1)
  t.equal(valueOf(samples, 'jobs_total', { namespace: 'work', action: 'die', status: '3' }), 2)
  t.equal(valueOf(samples, 'dispenserd_run_duration_seconds_count', { lane: 'work' }), 3)
  t.equal(valueOf(samples, 'dispenserd_jobs', { lane: 'work', state: 'dead' }), 1)
  t.equal(valueOf(samples, 'dispenserd_jobs_dead_lettered_total', { lane: 'work' }), 1)
  t.equal(valueOf(samples, 'dispenserd_runner_concurrency', { lane: 'work', runner: 'exec' }), 1)
})

t.test('promtool check metrics passes on the Prometheus text', async (t) => {
  const { text, type } = await scrape()
  t.match(type, /^text\/plain; version=0\.0\.4/)
  t.ok(text.includes('dispenserd_delivery_latency_seconds_bucket'), 'histograms have samples')
  const out = execFileSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] })
  t.equal(out.trim(), '', 'no lint findings')
})

t.test('OpenMetrics when the scraper asks for it, ending # EOF', async (t) => {
  const { text, type } = await scrape('application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5')
  t.match(type, /^application\/openmetrics-text; version=1\.0\.0/)
  t.ok(text.endsWith('# EOF\n'), 'ends with # EOF')
  t.match(text, /^# TYPE jobs counter$/m, 'counter families are named without _total')
  t.match(text, /^jobs_total\{namespace="work",action="die",status="3"\} 2$/m)
})

/** Starts Debian's prometheus on a free port with `config`, its data in `dataDir`; resolves once it is ready. */
async function startPrometheus(config: string, dataDir: string): Promise<{ proc: ChildProcess; url: string }> {
  const port = await freePort()
  const proc = spawn('prometheus', [`--config.file=${config}`, `--storage.tsdb.path=${dataDir}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()))
  const url = `http://127.0.0.1:${port}`
  await until(async () => {
    if (proc.exitCode !== null) throw new Error(`prometheus exited: ${stderr}`)
    return (await fetch(`${url}/-/ready`).catch(() => undefined))?.status === 200
  }, 'prometheus to be ready', 30_000)
  return { proc, url }
}

t.test('a real Prometheus scrapes the daemon (with its token) and answers a query for a lane\'s depth', async (t) => {
  await post('/schedule', { jobs: Array.from({ length: 7 }, (_, i) => ({ lane: 'depth', message: `j${i}` })) })
  const promDir = tempDir('dispenserd-prom-')
  const config = path.join(promDir, 'prometheus.yml')
  writeFileSync(config, `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: dispenserd\n    authorization:\n      credentials: ${TOKEN}\n    static_configs:\n      - targets: ['127.0.0.1:${d.port}']\n`)
  const prometheus = await startPrometheus(config, path.join(promDir, 'data'))
  t.teardown(async () => {
    if (prometheus.proc.exitCode === null) {
      const exited = new Promise((resolve) => prometheus.proc.once('exit', resolve))
      process.kill(prometheus.proc.pid!, 'SIGTERM')
      await exited
    }
    removeDir(promDir)
  })
  let depth: string | undefined
  await until(async () => {
    const r = await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent('dispenserd_jobs{lane="depth",state="ready"}')}`)
    const body = (await r.json()) as { data: { result: { value: [number, string] }[] } }
    depth = body.data.result[0]?.value[1]
    return depth !== undefined
  }, 'Prometheus to have scraped the daemon', 30_000)
  t.equal(depth, '7')
  const up = (await (await fetch(`${prometheus.url}/api/v1/query?query=up`)).json()) as { data: { result: { value: [number, string] }[] } }
  t.equal(up.data.result[0]?.value[1], '1', 'the target is up')
})
