import { execFileSync } from 'node:child_process'
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import type { Sample } from '../src/runners/container-metrics'
import { Engine } from '../src/runners/engine'
import { type ContainerDaemon, containerDaemon } from './helpers/container-lanes'
import { ROOT, removeDir, tempDir, until } from './helpers/daemon'
import { containersOf, engineSkip, removeNamespace, testEngine, uniqueNamespace } from './helpers/engine'

/**
 * Restarts lose nothing: containers outlive a daemon killed with SIGKILL, stopped with SIGTERM, or
 * an engine that goes away for a while; the job that owns a container reads its result instead of
 * starting it twice. Each container here waits for a file the test writes (a bind mount the lane's
 * filter adds), so nothing depends on timing.
 */

const skip = engineSkip

interface Gated {
  dir: string
  namespace: string
  lane: Record<string, unknown>
  /** Lets the container finish, exiting with `code`. */
  open(code?: number): void
}

/** A lane whose container prints "started", waits for the gate, prints "finished" and exits as told. */
function gatedLane(t: Test, extra: Record<string, unknown> = {}, client = testEngine?.client): Gated {
  const dir = tempDir()
  const gate = path.join(dir, 'gate')
  mkdirSync(gate)
  const namespace = uniqueNamespace()
  t.teardown(async () => {
    await removeNamespace(namespace, client)
    removeDir(dir)
  })
  const script = 'echo started; until [ -f /gate/go ]; do sleep 0.05; done; echo finished; exit "$(cat /gate/go)"'
  return {
    dir,
    namespace,
    lane: { namespace, command: ['sh', '-c', script], filter: `.manifest | .HostConfig.Binds = ["${gate}:/gate"]`, ...extra },
    open: (code = 0) => writeFileSync(path.join(gate, 'go'), String(code)),
  }
}

const JOURNAL = ['--persistence', 'journal', '--journal-fsync', 'always']

async function running(namespace: string, client = testEngine?.client): Promise<void> {
  await until(async () => (await containersOf(namespace, client)).some((c) => c.State === 'running'), 'the container to run', 20_000)
}

function actions(c: Record<string, unknown>): string[][] {
  return (c.jobs_total as Sample[]).map((s) => [s.labels.action, s.labels.status, String(s.value)])
}

function loggedAdoption(c: ContainerDaemon, what: RegExp): boolean {
  return c.d.logs.some((line) => what.test(String(line.msg)))
}

/** A daemon (journal on) starts a gated job's container and is SIGKILLed while it runs; resolves to the job's hash. */
async function killedWhileRunning(t: Test, g: Gated): Promise<string> {
  const first = await containerDaemon(t, { gated: g.lane }, { dir: g.dir, args: JOURNAL })
  const hash = await first.schedule('gated')
  await running(g.namespace)
  await first.d.stop('SIGKILL')
  return hash
}

t.test('a container still running when the daemon is SIGKILLed is adopted by the next daemon: one container, its result recorded', { skip }, async (t) => {
  const g = gatedLane(t)
  const hash = await killedWhileRunning(t, g)
  const second = await containerDaemon(t, { gated: g.lane }, { dir: g.dir, args: JOURNAL })
  await until(() => loggedAdoption(second, /^adopted a running container/), 'the adoption to be logged', 20_000)
  t.match(await second.job(hash), { state: 'running' })
  g.open(0)
  t.match(await second.settled(hash), { state: 'succeeded', attempts: 1, last_run: { exit_code: 0, output: 'started\nfinished\n' } })
  t.equal((await containersOf(g.namespace)).length, 1, 'the job ran in one container')
  t.same(actions((await second.runners()).gated!), [['die', '0', '1']], 'the second daemon created and started nothing')
})

t.test('a container that exits while the daemon is down has its exit code recorded when the daemon is back', { skip }, async (t) => {
  const g = gatedLane(t)
  const hash = await killedWhileRunning(t, g)
  g.open(4)
  await until(async () => (await containersOf(g.namespace)).every((c) => c.State === 'exited'), 'the container to exit', 20_000)
  const second = await containerDaemon(t, { gated: g.lane }, { dir: g.dir, args: JOURNAL })
  t.match(await second.settled(hash), { state: 'dead', attempts: 1, last_run: { reason: 'exit code 4', exit_code: 4, output: 'started\nfinished\n' } })
  t.ok(loggedAdoption(second, /^reading the result of a container that ended while the daemon was down/))
  t.equal((await containersOf(g.namespace)).length, 1, 'not started again')
})

t.test('at shutdown running containers are left running, and the restarted daemon adopts them', { skip }, async (t) => {
  const g = gatedLane(t)
  const first = await containerDaemon(t, { gated: g.lane }, { dir: g.dir, args: ['--shutdown-grace', '0'] })
  const hash = await first.schedule('gated')
  await running(g.namespace)
  t.equal(await first.d.stop('SIGTERM'), 0)
  t.match(await containersOf(g.namespace), [{ State: 'running' }], 'still running after the daemon stopped')
  const second = await containerDaemon(t, { gated: g.lane }, { dir: g.dir })
  await until(() => loggedAdoption(second, /^adopted a running container/), 'the adoption to be logged', 20_000)
  g.open(0)
  t.match(await second.settled(hash), { state: 'succeeded', attempts: 1 })
  t.equal((await containersOf(g.namespace)).length, 1)
})

interface OwnEngine {
  /** unix:// of a socket that exists only while the engine is up and ready. */
  url: string
  client: Engine
  start(): void
  stop(): void
}

/**
 * An engine of its own (test/setup/containers.sh), stopped when the test ends. Its socket is a
 * symlink made once the engine can run the test image (dockerd answers before the image is imported),
 * and removed before the engine stops.
 */
function ownEngine(t: Test, dir: string): OwnEngine {
  const script = path.join(ROOT, 'test', 'setup', 'containers.sh')
  const real = path.join(dir, 'engine')
  const link = path.join(dir, 'engine.sock')
  mkdirSync(real)
  let up = false
  const engine: OwnEngine = {
    url: `unix://${link}`,
    client: new Engine({ url: `unix://${link}`, socketPath: link }),
    start() {
      execFileSync(script, ['start', real], { stdio: ['ignore', 'ignore', 'inherit'] })
      symlinkSync(path.join(real, 'engine.sock'), link)
      up = true
    },
    stop() {
      rmSync(link, { force: true })
      execFileSync(script, ['stop', real], { stdio: 'ignore' })
      up = false
    },
  }
  t.teardown(() => {
    engine.client.close()
    if (up) engine.stop()
  })
  return engine
}

t.test('an unreachable engine pauses the lane’s starts without burning retries, shows in GET /, and jobs run once it answers', { skip }, async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const engine = ownEngine(t, dir)
  const c = await containerDaemon(t, { later: { engine: engine.url, command: ['echo', 'ran'], retries: 0, upkeep_interval: 0.2 } })
  const hash = await c.schedule('later')
  await until(async () => ((await c.runners()).later!.engine as { reachable: boolean }).reachable === false, 'the engine to show as unreachable')
  t.match((await c.runners()).later, { engine: { reachable: false, error: /cannot reach the engine at unix:\/\/.*engine\.sock: ENOENT/, down_since: /^\d{4}-/ } })
  const waiting = await c.job(hash)
  t.match(waiting, { state: 'queued', attempts: 0, last_run: { reason: /^engine unreachable: / } }, 'back in its lane, the try not counted')
  t.ok(c.d.logs.some((line) => line.msg === 'container engine unreachable: the lane starts nothing until it answers again' && line.lane === 'later'))
  engine.start()
  t.match(await c.settled(hash), { state: 'succeeded', attempts: 1, last_run: { output: 'ran\n' } })
  t.match((await c.runners()).later, { engine: { reachable: true, error: null }, started: 1, succeeded: 1, failed: 0 }, 'the try that could not run is not counted')
  await removeNamespace(c.namespaces.later!, engine.client)
})

t.test('an engine that goes away while a container runs: the job waits for it, then adopts the container', { skip }, async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const engine = ownEngine(t, dir)
  engine.start()
  const g = gatedLane(t, { engine: engine.url, upkeep_interval: 0.2 }, engine.client)
  const c = await containerDaemon(t, { gated: g.lane }, { dir: g.dir })
  const hash = await c.schedule('gated')
  await running(g.namespace, engine.client)
  engine.stop()
  await until(async () => ((await c.runners()).gated!.engine as { reachable: boolean }).reachable === false, 'the engine to show as unreachable')
  t.match(await c.job(hash), { state: 'queued', attempts: 0 })
  engine.start()
  await until(() => loggedAdoption(c, /^adopted a running container/), 'the adoption to be logged', 20_000)
  g.open(0)
  t.match(await c.settled(hash), { state: 'succeeded', attempts: 1, last_run: { output: 'started\nfinished\n' } })
  t.equal((await containersOf(g.namespace, engine.client)).length, 1, 'one container')
})

t.test('a container removed by someone else while it runs fails that try, and the job runs again', { skip }, async (t) => {
  const g = gatedLane(t, { retries: 1, backoff: { base: 0.05, max: 0.1 } })
  const c = await containerDaemon(t, { gated: g.lane }, { dir: g.dir })
  const hash = await c.schedule('gated')
  await running(g.namespace)
  const [first] = await containersOf(g.namespace)
  await testEngine!.client.expect('DELETE', `/containers/${first!.Id}?force=1`, [200, 204])
  g.open(0)
  t.match(await c.settled(hash), { state: 'succeeded', attempts: 2, last_run: { output: 'started\nfinished\n' } })
  const failed = c.d.logs.find((line) => line.msg === 'job failed; will retry' && line.job_num === 1)
  t.ok(failed, 'the first try failed')
  t.notMatch(String(failed?.reason), /^exit code 0$/)
})
