import { version } from '../../package.json'
import { CODES } from '../errors'
import { MAX_PRIORITY } from '../queue/job'
import { PAGE_SORTS, PAGE_STATES } from '../queue/pages'
import { BULK_ACTIONS } from '../service/bulk'
import { MAX_UNIQUE_FOR_SECONDS } from '../service/lane-settings'
import { MAX_BULK_HASHES, MAX_PAGE } from './admin-requests'
import { MAX_BATCH, MAX_LANE_LENGTH, MAX_SECONDS, MAX_UNIQUE_KEY_LENGTH } from './requests'

/**
 * The OpenAPI 3.1 description of every endpoint, served at `GET /openapi.json`. Written as code so
 * that limits and the code catalogue come from where they are defined; test/openapi.test.ts checks
 * real replies of every endpoint against it, so it cannot drift from what the daemon answers.
 * Every endpoint accepts GET or POST alike (as the original's do); each is described by the method
 * clients use.
 */

type Schema = Record<string, unknown>
type Codes = typeof CODES
type ErrorName = { [K in keyof Codes]: Codes[K]['http'] extends 200 ? never : K }[keyof Codes]

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` })
const ok = { status: { const: 'ok' }, code: { const: CODES.ok.code } }
const integer = (minimum: number, maximum?: number): Schema => ({ type: 'integer', minimum, ...(maximum === undefined ? {} : { maximum }) })
const seconds = (description: string, above0 = false): Schema => ({ type: 'number', ...(above0 ? { exclusiveMinimum: 0 } : { minimum: 0 }), maximum: MAX_SECONDS, description })
const nullable = (type: string): Schema => ({ type: [type, 'null'] })
const RFC3339 = { type: 'string', pattern: '^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?(Z|[+-]\\d\\d:\\d\\d)$' }
const counts = { type: 'object', additionalProperties: { type: 'integer', minimum: 0 }, description: 'per lane' }

/** A closed object: every property listed, `required` ones present. */
function object(properties: Record<string, Schema>, required: string[] = Object.keys(properties), extra: Schema = {}): Schema {
  return { type: 'object', properties, required, additionalProperties: false, ...extra }
}

function json(schema: Schema, description: string): Schema {
  return { description, content: { 'application/json': { schema } } }
}

/** Error replies by catalogue name, under their HTTP status; several names may share one status. */
function errors(...names: ErrorName[]): Record<string, Schema> {
  const byStatus = new Map<number, ErrorName[]>()
  for (const name of names) byStatus.set(CODES[name].http, [...(byStatus.get(CODES[name].http) ?? []), name])
  return Object.fromEntries(
    [...byStatus].map(([status, group]) => [
      String(status),
      json({ allOf: [ref('Error')], properties: { code: { enum: group.map((name) => CODES[name].code) } } }, group.map((name) => CODES[name].meaning).join('; ')),
    ]),
  )
}

/** Errors any endpoint that reads a body may answer. */
const BODY_ERRORS: ErrorName[] = ['invalid_data', 'unauthorized', 'body_too_large', 'shutting_down', 'internal', 'store_unavailable']
/** And those that change the queue. */
const CHANGE_ERRORS: ErrorName[] = [...BODY_ERRORS, 'journal_failed']

function post(summary: string, body: Schema, replies: Record<string, Schema>): Schema {
  return { post: { summary, requestBody: { required: false, content: { 'application/json': { schema: body } } }, responses: replies } }
}

function get(summary: string, replies: Record<string, Schema>, parameters: Schema[] = []): Schema {
  return { get: { summary, ...(parameters.length > 0 ? { parameters } : {}), responses: replies } }
}

const query = (name: string, schema: Schema, required = false): Schema => ({ name, in: 'query', required, schema })

const jobFields = {
  job_num: integer(1),
  hash: { type: 'string', minLength: 1 },
  timestamp: RFC3339,
  lane: { type: 'string' },
  priority: integer(0, MAX_PRIORITY),
  message: { type: 'string' },
  attempts: { ...integer(1), description: 'runner lanes: runs started' },
  not_before: { ...RFC3339, description: 'delayed jobs: when they become ready' },
  unique_key: { type: 'string', description: 'the unique key it holds on its lane' },
  unique_for: { type: 'number', minimum: 0, description: 'seconds its key stays held once it is finished' },
  group: { type: 'string', description: 'the group it takes turns with, within its priority' },
}
const JOB_REQUIRED = ['job_num', 'hash', 'timestamp', 'lane', 'priority', 'message']
const reportFields = {
  state: { enum: ['succeeded', 'failed', 'dead'] },
  started_at: RFC3339,
  finished_at: RFC3339,
  duration_ms: integer(0),
  reason: nullable('string'),
  exit_code: nullable('integer'),
  http_status: nullable('integer'),
  output: { type: 'string', description: 'the last 4 KiB of the output' },
}
const lane = { type: 'string', maxLength: MAX_LANE_LENGTH, description: 'default main' }
const leaseFields = { lease_expires: RFC3339, lease_token: { type: 'string' } }
const jobRef = object({ ...ok, job_num: integer(1), hash: { type: 'string' } })
const whereFields = {
  position: { ...integer(0), description: 'queued jobs: how many of the lane\'s ready jobs are served before it' },
  eta_seconds: { type: ['number', 'null'], minimum: 0, description: 'queued jobs: position over the lane\'s recent drain rate; null while it drains nothing' },
}
const laneBody = object({ lane: { type: 'string', maxLength: MAX_LANE_LENGTH } }, ['lane'])
const pausedReply = json(object({ ...ok, lane: { type: 'string' }, paused: { type: 'boolean' } }), 'the lane and whether it is paused now')
const filter = object({ lane: { type: 'string' }, state: { enum: [...PAGE_STATES] }, q: { type: 'string' } }, ['lane'])
const text = (type: string, description: string): Schema => ({ description, content: { [type]: { schema: { type: 'string' } } } })
const newJobFields = {
  message: { type: 'string' },
  arguments: { type: 'object', description: 'runner lanes: the arguments, instead of message' },
  target: { type: 'string', description: 'http runner lanes, with arguments: the job\'s own target' },
  lane,
  priority: { ...integer(0, MAX_PRIORITY), description: 'lower is served first; default 512' },
  delay: seconds('hold the job back this long'),
  unique_key: { type: 'string', minLength: 1, maxLength: MAX_UNIQUE_KEY_LENGTH, description: 'not queued while a job with this key is queued, out, or finished less than unique_for ago (then code 16)' },
  unique_for: { type: 'number', minimum: 0, maximum: MAX_UNIQUE_FOR_SECONDS, description: "seconds the key stays held once the job is finished; default the lane's unique_for" },
  group: { type: 'string', minLength: 1, maxLength: MAX_LANE_LENGTH, description: "served in turn with the lane's other groups, within its priority" },
}
const heldBy = { job_num: integer(1), hash: { type: 'string' }, held_until: { oneOf: [RFC3339, { type: 'null' }], description: 'null while the holder is queued or out' } }
const nullableTime = { oneOf: [RFC3339, { type: 'null' }] }
const hashBody = object({ hash: { type: 'string' } }, ['hash'])
const oneLease = (extra: Record<string, Schema>): Schema => object({ hash: { type: 'string' }, lease_token: { type: 'string' }, ...extra }, ['hash', 'lease_token'])
/** One lease, or a batch of them (`leases`), each answered as the single request would be. */
const leaseBody = (extra: Record<string, Schema>): Schema => ({
  oneOf: [oneLease(extra), object({ leases: { type: 'array', minItems: 1, maxItems: MAX_BATCH, items: oneLease(extra) } })],
})
const leaseReply = (single: Schema, description: string): Schema => json({ oneOf: [single, ref('LeaseResults')] }, `${description} (a batch: each item's own reply, in order)`)
const count = { ...integer(1, MAX_BATCH), description: 'take up to this many jobs in one reply (a batch reply)' }

const schemas: Record<string, Schema> = {
  Error: object({ status: { const: 'error' }, code: { enum: Object.values(CODES).filter((c) => c.http !== 200).map((c) => c.code) }, message: { type: 'string' } }),
  EmptyQueue: object({ status: { const: 'ok' }, code: { const: CODES.empty_queue.code }, message: { const: 'empty queue' } }),
  Job: object(jobFields, JOB_REQUIRED),
  LeasedOrTakenJob: object({ ...jobFields, ...leaseFields }, JOB_REQUIRED),
  ReceivedBatch: object({ ...ok, count: integer(1, MAX_BATCH), jobs: { type: 'array', minItems: 1, items: ref('LeasedOrTakenJob') } }),
  EmptyBatch: object({ status: { const: 'ok' }, code: { const: CODES.empty_queue.code }, message: { const: 'empty queue' }, count: { const: 0 }, jobs: { type: 'array', maxItems: 0 } }),
  LeaseResults: object({ ...ok, count: integer(1, MAX_BATCH), results: { type: 'array', items: { oneOf: [ref('JobRef'), ref('Error')] } } }),
  JobRef: object({ ...ok, job_num: integer(1), hash: { type: 'string' }, ...leaseFields }, ['status', 'code', 'job_num', 'hash']),
  ReceivedJob: object({ ...ok, ...jobFields, ...leaseFields }, ['status', 'code', ...JOB_REQUIRED], { description: 'lease_expires and lease_token are there when the job was leased' }),
  RunReport: object(reportFields),
  JobDetail: object(
    {
      ...ok,
      ...jobFields,
      ...whereFields,
      attempts: integer(0),
      state: { enum: ['queued', 'running', 'leased', 'delayed', 'dead', 'succeeded', 'taken', 'deleted'], description: 'taken and deleted only in a waited schedule\'s reply' },
      last_run: ref('RunReport'),
      result: { description: 'what its consumer (ack) or runner returned, any JSON' },
    },
    ['status', 'code', 'state', 'attempts', ...JOB_REQUIRED],
  ),
  PagedJob: object({ ...jobFields, ...whereFields, attempts: integer(0), last_run: ref('RunReport'), result: { description: 'what its consumer (ack) or runner returned, any JSON' } }, [...JOB_REQUIRED, 'attempts']),
  JobPage: object({
    ...ok,
    lane: { type: 'string' },
    state: { enum: [...PAGE_STATES] },
    sort: { enum: [...PAGE_SORTS] },
    offset: integer(0),
    limit: integer(1, MAX_PAGE),
    total: integer(0),
    next_cursor: { ...nullable('string'), description: 'pass back as cursor (same sort) for the next page; null after the last' },
    jobs: { type: 'array', items: ref('PagedJob') },
  }),
  BulkResult: object({
    ...ok,
    action: { enum: [...BULK_ACTIONS] },
    matched: integer(0),
    done: integer(0),
    failed: integer(0),
    errors: { type: 'array', maxItems: 100, items: object({ hash: { type: 'string' }, code: integer(1), message: { type: 'string' } }) },
  }),
  LaneOverview: object({
    lane: { type: 'string' },
    ...Object.fromEntries(['ready', 'leased', 'delayed', 'dead', 'running', 'parked', 'oldest_ready_age_seconds', 'scheduled_total', 'received_total', 'acked_total', 'dead_lettered_total', 'latency_count'].map((k) => [k, integer(0)])),
    paused: { type: 'boolean' },
    runner: nullable('string'),
    concurrency: nullable('integer'),
    latency_seconds_sum: { type: 'number', minimum: 0 },
    drain_rate: { type: 'number', minimum: 0, description: 'jobs per second handed over in about the last minute' },
  }),
  CronEntry: object({
    name: { type: 'string' },
    source: { enum: ['config', 'api'] },
    entry: { type: 'object', description: 'the entry as written' },
    paused: { type: 'boolean' },
    next_fire_at: nullableTime,
    last_fired_at: nullableTime,
    fired: integer(0),
    last_error: nullable('string'),
  }),
  DeadJob: object({ ...jobFields, ...reportFields }, JOB_REQUIRED),
  Status: {
    type: 'object',
    required: ['name', 'version', 'timestamp', 'status', 'payload'],
    additionalProperties: false,
    properties: {
      name: { const: 'dispenserd' },
      version: { type: 'string' },
      timestamp: RFC3339,
      status: { const: 'ok' },
      payload: { oneOf: [object({ details: { type: 'string' } }, ['details'], { description: 'auth_token is set and the request lacks it' }), ref('StatusPayload')] },
    },
  },
  StatusPayload: object({
    system: object({ pid: integer(1), cpu_count: integer(1) }),
    queued_jobs: counts,
    idle_workers: counts,
    leased_jobs: counts,
    delayed_jobs: counts,
    server: object({
      uptime_seconds: integer(0),
      http_engine: { type: 'string' },
      next_job_num: integer(1),
      queued_jobs_total: integer(0),
      queued_bytes: integer(0),
      parked_receivers: integer(0),
      leased_jobs_total: integer(0),
      unique_keys_held: integer(0),
      waited_jobs: integer(0),
      dead_jobs_total: integer(0),
      finished_jobs_forgotten: integer(0),
      memory: object({ rss: integer(0), heap_used: integer(0) }),
    }),
    runners: { type: 'object', additionalProperties: ref('RunnerCounters') },
    cron: { type: 'object', description: 'cron entries by name', additionalProperties: object({ next_fire_at: nullableTime, last_fired_at: nullableTime, paused: { type: 'boolean' } }) },
    store: {
      description: 'where jobs are kept; for Redis, the connection: state, last error, counts age',
      oneOf: [
        object({ type: { const: 'memory' } }),
        object({
          type: { const: 'redis' },
          mode: { enum: ['standalone', 'cluster'] },
          servers: { type: 'array', items: { type: 'string' } },
          prefix: { type: 'string' },
          state: { enum: ['connecting', 'up', 'down'] },
          error: nullable('string'),
          since: RFC3339,
          frontend: { type: 'string' },
          counts_age_ms: nullable('integer'),
        }),
      ],
    },
    snapshot: {
      oneOf: [
        object({ enabled: { const: false } }),
        object({ enabled: { const: true }, file: { type: 'string' }, last_saved_at: nullable('string'), last_duration_ms: nullable('integer'), last_jobs: nullable('integer'), last_bytes: nullable('integer'), last_error: nullable('string'), errors: integer(0) }),
      ],
    },
    journal: {
      oneOf: [object({ enabled: { const: false } }), object({ enabled: { const: true }, fsync: { enum: ['always', 'interval', 'never'] }, generation: integer(1), error: nullable('string') })],
    },
    tasks: {
      type: 'object',
      description: 'background tasks by name (the lease and delay reaper, snapshots, journal compaction and repair)',
      additionalProperties: object({ runs: integer(0), last_run_at: { oneOf: [RFC3339, { type: 'null' }] }, last_duration_ms: nullable('integer'), last_error: nullable('string'), errors: integer(0) }),
    },
    limits: object(Object.fromEntries(['max_queued_jobs', 'max_queued_bytes', 'max_message_bytes', 'max_lanes', 'max_parked_receivers'].map((k) => [k, integer(0)]))),
    paused_lanes: { type: 'array', items: { type: 'string' } },
  }),
  RunnerCounters: object({
    runner: { type: 'string' },
    ...Object.fromEntries(['concurrency', 'running', 'started', 'succeeded', 'failed', 'retried', 'dead', 'duration_ms_total', 'duration_ms_max'].map((k) => [k, integer(0)])),
  }),
}

const cronReply = object({ ...ok, cron: ref('CronEntry') })
const cronName = object({ name: { type: 'string' } }, ['name'])

const paths: Record<string, Schema> = {
  '/': get('Status: lanes, counters, persistence (open without the token; the detail only with it when auth_token is set)', { 200: json(ref('Status'), 'status') }),
  '/jobs': get(
    'Every lane with its ready jobs, in serving order; with a paging field (lane, state, q, sort, limit, offset, cursor), a page of one lane',
    { 200: json({ oneOf: [ref('JobPage'), { type: 'object', not: { required: ['status'] }, additionalProperties: { type: 'array', items: ref('Job') } }] }, 'a page, or jobs by lane'), ...errors(...BODY_ERRORS, 'not_supported') },
    [query('lane', lane), query('state', { enum: [...PAGE_STATES] }), query('q', { type: 'string' }), query('sort', { enum: [...PAGE_SORTS] }), query('limit', integer(1, MAX_PAGE)), query('offset', integer(0)), query('cursor', { type: 'string' })],
  ),
  '/schedule': post(
    'Queue a job, or a batch of jobs (all or none)',
    {
      oneOf: [
        { ...object({ ...newJobFields, wait: seconds('answer when the job finishes, or after this long', true) }, []), description: 'one job: message, or arguments for a runner lane' },
        object({ jobs: { type: 'array', minItems: 1, items: object(newJobFields, []) } }),
      ],
    },
    {
      200: json(
        {
          oneOf: [
            object({ ...ok, job_num: integer(1), hash: { type: 'string' } }),
            object({ ...ok, count: integer(1), first_job_num: integer(1), last_job_num: integer(1) }),
            { ...object({ status: { const: 'ok' }, code: { const: CODES.duplicate.code }, message: { type: 'string' }, ...heldBy }), description: 'its unique_key is held: nothing queued' },
            {
              ...object({ status: { const: 'ok' }, code: { enum: [CODES.ok.code, CODES.duplicate.code] }, count: integer(0), first_job_num: integer(1), last_job_num: integer(1), duplicates: { type: 'array', items: object({ index: integer(0), ...heldBy }) } }, ['status', 'code', 'count', 'duplicates']),
              description: 'a batch with unique keys: the jobs queued, and the entries whose key was held',
            },
            { ...ref('JobDetail'), description: 'with wait: the job finished' },
            { ...object({ ...ok, job_num: integer(1), hash: { type: 'string' }, state: { enum: ['queued', 'running', 'leased', 'delayed'] } }), description: 'with wait: the wait ran out' },
          ],
        },
        'queued',
      ),
      ...errors(...CHANGE_ERRORS, 'limit_reached', 'conflict', 'not_supported'),
    },
  ),
  '/receive_noblock': post('Take (or lease) the next job of a lane, or hear that there is none', object({ lane, lease: seconds('lease the job this long instead of taking it', true), count }, []), {
    200: json({ oneOf: [ref('ReceivedJob'), ref('EmptyQueue'), ref('ReceivedBatch'), ref('EmptyBatch')] }, 'a job (with count: jobs), or code 2 when the lane is empty'),
    ...errors(...CHANGE_ERRORS, 'limit_reached', 'conflict'),
  }),
  '/receive_block': post(
    'Take (or lease) the next job of a lane, waiting for one',
    object({ lane, lease: seconds('lease the job this long instead of taking it', true), timeout: seconds('give up after this long (code 2)'), count, min: { ...integer(1, MAX_BATCH), description: 'with count: wait until this many are ready (or the timeout)' } }, []),
    { 200: json({ oneOf: [ref('ReceivedJob'), ref('EmptyQueue'), ref('ReceivedBatch'), ref('EmptyBatch')] }, 'a job (with count: jobs), or code 2 after the timeout'), ...errors(...CHANGE_ERRORS, 'limit_reached', 'conflict') },
  ),
  '/ack': post('Done with a leased job', leaseBody({ result: { description: 'what the job returned (any JSON, up to max_result_bytes): kept with it, as succeeded, for GET /job' } }), { 200: leaseReply(jobRef, 'acked'), ...errors(...CHANGE_ERRORS, 'not_leased', 'conflict') }),
  '/release': post('Put a leased job back, at once or after a delay', leaseBody({ delay: seconds('wait this long first') }), { 200: leaseReply(jobRef, 'released'), ...errors(...CHANGE_ERRORS, 'not_leased', 'conflict') }),
  '/touch': post('Extend a lease', leaseBody({ lease: seconds("the lease's new length from now", true) }), {
    200: leaseReply(object({ ...ok, job_num: integer(1), hash: { type: 'string' }, ...leaseFields }), 'the new deadline'),
    ...errors(...BODY_ERRORS, 'not_leased', 'conflict'),
  }),
  '/job': get('A job by hash or job number, with its state, position and ETA, and last run', { 200: json(ref('JobDetail'), 'the job'), ...errors(...BODY_ERRORS, 'job_not_found') }, [query('hash', { type: 'string' }), query('job_num', integer(1))]),
  '/failed': get(
    "A page of a lane's dead jobs, newest first",
    { 200: json(object({ ...ok, lane: { type: 'string' }, total: integer(0), offset: integer(0), jobs: { type: 'array', items: ref('DeadJob') } }), 'dead jobs'), ...errors(...BODY_ERRORS) },
    [query('lane', lane), query('offset', integer(0)), query('limit', integer(1, 1000))],
  ),
  '/retry': post('A dead job goes back to its lane', hashBody, { 200: json(jobRef, 'queued again'), ...errors(...CHANGE_ERRORS, 'job_not_found', 'limit_reached') }),
  '/delete': post('A queued, delayed or dead job is gone for good', hashBody, { 200: json(jobRef, 'deleted'), ...errors(...CHANGE_ERRORS, 'job_not_found', 'conflict') }),
  '/v0/jobs/queue': post(
    'Dispatch Jobs: queue a job that runs a commit of a git repository',
    object({ repo_url: { type: 'string' }, ref: { type: 'string', pattern: '^[0-9a-fA-F]{7,40}$' }, arguments: { type: 'object' }, lane, priority: integer(0, MAX_PRIORITY) }, ['repo_url', 'ref']),
    { 200: json(object({ ...ok, job_num: integer(1), hash: { type: 'string' } }), 'queued'), ...errors(...CHANGE_ERRORS, 'forbidden', 'limit_reached') },
  ),
  '/move': post('Move a queued or delayed job to another lane and/or priority', object({ hash: { type: 'string' }, lane, priority: integer(0, MAX_PRIORITY) }, ['hash']), {
    200: json(object({ ...ok, job_num: integer(1), hash: { type: 'string' }, lane: { type: 'string' }, priority: integer(0, MAX_PRIORITY) }), 'moved'),
    ...errors(...CHANGE_ERRORS, 'job_not_found', 'conflict', 'limit_reached', 'not_supported'),
  }),
  '/pause': post('Pause a lane: it serves no receiver and starts no run (kept across restarts)', laneBody, { 200: pausedReply, ...errors(...CHANGE_ERRORS) }),
  '/resume': post('Resume a paused lane', laneBody, { 200: pausedReply, ...errors(...CHANGE_ERRORS) }),
  '/kill': post('Stop a running job of a runner lane for good (it is dead, reason killed)', hashBody, { 200: json(jobRef, 'the run is being stopped'), ...errors(...CHANGE_ERRORS, 'job_not_found', 'conflict', 'not_supported') }),
  '/bulk': post(
    'One action on many jobs: by hashes, or every job a filter matches',
    object({ action: { enum: [...BULK_ACTIONS] }, hashes: { type: 'array', minItems: 1, maxItems: MAX_BULK_HASHES, items: { type: 'string' } }, filter, lane, priority: integer(0, MAX_PRIORITY) }, ['action']),
    { 200: json(ref('BulkResult'), 'what was done, and the first failures'), ...errors(...CHANGE_ERRORS) },
  ),
  '/lanes': get('Every lane\'s counts and counters (the dashboard\'s overview)', {
    200: json(object({ ...ok, time: integer(0), totals: { type: 'object', additionalProperties: integer(0) }, lanes: { type: 'array', items: ref('LaneOverview') } }), 'the overview'),
    ...errors('unauthorized'),
  }),
  '/metrics': get('Metrics in the Prometheus text format, or OpenMetrics when Accept asks for application/openmetrics-text', {
    200: { description: 'the exposition', content: { 'text/plain; version=0.0.4': { schema: { type: 'string' } }, 'application/openmetrics-text; version=1.0.0': { schema: { type: 'string' } } } },
    ...errors('unauthorized'),
  }),
  '/healthz': get('Alive (open without the token), with the job store\'s type and state', {
    200: json(object({ ...ok, alive: { const: true }, store: object({ type: { type: 'string' }, state: { enum: ['up', 'down'] } }) }), 'the daemon answers'),
  }),
  '/readyz': get('Ready for traffic (open without the token)', { 200: json(object({ ...ok, ready: { const: true } }), 'ready'), ...errors('journal_failed', 'shutting_down', 'store_unavailable') }),
  '/ui': get('The dashboard (redirects to /ui/)', { 200: text('text/html', 'a page that goes on to /ui/') }),
  '/ui/*': get('The dashboard\'s page (/ui/) and files (app.js, app.css), open without the token: they hold no data', {
    200: { description: 'the page, its script or its style', content: Object.fromEntries(['text/html', 'text/javascript', 'text/css'].map((type) => [type, { schema: { type: 'string' } }])) },
    ...errors('not_found'),
  }),
  '/cron': get('The cron entries, with their next and last firing', { 200: json(object({ ...ok, entries: { type: 'array', items: ref('CronEntry') } }), 'entries'), ...errors(...BODY_ERRORS) }),
  '/cron/add': post(
    'Add a cron entry (kept across restarts)',
    { type: 'object', required: ['name'], description: 'name, schedule (a cron pattern) or every (seconds), timezone, lane, priority, message or arguments, missed (skip or once), paused' },
    { 200: json(cronReply, 'added'), ...errors(...CHANGE_ERRORS, 'conflict', 'not_supported') },
  ),
  '/cron/pause': post('Pause a cron entry: its slots are skipped until it is resumed', cronName, { 200: json(cronReply, 'paused'), ...errors(...CHANGE_ERRORS, 'cron_not_found', 'not_supported') }),
  '/cron/resume': post('Resume a paused cron entry', cronName, { 200: json(cronReply, 'resumed'), ...errors(...CHANGE_ERRORS, 'cron_not_found', 'not_supported') }),
  '/cron/delete': post('Delete a cron entry added at run time', cronName, { 200: json(cronReply, 'deleted'), ...errors(...CHANGE_ERRORS, 'cron_not_found', 'conflict', 'not_supported') }),
  '/openapi.json': get('This document', { 200: { description: 'the OpenAPI 3.1 description of the API', content: { 'application/json': { schema: { type: 'object', required: ['openapi', 'paths'] } } } } }),
}

export const OPENAPI = {
  openapi: '3.1.0',
  info: {
    title: 'dispenserd',
    version,
    description: 'A job queue daemon with an HTTP/JSON API. Every endpoint accepts GET or POST alike; bodies are JSON objects (an empty body is {}), and null counts as absent. Errors are {"status":"error","code":N,"message":"..."} with the HTTP status of their code.',
  },
  components: {
    schemas,
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'required by every endpoint but GET /, /openapi.json, /healthz, /readyz and the dashboard\'s files under /ui when the daemon has an auth_token' } },
  },
  security: [{}, { bearer: [] }],
  paths,
}

/** The document as served. */
export const OPENAPI_JSON = JSON.stringify(OPENAPI)
