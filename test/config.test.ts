import path from 'node:path'
import t from 'tap'
import { type ConfigSources, DEFAULTS, resolveConfig } from '../src/config'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { call, removeDir, runToExit, startDaemon, tempDir } from './helpers/daemon'

const root = '/srv/dispenserd'
function sources(over: Partial<ConfigSources> = {}): ConfigSources {
  return { flags: {}, env: {}, root, cwd: '/home/user', ...over }
}

t.test('defaults are the original ones plus ours', (t) => {
  const { config, warnings } = resolveConfig(sources())
  t.same(warnings, [])
  t.match(config, { ...DEFAULTS, address: '0.0.0.0:8282', persist_queue: true, persist_interval: 3600 })
  t.equal(config.data_dir, path.join(root, 'data'))
  t.equal(config.pid_file, path.join(root, 'data', 'dispenserd.pid'))
  t.equal(config.log_file, path.join(root, 'data', 'dispenserd.log'))
  t.end()
})

t.test('precedence: flag > environment > file > default', (t) => {
  const file = { name: 'config.json', values: { persist_interval: 10, address: '127.0.0.1:1000', log_level: 'warn' } }
  const env = { DISPENSERD_PERSIST_INTERVAL: '20', DISPENSERD_ADDRESS: '127.0.0.1:2000' }
  const { config } = resolveConfig(sources({ file, env, flags: { persist_interval: '30' } }))
  t.equal(config.persist_interval, 30, 'flag wins')
  t.equal(config.address, '127.0.0.1:2000', 'env beats file')
  t.equal(config.log_level, 'warn', 'file beats default')
  t.equal(config.max_body_bytes, 1024 * 1024, 'default')
  t.end()
})

t.test('booleans from flags, environment and file', (t) => {
  t.equal(resolveConfig(sources({ flags: { persist_queue: false } })).config.persist_queue, false)
  t.equal(resolveConfig(sources({ env: { DISPENSERD_THROTTLE_RECEIVE: 'true' } })).config.throttle_receive, true)
  t.equal(resolveConfig(sources({ env: { DISPENSERD_PERSIST_QUEUE: '0' } })).config.persist_queue, false)
  t.equal(resolveConfig(sources({ file: { name: 'f', values: { throttle_schedule: true } } })).config.throttle_schedule, true)
  t.end()
})

t.test('paths: from the file relative to root, from flags and env relative to cwd', (t) => {
  t.equal(resolveConfig(sources({ file: { name: 'f', values: { data_dir: 'q' } } })).config.data_dir, '/srv/dispenserd/q')
  t.equal(resolveConfig(sources({ flags: { data_dir: 'q' } })).config.data_dir, '/home/user/q')
  const { config } = resolveConfig(sources({ env: { DISPENSERD_DATA_DIR: '/var/lib/d' } }))
  t.equal(config.pid_file, '/var/lib/d/dispenserd.pid', 'pid file follows the data directory')
  t.end()
})

t.test('wrong types and ranges are refused, naming the key and its source', (t) => {
  const bad: [Partial<ConfigSources>, RegExp][] = [
    [{ file: { name: 'config.json', values: { persist_interval: '60' } } }, /config\.json: "persist_interval" must be an integer from 0 to 2147483647, got "60"/],
    [{ file: { name: 'config.json', values: { persist_interval: -1 } } }, /"persist_interval"/],
    [{ file: { name: 'config.json', values: { persist_queue: 'yes' } } }, /"persist_queue" must be true or false/],
    [{ file: { name: 'config.json', values: { address: '8282' } } }, /"address" must be host:port/],
    [{ file: { name: 'config.json', values: { address: '1.2.3.4:70000' } } }, /"address"/],
    [{ file: { name: 'config.json', values: { log_level: 'loud' } } }, /"log_level" must be one of trace/],
    [{ file: { name: 'config.json', values: { max_body_bytes: 0 } } }, /"max_body_bytes"/],
    [{ file: { name: 'config.json', values: [1] } }, /expected a JSON object/],
    [{ env: { DISPENSERD_PERSIST_INTERVAL: 'soon' } }, /DISPENSERD_PERSIST_INTERVAL: expected an integer/],
    [{ env: { DISPENSERD_THROTTLE_RECEIVE: 'maybe' } }, /DISPENSERD_THROTTLE_RECEIVE: expected true or false/],
    [{ flags: { max_body_bytes: '1.5' } }, /--max-body-bytes: expected an integer/],
  ]
  for (const [over, message] of bad) t.throws(() => resolveConfig(sources(over)), message)
  t.end()
})

t.test('an unknown key anywhere in the file refuses to start, naming its path and the nearest setting', (t) => {
  const exec = { runner: 'exec', command: ['/bin/true'] }
  const refused: [Record<string, unknown>, string][] = [
    [{ adress: '127.0.0.1:1' }, 'config.json: unknown setting "adress" (did you mean "address"?)'],
    [{ auth_tokn: 'secret' }, 'config.json: unknown setting "auth_tokn" (did you mean "auth_token"?)'],
    [{ colour: 'blue' }, 'config.json: unknown setting "colour"'],
    [{ lanes: { thumbs: { ...exec, concurency: 4 } } }, 'config.json: unknown setting "lanes.thumbs.concurency" (did you mean "concurrency"?)'],
    [{ lanes: { thumbs: { ...exec, retry: 3 } } }, 'config.json: unknown setting "lanes.thumbs.retry" (did you mean "retries"?)'],
    [{ lanes: { thumbs: { ...exec, backoff: { bse: 1 } } } }, 'config.json: unknown setting "lanes.thumbs.backoff.bse" (did you mean "base"?)'],
    [{ lanes: { thumbs: { ...exec, backoff: { min: 1 } } } }, 'config.json: unknown setting "lanes.thumbs.backoff.min" ("lanes.thumbs.backoff" takes: base, max)'],
    [{ lanes: { thumbs: { ...exec, arguments: [{ key: 'A' }, { key: 'B', tipe: 'integer' }] } } }, 'config.json: unknown setting "lanes.thumbs.arguments[1].tipe" (did you mean "type"?)'],
    [{ lanes: { thumbs: { ...exec, target: 'http://x/' } } }, 'config.json: unknown setting "lanes.thumbs.target" ("lanes.thumbs" takes: runner, concurrency, timeout, retries, backoff, keep_finished, arguments, unique_for, group_weights, rate, command, kill_grace, allowed_env, cwd)'],
    [{ lanes: { hooks: { runner: 'http', target: 'http://x/', command: ['/bin/true'] } } }, 'config.json: unknown setting "lanes.hooks.command" ("lanes.hooks" takes: runner, concurrency, timeout, retries, backoff, keep_finished, arguments, unique_for, group_weights, rate, target, allowed_targets, task_name)'],
    [{ lanes: { mod: { runner: './mine.js', greeting: 'hi' } } }, 'config.json: unknown setting "lanes.mod.greeting" (a runner module\'s own settings go under "options")'],
    [{ lanes: { mod: { runner: './mine.js', options: 'hi' } } }, 'config.json: lane "mod": "options" must be an object (the runner module\'s own settings)'],
    [{ dispatch: { allowed_repos: ['https://git.example/'], concurency: 2 } }, 'config.json: unknown setting "dispatch.concurency" (did you mean "concurrency"?)'],
    [{ dispatch: { allowed_repos: [], allowed_repo: ['https://git.example/'] } }, 'config.json: unknown setting "dispatch.allowed_repo" (did you mean "allowed_repos"?)'],
    [{ dispatch: { allowed_repos: ['https://git.example/'], backoff: { mx: 9 } } }, 'config.json: unknown setting "dispatch.backoff.mx" (did you mean "max"?)'],
  ]
  for (const [values, message] of refused) t.throws(() => resolveConfig(sources({ file: { name: 'config.json', values } })), { message }, JSON.stringify(values))
  const accepted = {
    lanes: {
      thumbs: { ...exec, concurrency: 2, kill_grace: 1, backoff: { base: 1, max: 2 }, arguments: [{ key: 'A', type: 'string', presence: 'optional' }] },
      hooks: { runner: 'http', target: 'http://x/', allowed_targets: ['http://x/'], task_name: 'hook' },
      mod: { runner: './mine.js', options: { greeting: 'hi', anything: [1] } },
    },
    dispatch: { allowed_repos: ['https://git.example/'], lane: 'builds', concurrency: 1, timeout: 60, retries: 1, backoff: { base: 1 }, keep_finished: 60 },
  }
  const { config } = resolveConfig(sources({ file: { name: 'config.json', values: accepted } }))
  t.same(config.lanes.map((lane) => lane.lane), ['thumbs', 'hooks', 'mod'])
  t.same(config.lanes[2]!.config.options, { greeting: 'hi', anything: [1] }, 'a module lane gets its options as written')
  t.equal(config.dispatch?.lane.lane, 'builds')
  t.end()
})

t.test('a DISPENSERD_ variable that is a near miss of a setting refuses to start; others are warned about', (t) => {
  t.throws(() => resolveConfig(sources({ env: { DISPENSERD_ADRESS: '127.0.0.1:1' } })), { message: 'environment variable DISPENSERD_ADRESS is not a setting (did you mean DISPENSERD_ADDRESS?)' })
  t.throws(() => resolveConfig(sources({ env: { DISPENSERD_AUTH_TOKN: 'x' } })), /did you mean DISPENSERD_AUTH_TOKEN\?/)
  t.throws(() => resolveConfig(sources({ env: { DISPENSERD_CONFG: 'x' } })), /did you mean DISPENSERD_CONFIG\?/)
  t.throws(() => resolveConfig(sources({ env: { dispenserd_address: 'x' } })), /dispenserd_address is not a setting \(did you mean DISPENSERD_ADDRESS\?\)/)
  const { warnings } = resolveConfig(sources({ env: { DISPENSERD_WIDGET_COLOUR: 'blue' } }))
  t.same(warnings, ['environment variable DISPENSERD_WIDGET_COLOUR is not a setting of dispenserd; ignored'])
  const ours = { DISPENSERD_ROOT: '/', DISPENSERD_CONFIG: 'c.json', DISPENSERD_TEST_BIN: 'node', DISPENSERD_URL: 'http://x', DISPENSERD_TOKEN: 't', DISPENSERD_LANE: 'l', DISPENSERD_JOB_NUM: '1', DISPENSERD_JOB_HASH: 'h', DISPENSERD_ATTEMPT: '1', HOME: '/root' }
  t.same(resolveConfig(sources({ env: ours })).warnings, [], 'our other variables, and everyone else\'s, pass quietly')
  t.end()
})

t.test('runner lanes may have more slots than max_parked_receivers: slots are not clients', (t) => {
  const lanes = { a: { runner: 'exec', command: ['/bin/true'], concurrency: 2 }, b: { runner: 'exec', command: ['/bin/true'] } }
  t.equal(resolveConfig(sources({ file: { name: 'config.json', values: { lanes, max_parked_receivers: 2 } } })).config.max_parked_receivers, 2)
  t.end()
})

t.test('the dispatch lane cannot also be declared in lanes', (t) => {
  const values = { lanes: { dispatch: { runner: 'exec', command: ['/bin/true'] } }, dispatch: { allowed_repos: ['https://git.example/'] } }
  t.throws(() => resolveConfig(sources({ file: { name: 'config.json', values } })), /config\.json: lane "dispatch" is declared in "lanes" and is also the "dispatch" lane/)
  t.end()
})

t.test('the daemon reads ROOT/config/config.json by default', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  mkdirSync(path.join(dir, 'config'))
  writeFileSync(path.join(dir, 'config', 'config.json'), JSON.stringify({ max_body_bytes: 50 }))
  const d = await startDaemon({ dataDir: dir, env: { DISPENSERD_ROOT: dir } })
  t.teardown(() => d.stop())
  t.equal((await call(`${d.url}/schedule`, { message: 'x'.repeat(60) })).status, 413)
})

t.test('--config names another file; a bad one is refused', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const configFile = path.join(dir, 'custom.json')
  writeFileSync(configFile, JSON.stringify({ persist_interval: 'hourly' }))
  const bad = await runToExit(['--config', configFile, '--data-dir', dir])
  t.not(bad.code, 0)
  t.match(bad.stderr, `${configFile}: "persist_interval" must be an integer`)

  writeFileSync(configFile, '{ not json')
  t.match((await runToExit(['--config', configFile, '--data-dir', dir])).stderr, /not valid JSON/)
  t.match((await runToExit(['--config', path.join(dir, 'missing.json')])).stderr, /cannot read config file/)

  writeFileSync(configFile, JSON.stringify({ max_body_bytes: 100 }))
  const d = await startDaemon({ dataDir: dir, args: ['--config', configFile] })
  t.teardown(() => d.stop())
  t.equal((await call(`${d.url}/schedule`, { message: 'x'.repeat(200) })).status, 413, 'the file took effect')
})

t.test('the daemon refuses a typo in the file or the environment before touching the data directory', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const configFile = path.join(dir, 'config.json')
  const data = path.join(dir, 'data')
  const cases: [Record<string, unknown>, NodeJS.ProcessEnv, string][] = [
    [{ adress: '127.0.0.1:0' }, {}, `${configFile}: unknown setting "adress" (did you mean "address"?)`],
    [{ auth_tokn: 'secret' }, {}, `${configFile}: unknown setting "auth_tokn" (did you mean "auth_token"?)`],
    [{ lanes: { thumbs: { runner: 'exec', command: ['/bin/true'], concurency: 4 } } }, {}, `${configFile}: unknown setting "lanes.thumbs.concurency" (did you mean "concurrency"?)`],
    [{}, { DISPENSERD_AUTH_TOKN: 'secret' }, 'environment variable DISPENSERD_AUTH_TOKN is not a setting (did you mean DISPENSERD_AUTH_TOKEN?)'],
  ]
  for (const [values, env, message] of cases) {
    writeFileSync(configFile, JSON.stringify(values))
    const r = await runToExit(['--config', configFile, '--data-dir', data, '--address', '127.0.0.1:0'], env)
    t.equal(r.code, 1, message)
    t.equal(r.stderr, `dispenserd: ${message}\n`)
  }
  t.notOk(existsSync(data), 'the data directory was not touched')

  writeFileSync(configFile, '{}')
  const d = await startDaemon({ dataDir: data, args: ['--config', configFile], env: { DISPENSERD_WIDGET: 'x' } })
  t.teardown(() => d.stop())
  t.ok(d.logs.some((l) => l.level === 40 && l.msg === 'environment variable DISPENSERD_WIDGET is not a setting of dispenserd; ignored'), 'an unrelated variable is a warning')
})

t.test('--help lists every setting with its environment variable', async (t) => {
  const r = await runToExit(['--help'])
  t.equal(r.code, 0)
  for (const flag of ['--address', '--config', '--data-dir', '--persist-interval', '--no-persist', '--log-level', '-d, --daemon', 'DISPENSERD_ADDRESS']) {
    t.match(r.stdout, flag)
  }
})

t.test('the Redis store: a "redis" block in the file, flags and environment; one of url and cluster', (t) => {
  const file = (redis: unknown, store = 'redis'): Partial<ConfigSources> => ({ file: { name: 'config.json', values: { store, redis } } })
  const fromFile = resolveConfig(sources(file({ url: 'redis://10.0.0.1:6379/2', prefix: 'jobs' }))).config
  t.match(fromFile, { store: 'redis', redis_url: 'redis://10.0.0.1:6379/2', redis_prefix: 'jobs', redis_cluster: [] })
  t.same(resolveConfig(sources(file({ cluster: ['10.0.0.1:7000', 'node-b:7001'] }))).config.redis_cluster, ['10.0.0.1:7000', 'node-b:7001'])
  const fromEnv = resolveConfig(sources({ env: { DISPENSERD_STORE: 'redis', DISPENSERD_REDIS_CLUSTER: '10.0.0.1:7000, 10.0.0.2:7000' } })).config
  t.same(fromEnv.redis_cluster, ['10.0.0.1:7000', '10.0.0.2:7000'])
  t.equal(resolveConfig(sources({ flags: { store: 'redis', redis_url: 'rediss://h:1' } })).config.redis_url, 'rediss://h:1')
  t.equal(resolveConfig(sources()).config.store, 'memory', 'memory by default')
  const bad: [Partial<ConfigSources>, RegExp][] = [
    [file({ url: 'redis://h:1', cluster: ['h:2'] }), /either redis\.url .* or redis\.cluster .*, not both/],
    [file({}), /store "redis" needs one of redis\.url/],
    [file({ url: 'http://h:1' }), /redis\.url must be redis:\/\/host:port/],
    [file({ cluster: 'h:1' }), /"redis\.cluster" must be a list of host:port/],
    [file({ cluster: ['h'] }), /"redis\.cluster" must be a list of host:port/],
    [file({ prefix: 'a{b}' , url: 'redis://h:1' }), /"redis\.prefix" must be letters, digits/],
    [file({ urll: 'redis://h:1' }), /unknown setting "redis\.urll" \(did you mean "url"\?\)/],
    [file('redis://h:1'), /"redis" must be an object/],
    [{ file: { name: 'config.json', values: { redis_url: 'redis://h:1' } } }, /unknown setting "redis_url"/],
    [{ env: { DISPENSERD_STORE: 'postgres' } }, /DISPENSERD_STORE: expected one of memory, redis/],
  ]
  for (const [over, message] of bad) t.throws(() => resolveConfig(sources(over)), { message }, String(message))
  t.end()
})
