import type { HttpResponse } from 'uWebSockets.js'
import type { ApiError } from '../errors'

const STATUS_TEXT: Record<number, string> = {
  200: '200 OK',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  404: '404 Not Found',
  413: '413 Payload Too Large',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
}

/**
 * One request/response pair. It keeps the rules uWS enforces by aborting the process: `onAborted`
 * is attached at once, nothing touches the response after it was aborted or answered, and writes
 * made outside the handler are corked.
 */
export class Exchange {
  private aborted = false
  private answered = false
  private abortHandler: (() => void) | undefined

  constructor(private readonly res: HttpResponse) {
    res.onAborted(() => {
      this.aborted = true
      this.abortHandler?.()
    })
  }

  /** True while the client is connected and has not been answered. */
  get open(): boolean {
    return !this.aborted && !this.answered
  }

  /** Runs `handler` if the client goes away before it is answered (replaces any earlier one). */
  onAbort(handler: (() => void) | undefined): void {
    this.abortHandler = handler
  }

  /** Answers with a JSON body. Returns false when the client was already gone. */
  send(httpStatus: number, json: string | Uint8Array, closeConnection = false): boolean {
    if (!this.open) return false
    this.answered = true
    this.abortHandler = undefined
    try {
      this.res.cork(() => {
        this.res.writeStatus(STATUS_TEXT[httpStatus] ?? `${httpStatus} Unknown`)
        this.res.writeHeader('Content-Type', 'application/json')
        this.res.end(json, closeConnection)
      })
      return true
    } catch {
      // The socket closed under us between the check and the write; the client got nothing.
      return false
    }
  }

  sendError(err: ApiError, closeConnection = false): boolean {
    return this.send(err.httpStatus, errorBody(err.code, err.message), closeConnection)
  }
}

export function errorBody(code: number, message: string): string {
  return JSON.stringify({ status: 'error', code, message })
}
