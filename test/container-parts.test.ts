import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { resolveConfig } from '../src/config'
import { createLogger } from '../src/log'
import { createContainerRunner } from '../src/runners/container'
import { laneManifest, makeManifest } from '../src/runners/container-manifest'
import { containerConfig } from '../src/runners/container-config'
import { JobsTotal, renderJobsTotal } from '../src/runners/container-metrics'
import { type JqFiles, JqFilter, loadJq } from '../src/runners/jq'
import { LogFrames } from '../src/runners/log-frames'
import type { RunnerJob } from '../src/runners/runner'
import { removeDir, runToExit, tempDir } from './helpers/daemon'

/** The container runner's parts that need no engine: settings, manifests, jq, log frames, metrics. */

const logger = createLogger('silent')
const job: RunnerJob = { lane: 'ctr', jobNum: 7, hash: 'f'.repeat(40), attempt: 2, priority: 5, message: '{"arguments":{"SRC":"a.png"}}', arguments: { SRC: 'a.png' }, target: undefined }

t.test('every container setting is checked at creation, naming the key', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  writeFileSync(path.join(dir, 'empty.jq'), '  \n')
  const image = 'localhost/busybox:test'
  const cases: [Record<string, unknown>, RegExp][] = [
    [{}, /"image" is required \(or a "filter" \/ "filter_file"/],
    [{ image: '' }, /"image" must be a non-empty string/],
    [{ image: 'two words' }, /"image" must be an image reference/],
    [{ image, command: 'echo hi' }, /"command" must be a non-empty array of strings/],
    [{ image, command: [] }, /"command" must be a non-empty array of strings/],
    [{ image, env: ['A=1'] }, /"env" must be an object/],
    [{ image, env: { 'A-B': '1' } }, /"env": "A-B" is not an environment variable name/],
    [{ image, env: { A: 1 } }, /"env": A must be a string/],
    [{ image, env: { DISPENSERD_X: 'y' } }, /DISPENSERD_ variables are the daemon's own/],
    [{ image, memory: '1 lot' }, /"memory" must be a number of bytes, or a size such as "256m"/],
    [{ image, memory: 1024 }, /at least 6 MiB/],
    [{ image, cpus: 0 }, /"cpus" must be a number of CPUs/],
    [{ image, cpus: '2' }, /"cpus" must be a number of CPUs/],
    [{ image, network: 3 }, /"network" must be a non-empty string/],
    [{ image, user: '' }, /"user" must be a non-empty string/],
    [{ image, workdir: 'work' }, /"workdir" must be an absolute path/],
    [{ image, labels: { 'dispenserd.job': 'x' } }, /"labels": "dispenserd\.job": names starting with "dispenserd\." are the runner's own/],
    [{ image, labels: { team: 7 } }, /"labels": "team" must be a string/],
    [{ image, pull: 'sometimes' }, /"pull" must be one of never, missing, always/],
    [{ image, keep_exited_for: -1 }, /"keep_exited_for" must be a number of seconds from 0/],
    [{ image, upkeep_interval: 0 }, /"upkeep_interval" must be a number of seconds from 0\.05/],
    [{ image, engine: '/var/run/docker.sock' }, /"engine" must be unix:\/\/\/path, http:\/\/host:port or https:\/\/host:port/],
    [{ image, engine: 'unix://run/docker.sock' }, /a unix socket address is unix:\/\/ and an absolute path/],
    [{ image, engine: 'tcp://engine:2375' }, /"engine" must be unix:\/\/\/path/],
    [{ image, engine: 'http://engine:2375/v1.41' }, /"engine" takes no path/],
    [{ image, engine: 'https://engine:2376' }, /an https "engine" needs "engine_cert" and "engine_key"/],
    [{ image, engine: 'https://engine:2376', engine_cert: 'missing.pem', engine_key: 'missing.pem' }, /"engine_cert": cannot read .*missing\.pem \(ENOENT\)/],
    [{ image, engine: 'unix:///var/run/docker.sock', engine_ca: 'ca.pem' }, /"engine_ca" is for an https engine; this one is a unix socket/],
    [{ image, namespace: 'has space' }, /"namespace" must be 1 to 128 letters/],
    [{ image, filter: '' }, /"filter" must be a jq program/],
    [{ image, filter: '.', filter_file: 'f.jq' }, /give "filter" or "filter_file", not both/],
    [{ filter_file: 'nowhere.jq' }, /"filter_file": cannot read .*nowhere\.jq \(ENOENT\)/],
    [{ filter_file: 'empty.jq' }, /"filter_file": .*empty\.jq is empty/],
    [{ filter: '{Image: "x",' }, /"filter": jq cannot compile it: jq: error: syntax error, unexpected end of file .* at <top-level>, line 1:/],
    [{ filter: '.manifest | nosuchfn(1)' }, /"filter": jq cannot compile it: jq: error: nosuchfn\/1 is not defined/],
  ]
  for (const [config, wanted] of cases) t.throws(() => createContainerRunner({ lane: 'ctr', config, root: dir, logger }), wanted, JSON.stringify(config))
})

t.test('a container lane refuses keys it does not take, and names the lane and key', (t) => {
  const file = (lane: Record<string, unknown>): Parameters<typeof resolveConfig>[0] => ({
    flags: {},
    env: {},
    root: '/srv',
    cwd: '/srv',
    file: { name: 'config.json', values: { lanes: { boxes: { runner: 'container', image: 'localhost/busybox:test', ...lane } } } },
  })
  t.throws(() => resolveConfig(file({ keep_exitd_for: 10 })), /unknown setting "lanes\.boxes\.keep_exitd_for".*did you mean "keep_exited_for"/)
  t.throws(() => resolveConfig(file({ target: 'http://x/' })), /lanes\.boxes\.target/)
  t.throws(() => resolveConfig(file({ kill_grace: 1 })), /lanes\.boxes\.kill_grace/)
  t.doesNotThrow(() => resolveConfig(file({ memory: '64m', cpus: 0.5, network: 'none', pull: 'missing', keep_exited_for: 0, upkeep_interval: 1, namespace: 'n', filter: '.manifest', allowed_env: ['SRC'] })))
  t.end()
})

t.test('the lane settings make the manifest; the runner labels it last', async (t) => {
  const config = containerConfig({
    lane: 'ctr',
    config: { image: 'localhost/busybox:test', command: ['sh', '-c', 'echo $SRC'], env: { MODE: 'fast' }, memory: '64m', cpus: 0.5, user: '65534', workdir: '/tmp', labels: { team: 'media' } },
    root: '/',
    logger,
  })
  t.same(laneManifest(config, job), {
    Image: 'localhost/busybox:test',
    Cmd: ['sh', '-c', 'echo $SRC'],
    Env: ['SRC=a.png', 'MODE=fast', 'DISPENSERD_LANE=ctr', 'DISPENSERD_JOB_NUM=7', `DISPENSERD_JOB_HASH=${job.hash}`, 'DISPENSERD_ATTEMPT=2'],
    User: '65534',
    WorkingDir: '/tmp',
    Labels: { team: 'media' },
    HostConfig: { NetworkMode: 'none', Memory: 64 * 1024 * 1024, NanoCpus: 500_000_000 },
  })
  const made = await makeManifest(config, undefined, job)
  t.match(made, {
    ok: true,
    manifest: { Labels: { team: 'media', 'dispenserd.namespace': 'default', 'dispenserd.lane': 'ctr', 'dispenserd.job': job.hash, 'dispenserd.job_num': '7', 'dispenserd.attempt': '2' } },
  })
})

t.test('a filter reads the job and the lane manifest and makes the manifest; what it cannot make fails the job for good', async (t) => {
  const config = (filter: string): ReturnType<typeof containerConfig> => containerConfig({ lane: 'ctr', config: { image: 'localhost/busybox:test', filter }, root: '/', logger })
  const run = async (filter: string): Promise<unknown> => {
    const jq = JqFilter.create(filter)
    t.teardown(() => jq.close())
    return makeManifest(config(filter), jq, job)
  }
  t.match(await run('. as $job | .manifest | .Cmd = ["echo", $job.arguments.SRC, ($job.priority | tostring), $job.message.arguments.SRC] | .Labels.seen = $job.hash[:4]'), {
    ok: true,
    manifest: { Image: 'localhost/busybox:test', Cmd: ['echo', 'a.png', '5', 'a.png'], Labels: { seen: 'ffff', 'dispenserd.job': job.hash } },
  })
  t.match(await run('{Image: "other:1", Labels: {"dispenserd.job": "forged"}}'), { ok: true, manifest: { Image: 'other:1', Labels: { 'dispenserd.job': job.hash } } }, 'the runner’s labels win')
  const final = (reason: RegExp | string): unknown => ({ ok: false, result: { status: 'failed', retry: false, reason } })
  t.match(await run('.arguments.SRC | error("no thumbnails for \\(.)")'), final('filter: jq: error: no thumbnails for a.png'))
  t.match(await run('.manifest, .manifest'), final('filter: made 2 outputs; it must make one object, the container manifest'))
  t.match(await run('empty'), final('filter: made 0 outputs; it must make one object, the container manifest'))
  t.match(await run('.arguments.SRC'), final('filter: made "a.png"; it must make an object, the container manifest'))
  t.match(await run('.manifest | del(.Image)'), final('filter: the manifest has no "Image" (a non-empty string)'))
  t.match(await run('.manifest | .Tty = true'), final(/sets "Tty"/))
  t.match(await run('.manifest | .HostConfig.AutoRemove = true'), final(/sets "HostConfig\.AutoRemove": the exit code would be lost/))
  t.match(await run('.manifest | .Labels = {a: 1}'), final('filter: the manifest "Labels" must be an object of strings'))
})

t.test('jq: a filter that runs too long is stopped and the next run gets a fresh jq; env is not the daemon’s', async (t) => {
  const looping = JqFilter.create('if .n > 0 then def f: f; f else . end', 1000)
  t.teardown(() => looping.close())
  t.same(await looping.apply({ n: 0 }), { ok: true, outputs: [{ n: 0 }] })
  const began = Date.now()
  t.same(await looping.apply({ n: 1 }), { ok: false, message: 'the filter ran longer than 1000 ms and was stopped' })
  t.ok(Date.now() - began < 10_000, `stopped at its limit (${Date.now() - began} ms)`)
  t.same(await looping.apply({ n: 0 }), { ok: true, outputs: [{ n: 0 }] }, 'a fresh jq answers the next run')
  process.env.DISPENSERD_SECRET_FOR_TEST = 'not-for-filters'
  const env = JqFilter.create('[env, $ENV] | map(has("DISPENSERD_SECRET_FOR_TEST"))')
  t.teardown(() => env.close())
  t.same(await env.apply(null), { ok: true, outputs: [[false, false]] })
  t.equal(process.exitCode, undefined, 'failing filters leave the daemon’s exit code alone')
})

t.test('jq: the time limit counts the run, not the loading of a fresh jq after one was stopped', async (t) => {
  // A jq that takes 1.5 s to load (the real one, after a busy wait), with a 1 s limit.
  const slowly = (): JqFiles => {
    const { script, wasm } = loadJq()
    return { script: `{ const until = Date.now() + 1500; while (Date.now() < until); }\n${script}`, wasm }
  }
  const looping = JqFilter.create('if .n > 0 then def f: f; f else . end', 1000, slowly)
  t.teardown(() => looping.close())
  t.same(await looping.apply({ n: 1 }), { ok: false, message: 'the filter ran longer than 1000 ms and was stopped' })
  t.same(await looping.apply({ n: 0 }), { ok: true, outputs: [{ n: 0 }] }, 'the fresh jq loaded for 1.5 s and then answered')
})

t.test('log frames: stdout and stderr payloads, split anywhere, the last 4 KiB kept', (t) => {
  const frame = (stream: number, text: string): Buffer => {
    const payload = Buffer.from(text)
    const header = Buffer.alloc(8)
    header[0] = stream
    header.writeUInt32BE(payload.length, 4)
    return Buffer.concat([header, payload])
  }
  const all = Buffer.concat([frame(1, 'out 1\n'), frame(2, 'err 1\n'), frame(1, 'out 2\n'), Buffer.from('\n')])
  for (let size = 1; size <= all.length; size++) {
    const frames = new LogFrames()
    for (let at = 0; at < all.length; at += size) frames.push(all.subarray(at, at + size))
    t.equal(frames.toString(), 'out 1\nerr 1\nout 2\n', `chunks of ${size}`)
  }
  const big = new LogFrames()
  for (let i = 0; i < 10_000; i++) big.push(frame(1 + (i % 2), `line ${i}\n`))
  t.ok(Buffer.byteLength(big.toString()) <= 4096)
  t.match(big.toString(), /line 9999\n$/)
  t.end()
})

t.test('jobs_total renders as the seed shows it: the dashboards’ exposition, lanes of one namespace added up', (t) => {
  // The seed's example, event by event: one job succeeded; another failed and was restarted twice.
  const one = new JobsTotal('default')
  const other = new JobsTotal('default')
  one.count('die', '124')
  one.count('create')
  one.count('start')
  one.count('die', '124')
  one.count('start')
  other.count('die', '0')
  other.count('start')
  one.count('die', '124')
  one.count('start')
  other.count('create')
  const text = renderJobsTotal([...one.list(), ...other.list()])
  t.equal(
    text,
    [
      '# HELP jobs Number of jobs.',
      '# TYPE jobs counter',
      'jobs_total{namespace="default",action="die",status="124"} 3',
      'jobs_total{namespace="default",action="create",status=""} 2',
      'jobs_total{namespace="default",action="start",status=""} 4',
      'jobs_total{namespace="default",action="die",status="0"} 1',
      '# EOF',
      '',
    ].join('\n'),
  )
  // The docker job dispatcher seed's own exposition block, copied byte for byte into the fixture.
  t.equal(text, readFileSync(path.join(__dirname, 'fixtures', 'seed-003-jobs-total.txt'), 'utf8'), 'the seed’s own block, byte for byte')
  t.equal(renderJobsTotal(new JobsTotal('a"b\\c').list()), '# HELP jobs Number of jobs.\n# TYPE jobs counter\n# EOF\n')
  const odd = new JobsTotal('a"b\\c')
  odd.count('create')
  t.match(renderJobsTotal(odd.list()), 'jobs_total{namespace="a\\"b\\\\c",action="create",status=""} 1')
  t.end()
})

t.test('bin/dispenserd runs jq: a filter that does not compile stops the start, naming lane and key', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const lanes = (filter: string): string => JSON.stringify({ lanes: { boxes: { runner: 'container', engine: `unix://${dir}/no-engine.sock`, filter } } })
  writeFileSync(path.join(dir, 'bad.json'), lanes('.manifest | .Cmd = [.arguments.X'))
  const bad = await runToExit(['--config', path.join(dir, 'bad.json'), '--data-dir', path.join(dir, 'data')], { DISPENSERD_ROOT: dir })
  t.equal(bad.code, 1)
  t.match(bad.stderr, /lane "boxes": "filter": jq cannot compile it: jq: error: syntax error/)
})
