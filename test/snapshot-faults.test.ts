import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import * as fsPromises from 'node:fs/promises'
import path from 'node:path'
import pino from 'pino'
import t from 'tap'
import type { WriteFs } from '../src/persist/atomic'
import { SnapshotStore } from '../src/persist/store'
import { Queue } from '../src/queue/queue'
import { call, removeDir, startDaemon, tempDir, until } from './helpers/daemon'

function fault(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected fault`), { code })
}

/** The real file system, except for the one call told to fail. */
function faultyFs(failing: { open?: string; write?: string; rename?: string }): WriteFs {
  return {
    async open(file, flags, mode) {
      if (failing.open && flags === 'w') throw fault(failing.open)
      const handle = await fsPromises.open(file, flags, mode)
      if (!failing.write) return handle
      let writes = 0
      return {
        write: ((...args: Parameters<typeof handle.write>) => (++writes > 1 ? Promise.reject(fault(failing.write!)) : handle.write(...args))) as typeof handle.write,
        sync: () => handle.sync(),
        close: () => handle.close(),
      }
    },
    rename: (from, to) => (failing.rename ? Promise.reject(fault(failing.rename)) : fsPromises.rename(from, to)),
    unlink: (file) => fsPromises.unlink(file),
  }
}

t.test('a snapshot that cannot be written keeps the previous file whole and is reported', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const logger = pino({ level: 'silent' })
  const queue = new Queue()
  for (let i = 0; i < 3000; i++) queue.schedule({ lane: 'main', priority: i % 7, message: `job ${i} ${'x'.repeat(100)}` })
  await new SnapshotStore(dir, logger).save(queue, 'test')
  const good = readFileSync(path.join(dir, 'queue.json'), 'utf8')
  queue.schedule({ lane: 'main', priority: 1, message: 'after the good snapshot' })

  for (const failing of [{ write: 'ENOSPC' }, { open: 'EROFS' }, { rename: 'EACCES' }]) {
    const store = new SnapshotStore(dir, logger, faultyFs(failing))
    await t.rejects(store.save(queue, 'test'), { code: Object.values(failing)[0] })
    t.match(store.status.last_error, Object.values(failing)[0]!, 'the failure is reported')
    t.equal(readFileSync(path.join(dir, 'queue.json'), 'utf8'), good, `previous queue.json intact after ${JSON.stringify(failing)}`)
    t.same(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temporary file left')
  }
  const healthy = new SnapshotStore(dir, logger)
  await healthy.save(queue, 'test')
  t.equal(healthy.status.last_error, null)
  t.match(readFileSync(path.join(dir, 'queue.json'), 'utf8'), 'after the good snapshot', 'the next snapshot succeeds')
})

t.test('a daemon whose data directory breaks keeps serving, reports it, and exits 1 at SIGTERM', async (t) => {
  const dir = tempDir()
  const pidDir = tempDir()
  t.teardown(() => {
    rmSync(dir, { recursive: true, force: true })
    removeDir(pidDir)
  })
  const d = await startDaemon({ dataDir: dir, args: ['--persist-interval', '1', '--pid-file', path.join(pidDir, 'd.pid')] })
  await call(`${d.url}/schedule`, { message: 'kept' })
  const snapshot = async (): Promise<Record<string, unknown>> => ((await call(`${d.url}/`)).body.payload as { snapshot: Record<string, unknown> }).snapshot
  await until(async () => (await snapshot()).last_jobs === 1, 'a first snapshot', 10_000)
  // Replace the data directory with a plain file: every later write fails, even as root.
  rmSync(dir, { recursive: true, force: true })
  writeFileSync(dir, 'not a directory')
  await until(async () => (await snapshot()).last_error !== null, 'a failed snapshot', 10_000)
  t.match((await snapshot()).last_error, /EEXIST|ENOTDIR/)
  t.equal((await call(`${d.url}/schedule`, { message: 'still served' })).status, 200, 'the daemon keeps serving')
  t.equal(await d.stop(), 1, 'SIGTERM with a failing final snapshot exits 1')
  t.ok(d.logs.some((l) => /final snapshot FAILED/.test(String(l.msg))), 'and says so')
  t.ok(d.logs.some((l) => l.msg === 'snapshot failed; the previous queue.json is intact'))
  rmSync(dir, { force: true })
  mkdirSync(dir)
})
