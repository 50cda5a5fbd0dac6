import { readFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import path from 'node:path'

/**
 * A client of the Docker Engine API (Docker, and podman's Docker-compatible service) over plain
 * node:http: a unix socket, http://host:port, or https:// with a client certificate. The runner
 * needs a dozen calls; an SDK (dockerode: 56 packages, grpc and ssh2 among them) would not earn its
 * weight in the single executable.
 */

/** A version both engines serve (Docker 20.10 speaks up to 1.41; podman 4 accepts it). */
const API = '/v1.41'

/** Requests other than waits and log reads get this long (a create on a loaded machine can take seconds). */
const REQUEST_TIMEOUT_MS = 60_000

/** Socket errors that mean the engine is not there (as opposed to an answer refusing a request). */
const UNREACHABLE = new Set(['ENOENT', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EACCES', 'EAI_AGAIN', 'ENOTFOUND', 'ENOTSOCK'])

export interface EngineTls {
  ca: Buffer | undefined
  cert: Buffer
  key: Buffer
}

export interface EngineAddress {
  /** As configured, for messages. */
  readonly url: string
  readonly socketPath?: string
  readonly host?: string
  readonly port?: number
  readonly tls?: EngineTls
}

/**
 * `unix:///path.sock`, `http://host:port` or `https://host:port` (then `cert` and `key`, and
 * usually `ca`, are files); relative file paths resolve against `root`. Throws naming the key.
 */
export function parseEngineAddress(url: string, files: { ca?: unknown; cert?: unknown; key?: unknown }, root: string): EngineAddress {
  if (url.startsWith('unix://')) {
    const socketPath = url.slice('unix://'.length)
    if (!socketPath.startsWith('/')) throw new Error(`"engine": a unix socket address is unix:// and an absolute path, such as unix:///var/run/docker.sock (got ${JSON.stringify(url)})`)
    refuseFiles(files, 'a unix socket')
    return { url, socketPath }
  }
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new Error(`"engine" must be unix:///path, http://host:port or https://host:port (got ${JSON.stringify(url)})`)
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error(`"engine" must be unix:///path, http://host:port or https://host:port (got ${JSON.stringify(url)})`)
  if (parsed.pathname !== '/' || parsed.search !== '' || parsed.username !== '' || parsed.password !== '') throw new Error(`"engine" takes no path, query or user name (got ${JSON.stringify(url)})`)
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1')
  const tlsOn = parsed.protocol === 'https:'
  const port = parsed.port === '' ? (tlsOn ? 2376 : 2375) : Number(parsed.port)
  if (!tlsOn) {
    refuseFiles(files, 'plain http')
    return { url, host, port }
  }
  if (files.cert === undefined || files.key === undefined) throw new Error('an https "engine" needs "engine_cert" and "engine_key" (the client certificate and its key, PEM files; "engine_ca" for the engine\'s CA)')
  return { url, host, port, tls: { ca: files.ca === undefined ? undefined : readPem(files.ca, 'engine_ca', root), cert: readPem(files.cert, 'engine_cert', root), key: readPem(files.key, 'engine_key', root) } }
}

function refuseFiles(files: { ca?: unknown; cert?: unknown; key?: unknown }, kind: string): void {
  for (const [key, value] of Object.entries(files)) {
    if (value !== undefined) throw new Error(`"engine_${key}" is for an https engine; this one is ${kind}`)
  }
}

function readPem(value: unknown, key: string, root: string): Buffer {
  if (typeof value !== 'string' || value === '') throw new Error(`"${key}" must be the path of a PEM file`)
  const file = path.resolve(root, value)
  try {
    return readFileSync(file)
  } catch (err) {
    throw new Error(`"${key}": cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
}

/** A failed call: `status` is the engine's answer, or undefined when the engine could not be reached. */
export class EngineError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
  ) {
    super(message)
  }

  get unreachable(): boolean {
    return this.status === undefined
  }
}

/** A call ended by its caller's signal (a timeout or a shutdown), not by the engine. */
export class CallAborted extends Error {}

export interface Answer {
  status: number
  body: Buffer
}

export interface CallOptions {
  body?: unknown
  /** Ends the call (the request is destroyed) when aborted. */
  signal?: AbortSignal
  /** Milliseconds; 0 for none (waits). Default 60 s. */
  timeoutMs?: number
  /** Chunks of the answer's body as they come, instead of collecting it. */
  onData?: (chunk: Buffer) => void
}

export class Engine {
  private readonly agent: http.Agent

  constructor(readonly address: EngineAddress) {
    const { tls } = address
    this.agent = tls === undefined ? new http.Agent({ keepAlive: true }) : new https.Agent({ keepAlive: true, ca: tls.ca, cert: tls.cert, key: tls.key })
  }

  /** One call; resolves to any answer the engine gives, rejects with EngineError when there is none. */
  call(method: string, apiPath: string, options: CallOptions = {}): Promise<Answer> {
    const { address } = this
    const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body))
    const request = (address.tls === undefined ? http : https).request({
      agent: this.agent,
      method,
      path: API + apiPath,
      ...(address.socketPath !== undefined ? { socketPath: address.socketPath } : { host: address.host, port: address.port }),
      // Over a socket any Host will do; over TCP Node's own (host:port) is right, and TLS checks the name.
      headers: { ...(address.socketPath === undefined ? {} : { Host: 'engine' }), ...(payload === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': payload.length }) },
    })
    return new Promise<Answer>((resolve, reject) => {
      const { signal, onData } = options
      const timeoutMs = options.timeoutMs ?? REQUEST_TIMEOUT_MS
      const fail = (err: Error): void => {
        const code = (err as NodeJS.ErrnoException).code
        if (err instanceof EngineError || err instanceof CallAborted) reject(err)
        else if (code !== undefined && UNREACHABLE.has(code)) reject(new EngineError(`cannot reach the engine at ${address.url}: ${code}`, undefined))
        else reject(new EngineError(`the engine at ${address.url} failed: ${err.message}`, undefined))
      }
      const onAbort = (): void => {
        request.destroy(new CallAborted(`${method} ${apiPath.split('?')[0]}: ${String(signal?.reason ?? 'aborted')}`))
      }
      if (signal?.aborted) return onAbort()
      signal?.addEventListener('abort', onAbort, { once: true })
      const timer = timeoutMs > 0 ? setTimeout(() => request.destroy(Object.assign(new Error('no answer'), { code: 'ETIMEDOUT' })), timeoutMs) : undefined
      const done = (): void => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
      }
      request.once('error', (err) => {
        done()
        fail(err)
      })
      request.once('response', (response) => {
        const chunks: Buffer[] = []
        response.on('data', (chunk: Buffer) => (onData !== undefined && response.statusCode! < 300 ? onData(chunk) : chunks.push(chunk)))
        response.once('error', (err) => {
          done()
          fail(err)
        })
        response.once('end', () => {
          done()
          resolve({ status: response.statusCode!, body: Buffer.concat(chunks) })
        })
      })
      request.end(payload)
    })
  }

  /** A call that must answer one of `expected`; other answers reject with the engine's message. */
  async expect(method: string, apiPath: string, expected: number[], options: CallOptions = {}): Promise<Answer> {
    const answer = await this.call(method, apiPath, options)
    if (!expected.includes(answer.status)) throw new EngineError(`${method} ${apiPath.split('?')[0]} answered ${answer.status}: ${engineMessage(answer.body)}`, answer.status)
    return answer
  }

  /** `expect`, with the answer's body parsed as JSON. */
  async json<T>(method: string, apiPath: string, expected: number[], options: CallOptions = {}): Promise<T> {
    const answer = await this.expect(method, apiPath, expected, options)
    return JSON.parse(answer.body.toString('utf8')) as T
  }

  close(): void {
    this.agent.destroy()
  }
}

/** The `message` of an engine's error answer, or its text. */
export function engineMessage(body: Buffer): string {
  const text = body.toString('utf8').trim()
  try {
    const parsed = JSON.parse(text) as { message?: unknown }
    if (typeof parsed.message === 'string') return parsed.message
  } catch {
    // not JSON
  }
  return text.slice(0, 500) || '(no message)'
}
