import { execFile } from 'node:child_process'
import { readdirSync, rmSync, statSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { Connection, httpFrame } from '../lib/clients'
import { type Server, removeDataDir, startDispenserd, startJournalCeiling, startRedis, tempDir } from '../lib/procs'
import { type Row, type Section, fmt } from '../lib/report'
import { REDIS_KEYSPACE, SCHEDULE_LUA, median, redisBenchmark, redisCli, wrk } from '../lib/tools'

export interface Options {
  rounds: number
  seconds: number
}

/** The reference every journal mode is compared with: the default persistence, measured in the same run. */
export const SNAPSHOT_MODE = 'snapshot mode (queue.json hourly)'

/** Each subject and its flags. Everything else is left at its default, journal_max_bytes (64 MiB) included. */
const MODES: [string, string[]][] = [
  [SNAPSHOT_MODE, ['--persistence', 'snapshot']],
  ['journal, fsync always', ['--persistence', 'journal', '--journal-fsync', 'always']],
  ['journal, fsync interval (50 ms)', ['--persistence', 'journal', '--journal-fsync', 'interval', '--journal-fsync-ms', '50']],
  ['journal, fsync never', ['--persistence', 'journal', '--journal-fsync', 'never']],
]

const STATUS = Buffer.from('GET / HTTP/1.1\r\nHost: b\r\n\r\n')

interface Status {
  queued: number
  /** The journal generation being appended to; it moves on when a snapshot compacts the journal. */
  generation: number | undefined
}

async function status(port: number): Promise<Status> {
  const conn = await Connection.open(port, httpFrame)
  const response = (await conn.request(STATUS)).toString()
  conn.close()
  const body = JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4)) as {
    payload: { server: { queued_jobs_total: number }; journal: { enabled: boolean; generation?: number } }
  }
  return { queued: body.payload.server.queued_jobs_total, generation: body.payload.journal.enabled ? body.payload.journal.generation : undefined }
}

/** Bytes in the data directory's journal files (journal.NNNNNNNN.log). */
function journalBytes(dir: string): number {
  return readdirSync(dir)
    .filter((name) => /^journal\.\d+\.log$/.test(name))
    .reduce((sum, name) => sum + statSync(path.join(dir, name)).size, 0)
}

/**
 * Writes every dirty page to disk. Run before each measurement so that the kernel does not spend
 * the next subject's seconds writing back what the previous one left in the page cache.
 */
async function syncDisks(): Promise<void> {
  await promisify(execFile)('sync')
}

/** What one subject gathered over the rounds. */
interface Tally {
  name: string
  server: Server
  rates: number[]
  /** The rates of the rounds in which no compacting snapshot ran: the journal's write path alone. */
  uncompacted: number[]
  /** Journal bytes per job, from rounds in which no snapshot compacted the journal. */
  bytesPerJob: number[]
  non2xx: number
}

/** Snapshots finished (or failed) so far, by the daemon's log. */
function snapshotsDone(server: Server): number {
  // A failure's message goes on to say what is kept ("snapshot failed; the previous queue.json is intact").
  return server.lines.filter((l) => l.msg === 'snapshot written' || (typeof l.msg === 'string' && l.msg.startsWith('snapshot failed'))).length
}

/**
 * Waits until no daemon is in the middle of a compacting snapshot, then until the disk has taken
 * every dirty page: a snapshot that one subject's load set off must not run, nor be written back,
 * while the next subject is measured. A journal in a fresh directory starts at generation 1 and
 * each snapshot moves it on by one as it starts.
 */
async function settle(tallies: Tally[]): Promise<void> {
  const deadline = Date.now() + 120_000
  for (const { server } of tallies) {
    for (;;) {
      const { generation } = await status(server.port)
      if (generation === undefined || generation - 1 <= snapshotsDone(server)) break
      if (Date.now() > deadline) throw new Error(`journal: ${server.dataDir} still snapshotting after 120 s`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  await syncDisks()
}

/** One wrk run against one subject, with the journal's growth per job when it can be told. */
async function measure(tally: Tally, seconds: number): Promise<void> {
  const { server } = tally
  const before = await status(server.port)
  const bytesBefore = journalBytes(server.dataDir!)
  const result = await wrk(server.port, '/schedule', SCHEDULE_LUA, seconds)
  const after = await status(server.port)
  tally.rates.push(result.perSecond)
  tally.non2xx += result.non2xx
  // settle() left no snapshot running, so an unchanged generation means none ran during the round.
  const compacted = before.generation !== after.generation
  // Each round as it comes, so that a noisy round (the machine is shared) can be told apart.
  process.stderr.write(
    `bench: journal: ${tally.name}: ${fmt(result.perSecond)} jobs/s, ${after.queued - before.queued} jobs, ${result.non2xx} non-2xx${compacted ? ', compacted' : ''}\n`,
  )
  // A compaction deletes the older generation; such a round says nothing about size either.
  if (before.generation !== undefined && !compacted && after.queued > before.queued) {
    tally.uncompacted.push(result.perSecond)
    tally.bytesPerJob.push((journalBytes(server.dataDir!) - bytesBefore) / (after.queued - before.queued))
  }
}

/** Warnings and errors the daemon logged (pino levels 40 and up), for the report. */
function complaints(server: Server): string[] {
  return server.lines.filter((l) => typeof l.level === 'number' && l.level >= 40).map((l) => `${String(l.level)} ${String(l.msg)}`)
}

/** Snapshots the journal asked for while being measured: the price of compaction, paid inside the runs. */
function compactions(server: Server): number {
  return server.lines.filter((l) => l.msg === 'snapshot written' && l.reason !== 'shutdown').length
}

/**
 * /schedule throughput (wrk, SCHEDULE_LUA, 32 connections, as in the schedule workload) of four
 * daemons started together, each on a fresh data directory under os.tmpdir() (the real disk, not
 * tmpfs): the default snapshot persistence (queue.json written hourly and at shutdown, so nothing
 * touches the disk while measured) and the journal in each fsync mode. Each journal mode is
 * reported as a ratio of snapshot mode. The order of the subjects rotates from round to round so
 * that none always runs right after the one that wrote the most.
 */
export async function journal(opts: Options): Promise<Section> {
  const ours = await journalModes(opts)
  const bound = await journalBound(opts)
  const redis = await redisAof(opts)
  return { rows: [...ours.rows, ...bound.rows, ...redis.rows], checks: [...ours.checks, ...bound.checks, ...redis.checks] }
}

export const BOUND_OFF = 'bare uWS, no journal (bench/journal-ceiling.ts)'
const BOUND_MODES: [string, 'none' | 'always' | 'interval'][] = [
  [BOUND_OFF, 'none'],
  ['bare uWS journal, fsync always (bench/journal-ceiling.ts)', 'always'],
  ['bare uWS journal, fsync interval (50 ms) (bench/journal-ceiling.ts)', 'interval'],
]

/**
 * The bound of the journal's ratios, measured in the same run on the same disk with the same wrk
 * script: bench/journal-ceiling.ts, a bare uWS server that appends a checksummed record per
 * /schedule and answers once it is written (and, in "always", once an fdatasync begun after the
 * write has ended), as a ratio of the same server writing nothing. No queue, no validation: what
 * it loses to its journal is what any journal on this disk and runtime loses.
 */
async function journalBound(opts: Options): Promise<Section> {
  const subjects: { name: string; server: Server; rates: number[] }[] = []
  try {
    for (const [name, mode] of BOUND_MODES) subjects.push({ name, server: await startJournalCeiling(mode, tempDir('dispenserd-bench-jceiling-')), rates: [] })
    for (let round = 0; round < opts.rounds; round++) {
      for (let i = 0; i < subjects.length; i++) {
        const subject = subjects[(round + i) % subjects.length]!
        await syncDisks()
        const result = await wrk(subject.server.port, '/schedule', SCHEDULE_LUA, opts.seconds)
        process.stderr.write(`bench: journal: ${subject.name}: ${fmt(result.perSecond)} jobs/s\n`)
        subject.rates.push(result.perSecond)
      }
    }
  } finally {
    await Promise.all(subjects.map((s) => s.server.stop()))
    subjects.forEach((s) => removeDataDir(s.server))
  }
  const workload = 'journal (/schedule, wrk, 32 connections)'
  const reference = median(subjects[0]!.rates)
  return {
    rows: subjects.map(({ name, rates }) => ({
      workload,
      subject: name,
      value: median(rates),
      unit: 'jobs/s',
      note: `rounds ${fmt(Math.min(...rates))}–${fmt(Math.max(...rates))}`,
      ...(name === BOUND_OFF ? {} : { ratio: { against: BOUND_OFF, value: median(rates) / reference } }),
    })),
    checks: [],
  }
}

const REDIS_OFF = 'redis ZADD, no AOF (redis-benchmark, 32 clients)'
const REDIS_MODES: [string, string[]][] = [
  [REDIS_OFF, ['--appendonly', 'no']],
  ['redis ZADD, appendfsync always', ['--appendonly', 'yes', '--appendfsync', 'always']],
  ['redis ZADD, appendfsync everysec', ['--appendonly', 'yes', '--appendfsync', 'everysec']],
]

/**
 * The same trade measured on Redis in the same run, on the same disk: its AOF with fsync always
 * and every second, as ratios of Redis without an AOF. What the journal's ratios should be read
 * against: how much an fsync costs on this machine, whoever pays it.
 */
async function redisAof(opts: Options): Promise<Section> {
  const servers: { name: string; server: Server; dir: string; rates: number[]; rewrites: number }[] = []
  try {
    for (const [name, flags] of REDIS_MODES) {
      const dir = tempDir('dispenserd-bench-aof-')
      servers.push({ name, server: await startRedis([...flags, '--dir', dir]), dir, rates: [], rewrites: 0 })
    }
    for (let round = 0; round < opts.rounds; round++) {
      for (let i = 0; i < servers.length; i++) {
        const subject = servers[(round + i) % servers.length]!
        await syncDisks()
        const command = ['ZADD', 'q', '__rand_int__', `${'m'.repeat(52)}__rand_int__`]
        const probe = await redisBenchmark(subject.server.port, 20_000, command, REDIS_KEYSPACE)
        subject.rates.push(await redisBenchmark(subject.server.port, Math.round(probe * opts.seconds), command, REDIS_KEYSPACE))
      }
    }
    // Redis's counterpart of a compacting snapshot (its AOF rewrite, in a forked child), counted so
    // that the rows compare like with like.
    for (const s of servers) s.rewrites = Number(/aof_rewrites:(\d+)/.exec(await redisCli(s.server.port, 'INFO', 'persistence'))?.[1] ?? 0)
  } finally {
    await Promise.all(servers.map((s) => s.server.stop()))
    for (const s of servers) rmSync(s.dir, { recursive: true, force: true })
  }
  const workload = 'journal (/schedule, wrk, 32 connections)'
  const reference = median(servers[0]!.rates)
  return {
    rows: servers.map(({ name, rates, rewrites }) => ({
      workload,
      subject: name,
      value: median(rates),
      unit: 'ops/s',
      note: `rounds ${fmt(Math.min(...rates))}–${fmt(Math.max(...rates))}${rewrites > 0 ? `; ${rewrites} AOF rewrites while measured` : ''}`,
      ...(name === REDIS_OFF ? {} : { ratio: { against: REDIS_OFF, value: median(rates) / reference } }),
    })),
    checks: [],
  }
}

async function journalModes(opts: Options): Promise<Section> {
  const tallies: Tally[] = []
  try {
    for (const [name, flags] of MODES) {
      const server = await startDispenserd(['--persist', '--persist-interval', '3600', ...flags], tempDir('dispenserd-bench-journal-'))
      tallies.push({ name, server, rates: [], uncompacted: [], bytesPerJob: [], non2xx: 0 })
    }
    for (let round = 0; round < opts.rounds; round++) {
      for (let i = 0; i < tallies.length; i++) {
        await settle(tallies)
        await measure(tallies[(round + i) % tallies.length]!, opts.seconds)
      }
    }
  } finally {
    await Promise.all(tallies.map((t) => t.server.stop()))
    tallies.forEach((t) => removeDataDir(t.server))
  }
  return journalRows(tallies)
}

function journalRows(tallies: Tally[]): Section {
  const workload = 'journal (/schedule, wrk, 32 connections)'
  const reference = median(tallies.find((t) => t.name === SNAPSHOT_MODE)!.rates)
  const rows: Row[] = []
  for (const t of tallies) {
    const value = median(t.rates)
    const logged = complaints(t.server)
    for (const line of logged) process.stderr.write(`bench: journal: ${t.name} logged: ${line}\n`)
    // The spread of the rounds, so that a reader can tell a ratio from noise.
    const notes = [`rounds ${fmt(Math.min(...t.rates))}–${fmt(Math.max(...t.rates))}`]
    if (t.non2xx > 0) notes.push(`${t.non2xx} non-2xx responses`)
    if (compactions(t.server) > 0) notes.push(`${compactions(t.server)} compacting snapshots while measured`)
    if (logged.length > 0) notes.push(`${logged.length} warnings or errors logged`)
    const row: Row = { workload, subject: t.name, value, unit: 'jobs/s', note: notes.join('; ') }
    if (t.name !== SNAPSHOT_MODE) row.ratio = { against: SNAPSHOT_MODE, value: value / reference }
    rows.push(row)
  }
  // Compaction snapshots the whole queue, which only grows here (nothing is received), so it weighs
  // more than it would in a steady queue: the rounds without one show the write path alone.
  for (const t of tallies) {
    if (t.uncompacted.length === 0) continue
    const value = median(t.uncompacted)
    const note = `${t.uncompacted.length} of ${t.rates.length} rounds`
    rows.push({ workload, subject: `${t.name}, rounds with no compaction`, value, unit: 'jobs/s', note, ratio: { against: SNAPSHOT_MODE, value: value / reference } })
  }
  // Every fsync mode writes the same records, so one figure covers them all.
  const sizes = tallies.flatMap((t) => t.bytesPerJob)
  if (sizes.length > 0) rows.push({ workload, subject: 'journal bytes written per scheduled job (64-byte message)', value: median(sizes), unit: 'bytes/job' })
  return { rows, checks: [] }
}
