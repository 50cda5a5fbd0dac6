import { STATUS_CODES } from 'node:http'
import type { HttpResponse } from 'uWebSockets.js'
import { type ApiError, CODES } from '../errors'

/** An HTTP status that some code in the catalogue answers with. */
export type HttpStatus = (typeof CODES)[keyof typeof CODES]['http']

/**
 * The status line of every status in the catalogue, with the standard reason phrase: built from
 * CODES, so a code added there brings its status line with it.
 */
const STATUS_LINES = new Map<number, string>(Object.values(CODES).map(({ http }) => [http, `${http} ${STATUS_CODES[http]}`]))

export function statusLine(status: HttpStatus): string {
  return STATUS_LINES.get(status)!
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
  send(httpStatus: HttpStatus, json: string | Uint8Array, closeConnection = false): boolean {
    if (!this.open) return false
    this.answered = true
    this.abortHandler = undefined
    try {
      this.res.cork(() => {
        this.res.writeStatus(statusLine(httpStatus))
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
