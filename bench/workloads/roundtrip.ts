import { httpFrame, httpRequest, openMany, respCommand, respFrame } from '../lib/clients'
import { removeDataDir, startDispenserd, startRedis } from '../lib/procs'
import type { Row, Section } from '../lib/report'
import { percentile } from '../lib/tools'

/**
 * Round trip: 32 consumers block for jobs while producers schedule them, first at a fixed rate,
 * then as fast as they can. Each message carries the time it was sent; a consumer records how long
 * it took to arrive. The same harness drives dispenserd (receive_block) and Redis (LPUSH/BRPOP).
 */
interface Protocol {
  frame: (buf: Buffer) => number
  produce(sentAt: string): Buffer
  consume: Buffer
  /** The message of a delivered job, or undefined for an empty answer. */
  messageOf(response: Buffer): string | undefined
}

const dispenserd: Protocol = {
  frame: httpFrame,
  produce: (sentAt) => httpRequest('/schedule', `{"message":"${sentAt.padStart(64, '0')}"}`),
  consume: httpRequest('/receive_block'),
  messageOf(response) {
    const text = response.toString('latin1')
    const m = /"message":"(\d+)"/.exec(text)
    return m ? m[1] : undefined
  },
}

const redis: Protocol = {
  frame: respFrame,
  produce: (sentAt) => respCommand('LPUSH', 'q', sentAt.padStart(64, '0')),
  consume: respCommand('BRPOP', 'q', '0'),
  messageOf(response) {
    const m = /\r\n(\d{64})\r\n$/.exec(response.toString('latin1'))
    return m ? m[1] : undefined
  },
}

interface Result {
  delivered: number
  perSecond: number
  latenciesMs: number[]
}

async function measure(port: number, proto: Protocol, seconds: number, ratePerSecond: number | 'max'): Promise<Result> {
  const consumers = await openMany(32, port, proto.frame)
  const producers = await openMany(ratePerSecond === 'max' ? 8 : 1, port, proto.frame)
  const latencies: number[] = []
  let stopping = false
  const consuming = consumers.map(async (conn) => {
    while (!stopping) {
      let response: Buffer
      try {
        response = await conn.request(proto.consume)
      } catch {
        return // closed at the end of the run
      }
      const message = proto.messageOf(response)
      if (message !== undefined) latencies.push(Number(process.hrtime.bigint() - BigInt(message)) / 1e6)
    }
  })
  const started = performance.now()
  const deadline = started + seconds * 1000
  const now = (): string => process.hrtime.bigint().toString()
  if (ratePerSecond === 'max') {
    await Promise.all(producers.map(async (conn) => {
      while (performance.now() < deadline) await conn.request(proto.produce(now()))
    }))
  } else {
    // Send on schedule: job k leaves at started + k/rate, whatever the answers' timing.
    const producer = producers[0]!
    let sent = 0
    while (performance.now() < deadline) {
      const due = Math.floor(((performance.now() - started) / 1000) * ratePerSecond)
      while (sent < due) {
        await producer.request(proto.produce(now()))
        sent++
      }
      await new Promise((r) => setTimeout(r, 1))
    }
  }
  // Let the last jobs arrive, then stop the consumers.
  await new Promise((r) => setTimeout(r, 300))
  const elapsed = (performance.now() - started) / 1000
  stopping = true
  for (const c of [...consumers, ...producers]) c.close()
  await Promise.all(consuming)
  return { delivered: latencies.length, perSecond: latencies.length / elapsed, latenciesMs: latencies.sort((a, b) => a - b) }
}

function rows(subject: string, mode: string, result: Result): Row[] {
  const workload = `round trip (${mode})`
  const l = result.latenciesMs
  return [
    { workload, subject: `${subject}: delivered`, value: result.perSecond, unit: 'jobs/s' },
    { workload, subject: `${subject}: latency p50`, value: percentile(l, 50), unit: 'ms' },
    { workload, subject: `${subject}: latency p99`, value: percentile(l, 99), unit: 'ms' },
    { workload, subject: `${subject}: latency max`, value: l[l.length - 1] ?? NaN, unit: 'ms' },
  ]
}

export async function roundTrip(opts: { seconds: number }): Promise<Section> {
  const ours = await startDispenserd(['--no-persist'])
  const red = await startRedis()
  const out: Row[] = []
  let p99AtRate = NaN
  try {
    for (const mode of [1000, 'max'] as const) {
      const label = mode === 'max' ? 'as fast as possible, 8 producers' : `${mode} jobs/s`
      const a = await measure(ours.port, dispenserd, opts.seconds, mode)
      const b = await measure(red.port, redis, opts.seconds, mode)
      if (mode === 1000) p99AtRate = percentile(a.latenciesMs, 99)
      out.push(...rows('dispenserd', label, a), ...rows('redis LPUSH/BRPOP', label, b))
      const ratioRow = out.find((r) => r.subject === 'dispenserd: delivered' && r.workload.includes(label))!
      ratioRow.ratio = { against: 'redis', value: a.perSecond / b.perSecond }
    }
  } finally {
    await Promise.all([ours.stop(), red.stop()])
    removeDataDir(ours)
  }
  return {
    rows: out,
    checks: [{ target: 'round trip at 1k jobs/s: p99 schedule-to-delivery ≤ 2 ms', measured: `${p99AtRate.toFixed(2)} ms`, met: p99AtRate <= 2 }],
  }
}
