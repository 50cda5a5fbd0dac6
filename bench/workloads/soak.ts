import { httpFrame, httpRequest, openMany } from '../lib/clients'
import { removeDataDir, rssBytes, startDispenserd } from '../lib/procs'
import type { Row, Section } from '../lib/report'

/**
 * A long mixed load with the default limits: producers schedule (single jobs and batches),
 * consumers take jobs with receive_noblock and receive_block (with a timeout), clients connect and
 * vanish. RSS is sampled every 10 s; it should level off, not climb.
 */
export async function soak(minutes: number): Promise<Section> {
  const ours = await startDispenserd(['--persist-interval', '60', '--max-queued-jobs', '10000000', '--max-queued-bytes', '1073741824'])
  const samples: { at: number; rss: number }[] = []
  const deadline = performance.now() + minutes * 60_000
  let scheduled = 0
  let received = 0
  let errors = 0
  let queuedAtEnd = NaN
  try {
    // More consumers than producers, so the queue stays near a steady size rather than growing.
    const producers = await openMany(2, ours.port, httpFrame)
    const consumers = await openMany(6, ours.port, httpFrame)
    const blockers = await openMany(8, ours.port, httpFrame)
    const single = (i: number): Buffer => httpRequest('/schedule', `{"message":"${String(i).padStart(64, '0')}","priority":${i % 50},"lane":"lane${i % 20}"}`)
    const batch = httpRequest('/schedule', `{"jobs":[${Array.from({ length: 100 }, (_, i) => `{"message":"${'b'.repeat(64)}","priority":${i % 50},"lane":"lane${i % 20}"}`).join(',')}]}`)
    const ok = (r: Buffer): boolean => r.toString('latin1', 0, 12).includes('200')
    const loops = [
      ...producers.map(async (c, p) => {
        for (let i = 0; performance.now() < deadline; i++) {
          const r = await c.request(i % 50 === 0 ? batch : single(i * 2 + p))
          if (ok(r)) scheduled += i % 50 === 0 ? 100 : 1
          else errors++
        }
      }),
      ...consumers.map(async (c, k) => {
        for (let i = 0; performance.now() < deadline; i++) {
          const r = await c.request(httpRequest('/receive_noblock', `{"lane":"lane${(i + k) % 20}"}`))
          if (r.includes('"code":0')) received++
        }
      }),
      ...blockers.map(async (c, k) => {
        while (performance.now() < deadline) {
          const r = await c.request(httpRequest('/receive_block', `{"lane":"lane${k}","timeout":0.5}`))
          if (r.includes('"code":0')) received++
        }
      }),
      (async () => {
        const { connect } = await import('node:net')
        while (performance.now() < deadline) {
          // Connections opened and dropped, some mid-request.
          const s = connect(ours.port, '127.0.0.1')
          s.on('error', () => undefined)
          s.on('connect', () => s.end('POST /schedule HTTP/1.1\r\nContent-Length: 50\r\n\r\n{"mess'))
          await new Promise((r) => setTimeout(r, 5))
        }
      })(),
      (async () => {
        const started = performance.now()
        while (performance.now() < deadline) {
          samples.push({ at: (performance.now() - started) / 1000, rss: rssBytes(ours.pid) })
          await new Promise((r) => setTimeout(r, Math.min(10_000, Math.max(0, deadline - performance.now()))))
        }
        samples.push({ at: (performance.now() - started) / 1000, rss: rssBytes(ours.pid) })
      })(),
    ]
    await Promise.all(loops)
    for (const c of [...producers, ...consumers, ...blockers]) c.close()
    const status = (await (await fetch(`http://127.0.0.1:${ours.port}/`)).json()) as { payload: { server: { queued_jobs_total: number } } }
    queuedAtEnd = status.payload.server.queued_jobs_total
  } finally {
    await ours.stop()
    removeDataDir(ours)
  }
  const workload = `soak (${minutes} min mixed load, default limits)`
  const mb = (b: number): number => b / 2 ** 20
  const firstMinute = samples.filter((s) => s.at <= 60).map((s) => s.rss)
  const lastMinute = samples.filter((s) => s.at >= samples[samples.length - 1]!.at - 60).map((s) => s.rss)
  const rows: Row[] = [
    { workload, subject: 'jobs scheduled', value: scheduled / (minutes * 60), unit: 'jobs/s' },
    { workload, subject: 'jobs received', value: received / (minutes * 60), unit: 'jobs/s' },
    { workload, subject: 'refused requests (limits)', value: errors, unit: '' },
    { workload, subject: 'jobs queued at the end', value: queuedAtEnd, unit: 'jobs' },
    { workload, subject: 'RSS, highest in the first minute', value: mb(Math.max(...firstMinute)), unit: 'MiB' },
    { workload, subject: 'RSS, highest in the last minute', value: mb(Math.max(...lastMinute)), unit: 'MiB' },
    { workload, subject: 'RSS, highest overall', value: mb(Math.max(...samples.map((s) => s.rss))), unit: 'MiB' },
  ]
  return { rows, checks: [] }
}
