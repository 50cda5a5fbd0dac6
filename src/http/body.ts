import type { HttpResponse } from 'uWebSockets.js'
import { ApiError } from '../errors'
import type { Exchange } from './exchange'

export type BodyHandler = (ex: Exchange, body: Buffer) => void

const NO_BODY = Buffer.alloc(0)

function tooLarge(ex: Exchange, maxBytes: number): void {
  ex.sendError(new ApiError('body_too_large', `request body exceeds max_body_bytes (${maxBytes} bytes)`), true)
}

/**
 * Reads a request body of at most `maxBytes`, then calls `handler` (inside uWS's callback, so the
 * reply is corked: `ex.corked`); a request without a body goes to `handler` at once. Must be
 * called synchronously in the route handler: uWS allows `onData` only there. A body over the limit
 * is answered 413 and the connection closed, since the rest of it is unread.
 */
export function readBody(res: HttpResponse, ex: Exchange, maxBytes: number, handler: BodyHandler): void {
  if (ex.bodiless) {
    // No body to wait for (most receives): handled now, in the route handler, where an onData
    // was a closure, a callback for uWS to keep and one more call from uWS into JavaScript (with
    // the microtasks run after it) for every such request.
    handler(ex, NO_BODY)
    return
  }
  const declared = ex.contentLength
  if (declared !== '' && Number(declared) > maxBytes) {
    tooLarge(ex, maxBytes)
    return
  }
  let chunks: Buffer[] | undefined
  let size = 0
  res.onData((chunk, isLast) => {
    // This runs from uWS, where an exception would end the process.
    ex.corked = true
    try {
      if (!ex.open) return
      size += chunk.byteLength
      if (size > maxBytes) {
        chunks = undefined
        tooLarge(ex, maxBytes)
        return
      }
      if (isLast && chunks === undefined) {
        // The common case, a body in one piece: read it in place, before uWS reuses the memory.
        // (An empty one, as a chunked body may be, needs no Buffer of its own.)
        handler(ex, chunk.byteLength === 0 ? NO_BODY : Buffer.from(chunk))
        return
      }
      // uWS empties the ArrayBuffer after this callback returns, so keep a copy.
      ;(chunks ??= []).push(Buffer.from(chunk.slice(0)))
      if (isLast) handler(ex, Buffer.concat(chunks, size))
    } catch (err) {
      ex.fault(err)
    } finally {
      ex.corked = false
    }
  })
}
