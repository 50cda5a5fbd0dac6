import t from 'tap'
import { codeOf } from './helpers/errors'
import type { ChangeLog } from '../src/queue/changes'
import type { Held } from '../src/queue/held'
import { Queue } from '../src/queue/queue'

const noop = (): undefined => undefined
const changes: ChangeLog = {
  scheduled: noop, taken: noop, leased: noop, acked: noop, returned: noop, buried: noop, deleted: noop,
  lanePaused: noop, finished: noop, uniqueHeld: noop, cronChanged: noop,
}

// Small deterministic PRNG so a failure replays.
function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0
    return s / 2 ** 32
  }
}

t.test('random mix of batch and single leases matches a model of one lease per job', (t) => {
  for (let seed = 1; seed <= 40; seed++) {
    const rand = rng(seed)
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!
    let ms = 1_700_000_000_000
    const q = new Queue({ clock: () => ms, changes, leaseTokenPrefix: 'p-' })
    const lanes = ['a', 'b']
    // Model: job number -> lease in force (its Held, deadline) or ready or gone.
    const state = new Map<number, { lane: string; hash: string; lease?: { token: string; at: number; held: Held } }>()
    const oldTokens: { hash: string; token: string }[] = []
    const fail = (what: string): void => {
      t.fail(`seed ${seed}: ${what}`)
    }
    for (let step = 0; step < 400; step++) {
      const r = rand()
      if (r < 0.25) {
        const lane = pick(lanes)
        for (let k = Math.floor(rand() * 20); k > 0; k--) {
          const job = q.schedule({ message: 'x'.repeat(Math.floor(rand() * 5)), lane, priority: Math.floor(rand() * 50) })
          state.set(job.jobNum, { lane, hash: job.hash })
        }
      } else if (r < 0.4) {
        const lane = pick(lanes)
        const leases = rand() < 0.7 ? q.receiveLeasedMany(lane, 1000 + Math.floor(rand() * 3000), 1 + Math.floor(rand() * 30)) : [q.receiveLeased(lane, 2000)].filter((l): l is Held => l !== undefined)
        for (const l of leases) {
          const s = state.get(l.job.jobNum)!
          if (s.lease !== undefined) fail(`job ${l.job.jobNum} leased twice`)
          s.lease = { token: l.token, at: l.at, held: l }
        }
      } else if (r < 0.7) {
        const leasedNow = [...state.entries()].filter(([, s]) => s.lease !== undefined)
        if (leasedNow.length === 0) continue
        const [num, s] = pick(leasedNow)
        const useToken = rand() < 0.7 ? s.lease!.token : rand() < 0.5 && oldTokens.length > 0 ? pick(oldTokens).token : pick(leasedNow)[1].lease!.token
        const ok = useToken === s.lease!.token
        const op = pick(['ack', 'release', 'touch', 'releaseDelay'])
        const run = (): void => {
          if (op === 'ack') q.ack(s.hash, useToken)
          else if (op === 'release') q.release(s.hash, useToken)
          else if (op === 'releaseDelay') q.release(s.hash, useToken, 500)
          else {
            const h = q.touch(s.hash, useToken, 1000 + Math.floor(rand() * 3000))
            s.lease = { token: s.lease!.token, at: h.at, held: h }
          }
        }
        const code = codeOf(run)
        if (ok && code !== undefined) fail(`${op} of job ${num} with its own token: ${code}`)
        if (!ok && code !== 'not_leased') fail(`${op} of job ${num} with another token: ${code}`)
        if (ok) {
          if (op === 'touch') {
            const h = q.findJob(s.hash)
            if (h?.state !== 'leased') fail(`touched job ${num} not leased`)
          } else {
            oldTokens.push({ hash: s.hash, token: s.lease!.token })
            s.lease = undefined
            if (op === 'ack') state.delete(num)
          }
        }
      } else if (r < 0.8) {
        ms += Math.floor(rand() * 1500)
        const expired = q.expireDue()
        for (const job of expired.leases) {
          const s = state.get(job.jobNum)
          if (s?.lease === undefined) fail(`job ${job.jobNum} expired but not leased in the model`)
          else if (s.lease.at > ms) fail(`job ${job.jobNum} expired before its deadline`)
          else {
            oldTokens.push({ hash: s.hash, token: s.lease.token })
            s.lease = undefined
          }
        }
        for (const [num, s] of state) if (s.lease !== undefined && s.lease.at <= ms) fail(`job ${num} past its deadline, still leased`)
      } else if (r < 0.9) {
        // Stale tokens of earlier leases never act on a job leased again.
        if (oldTokens.length === 0) continue
        const old = pick(oldTokens)
        const s = [...state.values()].find((x) => x.hash === old.hash)
        if (s?.lease !== undefined && s.lease.token !== old.token) {
          if (codeOf(() => q.ack(old.hash, old.token)) !== 'not_leased') fail(`stale token acked job with hash ${old.hash}`)
        }
      } else {
        // Pages and counts agree with the model.
        for (const lane of lanes) {
          const leased = [...state.values()].filter((s) => s.lane === lane && s.lease !== undefined).length
          if ((q.stats().leased[lane] ?? 0) !== leased) fail(`lane ${lane} leased ${q.stats().leased[lane]} vs model ${leased}`)
        }
        const total = [...state.values()].filter((s) => s.lease !== undefined).length
        if (q.leasedJobs !== total) fail(`leasedJobs ${q.leasedJobs} vs ${total}`)
        for (const [num, s] of state) {
          const found = q.findJob(s.hash)
          if (s.lease !== undefined && found?.state !== 'leased') fail(`job ${num} should be leased, is ${found?.state}`)
          if (s.lease === undefined && found?.state === 'leased') fail(`job ${num} should not be leased`)
        }
      }
    }
  }
  t.end()
})
