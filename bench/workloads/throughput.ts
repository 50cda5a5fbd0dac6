import { Connection, MESSAGE_64, beanstalkFrame, closedLoop, httpFrame, httpRequest, openMany } from '../lib/clients'
import { type Server, removeDataDir, rssBytes, startBeanstalkd, startBound, startCeiling, startDispenserd, startRedis } from '../lib/procs'
import type { Row, Section } from '../lib/report'
import { EMPTY_POST_LUA, REDIS_KEYSPACE, SCHEDULE_LUA, batchLua, median, redisBenchmark, redisCli, wrk } from '../lib/tools'

export interface Options {
  rounds: number
  seconds: number
  /** Queue sizes for the scale workload. */
  scaleSizes: number[]
}

const BATCH = 1000

/** The two bare uWS programs (bench/ceiling.ts, bench/bound.ts) that schedule and drain quote dispenserd against. */
const CEILING = 'bare uWS ceiling (wrk)'
const BOUND = 'bare uWS bound: same work (wrk)'
/** The bound driven by the Node client that drives beanstalkd and dispenserd in the like-for-like rows. */
const BOUND_NODE = 'bare uWS bound: same work (node client)'

/** A batch body of `size` jobs with 64-byte messages and priorities 0–99. */
function batchBody(size: number, seed: number): string {
  const jobs = Array.from({ length: size }, (_, i) => `{"message":"${String(seed * size + i).padStart(64, '0')}","priority":${(i * 37 + seed) % 100}}`)
  return `{"jobs":[${jobs.join(',')}]}`
}

/** Queues `count` jobs through the batch endpoint, four connections at a time; `body` makes a batch of BATCH jobs. */
export async function fillDispenserd(port: number, count: number, body: (size: number, seed: number) => string = batchBody): Promise<void> {
  const conns = await openMany(4, port, httpFrame)
  const requests = Array.from({ length: 8 }, (_, i) => httpRequest('/schedule', body(BATCH, i)))
  let sent = 0
  await closedLoop(conns, 3_600_000, (index, response) => {
    if (response !== undefined && !response.toString('latin1', 0, 12).includes('200')) throw new Error(`fill failed: ${response.toString()}`)
    if (sent >= count) return undefined
    sent += BATCH
    return requests[(sent / BATCH + index) % requests.length]
  })
  for (const c of conns) c.close()
}

export async function fillRedis(port: number, count: number): Promise<void> {
  await redisCli(port, 'EVAL', `for i=1,ARGV[1] do redis.call('ZADD', KEYS[1], i % 100, string.format('%064d', i)) end`, '1', 'q', String(count))
}

export async function fillBeanstalkd(port: number, count: number): Promise<void> {
  const conns = await openMany(4, port, beanstalkFrame)
  const put = Buffer.from(`put 0 0 600 64\r\n${MESSAGE_64}\r\n`)
  let sent = 0
  await closedLoop(conns, 3_600_000, () => (sent++ < count ? put : undefined))
  for (const c of conns) c.close()
}

async function queued(port: number): Promise<number> {
  const conn = await Connection.open(port, httpFrame)
  const response = (await conn.request(Buffer.from('GET / HTTP/1.1\r\nHost: b\r\n\r\n'))).toString()
  conn.close()
  const body = JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4)) as { payload: { queued_jobs: Record<string, number> } }
  return Object.values(body.payload.queued_jobs).reduce((a, b) => a + b, 0)
}

/** Redis's rate for a command, with -n sized from a first short run so each run lasts about `seconds`. */
async function redisRate(port: number, seconds: number, command: string[], keyspace?: number, maxRequests = Infinity): Promise<number> {
  const probe = await redisBenchmark(port, 50_000, command, keyspace)
  return redisBenchmark(port, Math.min(maxRequests, Math.round(probe * seconds)), command, keyspace)
}

export async function schedule(opts: Options): Promise<Section> {
  const ceiling = await startCeiling()
  const bound = await startBound()
  const ours = await startDispenserd(['--no-persist'])
  const redis = await startRedis()
  const bean = await startBeanstalkd()
  const r: Record<string, number[]> = { [CEILING]: [], [BOUND]: [], 'dispenserd (wrk)': [], 'redis ZADD (redis-benchmark)': [], 'beanstalkd put (node client)': [], 'dispenserd (node client)': [], [BOUND_NODE]: [] }
  try {
    const put = Buffer.from(`put 0 0 600 64\r\n${MESSAGE_64}\r\n`)
    const bodies = Array.from({ length: 100 }, (_, i) => httpRequest('/schedule', `{"message":"${MESSAGE_64}","priority":${i}}`))
    for (let round = 0; round < opts.rounds; round++) {
      r[CEILING]!.push((await wrk(ceiling.port, '/schedule', SCHEDULE_LUA, opts.seconds)).perSecond)
      r[BOUND]!.push((await wrk(bound.port, '/schedule', SCHEDULE_LUA, opts.seconds)).perSecond)
      r['dispenserd (wrk)']!.push((await wrk(ours.port, '/schedule', SCHEDULE_LUA, opts.seconds)).perSecond)
      r['redis ZADD (redis-benchmark)']!.push(await redisRate(redis.port, opts.seconds, ['ZADD', 'q', '__rand_int__', `${'m'.repeat(52)}__rand_int__`], REDIS_KEYSPACE))
      const beanConns = await openMany(32, bean.port, beanstalkFrame)
      r['beanstalkd put (node client)']!.push((await closedLoop(beanConns, opts.seconds * 1000, () => put)).perSecond)
      beanConns.forEach((c) => c.close())
      for (const [subject, port] of [['dispenserd (node client)', ours.port], [BOUND_NODE, bound.port]] as const) {
        const conns = await openMany(32, port, httpFrame)
        let n = 0
        r[subject]!.push((await closedLoop(conns, opts.seconds * 1000, () => bodies[n++ % 100])).perSecond)
        conns.forEach((c) => c.close())
      }
    }
  } finally {
    await Promise.all([ceiling.stop(), bound.stop(), ours.stop(), redis.stop(), bean.stop()])
    removeDataDir(ours)
  }
  return compare('schedule', 'jobs/s', r, [
    [BOUND, CEILING],
    ['dispenserd (wrk)', CEILING],
    ['dispenserd (wrk)', BOUND],
    ['dispenserd (wrk)', 'redis ZADD (redis-benchmark)'],
    [BOUND, 'redis ZADD (redis-benchmark)'],
    ['dispenserd (node client)', 'beanstalkd put (node client)'],
    ['dispenserd (node client)', BOUND_NODE],
    [BOUND_NODE, 'beanstalkd put (node client)'],
  ])
}

/** Rows of medians; each pair [ours, reference] adds the ratio ours/reference to ours' row. */
function compare(workload: string, unit: string, results: Record<string, number[]>, pairs: [string, string][]): Section {
  const med = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)]))
  const rows: Row[] = []
  for (const [subject, value] of Object.entries(med)) {
    const against = pairs.filter(([ours]) => ours === subject)
    if (against.length === 0) rows.push({ workload, subject, value, unit })
    for (const [, reference] of against) rows.push({ workload, subject, value, unit, ratio: { against: reference, value: value / med[reference]! } })
  }
  return { rows, checks: [] }
}

export async function drain(opts: Options, size = 1_000_000): Promise<Section> {
  const ceiling = await startCeiling()
  const bound = await startBound()
  const ours = await startDispenserd(['--no-persist'])
  const redis = await startRedis()
  const bean = await startBeanstalkd()
  const r: Record<string, number[]> = { [CEILING]: [], [BOUND]: [], 'dispenserd (wrk)': [], 'redis ZPOPMIN (redis-benchmark)': [], 'beanstalkd reserve+delete (node client)': [], 'dispenserd (node client)': [] }
  const receive = httpRequest('/receive_noblock')
  try {
    for (let round = 0; round < opts.rounds; round++) {
      r[CEILING]!.push((await wrk(ceiling.port, '/receive_noblock', EMPTY_POST_LUA, opts.seconds)).perSecond)
      // The bound and dispenserd each drain a queue of `size` jobs, filled the same way.
      for (const [subject, server] of [[BOUND, bound], ['dispenserd (wrk)', ours]] as const) {
        await fillDispenserd(server.port, size - (await queued(server.port)))
        const drained = await wrk(server.port, '/receive_noblock', EMPTY_POST_LUA, opts.seconds)
        if ((await queued(server.port)) === 0) throw new Error(`drain: the ${server.name}'s queue ran empty; measure with a larger queue`)
        r[subject]!.push(drained.perSecond)
      }

      await redisCli(redis.port, 'DEL', 'q')
      await fillRedis(redis.port, size)
      r['redis ZPOPMIN (redis-benchmark)']!.push(await redisRate(redis.port, opts.seconds, ['ZPOPMIN', 'q'], undefined, size - 60_000))

      await fillBeanstalkd(bean.port, Math.min(size, 400_000))
      const beanConns = await openMany(32, bean.port, beanstalkFrame)
      let jobs = 0
      const started = performance.now()
      await closedLoop(beanConns, opts.seconds * 1000, (_, response) => {
        const text = response?.toString('latin1', 0, 40)
        const id = text?.startsWith('RESERVED') ? text.split(' ')[1] : undefined
        if (id !== undefined) {
          jobs++
          return Buffer.from(`delete ${id}\r\n`)
        }
        return Buffer.from('reserve-with-timeout 0\r\n')
      })
      r['beanstalkd reserve+delete (node client)']!.push(jobs / ((performance.now() - started) / 1000))
      beanConns.forEach((c) => c.close())

      const ourConns = await openMany(32, ours.port, httpFrame)
      r['dispenserd (node client)']!.push((await closedLoop(ourConns, opts.seconds * 1000, () => receive)).perSecond)
      ourConns.forEach((c) => c.close())
    }
  } finally {
    await Promise.all([ceiling.stop(), bound.stop(), ours.stop(), redis.stop(), bean.stop()])
    removeDataDir(ours)
  }
  return compare(`drain (${(size / 1e6).toFixed(0)}M queued)`, 'jobs/s', r, [
    [BOUND, CEILING],
    ['dispenserd (wrk)', CEILING],
    ['dispenserd (wrk)', BOUND],
    ['dispenserd (wrk)', 'redis ZPOPMIN (redis-benchmark)'],
    [BOUND, 'redis ZPOPMIN (redis-benchmark)'],
    ['dispenserd (node client)', 'beanstalkd reserve+delete (node client)'],
  ])
}

export async function batch(opts: Options): Promise<Section> {
  const ceiling = await startCeiling()
  const r: Record<string, number[]> = { 'bare uWS ceiling (wrk)': [], 'dispenserd (wrk)': [] }
  const lua = batchLua(BATCH)
  try {
    for (let round = 0; round < opts.rounds; round++) {
      r['bare uWS ceiling (wrk)']!.push((await wrk(ceiling.port, '/schedule', lua, opts.seconds, 8)).perSecond * BATCH)
      // A fresh daemon each round: at half a million jobs a second the queue grows by millions.
      const ours = await startDispenserd(['--no-persist'])
      const result = await wrk(ours.port, '/schedule', lua, opts.seconds, 8)
      if (result.non2xx > 0) throw new Error(`batch: ${result.non2xx} failed requests`)
      r['dispenserd (wrk)']!.push(result.perSecond * BATCH)
      await ours.stop()
      removeDataDir(ours)
    }
  } finally {
    await ceiling.stop()
  }
  const section = compare(`batch (${BATCH} jobs a request, 8 connections)`, 'jobs/s', r, [['dispenserd (wrk)', 'bare uWS ceiling (wrk)']])
  const jobsPerSecond = median(r['dispenserd (wrk)']!)
  section.checks.push({ target: 'batch: ≥ 500,000 jobs/s ingested', measured: `${Math.round(jobsPerSecond).toLocaleString('en-US')} jobs/s`, met: jobsPerSecond >= 500_000 })
  return section
}

export async function scale(opts: Options): Promise<Section> {
  const rows: Row[] = []
  let base: number | undefined
  for (const size of opts.scaleSizes) {
    const ours: Server = await startDispenserd(['--no-persist'])
    try {
      const before = rssBytes(ours.pid)
      await fillDispenserd(ours.port, size)
      const filled = rssBytes(ours.pid)
      const rates: number[] = []
      for (let round = 0; round < opts.rounds; round++) rates.push((await wrk(ours.port, '/schedule', SCHEDULE_LUA, opts.seconds)).perSecond)
      const rate = median(rates)
      base ??= rate
      const label = size >= 1e6 ? `${size / 1e6}M` : `${size / 1e3}k`
      rows.push({ workload: 'scale', subject: `schedule with ${label} queued`, value: rate, unit: 'jobs/s', ratio: { against: 'the smallest queue', value: rate / base } })
      rows.push({ workload: 'scale', subject: `RSS with ${label} queued`, value: (filled - before) / size, unit: 'bytes/job' })
    } finally {
      await ours.stop()
      removeDataDir(ours)
    }
  }
  return { rows, checks: [] }
}

/** The smoke run for the test suite: a second of schedules against dispenserd and the ceiling. */
export async function smoke(): Promise<Section> {
  const ceiling = await startCeiling()
  const ours = await startDispenserd(['--no-persist'])
  const r: Record<string, number[]> = { 'bare uWS ceiling (node client)': [], 'dispenserd (node client)': [] }
  try {
    const body = httpRequest('/schedule', `{"message":"${MESSAGE_64}","priority":5}`)
    for (const [name, server] of [['bare uWS ceiling (node client)', ceiling], ['dispenserd (node client)', ours]] as const) {
      const conns = await openMany(4, server.port, httpFrame)
      r[name]!.push((await closedLoop(conns, 1000, () => body)).perSecond)
      conns.forEach((c) => c.close())
    }
    if ((await queued(ours.port)) === 0) throw new Error('smoke: nothing was queued')
  } finally {
    await Promise.all([ceiling.stop(), ours.stop()])
    removeDataDir(ours)
  }
  return compare('smoke: schedule', 'jobs/s', r, [['dispenserd (node client)', 'bare uWS ceiling (node client)']])
}
