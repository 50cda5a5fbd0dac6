import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import * as fsPromises from 'node:fs/promises'
import path from 'node:path'
import t, { type Test } from 'tap'
import { createLogger } from '../src/log'
import type { WriteFs } from '../src/persist/atomic'
import { Journal, journalFile, journalGenerations } from '../src/persist/journal'
import { readJournal } from '../src/persist/replay'
import { SnapshotStore } from '../src/persist/store'
import type { Job, RunReport } from '../src/queue/job'
import { Queue } from '../src/queue/queue'
import { call, removeDir, runToExit, startDaemon, tempDir } from './helpers/daemon'

/**
 * What a restart rebuilds from queue.json, dead.json and the journal after a crash at a bad
 * moment: each job exactly once, in its newest state.
 */

const quiet = createLogger('silent')
const JOURNAL = ['--persistence', 'journal', '--persist-interval', '0']

const REPORT: RunReport = { state: 'dead', startedAt: 1_700_000_000, finishedAt: 1_700_000_001, durationMs: 1000, reason: 'exit code 1', exitCode: 1, httpStatus: null, output: '' }

/** A queue with one runner lane ("r"), as the daemon wires it. */
function runnerQueue(changes?: Journal): Queue {
  const queue = new Queue({ changes })
  queue.indexLane('r')
  return queue
}

/** Runs the next job of lane r and lets it die. */
function runAndBury(queue: Queue): Job {
  return queue.bury(queue.receiveLeased('r', 60_000)!, REPORT)
}

/** The real file system, but once armed a "crash" (an exception, and nothing cleaned up) at the `n`-th rename from then. */
function crashingFs(crashAt: { n: number; renames: number }): WriteFs {
  return {
    open: (file, flags, mode) => fsPromises.open(file, flags, mode),
    rename: (from, to) => (++crashAt.renames === crashAt.n ? Promise.reject(new Error('crash')) : fsPromises.rename(from, to)),
    unlink: (file) => (crashAt.n > 0 && crashAt.renames >= crashAt.n ? Promise.resolve() : fsPromises.unlink(file)),
  }
}

/** Where each job is after loading `dir` into a fresh queue: job number → its states (twice if restored twice). */
function statesAfterLoad(dir: string): Map<number, string[]> {
  const queue = runnerQueue()
  new SnapshotStore(dir, quiet).load(queue, readJournal(dir, quiet).state)
  const states = new Map<number, string[]>()
  const note = (job: Job, state: string): void => void states.set(job.jobNum, [...(states.get(job.jobNum) ?? []), state])
  for (const lane of queue.snapshot()) for (const part of lane.parts) for (const job of part) note(job, 'queued')
  for (const jobs of queue.allDead().values()) for (const job of jobs) note(job, 'dead')
  return states
}

/**
 * Snapshot 1 holds A dead and B queued; then A is retried and B dies, and snapshot 2 "crashes" at
 * its n-th rename (1: state.json, 2: dead.json, 3: queue.json; 4: none). Returns the states loaded.
 */
async function crashDuringSecondSnapshot(t: Test, crash: number, withJournal: boolean): Promise<Map<number, string[]>> {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const journal = withJournal ? new Journal({ dir, fsync: 'always', fsyncMs: 50, generation: 1, maxBytes: 1 << 30, onFull() {}, onFailure() {}, logger: quiet }) : undefined
  const queue = runnerQueue(journal)
  const crashAt = { n: 0, renames: 0 }
  const store = new SnapshotStore(dir, quiet, crashingFs(crashAt))
  queue.schedule({ lane: 'r', priority: 1, message: 'A' })
  queue.schedule({ lane: 'r', priority: 2, message: 'B' })
  const a = runAndBury(queue)
  await store.save(queue, 'first', journal)
  runAndBury(queue)
  queue.retryDead(a.hash)
  Object.assign(crashAt, { n: crash, renames: 0 })
  await store.save(queue, 'second', journal).catch(() => undefined)
  if (journal !== undefined) await new Promise((resolve) => journal.whenDurable(resolve))
  await journal?.close()
  return statesAfterLoad(dir)
}

for (const withJournal of [false, true]) {
  t.test(`a crash between the renames of dead.json and queue.json neither doubles nor loses a job (${withJournal ? 'journal' : 'snapshot'} mode)`, async (t) => {
    for (const crash of [1, 2, 3, 4]) {
      const states = await crashDuringSecondSnapshot(t, crash, withJournal)
      const newState = crash >= 3 || withJournal
      t.same(
        Object.fromEntries(states),
        newState ? { 1: ['queued'], 2: ['dead'] } : { 1: ['dead'], 2: ['queued'] },
        `crash at rename ${crash}: A (job 1) and B (job 2) each restored once, ${newState ? 'as they are now' : 'as of the first snapshot'}`,
      )
    }
  })
}

t.test('a delay set after the last snapshot outlives a kill: the journal’s newer record wins over the snapshot’s copy', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const first = await startDaemon({ dataDir: dir, args: JOURNAL })
  const { hash } = (await call(`${first.url}/schedule`, { message: 'later' })).body as { hash: string }
  t.equal(await first.stop(), 0, 'a clean stop: queue.json holds the job, ready')
  const second = await startDaemon({ dataDir: dir, args: JOURNAL })
  const leased = await call(`${second.url}/receive_noblock`, { lease: 60 })
  t.equal(leased.body.hash, hash)
  t.equal((await call(`${second.url}/release`, { hash, lease_token: leased.body.lease_token, delay: 600 })).status, 200)
  await second.stop('SIGKILL')
  const third = await startDaemon({ dataDir: dir, args: JOURNAL })
  t.teardown(() => third.stop())
  t.same((await call(`${third.url}/jobs`)).body, { main: [] }, 'not ready')
  const found = await call(`${third.url}/job?hash=${hash}`)
  t.match(found.body, { state: 'delayed', message: 'later' })
  t.ok(Date.parse(String(found.body.not_before)) > Date.now() + 590_000, `still delayed until ${found.body.not_before}`)
})

t.test('a journal damaged before its last record refuses the start, naming file and offset, and is left untouched', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const d = await startDaemon({ dataDir: dir, args: JOURNAL })
  for (const message of ['one', 'two', 'three']) await call(`${d.url}/schedule`, { message })
  await d.stop('SIGKILL')
  const [generation] = journalGenerations(dir)
  const file = journalFile(dir, generation!)
  const lines = readFileSync(file, 'utf8').split('\n')
  const offset = Buffer.byteLength(lines[0]!) + 1
  // One flipped byte inside the second record's message; the third record is intact.
  lines[1] = lines[1]!.replace('"two"', '"twO"')
  writeFileSync(file, lines.join('\n'))
  // The pid file is information only (the killed daemon's, rewritten by whoever takes the lock).
  const files = (): Record<string, string> => Object.fromEntries(readdirSync(dir).filter((name) => name !== 'dispenserd.pid').map((name) => [name, readFileSync(path.join(dir, name), 'utf8')]))
  const before = files()
  const refused = await runToExit(['--address', '127.0.0.1:0', '--data-dir', dir, ...JOURNAL])
  t.equal(refused.code, 1)
  t.match(refused.stderr, `${file} is damaged at byte ${offset} (line 2: checksum mismatch)`)
  t.match(refused.stderr, `truncate -s ${offset} ${file}`, 'says how to start anyway')
  t.same(files(), before, 'every data file as it was')
})
