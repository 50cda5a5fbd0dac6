import type { us_listen_socket, us_socket } from 'uWebSockets.js'
import type { Logger } from '../log'
import { ApiError } from '../errors'
import { bearerCheck } from './auth'
import { type BodyHandler, readBody } from './body'
import type { Exchange } from './exchange'
import { OPENAPI_JSON } from './openapi'
import type { TlsFiles } from './tls'
import { type RouteHandler, uwsHandler } from './route'
import type { Routes } from './routes'
import { serveLive } from './live'
import { UI_FILES } from './ui-assets'
import { uWS } from './uws'

export interface HttpServerOptions {
  host: string
  /** When set, every route but `/` requires `Authorization: Bearer <authToken>`. */
  authToken: string
  /** 0 picks a free port; `port` on the result tells which. */
  port: number
  maxBodyBytes: number
  routes: Routes
  logger: Logger
  /** The dashboard's live updates (a WebSocket at /ui/live): the update, sent to every viewer each interval. */
  live?: { update(): string; intervalMs: number }
  /** The dashboard's files, served at /ui/ (see ui-assets.ts). */
  ui?: Map<string, Buffer>
  /** HTTPS with these files (checked beforehand: see tls.ts); plain HTTP without. */
  tls?: TlsFiles
}

export interface HttpServer {
  readonly port: number
  /** A reload: requests from now on are checked against this token ('' turns auth off). */
  setAuthToken(token: string): void
  /** A reload: bodies read from now on are limited to this. */
  setMaxBodyBytes(bytes: number): void
  /** Stops accepting connections; open ones keep being served. */
  stopAccepting(): void
  /** Closes every connection (their requests see onAborted). */
  close(): void
}

/** Which build of uWebSockets.js loaded: the package silently falls back to a slow pure-Node one. */
export const HTTP_ENGINE =
  typeof (uWS as { getParts?: unknown }).getParts === 'function' ? 'uWebSockets.js (native)' : 'uWebSockets.js (pure-Node fallback)'

const REDIRECT_TO_UI = '<!doctype html><meta http-equiv="refresh" content="0; url=/ui/"><a href="/ui/">dispenserd dashboard</a>'

/** The headers of the dashboard's files: nothing but its own scripts and styles, never framed, never sniffed. */
const UI_HEADERS = {
  'Content-Security-Policy': "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-cache',
}

/** `/ui/` is the page; `/ui/<file>` its scripts and styles; anything else 404. */
function serveUiFile(ex: Exchange, files: Map<string, Buffer>, url: string): void {
  const name = url === '/ui/' ? 'index.html' : url.slice('/ui/'.length)
  const body = files.get(name)
  if (body === undefined) ex.sendError(new ApiError('not_found', `no such endpoint: ${url}${files.size === 0 ? ' (this build has no dashboard)' : ''}`))
  else ex.sendBody(200, UI_FILES[name]!, body, UI_HEADERS)
}

/** Routes every request; the only file that creates the uWebSockets.js app. */
export function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const { routes } = options
  let maxBodyBytes = options.maxBodyBytes
  const app = options.tls === undefined ? uWS.App() : uWS.SSLApp({ cert_file_name: options.tls.cert, key_file_name: options.tls.key })

  let authorized = bearerCheck(options.authToken)
  /** Authorized requests go on to `handler`; the others are answered 401 without reading their body. */
  const authorizedOnly = (handler: RouteHandler): RouteHandler => (ex, res, req) => {
    if (authorized === undefined || authorized(req.getHeader('authorization'))) handler(ex, res, req)
    else ex.sendError(new ApiError('unauthorized', 'missing or wrong "Authorization: Bearer" token'), true)
  }
  /** Every method on `path` (the original accepts any); `/*` is the catch-all, logged by its actual URL. */
  const on = (path: string, handler: RouteHandler, requiresToken = true): void => {
    app.any(path, uwsHandler(path === '/*' ? undefined : path, options.logger, requiresToken ? authorizedOnly(handler) : handler))
  }
  const withBody = (handler: BodyHandler): RouteHandler => (ex, res) => readBody(res, ex, maxBodyBytes, handler)
  /** Fields from the query string too, read before the handler returns (uWS reuses the request object). */
  const withQuery = (handler: (ex: Exchange, query: string, body: Buffer) => void): RouteHandler => (ex, res, req) => {
    const query = req.getQuery() ?? ''
    readBody(res, ex, maxBodyBytes, (ex, body) => handler(ex, query, body))
  }

  // Status stays open to health checks.
  on('/', (ex, _res, req) => routes.status(ex, authorized === undefined || authorized(req.getHeader('authorization'))), false)
  // Health checks (systemd, Kubernetes, load balancers) stay open too.
  on('/healthz', (ex) => routes.healthz(ex), false)
  on('/readyz', (ex) => routes.readyz(ex), false)
  on('/jobs', (ex, _res, req) => routes.jobs(ex, req.getQuery() ?? ''))
  on('/move', withBody((ex, body) => routes.admin('move', ex, body)))
  on('/pause', withBody((ex, body) => routes.admin('pause', ex, body)))
  on('/resume', withBody((ex, body) => routes.admin('resume', ex, body)))
  on('/kill', withBody((ex, body) => routes.admin('kill', ex, body)))
  on('/bulk', withBody((ex, body) => routes.admin('bulk', ex, body)))
  on('/metrics', (ex, _res, req) => routes.metrics(ex, req.getHeader('accept')))
  on('/schedule', withBody((ex, body) => routes.schedule(ex, body)))
  on('/receive_block', withBody((ex, body) => routes.receiveBlock(ex, body)))
  on('/receive_noblock', withBody((ex, body) => routes.receiveNoblock(ex, body)))
  on('/ack', withBody((ex, body) => routes.ack(ex, body)))
  on('/release', withBody((ex, body) => routes.release(ex, body)))
  on('/touch', withBody((ex, body) => routes.touch(ex, body)))
  on('/retry', withBody((ex, body) => routes.retry(ex, body)))
  on('/v0/jobs/queue', withBody((ex, body) => routes.queueDispatchJob(ex, body)))
  on('/delete', withBody((ex, body) => routes.delete(ex, body)))
  on('/job', withQuery((ex, query, body) => routes.job(ex, query, body)))
  on('/failed', withQuery((ex, query, body) => routes.failed(ex, query, body)))
  on('/lanes', (ex) => routes.lanes(ex))
  // The dashboard's files hold no data (the page asks for the token): served to anyone.
  const ui = options.ui ?? new Map<string, Buffer>()
  on('/ui', (ex) => ex.sendBody(200, 'text/html; charset=utf-8', REDIRECT_TO_UI, { Refresh: '0; url=/ui/' }), false)
  on('/ui/*', (ex, _res, req) => serveUiFile(ex, ui, req.getUrl()), false)
  const live = options.live === undefined ? undefined : serveLive(app, { ...options.live, tokenCheck: () => authorized, logger: options.logger })
  on('/cron', withBody((ex, body) => routes.cron(ex, 'list', body)))
  on('/cron/add', withBody((ex, body) => routes.cron(ex, 'add', body)))
  on('/cron/pause', withBody((ex, body) => routes.cron(ex, 'pause', body)))
  on('/cron/resume', withBody((ex, body) => routes.cron(ex, 'resume', body)))
  on('/cron/delete', withBody((ex, body) => routes.cron(ex, 'delete', body)))
  // The API's description: the same for every daemon, so open like the status.
  on('/openapi.json', (ex) => ex.send(200, OPENAPI_JSON), false)
  on('/*', (ex) => routes.notFound(ex, ex.url))

  // The typings lack the (host, port, options, callback) form and the flag's runtime export; without
  // the exclusive flag a second daemon on the same port would start and silently share the traffic.
  const { LIBUS_LISTEN_EXCLUSIVE_PORT } = uWS as unknown as { LIBUS_LISTEN_EXCLUSIVE_PORT: number }
  const listen = app.listen as unknown as (
    host: string,
    port: number,
    options: number,
    cb: (token: us_listen_socket | false) => void,
  ) => void

  return new Promise((resolve, reject) => {
    listen.call(app, options.host, options.port, LIBUS_LISTEN_EXCLUSIVE_PORT, (token) => {
      if (token === false) {
        reject(new Error(`cannot listen on ${options.host}:${options.port}: the address is in use or not available`))
        return
      }
      let listening = true
      const server: HttpServer = {
        port: uWS.us_socket_local_port(token as unknown as us_socket),
        setAuthToken(authToken) {
          authorized = bearerCheck(authToken)
        },
        setMaxBodyBytes(bytes) {
          maxBodyBytes = bytes
        },
        stopAccepting() {
          if (listening) uWS.us_listen_socket_close(token)
          listening = false
        },
        close() {
          this.stopAccepting()
          live?.close()
          ;(app as unknown as { close(): void }).close()
        },
      }
      resolve(server)
    })
  })
}
