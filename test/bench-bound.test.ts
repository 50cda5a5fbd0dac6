import { spawn } from 'node:child_process'
import { once } from 'node:events'
import path from 'node:path'
import { createInterface } from 'node:readline'
import t from 'tap'
import { ROOT, call, daemonForTest } from './helpers/daemon'

/** Starts the compiled bound on a free port; resolves to its port once it listens. */
async function startBound(t: { teardown(fn: () => Promise<void>): void }): Promise<number> {
  const proc = spawn(process.execPath, [path.join(ROOT, 'dist', 'bench', 'bound.js'), '0'], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(async () => {
    proc.kill()
    if (proc.exitCode === null) await once(proc, 'exit')
  })
  for await (const line of createInterface({ input: proc.stdout })) {
    const listening = /^listening (\d+)/.exec(line)
    if (listening) return Number(listening[1])
  }
  throw new Error('the bound exited before listening')
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
