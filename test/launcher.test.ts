import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { ROOT, call, removeDir, tempDir } from './helpers/daemon'

const run = promisify(execFile)
const launcher = path.join(ROOT, 'dispenserd')

t.test('./dispenserd -d starts in the background; ./dispenserd stop waits for the snapshot', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const common = ['--data-dir', dir]
  const started = await run(launcher, ['-d', '--address', '127.0.0.1:0', ...common])
  const match = /pid (\d+), port (\d+)/.exec(started.stdout)
  t.ok(match, `start message: ${started.stdout}`)
  const [pid, port] = [Number(match![1]), Number(match![2])]
  t.equal(readFileSync(path.join(dir, 'dispenserd.pid'), 'utf8').trim(), String(pid), 'pid file under the data directory')

  // It answers as soon as -d returns.
  const url = `http://127.0.0.1:${port}`
  t.equal((await call(`${url}/`)).body.status, 'ok')
  await call(`${url}/schedule`, { message: 'survives stop' })

  const again = await run(launcher, ['-d', '--address', '127.0.0.1:0', ...common]).catch((e: { code: number; stderr: string }) => e)
  t.not((again as { code: number }).code, 0, 'a second background daemon on the same directory fails')
  t.match((again as { stderr: string }).stderr, /another dispenserd .* is using this data directory/)

  const stopped = await run(launcher, ['stop', ...common])
  t.match(stopped.stdout, `dispenserd (pid ${pid}) stopped`)
  t.equal(existsSync(path.join(dir, 'dispenserd.pid')), false)
  const saved = JSON.parse(readFileSync(path.join(dir, 'queue.json'), 'utf8')) as Record<string, { message: string }[]>
  t.same(saved.main!.map((j) => j.message), ['survives stop'], 'the final snapshot was written before stop returned')
  const log = readFileSync(path.join(dir, 'dispenserd.log'), 'utf8')
  t.match(log, /"msg":"listening"/, 'logs go to the log file')
  t.match(log, /"msg":"stopped"/)

  const none = await run(launcher, ['stop', ...common]).catch((e: { code: number; stderr: string }) => e)
  t.not((none as { code: number }).code, 0, 'stop with nothing running fails')
  t.match((none as { stderr: string }).stderr, /no dispenserd is running/)
})

t.test('-d reports a daemon that fails to start, with its log', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const failed = await run(launcher, ['-d', '--address', '127.0.0.1:0', '--data-dir', dir, '--log-level', 'nonsense']).catch(
    (e: { code: number; stderr: string }) => e,
  )
  t.not((failed as { code: number }).code, 0)
  t.match((failed as { stderr: string }).stderr, /--log-level: expected one of/)
})
