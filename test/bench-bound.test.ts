import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { crc32 } from 'node:zlib'
import t from 'tap'
import { ROOT, call, daemonForTest } from './helpers/daemon'

/** Starts a compiled bare program of bench/ on a free port; resolves to its port once it listens. */
async function startBound(t: { teardown(fn: () => Promise<void>): void }, args = ['bound.js', '0']): Promise<number> {
  const [script, ...rest] = args
  const proc = spawn(process.execPath, [path.join(ROOT, 'dist', 'bench', script!), ...rest], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(async () => {
    proc.kill()
    if (proc.exitCode === null) await once(proc, 'exit')
  })
  for await (const line of createInterface({ input: proc.stdout })) {
    const listening = /^listening (\d+)/.exec(line)
    if (listening) return Number(listening[1])
  }
  throw new Error(`${script!} exited before listening`)
}

/** A reply with the values that differ between two servers (numbers' values, hash, time) masked. */
function shape(reply: Record<string, unknown>): string {
  return JSON.stringify(reply, (key, value: unknown) => (key === 'hash' ? `<${String(value).length} hex>` : key === 'timestamp' ? '<time>' : value))
}

// The bound (bench/bound.ts) is quoted as the best a bare program does on dispenserd's work: it must
// do that work. The same requests go to both; replies must match in shape, serving order and checks.
t.test('the bound answers schedules and receives as dispenserd does', async (t) => {
  const ours = await daemonForTest(t, ['--no-persist'])
  const servers = { bound: `http://127.0.0.1:${await startBound(t)}`, dispenserd: ours.url }
  const requests: [string, unknown][] = [
    ['/schedule', { message: 'low', priority: 7 }],
    ['/schedule', { message: 'first "quoted" é', priority: 3 }],
    ['/schedule', { message: 'second', priority: 3 }],
    ['/schedule', { message: 'default priority' }],
    ['/schedule', { jobs: [{ message: 'batch a', priority: 3 }, { message: 'batch b' }] }],
    ['/schedule', { message: 'elsewhere', lane: 'other', priority: 0 }],
    ['/schedule', { message: 42 }],
    ['/schedule', { message: 'bad priority', priority: 1.5 }],
    ...Array.from({ length: 7 }, (): [string, unknown] => ['/receive_noblock', '']),
  ]
  const replies: Record<string, { status: number; shape: string }[]> = { bound: [], dispenserd: [] }
  for (const [name, url] of Object.entries(servers)) {
    for (const [path, body] of requests) {
      const reply = await call(url + path, body)
      // Error messages are the daemon's to word; the bound only has to refuse with the same code.
      if (reply.body.status === 'error') reply.body.message = '<message>'
      replies[name]!.push({ status: reply.status, shape: shape(reply.body) })
    }
  }
  t.same(replies.bound, replies.dispenserd)
  const received = replies.dispenserd!.slice(-7).map((r) => (JSON.parse(r.shape) as { message?: string }).message)
  t.same(received, ['first "quoted" é', 'second', 'batch a', 'low', 'default priority', 'batch b', 'empty queue'], 'served by priority, then in order (the daemon, and so the bound)')
})

// The journal's bound (bench/journal-ceiling.ts) is quoted as what any journal loses on this disk:
// it must write a record per schedule, before it answers, in every mode but 'none'.
for (const mode of ['always', 'interval'] as const) {
  t.test(`the journal's bound writes a checksummed record of each schedule before it answers (${mode})`, async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'journal-ceiling-test-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const url = `http://127.0.0.1:${await startBound(t, ['journal-ceiling.js', '0', mode, dir])}`
    const file = path.join(dir, 'journal-ceiling.log')
    for (const [i, message] of ['first', 'second "quoted" é', 'third'].entries()) {
      const { status, body } = await call(`${url}/schedule`, { message })
      t.equal(status, 200)
      t.equal(body.status, 'ok')
      const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '')
      t.equal(lines.length, i + 1, 'the record is in the file when the reply comes')
      const [sum, json] = [lines[i]!.slice(0, 8), lines[i]!.slice(9)]
      t.equal(sum, crc32(json).toString(16).padStart(8, '0'), 'its checksum is of its JSON')
      t.equal((JSON.parse(json) as { message: string }).message, message)
    }
  })
}
