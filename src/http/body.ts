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
 * reply is corked: `ex.corked`). Must be called synchronously in the route handler: uWS allows
 * `onData` only there. A body over the limit is answered 413 and the connection closed, since the
 * rest of it is unread.
 */
export function readBody(res: HttpResponse, ex: Exchange, maxBytes: number, handler: BodyHandler): void {
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
        // (No body at all, as receives mostly come, needs no Buffer of its own.)
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
