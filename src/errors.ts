/**
 * The one catalogue of reply codes: each has its HTTP status and meaning. README's table of codes
 * is checked against this list by a test. Codes 0–2 are the original dispenserd's.
 */
export const CODES = {
  ok: { code: 0, http: 200, meaning: 'success' },
  invalid_data: { code: 1, http: 400, meaning: 'the request is malformed; the message says what is wrong' },
  empty_queue: { code: 2, http: 200, meaning: 'receive_noblock found the lane empty (status is "ok")' },
  not_found: { code: 3, http: 404, meaning: 'no such endpoint' },
  body_too_large: { code: 4, http: 413, meaning: 'the request body is larger than max_body_bytes' },
  shutting_down: { code: 5, http: 503, meaning: 'the daemon is shutting down; nothing was queued or taken' },
  internal: { code: 6, http: 500, meaning: 'an unexpected fault in the daemon; it has been logged' },
  unauthorized: { code: 7, http: 401, meaning: 'auth_token is set and the request lacks the right "Authorization: Bearer" header' },
  limit_reached: { code: 8, http: 503, meaning: 'a configured limit is reached (the message names it); nothing was queued or parked' },
  not_leased: { code: 9, http: 404, meaning: 'ack, release or touch named a lease that is not in force now (never leased, already acked or released, its lease expired, or a token of an earlier lease)' },
  journal_failed: { code: 10, http: 503, meaning: 'the journal could not be written: the change may be in memory but is not on disk; changes are refused until a snapshot succeeds' },
  job_not_found: { code: 11, http: 404, meaning: 'no job with that hash is known in a state the request can act on' },
  conflict: { code: 12, http: 409, meaning: 'the request does not fit the lane or job as it is now (a runner lane, a running job); the message says why' },
  forbidden: { code: 13, http: 403, meaning: 'Dispatch Jobs: the repository is not under dispatch.allowed_repos (the endpoint is off while that list is empty)' },
  store_unavailable: { code: 14, http: 503, meaning: 'the job store (Redis) is unreachable or did not answer in time; the message says whether the change was made, was not made, or is unknown' },
  not_supported: { code: 15, http: 501, meaning: 'the job store in use does not offer this request; the message names what and which store does' },
  duplicate: { code: 16, http: 200, meaning: 'schedule: the unique_key is held on that lane (by a job queued, out, or finished less than its unique_for ago), so nothing was queued; the reply names that job (status is "ok")' },
  cron_not_found: { code: 17, http: 404, meaning: 'no cron entry has that name' },
} as const

export type CodeName = keyof typeof CODES

/** An error that becomes a JSON error reply `{"status":"error","code":N,"message":...}`. */
export class ApiError extends Error {
  constructor(
    readonly codeName: Exclude<CodeName, 'ok' | 'empty_queue' | 'duplicate'>,
    message: string,
  ) {
    super(message)
  }

  get code(): number {
    return CODES[this.codeName].code
  }

  get httpStatus(): (typeof CODES)[CodeName]['http'] {
    return CODES[this.codeName].http
  }
}

/** Code 14 for a change sent to the store whose answer never came: it may have been made. */
export class OutcomeUnknown extends ApiError {
  constructor(message: string) {
    super('store_unavailable', message)
  }
}
