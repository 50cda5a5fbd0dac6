import { Connection, httpFrame } from '../lib/clients'
import { removeDataDir, startDispenserd } from '../lib/procs'
import type { Row, Section } from '../lib/report'
import { SCHEDULE_LUA, wrk } from '../lib/tools'
import { fillDispenserd } from './throughput'

const HEALTH = Buffer.from('GET /healthz HTTP/1.1\r\nHost: b\r\n\r\n')

/** A GET on `conn`; resolves to the reply's body and how long it took (ms). */
async function get(conn: Connection, url: string): Promise<{ body: string; ms: number }> {
  const sent = performance.now()
  const reply = await conn.request(Buffer.from(`GET ${url} HTTP/1.1\r\nHost: b\r\n\r\n`))
  const text = reply.toString('utf8')
  return { body: text.slice(text.indexOf('\r\n\r\n') + 4), ms: performance.now() - sent }
}

/**
 * Pages of `GET /jobs` at `count` queued jobs while wrk schedules as fast as it can: pages of 100
 * walked by cursor, pages at growing offsets, searches that match nothing (each looks at 100,000
 * jobs), and a health check every 2 ms meanwhile on a connection of its own. The longest health
 * wait is the longest the daemon stalled other requests (target ≤ 20 ms); the same load without
 * pages first gives the wait the load alone causes (on a busy machine, the wait for a CPU).
 */
export async function pages(count: number, seconds: number): Promise<Section> {
  const workload = `pages (${count / 1e6}M queued, under a schedule load)`
  const ours = await startDispenserd(['--persist-interval', '0'])
  const times = { cursor: [] as number[], offset: [] as number[], search: [] as number[] }
  const control = { stall: 0, probes: 0 }
  const paging = { stall: 0, probes: 0 }
  try {
    await fillDispenserd(ours.port, count)
    const pageConn = await Connection.open(ours.port, httpFrame)
    const probeConn = await Connection.open(ours.port, httpFrame)
    /** Health checks every 2 ms on a connection of their own while `loading()`; the longest wait. */
    const probe = async (into: { stall: number; probes: number }, loading: () => boolean): Promise<void> => {
      while (loading()) {
        const sent = performance.now()
        await probeConn.request(HEALTH)
        into.stall = Math.max(into.stall, performance.now() - sent)
        into.probes++
        await new Promise((r) => setTimeout(r, 2))
      }
    }
    // The same load without pages first: on a shared machine the probe waits for the CPU too.
    let loading = true
    const first = wrk(ours.port, '/schedule', SCHEDULE_LUA, seconds).finally(() => (loading = false))
    await probe(control, () => loading)
    await first
    loading = true
    const load = wrk(ours.port, '/schedule', SCHEDULE_LUA, seconds).finally(() => (loading = false))
    const probing = probe(paging, () => loading)
    let cursor: string | null = null
    let offset = 0
    while (loading) {
      const next = await get(pageConn, `/jobs?lane=main&limit=100${cursor === null ? '' : `&cursor=${cursor}`}`)
      times.cursor.push(next.ms)
      cursor = (JSON.parse(next.body) as { next_cursor: string | null }).next_cursor
      offset = (offset + 99_991) % count
      times.offset.push((await get(pageConn, `/jobs?lane=main&limit=100&offset=${offset}`)).ms)
      times.search.push((await get(pageConn, '/jobs?lane=main&limit=100&q=nothing-matches-this')).ms)
    }
    await load
    await probing
    pageConn.close()
    probeConn.close()
  } finally {
    await ours.stop()
    removeDataDir(ours)
  }
  const max = (xs: number[]): number => Math.max(...xs)
  const rows: Row[] = [
    { workload, subject: `page by cursor, slowest of ${times.cursor.length}`, value: max(times.cursor), unit: 'ms' },
    { workload, subject: `page by offset, slowest of ${times.offset.length}`, value: max(times.offset), unit: 'ms' },
    { workload, subject: `search matching nothing (100,000 jobs looked at), slowest of ${times.search.length}`, value: max(times.search), unit: 'ms' },
    { workload, subject: `longest health-check wait with pages (stall), of ${paging.probes}`, value: paging.stall, unit: 'ms' },
    { workload, subject: `the same load without pages (control), of ${control.probes}`, value: control.stall, unit: 'ms' },
  ]
  return { rows, checks: [{ target: `GET /jobs pages at ${count / 1e6}M queued under load: longest stall ≤ 20 ms`, measured: `${paging.stall.toFixed(1)} ms (without pages: ${control.stall.toFixed(1)} ms)`, met: paging.stall <= 20 }] }
}
