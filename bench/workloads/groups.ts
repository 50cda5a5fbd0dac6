import { removeDataDir, startDispenserd } from '../lib/procs'
import type { Row, Section } from '../lib/report'
import { EMPTY_POST_LUA, median, wrk } from '../lib/tools'
import { fillDispenserd } from './throughput'

/**
 * Fair groups (issue 14): draining one lane whose jobs are spread over 1,000 groups (served in
 * turn within each priority) against the same lane without groups, in the same run, by the same
 * load generator. Target: grouped ≥ 0.8× ungrouped.
 */

const FILL = 1_000_000
const GROUPS = 1000

/** A batch of `size` jobs with 64-byte messages, priorities 0–99, each in one of GROUPS groups. */
function groupedBody(size: number, seed: number): string {
  const jobs = Array.from({ length: size }, (_, i) => `{"message":"${String(seed * size + i).padStart(64, '0')}","priority":${(i * 37 + seed) % 100},"group":"g${(seed * size + i * 7) % GROUPS}"}`)
  return `{"jobs":[${jobs.join(',')}]}`
}

export async function groups(opts: { rounds: number; seconds: number }): Promise<Section> {
  const plain = 'dispenserd, no groups (wrk)'
  const grouped = `dispenserd, ${GROUPS.toLocaleString('en-US')} groups in one lane (wrk)`
  const r: Record<string, number[]> = { [plain]: [], [grouped]: [] }
  for (let round = 0; round < opts.rounds; round++) {
    for (const [name, body] of [[plain, undefined], [grouped, groupedBody]] as const) {
      const ours = await startDispenserd(['--no-persist'])
      try {
        await fillDispenserd(ours.port, FILL, body)
        const result = await wrk(ours.port, '/receive_noblock', EMPTY_POST_LUA, opts.seconds)
        if (result.non2xx > 0) throw new Error(`groups: ${result.non2xx} failed requests`)
        r[name]!.push(result.perSecond)
      } finally {
        await ours.stop()
        removeDataDir(ours)
      }
    }
  }
  const [p, g] = [median(r[plain]!), median(r[grouped]!)]
  const workload = `drain, groups (${FILL / 1e6}M queued)`
  const rows: Row[] = [
    { workload, subject: plain, value: p, unit: 'jobs/s' },
    { workload, subject: grouped, value: g, unit: 'jobs/s', ratio: { against: plain, value: g / p } },
  ]
  return { rows, checks: [{ target: `drain with ${GROUPS} groups in one lane ≥ 0.80× without groups`, measured: `${(g / p).toFixed(2)}×`, met: g / p >= 0.8 }] }
}
