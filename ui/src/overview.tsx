import { api, type Lane, type Overview } from './api'
import { Chart } from './chart'
import { count, rate, seconds } from './format'

/** Throughput and latency points (one a second), for the charts: [time, scheduled/s, received/s] and [time, latency ms]. */
export interface History {
  throughput: number[][]
  latency: number[][]
}

export const EMPTY_HISTORY: History = { throughput: [[], [], []], latency: [[], []] }

const POINTS = 300

/** Adds the rates between two updates to the history (summed over lanes); keeps the last 5 minutes. */
export function extend(history: History, before: Overview | undefined, now: Overview): History {
  if (before === undefined) return history
  const dt = (now.time - before.time) / 1000
  if (dt <= 0) return history
  const sum = (o: Overview, pick: (l: Lane) => number): number => o.lanes.reduce((n, l) => n + pick(l), 0)
  const scheduled = (sum(now, (l) => l.scheduled_total) - sum(before, (l) => l.scheduled_total)) / dt
  const received = (sum(now, (l) => l.received_total) - sum(before, (l) => l.received_total)) / dt
  const handed = sum(now, (l) => l.latency_count) - sum(before, (l) => l.latency_count)
  const latencyMs = handed > 0 ? ((sum(now, (l) => l.latency_seconds_sum) - sum(before, (l) => l.latency_seconds_sum)) / handed) * 1000 : null
  const t = now.time / 1000
  const keep = (xs: (number | null)[], x: number | null): number[] => [...xs.slice(-(POINTS - 1)), x] as number[]
  return {
    throughput: [keep(history.throughput[0]!, t), keep(history.throughput[1]!, Math.max(0, scheduled)), keep(history.throughput[2]!, Math.max(0, received))],
    latency: [keep(history.latency[0]!, t), keep(history.latency[1]!, latencyMs)],
  }
}

function PauseButton({ lane, onDone }: { lane: Lane; onDone: (error?: string) => void }) {
  const toggle = (): void => {
    api(lane.paused ? '/resume' : '/pause', { lane: lane.lane }).then(
      () => onDone(),
      (err: Error) => onDone(err.message),
    )
  }
  return (
    <button class={lane.paused ? 'resume' : 'pause'} data-lane={lane.lane} onClick={toggle}>
      {lane.paused ? 'Resume' : 'Pause'}
    </button>
  )
}

/** Every lane: depth, rates, oldest age, receivers, runs, paused; live charts of throughput and latency. */
export function OverviewPage({ overview, history, onError }: { overview: Overview | undefined; history: History; onError: (message?: string) => void }) {
  if (overview === undefined) return <p class="muted">Waiting for the first update…</p>
  return (
    <section>
      <div class="charts">
        <Chart title="Throughput (jobs/s)" unit="/s" series={[{ label: 'scheduled', stroke: '#2f6fdb' }, { label: 'received', stroke: '#2e9e5b' }]} data={history.throughput} />
        <Chart title="Schedule-to-delivery latency (ms, mean)" unit="ms" series={[{ label: 'latency', stroke: '#c0582b' }]} data={history.latency} />
      </div>
      <p class="totals">
        <span id="total-kept">{count(overview.totals.queued_jobs_total ?? 0)}</span> jobs kept · {count(overview.totals.parked_receivers ?? 0)} blocked receivers · next job number {count(overview.totals.next_job_num ?? 0)}
      </p>
      <table class="lanes">
        <thead>
          <tr>
            <th>lane</th><th>ready</th><th>leased</th><th>delayed</th><th>dead</th><th>running</th><th>receivers</th><th>oldest</th><th>drain</th><th>scheduled</th><th>state</th><th />
          </tr>
        </thead>
        <tbody>
          {overview.lanes.map((lane) => (
            <tr key={lane.lane} data-lane={lane.lane}>
              <td><a href={`#/lane/${encodeURIComponent(lane.lane)}`}>{lane.lane}</a>{lane.runner === null ? null : <span class="tag">{lane.runner}</span>}</td>
              <td class="num ready">{count(lane.ready)}</td>
              <td class="num">{count(lane.leased)}</td>
              <td class="num">{count(lane.delayed)}</td>
              <td class="num">{lane.dead > 0 ? <a href="#/failed">{count(lane.dead)}</a> : '0'}</td>
              <td class="num">{lane.runner === null ? '—' : `${lane.running}/${lane.concurrency ?? 0}`}</td>
              <td class="num">{count(lane.parked)}</td>
              <td class="num">{lane.ready > 0 ? seconds(lane.oldest_ready_age_seconds) : '—'}</td>
              <td class="num">{rate(lane.drain_rate)}</td>
              <td class="num">{count(lane.scheduled_total)}</td>
              <td class="state">{lane.paused ? <span class="tag paused">paused</span> : <span class="tag">serving</span>}</td>
              <td><PauseButton lane={lane} onDone={onError} /></td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  )
}
