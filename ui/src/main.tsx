import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { type Overview, api, setToken } from './api'
import { DaemonPage } from './daemon'
import { FailedPage, RunningPage } from './failed'
import { JobPage } from './job'
import { LanePage } from './lane'
import { connectLive } from './live'
import { EMPTY_HISTORY, type History, OverviewPage, extend } from './overview'

/** The page the location's hash names: #/, #/lane/NAME, #/failed, #/running, #/job/HASH, #/daemon. */
function route(): string[] {
  return location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent)
}

function useRoute(): string[] {
  const [current, setCurrent] = useState(route())
  useEffect(() => {
    const onChange = (): void => setCurrent(route())
    addEventListener('hashchange', onChange)
    return () => removeEventListener('hashchange', onChange)
  }, [])
  return current
}

/** Asked once when the daemon wants a token; kept for this tab. */
function TokenForm({ onSet }: { onSet: () => void }) {
  const [value, setValue] = useState('')
  return (
    <form class="token" onSubmit={(e) => { e.preventDefault(); setToken(value); onSet() }}>
      <p>This daemon requires its <code>auth_token</code>.</p>
      <input type="password" name="token" autoComplete="off" value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} />
      <button type="submit">Sign in</button>
    </form>
  )
}

function App() {
  const [page, arg] = useRoute()
  const [authorized, setAuthorized] = useState<boolean | undefined>()
  const [overview, setOverview] = useState<Overview | undefined>()
  const [history, setHistory] = useState<History>(EMPTY_HISTORY)
  const [live, setLive] = useState(true)
  const [connection, setConnection] = useState('connecting')
  const [error, setError] = useState<string | undefined>()
  const [notice, setNotice] = useState<string | undefined>()
  const [signIns, setSignIns] = useState(0)

  // Is the token (none, or the one kept) accepted? GET / is open to all, and shows the lanes only
  // to requests with the token: asking it tells without a 401 (which a browser logs as an error).
  useEffect(() => {
    api<{ payload: { details?: string } }>('/').then(
      (status) => {
        if (status.payload.details !== undefined) {
          setAuthorized(false)
          if (signIns > 0) setError('that token is not the daemon\'s auth_token')
          return
        }
        setAuthorized(true)
        setError(undefined)
        api<Overview>('/lanes').then(setOverview, (err: Error) => setError(err.message))
      },
      (err: Error) => setError(err.message),
    )
  }, [signIns])

  // Live updates while the toggle is on: one a second, whatever the load.
  useEffect(() => {
    if (authorized !== true || !live) return
    let last: Overview | undefined
    return connectLive(
      (next) => {
        setHistory((h) => extend(h, last, next))
        last = next
        setOverview(next)
      },
      setConnection,
    )
  }, [authorized, live])

  const onError = (message?: string): void => {
    setError(message)
    if (message !== undefined) setNotice(undefined)
  }
  const onNotice = (message: string): void => {
    setNotice(message)
    setError(undefined)
  }
  if (authorized === false) {
    return (
      <>
        {error === undefined ? null : <p class="error" role="alert">{error}</p>}
        <TokenForm onSet={() => { setAuthorized(undefined); setSignIns(signIns + 1) }} />
      </>
    )
  }
  const lanes = overview?.lanes ?? []
  const tab = (href: string, label: string, name: string) => <a href={href} class={page === name || (name === '' && page === undefined) ? 'active' : ''}>{label}</a>
  return (
    <>
      <header>
        <h1>dispenserd</h1>
        <nav>
          {tab('#/', 'Overview', '')}
          {tab('#/failed', `Failed (${lanes.reduce((n, l) => n + l.dead, 0)})`, 'failed')}
          {tab('#/running', `Running (${lanes.reduce((n, l) => n + l.running, 0)})`, 'running')}
          {tab('#/daemon', 'Daemon', 'daemon')}
        </nav>
        <label class="live">
          <input type="checkbox" class="live-toggle" checked={live} onChange={(e) => setLive((e.target as HTMLInputElement).checked)} /> live
          <span class={`dot ${live ? connection : 'off'}`} title={live ? connection : 'paused'} />
        </label>
      </header>
      {error === undefined ? null : <p class="error" role="alert">{error}</p>}
      {notice === undefined ? null : <p class="notice" role="status">{notice}</p>}
      <main>
        {page === 'lane' && arg !== undefined ? <LanePage lane={arg} onError={onError} onNotice={onNotice} />
          : page === 'failed' ? <FailedPage lanes={lanes} onError={onError} onNotice={onNotice} />
          : page === 'running' ? <RunningPage lanes={lanes} onError={onError} onNotice={onNotice} />
          : page === 'job' && arg !== undefined ? <JobPage hash={arg} onError={onError} />
          : page === 'daemon' ? <DaemonPage onError={onError} />
          : <OverviewPage overview={overview} history={history} onError={onError} />}
      </main>
    </>
  )
}

render(<App />, document.getElementById('app')!)
