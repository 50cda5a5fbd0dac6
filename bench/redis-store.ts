/**
 * The Redis store beside BullMQ, on the same redis-server in the same run:
 *
 *   npm run bench:redis                 (3 rounds of 5 s; writes its section of docs/benchmarks.md)
 *   npm run bench:redis -- --seconds 2 --rounds 1 --no-write
 *
 * dispenserd: schedule (random 32-bit priorities), drain (receive_noblock until empty) and the
 * leased round trip (receive_noblock with a lease, then ack) through 1 and 2 frontends, 32 HTTP
 * connections with one request in flight each. BullMQ: Queue.add with random priorities, 32 in
 * flight, and a Worker (concurrency 32, a no-op processor) completing pre-filled jobs. Each figure
 * is the median of the rounds; the CPU time per job (utime + stime) of the Redis server, of the
 * frontends and of this process is reported beside it.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { Queue, Worker } from 'bullmq'
import { Redis } from 'ioredis'
import { Command } from 'commander'
import { type Connection, MESSAGE_64, closedLoop, httpFrame, httpRequest, openMany } from './lib/clients'
import { ROOT, type Server, removeDataDir, startDispenserd, startRedis } from './lib/procs'
import { type Row, checks, fmt, table } from './lib/report'

const CONNECTIONS = 32
const FILL = 50_000

/** Jiffies of CPU the process has used (utime + stime). */
function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return Number(fields[11]) + Number(fields[12])
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

interface Measured {
  perSecond: number
  /** Redis server CPU per job, µs. */
  cpuUs: number
  /** The dispenserd frontends' CPU per job, µs (0 for BullMQ, whose client is this process). */
  frontendUs: number
  /** This process's CPU per job, µs: the HTTP load generator, or BullMQ's client. */
  clientUs: number
}

async function measure(redis: Server, jobs: () => Promise<{ perSecond: number; completed: number }>, frontendPids: number[] = []): Promise<Measured> {
  const frontendTicks = (): number => frontendPids.reduce((sum, pid) => sum + cpuTicks(pid), 0)
  const before = cpuTicks(redis.pid)
  const frontendsBefore = frontendTicks()
  const client = process.cpuUsage()
  const { perSecond, completed } = await jobs()
  const used = process.cpuUsage(client)
  const per = (ticks: number): number => (ticks * 10_000) / Math.max(completed, 1)
  return { perSecond, cpuUs: per(cpuTicks(redis.pid) - before), frontendUs: per(frontendTicks() - frontendsBefore), clientUs: (used.user + used.system) / Math.max(completed, 1) }
}

async function frontends(redisUrl: string, count: number, prefix: string): Promise<Server[]> {
  const servers: Server[] = []
  for (let i = 0; i < count; i++) servers.push(await startDispenserd(['--store', 'redis', '--redis-url', redisUrl, '--redis-prefix', prefix]))
  for (const server of servers) {
    for (;;) {
      const status = (await fetch(`http://127.0.0.1:${server.port}/`).then((r) => r.json())) as { payload: { store: { state: string } } }
      if (status.payload.store.state === 'up') break
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  return servers
}

/** 32 connections spread over the frontends. */
async function connections(servers: Server[]): Promise<Connection[]> {
  const per = CONNECTIONS / servers.length
  return (await Promise.all(servers.map((s) => openMany(per, s.port, httpFrame)))).flat()
}

const randomPriority = (): number => Math.floor(Math.random() * 2 ** 32)

async function fill(server: Server, lane: string, n: number): Promise<void> {
  const [conn] = await openMany(1, server.port, httpFrame)
  for (let i = 0; i < n; i += 1000) {
    const jobs = Array.from({ length: Math.min(1000, n - i) }, () => ({ lane, priority: randomPriority(), message: MESSAGE_64 }))
    await conn!.request(httpRequest('/schedule', JSON.stringify({ jobs })))
  }
  conn!.close()
}

async function dispenserdRound(redis: Server, count: number, seconds: number, round: number): Promise<Record<string, Measured>> {
  const servers = await frontends(`redis://127.0.0.1:${redis.port}`, count, `bench${round}f${count}`)
  try {
    const conns = await connections(servers)
    const pids = servers.map((server) => server.pid)
    const out: Record<string, Measured> = {}
    out.schedule = await measure(redis, () => closedLoop(conns, seconds * 1000, () => httpRequest('/schedule', `{"lane":"s","priority":${randomPriority()},"message":"${MESSAGE_64}"}`)), pids)
    await fill(servers[0]!, 'd', FILL)
    const drained = { done: false }
    out.drain = await measure(redis, async () => {
      const started = performance.now()
      const result = await closedLoop(conns, 120_000, (_, response) => {
        if (response !== undefined && response.includes('"code":2')) drained.done = true
        return drained.done ? undefined : httpRequest('/receive_noblock', '{"lane":"d"}')
      })
      return { perSecond: FILL / ((performance.now() - started) / 1000), completed: result.completed }
    }, pids)
    await fill(servers[0]!, 'r', FILL)
    const receive = httpRequest('/receive_noblock', '{"lane":"r","lease":60}')
    const acking = new Array<boolean>(conns.length).fill(false)
    out.roundtrip = await measure(redis, async () => {
      let acks = 0
      const started = performance.now()
      await closedLoop(conns, seconds * 1000, (i, response) => {
        if (acking[i]) {
          acking[i] = false
          acks++
          return receive
        }
        const leased = response === undefined ? null : /"hash":"([0-9a-f]{40})".*"lease_token":"([^"]+)"/.exec(response.toString('latin1'))
        if (leased === null) return receive
        acking[i] = true
        return httpRequest('/ack', `{"hash":"${leased[1]}","lease_token":"${leased[2]}"}`)
      })
      return { perSecond: acks / ((performance.now() - started) / 1000), completed: acks }
    }, pids)
    for (const conn of conns) conn.close()
    return out
  } finally {
    for (const server of servers) {
      await server.stop('SIGKILL')
      removeDataDir(server)
    }
  }
}

async function bullmqRound(redis: Server, seconds: number, round: number): Promise<Record<string, Measured>> {
  const connection = { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null }
  const name = `bench${round}`
  const queue = new Queue(name, { connection })
  const out: Record<string, Measured> = {}
  try {
    out.add = await measure(redis, async () => {
      const deadline = performance.now() + seconds * 1000
      const started = performance.now()
      let completed = 0
      await Promise.all(
        Array.from({ length: CONNECTIONS }, async () => {
          while (performance.now() < deadline) {
            await queue.add('job', { m: MESSAGE_64 }, { priority: 1 + Math.floor(Math.random() * 2_097_151), removeOnComplete: true })
            completed++
          }
        }),
      )
      return { perSecond: completed / ((performance.now() - started) / 1000), completed }
    })
    await queue.obliterate({ force: true })
    for (let i = 0; i < FILL; i += 1000) {
      await queue.addBulk(Array.from({ length: Math.min(1000, FILL - i) }, () => ({ name: 'job', data: { m: MESSAGE_64 }, opts: { priority: 1 + Math.floor(Math.random() * 2_097_151), removeOnComplete: true } })))
    }
    out.worker = await measure(redis, async () => {
      let completed = 0
      const started = performance.now()
      await new Promise<void>((resolve) => {
        const worker = new Worker(name, async () => undefined, { connection, concurrency: CONNECTIONS })
        worker.on('completed', () => {
          if (++completed === FILL) worker.close().then(() => resolve(), () => resolve())
        })
      })
      return { perSecond: FILL / ((performance.now() - started) / 1000), completed }
    })
  } finally {
    await queue.obliterate({ force: true }).catch(() => undefined)
    await queue.close()
  }
  return out
}

async function main(): Promise<void> {
  const args = new Command('bench:redis').option('--rounds <n>', 'rounds; the median is reported', '3').option('--seconds <n>', 'seconds per timed phase', '5').option('--no-write', 'do not write docs/benchmarks.md').parse(process.argv).opts<{ rounds: string; seconds: string; write: boolean }>()
  const rounds = Number(args.rounds)
  const seconds = Number(args.seconds)
  const redis = await startRedis()
  const results: Record<string, Measured[]> = {}
  const add = (key: string, m: Measured): void => void (results[key] ??= []).push(m)
  try {
    for (let round = 0; round < rounds; round++) {
      process.stderr.write(`bench:redis: round ${round + 1} of ${rounds}\n`)
      for (const [k, m] of Object.entries(await bullmqRound(redis, seconds, round))) add(`bullmq ${k}`, m)
      for (const count of [1, 2]) for (const [k, m] of Object.entries(await dispenserdRound(redis, count, seconds, round))) add(`${k} ${count}`, m)
      const flush = new Redis(redis.port)
      await flush.flushall()
      flush.disconnect()
    }
  } finally {
    await redis.stop()
  }
  const m = (key: string): Measured => {
    const of = (field: keyof Measured): number => median(results[key]!.map((r) => r[field]))
    return { perSecond: of('perSecond'), cpuUs: of('cpuUs'), frontendUs: of('frontendUs'), clientUs: of('clientUs') }
  }
  const rows: Row[] = []
  const row = (workload: string, subject: string, key: string, against?: [string, string]): void => {
    const value = m(key)
    const cpu = [`Redis ${fmt(value.cpuUs, 1)}`, ...(value.frontendUs > 0 ? [`frontends ${fmt(value.frontendUs, 1)}`] : []), `${value.frontendUs > 0 ? 'HTTP client' : 'client'} ${fmt(value.clientUs, 1)}`]
    rows.push({ workload, subject, value: value.perSecond, unit: 'jobs/s', note: `CPU µs/job: ${cpu.join(', ')}`, ratio: against === undefined ? undefined : { against: against[0], value: value.perSecond / m(against[1]).perSecond } })
  }
  row('schedule', 'BullMQ Queue.add, priorities, 32 in flight', 'bullmq add')
  row('schedule', 'dispenserd over Redis, 1 frontend', 'schedule 1', ['BullMQ Queue.add', 'bullmq add'])
  row('schedule', 'dispenserd over Redis, 2 frontends', 'schedule 2', ['BullMQ Queue.add', 'bullmq add'])
  row('drain', 'dispenserd over Redis, 1 frontend (receive_noblock)', 'drain 1')
  row('drain', 'dispenserd over Redis, 2 frontends', 'drain 2')
  row('leased round trip', 'BullMQ Worker, concurrency 32, no-op jobs', 'bullmq worker')
  row('leased round trip', 'dispenserd over Redis, 1 frontend (receive with lease + ack)', 'roundtrip 1', ['BullMQ Worker', 'bullmq worker'])
  row('leased round trip', 'dispenserd over Redis, 2 frontends', 'roundtrip 2', ['BullMQ Worker', 'bullmq worker'])
  const ratio = (a: string, b: string): number => m(a).perSecond / m(b).perSecond
  const targets = checks([
    { target: 'schedule through 1 frontend ≥ 1.50× BullMQ Queue.add', measured: `${ratio('schedule 1', 'bullmq add').toFixed(2)}×`, met: ratio('schedule 1', 'bullmq add') >= 1.5 },
    { target: 'leased round trip through 1 frontend ≥ 2.00× BullMQ Worker', measured: `${ratio('roundtrip 1', 'bullmq worker').toFixed(2)}×`, met: ratio('roundtrip 1', 'bullmq worker') >= 2 },
  ])
  const text = `${targets}\n\n${table(rows)}`
  process.stdout.write(`${text}\n`)
  if (!args.write) return
  const command = `npm run bench:redis${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`
  const when = `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`
  const file = path.join(ROOT, 'docs', 'benchmarks.md')
  const section = `<!-- redis-store -->
## The Redis store beside BullMQ

Produced by \`${command}\` on ${when} (${rounds} rounds of ${seconds} s; medians). One standalone
redis-server (no persistence) on loopback, shared in the same run by BullMQ ${(JSON.parse(readFileSync(path.join(ROOT, 'node_modules', 'bullmq', 'package.json'), 'utf8')) as { version: string }).version} and by
dispenserd frontends (\`--store redis\`); 32 connections or 32 jobs in flight, 64-byte messages,
random priorities. "CPU µs/job" is each process's utime + stime per job: Redis's (what a shard
spends, the figure that matters when Redis, not this 2-core machine, is the limit), the dispenserd
frontends', and this benchmark process's (BullMQ's client, or the HTTP load generator): on two
cores shared by all of them, their sum is what bounds the throughput. On this shared machine the
ratios within the run are what to read, not the absolute figures; 2 frontends share the same two
cores as Redis and the load generator, so they cannot show scaling here. BullMQ's client talks to
Redis from the benchmark process itself; dispenserd's clients go over HTTP to a frontend that then
talks to Redis: one more hop and one more process on the same two cores, which is what the ratios
below mostly measure when the machine is busy. The Redis CPU per job is the like-for-like figure.

${text}
<!-- /redis-store -->`
  const doc = readFileSync(file, 'utf8')
  const marked = /<!-- redis-store -->[\s\S]*<!-- \/redis-store -->/
  writeFileSync(file, marked.test(doc) ? doc.replace(marked, section) : `${doc.trimEnd()}\n\n${section}\n`)
  process.stderr.write('bench:redis: wrote its section of docs/benchmarks.md\n')
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:redis: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exitCode = 1
})
