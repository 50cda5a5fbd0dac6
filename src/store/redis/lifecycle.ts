/**
 * The Redis store's connection over its life: it connects in the background (the daemon serves
 * GET / while Redis is down), reads what every (re)connection needs before anything is served (the
 * hash secret, lane ids, the job number floor, a check of the eviction policy), refreshes the
 * counts every second (marking the store up or down), and closes only once the calls gathered and
 * under way have answered.
 */
import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { BackgroundTasks } from '../../service/tasks'
import { COMMAND_TIMEOUT_MS } from './connection'
import { HashCodec } from './hash-codec'
import { metaKey } from './keys'
import type { RedisSession } from './session'
import type { Wakeups } from './wakeups'

/** What close() flushes and waits for: the calls gathered for the end of the turn (coalesce.ts). */
interface Gathering {
  flush(): void
  readonly gathering: boolean
}

export class Lifecycle {
  constructor(
    private readonly session: RedisSession,
    private readonly wakeups: Wakeups,
    private readonly coalescers: readonly Gathering[],
    /** Lanes declared on this frontend: made (given an id) on every connection. */
    private readonly declared: ReadonlySet<string>,
    /** The lanes paused as of each read of the counts. */
    private readonly countsRead: (pausedLanes: string[]) => void,
  ) {}

  /** Connects in the background (the daemon serves GET / while Redis is down) and starts the chores. */
  start(tasks: BackgroundTasks): void {
    this.session.client.connect().catch(() => undefined)
    if (this.session.subscriber !== this.session.client) (this.session.subscriber as Redis).connect().catch(() => undefined)
    this.wakeups.start()
    tasks.add('store counts', () => this.refresh()).every(1000)
  }

  /** Lets what is gathered and under way finish (settle), then closes the connections. */
  async close(): Promise<void> {
    this.wakeups.stop()
    await this.settle()
    if (this.session.subscriber !== this.session.client) this.session.subscriber.disconnect()
    await this.session.client.quit().catch(() => this.session.client.disconnect())
  }

  /**
   * Sends what is gathered and waits until no call is under way, nor any call their answers
   * started (a reply that cannot be delivered puts its job back): QUIT goes after them all. The
   * daemon closes its connections once the store is closed, so without this a request read
   * before a SIGTERM was sent after QUIT (never made, never answered), or made and its reply
   * cut off (a job taken for it lost). Each call ends within the command timeout; a deadline
   * bounds the wait all the same.
   */
  private async settle(): Promise<void> {
    const deadline = Date.now() + 3 * (this.session.options.commandTimeoutMs ?? COMMAND_TIMEOUT_MS)
    const { coalescers } = this
    while (Date.now() < deadline) {
      for (const coalescer of coalescers) coalescer.flush()
      await this.session.underWay.ended(deadline)
      // What the answers start (replies, put-backs, calls gathered anew) runs before this.
      await new Promise((resolve) => setImmediate(resolve))
      if (this.session.underWay.size === 0 && !coalescers.some((coalescer) => coalescer.gathering)) return
    }
  }

  whenReady(): void {
    // The server may have come back without its data (no persistence, a lost last second): lane ids
    // then start again, and one cached from before could name another lane now. Ids and the hash
    // secret are read afresh before anything is served again.
    this.session.codec = undefined
    this.session.lanes.forget()
    // ready() catches its own failures (and tries again); nothing is left to reject.
    this.ready().catch(() => undefined)
  }

  /** What the connection needs once (again) up: the hash secret, the lanes, checks of the server. */
  private async ready(): Promise<void> {
    const { logger, prefix } = this.session.options
    try {
      const policy = await this.maxmemoryPolicy()
      if (policy !== undefined && policy !== 'noeviction') {
        throw new Error(`Redis's maxmemory-policy is ${policy}: it would delete jobs when memory runs out; set it to noeviction`)
      }
      await this.session.client.set(metaKey(prefix, 'secret'), randomBytes(32).toString('hex'), 'NX')
      const secret = await this.session.client.get(metaKey(prefix, 'secret'))
      this.session.codec = new HashCodec(Buffer.from(secret!, 'hex'))
      await this.session.numbers.reconnected(this.session.client)
      await this.session.lanes.refresh(this.session.client)
      for (const lane of [...this.declared, ...(this.session.options.runnerLanes?.keys() ?? [])]) await this.session.lanes.ensure(this.session.client, lane)
      await this.refresh()
      this.session.connection.set('up')
      logger.info({ store: 'redis', prefix, lanes: this.session.lanes.size }, 'the job store (Redis) is connected')
      this.wakeups.pollAll()
    } catch (err) {
      const message = (err as Error).message
      // Said once per distinct reason, not once a second while it lasts.
      if (this.session.connection.lastError !== message) logger.error({ err: message }, 'the job store (Redis) cannot be used; retrying every second')
      this.session.connection.set('down', message)
      setTimeout(() => this.whenReady(), 1000).unref()
    }
  }

  /** CONFIG GET maxmemory-policy, where the server allows it (managed services may not). */
  private async maxmemoryPolicy(): Promise<string | undefined> {
    try {
      const reply = (await this.session.client.call('CONFIG', 'GET', 'maxmemory-policy')) as string[]
      return reply[1]
    } catch {
      return undefined
    }
  }

  /** Re-reads the lanes and every lane's counts; marks the store up or down. */
  private async refresh(): Promise<void> {
    if (this.session.codec === undefined) return
    try {
      await this.session.lanes.refresh(this.session.client)
      await this.session.tally.refresh(this.session.client, this.session.lanes)
      this.countsRead(this.session.tally.pausedLanes())
      if (this.session.connection.state !== 'up') {
        this.session.connection.set('up')
        this.wakeups.pollAll()
      }
    } catch (err) {
      this.session.connection.set('down', (err as Error).message)
    }
  }

  /** Waits until connected (or `timeoutMs` passed: false). */
  async connected(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    while (this.session.connection.state !== 'up' || this.session.codec === undefined) {
      if (Date.now() > deadline) return false
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    return true
  }
}
