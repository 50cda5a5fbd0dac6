import * as fsPromises from 'node:fs/promises'
import nodeFs from 'node:fs'
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { syncBuiltinESMExports } from 'node:module'
import path from 'node:path'
import t, { type Test } from 'tap'
import { createLogger } from '../src/log'
import type { WriteFs } from '../src/persist/atomic'
import { Journal, type JournalFs, journalFile, realJournalFs } from '../src/persist/journal'
import { readJournal } from '../src/persist/replay'
import { SnapshotStore } from '../src/persist/store'
import type { Job, RunReport } from '../src/queue/job'
import { Queue } from '../src/queue/queue'
import { FsyncGate } from './helpers/fsync-gate'
import { type Running, call, rawExchange, removeDir, startDaemon, tempDir, until } from './helpers/daemon'

/**
 * Durability and delivery promises of README "Persistence" and "Durability and delivery
 * guarantees" under faults an outside review found broken: crashes between renames, failed and
 * paused fdatasyncs, write failures, malformed runner results. Each test failed on the code as
 * reviewed (2026-11-30).
 */

const quiet = createLogger('silent')
const ALWAYS = ['--persistence', 'journal', '--journal-fsync', 'always', '--persist-interval', '0']
const REPORT: RunReport = { state: 'dead', startedAt: 1_700_000_000, finishedAt: 1_700_000_001, durationMs: 1000, reason: 'exit code 1', exitCode: 1, httpStatus: null, output: '' }

/** A queue with one runner lane ("r"), as the daemon wires it. */
function runnerQueue(): Queue {
  const queue = new Queue()
  queue.indexLane('r')
  return queue
}

/** The real file system; once `crash.at` is set, the `crash.at`-th rename from then "crashes" (throws, cleans nothing up). */
function crashingFs(crash: { at: number; renames: number }): WriteFs {
  return {
    open: (file, flags, mode) => fsPromises.open(file, flags, mode),
    rename: (from, to) => (crash.at > 0 && ++crash.renames === crash.at ? Promise.reject(new Error('crash')) : fsPromises.rename(from, to)),
    unlink: (file) => (crash.at > 0 && crash.renames >= crash.at ? Promise.resolve() : fsPromises.unlink(file)),
  }
}

/** Each job of `queue` by number: 'queued' (ready, held) or 'dead'. */
function states(queue: Queue): Record<number, string[]> {
  const out: Record<number, string[]> = {}
  const note = (job: Job, state: string): void => void (out[job.jobNum] = [...(out[job.jobNum] ?? []), state])
  for (const lane of queue.snapshot()) for (const part of lane.parts) for (const job of part) note(job, 'queued')
  for (const jobs of queue.allDead().values()) for (const job of jobs) note(job, 'dead')
  return out
}

/** A fresh process loading `dir` (snapshot mode). */
function restart(dir: string, crash = { at: 0, renames: 0 }): { queue: Queue; store: SnapshotStore } {
  const queue = runnerQueue()
  const store = new SnapshotStore(dir, quiet, crashingFs(crash))
  store.load(queue, readJournal(dir, quiet).state)
  return { queue, store }
}

t.test('snapshot mode: a job restored from dead.json\'s "retried" entries survives the next crash between the renames too', async (t) => {
  // README, Persistence: "A crash between the two renames leaves every job in one place".
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  // Process 1: A dies; snapshot 1 has it in dead.json. A is retried; snapshot 2 crashes between
  // the rename of dead.json (A "retried") and that of queue.json (renames: 1 state, 2 dead, 3 queue).
  const crash1 = { at: 0, renames: 0 }
  const queue1 = runnerQueue()
  const store1 = new SnapshotStore(dir, quiet, crashingFs(crash1))
  queue1.schedule({ lane: 'r', priority: 1, message: 'A' })
  const a = queue1.bury(queue1.receiveLeased('r', 60_000)!, REPORT)
  await store1.save(queue1, 'first')
  queue1.retryDead(a.hash)
  Object.assign(crash1, { at: 3, renames: 0 })
  await t.rejects(store1.save(queue1, 'second'), /crash/)

  // Process 2 loads A from dead.json's "retried" entries, as designed.
  const crash2 = { at: 0, renames: 0 }
  const second = restart(dir, crash2)
  t.same(states(second.queue), { 1: ['queued'] }, 'after the first crash A is queued (from dead.json\'s retried entry)')
  // Its next snapshot crashes at the same point.
  Object.assign(crash2, { at: 3, renames: 0 })
  await t.rejects(second.store.save(second.queue, 'interval'), /crash/)

  // Process 3: queue.json is still snapshot 1's (no A), dead.json is process 2's: A must be in one of them.
  const third = restart(dir)
  t.same(states(third.queue), { 1: ['queued'] }, 'A, queued and never finished, is still there after the second crash')
})

async function daemon(t: Test, gate?: FsyncGate, dataDir?: string): Promise<Running> {
  const d = await startDaemon({ dataDir, args: ALWAYS, env: gate?.env })
  t.teardown(() => d.stop('SIGKILL'))
  return d
}

/** A daemon in always mode whose fdatasyncs pass the gate. */
async function gatedDaemon(t: Test): Promise<{ gate: FsyncGate; d: Running }> {
  const gate = new FsyncGate()
  const d = await daemon(t, gate)
  t.teardown(() => {
    removeDir(d.dataDir)
    removeDir(gate.dir)
  })
  return { gate, d }
}

async function mainMessages(d: Running): Promise<string[]> {
  return ((await call(`${d.url}/jobs`)).body.main as { message: string }[]).map((j) => j.message)
}

function journalText(dir: string): string {
  return readdirSync(dir)
    .filter((f) => /^journal\.\d+\.log$/.test(f))
    .map((f) => readFileSync(path.join(dir, f), 'utf8'))
    .join('')
}

t.test('always mode: a job put back because its client left is synced like any change: a power loss keeps it', async (t) => {
  // README, Durability: journal "always", machine dies: "nothing answered is lost"; Delivery:
  // "A reply that cannot be delivered because the client has gone puts the job back."
  const { gate, d } = await gatedDaemon(t)
  t.equal((await call(`${d.url}/schedule`, { message: 'x' })).status, 200, 'x is scheduled, synced and answered')
  gate.close()
  const synced = gate.started().length
  const leaving = new AbortController()
  const taking = call(`${d.url}/receive_noblock`, {}, { signal: leaving.signal }).catch(() => undefined)
  await gate.waitStarted(synced + 1, 'the fsync of the take')
  leaving.abort() // the consumer leaves while its reply waits for the fsync
  await taking
  t.ok((await call(`${d.url}/`)).status === 200, 'the daemon has served a request since the consumer left')
  gate.open() // every fsync the daemon asks for from now on runs
  await until(() => d.logs.some((l) => l.msg === 'job put back' && l.reason === 'receiver disconnected'), 'the failed reply and its put-back')
  t.same(await mainMessages(d), ['x'], 'x is back in its lane (in memory)')
  await until(() => journalText(d.dataDir).includes('"op":"return"'), 'the put-back record written')
  // An fsync of the file holding the put-back record, begun after it was written, must follow,
  // though no reply waits on it. (A power loss before that fsync ends loses x: the take was
  // durable, its reply was not: at most once, as README says of plain receives.)
  const file = readdirSync(d.dataDir).find((f) => /^journal\.\d+\.log$/.test(f) && readFileSync(path.join(d.dataDir, f), 'utf8').includes('"op":"return"'))!
  const size = nodeFs.statSync(path.join(d.dataDir, file)).size
  await until(() => gate.synced().some((r) => path.basename(r.file) === file && r.size >= size), 'an fsync covering the put-back record')

  await d.stop('SIGKILL')
  gate.powerLoss(d.dataDir)
  const again = await daemon(t, undefined, d.dataDir)
  t.same(await mainMessages(again), ['x'], 'x, answered to its scheduler and delivered to no one, is still queued after the power loss')
})

/** A runner lane "m" served by a module whose runs fail for good, reporting `exitCode` as given. */
function moduleLane(dir: string, exitCode: string): string[] {
  writeFileSync(
    path.join(dir, 'odd.js'),
    `exports.createRunner = () => ({ run: async () => ({ status: 'failed', reason: 'no', retry: false, exitCode: ${exitCode} }) })`,
  )
  const config = path.join(dir, 'config.json')
  writeFileSync(config, JSON.stringify({ lanes: { m: { runner: './odd.js' } } }))
  return ['--config', config]
}

for (const [exitCode, mode] of [["'exit 3'", 'snapshot'], ['NaN', 'journal']] as const) {
  t.test(`a runner module reporting exitCode ${exitCode} fails its job, and the daemon starts again (${mode} mode)`, async (t) => {
    // README, Runners: a runner that "returns something else fails that job with a reason; the daemon
    // goes on"; brief: "No input may crash the daemon". A dead job's report is written with
    // String(exitCode): not JSON, so dead.json or the journal can no longer be read.
    const dir = tempDir()
    t.teardown(() => removeDir(dir))
    const dataDir = path.join(dir, 'data')
    const args = [...moduleLane(dir, exitCode), ...(mode === 'journal' ? ['--persistence', 'journal', '--persist-interval', '0'] : [])]
    const d = await startDaemon({ dataDir, args, env: { DISPENSERD_ROOT: dir } })
    const { hash } = (await call(`${d.url}/schedule`, { lane: 'm', message: '{"arguments": {}}' })).body as { hash: string }
    const shown = async (): Promise<string> => (await fetch(`${d.url}/job?hash=${hash}`)).text()
    await until(async () => (await shown()).includes('"state":"dead"'), 'the job to die')
    const text = await shown()
    t.doesNotThrow(() => JSON.parse(text), `GET /job answers JSON: ${text.slice(-120)}`)
    if (mode === 'journal') {
      t.equal((await call(`${d.url}/schedule`, { message: 'after' })).status, 200, 'a later change, answered')
      await d.stop('SIGKILL')
    } else {
      t.equal(await d.stop(), 0, 'a clean stop')
    }
    const again = await startDaemon({ dataDir, args, env: { DISPENSERD_ROOT: dir } }).catch((err: Error) => err)
    if (!(again instanceof Error)) t.teardown(() => again.stop())
    t.notOk(again instanceof Error, `the daemon starts again (${again instanceof Error ? again.message : 'it did'})`)
  })
}

t.test('journal mode: two pipelined schedules on one connection are answered in order, or refused with nothing changed', async (t) => {
  // Issue 9: "Pipelined requests get their replies in order or a clear refusal before any change
  // is made". With the journal a change's reply waits, and uWS closes a connection on which a
  // request arrives while a reply is pending: then neither change may have been made.
  const d = await startDaemon({ args: ['--persistence', 'journal', '--journal-fsync', 'never'] })
  t.teardown(async () => {
    await d.stop()
    removeDir(d.dataDir)
  })
  const request = (message: string): string => {
    const body = JSON.stringify({ message })
    return `POST /schedule HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`
  }
  const replies = await rawExchange(d.port, request('one') + request('two'), 2000)
  const answered = replies.match(/HTTP\/1\.1 200 OK/g)?.length ?? 0
  const queued = await mainMessages(d)
  t.same(queued, ['one', 'two'].slice(0, answered), `every change made was answered (${answered} answered, queued ${JSON.stringify(queued)})`)
})

/** Paths of the files fsyncSync is called on during the test (fd numbers are reused, paths are not). */
function recordFsyncs(t: Test): string[] {
  const fsyncs: string[] = []
  const realFsync = nodeFs.fsyncSync
  nodeFs.fsyncSync = (fd: number): void => {
    fsyncs.push(nodeFs.readlinkSync(`/proc/self/fd/${fd}`))
    realFsync(fd)
  }
  syncBuiltinESMExports()
  t.teardown(() => {
    nodeFs.fsyncSync = realFsync
    syncBuiltinESMExports()
  })
  return fsyncs
}

/** A journal file system whose fdatasyncs end only when the test says, and how (or at once, once `release`d). */
function heldSyncs(): { fs: JournalFs; pending: ((err: Error | null) => void)[]; synced: string[]; release: () => void } {
  const pending: ((err: Error | null) => void)[] = []
  /** Paths of the files fdatasync'ed (fd numbers are reused). */
  const synced: string[] = []
  let released = false
  return {
    pending,
    synced,
    release() {
      released = true
      for (const done of pending.splice(0)) done(null)
    },
    fs: {
      ...realJournalFs,
      sync(fd, done) {
        synced.push(nodeFs.readlinkSync(`/proc/self/fd/${fd}`))
        if (released) realJournalFs.sync(fd, done)
        else pending.push(done)
      },
    },
  }
}

function journalWith(dir: string, fs: JournalFs): Journal {
  return new Journal({ dir, fsync: 'always', fsyncMs: 50, generation: 1, maxBytes: 1 << 30, onFull() {}, onFailure() {}, logger: quiet, fs })
}

function durableAnswer(journal: Journal): { settled: () => boolean; err: () => Error | undefined } {
  let settled = false
  let error: Error | undefined
  journal.whenDurable((err) => {
    settled = true
    error = err
  })
  return { settled: () => settled, err: () => error }
}

t.test('always mode: after an fdatasync of a file fails, a reply waiting on a later fdatasync of the same file hears of the failure', async (t) => {
  // README, Durability: "If the journal cannot be written (disk full, I/O error), the requests
  // waiting on that write are answered 503 with code 10". On Linux an fdatasync error is reported
  // once per open file: a second fdatasync of the same file returns 0 although the pages written
  // before the error may be lost, so nothing of a file whose fdatasync failed can be trusted.
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const { fs, pending, release } = heldSyncs()
  const journal = journalWith(dir, fs)
  const queue = new Queue({ changes: journal })
  queue.schedule({ lane: 'main', priority: 1, message: 'one' })
  const one = durableAnswer(journal)
  await until(() => pending.length === 1, 'the fdatasync for "one"')
  queue.schedule({ lane: 'main', priority: 1, message: 'two' })
  const two = durableAnswer(journal)
  await until(() => pending.length === 2, 'a second fdatasync, for "two", while the first runs')
  pending[0]!(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }))
  t.match(one.err()?.message, /EIO/, '"one" hears of the failure')
  t.ok(journal.broken, 'the journal is broken')
  pending[1]!(null) // what Linux answers the second fdatasync of that file
  await until(() => two.settled(), 'the answer for "two"')
  t.ok(two.err() !== undefined, '"two" (written to the same file before its fdatasync failed) is not answered as durable')
  release()
  await journal.close().catch(() => undefined)
})

t.test('always mode: a broken journal that rotates twice answers a reply on the middle file only after an fdatasync of it', async (t) => {
  // Journal.useGeneration skips the fsync of the file it leaves while the journal is broken, yet
  // tells the replies that waited for that fsync that they are durable.
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const { fs, pending, synced, release } = heldSyncs()
  const fsyncs = recordFsyncs(t)
  const journal = journalWith(dir, fs)
  const queue = new Queue({ changes: journal })
  queue.schedule({ lane: 'main', priority: 1, message: 'one' })
  const one = durableAnswer(journal)
  await until(() => pending.length === 1, 'the fdatasync of file 1')
  pending.shift()!(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }))
  t.ok(one.err(), 'file 1 failed: the journal is broken until a snapshot succeeds')
  t.ok(journal.rotate(), 'a repair snapshot starts a new file (and then fails)')
  // In one turn: a background hand-over (a lease that ran out, given to a parked receiver) goes to
  // the open file, the next repair snapshot starts another, and another change goes there.
  queue.schedule({ lane: 'main', priority: 1, message: 'two' })
  const two = durableAnswer(journal)
  const file2 = journalFile(dir, journal.generation)
  t.ok(journal.rotate())
  queue.schedule({ lane: 'main', priority: 1, message: 'three' })
  await until(() => two.settled() || pending.length > 0, 'the file holding "two" to be written')
  const file2Synced = synced.includes(file2) || fsyncs.includes(file2)
  t.ok(!two.settled() || two.err() !== undefined || file2Synced, `"two" is answered as durable only after file 2 was synced (synced: ${file2Synced}, answered: ${two.settled()}, error: ${two.err()?.message})`)
  release()
  await journal.close().catch(() => undefined)
})

t.test('interval mode: changes answered just before a write failure are fsynced when the broken file is left', async (t) => {
  // README, Durability: journal "interval", machine dies: "up to journal_fsync_ms (50 ms) of
  // answered changes". When a write fails the daemon snapshots at once (main.ts repair), which
  // starts a new file; Journal.useGeneration then closes the broken file WITHOUT an fsync, so what
  // was answered there in the last journal_fsync_ms is left to the OS (~30 s of writeback).
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const fsyncs = recordFsyncs(t)
  const synced: string[] = []
  let failWrites = false
  const fs: JournalFs = {
    ...realJournalFs,
    write(fd, data) {
      if (failWrites) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })
      realJournalFs.write(fd, data)
    },
    sync(fd, done) {
      synced.push(nodeFs.readlinkSync(`/proc/self/fd/${fd}`))
      realJournalFs.sync(fd, done)
    },
  }
  // journal_fsync_ms 500, so the steps below surely fall inside one interval.
  const journal = new Journal({ dir, fsync: 'interval', fsyncMs: 500, generation: 1, maxBytes: 1 << 30, onFull() {}, onFailure() {}, logger: quiet, fs })
  const queue = new Queue({ changes: journal })
  // A first record and its fsync: the next fsync is then due journal_fsync_ms after this one.
  queue.schedule({ lane: 'main', priority: 1, message: 'first' })
  await until(() => synced.length === 1, 'the first fsync')
  const syncedBefore = synced.length
  queue.schedule({ lane: 'main', priority: 1, message: 'answered' })
  const answered = durableAnswer(journal)
  await until(() => answered.settled(), 'the answer')
  t.equal(answered.err(), undefined, '"answered" is answered: written, its fsync due within 500 ms')
  failWrites = true
  queue.schedule({ lane: 'main', priority: 1, message: 'refused' })
  const refused = durableAnswer(journal)
  await until(() => refused.settled(), 'the failed write')
  t.ok(journal.broken, 'the journal is broken')
  failWrites = false
  t.ok(journal.rotate(), 'the repair snapshot starts a new file')
  queue.schedule({ lane: 'main', priority: 1, message: 'later' }) // anything written to file 2 closes file 1
  const later = durableAnswer(journal)
  await until(() => later.settled(), 'file 2 written')
  const deadline = Date.now() + 1000
  await until(() => Date.now() > deadline, 'well past journal_fsync_ms', 3000)
  const file1 = journalFile(dir, 1)
  t.ok(synced.slice(syncedBefore).includes(file1) || fsyncs.includes(file1), `file 1, holding the answered record, was fsynced (fdatasyncs: ${JSON.stringify(synced.map((f) => path.basename(f)))}, fsyncs: ${JSON.stringify(fsyncs.map((f) => path.basename(f)))})`)
  await journal.close()
})

t.test('always mode: a take undone after its fdatasync failed ("the job stays queued") survives a kill before the next compaction', async (t) => {
  // README, Durability: on a journal failure the requests waiting "are answered 503 with code 10
  // and a message saying what became of their change"; here: "the job stays queued". The take's
  // record is in the file (written; only its fdatasync failed), the record putting the job back
  // goes to the broken generation and is dropped, and at replay the journal's last record (the
  // take) wins over the repair snapshot, which holds the job.
  const { gate, d } = await gatedDaemon(t)
  t.equal((await call(`${d.url}/schedule`, { message: 'x' })).status, 200, 'x is scheduled and synced')
  gate.close()
  const before = gate.started().length
  gate.failAt(before + 1)
  const taking = call(`${d.url}/receive_noblock`)
  await gate.waitStarted(before + 1, 'the fdatasync of the take')
  gate.allow(before + 1) // it fails with EIO; every later sync is held
  const reply = await taking
  t.same([reply.status, reply.body.code], [503, 10], 'the take is answered 503 code 10')
  t.match(reply.body.message, /the job stays queued/)
  t.same(await mainMessages(d), ['x'], 'x is back in its lane')
  const queueFile = path.join(d.dataDir, 'queue.json')
  await until(() => nodeFs.existsSync(queueFile) && readFileSync(queueFile, 'utf8').includes('"message":"x"'), 'the repair snapshot, holding x')
  await d.stop('SIGKILL') // a crash: the page cache survives, nothing is truncated
  const again = await daemon(t, undefined, d.dataDir)
  t.same(await mainMessages(again), ['x'], 'x, told to stay queued and in the snapshot, is still queued')
})

t.test('always mode: a batch take whose fdatasync failed is answered 503 code 10, and every job of it stays queued in its place', async (t) => {
  const { gate, d } = await gatedDaemon(t)
  for (const message of ['x', 'y', 'z']) t.equal((await call(`${d.url}/schedule`, { message })).status, 200, `${message} is scheduled and synced`)
  gate.close()
  const before = gate.started().length
  gate.failAt(before + 1)
  const taking = call(`${d.url}/receive_noblock`, { count: 2, lease: 60 })
  await gate.waitStarted(before + 1, 'the fdatasync of the batch take')
  gate.allow(before + 1) // it fails with EIO; every later sync is held
  const reply = await taking
  t.same([reply.status, reply.body.code], [503, 10], 'the batch take is answered 503 code 10')
  t.match(reply.body.message, /the jobs stay queued/)
  t.same(await mainMessages(d), ['x', 'y', 'z'], 'x and y are back in their places, before z')
})
