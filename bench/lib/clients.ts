import { type Socket, connect } from 'node:net'

/**
 * Minimal request/response clients over one TCP connection each, for the servers benchmarked here:
 * HTTP/1.1 (dispenserd and the ceiling), Redis (RESP) and beanstalkd. One request in flight per
 * connection, as a worker would; the same harness drives every server a workload compares.
 */

/** Returns the length of the first complete response in `buf`, or -1 if it is not all there. */
type Framer = (buf: Buffer) => number

export class Connection {
  private pending: Buffer = Buffer.alloc(0)
  private waiting: ((response: Buffer) => void) | undefined
  private failed: ((err: Error) => void) | undefined

  private constructor(
    private readonly socket: Socket,
    private readonly frame: Framer,
  ) {
    socket.setNoDelay(true)
    socket.on('data', (chunk) => {
      this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk])
      const length = this.frame(this.pending)
      if (length < 0) return
      const response = this.pending.subarray(0, length)
      this.pending = this.pending.subarray(length)
      const resolve = this.waiting
      this.waiting = undefined
      this.failed = undefined
      resolve?.(response)
    })
    socket.on('error', (err) => this.fail(err))
    socket.on('close', () => this.fail(new Error('connection closed')))
  }

  private fail(err: Error): void {
    const reject = this.failed
    this.waiting = undefined
    this.failed = undefined
    reject?.(err)
  }

  static open(port: number, frame: Framer): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1')
      socket.once('connect', () => resolve(new Connection(socket, frame)))
      socket.once('error', reject)
    })
  }

  request(data: string | Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.waiting = resolve
      this.failed = reject
      this.socket.write(data)
    })
  }

  /** Closes the connection; a request still waiting fails. */
  close(): void {
    this.socket.destroy()
  }
}

const HEADER_END = Buffer.from('\r\n\r\n')
const CONTENT_LENGTH = Buffer.from('\r\nContent-Length: ')

/**
 * The framer a real HTTP client would have: native byte searches and the length's digits read as
 * bytes (it made a string of the head and ran a regular expression over it, a cost per response
 * that beanstalkd's one-line replies did not pay). A head that spells the header otherwise goes
 * the slow way.
 */
export const httpFrame: Framer = (buf) => {
  const headerEnd = buf.indexOf(HEADER_END)
  if (headerEnd < 0) return -1
  let bodyLength = 0
  const at = buf.indexOf(CONTENT_LENGTH)
  if (at >= 0 && at < headerEnd) {
    for (let i = at + CONTENT_LENGTH.length; buf[i]! >= 0x30 && buf[i]! <= 0x39; i++) bodyLength = bodyLength * 10 + buf[i]! - 0x30
  } else {
    const match = /content-length: *(\d+)/i.exec(buf.toString('latin1', 0, headerEnd))
    bodyLength = match ? Number(match[1]) : 0
  }
  const total = headerEnd + 4 + bodyLength
  return buf.length >= total ? total : -1
}

/** One RESP value starting at `at`: returns where it ends, or -1. */
function respEnd(buf: Buffer, at: number): number {
  const lineEnd = buf.indexOf('\r\n', at)
  if (lineEnd < 0) return -1
  const type = buf[at]
  const n = Number(buf.toString('latin1', at + 1, lineEnd))
  if (type === 0x24 /* $ */) return n < 0 ? lineEnd + 2 : buf.length >= lineEnd + 2 + n + 2 ? lineEnd + 2 + n + 2 : -1
  if (type === 0x2a /* * */) {
    let next = lineEnd + 2
    for (let i = 0; i < n && next >= 0; i++) next = respEnd(buf, next)
    return n < 0 ? lineEnd + 2 : next
  }
  return lineEnd + 2
}
export const respFrame: Framer = (buf) => (buf.length === 0 ? -1 : respEnd(buf, 0))

export const beanstalkFrame: Framer = (buf) => {
  const lineEnd = buf.indexOf('\r\n')
  if (lineEnd < 0) return -1
  const reserved = /^RESERVED \d+ (\d+)/.exec(buf.toString('latin1', 0, lineEnd))
  if (!reserved) return lineEnd + 2
  const total = lineEnd + 2 + Number(reserved[1]) + 2
  return buf.length >= total ? total : -1
}

export function httpRequest(path: string, body = ''): Buffer {
  return Buffer.from(`POST ${path} HTTP/1.1\r\nHost: bench\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
}

export function respCommand(...args: string[]): Buffer {
  return Buffer.from(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`)
}

export function openMany(count: number, port: number, frame: Framer): Promise<Connection[]> {
  return Promise.all(Array.from({ length: count }, () => Connection.open(port, frame)))
}

/**
 * Each connection sends `next(connectionIndex)` and waits for the answer, over and over, until
 * `durationMs` has passed (or `next` returns undefined). Returns completed requests per second.
 */
export async function closedLoop(
  connections: Connection[],
  durationMs: number,
  next: (index: number, response?: Buffer) => Buffer | undefined,
): Promise<{ perSecond: number; completed: number }> {
  const started = performance.now()
  const deadline = started + durationMs
  let completed = 0
  await Promise.all(
    connections.map(async (conn, index) => {
      let response: Buffer | undefined
      for (let request = next(index); request !== undefined && performance.now() < deadline; request = next(index, response)) {
        response = await conn.request(request)
        completed++
      }
    }),
  )
  const seconds = (performance.now() - started) / 1000
  return { perSecond: completed / seconds, completed }
}

export const MESSAGE_64 = 'm'.repeat(64)
