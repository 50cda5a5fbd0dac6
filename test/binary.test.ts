import { execFile, spawn } from 'node:child_process'
import { mkdirSync, readdirSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { BINARY, NODE_ENTRY, call, removeDir, tempDir, until } from './helpers/daemon'

interface Bare {
  port: Promise<number>
  exited: Promise<number | null>
  kill(): void
}

/** Starts a command and reads the port from its "listening" log line. */
function launch(command: string[], args: string[], env: NodeJS.ProcessEnv): Bare {
  const proc = spawn(command[0]!, [...command.slice(1), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  proc.stderr.on('data', (c: Buffer) => (err += c.toString()))
  const exited = new Promise<number | null>((resolve) => proc.once('exit', resolve))
  const port = new Promise<number>((resolve, reject) => {
    proc.stdout.on('data', (c: Buffer) => {
      out += c.toString()
      const m = /"address":"127\.0\.0\.1:(\d+)"/.exec(out)
      if (m) resolve(Number(m[1]))
    })
    proc.once('exit', (code) => reject(new Error(`exited ${code}: ${err}`)))
  })
  return { port, exited, kill: () => proc.kill('SIGTERM') }
}

t.test('bin/dispenserd serves with an empty environment: no node_modules, no Node on PATH', async (t) => {
  const work = tempDir()
  t.teardown(() => removeDir(work))
  const tmp = path.join(work, 'tmp')
  mkdirSync(tmp)
  // env -i: nothing but the temporary directory, which is checked for leftovers afterwards.
  const daemon = launch(['/usr/bin/env', '-i', `TMPDIR=${tmp}`, BINARY], ['--address', '127.0.0.1:0', '--data-dir', path.join(work, 'data')], {})
  const port = await daemon.port
  const status = await call(`http://127.0.0.1:${port}/`)
  t.match((status.body.payload as { server: { http_engine: string } }).server.http_engine, /native/)
  t.equal((await call(`http://127.0.0.1:${port}/schedule`, { message: 'from the binary' })).status, 200)
  t.same(readdirSync(tmp), [], 'the extracted addon is already gone while running')
  daemon.kill()
  t.equal(await daemon.exited, 0)
  t.same(readdirSync(tmp), [], 'nothing left in the temporary directory')
})

t.test('two copies starting at the same moment both serve', async (t) => {
  const work = tempDir()
  t.teardown(() => removeDir(work))
  const env = { TMPDIR: work, PATH: '/usr/bin:/bin' }
  const copies = [1, 2, 3].map((i) => launch([BINARY], ['--address', '127.0.0.1:0', '--data-dir', path.join(work, `d${i}`)], env))
  const ports = await Promise.all(copies.map((c) => c.port))
  for (const port of ports) t.equal((await call(`http://127.0.0.1:${port}/`)).body.status, 'ok')
  for (const c of copies) c.kill()
  t.same(await Promise.all(copies.map((c) => c.exited)), [0, 0, 0])
  t.same(readdirSync(work).filter((f) => f.startsWith('dispenserd-uws-')), [], 'no extracted addon left behind')
})

t.test('the plain Node entry point (dist/) serves too', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const daemon = launch(NODE_ENTRY, ['--address', '127.0.0.1:0', '--data-dir', dir], process.env)
  const port = await daemon.port
  await call(`http://127.0.0.1:${port}/schedule`, { message: 'node entry' })
  t.equal((await call(`http://127.0.0.1:${port}/receive_noblock`)).body.message, 'node entry')
  daemon.kill()
  t.equal(await daemon.exited, 0)
})

t.test('bin/dispenserd -d and stop work without the launcher', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const run = (args: string[]): Promise<string> =>
    new Promise((resolve, reject) => execFile(BINARY, args, (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout))))
  const out = await run(['-d', '--address', '127.0.0.1:0', '--data-dir', dir])
  const port = Number(/port (\d+)/.exec(out)![1])
  await until(async () => (await call(`http://127.0.0.1:${port}/`)).status === 200, 'status')
  t.match(await run(['stop', '--data-dir', dir]), /stopped/)
})
