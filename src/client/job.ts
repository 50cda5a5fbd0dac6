/** No imports: the dashboard (ui/) uses this type too. */

/** A job as `GET /jobs` lists it and a receive hands it out. */
export interface Job {
  job_num: number
  hash: string
  timestamp: string
  lane: string
  priority: number
  message: string
  /** Runner lanes: runs started so far. */
  attempts?: number
  /** Delayed jobs: when they become ready. */
  not_before?: string
}
