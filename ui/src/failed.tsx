import { useEffect, useState } from 'preact/hooks'
import { type Lane, type Page, api, query } from './api'
import { count } from './format'
import { JobsTable } from './jobs-table'

/** Dead (or running) jobs of every lane that has some, grouped by lane, each with its actions. */
function ByLane({ lanes, state, actions, onError, reload }: { lanes: Lane[]; state: 'dead' | 'running'; actions: (lane: string, hash?: string) => preact.ComponentChildren; onError: (m?: string) => void; reload: number }) {
  const [pages, setPages] = useState<Record<string, Page>>({})
  const names = lanes.map((l) => l.lane).join('\n')
  useEffect(() => {
    Promise.all(lanes.map(async (l) => [l.lane, await api<Page>(`/jobs?${query({ lane: l.lane, state, limit: 50, sort: 'newest' })}`)] as const)).then(
      (all) => setPages(Object.fromEntries(all)),
      (err: Error) => onError(err.message),
    )
  }, [names, reload])
  if (lanes.length === 0) return <p class="muted empty">No lane has {state} jobs.</p>
  return (
    <>
      {lanes.map((l) => (
        <div class="group" data-lane={l.lane} key={l.lane}>
          <h3>{l.lane} <span class="muted">({count(state === 'dead' ? l.dead : l.running)})</span> {actions(l.lane)}</h3>
          <JobsTable jobs={pages[l.lane]?.jobs ?? []} actions={(job) => actions(l.lane, job.hash)} />
        </div>
      ))}
    </>
  )
}

export function FailedPage({ lanes, onError, onNotice }: { lanes: Lane[]; onError: (m?: string) => void; onNotice: (m: string) => void }) {
  const [reload, setReload] = useState(0)
  const run = (body: unknown): void => {
    api<{ done: number; matched: number }>('/bulk', body).then(
      (r) => {
        onNotice(`${r.done} of ${r.matched} done`)
        setReload(reload + 1)
      },
      (err: Error) => onError(err.message),
    )
  }
  const actions = (lane: string, hash?: string) =>
    hash === undefined ? (
      <>
        <button class="retry-all" onClick={() => run({ action: 'retry', filter: { lane, state: 'dead' } })}>Retry all</button>
        <button class="delete-all" onClick={() => run({ action: 'delete', filter: { lane, state: 'dead' } })}>Delete all</button>
      </>
    ) : (
      <>
        <button class="retry" onClick={() => run({ action: 'retry', hashes: [hash] })}>Retry</button>
        <button class="delete" onClick={() => run({ action: 'delete', hashes: [hash] })}>Delete</button>
      </>
    )
  return (
    <section>
      <h2>Failed jobs</h2>
      <ByLane lanes={lanes.filter((l) => l.dead > 0)} state="dead" actions={actions} onError={onError} reload={reload} />
    </section>
  )
}

export function RunningPage({ lanes, onError, onNotice }: { lanes: Lane[]; onError: (m?: string) => void; onNotice: (m: string) => void }) {
  const [reload, setReload] = useState(0)
  const kill = (hash: string): void => {
    api('/kill', { hash }).then(
      () => {
        onNotice('killed')
        setReload(reload + 1)
      },
      (err: Error) => onError(err.message),
    )
  }
  const actions = (_lane: string, hash?: string) => (hash === undefined ? null : <button class="kill" onClick={() => kill(hash)}>Kill</button>)
  return (
    <section>
      <h2>Running jobs</h2>
      <ByLane lanes={lanes.filter((l) => l.running > 0)} state="running" actions={actions} onError={onError} reload={reload} />
    </section>
  )
}
