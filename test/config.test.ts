import path from 'node:path'
import t from 'tap'
import { type ConfigSources, DEFAULTS, resolveConfig } from '../src/config'
import { mkdirSync, writeFileSync } from 'node:fs'
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

t.test('unknown keys in the file are warned about, not fatal', (t) => {
  const { warnings } = resolveConfig(sources({ file: { name: 'config.json', values: { adress: 'x', persist_queue: true } } }))
  t.same(warnings, ['config.json: unknown setting "adress" ignored'])
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

  writeFileSync(configFile, JSON.stringify({ max_body_bytes: 100, colour: 'blue' }))
  const d = await startDaemon({ dataDir: dir, args: ['--config', configFile] })
  t.teardown(() => d.stop())
  t.ok(d.logs.some((l) => l.level === 40 && /unknown setting "colour"/.test(String(l.msg))), 'unknown key logged as a warning')
  t.equal((await call(`${d.url}/schedule`, { message: 'x'.repeat(200) })).status, 413, 'the file took effect')
})

t.test('--help lists every setting with its environment variable', async (t) => {
  const r = await runToExit(['--help'])
  t.equal(r.code, 0)
  for (const flag of ['--address', '--config', '--data-dir', '--persist-interval', '--no-persist', '--log-level', '-d, --daemon', 'DISPENSERD_ADDRESS']) {
    t.match(r.stdout, flag)
  }
})
