import type { Test } from 'tap'
import { type Running, call } from './daemon'
import { startFrontend, startRedis } from './redis'
import { type TcpProxy, startTcpProxy } from './tcp-proxy'

/** Frontends over the Redis store: started and checked by the helpers in redis.ts. */
export { startFrontend as frontend, storeState } from './redis'

/** A job as replies show it (schedule, receive). */
export interface JobReply {
  code: number
  job_num: number
  hash: string
  message: string
  lane?: string
  lease_token?: string
}

/** Receivers parked on the daemon. */
export async function parked(d: Running): Promise<number> {
  const { body } = await call(`${d.url}/`)
  return ((body.payload as Record<string, unknown>).server as { parked_receivers: number }).parked_receivers
}

/**
 * Two frontends over one redis-server: A straight to it, B through a proxy that can hold Redis's
 * replies (a command runs in Redis while its answer is held back). All ended with the test.
 */
export async function frontendsWithProxy(t: Test): Promise<{ a: Running; b: Running; proxy: TcpProxy }> {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const proxy = await startTcpProxy(redis.port)
  t.teardown(() => proxy.close())
  const a = await startFrontend(t, ['--redis-url', redis.url])
  const b = await startFrontend(t, ['--redis-url', `redis://127.0.0.1:${proxy.port}`])
  return { a, b, proxy }
}
