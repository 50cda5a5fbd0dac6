import t from 'tap'
import { type Sample, renderJobsTotal } from '../src/runners/container-metrics'
import { call, until } from './helpers/daemon'
import { containerDaemon } from './helpers/container-lanes'
import { containersOf, engineSkip, testEngine } from './helpers/engine'

/**
 * The container runner through the real daemon (bin/dispenserd) on a real engine (rootful podman,
 * or dockerd with DISPENSERD_TEST_DOCKERD=1; see test/setup/containers.sh).
 */

const skip = engineSkip

t.test('a job runs as a container: arguments in its environment, output and exit code kept, labelled, counted', { skip }, async (t) => {
  const c = await containerDaemon(t, {
    boxes: {
      command: ['sh', '-c', 'echo "hello $WHO from $DISPENSERD_LANE"; echo "mode $MODE" >&2'],
      env: { MODE: 'fast' },
      allowed_env: ['WHO', 'MODE'],
      labels: { suite: 'dispenserd-tests', team: 'media' },
    },
  })
  const hash = await c.schedule('boxes', { WHO: 'world' })
  const done = await c.settled(hash)
  t.match(done, { state: 'succeeded', attempts: 1, last_run: { exit_code: 0, reason: null } })
  const output = String((done.last_run as { output: string }).output)
  t.match(output, /hello world from boxes\n/)
  t.match(output, /mode fast\n/, 'stderr too')
  const [container, ...others] = await containersOf(c.namespaces.boxes!)
  t.same(others, [], 'one container')
  t.match(container, {
    State: 'exited',
    Names: [/^\/?dispenserd-collected-/],
    Labels: { team: 'media', 'dispenserd.namespace': c.namespaces.boxes, 'dispenserd.lane': 'boxes', 'dispenserd.job': hash, 'dispenserd.attempt': '1' },
  })
  const lane = (await c.runners()).boxes!
  t.match(lane, { runner: 'container', succeeded: 1, namespace: c.namespaces.boxes, engine: { reachable: true, error: null } })
  t.same(
    (lane.jobs_total as Sample[]).map((s) => [s.labels.action, s.labels.status, s.value]),
    [
      ['create', '', 1],
      ['start', '', 1],
      ['die', '0', 1],
    ],
  )
  const refused = await call(`${c.d.url}/schedule`, { lane: 'boxes', message: JSON.stringify({ arguments: { MODE: 'slow' } }) })
  t.match(refused, { status: 400, body: { code: 1, message: 'argument "MODE" is set by lane "boxes"\'s "env"; a job cannot change it' } })
  const loader = await call(`${c.d.url}/schedule`, { lane: 'boxes', message: JSON.stringify({ arguments: { LD_PRELOAD: '/x.so' } }) })
  t.match(loader, { status: 400, body: { code: 1, message: 'argument "LD_PRELOAD" is not allowed on lane "boxes" (allowed_env: WHO, MODE)' } }, 'the same rules as exec lanes')
})

t.test('a failing container is retried with backoff until dead, a container per try; jobs_total counts as the seed does', { skip }, async (t) => {
  const c = await containerDaemon(t, { flaky: { command: ['sh', '-c', 'echo "try $DISPENSERD_ATTEMPT"; exit 3'], retries: 2, backoff: { base: 0.05, max: 0.2 } } })
  const hash = await c.schedule('flaky')
  const dead = await c.settled(hash)
  t.match(dead, { state: 'dead', attempts: 3, last_run: { state: 'dead', reason: 'exit code 3', exit_code: 3, output: 'try 3\n' } })
  const containers = await containersOf(c.namespaces.flaky!)
  t.same(containers.map((x) => x.Labels['dispenserd.attempt']).sort(), ['1', '2', '3'])
  const lane = (await c.runners()).flaky!
  t.match(lane, { started: 3, failed: 3, retried: 2, dead: 1 })
  t.equal(
    renderJobsTotal(lane.jobs_total as Sample[]),
    `# HELP jobs Number of jobs.\n# TYPE jobs counter\njobs_total{namespace="${c.namespaces.flaky}",action="create",status=""} 3\njobs_total{namespace="${c.namespaces.flaky}",action="start",status=""} 3\njobs_total{namespace="${c.namespaces.flaky}",action="die",status="3"} 3\n# EOF\n`,
  )
})

t.test('a timeout kills the container', { skip }, async (t) => {
  const c = await containerDaemon(t, { slow: { command: ['sleep', '60'], timeout: 1 } })
  const began = Date.now()
  const hash = await c.schedule('slow')
  t.match(await c.settled(hash), { state: 'dead', last_run: { reason: 'timeout', exit_code: 137 } })
  t.ok(Date.now() - began < 15_000, `ended ${Date.now() - began} ms after scheduling`)
  t.match(await containersOf(c.namespaces.slow!), [{ State: 'exited' }])
})

t.test('concurrency caps the containers running at once; 0 starts none', { skip }, async (t) => {
  const c = await containerDaemon(t, { busy: { command: ['sleep', '0.5'], concurrency: 2, keep_exited_for: 0 }, held: { command: ['true'], concurrency: 0 } })
  const held = await c.schedule('held')
  const hashes = await Promise.all([1, 2, 3, 4, 5].map(() => c.schedule('busy')))
  let most = 0
  let finished = false
  const watching = (async () => {
    while (!finished) {
      const running = (await containersOf(c.namespaces.busy!)).filter((x) => x.State === 'running').length
      most = Math.max(most, running)
      await new Promise((r) => setTimeout(r, 25))
    }
  })()
  const settled = await Promise.all(hashes.map((hash) => c.settled(hash)))
  finished = true
  await watching
  for (const job of settled) t.equal(job.state, 'succeeded')
  t.equal(most, 2, 'two at a time, never more')
  t.match(await c.job(held), { state: 'queued', attempts: 0 }, 'the paused lane’s job waits')
  t.same(await containersOf(c.namespaces.held!), [], 'and has no container')
})

t.test('exited containers are removed after keep_exited_for, at once with 0, and kept when it is unset', { skip }, async (t) => {
  const c = await containerDaemon(t, {
    later: { command: ['true'], keep_exited_for: 3, upkeep_interval: 0.1 },
    now: { command: ['true'], keep_exited_for: 0 },
    kept: { command: ['true'], upkeep_interval: 0.1 },
  })
  const later = await c.schedule('later')
  await c.settled(later)
  const [exited] = await containersOf(c.namespaces.later!)
  t.ok(exited, 'keep_exited_for 3: still there when the job is done')
  const { State } = await testEngine!.client.json<{ State: { FinishedAt: string } }>('GET', `/containers/${exited!.Id}/json`, [200])
  const [now, kept] = await Promise.all([c.schedule('now'), c.schedule('kept')])
  await Promise.all([now, kept].map((hash) => c.settled(hash)))
  t.same(await containersOf(c.namespaces.now!), [], 'keep_exited_for 0: removed before the job is done')
  await until(async () => (await containersOf(c.namespaces.later!)).length === 0, 'the container kept 3 s to go', 15_000)
  const keptFor = Date.now() - Date.parse(State.FinishedAt)
  t.ok(keptFor >= 3000, `keep_exited_for 3: removed ${keptFor} ms after it exited`)
  // The engine lists the container as gone before its DELETE answers the runner, which counts it then.
  const removed = async (): Promise<unknown> => ((await c.runners()).later?.containers as { removed?: number } | undefined)?.removed
  await until(async () => (await removed()) !== 0, 'the runner counts the removal')
  t.equal(await removed(), 1, 'counted once')
  t.equal((await containersOf(c.namespaces.kept!)).length, 1, 'no keep_exited_for: kept')
})

t.test('a jq filter makes the manifest from the job; a filter error fails the job once, with jq’s message', { skip }, async (t) => {
  const filter = [
    '. as $job',
    '| if $job.arguments.WHAT == "forbidden" then error("refusing \\($job.arguments.WHAT)") else . end',
    '| .manifest',
    '| .Cmd = ["sh", "-c", "echo \\($job.arguments.WHAT) at priority \\($job.priority), try \\($job.attempt)"]',
    '| .Labels.priority = ($job.priority | tostring)',
  ].join('\n')
  const c = await containerDaemon(t, { made: { filter, allowed_env: ['WHAT'], retries: 3, backoff: { base: 0.05, max: 0.1 } } })
  const good = await c.schedule('made', { WHAT: 'thumbs' }, 9)
  t.match(await c.settled(good), { state: 'succeeded', last_run: { output: 'thumbs at priority 9, try 1\n' } })
  t.match(await containersOf(c.namespaces.made!), [{ Labels: { priority: '9', 'dispenserd.job': good } }])
  const bad = await c.schedule('made', { WHAT: 'forbidden' })
  t.match(await c.settled(bad), { state: 'dead', attempts: 1, last_run: { reason: 'filter: jq: error: refusing forbidden', exit_code: null } })
  t.equal((await containersOf(c.namespaces.made!)).length, 1, 'no container for the refused job')
})

t.test('engine errors fail the job with the engine’s reason: a missing image for good, a refused start too', { skip }, async (t) => {
  const c = await containerDaemon(t, {
    missing: { image: 'localhost/nope:missing', retries: 3 },
    pulled: { image: 'localhost/nope:missing', pull: 'missing' },
    nouser: { command: ['true'], user: 'nosuchuser', retries: 3, backoff: { base: 0.05, max: 0.1 } },
  })
  const missing = await c.schedule('missing')
  t.match(await c.settled(missing), { state: 'dead', attempts: 1, last_run: { reason: /^image not found on the engine \(pull: never\): POST \/containers\/create answered 404: .*nope/ } })
  const pulled = await c.schedule('pulled')
  t.match(await c.settled(pulled), { state: 'dead', last_run: { reason: /pulling localhost\/nope:missing failed: / } })
  const nouser = await c.schedule('nouser')
  t.match(await c.settled(nouser), { state: 'dead', last_run: { reason: /^engine: POST \/containers\/[0-9a-f]+\/start answered \d{3}: .*nosuchuser/ } })
  t.same(await containersOf(c.namespaces.nouser!), [], 'a container that cannot start is removed')
})

t.test('POST /kill of a running job kills its container, and the job fails for good', { skip }, async (t) => {
  const c = await containerDaemon(t, { boxes: { command: ['sleep', '60'], retries: 3 } })
  const hash = await c.schedule('boxes')
  const namespace = c.namespaces.boxes!
  await until(async () => (await containersOf(namespace)).some((box) => box.State === 'running'), 'the container to run', 20_000)
  t.match(await call(`${c.d.url}/kill`, { hash: '0'.repeat(40) }), { status: 404, body: { code: 11 } }, 'no such running job')
  t.match(await call(`${c.d.url}/kill`, { hash }), { status: 200, body: { status: 'ok', hash } })
  await until(async () => (await call(`${c.d.url}/job?hash=${hash}`)).body.state === 'dead', 'the job to be dead', 20_000)
  t.match((await call(`${c.d.url}/job?hash=${hash}`)).body, { state: 'dead', attempts: 1, last_run: { state: 'dead', reason: 'killed', exit_code: 137 } }, 'not retried')
  t.match(await containersOf(namespace), [{ State: 'exited' }])
})
