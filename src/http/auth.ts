import { createHash, timingSafeEqual } from 'node:crypto'
import type { Logger } from '../log'

const BEARER = /^Bearer +(.*)$/i

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

/**
 * A check of `Authorization: Bearer <token>` headers, or undefined when no token is configured.
 * Both sides are hashed to a fixed length first, so the comparison takes the same time whatever
 * the header holds (timingSafeEqual needs equal lengths, and lengths must not leak either).
 */
export function bearerCheck(token: string): ((authorization: string) => boolean) | undefined {
  if (token === '') return undefined
  const expected = digest(token)
  return (authorization) => {
    const match = BEARER.exec(authorization)
    const same = timingSafeEqual(digest(match?.[1] ?? ''), expected)
    return match !== null && same
  }
}

/** Whether a listen address is reachable only from this machine. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

/** At start, and when a reload removes the token: nothing guards a daemon others can reach. */
export function warnIfOpen(authToken: string, host: string, address: string, logger: Logger, https = false): void {
  if (isLoopback(host)) return
  if (authToken === '') {
    logger.warn({ address }, 'listening beyond this machine without auth_token: anyone who can reach it can read, schedule and take jobs')
  } else if (!https) {
    logger.warn({ address }, 'listening beyond this machine over plain HTTP: the auth_token crosses the network in clear text; serve HTTPS with tls_cert and tls_key')
  }
}
