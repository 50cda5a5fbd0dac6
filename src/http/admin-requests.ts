import { MAX_PRIORITY } from '../queue/job'
import { type JobFilter, PAGE_SORTS, PAGE_STATES, type PageQuery, type PageSort, type PageState } from '../queue/pages'
import { BULK_ACTIONS, type BulkAction, type BulkRequest } from '../service/bulk'
import { isJsonObject } from '../json'
import { countField, hashField, invalid, laneField, priorityField } from './requests'

/** Parsing of the operators' endpoints (job lookup by number, pages, moves, pause, kill, bulk); errors name the field. */
type Fields = Record<string, unknown>

/** The query fields that make `GET /jobs` answer a page instead of the original's full listing. */
export const PAGE_FIELDS = ['lane', 'offset', 'limit', 'cursor', 'state', 'q', 'sort'] as const

export const MAX_PAGE = 1000

function oneOf<T extends string>(fields: Fields, name: string, allowed: readonly T[], fallback: T): T {
  const value = fields[name]
  if (value === undefined || value === null || value === '') return fallback
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) throw invalid(`"${name}" must be one of ${allowed.join(', ')}`)
  return value as T
}

function searchField(fields: Fields): string | undefined {
  const q = fields.q
  if (q === undefined || q === null || q === '') return undefined
  if (typeof q !== 'string' || q.length > 1024) throw invalid('"q" must be a string of at most 1024 characters')
  return q
}

export function parseFilter(fields: Fields): JobFilter {
  return { lane: laneField(fields), state: oneOf<PageState>(fields, 'state', PAGE_STATES, 'ready'), q: searchField(fields) }
}

/** `GET /jobs?lane=&state=&q=&sort=&offset=&limit=&cursor=`. */
export function parsePage(fields: Fields): PageQuery {
  const cursor = fields.cursor
  if (cursor !== undefined && cursor !== null && cursor !== '' && (typeof cursor !== 'string' || cursor.length > 64)) throw invalid('"cursor" must be a page\'s next_cursor')
  return {
    ...parseFilter(fields),
    sort: oneOf<PageSort>(fields, 'sort', PAGE_SORTS, 'order'),
    offset: countField(fields.offset, 'offset', 0, 0, 1e9),
    limit: countField(fields.limit, 'limit', 100, 1, MAX_PAGE),
    cursor: typeof cursor === 'string' && cursor !== '' ? cursor : undefined,
  }
}

/** `GET /job`: `hash`, or `job_num`. */
export function parseJobRef(fields: Fields): { hash: string } | { jobNum: number } {
  if (fields.job_num !== undefined && fields.job_num !== null && fields.job_num !== '') {
    if (fields.hash !== undefined && fields.hash !== null) throw invalid('give either "hash" or "job_num", not both')
    return { jobNum: countField(fields.job_num, 'job_num', 0, 1, Number.MAX_SAFE_INTEGER) }
  }
  return { hash: hashField(fields) }
}

/** `POST /move {"hash", "lane"?, "priority"?}`: at least one of lane and priority. */
export function parseMove(fields: Fields): { hash: string; lane: string | undefined; priority: number | undefined } {
  const hash = hashField(fields)
  const lane = fields.lane === undefined || fields.lane === null ? undefined : laneField(fields)
  const priority = fields.priority === undefined || fields.priority === null ? undefined : priorityField(fields)
  if (lane === undefined && priority === undefined) throw invalid('give "lane", "priority" or both: where to move the job')
  return { hash, lane, priority }
}

/** `POST /pause` and `POST /resume`: `{"lane": …}` (required: pausing main by default would surprise). */
export function parseLaneName(fields: Fields): string {
  if (fields.lane === undefined || fields.lane === null || fields.lane === '') throw invalid('missing lane')
  return laneField(fields)
}

/** Hashes a bulk request may name at once. */
export const MAX_BULK_HASHES = 100_000

/** `POST /bulk {"action", "hashes": [...] | "filter": {"lane", "state"?, "q"?}, "lane"?, "priority"?}`. */
export function parseBulk(fields: Fields): BulkRequest {
  const action = fields.action
  if (typeof action !== 'string' || !(BULK_ACTIONS as readonly string[]).includes(action)) throw invalid(`"action" must be one of ${BULK_ACTIONS.join(', ')}`)
  const { hashes, filter } = fields
  const hasHashes = hashes !== undefined && hashes !== null
  const hasFilter = filter !== undefined && filter !== null
  if (hasHashes === hasFilter) throw invalid('give either "hashes" or "filter": which jobs to act on')
  const request: BulkRequest = { action: action as BulkAction }
  if (hasHashes) {
    if (!Array.isArray(hashes) || hashes.length === 0 || hashes.length > MAX_BULK_HASHES) throw invalid(`"hashes" must be a non-empty array of at most ${MAX_BULK_HASHES} hashes`)
    request.hashes = hashes.map((hash: unknown, i) => {
      if (typeof hash !== 'string' || hash === '' || hash.length > 128) throw invalid(`hashes[${i}] must be a hash (a string of at most 128 characters)`)
      return hash
    })
  } else {
    if (!isJsonObject(filter)) throw invalid('"filter" must be an object: {"lane", "state"?, "q"?}')
    if (filter.lane === undefined || filter.lane === null || filter.lane === '') throw invalid('"filter" needs a "lane"')
    for (const key of Object.keys(filter)) if (!['lane', 'state', 'q'].includes(key)) throw invalid(`"filter" takes lane, state and q, not ${JSON.stringify(key)}`)
    request.filter = parseFilter(filter)
  }
  if (request.action === 'relocate') {
    if (fields.lane === undefined || fields.lane === null || fields.lane === '') throw invalid('relocate needs "lane": the lane to move the jobs to')
    request.lane = laneField(fields)
  }
  if (request.action === 'reprioritize' && (fields.priority === undefined || fields.priority === null)) throw invalid(`reprioritize needs "priority": an integer from 0 to ${MAX_PRIORITY}`)
  if (fields.priority !== undefined && fields.priority !== null) request.priority = priorityField(fields)
  return request
}
