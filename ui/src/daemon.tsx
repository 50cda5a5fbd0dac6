import { useEffect, useState } from 'preact/hooks'
import { api } from './api'

interface Status {
  name: string
  version: string
  payload: Record<string, unknown>
}

/** A block of the status as a definition list (nested objects as JSON text). */
function Block({ title, value }: { title: string; value: unknown }) {
  if (value === undefined || value === null || typeof value !== 'object') return null
  return (
    <div class="block" data-block={title}>
      <h3>{title}</h3>
      <dl>
        {Object.entries(value as Record<string, unknown>).map(([key, v]) => (
          <>
            <dt>{key}</dt>
            <dd class="mono">{typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)}</dd>
          </>
        ))}
      </dl>
    </div>
  )
}

/** The daemon: version, server, snapshot, journal, background tasks, runner lanes. */
export function DaemonPage({ onError }: { onError: (m?: string) => void }) {
  const [status, setStatus] = useState<Status | undefined>()
  useEffect(() => {
    const load = (): void => {
      api<Status>('/').then(setStatus, (err: Error) => onError(err.message))
    }
    load()
    const timer = setInterval(load, 5000)
    return () => clearInterval(timer)
  }, [])
  if (status === undefined) return <p class="muted">Loading…</p>
  const p = status.payload
  return (
    <section>
      <h2>{status.name} {status.version}</h2>
      <div class="blocks">
        <Block title="server" value={p.server} />
        <Block title="snapshot" value={p.snapshot} />
        <Block title="journal" value={p.journal} />
        <Block title="tasks" value={p.tasks} />
        <Block title="runners" value={p.runners} />
        <Block title="system" value={p.system} />
      </div>
    </section>
  )
}
