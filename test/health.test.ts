import { connect } from 'node:net'
import t from 'tap'
import { call, removeDir, startDaemon, until } from './helpers/daemon'
import { FsyncGate } from './helpers/fsync-gate'
import { parseSamples, valueOf } from './helpers/metrics-text'
import { daemonWithScriptLane } from './helpers/runner-lane'

/** `GET /healthz` and `GET /readyz` on the real daemon: open to health checks, 503 with the reason when not ready. */

t.test('healthz and readyz answer without the token, which everything else needs', async (t) => {
  const d = await startDaemon({ env: { DISPENSERD_AUTH_TOKEN: 'secret' } })
  t.teardown(async () => {
    await d.stop()
    removeDir(d.dataDir)
  })
  const healthz = await call(`${d.url}/healthz`)
  t.same([healthz.status, healthz.body], [200, { status: 'ok', code: 0, alive: true, store: { type: 'memory', state: 'up' } }])
  const readyz = await call(`${d.url}/readyz`)
  t.same([readyz.status, readyz.body], [200, { status: 'ok', code: 0, ready: true }])
  t.equal((await call(`${d.url}/jobs`)).status, 401, 'other endpoints need the token')
})

t.test('readyz answers 503 (code 10) while the journal is broken, and 200 again once a snapshot repairs it', async (t) => {
  const gate = new FsyncGate()
  const d = await startDaemon({ args: ['--persistence', 'journal', '--journal-fsync', 'always'], env: gate.env })
  t.teardown(async () => {
    await d.stop('SIGKILL')
    removeDir(d.dataDir)
    removeDir(gate.dir)
  })
  t.equal((await call(`${d.url}/readyz`)).status, 200)
  gate.close()
  const before = gate.started().length
  gate.failAt(before + 1)
  const scheduling = call(`${d.url}/schedule`, { message: 'x' })
  await gate.waitStarted(before + 1, 'the fdatasync of the schedule')
  gate.allow(before + 1) // it fails with EIO; later syncs are held until the gate opens
  t.equal((await scheduling).body.code, 10)
  const readyz = await call(`${d.url}/readyz`)
  t.equal(readyz.status, 503)
  t.equal(readyz.body.code, 10)
  t.match(readyz.body.message, /^the journal could not be written \(.*EIO.*\); not ready/)
  t.equal((await call(`${d.url}/healthz`)).status, 200, 'alive all the same')
  const metrics = parseSamples(await (await fetch(`${d.url}/metrics`)).text())
  t.equal(valueOf(metrics, 'dispenserd_store_writable'), 0, 'the metrics say so too')
  t.ok(valueOf(metrics, 'dispenserd_journal_errors_total')! >= 1)
  gate.open()
  await until(async () => (await call(`${d.url}/readyz`)).status === 200, 'the repair snapshot', 15_000)
})

t.test('readyz answers 503 (code 5) once shutdown has begun, on a connection opened before', async (t) => {
  // A running job holds the shutdown for shutdown_grace: the daemon is shutting down but still serving.
  const d = await daemonWithScriptLane(t, 'slow', 'sleep 30', { args: ['--shutdown-grace', '20'] })
  await call(`${d.url}/schedule`, { lane: 'slow', message: '{}' })
  await until(async () => ((await call(`${d.url}/`)).body.payload as { runners: { slow: { running: number } } }).runners.slow.running === 1, 'the job to run')
  const socket = connect(d.port, '127.0.0.1')
  await new Promise((resolve) => socket.once('connect', resolve))
  d.proc.kill('SIGTERM')
  await until(() => d.logs.some((l) => l.msg === 'shutting down'), 'shutdown to begin')
  const reply = await new Promise<string>((resolve) => {
    let text = ''
    socket.on('data', (chunk) => {
      text += chunk.toString()
      if (text.includes('}')) resolve(text)
    })
    socket.write('GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n')
  })
  socket.destroy()
  t.match(reply, /^HTTP\/1\.1 503 /)
  t.match(reply, /"code":5,"message":"not ready: dispenserd is shutting down"/)
})
