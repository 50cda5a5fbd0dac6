import type { TemplatedApp, WebSocket } from 'uWebSockets.js'
import type { Logger } from '../log'

/** What a dashboard socket carries: whether it has shown the token yet. */
interface Viewer {
  authorized: boolean
}

/** A socket that has not shown the token within this long is closed. */
const AUTH_WAIT_MS = 5000
/** A socket whose client has this much unsent is skipped until it catches up (a slow browser is not flooded). */
const MAX_BUFFERED = 1024 * 1024

export interface LiveOptions {
  /** The update every viewer gets, once per interval (computed once for all of them). */
  update(): string
  intervalMs: number
  /** The check of an `Authorization` header (reloads change it); undefined when the daemon has no auth_token. */
  tokenCheck(): ((authorization: string) => boolean) | undefined
  logger: Logger
}

/**
 * The dashboard's live updates: a WebSocket at `/ui/live`. A browser cannot put a token in a
 * WebSocket's headers, so with auth_token set the first message must be `{"token": "…"}`: nothing
 * is sent before, and a socket that does not show it in 5 s (or shows a wrong one) is closed. Every
 * viewer then gets one update a second, whatever the load: batched by time, never per job.
 */
export function serveLive(app: TemplatedApp, options: LiveOptions): { close(): void } {
  const viewers = new Set<WebSocket<Viewer>>()
  app.ws<Viewer>('/ui/live', {
    maxPayloadLength: 4096,
    idleTimeout: 60,
    upgrade: (res, req, context) => {
      res.upgrade({ authorized: options.tokenCheck() === undefined }, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), context)
    },
    open: (ws) => {
      viewers.add(ws)
      if (ws.getUserData().authorized) ws.send(options.update())
      else {
        setTimeout(() => {
          if (viewers.has(ws) && !ws.getUserData().authorized) ws.end(4001, 'token required')
        }, AUTH_WAIT_MS).unref()
      }
    },
    message: (ws, message) => {
      const viewer = ws.getUserData()
      if (viewer.authorized) return
      let token: unknown
      try {
        token = (JSON.parse(Buffer.from(message).toString('utf8')) as { token?: unknown }).token
      } catch {
        token = undefined
      }
      const check = options.tokenCheck()
      // The check reads an Authorization header's value.
      if (check === undefined || (typeof token === 'string' && check(`Bearer ${token}`))) {
        viewer.authorized = true
        ws.send(options.update())
      } else {
        ws.end(4001, 'wrong token')
      }
    },
    close: (ws) => {
      viewers.delete(ws)
    },
  })
  const timer = setInterval(() => {
    if (viewers.size === 0) return
    let update: string | undefined
    for (const ws of viewers) {
      if (!ws.getUserData().authorized || ws.getBufferedAmount() > MAX_BUFFERED) continue
      try {
        ws.send((update ??= options.update()))
      } catch (err) {
        options.logger.warn({ err }, 'a dashboard update could not be sent')
      }
    }
  }, options.intervalMs)
  timer.unref()
  return {
    close() {
      clearInterval(timer)
      for (const ws of viewers) ws.end(1001, 'shutting down')
      viewers.clear()
    },
  }
}
