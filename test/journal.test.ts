import { appendFileSync, copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { crc32 } from 'node:zlib'
import t from 'tap'
import { createLogger } from '../src/log'
import { Job, writeJobMembers } from '../src/queue/job'
import { ByteWriter } from '../src/queue/bytes'
import { stampOf } from '../src/queue/stamp'
import { type DurableCallback, Journal, type JournalFs, journalFile, journalGenerations, realJournalFs } from '../src/persist/journal'
import { readJournal } from '../src/persist/replay'
import type { WriteFs } from '../src/persist/atomic'
import { SnapshotStore } from '../src/persist/store'
import { Queue } from '../src/queue/queue'
import { type Running, call, removeDir, runToExit, startDaemon, tempDir, until } from './helpers/daemon'

const quiet = createLogger('silent')

function journalIn(dir: string, fs: JournalFs = realJournalFs, onFailure: () => void = () => undefined): Journal {
  return new Journal({ dir, fsync: 'always', fsyncMs: 50, generation: 1, maxBytes: 1 << 30, onFull() {}, onFailure, logger: quiet, fs })
}

function durable(journal: Journal): Promise<Error | undefined> {
  return new Promise((resolve) => journal.whenDurable(resolve as DurableCallback))
}

function job(n: number, message = `m${n}`): Job {
  return new Job(n, stampOf('main', 5, 1_700_000_000), message)
}

/** fdatasyncs that end only when the test says so, each with the file descriptor it syncs. */
function pausedSyncs(): { running: { fd: number; done: (err: Error | null) => void }[]; fs: JournalFs } {
  const running: { fd: number; done: (err: Error | null) => void }[] = []
  return { running, fs: { ...realJournalFs, sync: (fd, done) => running.push({ fd, done }) } }
}

/** The error a failed fdatasync reports. */
const eio = (): Error => Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' })

/** What a callback heard, as `name: durable` or `name: <error message>`. */
const heardAs = (name: string, err: Error | undefined): string => `${name}: ${err?.message ?? 'durable'}`

t.test('records are checksummed lines, and replay keeps each job’s last word', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const journal = journalIn(dir)
  journal.scheduled(job(1))
  journal.scheduled(job(2, 'line\nbreak "quoted" ünïcode'))
  journal.scheduled(job(3))
  journal.leased(job(1))
  journal.acked(job(1))
  journal.taken(job(2))
  journal.returned(job(2, 'line\nbreak "quoted" ünïcode'), 'not delivered')
  journal.taken(job(3))
  t.equal(await durable(journal), undefined)
  await journal.close()
  const lines = readFileSync(journalFile(dir, 1), 'utf8').trimEnd().split('\n')
  t.equal(lines.length, 8)
  t.match(lines[0], /^[0-9a-f]{8} \{"op":"schedule","job_num":1,"hash":"[0-9a-f]{40}",/)
  const { state } = readJournal(dir, quiet)
  t.equal(state.jobs.get(1), null, 'acked: gone')
  t.equal(state.jobs.get(3), null, 'taken: gone')
  t.match(state.jobs.get(2), { jobNum: 2, message: 'line\nbreak "quoted" ünïcode', priority: 5 }, 'returned: there, whole')
  t.equal(state.highestJobNum, 3)
})

t.test('a failed write breaks the journal until a snapshot compacts it; later records go to a new file', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  let failWrites = true
  const failing: JournalFs = {
    ...realJournalFs,
    write(fd, data) {
      if (failWrites) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' })
      realJournalFs.write(fd, data)
    },
  }
  const failures: string[] = []
  const journal = journalIn(dir, failing, () => failures.push('failed'))
  journal.scheduled(job(1))
  const err = await durable(journal)
  t.match(err?.message, /ENOSPC/, 'the waiting reply hears of the failure')
  t.ok(journal.broken)
  t.same(failures, ['failed'], 'the daemon is told once')
  failWrites = false
  // A record made while broken (a job put back when its reply failed, a lease running out) is not
  // lost with the broken file: it goes to a new one, which replay reads after it.
  journal.returned(job(2), 'not delivered')
  t.equal(await durable(journal), undefined, 'written to the new file')
  t.ok(journal.broken, 'still broken: the failed record is only in memory until a snapshot')
  t.same(journalGenerations(dir), [1, 2])
  const generation = journal.rotate()!
  journal.scheduled(job(3))
  journal.compacted(generation)
  t.equal(await durable(journal), undefined, 'the snapshot’s generation is written')
  t.equal(journal.broken, undefined, 'whole again once the snapshot is in')
  t.same(journalGenerations(dir), [generation], 'the older generations were deleted')
  await journal.close()
  t.same([...readJournal(dir, quiet).state.jobs.keys()], [3])
})

async function jobsOf(d: Running): Promise<Record<string, { job_num: number; message: string }[]>> {
  return (await call(`${d.url}/jobs`)).body as Record<string, { job_num: number; message: string }[]>
}

function messages(jobs: Record<string, { message: string }[]>): Record<string, string[]> {
  return Object.fromEntries(Object.entries(jobs).map(([lane, list]) => [lane, list.map((j) => j.message)]))
}

const JOURNAL = ['--persistence', 'journal', '--persist-interval', '0']

t.test('after SIGKILL the journal restores what was answered: schedules, takes, acks, leases', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const d = await startDaemon({ dataDir: dir, args: JOURNAL })
  for (const [message, priority, lane] of [['a', 5, 'main'], ['b', 5, 'main'], ['c', 1, 'main'], ['d', 5, 'main'], ['v', 5, 'video']] as const) {
    await call(`${d.url}/schedule`, { message, priority, lane })
  }
  const c = await call(`${d.url}/receive_noblock`, { lease: 60 })
  t.equal(c.body.message, 'c')
  t.equal((await call(`${d.url}/ack`, { hash: c.body.hash, lease_token: c.body.lease_token })).status, 200)
  t.equal((await call(`${d.url}/receive_noblock`)).body.message, 'a', 'a plain receive takes a for good')
  t.equal((await call(`${d.url}/receive_noblock`, { lease: 60 })).body.message, 'b', 'b is leased, not acked')
  await d.stop('SIGKILL')

  const again = await startDaemon({ dataDir: dir, args: JOURNAL })
  t.teardown(() => again.stop())
  t.same(messages(await jobsOf(again)), { main: ['b', 'd'], video: ['v'] }, 'b back (lease not acked), a and c gone')
  t.ok(again.logs.some((l) => l.msg === 'queue loaded' && l.journal_records === 9))
  t.equal((await call(`${again.url}/schedule`, { message: 'e' })).body.job_num, 6, 'numbers continue')
})

t.test('a torn last record is skipped with a warning, never fatal', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const d = await startDaemon({ dataDir: dir, args: JOURNAL })
  await call(`${d.url}/schedule`, { message: 'whole' })
  await d.stop('SIGKILL')
  const [generation] = journalGenerations(dir)
  const file = journalFile(dir, generation!)
  const whole = readFileSync(file, 'utf8')
  // A crash in the middle of an append: half a record, no newline.
  appendFileSync(file, whole.slice(0, Math.floor(whole.length / 2)))
  const again = await startDaemon({ dataDir: dir, args: JOURNAL })
  t.teardown(() => again.stop())
  t.same(messages(await jobsOf(again)), { main: ['whole'] })
  const warning = again.logs.find((l) => l.msg === 'journal: torn last record skipped (a write cut short by a crash)')
  t.match(warning, { level: 40, file, line: 2, problem: /checksum|JSON/ })
})

t.test('a crash in the middle of a compaction restores every job exactly once', async (t) => {
  // Snapshot written, older journal not yet deleted: both describe the same jobs.
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const first = await startDaemon({ dataDir: dir, args: JOURNAL })
  for (const message of ['a', 'b', 'c']) await call(`${first.url}/schedule`, { message })
  await call(`${first.url}/receive_noblock`)
  await first.stop('SIGKILL')
  const [old] = journalGenerations(dir)
  const kept = path.join(dir, 'kept-journal')
  copyFileSync(journalFile(dir, old!), kept)

  // The restart replays, then compacts: a snapshot, and the old generation deleted.
  const second = await startDaemon({ dataDir: dir, args: JOURNAL })
  await until(() => !journalGenerations(dir).includes(old!), 'the replayed generation to be compacted away')
  await call(`${second.url}/schedule`, { message: 'd' })
  await second.stop('SIGKILL')
  copyFileSync(kept, journalFile(dir, old!)) // as if the crash came before the delete

  const third = await startDaemon({ dataDir: dir, args: JOURNAL })
  t.teardown(() => third.stop())
  t.same(messages(await jobsOf(third)), { main: ['b', 'c', 'd'] })
})

t.test('a clean stop leaves the snapshot and an empty journal', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const d = await startDaemon({ dataDir: dir, args: JOURNAL })
  await call(`${d.url}/schedule`, { message: 'kept' })
  t.equal(await d.stop(), 0)
  const left = readdirSync(dir).filter((f) => f.startsWith('journal.'))
  t.ok(left.length <= 1, `at most one journal file: ${left.join(', ')}`)
  for (const file of left) t.equal(readFileSync(path.join(dir, file), 'utf8'), '', `${file} is empty`)
  const saved = JSON.parse(readFileSync(path.join(dir, 'queue.json'), 'utf8')) as Record<string, { message: string }[]>
  t.same(saved.main!.map((j) => j.message), ['kept'])
})

t.test('journal persistence without persist_queue is refused at start', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ persistence: 'journal', persist_queue: false }))
  const r = await runToExit(['--config', path.join(dir, 'config.json'), '--data-dir', dir, '--address', '127.0.0.1:0'])
  t.equal(r.code, 1)
  t.match(r.stderr, /persistence "journal" needs persist_queue/)
  const bad = await runToExit(['--journal-fsync', 'sometimes', '--data-dir', dir, '--address', '127.0.0.1:0'])
  t.equal(bad.code, 1)
  t.match(bad.stderr, /--journal-fsync: expected one of always, interval, never/)
})

t.test('a delay outlives SIGKILL: the job comes back delayed, not ready', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const d = await startDaemon({ dataDir: dir, args: JOURNAL })
  const later = await call(`${d.url}/schedule`, { message: 'later', delay: 600 })
  await call(`${d.url}/schedule`, { message: 'now' })
  await d.stop('SIGKILL')
  const again = await startDaemon({ dataDir: dir, args: JOURNAL })
  t.teardown(() => again.stop())
  t.same(messages(await jobsOf(again)), { main: ['now'] })
  const found = await call(`${again.url}/job?hash=${later.body.hash}`)
  t.match(found.body, { state: 'delayed', message: 'later' })
  t.ok(Date.parse(String(found.body.not_before)) > Date.now() + 590_000, `ready at ${found.body.not_before}`)
})

t.test('interval mode: an fsync asked for while two are running starts when one ends, not at the next write', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  // fdatasyncs that end only when the test says so.
  const running: ((err: Error | null) => void)[] = []
  let started = 0
  const paused: JournalFs = {
    ...realJournalFs,
    sync(_fd, done) {
      started++
      running.push(done)
    },
  }
  const journal = new Journal({ dir, fsync: 'interval', fsyncMs: 1, generation: 1, maxBytes: 1 << 30, onFull() {}, onFailure() {}, logger: quiet, fs: paused })
  journal.scheduled(job(1))
  t.equal(await durable(journal), undefined, 'interval mode answers once written')
  await until(() => started === 1, 'the first fsync')
  journal.scheduled(job(2))
  await durable(journal)
  await until(() => started === 2, 'a second fsync, while the first runs')
  journal.scheduled(job(3))
  await durable(journal)
  // The interval passes while two fsyncs run: the one job 3 needs cannot start yet.
  const askedAt = Date.now()
  await until(() => Date.now() > askedAt + 20, 'the interval to pass')
  t.equal(started, 2, 'at most two at once')
  running.shift()!(null)
  await until(() => started === 3, 'the owed fsync, started when one ended', 2000)
  for (const done of running.splice(0)) done(null)
  await journal.close()
})

t.test('a snapshot that cannot start a new journal file leaves the journal writing where it was', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  // A data directory that became read-only: existing files can be appended to, none created.
  let readOnly = false
  const fs: JournalFs = {
    ...realJournalFs,
    open(file) {
      if (readOnly) throw Object.assign(new Error(`EROFS: read-only file system, open '${file}'`), { code: 'EROFS' })
      return realJournalFs.open(file)
    },
  }
  const journal = journalIn(dir, fs)
  const queue = new Queue({ changes: journal })
  queue.schedule({ lane: 'main', priority: 1, message: 'before' })
  t.equal(await durable(journal), undefined)
  readOnly = true
  const failingWrites: WriteFs = {
    open: () => Promise.reject(Object.assign(new Error('EROFS: read-only file system'), { code: 'EROFS' })),
    rename: () => Promise.reject(new Error('not reached')),
    unlink: () => Promise.resolve(),
  }
  await t.rejects(new SnapshotStore(dir, quiet, failingWrites).save(queue, 'interval', journal), { code: 'EROFS' })
  queue.schedule({ lane: 'main', priority: 1, message: 'after' })
  t.equal(await durable(journal), undefined, 'changes are still written and answered')
  t.equal(journal.broken, undefined, 'the journal is not broken')
  t.same(journalGenerations(dir), [1], 'still the same file')
  await journal.close()
  const { state } = readJournal(dir, quiet)
  t.same([...state.jobs.values()].map((j) => (j as { message: string }).message), ['before', 'after'], 'both records are in it')
})

t.test('every kind of record is its JSON, written as JSON.stringify would, after its checksum', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const journal = journalIn(dir)
  const dead = job(4, 'dead "one"')
  dead.report = { state: 'dead', startedAt: 1_700_000_001, finishedAt: 1_700_000_002, durationMs: 1000, reason: 'exit 3', exitCode: 3, httpStatus: null, output: 'out\n' }
  const lane = 'lane "ü"\n'
  journal.scheduled(job(1))
  journal.taken(job(123_456_789))
  journal.leased(job(2))
  journal.acked(job(2))
  journal.returned(job(3, 'back'), 'not delivered')
  journal.buried(dead)
  journal.finished(job(5), 1_700_000_100_000)
  journal.deleted(job(6))
  journal.lanePaused(lane, true)
  journal.lanePaused(lane, false)
  journal.uniqueHeld({ lane: 'main', key: 'k"1', hash: 'h', jobNum: 7, until: 1_700_000_200_000 })
  journal.cronChanged('nightly', undefined)
  t.equal(await durable(journal), undefined)
  await journal.close()
  const lines = readFileSync(journalFile(dir, 1), 'utf8').split('\n')
  t.equal(lines.pop(), '', 'each record ends its line')
  const records = lines.map((line) => {
    const json = line.slice(9)
    t.equal(line.slice(0, 9), `${crc32(json).toString(16).padStart(8, '0')} `, `checksum of ${json}`)
    const record = JSON.parse(json) as Record<string, unknown>
    t.equal(JSON.stringify(record), json, 'as JSON.stringify writes it')
    return record
  })
  const job1 = JSON.parse(`{${writtenMembers(job(1))}}`) as Record<string, unknown>
  t.same(
    records.map((r) => Object.keys(r).slice(0, 2)),
    [['op', 'job_num'], ['op', 'job_num'], ['op', 'job_num'], ['op', 'job_num'], ['op', 'job_num'], ['op', 'job_num'], ['op', 'job_num'], ['op', 'job_num'], ['op', 'lane'], ['op', 'lane'], ['op', 'lane'], ['op', 'name']],
  )
  t.strictSame(records[0], { op: 'schedule', ...job1 })
  t.strictSame(records.slice(1, 4), [{ op: 'take', job_num: 123456789 }, { op: 'lease', job_num: 2 }, { op: 'ack', job_num: 2 }])
  t.match(records[4], { op: 'return', job_num: 3, message: 'back' })
  t.match(records[5], { op: 'bury', job_num: 4, message: 'dead "one"', state: 'dead', reason: 'exit 3', exit_code: 3, http_status: null, output: 'out\n' })
  t.match(records[6], { op: 'finish', job_num: 5, kept_until: new Date(1_700_000_100_000).toISOString() })
  t.strictSame(records.slice(7), [
    { op: 'delete', job_num: 6 },
    { op: 'pause', lane },
    { op: 'resume', lane },
    { op: 'unique', lane: 'main', key: 'k"1', hash: 'h', job_num: 7, until: 1_700_000_200_000 },
    { op: 'cron', name: 'nightly', record: null },
  ])
})

/** A job's members as writeJobMembers writes them (what every job record holds after its op). */
function writtenMembers(j: Job): string {
  const out = new ByteWriter(1024)
  writeJobMembers(j, out)
  return out.rewind().toString('utf8')
}

// whenDurable promises everything appended so far: a change recorded in the file a compaction just
// began depends on the records of the file before it, whose fdatasync may still be under way.
t.test('always mode: a newer file’s callbacks wait for the older file’s fdatasync under way, and hear of its failure', async (t) => {
  for (const olderFails of [false, true]) {
    const dir = tempDir()
    t.teardown(() => removeDir(dir))
    const { running, fs: paused } = pausedSyncs()
    const journal = journalIn(dir, paused)
    const heard: string[] = []
    const listen = (name: string): Promise<number> => durable(journal).then((err) => heard.push(heardAs(name, err)))
    journal.scheduled(job(1))
    const older = listen('older')
    await until(() => running.length === 1, 'the fdatasync of file 1 (job 1)')
    const file1 = running[0]!.fd
    t.equal(journal.rotate(), 2, 'a compaction begins file 2')
    journal.scheduled(job(2))
    const newer = listen('newer')
    await until(() => running.length === 2, 'file 1, left behind, synced once more')
    t.equal(running[1]!.fd, file1)
    running.shift()!.done(null)
    await older
    await until(() => running.length === 2 && running[1]!.fd !== file1, 'the fdatasync of file 2 (job 2), owed until one ended')
    running.pop()!.done(null)
    await new Promise((resolve) => setTimeout(resolve, 20))
    t.same(heard, ['older: durable'], 'job 2 is synced, but not answered while file 1’s last fdatasync runs')
    running.shift()!.done(olderFails ? eio() : null)
    await newer
    t.same(heard, ['older: durable', `newer: ${olderFails ? 'EIO: i/o error, fdatasync' : 'durable'}`], `answered once file 1’s ended, with its ${olderFails ? 'failure' : 'success'}`)
    if (olderFails) t.ok(journal.broken, 'the journal is broken until a snapshot')
    for (const r of running.splice(0)) r.done(null)
  }
})

// failNewer answers callbacks from inside fail(), before the journal records that it is broken: a
// callback that writes at once (writeNow, as HeldChanges does) must not find the failed file still
// taking records, nor its unsynced callbacks answered with "no failure".
t.test('always mode: a callback failed by an older file’s fdatasync that writes at once does not get records of the failed file answered as durable', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const { running, fs: paused } = pausedSyncs()
  const journal = journalIn(dir, paused)
  const heard: string[] = []
  journal.scheduled(job(1))
  journal.whenDurable((err) => heard.push(heardAs('job 1', err)))
  await until(() => running.length === 1, 'the fdatasync of file 1 (job 1)')
  // In the same turn, before the flush: job 2 in file 1, then a compaction begins file 2.
  journal.scheduled(job(2))
  journal.whenDurable((err) => heard.push(heardAs('job 2', err)))
  t.equal(journal.rotate(), 2)
  journal.scheduled(job(3))
  journal.whenDurable((err) => {
    heard.push(heardAs('job 3', err))
    journal.writeNow()
  })
  running.shift()!.done(eio())
  await until(() => heard.length === 3 || running.length > 0, 'the answers')
  for (let i = 0; i < 20 && heard.length < 3; i++) {
    for (const r of running.splice(0)) r.done(null)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  t.ok(journal.broken, 'broken')
  t.same(heard.sort(), ['job 1: EIO: i/o error, fdatasync', 'job 2: EIO: i/o error, fdatasync', 'job 3: EIO: i/o error, fdatasync'], 'job 2 was never synced: its file’s fdatasync failed')
  t.notMatch(readFileSync(journalFile(dir, 1), 'utf8'), /"job_num":2,/, 'nothing more is written to the failed file')
  for (const r of running.splice(0)) r.done(null)
})

// "interval" mode answers once written: an fdatasync's failure says nothing of a newer file's
// records, written or about to be. Here the older file was even compacted away (its records are in
// the snapshot, its file deleted) before the fdatasync begun when it was left behind failed.
t.test('interval mode: a left-behind file’s fdatasync failing, after its compaction, does not fail the newer file’s callbacks', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const { running, fs: paused } = pausedSyncs()
  const journal = new Journal({ dir, fsync: 'interval', fsyncMs: 60_000, generation: 1, maxBytes: 1 << 30, onFull() {}, onFailure() {}, logger: quiet, fs: paused })
  journal.scheduled(job(1))
  t.equal(await durable(journal), undefined, 'written')
  await until(() => running.length === 1, 'the first interval fdatasync')
  running.shift()!.done(null)
  t.equal(journal.rotate(), 2, 'a compaction begins file 2')
  journal.scheduled(job(2))
  t.equal(await durable(journal), undefined, 'written to file 2')
  await until(() => running.length === 1, 'file 1, left behind, synced')
  journal.compacted(2)
  t.equal(await durable(journal), undefined)
  t.same(journalGenerations(dir), [2], 'file 1 is compacted away')
  // In one turn: job 3 appended (its write comes at the end of the turn), file 1's fdatasync fails.
  journal.scheduled(job(3))
  const third = durable(journal)
  running.shift()!.done(eio())
  t.equal(await third, undefined, 'job 3 is written to file 2, and answered so')
  t.match(readFileSync(journalFile(dir, 2), 'utf8'), /"job_num":3,/)
  for (const r of running.splice(0)) r.done(null)
  await journal.close()
})

// A held callback's outcome is its fdatasync's, taken when that ended; a later fdatasync of the
// same file may fail before the older file's ends and the callback is answered. compacted's
// callback is such a callback: it must not declare the journal whole again when the failed file is
// one the snapshot does not cover (the snapshot captured when that file began).
t.test('always mode: a compaction answered from a held fdatasync does not mend a failure of its own file that came meanwhile', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const { running, fs: paused } = pausedSyncs()
  const journal = journalIn(dir, paused)
  const heard: string[] = []
  const listen = (name: string): Promise<number> => durable(journal).then((err) => heard.push(heardAs(name, err)))
  journal.scheduled(job(1))
  const first = listen('job 1')
  await until(() => running.length === 1, 'file 1’s fdatasync (job 1)')
  const file1 = running[0]!
  // A snapshot begins file 2 and is written at once: compacted(2) waits for file 2's records.
  t.equal(journal.rotate(), 2)
  journal.scheduled(job(2))
  journal.compacted(2)
  await until(() => running.length === 2, 'file 1, left behind, synced once more')
  running.splice(1, 1)[0]!.done(null)
  await until(() => running.length === 2, 'file 2’s first fdatasync (job 2, the compaction)')
  journal.scheduled(job(3))
  const third = listen('job 3')
  await new Promise((resolve) => setTimeout(resolve, 20))
  // File 2's first fdatasync ends well (held: file 1's runs), its second fails.
  running.splice(1, 1)[0]!.done(null)
  await until(() => running.length === 2, 'file 2’s second fdatasync (job 3)')
  running.splice(1, 1)[0]!.done(eio())
  t.ok(journal.broken, 'file 2’s fdatasync failed: broken')
  file1.done(null)
  running.splice(0, 1)
  await Promise.all([first, third])
  // (Job 1 hears of the failure too: a file's outcome counts every newer file's fdatasync failure.)
  t.ok(heard.includes('job 3: EIO: i/o error, fdatasync'), 'job 3 hears of its fdatasync’s failure')
  t.same(journalGenerations(dir), [2, 3], 'file 1 is compacted away (the snapshot holds it)')
  t.ok(journal.broken, 'still broken: the snapshot does not hold file 2’s records, whose fdatasync failed')
  for (const r of running.splice(0)) r.done(null)
})

t.test('a compacted file that cannot be deleted is left, and the callbacks of the same fdatasync are still answered', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const journal = journalIn(dir)
  journal.scheduled(job(1))
  t.equal(await durable(journal), undefined)
  t.equal(journal.rotate(), 2)
  // Generation 1's name now holds a directory with a file in it: unlink fails (EISDIR).
  const file1 = journalFile(dir, 1)
  rmSync(file1)
  mkdirSync(path.join(file1, 'x'), { recursive: true })
  journal.scheduled(job(2))
  journal.compacted(2)
  const after = durable(journal)
  t.equal(await after, undefined, 'a callback after the compaction’s, in the same write, is answered')
  t.same(journalGenerations(dir), [1, 2], 'the file that could not be deleted is left for the next compaction')
  await journal.close()
})
