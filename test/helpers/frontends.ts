import type { Test } from 'tap'
import { type Running, call, removeDir, startDaemon, until } from './daemon'

/** A job as replies show it (schedule, receive). */
export interface JobReply {
  code: number
  job_num: number
  hash: string
  message: string
  lease_token?: string
}

/** A daemon (the real bin/dispenserd) over the Redis store, once connected; killed at the test's end. */
export async function frontend(t: Test, args: string[]): Promise<Running> {
  const d = await startDaemon({ args: ['--store', 'redis', ...args] })
  t.teardown(async () => {
    await d.stop('SIGKILL')
    removeDir(d.dataDir)
  })
  await until(async () => (await storeState(d)) === 'up', 'the frontend to connect to Redis', 15_000)
  return d
}

/** GET /'s `payload.store.state`: connecting, up or down. */
export async function storeState(d: Running): Promise<string> {
  const { body } = await call(`${d.url}/`)
  return ((body.payload as Record<string, unknown>).store as { state: string }).state
}

/** Receivers parked on the daemon. */
export async function parked(d: Running): Promise<number> {
  const { body } = await call(`${d.url}/`)
  return ((body.payload as Record<string, unknown>).server as { parked_receivers: number }).parked_receivers
}
