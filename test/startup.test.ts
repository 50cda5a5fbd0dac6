import { existsSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { accepts, freePort, removeDir, runToExit, tempDir } from './helpers/daemon'

/**
 * A start that fails must fail whole: exit non-zero, serve nothing, leave the data directory as it
 * was. (Runner concurrency above max_parked_receivers used to be found only after listening began:
 * the daemon printed an error but kept accepting jobs it would never save.)
 */

t.test('runner concurrency above max_parked_receivers: exits 1 naming the setting, serves nothing, touches nothing', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const config = path.join(dir, 'config.json')
  const data = path.join(dir, 'data')
  writeFileSync(config, JSON.stringify({ max_parked_receivers: 2, lanes: { thumbs: { runner: 'exec', command: ['/bin/true'], concurrency: 3 } } }))
  const port = await freePort()
  const r = await runToExit(['--config', config, '--data-dir', data, '--address', `127.0.0.1:${port}`], {}, 10_000)
  t.notOk(r.timedOut, 'the daemon exited on its own')
  t.equal(r.code, 1)
  t.match(r.stderr, /concurrency adds up to 3 \(thumbs: 3\).*max_parked_receivers is 2/)
  t.notOk(r.stdout.includes('"listening"'), 'it never said it was listening')
  t.notOk(await accepts(port), 'nothing listens on its port')
  t.notOk(existsSync(data), 'the data directory was not created')
})
