/**
 * Where a job may send the daemon: the http runner's targets and the git repositories of Dispatch
 * Jobs, each compared against the operator's allowed prefixes. Compared as parsed addresses, never
 * as text: `https://git.example/team/../evil` is outside `https://git.example/team/` (git's curl
 * would fetch `/evil`), and a prefix `https://git.example` must not admit
 * `https://git.example.evil.net` or `https://git.example@evil.net`.
 *
 * An address is under a prefix when scheme, user, host and port are the same (host in lower case,
 * default ports dropped) and the prefix's path segments begin the address's. Paths are compared
 * as written (with percent escapes in one case), which never admits more than a server that
 * decodes them would see.
 */

export interface Location {
  scheme: 'http' | 'https' | 'ssh' | 'git' | 'file'
  /** An ssh user, or ''. */
  user: string
  /** Lower case; '' for local paths. */
  host: string
  /** '' for the scheme's default. */
  port: string
  /**
   * The path's segments, empty ones dropped. A path relative to the ssh user's home (scp-like
   * `host:team/x`, or `~/team/x`) starts with '~'; `~alice/x` with '~alice', as git passes them on.
   */
  segments: string[]
}

const DEFAULT_PORTS: Record<Location['scheme'], string> = { http: '80', https: '443', ssh: '22', git: '9418', file: '' }

/** Whether `location` is `prefix` or lies below it. */
export function isUnder(location: Location, prefix: Location): boolean {
  return (
    location.scheme === prefix.scheme &&
    location.user === prefix.user &&
    location.host === prefix.host &&
    location.port === prefix.port &&
    prefix.segments.length <= location.segments.length &&
    prefix.segments.every((segment, i) => location.segments[i] === segment)
  )
}

/** An http(s) URL as the WHATWG parser (and fetch) read it: dot segments already resolved. */
export function httpLocation(url: URL): Location {
  return { scheme: url.protocol === 'https:' ? 'https' : 'http', user: '', host: url.hostname, port: url.port, segments: splitPath(url.pathname) }
}

/**
 * A repository address in any form git fetches from, and this daemon allows: `https://`, `http://`,
 * `ssh://`, `git://`, `file://`, scp-like `[user@]host:path` and absolute paths. Anything else (a
 * relative path, another transport such as `ext::`, a query) does not parse: the reason is
 * returned. `.` and `..` segments are refused rather than resolved: over ssh or on disk they are
 * resolved by the file system, through symbolic links, not by the text.
 */
export function parseRepoLocation(text: string): Location | string {
  if (text === '' || text.startsWith('-')) return 'is empty or starts with "-"'
  if (/[\s\x00-\x1f\x7f\\]/.test(text)) return 'holds white space, a control character or a backslash'
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(text)?.[1]?.toLowerCase()
  if (scheme !== undefined) return urlLocation(text, scheme)
  if (text.startsWith('/')) return withSegments({ scheme: 'file', user: '', host: '', port: '' }, text)
  // scp-like: no slash before the colon (git's own rule), and not `transport::address`.
  const scp = /^(?:([A-Za-z0-9._-]+)@)?([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(?!:)(.*)$/.exec(text)
  if (scp === null) return 'is not a URL (https://, ssh://, git://, file://), a user@host:path address or an absolute path'
  const [, user = '', host = '', path = ''] = scp
  return withSegments({ scheme: 'ssh', user, host: host.toLowerCase(), port: '' }, path.startsWith('/') || path.startsWith('~') ? path : `~/${path}`)
}

function urlLocation(text: string, scheme: string): Location | string {
  if (scheme !== 'http' && scheme !== 'https' && scheme !== 'ssh' && scheme !== 'git' && scheme !== 'file') return `uses ${scheme}://, not https://, http://, ssh://, git:// or file://`
  // The host is what follows '://' up to the path. (The WHATWG parser would take `https:///x` as host x.)
  const [authority = '', path = ''] = /^[^:]+:\/\/([^/]*)(.*)$/.exec(text)!.slice(1)
  if (scheme !== 'file' && authority === '') return 'names no host'
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return 'is not a valid URL'
  }
  if (url.password !== '') return 'carries a password'
  if (url.username !== '' && scheme !== 'ssh') return 'carries a user name (only ssh:// addresses may name a user)'
  if (url.search !== '' || url.hash !== '') return 'has a query or fragment'
  if (scheme === 'file' && url.hostname !== '') return 'names a host in a file:// URL'
  if (scheme !== 'file' && url.hostname === '') return 'names no host'
  const port = url.port === DEFAULT_PORTS[scheme] ? '' : url.port
  // The path as written: the WHATWG parser resolves dot segments, which must be seen to be refused.
  return withSegments({ scheme, user: url.username, host: url.hostname.toLowerCase(), port }, scheme === 'ssh' || scheme === 'git' ? path.replace(/^\/(?=~)/, '') : path)
}

function withSegments(where: Omit<Location, 'segments'>, path: string): Location | string {
  const segments = splitPath(path)
  if (segments.some(isDotSegment)) return 'has a "." or ".." path segment'
  return { ...where, segments }
}

function splitPath(path: string): string[] {
  return path
    .split('/')
    .filter((segment) => segment !== '')
    .map((segment) => segment.replace(/%[0-9a-f]{2}/gi, (escape) => escape.toUpperCase()))
}

function isDotSegment(segment: string): boolean {
  const decoded = segment.replace(/%2E/g, '.')
  return decoded === '.' || decoded === '..'
}
