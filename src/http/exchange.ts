import { STATUS_CODES } from 'node:http'
import type { HttpResponse } from 'uWebSockets.js'
import { ApiError, CODES } from '../errors'
import type { Logger } from '../log'
import { StreamedReply } from './streamed-reply'

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
 * The status lines as bytes, as replies write them: uWS takes bytes as they are, where a string
 * is measured and encoded on every call.
 */
const STATUS_LINE_BYTES = new Map<number, Buffer>([...STATUS_LINES].map(([http, line]) => [http, Buffer.from(line, 'latin1')]))

const CONTENT_TYPE = Buffer.from('Content-Type', 'latin1')
const JSON_TYPE = 'application/json'

/**
 * The status line and the Content-Type header of a JSON reply, as one piece of bytes for
 * writeStatus: uWS writes "HTTP/1.1 ", what it is given, and "\r\n", so the header goes out within
 * the same call, byte for byte as writeHeader would write it. Every call into uWS crosses from
 * JavaScript into C++ and looks up the Buffer's memory; writeStatus and writeHeader apart were
 * two such calls where one does, on every JSON reply.
 */
const JSON_HEADS = new Map<number, Buffer>([...STATUS_LINES].map(([http, line]) => [http, Buffer.from(`${line}\r\nContent-Type: ${JSON_TYPE}`, 'latin1')]))

/**
 * The reply `writeReply` writes, set just before it runs (at once, or in `res.cork`): one
 * function for every reply, where a closure per reply was an allocation per request.
 */
const reply: {
  res: HttpResponse | undefined
  resume: boolean
  /** The status line, and the Content-Type header with it when the reply is JSON (JSON_HEADS). */
  head: Buffer
  /** The Content-Type of a reply that is not JSON; undefined for JSON, whose header is in `head`. */
  contentType: string | undefined
  headers: Record<string, string> | undefined
  body: string | Uint8Array
  close: boolean
} = { res: undefined, resume: false, head: Buffer.alloc(0), contentType: undefined, headers: undefined, body: '', close: false }

/**
 * uWS corks a socket into one buffer of 16 KiB (LoopData::CORK_BUFFER_SIZE) while it runs our
 * callbacks for it; a write that does not fit sends what is there and leaves the socket uncorked
 * for the rest of that read, so a reply written as it is after that goes out in a send for each
 * piece (status line, every header, the body): a dozen for a schedule's reply. Requests pipelined
 * in one packet came to that after about fifty replies (100 in a packet: 40,000 replies a second
 * against 190,000 through res.cork, which corks again). Replies are written as they are only while
 * those written so this turn of the event loop surely fit in the buffer; which socket a request
 * came on is not known here, so every socket's count, which only makes the bound stricter.
 */
const CORK_BUFFER_BYTES = 16 * 1024
/** The status line and the headers uWS writes before a body (Date, uWebSockets, Content-Length, ours). */
const HEAD_BYTES = 256
/** Bytes written this turn without res.cork, at most (a string's characters count three: UTF-8). */
let writtenCorked = 0

function newTurn(): void {
  writtenCorked = 0
}

/** Whether a reply of `body` can still go into the buffer uWS corked the socket with; counts it if so. */
function fitsCorked(body: string | Uint8Array): boolean {
  const bytes = HEAD_BYTES + (typeof body === 'string' ? body.length * 3 : body.length)
  if (writtenCorked + bytes > CORK_BUFFER_BYTES) return false
  if (writtenCorked === 0) setImmediate(newTurn)
  writtenCorked += bytes
  return true
}

/** A streamed reply begun inside the callbacks overflows the buffer: nothing more this turn is written as it is. */
function fillCorked(): void {
  if (writtenCorked === 0) setImmediate(newTurn)
  writtenCorked = CORK_BUFFER_BYTES
}

function writeReply(): void {
  const { res, resume, head, contentType, headers, body, close } = reply
  if (resume) res!.resume()
  res!.writeStatus(head)
  if (contentType !== undefined) res!.writeHeader(CONTENT_TYPE, contentType)
  if (headers !== undefined) for (const name in headers) res!.writeHeader(name, headers[name]!)
  res!.end(body, close)
}

/**
 * One request/response pair. It keeps the rules uWS enforces by aborting the process: `onAborted`
 * is attached at once, nothing touches the response after it was aborted or answered, writes
 * made outside the handler are corked, and no exception from our code reaches uWS (`fault`).
 */
/** Request ids of faults: this process's start time in base 36, then a count. */
const REQUEST_ID_PREFIX = Date.now().toString(36)
let faults = 0

export class Exchange {
  private aborted = false
  private answered = false
  private readingHeld = false
  private abortHandler: (() => void) | undefined
  /**
   * True while uWS runs a callback of this request (its route handler, its onData), set by whoever
   * calls into our code from there: uWS corks the socket around those callbacks, so a reply made
   * then is written as it is. Anywhere else (a timer, a promise, another request's callback) a
   * reply goes through `res.cork`, which uWS requires there; from inside, it was one more call
   * into uWS and back into JavaScript for every request.
   */
  corked = false
  /** The request's Content-Length header ('' without one), read while the request could be (see framing.ts). */
  contentLength = ''
  /** True when the request has no body to read (see framing.ts). */
  bodiless = false

  /** `url` names the request in logs. */
  constructor(
    private readonly res: HttpResponse,
    readonly url: string,
    private readonly logger: Logger,
  ) {
    res.onAborted(() => {
      this.aborted = true
      try {
        this.abortHandler?.()
      } catch (err) {
        this.fault(err)
      }
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

  /**
   * Stops reading the connection until this request is answered, so that a request pipelined
   * behind it waits in the socket instead of making uWS close the connection. Only for short
   * waits: a connection not read does not notice its client leaving.
   */
  holdReading(): void {
    if (!this.open || this.readingHeld) return
    this.readingHeld = true
    this.res.pause()
  }

  /** Answers with a JSON body. Returns false when the client was already gone. */
  send(httpStatus: HttpStatus, json: string | Uint8Array, closeConnection = false, retryAfterSeconds = 0): boolean {
    const headers = retryAfterSeconds > 0 ? { 'Retry-After': String(retryAfterSeconds) } : undefined
    return this.reply(httpStatus, JSON_TYPE, json, headers, closeConnection)
  }

  /** Answers with a body of another type than JSON (metrics, the dashboard's files). */
  sendBody(httpStatus: HttpStatus, contentType: string, body: string | Uint8Array, headers?: Record<string, string>): boolean {
    return this.reply(httpStatus, contentType, body, headers, false)
  }

  private reply(httpStatus: HttpStatus, contentType: string, body: string | Uint8Array, headers: Record<string, string> | undefined, closeConnection: boolean): boolean {
    if (!this.open) return false
    this.answered = true
    this.abortHandler = undefined
    if (closeConnection && this.corked) {
      // Inside uWS's callback a reply only marks the connection to be closed once the read is
      // parsed, and a request pipelined behind this one in the same read clears the mark and is
      // run: after "Connection: close" (its client retries it), or behind differing Content-Length
      // headers (a proxy may have taken it for this one's body). Written after the read, the reply
      // closes the connection; a request behind it finds this one pending, and uWS closes the
      // connection without running it (the client then gets neither reply).
      const kept = typeof body === 'string' ? body : Buffer.from(body)
      setImmediate(() => {
        if (!this.aborted) this.write(httpStatus, contentType, kept, headers, true)
      })
      return true
    }
    return this.write(httpStatus, contentType, body, headers, closeConnection)
  }

  /** Writes a reply now; false when the socket turned out to be closed. */
  private write(httpStatus: HttpStatus, contentType: string, body: string | Uint8Array, headers: Record<string, string> | undefined, closeConnection: boolean): boolean {
    reply.res = this.res
    reply.resume = this.readingHeld
    const json = contentType === JSON_TYPE
    reply.head = (json ? JSON_HEADS : STATUS_LINE_BYTES).get(httpStatus)!
    reply.contentType = json ? undefined : contentType
    reply.headers = headers
    reply.body = body
    reply.close = closeConnection
    try {
      if (this.corked && headers === undefined && fitsCorked(body)) writeReply()
      else this.res.cork(writeReply)
      return true
    } catch {
      // The socket closed under us between the check and the write; the client got nothing.
      return false
    } finally {
      // Nothing of this reply is kept past it.
      reply.res = undefined
      reply.headers = undefined
      reply.body = ''
    }
  }

  sendError(err: ApiError, closeConnection = false): boolean {
    // The job store being unreachable is brief by nature (it reconnects by itself): say when to try again.
    return this.send(err.httpStatus, errorBody(err.code, err.message), closeConnection, err.codeName === 'store_unavailable' ? 1 : 0)
  }

  /**
   * Answers 200 with a JSON body made of `pieces`, produced one at a time as the client reads
   * them (see StreamedReply); a piece may be overwritten by the next. A body of one piece goes
   * out as `send` would send it.
   */
  stream(pieces: Iterator<Uint8Array>): void {
    if (!this.open) return
    const next = pieces.next()
    // Copied: asking whether there is a second piece may overwrite the first.
    const first = next.done ? new Uint8Array(0) : new Uint8Array(next.value)
    const second = next.done ? next : pieces.next()
    if (second.done) {
      this.send(200, first)
      return
    }
    this.answered = true
    if (this.corked) fillCorked()
    const reply = new StreamedReply(this.res, pieces, (err) => this.fault(err))
    this.abortHandler = () => reply.stop()
    this.res.cork(() => {
      this.res.writeStatus(JSON_HEADS.get(200)!)
      reply.start(first, second.value)
    })
  }

  /**
   * Where every exception from a handler or a uWS callback of this request ends: one that reached
   * uWS would end the process. It is logged with the URL and answered 500 (code 6) while the
   * client waits; a streamed reply that had begun is cut off by closing the connection.
   */
  fault(err: unknown): void {
    // A number to quote: the client's 500 and the operator's log line name the same request.
    const requestId = `${REQUEST_ID_PREFIX}-${++faults}`
    this.logger.error({ err, url: this.url, request_id: requestId }, 'request failed')
    if (this.open) {
      this.sendError(new ApiError('internal', `internal error; it is logged as request ${requestId}`))
      return
    }
    if (this.aborted) return
    this.aborted = true
    try {
      this.res.close()
    } catch {
      // Already answered in full: nothing is left to cut off.
    }
  }
}

export function errorBody(code: number, message: string): string {
  return JSON.stringify({ status: 'error', code, message })
}
