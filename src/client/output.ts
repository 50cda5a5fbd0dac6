import type { FailedPage, Job, JobDetail, Status } from './types'

/**
 * The command-line client's human output: short lines and small tables, messages cut to the
 * terminal's width. (`--json` prints the daemon's replies instead.)
 */

export function table(rows: (string | number)[][], rightAligned: (i: number) => boolean = (i) => i > 0): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => String(row[i] ?? '').length)))
  return rows
    .map((row) => row.map((cell, i) => (rightAligned(i) ? String(cell).padStart(widths[i]!) : String(cell).padEnd(widths[i]!))).join('  ').trimEnd())
    .join('\n')
}

/** One line of text, at most `width` characters (control characters shown as spaces). */
export function oneLine(text: string, width: number): string {
  const flat = text.replace(/[\u0000-\u001f\u007f]+/g, ' ')
  return flat.length <= width ? flat : `${flat.slice(0, Math.max(1, width - 1))}…`
}

export function duration(seconds: number): string {
  const d = Math.floor(seconds / 86400)
  const h = Math.floor((seconds % 86400) / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  const s = seconds % 60
  return d > 0 ? `${d}d ${h}h` : h > 0 ? `${h}h ${m}m` : m > 0 ? `${m}m ${s}s` : `${s}s`
}

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = n
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(1)} ${units[unit]}`
}

export function formatStatus(status: Status, url: string): string {
  const { payload } = status
  const lines = [`dispenserd ${status.version} at ${url}`]
  if (payload.server === undefined) {
    lines.push(payload.details ?? 'no detail in the reply', 'give the token with --token or DISPENSERD_TOKEN')
    return lines.join('\n')
  }
  const s = payload.server
  lines[0] += `: up ${duration(s.uptime_seconds)}, ${s.queued_jobs_total} jobs kept (${bytes(s.queued_bytes)}), ${s.leased_jobs_total} leased, ${s.dead_jobs_total} dead, ${s.parked_receivers} receivers waiting, next job ${s.next_job_num}`
  const lanes = Object.keys(payload.queued_jobs ?? {}).sort()
  const count = (of: Record<string, number> | undefined, lane: string): number => of?.[lane] ?? 0
  const runners = payload.runners ?? {}
  const rows: (string | number)[][] = [['lane', 'queued', 'leased', 'delayed', 'waiting', 'runner']]
  for (const lane of lanes) {
    const r = runners[lane]
    rows.push([lane, count(payload.queued_jobs, lane), count(payload.leased_jobs, lane), count(payload.delayed_jobs, lane), count(payload.idle_workers, lane), r === undefined ? '' : `${r.runner} ${r.running}/${r.concurrency} running, ${r.succeeded} ok, ${r.failed} failed, ${r.dead} dead`])
  }
  lines.push('', table(rows, (i) => i > 0 && i < 5))
  const snapshot = payload.snapshot
  if (snapshot?.enabled === true) {
    lines.push('', `snapshot: ${snapshot.file}, last saved ${snapshot.last_saved_at ?? 'not yet'}${snapshot.last_error ? `, LAST ERROR: ${snapshot.last_error}` : ''}`)
  } else lines.push('', 'snapshot: off (nothing is kept across a restart)')
  const journal = payload.journal
  if (journal?.enabled === true) lines.push(`journal: fsync ${journal.fsync}, generation ${journal.generation}${journal.error ? `, ERROR: ${journal.error}` : ''}`)
  return lines.join('\n')
}

export function formatJobs(byLane: Record<string, Job[]>, width: number): string {
  const out: string[] = []
  for (const [lane, jobs] of Object.entries(byLane)) {
    out.push(`${lane}: ${jobs.length} ready`)
    if (jobs.length === 0) continue
    const rows = jobs.map((job) => [`#${job.job_num}`, `prio ${job.priority}`, job.hash.slice(0, 12), ''])
    const head = table(rows, (i) => i < 2).split('\n')
    jobs.forEach((job, i) => out.push(`  ${head[i]!.trimEnd()}  ${oneLine(job.message, Math.max(20, width - head[i]!.length - 4))}`))
  }
  return out.join('\n')
}

/** A job's identity on one line (for stderr, beside the message on stdout). */
export function describeJob(job: Job): string {
  return `job ${job.job_num} (lane ${job.lane}, priority ${job.priority}, hash ${job.hash})`
}

export function formatJobDetail(job: JobDetail, width: number): string {
  const lines = [
    `job ${job.job_num}: ${job.state}`,
    `  lane      ${job.lane}`,
    `  priority  ${job.priority}`,
    `  hash      ${job.hash}`,
    `  scheduled ${job.timestamp}`,
    `  attempts  ${job.attempts}`,
  ]
  if (job.not_before !== undefined) lines.push(`  ready at  ${job.not_before}`)
  lines.push(`  message   ${oneLine(job.message, Math.max(20, width - 12))}`)
  const run = job.last_run
  if (run !== undefined) {
    lines.push(`  last run  ${run.state} at ${run.finished_at} after ${run.duration_ms} ms${run.reason === null ? '' : `: ${run.reason}`}`)
    if (run.output !== '') lines.push('  output:', ...run.output.trimEnd().split('\n').slice(-20).map((line) => `    ${line}`))
  }
  return lines.join('\n')
}

export function formatFailed(page: FailedPage, width: number): string {
  const lines = [`${page.lane}: ${page.total} dead job${page.total === 1 ? '' : 's'}${page.offset > 0 ? ` (from ${page.offset})` : ''}`]
  for (const job of page.jobs) {
    lines.push(`  #${job.job_num}  ${job.hash}  ${job.finished_at ?? ''}  ${oneLine(job.reason ?? '', Math.max(20, width - 70))}`)
  }
  return lines.join('\n')
}
