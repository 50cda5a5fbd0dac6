import { type ChildProcess, execFile, spawn } from 'node:child_process'
import path from 'node:path'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'
import { cli } from './helpers/cli'
import { ROOT, freePort, removeDir, startDaemon, tempDir, until } from './helpers/daemon'

/**
 * The example clients in examples/ (Python, Go, Node, shell), each a producer and a worker, against
 * a real daemon. The worker starts before the daemon, so it must wait and reconnect; it leases
 * each job, acks it, or releases it when the work fails ("fail-once" messages fail the first time).
 * Then again over HTTPS with a token, trusting a certificate made here with openssl (DISPENSERD_CA).
 * Their dependencies come from Debian's packages (examples/install-deps, run by ./run_tests).
 */

t.setTimeout(300_000)
const run = promisify(execFile)
const EXAMPLES = path.join(ROOT, 'examples')
const goBin = tempDir('dispenserd-go-')
t.teardown(() => removeDir(goBin))

interface Example {
  name: string
  producer: string[]
  worker: string[]
  /** Worker settings given as environment variables rather than flags. */
  env?: NodeJS.ProcessEnv
}

const python = '/usr/bin/python3'
const examples: Example[] = [
  { name: 'python', producer: [python, path.join(EXAMPLES, 'python', 'producer.py')], worker: [python, path.join(EXAMPLES, 'python', 'worker.py'), '--lease', '30', '--max-jobs', '3'] },
  { name: 'go', producer: [path.join(goBin, 'producer')], worker: [path.join(goBin, 'worker'), '-lease', '30', '-max-jobs', '3'] },
  { name: 'node', producer: [process.execPath, path.join(EXAMPLES, 'node', 'dist', 'producer.js')], worker: [process.execPath, path.join(EXAMPLES, 'node', 'dist', 'worker.js'), '--lease', '30', '--max-jobs', '3'] },
  { name: 'shell', producer: [path.join(EXAMPLES, 'shell', 'producer.sh')], worker: [path.join(EXAMPLES, 'shell', 'worker.sh')], env: { LEASE: '30', MAX_JOBS: '3' } },
]

const tls = { cert: path.join(goBin, 'cert.pem'), key: path.join(goBin, 'key.pem') }

t.before(async () => {
  // Standard library only, so nothing is fetched; the build cache makes later runs quick.
  await run('go', ['build', '-o', goBin, './cmd/...'], { cwd: path.join(EXAMPLES, 'go'), env: { ...process.env, GOPROXY: 'off', GOFLAGS: '-mod=mod' } })
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', tls.key, '-out', tls.cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'])
})

function output(proc: ChildProcess): { text: () => string } {
  let text = ''
  proc.stdout!.on('data', (c: Buffer) => (text += c.toString()))
  proc.stderr!.on('data', (c: Buffer) => (text += c.toString()))
  return { text: () => text }
}

/** Runs the example's producer and worker (-max-jobs 3) against `url`; resolves to the worker's events. */
async function produceAndWork(t: Test, example: Example, env: NodeJS.ProcessEnv, beforeProducing: (workerOutput: () => string) => Promise<void>): Promise<string[]> {
  const worker = spawn(example.worker[0]!, example.worker.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] })
  const workerOut = output(worker)
  const workerExit = new Promise<number | null>((resolve) => worker.once('exit', resolve))
  t.teardown(() => {
    if (worker.exitCode === null) worker.kill('SIGKILL')
  })
  await beforeProducing(workerOut.text)
  const produced = await run(example.producer[0]!, [...example.producer.slice(1), 'ok-1', 'fail-once-2', 'ok 3 "quoted"'], { env })
  t.match(produced.stdout, /^queued job 1: ok-1\nqueued job 2: fail-once-2\nqueued job 3: ok 3 "quoted"\n$/)
  const timer = setTimeout(() => worker.kill('SIGKILL'), 30_000)
  const code = await workerExit
  clearTimeout(timer)
  t.equal(code, 0, workerOut.text())
  return workerOut.text().split('\n').filter((line) => /^(done|released)/.test(line))
}

const EVENTS = ['done job 1 (ok-1)', 'released job 2 (fail-once-2): failed on the first try', 'done job 2 (fail-once-2)', 'done job 3 (ok 3 "quoted")']

async function allAcked(t: Test, url: string, env: NodeJS.ProcessEnv = {}): Promise<void> {
  const status = await cli(url, ['status', '--json'], { env })
  const payload = (JSON.parse(status.stdout) as { payload: Record<string, Record<string, number>> }).payload
  t.same([payload.queued_jobs!.main, payload.leased_jobs!.main, payload.delayed_jobs!.main], [0, 0, 0], 'every job acked')
}

for (const example of examples) {
  t.test(`${example.name}: the worker waits for the daemon, then leases, releases a failure and acks`, async (t) => {
    const port = await freePort()
    const url = `http://127.0.0.1:${port}`
    const events = await produceAndWork(t, example, { ...process.env, DISPENSERD_URL: url, ...example.env }, async (workerOutput) => {
      await until(() => /cannot reach dispenserd/.test(workerOutput()), `the ${example.name} worker to try and fail to connect`, 15_000)
      const d = await startDaemon({ args: ['--address', `127.0.0.1:${port}`] })
      t.teardown(async () => {
        await d.stop()
        removeDir(d.dataDir)
      })
    })
    t.same(events, EVENTS)
    await allAcked(t, url)
  })

  t.test(`${example.name}: over HTTPS with a token, trusting a self-signed certificate`, async (t) => {
    const d = await startDaemon({ args: ['--tls-cert', tls.cert, '--tls-key', tls.key], env: { DISPENSERD_AUTH_TOKEN: 'sesame' } })
    t.teardown(async () => {
      await d.stop()
      removeDir(d.dataDir)
    })
    const url = `https://127.0.0.1:${d.port}`
    const secure = { DISPENSERD_URL: url, DISPENSERD_TOKEN: 'sesame', DISPENSERD_CA: tls.cert }
    const events = await produceAndWork(t, example, { ...process.env, ...secure, ...example.env }, async () => undefined)
    t.same(events, EVENTS)
    await allAcked(t, url, secure)
  })
}
