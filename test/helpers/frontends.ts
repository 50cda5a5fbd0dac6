import { type Running, call } from './daemon'

/** Frontends over the Redis store: started and checked by the helpers in redis.ts. */
export { startFrontend as frontend, storeState } from './redis'

/** A job as replies show it (schedule, receive). */
export interface JobReply {
  code: number
  job_num: number
  hash: string
  message: string
  lease_token?: string
}

/** Receivers parked on the daemon. */
export async function parked(d: Running): Promise<number> {
  const { body } = await call(`${d.url}/`)
  return ((body.payload as Record<string, unknown>).server as { parked_receivers: number }).parked_receivers
}
