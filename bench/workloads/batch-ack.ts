import { type Connection, httpFrame, httpRequest, openMany, respCommand, respFrame } from '../lib/clients'
import { removeDataDir, startDispenserd, startRedis } from '../lib/procs'
import type { Row, Section } from '../lib/report'
import { median, redisCli } from '../lib/tools'
import { fillDispenserd, fillRedis } from './throughput'

/**
 * Leased round trip with batch ack (issue 15): consumers lease `count` jobs in one request and ack
 * them all in one more, over and over, from a queue filled beforehand. Redis does the same reliable
 * queue's work in the same run: a script pops `count` members and adds them to an in-flight set
 * (with their deadline as score), then one ZREM acks them. Both are driven by the same Node
 * harness (one request in flight per connection, as roundtrip.ts), with the same count and number
 * of connections; jobs per second count the jobs acked.
 */

const FILL = 4_000_000
const CONNECTIONS = 8

/** Pops up to ARGV[1] jobs and holds them in the in-flight set until ARGV[2] (a deadline). */
const RESERVE_SCRIPT = `local items = redis.call('ZPOPMIN', KEYS[1], ARGV[1])
for i = 1, #items, 2 do redis.call('ZADD', KEYS[2], ARGV[2], items[i]) end
return items`

/** One consumer's cycle: lease a batch, ack it; returns the jobs acked (0 when none was ready). */
type Cycle = (conn: Connection) => Promise<number>

const HASH_AND_TOKEN = /"hash":"([^"]+)"[^}]*?"lease_token":"([^"]+)"/g

export function dispenserdCycle(count: number): Cycle {
  const receive = httpRequest('/receive_noblock', `{"count":${count},"lease":600}`)
  return async (conn) => {
    const reply = (await conn.request(receive)).toString('latin1')
    const leases: string[] = []
    for (const m of reply.matchAll(HASH_AND_TOKEN)) leases.push(`{"hash":"${m[1]}","lease_token":"${m[2]}"}`)
    if (leases.length === 0) return 0
    const acked = (await conn.request(httpRequest('/ack', `{"leases":[${leases.join(',')}]}`))).toString('latin1')
    if (!acked.startsWith('HTTP/1.1 200') || acked.includes('"status":"error"')) throw new Error(`batch ack failed: ${acked.slice(0, 300)}`)
    return leases.length
  }
}

/** The bulk strings of a RESP array reply, at even positions (ZPOPMIN's members; the odd ones are scores). */
function members(reply: Buffer): string[] {
  const out: string[] = []
  let at = reply.indexOf('\r\n') + 2
  for (let i = 0; at < reply.length; i++) {
    const lineEnd = reply.indexOf('\r\n', at)
    const length = Number(reply.toString('latin1', at + 1, lineEnd))
    if (i % 2 === 0) out.push(reply.toString('latin1', lineEnd + 2, lineEnd + 2 + length))
    at = lineEnd + 2 + length + 2
  }
  return out
}

function redisCycle(count: number, sha: string): Cycle {
  return async (conn) => {
    const reserve = respCommand('EVALSHA', sha, '2', 'q', 'inflight', String(count), String(Date.now() + 600_000))
    const popped = members(await conn.request(reserve))
    if (popped.length === 0) return 0
    const removed = (await conn.request(respCommand('ZREM', 'inflight', ...popped))).toString('latin1')
    if (removed !== `:${popped.length}\r\n`) throw new Error(`ZREM answered ${removed.trim()} for ${popped.length} members`)
    return popped.length
  }
}

/** Jobs acked per second: every connection runs `cycle` until `seconds` have passed. */
export async function measure(port: number, frame: typeof httpFrame, cycle: Cycle, seconds: number): Promise<number> {
  const conns = await openMany(CONNECTIONS, port, frame)
  const started = performance.now()
  const deadline = started + seconds * 1000
  let acked = 0
  await Promise.all(
    conns.map(async (conn) => {
      while (performance.now() < deadline) {
        const n = await cycle(conn)
        if (n === 0) throw new Error('leased round trip: the queue ran empty; fill more')
        acked += n
      }
    }),
  )
  const elapsed = (performance.now() - started) / 1000
  for (const c of conns) c.close()
  return acked / elapsed
}

export async function batchAck(opts: { rounds: number; seconds: number }): Promise<Section> {
  const counts = [100, 1000]
  const results: Record<string, number[]> = {}
  const ourSubject = (count: number): string => `dispenserd, count ${count}, lease, then one batch ack (node client, ${CONNECTIONS} connections)`
  const redisSubject = (count: number): string => `redis script ZPOPMIN ${count} + ZADD in-flight, then one ZREM (node client, ${CONNECTIONS} connections)`
  const redis = await startRedis()
  try {
    const sha = await redisCli(redis.port, 'SCRIPT', 'LOAD', RESERVE_SCRIPT)
    for (let round = 0; round < opts.rounds; round++) {
      for (const count of counts) {
        const ours = await startDispenserd(['--no-persist'])
        try {
          await fillDispenserd(ours.port, FILL)
          ;(results[ourSubject(count)] ??= []).push(await measure(ours.port, httpFrame, dispenserdCycle(count), opts.seconds))
        } finally {
          await ours.stop()
          removeDataDir(ours)
        }
        await redisCli(redis.port, 'DEL', 'q', 'inflight')
        await fillRedis(redis.port, FILL)
        ;(results[redisSubject(count)] ??= []).push(await measure(redis.port, respFrame, redisCycle(count, sha), opts.seconds))
      }
    }
  } finally {
    await redis.stop()
  }
  const workload = 'leased round trip with batch ack (4M queued)'
  const rows: Row[] = []
  for (const count of counts) {
    const ours = median(results[ourSubject(count)]!)
    const reference = median(results[redisSubject(count)]!)
    rows.push({ workload, subject: ourSubject(count), value: ours, unit: 'jobs/s', ratio: { against: redisSubject(count), value: ours / reference } })
    rows.push({ workload, subject: redisSubject(count), value: reference, unit: 'jobs/s' })
  }
  return { rows, checks: [] }
}
