import { Connection, httpFrame } from '../lib/clients'
import { removeDataDir, startDispenserd, startRedis } from '../lib/procs'
import type { Row, Section } from '../lib/report'
import { median, redisBenchmark, redisCli, wrk } from '../lib/tools'
import { fillDispenserd, fillRedis } from './throughput'

/**
 * Batch drain (issue 15): `receive_noblock` with `count` 100 and 1000, with and without leases,
 * against Redis ZPOPMIN with the same count, in the same run. Jobs per second are counted from the
 * queue's depth before and after each measurement, not from replies (a reply may carry fewer jobs).
 */

// The two seconds measured at count 1000 drain more than 4M jobs once the reply writer is fast (2M jobs/s).
const FILL = 8_000_000

async function depth(port: number): Promise<number> {
  const conn = await Connection.open(port, httpFrame)
  const response = (await conn.request(Buffer.from('GET / HTTP/1.1\r\nHost: b\r\n\r\n'))).toString()
  conn.close()
  const body = JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4)) as { payload: { server: { queued_jobs_total: number }; queued_jobs: Record<string, number> } }
  return Object.values(body.payload.queued_jobs).reduce((a, b) => a + b, 0)
}

/** A wrk script POSTing one fixed body. */
function postLua(body: string): string {
  return `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = '${body}'\n`
}

export async function batchDrain(opts: { rounds: number; seconds: number }): Promise<Section> {
  const variants = [
    { name: 'count 100', body: '{"count":100}', count: 100 },
    { name: 'count 1000', body: '{"count":1000}', count: 1000 },
    { name: 'count 100, leased', body: '{"count":100,"lease":600}', count: 100 },
    { name: 'count 1000, leased', body: '{"count":1000,"lease":600}', count: 1000 },
  ]
  const results: Record<string, number[]> = {}
  const redis = await startRedis()
  try {
    for (let round = 0; round < opts.rounds; round++) {
      for (const variant of variants) {
        // A fresh daemon for each: leased jobs stay in memory until their leases end.
        const ours = await startDispenserd(['--no-persist'])
        try {
          await fillDispenserd(ours.port, FILL)
          const before = await depth(ours.port)
          const started = performance.now()
          const result = await wrk(ours.port, '/receive_noblock', postLua(variant.body), opts.seconds, 8)
          const seconds = (performance.now() - started) / 1000
          const drained = before - (await depth(ours.port))
          if (result.non2xx > 0) throw new Error(`batch drain: ${result.non2xx} failed requests`)
          if ((await depth(ours.port)) === 0) throw new Error('batch drain: the queue ran empty; fill more')
          ;(results[`dispenserd, ${variant.name} (wrk, 8 connections)`] ??= []).push(drained / seconds)
        } finally {
          await ours.stop()
          removeDataDir(ours)
        }
      }
      for (const count of [100, 1000]) {
        await redisCli(redis.port, 'DEL', 'q')
        await fillRedis(redis.port, FILL)
        const requests = Math.floor((FILL * 0.8) / count)
        const perSecond = await redisBenchmark(redis.port, requests, ['ZPOPMIN', 'q', String(count)])
        ;(results[`redis ZPOPMIN q ${count} (redis-benchmark)`] ??= []).push(perSecond * count)
      }
    }
  } finally {
    await redis.stop()
  }
  const med = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)]))
  const rows: Row[] = []
  const workload = 'batch drain (8M queued)'
  for (const [subject, value] of Object.entries(med)) {
    const count = /count (\d+)/.exec(subject)?.[1] ?? /ZPOPMIN q (\d+)/.exec(subject)?.[1]
    const reference = `redis ZPOPMIN q ${count} (redis-benchmark)`
    if (subject.startsWith('dispenserd') && med[reference] !== undefined) rows.push({ workload, subject, value, unit: 'jobs/s', ratio: { against: reference, value: value / med[reference]! } })
    else rows.push({ workload, subject, value, unit: 'jobs/s' })
  }
  const best = Math.max(...Object.entries(med).filter(([k]) => k.startsWith('dispenserd') && !k.includes('leased')).map(([, v]) => v))
  return { rows, checks: [{ target: 'batch drain: ≥ 1,000,000 jobs/s (count 1000, no lease)', measured: `${Math.round(best).toLocaleString('en-US')} jobs/s`, met: best >= 1_000_000 }] }
}
