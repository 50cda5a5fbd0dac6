import { useEffect, useState } from 'preact/hooks'
import { type Job, api } from './api'
import { seconds } from './format'

/** One job: its fields, message (as text), attempts, position and ETA, last run and its output. */
export function JobPage({ hash, onError }: { hash: string; onError: (m?: string) => void }) {
  const [job, setJob] = useState<Job | undefined>()
  useEffect(() => {
    api<Job>(`/job?hash=${encodeURIComponent(hash)}`).then(setJob, (err: Error) => onError(err.message))
  }, [hash])
  if (job === undefined) return <p class="muted">Loading…</p>
  const run = job.last_run
  return (
    <section class="job">
      <h2>Job {job.job_num} <span class="tag">{job.state}</span></h2>
      <dl>
        <dt>hash</dt><dd class="mono">{job.hash}</dd>
        <dt>lane</dt><dd><a href={`#/lane/${encodeURIComponent(job.lane)}`}>{job.lane}</a></dd>
        <dt>priority</dt><dd>{job.priority}</dd>
        <dt>scheduled</dt><dd>{job.timestamp}</dd>
        <dt>attempts</dt><dd>{job.attempts ?? 0}</dd>
        {job.position === undefined ? null : <><dt>position</dt><dd>{job.position}</dd><dt>ETA</dt><dd>{seconds(job.eta_seconds)}</dd></>}
        {job.not_before === undefined ? null : <><dt>ready at</dt><dd>{job.not_before}</dd></>}
      </dl>
      <h3>Message</h3>
      <pre class="message">{job.message}</pre>
      {run === undefined ? null : (
        <>
          <h3>Last run</h3>
          <dl>
            <dt>state</dt><dd>{run.state}</dd>
            <dt>started</dt><dd>{run.started_at}</dd>
            <dt>took</dt><dd>{seconds(run.duration_ms / 1000)}</dd>
            <dt>reason</dt><dd>{run.reason ?? '—'}</dd>
            <dt>exit code</dt><dd>{run.exit_code ?? '—'}</dd>
            <dt>HTTP status</dt><dd>{run.http_status ?? '—'}</dd>
          </dl>
          <pre class="output">{run.output}</pre>
        </>
      )}
    </section>
  )
}
