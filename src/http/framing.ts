import type { HttpRequest } from 'uWebSockets.js'

/**
 * What `collect` found in the request being read: how many Content-Length headers, the first one's
 * value, and every value once there is a second (rare: nothing is allocated for a request with one).
 * Module state rather than an array emptied per request: `length = 0` lets V8 free an array's
 * storage, so the next push allocated it again on every request.
 */
let count = 0
let first = ''
let all: string[] | undefined
/** Whether the request being read has a Transfer-Encoding header (a chunked body, which uWS reads). */
let transferEncoding = false

function collect(key: string, value: string): void {
  if (key !== 'content-length') {
    if (key === 'transfer-encoding') transferEncoding = true
    return
  }
  if (count++ === 0) first = value
  else (all ??= [first]).push(value)
}

/**
 * The request's Content-Length as uWS frames its body: the first such header's value, '' without
 * one. When its Content-Length headers differ, all their values instead: uWS frames the body by
 * the first and ignores the rest; a proxy in front may use another, and then the bytes one of
 * them takes for a body the other takes for a request (request smuggling). Equal repeats are
 * harmless (RFC 9110 lets a recipient accept them). Every header is visited: about half a
 * microsecond for a request of six headers, measured here; the body reader takes the value from
 * here rather than asking uWS again.
 */
export function contentLength(req: HttpRequest): string | string[] {
  count = 0
  first = ''
  all = undefined
  transferEncoding = false
  req.forEach(collect)
  // Set by collect, which TypeScript does not see run.
  const values = all as string[] | undefined
  all = undefined
  if (values === undefined) return first
  for (let i = 1; i < values.length; i++) if (values[i] !== first) return values
  return first
}

/**
 * Whether the request `contentLength` read last has no body: neither a Transfer-Encoding header nor
 * a Content-Length other than 0 (HTTP/1.1 frames a request body by one of them, RFC 9112 6.3, and
 * so does uWS). Its body need not be read: uWS then only calls onData, if one is attached, with an
 * empty last chunk, and a handler that answers or attaches onAborted may return without one.
 */
export function bodiless(): boolean {
  return !transferEncoding && (count === 0 || first === '0')
}
