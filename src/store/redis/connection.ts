import { createHash } from 'node:crypto'
import { Cluster, Redis } from 'ioredis'
import { ApiError, OutcomeUnknown } from '../../errors'
import type { Logger } from '../../log'

/** Where the Redis store connects: one server by URL, or a cluster by some of its nodes. */
export type RedisTarget = { url: string } | { cluster: { host: string; port: number }[] }

/** How long a command may take before its request is answered 503 (code 14). */
export const COMMAND_TIMEOUT_MS = 1000

/** A Redis client as the store uses it: scripts by SHA1 (loaded on NOSCRIPT), a few plain commands. */
export type Client = Redis | Cluster

/** A script known by its SHA1; run with EVALSHA, and with EVAL the first time a server lacks it. */
export class Script {
  readonly sha: string
  constructor(readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex')
  }

  async run(client: Client, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    // Keys and arguments in one array, not spread into the call: a call's arguments are bounded
    // by the stack (a batch of 40,000 jobs overflowed it). ioredis flattens the array and writes
    // numbers as decimals, so the cast to its key type only narrows what the typings accept.
    const argv = [...keys, ...args] as string[]
    try {
      return await client.evalsha(this.sha, keys.length, argv)
    } catch (err) {
      // After a restart or a failover the server may not have it yet.
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err
      return await client.eval(this.lua, keys.length, argv)
    }
  }
}

/**
 * The client, configured to fail fast: no offline queue (a command while disconnected is refused
 * at once, so "not made" is certain), a 1 s command timeout, no resending of commands whose reply
 * was lost (a script run twice would queue a job twice), and reconnection forever in the
 * background. On a cluster: autopipelining off (with it on, moved slots kept failing after a
 * failover: ioredis#2075, reproduced in the design study) and sharded subscribers for wake-ups.
 */
export function connect(target: RedisTarget, commandTimeoutMs = COMMAND_TIMEOUT_MS): Client {
  const common = {
    commandTimeout: commandTimeoutMs,
    connectTimeout: 2000,
    enableOfflineQueue: false,
    enableAutoPipelining: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    lazyConnect: true,
  }
  const retryStrategy = (times: number): number => Math.min(100 * times, 1000)
  if ('url' in target) return new Redis(target.url, { ...common, retryStrategy })
  return new Cluster(target.cluster, {
    enableOfflineQueue: false,
    enableAutoPipelining: false,
    lazyConnect: true,
    shardedSubscribers: true,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    maxRedirections: 16,
    slotsRefreshTimeout: 1000,
    clusterRetryStrategy: retryStrategy,
    redisOptions: { ...common, lazyConnect: undefined },
  })
}

/** The error messages ioredis gives a command it never sent (no connection, and no offline queue). */
const NOT_SENT = [/Stream isn't writeable/, /isn't ready and enableOfflineQueue/, /Connection is closed/, /No (sharded )?subscriber/]
/** Reply errors for a command the server did not run (cluster reshaping or failing over, loading). */
const NOT_RUN = /^(CLUSTERDOWN|TRYAGAIN|MOVED|ASK|LOADING|MASTERDOWN|READONLY|NOREPLICAS|BUSY)\b/

export type Outcome = 'change' | 'read'

/**
 * The ApiError for a failed Redis call. A command that never left (not connected) or that the
 * server refused before running changed nothing; one that was sent and not answered in time may
 * have been carried out (the reply is what was lost). A reply of out-of-memory is the limit on
 * Redis's memory (code 8, as the in-memory limits are); anything else is a fault (code 6).
 */
export function storeError(err: unknown, outcome: Outcome): Error {
  if (err instanceof ApiError) return err
  const message = err instanceof Error ? err.message : String(err)
  if (message.startsWith('OOM')) {
    return new ApiError('limit_reached', `Redis has reached its maxmemory (${message}); nothing was queued (takes, acks and deletes still work)`)
  }
  const notMade = NOT_SENT.some((re) => re.test(message)) || NOT_RUN.test(message)
  if (!notMade && !/timed out|Connection|ECONN|EPIPE|MaxRetriesPerRequest|Cluster|closed|socket/i.test(message)) return err instanceof Error ? err : new Error(message)
  if (outcome === 'change' && !notMade) {
    return new OutcomeUnknown(`the job store (Redis) is unavailable (${message}); the outcome is unknown: the change may have been made (no answer in time)`)
  }
  return new ApiError('store_unavailable', `the job store (Redis) is unavailable (${message}); ${outcome === 'read' ? 'nothing was changed' : 'the change was not made'}`)
}

/** Follows the client's state for GET / and for refusing work at once while it is down. */
export class ConnectionState {
  state: 'connecting' | 'up' | 'down' = 'connecting'
  lastError: string | undefined
  since = Date.now()

  constructor(client: Client, logger: Logger, onReady: () => void) {
    client.on('ready', () => {
      onReady()
    })
    const down = (reason: string) => (err?: Error) => {
      const error = err?.message ?? reason
      if (this.state !== 'down' || this.lastError !== error) logger.warn({ err: error, was: this.state }, 'the job store (Redis) is unreachable; retrying in the background')
      this.set('down', error)
    }
    client.on('error', down('error'))
    client.on('close', down('connection closed'))
    client.on('end', down('connection ended'))
  }

  set(state: ConnectionState['state'], error?: string): void {
    if (state !== this.state) this.since = Date.now()
    this.state = state
    this.lastError = error
  }
}
