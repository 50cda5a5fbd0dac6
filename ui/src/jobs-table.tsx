import type { Job } from './api'
import { preview, seconds } from './format'

/** A table of jobs; with `selected`, a checkbox per row (and one for the whole page). Messages are shown as text. */
export function JobsTable({ jobs, selected, onSelect, actions }: { jobs: Job[]; selected?: Set<string>; onSelect?: (hashes: string[], on: boolean) => void; actions?: (job: Job) => preact.ComponentChildren }) {
  if (jobs.length === 0) return <p class="muted empty">No jobs.</p>
  const all = selected !== undefined && jobs.every((j) => selected.has(j.hash))
  return (
    <table class="jobs">
      <thead>
        <tr>
          {selected === undefined ? null : (
            <th><input type="checkbox" class="select-all" checked={all} onChange={(e) => onSelect!(jobs.map((j) => j.hash), (e.target as HTMLInputElement).checked)} /></th>
          )}
          <th>#</th><th>priority</th><th>message</th><th>attempts</th><th>position</th><th>ETA</th><th>last run</th><th />
        </tr>
      </thead>
      <tbody>
        {jobs.map((job) => (
          <tr key={job.hash} data-hash={job.hash}>
            {selected === undefined ? null : (
              <td><input type="checkbox" class="select" checked={selected.has(job.hash)} onChange={(e) => onSelect!([job.hash], (e.target as HTMLInputElement).checked)} /></td>
            )}
            <td><a href={`#/job/${job.hash}`}>{job.job_num}</a></td>
            <td class="num">{job.priority}</td>
            <td class="message">{preview(job.message)}</td>
            <td class="num">{job.attempts ?? 0}</td>
            <td class="num">{job.position ?? '—'}</td>
            <td class="num">{job.eta_seconds === undefined ? '—' : seconds(job.eta_seconds)}</td>
            <td>{job.last_run === undefined ? '—' : `${job.last_run.state}${job.last_run.reason === null ? '' : `: ${job.last_run.reason}`}`}</td>
            <td class="actions">{actions?.(job)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}
