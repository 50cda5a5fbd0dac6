/**
 * The benchmark suite: starts every server on loopback itself, runs each workload against each,
 * prints the results and writes docs/benchmarks.md. Ratios compare figures measured in this run.
 *
 *   npm run bench                 every workload (a few minutes)
 *   npm run bench -- --with-10m   adds 10M-job snapshot and scale runs
 *   npm run bench -- --soak 10    adds a 10-minute mixed load with RSS sampled
 *   npm run bench -- --only schedule,drain --rounds 5 --seconds 5
 *                                 (--only folds its rows into docs/benchmarks.md; the rest stay)
 *   npm run bench -- --smoke      one tiny workload, no other servers, nothing written
 */
import { batchAck } from './workloads/batch-ack'
import { batchDrain } from './workloads/batch-drain'
import { groups } from './workloads/groups'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Command } from 'commander'
import { mergeDoc } from './lib/doc'
import { ROOT } from './lib/procs'
import { type Check, type Row, type Section, checks, table } from './lib/report'
import { containers } from './workloads/containers'
import { journal } from './workloads/journal'
import { memory } from './workloads/memory'
import { pages } from './workloads/pages'
import { roundTrip } from './workloads/roundtrip'
import { runners } from './workloads/runners'
import { snapshot, startup } from './workloads/snapshot'
import { soak } from './workloads/soak'
import { batch, drain, schedule, scale, smoke } from './workloads/throughput'

interface Args {
  rounds: string
  seconds: string
  only?: string
  with10m?: boolean
  soak?: string
  smoke?: boolean
  write: boolean
}

function version(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0]!.trim()
  } catch (err) {
    return ((err as { stdout?: string }).stdout ?? '').split('\n')[0]!.trim() || 'unknown'
  }
}

/**
 * The targets that are ratios of two figures from one run (issue 15's, which raised the first
 * ones): workload, subject (any of dispenserd's rows when omitted: the bound's row is quoted
 * against the ceiling too), reference, lowest ratio.
 */
const RATIO_TARGETS: [string, string | undefined, string, number][] = [
  ['schedule', 'dispenserd (wrk)', 'bare uWS ceiling (wrk)', 0.9],
  ['schedule', 'dispenserd (wrk)', 'redis ZADD (redis-benchmark)', 1.15],
  ['schedule', 'dispenserd (node client)', 'beanstalkd put (node client)', 1.1],
  ['drain', 'dispenserd (wrk)', 'bare uWS ceiling (wrk)', 0.9],
  ['drain', 'dispenserd (wrk)', 'redis ZPOPMIN (redis-benchmark)', 1.15],
  ['batch drain', 'dispenserd, count 100 (wrk, 8 connections)', 'redis ZPOPMIN q 100 (redis-benchmark)', 1.0],
  ['batch drain', 'dispenserd, count 1000 (wrk, 8 connections)', 'redis ZPOPMIN q 1000 (redis-benchmark)', 1.0],
  ['batch drain', 'dispenserd, count 100, leased (wrk, 8 connections)', 'redis ZPOPMIN q 100 (redis-benchmark)', 1.0],
  ['batch drain', 'dispenserd, count 1000, leased (wrk, 8 connections)', 'redis ZPOPMIN q 1000 (redis-benchmark)', 1.0],
  ['containers', undefined, 'bare loop: create, start, wait, remove (concurrency 1)', 0.95],
  ['containers', undefined, 'bare loop: create, start, wait, remove (concurrency 4)', 0.95],
]

/**
 * Targets that compare our ratio with the reference's ratio of the same kind in the same run:
 * workload, our subject, the reference's subject (both rows carry a ratio).
 */
const MATCHED_RATIO_TARGETS: [string, string, string][] = [
  ['journal', 'journal, fsync always', 'redis ZADD, appendfsync always'],
  ['journal', 'journal, fsync interval (50 ms)', 'redis ZADD, appendfsync everysec'],
  // The same ratios of the bare server that journals (bench/journal-ceiling.ts): what is left to gain.
  ['journal', 'journal, fsync always', 'bare uWS journal, fsync always'],
  ['journal', 'journal, fsync interval (50 ms)', 'bare uWS journal, fsync interval (50 ms)'],
]

function matchedRatioChecks(rows: Row[]): Check[] {
  const out: Check[] = []
  for (const [workload, ours, theirs] of MATCHED_RATIO_TARGETS) {
    const find = (subject: string): Row | undefined => rows.find((r) => r.workload.startsWith(workload) && r.subject.startsWith(subject) && r.ratio !== undefined)
    const a = find(ours)
    const b = find(theirs)
    if (a === undefined || b === undefined) continue
    out.push({
      target: `${ours} ÷ ${a.ratio!.against} ≥ ${theirs} ÷ ${b.ratio!.against} (same run)`,
      measured: `${a.ratio!.value.toFixed(2)}× against ${b.ratio!.value.toFixed(2)}×`,
      met: a.ratio!.value >= b.ratio!.value,
    })
  }
  return out
}

/** The ratio targets, checked against the rows of the workloads that ran. */
function ratioChecks(rows: Row[]): Check[] {
  const out: Check[] = []
  for (const [workload, subject, against, min] of RATIO_TARGETS) {
    const row = rows.find((r) => r.workload.startsWith(workload) && (subject === undefined ? r.subject.startsWith('dispenserd') : r.subject === subject) && r.ratio?.against === against)
    const target = `${subject ?? `${workload}:`} ≥ ${min.toFixed(2)}× ${against}`
    if (row) out.push({ target, measured: `${row.ratio!.value.toFixed(2)}×`, met: row.ratio!.value >= min })
  }
  return out
}

async function main(): Promise<void> {
  const args = new Command('bench')
    .option('--rounds <n>', 'interleaved rounds per comparison; the median is reported', '3')
    .option('--seconds <n>', 'seconds per measurement', '5')
    .option('--only <list>', 'comma-separated: schedule,drain,roundtrip,batch,batchdrain,batchack,groups,memory,snapshot,scale,startup,journal,runners,containers,pages,soak')
    .option('--with-10m', 'also snapshot and scale at 10M queued jobs')
    .option('--soak <minutes>', 'also run a mixed load for this long, sampling RSS')
    .option('--smoke', 'one tiny workload against dispenserd and the ceiling; writes nothing')
    .option('--no-write', 'do not write docs/benchmarks.md')
    .parse(process.argv)
    .opts<Args>()
  const rounds = Number(args.rounds)
  const seconds = Number(args.seconds)

  if (args.smoke) {
    const section = await smoke()
    process.stdout.write(`${table(section.rows)}\n`)
    return
  }

  const workloads: Record<string, () => Promise<Section>> = {
    schedule: () => schedule({ rounds, seconds, scaleSizes: [] }),
    drain: () => drain({ rounds, seconds: Math.min(seconds, 3), scaleSizes: [] }),
    roundtrip: () => roundTrip({ seconds }),
    batch: () => batch({ rounds, seconds: Math.min(seconds, 2), scaleSizes: [] }),
    batchdrain: () => batchDrain({ rounds, seconds: Math.min(seconds, 2) }),
    batchack: () => batchAck({ rounds, seconds: Math.min(seconds, 3) }),
    groups: () => groups({ rounds, seconds: Math.min(seconds, 3) }),
    memory: () => memory(1_000_000),
    snapshot: async () => {
      const sections = [await snapshot(1_000_000)]
      if (args.with10m) sections.push(await snapshot(10_000_000))
      return { rows: sections.flatMap((s) => s.rows), checks: sections.flatMap((s) => s.checks) }
    },
    scale: () => scale({ rounds: 2, seconds: Math.min(seconds, 3), scaleSizes: [1e4, 1e5, 1e6, ...(args.with10m ? [1e7] : [])] }),
    startup: () => startup(5),
    journal: () => journal({ rounds, seconds }),
    runners: () => runners({ rounds, jobs: 2000, concurrency: [1, 4] }),
    containers: () => containers({ rounds, jobs: 40, concurrency: [1, 4] }),
    pages: () => pages(1_000_000, seconds * 2),
    soak: () => soak(Number(args.soak ?? 10)),
  }
  const everyDefault = Object.keys(workloads).filter((name) => name !== 'soak' || args.soak !== undefined)
  const selected = args.only ? args.only.split(',').map((s) => s.trim()) : everyDefault
  const rows: Row[] = []
  const targetChecks: Check[] = []
  for (const name of selected) {
    const workload = workloads[name]
    if (!workload) throw new Error(`unknown workload ${name}; choose from ${Object.keys(workloads).join(', ')}`)
    process.stderr.write(`bench: ${name}…\n`)
    const section = await workload()
    process.stdout.write(`${table(section.rows)}\n\n`)
    rows.push(...section.rows)
    targetChecks.push(...section.checks)
  }
  targetChecks.unshift(...ratioChecks(rows), ...matchedRatioChecks(rows))
  process.stdout.write(`${checks(targetChecks)}\n`)

  if (!args.write) return
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`
  const when = `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`
  const file = path.join(ROOT, 'docs', 'benchmarks.md')
  if (args.only && existsSync(file)) {
    // A partial run keeps every other workload's results and the prose around them.
    const merged = mergeDoc(readFileSync(file, 'utf8'), rows, targetChecks, `\`${command}\` on ${when} (${rounds} rounds of ${seconds} s) — the rows of ${selected.join(', ')}.`)
    if (merged === undefined) throw new Error(`${file} has no Targets or Results table to fold this run into; run without --only to rewrite it`)
    writeFileSync(file, merged)
    process.stderr.write('bench: folded this run into docs/benchmarks.md\n')
    return
  }
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU'
  const doc = `# Benchmarks

Produced by \`${command}\` on ${when}. Every
server ran on this machine on loopback, one after another; each comparison interleaves its subjects
over ${rounds} rounds of ${seconds} s (less for drain and batch) and reports the median. The machine
is shared and noisy: read the ratios, which compare figures measured in the same run, not the
absolute numbers.

- Machine: ${os.availableParallelism()} × ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${os.release()}
- Node ${process.version}; ${version('redis-server', ['--version'])}; ${version('beanstalkd', ['-v'])}; ${version('wrk', ['-v'])}
- Load generators: wrk (1 thread, 32 connections) for HTTP; redis-benchmark (32 clients) for Redis;
  a Node client (32 connections, one request in flight each) for beanstalkd and, for a like-for-like
  ratio, for dispenserd too. The round trip harness is the same Node program for dispenserd and Redis.
- The ceiling is \`bench/ceiling.ts\`: a bare uWebSockets.js server that reads the body, parses the
  JSON and answers a fixed reply. The bound is \`bench/bound.ts\`: a bare uWebSockets.js program
  doing the queue's work per request as well (checks the job, queues it in serving order, answers
  with its number and hash; takes the first job and writes its JSON), the best a plain Node program
  does on schedule and drain.
- The journal workload's daemons each keep their data in a fresh directory under ${os.tmpdir()}
  (\`findmnt\`: ${version('findmnt', ['-no', 'FSTYPE,SOURCE', '-T', os.tmpdir()]).replace(/\s+/g, ' ')}).
  Their bound is \`bench/journal-ceiling.ts\`, measured in the same run: the ceiling also appending
  a checksummed record per /schedule (one write per event-loop turn) and answering once it is
  written, and with fsync always once an fdatasync begun after the write has ended. Its ratios (each
  mode ÷ the same server writing nothing) are what any journal keeps on this disk and runtime.

## Targets

${checks(targetChecks)}

## Results

${table(rows)}
`
  writeFileSync(file, doc)
  process.stderr.write('bench: wrote docs/benchmarks.md\n')
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exitCode = 1
})
