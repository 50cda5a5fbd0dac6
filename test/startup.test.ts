import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { createServer } from 'node:net'
import t from 'tap'
import { accepts, daemonCommand, freePort, removeDir, runToExit, startDaemon, tempDir } from './helpers/daemon'

/**
 * A start that fails must fail whole: exit non-zero, serve nothing, leave the data directory as it
 * was. (A failure found after listening began used to leave a daemon that kept accepting jobs it
 * would never save.)
 */

t.test('a runner module that throws when loaded: exits 1 naming the lane, serves nothing, touches nothing', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const config = path.join(dir, 'config.json')
  const data = path.join(dir, 'data')
  writeFileSync(path.join(dir, 'broken.js'), "throw new Error('cannot load me')\n")
  writeFileSync(config, JSON.stringify({ lanes: { thumbs: { runner: path.join(dir, 'broken.js') } } }))
  const port = await freePort()
  const r = await runToExit(['--config', config, '--data-dir', data, '--address', `127.0.0.1:${port}`], {}, 10_000)
  t.notOk(r.timedOut, 'the daemon exited on its own')
  t.equal(r.code, 1)
  t.match(r.stderr, /lane "thumbs".*cannot load me/)
  t.notOk(r.stdout.includes('"listening"'), 'it never said it was listening')
  t.notOk(await accepts(port), 'nothing listens on its port')
  t.notOk(existsSync(data), 'the data directory was not created')
})

t.test('an address in use: exits 1 naming it, and leaves the data directory free for the next start', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => taken.close())
  const port = (taken.address() as { port: number }).port
  const r = await runToExit(['--data-dir', dir, '--address', `127.0.0.1:${port}`], {}, 10_000)
  t.notOk(r.timedOut, 'the daemon exited on its own')
  t.equal(r.code, 1)
  t.match(r.stderr, `cannot listen on 127.0.0.1:${port}`)
  const next = await startDaemon({ dataDir: dir })
  t.equal(await next.stop(), 0, 'the next daemon on the same directory starts: the lock was released')
})

t.test('a data directory that cannot be made or written: exit 1 at once, naming the setting and the fix', async (t) => {
  // Under /proc Node's recursive mkdir never returned: the daemon spun at 100% CPU, deaf to SIGTERM.
  const proc = await runToExit(['--data-dir', '/proc/dispenserd-test', '--address', '127.0.0.1:0'], {}, 10_000)
  t.notOk(proc.timedOut, 'it did not hang')
  t.equal(proc.code, 1)
  t.match(proc.stderr, /data_dir: cannot create \/proc\/dispenserd-test .*--data-dir or DISPENSERD_DATA_DIR/)
  // As an unprivileged user (the tests run as root, which may write anywhere).
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  chmodSync(dir, 0o555)
  const [cmd, ...args] = daemonCommand()
  const denied = spawnSync(cmd!, [...args, '--data-dir', path.join(dir, 'data'), '--address', '127.0.0.1:0'], { uid: 65534, gid: 65534, encoding: 'utf8', timeout: 10_000, env: { ...process.env, DISPENSERD_ROOT: '/' } })
  t.equal(denied.status, 1)
  t.match(denied.stderr, `data_dir: cannot create ${path.join(dir, 'data')} (permission denied)`)
})
