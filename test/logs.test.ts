import { execFile, spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import pino from 'pino'
import t from 'tap'
import { formatLogLine } from '../src/log-pretty'
import { Progress } from '../src/persist/progress'
import { ROOT, call, daemonCommand, removeDir, startDaemon, tempDir, until } from './helpers/daemon'

const run = promisify(execFile)

/** Starts the daemon with `args`, stdout a pipe (or a terminal through `script`), until it listens. */
async function firstLines(args: string[], options: { terminal?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const dir = tempDir()
  const command = [...daemonCommand(), '--address', '127.0.0.1:0', '--data-dir', dir, ...args]
  const [cmd, cmdArgs] = options.terminal === true ? ['script', ['-qfec', command.map((a) => `'${a}'`).join(' '), '/dev/null']] : [command[0]!, command.slice(1)]
  const proc = spawn(cmd, cmdArgs as string[], { env: { ...process.env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  proc.stdout.on('data', (c: Buffer) => (out += c.toString()))
  await until(() => /listening/.test(out), 'the listening line', 15_000)
  proc.kill('SIGTERM')
  await new Promise((resolve) => proc.once('exit', resolve))
  removeDir(dir)
  return out
}

t.test('--log-format pretty writes one readable line per event, every field kept', async (t) => {
  const out = await firstLines(['--log-format', 'pretty'])
  t.match(out, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO {2}listening address=127\.0\.0\.1:\d+ https=false engine="uWebSockets\.js \(native\)" data_dir=\S+ store=memory version=\d/m)
  t.notMatch(out, /\{"level"/, 'no JSON')
  t.notMatch(out, /\x1b\[/, 'no colours when stdout is not a terminal')
})

t.test('auto (the default) is pretty and coloured on a terminal, JSON in a pipe; NO_COLOR and json are obeyed', async (t) => {
  t.match(await firstLines([], { terminal: true, env: { NO_COLOR: undefined } }), /\x1b\[32mINFO \x1b\[39m \x1b\[1mlistening\x1b\[22m/)
  t.match(await firstLines([], { terminal: true, env: { NO_COLOR: '1' } }), /Z INFO {2}listening address=/)
  t.match(await firstLines(['--log-format', 'json'], { terminal: true }), /^\{"level":30,"time":"[^"]+","pid":\d+,"address":"127\.0\.0\.1:\d+"/m)
  t.match(await firstLines([]), /^\{"level":30,.*"msg":"listening"\}/m)
})

t.test('pretty lines show errors with their stack, quote what needs quoting, pass anything else through', (t) => {
  const line = JSON.stringify({ level: 50, time: '2026-11-22T04:11:00.000Z', pid: 1, lane: 'video files', job_num: 7, err: { message: 'boom', stack: 'Error: boom\n    at x' }, msg: 'job failed' })
  t.equal(formatLogLine(line, false), '2026-11-22T04:11:00.000Z ERROR job failed lane="video files" job_num=7\n    Error: boom\n        at x\n')
  t.equal(formatLogLine('not json', false), 'not json\n')
  t.end()
})

t.test('a long load logs progress once a second by the clock, not per job', (t) => {
  const lines: Record<string, unknown>[] = []
  const logger = pino({ base: null, timestamp: false }, { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) })
  let now = 1_000
  const progress = new Progress(logger, 'still loading', 'jobs', { file: 'q.json' }, 1000, () => now)
  for (let i = 0; i < 4096 * 10; i++) {
    if (i % 4096 === 0) now += 400 // 400 ms per 4096 jobs
    progress.tick()
  }
  t.same(lines.map((l) => [l.msg, l.jobs, l.elapsed_ms, l.file]), [
    ['still loading', 4096 * 3, 1200, 'q.json'],
    ['still loading', 4096 * 6, 2400, 'q.json'],
    ['still loading', 4096 * 9, 3600, 'q.json'],
  ])
  t.end()
})

t.test('start says what it loads: the snapshot with its size, the journal with its files', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  writeFileSync(path.join(dir, 'queue.json'), '{\n"main": [\n{"job_num":1,"hash":"a","timestamp":"2026-11-22T04:11:00Z","lane":"main","priority":1,"message":"m"}\n]\n}\n')
  const d = await startDaemon({ dataDir: dir, args: ['--persistence', 'journal'] })
  await call(`${d.url}/schedule`, { message: 'journaled' })
  await d.proc.kill('SIGKILL')
  await d.exited
  const again = await startDaemon({ dataDir: dir, args: ['--persistence', 'journal'] })
  t.teardown(() => again.stop())
  t.match(again.logs.find((l) => l.msg === 'loading queue'), { file: path.join(dir, 'queue.json'), bytes: Number })
  t.match(again.logs.find((l) => l.msg === 'replaying journal'), { files: Number, bytes: Number })
  t.equal(d.logs.find((l) => l.msg === 'replaying journal'), undefined, 'nothing to replay the first time')
})

t.test('-d shows the loading lines, and on a failure only what this start wrote', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const launcher = path.join(ROOT, 'dispenserd')
  writeFileSync(path.join(dir, 'queue.json'), '{\n"main": []\n}\n')
  const started = await run(launcher, ['-d', '--address', '127.0.0.1:0', '--data-dir', dir])
  t.match(started.stderr, /INFO {2}loading queue file=\S+queue\.json bytes=\d+/, JSON.stringify(started) + readFileSync(path.join(dir, 'dispenserd.log'), 'utf8'))
  const port = Number(/port (\d+)/.exec(started.stdout)![1])
  t.teardown(() => run(launcher, ['stop', '--data-dir', dir]))
  t.equal((await call(`http://127.0.0.1:${port}/`)).status, 200)
  const second = await run(launcher, ['-d', '--address', '127.0.0.1:0', '--data-dir', dir]).catch((e: { code: number; stderr: string }) => e)
  t.not((second as { code: number }).code, 0)
  const stderr = (second as { stderr: string }).stderr
  t.match(stderr, /another dispenserd .* is using this data directory/)
  t.notMatch(stderr, /"msg":"listening"/, "the first daemon's listening line is not shown as if it were this start's")
})
