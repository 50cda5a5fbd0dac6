import { mkdirSync, readdirSync, rmSync } from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import { FsyncGate } from './helpers/fsync-gate'
import { type Running, call, removeDir, startDaemon } from './helpers/daemon'

/**
 * The journal's reply path under attack, with the real daemon, real sockets and real files: since
 * replies to changes wait on a Durable whose listeners run inside the journal's write and
 * fdatasync callbacks, each reply must go out once, only after its own records are on disk
 * (synced, in always mode), never to a client that left (uWS aborts the process on a write to an
 * aborted response), and never as 200 for a change a failed write or fdatasync left out of the
 * journal. The daemon's fdatasyncs are held at a gate (helpers/fsync-gate.c) so that a reply that
 * must not have come yet is checked while its fsync is surely still running.
 */

const ALWAYS = ['--persistence', 'journal', '--journal-fsync', 'always', '--persist-interval', '0']

interface Gated {
  gate: FsyncGate
  d: Running
}

async function gatedDaemon(t: Test, args: string[] = ALWAYS): Promise<Gated> {
  const gate = new FsyncGate()
  const d = await startDaemon({ args, env: gate.env })
  t.teardown(async () => {
    gate.open()
    await d.stop('SIGKILL')
    removeDir(d.dataDir)
    removeDir(gate.dir)
  })
  return { gate, d }
}

/** The same data directory, without the gate (after a kill). */
async function restarted(t: Test, dataDir: string): Promise<Running> {
  const d = await startDaemon({ dataDir, args: ALWAYS })
  t.teardown(() => d.stop('SIGKILL'))
  return d
}

async function schedule(d: Running, messages: string[], lane = 'main'): Promise<void> {
  for (let i = 0; i < messages.length; i += 5000) {
    const r = await call(`${d.url}/schedule`, { jobs: messages.slice(i, i + 5000).map((message) => ({ message, lane })) })
    if (r.status !== 200) throw new Error(`schedule answered ${r.status}: ${r.text}`)
  }
}

async function laneCount(d: Running, lane = 'main'): Promise<number> {
  const r = await call(`${d.url}/jobs?lane=${lane}&state=ready&limit=1`)
  return Number(r.body.total)
}

t.test('always mode: a bulk whose first changes\' fdatasync failed is not answered 200 on a later file\'s fsync', async (t) => {
  // A bulk changes a thousand jobs a turn, each turn's records in their own write and fdatasync;
  // its reply waited only on the journal's state after the last turn. An fdatasync failing on an
  // early turn's records breaks the journal, which then writes the later turns to a fresh file:
  // synced there, the last turn answered the bulk 200, and the early turns' changes were in no
  // synced file. (The failure lands within the bulk's first turns: the bulk runs 20 of them.)
  const { gate, d } = await gatedDaemon(t)
  const messages = Array.from({ length: 20_000 }, (_, i) => `m${i}`)
  await schedule(d, messages)
  // The repair snapshot the failure sets off cannot be written (state.json is a directory with a
  // file in it): the journal is all that keeps the bulk's changes.
  mkdirSync(path.join(d.dataDir, 'state.json', 'x'), { recursive: true })
  const before = gate.started().length
  gate.failAt(before + 1) // the first fdatasync after the bulk starts fails with EIO
  const reply = await call(`${d.url}/bulk`, { action: 'delete', filter: { lane: 'main' } })
  const generations = readdirSync(d.dataDir).filter((f) => /^journal\.\d+\.log$/.test(f))
  t.comment(`bulk answered ${reply.status} ${reply.text.slice(0, 300)}; journal files ${generations.join(' ')}`)
  if (reply.status !== 200) {
    t.same([reply.status, reply.body.code], [503, 10], 'the bulk is answered 503 code 10')
    return
  }
  t.equal(reply.body.done, messages.length, 'answered 200: every job deleted')
  await d.stop('SIGKILL')
  gate.powerLoss(d.dataDir)
  rmSync(path.join(d.dataDir, 'state.json'), { recursive: true, force: true })
  const again = await restarted(t, d.dataDir)
  t.equal(await laneCount(again), 0, 'after a power loss no job the bulk was answered as deleting is back')
})

