import { useEffect, useState } from 'preact/hooks'
import { type Page, api, query } from './api'
import { count } from './format'
import { JobsTable } from './jobs-table'

const STATES = ['ready', 'leased', 'delayed', 'running', 'dead', 'succeeded'] as const
const SORTS = [['order', 'serving order'], ['oldest', 'oldest first'], ['newest', 'newest first']] as const
const PAGE = 50

/** One lane's jobs: filtered by state and search, sorted, paged by cursor; select many and act on them. */
export function LanePage({ lane, onError, onNotice }: { lane: string; onError: (message?: string) => void; onNotice: (message: string) => void }) {
  const [state, setState] = useState<string>('ready')
  const [q, setQ] = useState('')
  const [sort, setSort] = useState('order')
  const [cursors, setCursors] = useState<string[]>([])
  const [page, setPage] = useState<Page | undefined>()
  const [selected, setSelected] = useState<Set<string>>(new Set())
  const [target, setTarget] = useState('')
  const [priority, setPriority] = useState('')
  const [reload, setReload] = useState(0)

  const cursor = cursors[cursors.length - 1]
  useEffect(() => {
    api<Page>(`/jobs?${query({ lane, state, q, sort, limit: PAGE, cursor })}`).then(setPage, (err: Error) => onError(err.message))
  }, [lane, state, q, sort, cursor, reload])

  const restart = (): void => {
    setCursors([])
    setSelected(new Set())
  }
  const select = (hashes: string[], on: boolean): void => {
    const next = new Set(selected)
    for (const hash of hashes) on ? next.add(hash) : next.delete(hash)
    setSelected(next)
  }
  /** A bulk action on the selected jobs, or on every job the filter matches. */
  const act = (action: string, whole: boolean): void => {
    const extra: Record<string, unknown> = {}
    if (action === 'relocate') extra.lane = target
    if (priority !== '') extra.priority = Number(priority)
    const which = whole ? { filter: { lane, state, q: q === '' ? undefined : q } } : { hashes: [...selected] }
    api<{ matched: number; done: number; failed: number }>('/bulk', { action, ...which, ...extra }).then(
      (r) => {
        onNotice(`${action}: ${r.done} of ${r.matched} done${r.failed > 0 ? `, ${r.failed} failed` : ''}`)
        setSelected(new Set())
        setReload(reload + 1)
      },
      (err: Error) => onError(err.message),
    )
  }
  const none = selected.size === 0
  return (
    <section>
      <h2>Lane <span class="lane-name">{lane}</span></h2>
      <div class="filters">
        <label>state <select class="state" value={state} onChange={(e) => { setState((e.target as HTMLSelectElement).value); restart() }}>{STATES.map((s) => <option value={s}>{s}</option>)}</select></label>
        <label>search <input class="search" type="search" value={q} placeholder="text in the message" onChange={(e) => { setQ((e.target as HTMLInputElement).value); restart() }} /></label>
        <label>sort <select class="sort" value={sort} onChange={(e) => { setSort((e.target as HTMLSelectElement).value); restart() }}>{SORTS.map(([v, label]) => <option value={v}>{label}</option>)}</select></label>
      </div>
      <div class="bulk">
        <span>{selected.size} selected</span>
        <button class="delete" disabled={none} onClick={() => act('delete', false)}>Delete</button>
        <button class="retry" disabled={none} onClick={() => act('retry', false)}>Retry</button>
        <input class="target" placeholder="lane" value={target} onInput={(e) => setTarget((e.target as HTMLInputElement).value)} />
        <button class="relocate" disabled={none || target === ''} onClick={() => act('relocate', false)}>Move</button>
        <input class="priority" placeholder="priority" inputMode="numeric" value={priority} onInput={(e) => setPriority((e.target as HTMLInputElement).value)} />
        <button class="reprioritize" disabled={none || priority === ''} onClick={() => act('reprioritize', false)}>Set priority</button>
        <span class="sep">all {page === undefined ? '' : count(q === '' ? page.total : page.jobs.length)} matching:</span>
        <button class="delete-all" onClick={() => act('delete', true)}>Delete all</button>
        <button class="retry-all" disabled={state !== 'dead'} onClick={() => act('retry', true)}>Retry all</button>
      </div>
      {page === undefined ? <p class="muted">Loading…</p> : (
        <>
          <p class="muted">{count(page.total)} {state} in this lane{q === '' ? '' : `; showing those containing “${q}”`}</p>
          <JobsTable jobs={page.jobs} selected={selected} onSelect={select} />
          <div class="pager">
            <button class="prev" disabled={cursors.length === 0} onClick={() => setCursors(cursors.slice(0, -1))}>Previous</button>
            <button class="next" disabled={page.next_cursor === null} onClick={() => setCursors([...cursors, page.next_cursor!])}>Next</button>
          </div>
        </>
      )}
    </section>
  )
}
