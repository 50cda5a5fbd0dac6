import type { HttpRequest, HttpResponse } from 'uWebSockets.js'
import { ApiError } from '../errors'
import type { Exchange } from './exchange'

/**
 * Reads a request body of at most `maxBytes`, then calls `onBody` (inside uWS's callback, so the
 * reply is corked). Must be called synchronously in the route handler: uWS allows `onData` only there.
 * A body over the limit is answered 413 and the connection closed, since the rest of it is unread.
 */
export function readBody(
  res: HttpResponse,
  req: HttpRequest,
  exchange: Exchange,
  maxBytes: number,
  onBody: (body: Buffer) => void,
): void {
  const tooLarge = (): void => {
    exchange.sendError(new ApiError('body_too_large', `request body exceeds max_body_bytes (${maxBytes} bytes)`), true)
  }
  const declared = req.getHeader('content-length')
  if (declared !== '' && Number(declared) > maxBytes) {
    tooLarge()
    return
  }
  let chunks: Buffer[] | undefined
  let size = 0
  res.onData((chunk, isLast) => {
    if (!exchange.open) return
    size += chunk.byteLength
    if (size > maxBytes) {
      chunks = undefined
      tooLarge()
      return
    }
    if (isLast && chunks === undefined) {
      // The common case, a body in one piece: read it in place, before uWS reuses the memory.
      onBody(Buffer.from(chunk))
      return
    }
    // uWS empties the ArrayBuffer after this callback returns, so keep a copy.
    ;(chunks ??= []).push(Buffer.from(chunk.slice(0)))
    if (isLast) onBody(Buffer.concat(chunks, size))
  })
}
