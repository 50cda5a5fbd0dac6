import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { daemonCommand, removeDir, runToExit, startDaemon, tempDir } from './helpers/daemon'

/** Starts a daemon without waiting; resolves to whether it came up listening or exited. */
function race(dir: string): { proc: ChildProcess; outcome: Promise<'listening' | 'refused'> } {
  const [cmd, ...args] = daemonCommand()
  const proc = spawn(cmd!, [...args, '--address', '127.0.0.1:0', '--data-dir', dir, '--no-persist'], { stdio: ['ignore', 'pipe', 'pipe'] })
  const outcome = new Promise<'listening' | 'refused'>((resolve) => {
    proc.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('"msg":"listening"')) resolve('listening')
    })
    proc.once('exit', () => resolve('refused'))
  })
  return { proc, outcome }
}

t.test('daemons started together on one data directory: exactly one runs, every time', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  for (let round = 0; round < 8; round++) {
    // A stale pid file (a dead process) is what let two daemons both take over under the old lock.
    writeFileSync(path.join(dir, 'dispenserd.pid'), '999999999\n')
    const contenders = [race(dir), race(dir), race(dir)]
    const outcomes = await Promise.all(contenders.map((c) => c.outcome))
    const winners = contenders.filter((_, i) => outcomes[i] === 'listening')
    t.equal(winners.length, 1, `round ${round}: one daemon runs (${outcomes.join(', ')})`)
    const winner = winners[0]!.proc
    t.equal(readFileSync(path.join(dir, 'dispenserd.pid'), 'utf8').trim(), String(winner.pid), 'the pid file names the one that runs')
    for (const c of contenders) c.proc.kill('SIGTERM')
    await Promise.all(contenders.map((c) => (c.proc.exitCode !== null ? undefined : new Promise((r) => c.proc.once('exit', r)))))
  }
})

t.test('a pid file naming a live process that is not a dispenserd does not block a start', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  // This test's own process: alive, and unrelated to the data directory.
  writeFileSync(path.join(dir, 'dispenserd.pid'), `${process.pid}\n`)
  const d = await startDaemon({ dataDir: dir, args: ['--no-persist'] })
  t.teardown(() => d.stop())
  t.equal(readFileSync(path.join(dir, 'dispenserd.pid'), 'utf8').trim(), String(d.proc.pid))
})

t.test('a refused daemon leaves the running one’s pid file alone; another path to the same directory is the same lock', async (t) => {
  const dir = tempDir()
  const links = tempDir()
  t.teardown(() => {
    removeDir(dir)
    removeDir(links)
  })
  const d = await startDaemon({ dataDir: dir, args: ['--no-persist'] })
  t.teardown(() => d.stop())
  const alias = path.join(links, 'alias')
  symlinkSync(dir, alias)
  const refused = await runToExit(['--address', '127.0.0.1:0', '--data-dir', alias, '--pid-file', path.join(links, 'other.pid')])
  t.not(refused.code, 0)
  t.match(refused.stderr, 'another dispenserd')
  t.equal(readFileSync(path.join(dir, 'dispenserd.pid'), 'utf8').trim(), String(d.proc.pid), 'the running daemon’s pid file is intact')
  t.equal(existsSync(path.join(links, 'other.pid')), false, 'the refused daemon wrote no pid file')
  t.equal(await d.stop(), 0)
  t.equal(existsSync(path.join(dir, 'dispenserd.pid')), false, 'a clean stop removes its pid file')
})

t.test('a killed daemon’s lock is free at once, and its snapshot temporaries are removed at the next start', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const first = await startDaemon({ dataDir: dir })
  await first.stop('SIGKILL')
  const left = ['.queue.json.4242.tmp', '.dead.json.4242.tmp', '.state.json.77.tmp']
  for (const name of left) writeFileSync(path.join(dir, name), Buffer.alloc(256 * 1024, 'x'))
  mkdirSync(path.join(dir, 'keep'))
  writeFileSync(path.join(dir, '.notes.4242.tmp'), 'not ours')
  const second = await startDaemon({ dataDir: dir })
  t.teardown(() => second.stop())
  for (const name of left) t.equal(existsSync(path.join(dir, name)), false, `${name} removed`)
  t.equal(existsSync(path.join(dir, '.notes.4242.tmp')), true, 'other files are left alone')
  const removed = second.logs.filter((line) => line.msg === 'removed a temporary file left by a snapshot that was cut short')
  t.same(removed.map((line) => [path.basename(String(line.file)), line.bytes]).sort(), left.map((name) => [name, 256 * 1024]).sort())
})
