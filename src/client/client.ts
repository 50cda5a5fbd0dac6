import http from 'node:http'
import https from 'node:https'
import tls from 'node:tls'
import type { FailedPage, Job, JobDetail, JobRef, LanePaused, LeasedJob, NewJob, Scheduled, ScheduledBatch, Status } from './types'

/**
 * A typed client of dispenserd's HTTP API, for Node 20 and later (node:http and node:https, HTTPS with
 * an extra certificate authority for a daemon with a self-signed certificate).
 * The command-line client is built on it, and so can any program:
 *
 *   import { DispenserdClient } from 'dispenserd/client'
 *   const client = new DispenserdClient({ url: 'http://127.0.0.1:8282' })
 *   await client.schedule({ message: 'resize 1.png' })
 *   const job = await client.receive({ lease: 30, block: true })
 *
 * Replies with an error become a DispenserdError carrying the reply's `code`; a daemon that cannot
 * be reached (refused, reset, not HTTP) a ConnectionError, which a consumer loop retries.
 * `close()` lets go of the connections kept open between requests.
 */

export const DEFAULT_URL = 'http://127.0.0.1:8282'

/** The longest a single blocking receive waits on the server before the client asks again. */
const BLOCK_STEP_SECONDS = 30

export interface ClientOptions {
  /** The daemon's base URL (default http://127.0.0.1:8282; https:// for a daemon with TLS). */
  url?: string
  /** The daemon's auth_token, sent as "Authorization: Bearer". */
  token?: string
  /** https: the certificate authorities to trust (PEM), beside the system's; for a self-signed daemon. */
  ca?: string | Buffer
}

/** The daemon answered with an error reply (`{"status":"error","code":N,"message":...}`). */
export class DispenserdError extends Error {
  constructor(
    readonly code: number,
    readonly httpStatus: number,
    message: string,
  ) {
    super(message)
    this.name = 'DispenserdError'
  }
}

/** The daemon could not be reached, or did not answer JSON: worth retrying later. */
export class ConnectionError extends Error {
  constructor(message: string, options?: { cause: unknown }) {
    super(message, options)
    this.name = 'ConnectionError'
  }
}

/** Codes of the catalogue a client acts on (README "Codes"). */
export const CODE = { ok: 0, invalidData: 1, emptyQueue: 2, unauthorized: 7, limitReached: 8, notLeased: 9, jobNotFound: 11, conflict: 12 } as const

export interface ReceiveOptions {
  lane?: string
  /** Lease the job for this many seconds (then ack or release it) instead of taking it for good. */
  lease?: number
  /** Wait for a job when the lane is empty. */
  block?: boolean
  /** With `block`: give up after this many seconds (default: wait as long as it takes). */
  timeout?: number
}

type Reply = Record<string, unknown>

export class DispenserdClient {
  readonly url: string
  private readonly headers: Record<string, string>
  /** Keeps connections open between requests. */
  private readonly agent: http.Agent
  private readonly transport: typeof http | typeof https

  constructor(options: ClientOptions = {}) {
    this.url = (options.url ?? DEFAULT_URL).replace(/\/+$/, '')
    this.headers = { 'content-type': 'application/json' }
    if (options.token !== undefined && options.token !== '') this.headers.authorization = `Bearer ${options.token}`
    const secure = this.url.startsWith('https:')
    this.transport = secure ? https : http
    this.agent = secure ? new https.Agent({ keepAlive: true, ca: options.ca === undefined ? undefined : [...tls.rootCertificates, options.ca] }) : new http.Agent({ keepAlive: true })
  }

  /** Closes the connections kept open. */
  close(): void {
    this.agent.destroy()
  }

  /** `GET /`. */
  async status(): Promise<Status> {
    return (await this.call('/', undefined)) as unknown as Status
  }

  /** `GET /jobs`: every lane with its ready jobs in serving order. */
  async jobs(): Promise<Record<string, Job[]>> {
    return (await this.call('/jobs', undefined)) as unknown as Record<string, Job[]>
  }

  async schedule(job: NewJob): Promise<Scheduled> {
    return (await this.call('/schedule', job)) as unknown as Scheduled
  }

  /** Queues every job or none (one invalid entry refuses the batch, naming it). */
  async scheduleBatch(jobs: NewJob[]): Promise<ScheduledBatch> {
    return (await this.call('/schedule', { jobs })) as unknown as ScheduledBatch
  }

  /**
   * The next job of the lane, or undefined when it is empty (or, blocking, stayed empty until
   * `timeout`). A blocking receive without a timeout asks again every 30 s, so no proxy or client
   * timer cuts a long wait.
   */
  receive(options: ReceiveOptions & { lease: number }): Promise<LeasedJob | undefined>
  receive(options?: ReceiveOptions): Promise<Job | undefined>
  async receive(options: ReceiveOptions = {}): Promise<Job | undefined> {
    const { lane, lease } = options
    if (options.block !== true) return this.jobOrEmpty(await this.call('/receive_noblock', { lane, lease }))
    const deadline = options.timeout === undefined ? Infinity : Date.now() + options.timeout * 1000
    for (;;) {
      const timeout = Math.max(0, Math.min(BLOCK_STEP_SECONDS, (deadline - Date.now()) / 1000))
      const job = this.jobOrEmpty(await this.call('/receive_block', { lane, lease, timeout }))
      if (job !== undefined || Date.now() >= deadline) return job
    }
  }

  /** Done with a leased job: it is gone for good. */
  async ack(hash: string, leaseToken: string): Promise<JobRef> {
    return (await this.call('/ack', { hash, lease_token: leaseToken })) as unknown as JobRef
  }

  /** Puts a leased job back, at once or after `delay` seconds. */
  async release(hash: string, leaseToken: string, delay?: number): Promise<JobRef> {
    return (await this.call('/release', { hash, lease_token: leaseToken, delay })) as unknown as JobRef
  }

  /** Still working: the lease runs `lease` seconds from now (default: its original length). */
  async touch(hash: string, leaseToken: string, lease?: number): Promise<JobRef> {
    return (await this.call('/touch', { hash, lease_token: leaseToken, lease })) as unknown as JobRef
  }

  /** `GET /job`: a job by hash, with its state and last run. */
  async job(hash: string): Promise<JobDetail> {
    return (await this.call(`/job?${new URLSearchParams({ hash })}`, undefined)) as unknown as JobDetail
  }

  /** A dead job goes back to its lane. */
  async retry(hash: string): Promise<JobRef> {
    return (await this.call('/retry', { hash })) as unknown as JobRef
  }

  /** A queued (runner lane), delayed or dead job is gone for good. */
  async delete(hash: string): Promise<JobRef> {
    return (await this.call('/delete', { hash })) as unknown as JobRef
  }

  /** A lane serves no receiver and starts no run until it is resumed (kept across restarts). */
  async pause(lane: string): Promise<LanePaused> {
    return (await this.call('/pause', { lane })) as unknown as LanePaused
  }

  async resume(lane: string): Promise<LanePaused> {
    return (await this.call('/resume', { lane })) as unknown as LanePaused
  }

  /** `GET /failed`: a page of a lane's dead jobs, newest first. */
  async failed(lane?: string, offset = 0, limit = 50): Promise<FailedPage> {
    const query = new URLSearchParams({ offset: String(offset), limit: String(limit) })
    if (lane !== undefined) query.set('lane', lane)
    return (await this.call(`/failed?${query}`, undefined)) as unknown as FailedPage
  }

  /**
   * One request. `body` undefined is a GET; fields that are undefined are left out. The reply
   * must be JSON; an error reply throws DispenserdError. (GET /jobs maps lanes to arrays, so a
   * string `status` there is an error reply too.)
   */
  async call(path: string, body: object | undefined): Promise<Reply> {
    let status: number
    let text: string
    try {
      ;({ status, text } = await this.send(path, body === undefined ? undefined : JSON.stringify(body)))
    } catch (err) {
      throw new ConnectionError(`cannot reach dispenserd at ${this.url}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err })
    }
    let reply: unknown
    try {
      reply = JSON.parse(text)
    } catch {
      throw new ConnectionError(`${this.url}${path} answered HTTP ${status} with something that is not JSON: ${text.slice(0, 120)}`)
    }
    if (typeof reply !== 'object' || reply === null || Array.isArray(reply)) throw new ConnectionError(`${this.url}${path} answered a JSON ${Array.isArray(reply) ? 'array' : typeof reply}, not an object`)
    const fields = reply as Reply
    if (fields.status === 'error') {
      throw new DispenserdError(typeof fields.code === 'number' ? fields.code : -1, status, String(fields.message ?? `HTTP ${status}`))
    }
    return fields
  }

  /**
   * One HTTP exchange. The daemon closes idle kept-alive connections after about 10 s; a request
   * that finds its reused connection closed before any answer was never read by the daemon, so it
   * is sent once more on a fresh connection.
   */
  private send(path: string, body: string | undefined, retried = false): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const req = this.transport.request(this.url + path, { method: body === undefined ? 'GET' : 'POST', headers: this.headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }))
        res.on('error', reject)
      })
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (!retried && req.reusedSocket && err.code === 'ECONNRESET') this.send(path, body, true).then(resolve, reject)
        else reject(err)
      })
      req.end(body)
    })
  }

  private jobOrEmpty(reply: Reply): Job | undefined {
    return reply.code === CODE.emptyQueue ? undefined : (reply as unknown as Job)
  }
}
