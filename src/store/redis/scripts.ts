/**
 * The Lua scripts of the Redis store: one atomic step per lane operation, on the lane's one hash
 * slot. Every lane script is given the lane's ten keys (LANE_KEY_SUFFIXES, in that order) and, as
 * ARGV[1] and ARGV[2], the lane's wake-up channel prefix and the calling frontend's id.
 *
 * Order: the ready set's score is the job's priority (exact in a double for 0..2^32-1) and its
 * member the lane sequence as 12 lowercase hex digits, which Redis compares byte-wise among equal
 * scores: so serving order is (priority, arrival), and a job put back with its own score and member
 * lands at its original place.
 *
 * A job record (HASH j, member -> record) is `job_num|created|priority|attempts|hash|message`:
 * `hash` is empty for jobs scheduled here (their hash derives from lane id and member) and set for
 * jobs imported by `dispenserd migrate`, which keep the hash they had.
 *
 * Time is always the Redis server's (TIME), so frontends' clocks never matter. Scripts check
 * before their first write, because Redis does not roll a script back. `#!lua` makes Redis refuse
 * any key of another slot; `allow-oom` lets the scripts that take, end or free work past maxmemory.
 */

export const LANE_KEY_SUFFIXES = ['r', 'j', 'm', 'l', 'x', 'd', 'dead', 'done', 'rep', 'w', 'u', 'uk', 'ue', 'res', 'wt', 'we', 'ug'] as const

const PRELUDE = `
local R, J, M, L, X, D, DEAD, DONE, REP, W = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local U, UK, UE, RES, WT, WE, UG = KEYS[11], KEYS[12], KEYS[13], KEYS[14], KEYS[15], KEYS[16], KEYS[17]
local CHAN, FE = ARGV[1], ARGV[2]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local HEAD = '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|'
-- the record's priority, as stored (an exact decimal integer: used as the score as it is)
local function prio(rec) local _, _, p = string.match(rec, HEAD) return p end
local function headLen(rec) local a, b, c, d, e = string.match(rec, HEAD) return #a + #b + #c + #d + #e + 5 end
local function msgBytes(rec) return #rec - headLen(rec) end
local function withAttempts(rec, n)
  local a, b, c, _, e = string.match(rec, HEAD)
  return a .. '|' .. b .. '|' .. c .. '|' .. n .. '|' .. e .. '|' .. string.sub(rec, headLen(rec) + 1)
end
-- one command over many arguments (fields, score-member pairs): in slices, as unpack is bounded
local function many(cmd, key, args)
  local out = {}
  for i = 1, #args, 1000 do
    local r = redis.call(cmd, key, unpack(args, i, math.min(i + 999, #args)))
    if type(r) == 'table' then for k = 1, #r do out[#out + 1] = r[k] end end
  end
  return out
end
local function attemptsOf(rec) local _, _, _, d = string.match(rec, HEAD) return tonumber(d) end
local function tokenOf(x) return string.match(x, '^%d+|(.*)$') end
-- The lane's index of job numbers (GET /job?job_num) is kept in J beside the records, field
-- '#<job number>' -> member (members are hex digits: no clash), so it costs no command of its own.
local function numField(rec) return '#' .. string.match(rec, '^([^|]*)|') end
local function keep(m, rec) redis.call('HSET', J, m, rec, numField(rec), m) end
local function forget(m, rec)
  if rec then redis.call('HDEL', J, m, numField(rec)) else redis.call('HDEL', J, m) end
end
-- the same for many jobs at once (members and their records, in the same order)
local function forgetMany(ms, recs)
  local fields = {}
  for k, m in ipairs(ms) do
    fields[#fields + 1] = m
    if recs[k] then fields[#fields + 1] = numField(recs[k]) end
  end
  many('HDEL', J, fields)
end
-- an operator's pause (POST /pause): takes hand out nothing, on every frontend, until a resume
local function paused() return redis.call('HGET', M, 'paused') == '1' end
-- names up to n waiting frontends (longest waiting first); each comes back by its next take
local function wake(n)
  for _ = 1, n do
    local w = redis.call('ZPOPMIN', W)
    if #w == 0 then return end
    redis.call('SPUBLISH', CHAN .. w[1], 'w')
  end
end
-- puts back what is due, at its place: expired leases and delays that are over
local function due(limit)
  local expired = {}
  local ms = redis.call('ZRANGE', L, '-inf', now, 'BYSCORE', 'LIMIT', 0, limit)
  for _, m in ipairs(ms) do
    local rec = redis.call('HGET', J, m)
    redis.call('ZREM', L, m)
    redis.call('HDEL', X, m)
    if rec then
      redis.call('ZADD', R, prio(rec), m)
      expired[#expired + 1] = m
      expired[#expired + 1] = rec
    end
  end
  local ds = redis.call('ZRANGE', D, '-inf', now, 'BYSCORE', 'LIMIT', 0, limit)
  for _, m in ipairs(ds) do
    local rec = redis.call('HGET', J, m)
    redis.call('ZREM', D, m)
    if rec then redis.call('ZADD', R, prio(rec), m) end
  end
  return expired, #ms + #ds
end
local function nextDeadline()
  local n = -1
  local a = redis.call('ZRANGE', L, 0, 0, 'WITHSCORES')
  if #a > 0 then n = tonumber(a[2]) end
  local b = redis.call('ZRANGE', D, 0, 0, 'WITHSCORES')
  if #b > 0 and (n < 0 or tonumber(b[2]) < n) then n = tonumber(b[2]) end
  return n
end
-- the lease on member m if token names it: 'ok', or 'gone' (no lease in force), or 'other'
local function leaseOf(m, token)
  local d = redis.call('ZSCORE', L, m)
  local rec = redis.call('HGET', J, m)
  if not d or not rec or tonumber(d) <= now then return 'gone', rec end
  local x = redis.call('HGET', X, m)
  if not x or tokenOf(x) ~= token then return 'other', rec end
  return 'ok', rec, x
end
-- unique holds: U key -> 'member|job_num|until' (until '' while the job is queued or out);
-- UK member -> 'forMs|key' while the job's record is kept; UE key -> until (finished holds, to trim)
local function holdOf(key)
  local h = redis.call('HGET', U, key)
  if not h then return nil end
  local m, num, untl = string.match(h, '^([^|]*)|([^|]*)|(.*)$')
  if untl ~= '' and tonumber(untl) <= now then return nil end
  return m, num, untl
end
local function hold(m, num, forMs, key)
  redis.call('HSET', U, key, m .. '|' .. num .. '|')
  redis.call('ZREM', UE, key)
  redis.call('HSET', UK, m, forMs .. '|' .. key)
end
-- job m finished (taken for good, acked, succeeded, dead): its key stays held forMs more;
-- free: deleted, the key goes at once. The job's record going too (gone) drops UK.
local function unhold(m, free, gone)
  local uk = redis.call('HGET', UK, m)
  if not uk then return end
  if gone then redis.call('HDEL', UK, m) end
  local forMs, key = string.match(uk, '^(%d+)|(.*)$')
  local h = redis.call('HGET', U, key)
  if not h then return end
  local hm, num, untl = string.match(h, '^([^|]*)|([^|]*)|(.*)$')
  if hm ~= m or untl ~= '' then return end
  if free or tonumber(forMs) <= 0 then
    redis.call('HDEL', U, key)
    redis.call('ZREM', UE, key)
  else
    redis.call('HSET', U, key, m .. '|' .. num .. '|' .. (now + tonumber(forMs)))
    redis.call('ZADD', UE, now + tonumber(forMs), key)
  end
end
-- a waited job (WT member -> until when someone may wait) ended: what the waiting frontend reads
local function ended(m, state, rec, res)
  if not redis.call('ZSCORE', WT, m) then return end
  redis.call('HSET', WE, m, state, m .. ':rec', rec)
  if res and res ~= '' then redis.call('HSET', WE, m .. ':res', res) end
end
-- job m (record rec) is queued again: it holds its key again, unless another job took it meanwhile
local function rehold(m, rec)
  local uk = redis.call('HGET', UK, m)
  if not uk then return end
  local forMs, key = string.match(uk, '^(%d+)|(.*)$')
  local hm = holdOf(key)
  if not hm or hm == m then hold(m, string.match(rec, '^([^|]*)|'), forMs, key) end
end
local function unwatch(m)
  redis.call('ZREM', WT, m)
  redis.call('HDEL', WE, m, m .. ':rec', m .. ':res')
end
-- job m (record rec) is taken by a plain receive: gone from the store, its key held its unique_for.
-- Its key's record (UK) stays a minute (UG), so a hand-over that fails puts the job back with its key.
local function takenForGood(m, rec)
  forget(m, rec)
  redis.call('HINCRBY', M, 'jobs', -1)
  redis.call('HINCRBY', M, 'bytes', 0 - msgBytes(rec))
  unhold(m, false, false)
  if redis.call('HEXISTS', UK, m) == 1 then redis.call('ZADD', UG, now + 60000, m) end
  ended(m, 'taken', rec, '')
end
-- out, then each member of ms with its record and report (or false)
local function withRecords(out, ms)
  for _, m in ipairs(ms) do
    out[#out + 1] = m
    out[#out + 1] = redis.call('HGET', J, m)
    out[#out + 1] = redis.call('HGET', REP, m)
  end
  return out
end
local function forgetDone(ms)
  for _, m in ipairs(ms) do
    redis.call('ZREM', DONE, m)
    forget(m, redis.call('HGET', J, m))
    redis.call('HDEL', REP, m)
    redis.call('HDEL', RES, m)
    redis.call('HDEL', UK, m)
  end
end
-- keeps job m (record rec, result res or '') as succeeded for keep ms; false when it is not kept
local function keepDone(m, rec, res, keep, maxF)
  if keep <= 0 or maxF <= 0 then return false end
  redis.call('HSET', J, m, rec)
  redis.call('ZADD', DONE, now + keep, m)
  if res ~= '' then redis.call('HSET', RES, m, res) end
  return true
end
-- succeeded jobs past their keep time go; then the oldest, past maxF
local function trimDone(maxF)
  forgetDone(redis.call('ZRANGE', DONE, '-inf', now, 'BYSCORE', 'LIMIT', 0, 1000))
  local over = redis.call('ZCARD', DONE) - maxF
  if maxF >= 0 and over > 0 then
    local ms = redis.call('ZRANGE', DONE, 0, over - 1)
    forgetDone(ms)
    redis.call('HINCRBY', M, 'forgotten', #ms)
  end
end
`

/** A job's state by member (find, findNum): queued ones with how many are served before them. */
const FIND = `
local function find(m)
  local rec = redis.call('HGET', J, m)
  if not rec then return {0} end
  local rep = redis.call('HGET', REP, m)
  local d = redis.call('ZSCORE', L, m)
  if d then
    if tonumber(d) > now then return {'leased', rec, d, rep, m, -1} end
    return {'queued', rec, '', rep, m, -1}
  end
  d = redis.call('ZSCORE', D, m)
  if d then
    if tonumber(d) > now then return {'delayed', rec, d, rep, m, -1} end
    return {'queued', rec, '', rep, m, -1}
  end
  local rank = redis.call('ZRANK', R, m)
  if rank then return {'queued', rec, '', rep, m, rank} end
  if redis.call('ZSCORE', DEAD, m) then return {'dead', rec, '', rep, m, -1} end
  d = redis.call('ZSCORE', DONE, m)
  if d and tonumber(d) > now then return {'succeeded', rec, d, rep, m, -1, redis.call('HGET', RES, m)} end
  return {0}
end
`

function script(flags: string, body: string): string {
  return `#!lua${flags === '' ? '' : ` flags=${flags}`}\n${PRELUDE}\n${body}`
}

/** The lane scripts, by name. Each returns a flat array (Lua tables cannot hold nil). */
export const LANE_SCRIPTS = {
  // ARGV[3] = n, then per job: priority, job_num, delay ms, message. Returns {first seq, now}.
  schedule: script('', `
local n = tonumber(ARGV[3])
local first = redis.call('HINCRBY', M, 'seq', n) - n + 1
local recs, ready, delayed, bytes = {}, {}, {}, 0
for i = 0, n - 1 do
  local p, num, delay, msg = ARGV[4 + 4 * i], ARGV[5 + 4 * i], tonumber(ARGV[6 + 4 * i]), ARGV[7 + 4 * i]
  local m = string.format('%012x', first + i)
  recs[#recs + 1] = m
  recs[#recs + 1] = num .. '|' .. clock[1] .. '|' .. p .. '|0||' .. msg
  recs[#recs + 1] = '#' .. num
  recs[#recs + 1] = m
  bytes = bytes + #msg
  if delay > 0 then
    delayed[#delayed + 1] = now + delay
    delayed[#delayed + 1] = m
  else
    ready[#ready + 1] = p
    ready[#ready + 1] = m
  end
end
-- one HSET and one ZADD for all the jobs: Redis's cost is mostly per command, not per member
many('HSET', J, recs)
many('ZADD', R, ready)
many('ZADD', D, delayed)
redis.call('HINCRBY', M, 'jobs', n)
redis.call('HINCRBY', M, 'bytes', bytes)
wake(#ready / 2)
return {first, now}
`),

  // ARGV[3] lease ms (0: taken for good), [4] lease token, [5] '1': register this frontend as
  // waiting when nothing is ready, [6] leases allowed at once (0: no bound; runner lanes'
  // concurrency), [7] '1': count an attempt (runner lanes), [8] after a take: 'add' this frontend
  // to the waiting (it has more receivers), 'drop' it, or 'keep' as it is.
  // Returns {1, member, record, lease deadline or 0, now, expired...} or {0, next deadline or -1, now, expired...}.
  take: script('allow-oom', `
local expired = due(1000)
local lease = tonumber(ARGV[3])
local function none()
  if ARGV[5] == '1' then redis.call('ZADD', W, 'NX', now, FE) end
  local out = {0, nextDeadline(), now}
  for _, e in ipairs(expired) do out[#out + 1] = e end
  return out
end
if paused() then return none() end
if tonumber(ARGV[6]) > 0 and redis.call('ZCARD', L) >= tonumber(ARGV[6]) then return none() end
local top = redis.call('ZPOPMIN', R)
if #top == 0 then return none() end
if ARGV[8] == 'add' then redis.call('ZADD', W, 'NX', now, FE) elseif ARGV[8] == 'drop' then redis.call('ZREM', W, FE) end
local m = top[1]
local rec = redis.call('HGET', J, m)
local out
if lease > 0 then
  if ARGV[7] == '1' then redis.call('HSET', J, m, withAttempts(rec, attemptsOf(rec) + 1)) end
  redis.call('ZADD', L, now + lease, m)
  redis.call('HSET', X, m, ARGV[3] .. '|' .. ARGV[4])
  out = {1, m, rec, now + lease, now}
else
  takenForGood(m, rec)
  out = {1, m, rec, 0, now}
end
for _, e in ipairs(expired) do out[#out + 1] = e end
return out
`),

  // Batch receives. ARGV[3] lease ms (0: for good), [4] the tokens' start (job k's token is it and
  // '.k'), [5] count, [6] min, [7] '1': register this frontend when fewer than min are ready,
  // [8] after a take: 'add', 'drop' or 'keep' (as take). Returns {1 or 0 (nothing taken), now, n,
  // next deadline or -1 (when nothing was taken), member, record, ... (n pairs), expired...}.
  takeMany: script('allow-oom', `
local expired = due(1000)
local lease = tonumber(ARGV[3])
local out
if paused() or redis.call('ZCARD', R) < tonumber(ARGV[6]) then
  if ARGV[7] == '1' then redis.call('ZADD', W, 'NX', now, FE) end
  out = {0, now, 0, nextDeadline()}
else
  if ARGV[8] == 'add' then redis.call('ZADD', W, 'NX', now, FE) elseif ARGV[8] == 'drop' then redis.call('ZREM', W, FE) end
  local top = redis.call('ZPOPMIN', R, tonumber(ARGV[5]))
  out = {1, now, #top / 2, -1}
  local ms = {}
  for i = 1, #top, 2 do ms[#ms + 1] = top[i] end
  local recs = many('HMGET', J, ms)
  if lease > 0 then
    local deadlines, holders = {}, {}
    for k, m in ipairs(ms) do
      deadlines[#deadlines + 1] = now + lease
      deadlines[#deadlines + 1] = m
      holders[#holders + 1] = m
      holders[#holders + 1] = ARGV[3] .. '|' .. ARGV[4] .. '.' .. k
    end
    many('ZADD', L, deadlines)
    many('HSET', X, holders)
  else
    -- each job taken for good keeps its unique key its unique_for and ends a wait on it
    for k, m in ipairs(ms) do takenForGood(m, recs[k]) end
  end
  for k, m in ipairs(ms) do
    out[#out + 1] = m
    out[#out + 1] = recs[k]
  end
end
for _, e in ipairs(expired) do out[#out + 1] = e end
return out
`),

  // One or more acks of one lane (several when coalesce.ts gathered them): ARGV[3] n, then per
  // ack: member, token, result (JSON text, or '': none), keep ms (a job acked with a result is kept
  // as succeeded this long), succeeded jobs kept per lane at most. Returns per ack two items:
  // {1 | 0 (no lease in force) | -1 (another lease), record or false}. Each ack sees the ones
  // before it in the call as a next ack script would (a job acked twice in one call is gone).
  ack: script('allow-oom', `
local out = {}
for i = 0, tonumber(ARGV[3]) - 1 do
  local b = 4 + 5 * i
  local m, res = ARGV[b], ARGV[b + 2]
  local state, rec = leaseOf(m, ARGV[b + 1])
  if state == 'gone' then
    out[#out + 1] = 0
  elseif state == 'other' then
    out[#out + 1] = -1
  else
    redis.call('ZREM', L, m)
    redis.call('HDEL', X, m)
    redis.call('HINCRBY', M, 'jobs', -1)
    redis.call('HINCRBY', M, 'bytes', 0 - msgBytes(rec))
    local maxF = tonumber(ARGV[b + 4])
    local kept = res ~= '' and keepDone(m, rec, res, tonumber(ARGV[b + 3]), maxF)
    if kept then trimDone(maxF) else forget(m, rec) end
    unhold(m, false, not kept)
    ended(m, 'succeeded', rec, res)
    out[#out + 1] = 1
  end
  out[#out + 1] = rec
end
return out
`),

  // ARGV[3] member, [4] token, [5] delay ms. Returns as ack, then the ready-at time.
  release: script('allow-oom', `
local state, rec = leaseOf(ARGV[3], ARGV[4])
if state == 'gone' then return {0, rec} elseif state == 'other' then return {-1, rec} end
local delay = tonumber(ARGV[5])
redis.call('ZREM', L, ARGV[3])
redis.call('HDEL', X, ARGV[3])
if delay > 0 then
  redis.call('ZADD', D, now + delay, ARGV[3])
else
  redis.call('ZADD', R, prio(rec), ARGV[3])
  wake(1)
end
return {1, rec, now + delay}
`),

  // ARGV[3] member, [4] token, [5] new lease ms ('': the lease's own length). Returns {1, record, deadline, lease ms} or as ack.
  touch: script('allow-oom', `
local state, rec, x = leaseOf(ARGV[3], ARGV[4])
if state == 'gone' then return {0, rec} elseif state == 'other' then return {-1, rec} end
local len = ARGV[5]
if len == '' then len = string.match(x, '^(%d+)|') end
redis.call('ZADD', L, 'XX', now + tonumber(len), ARGV[3])
redis.call('HSET', X, ARGV[3], len .. '|' .. ARGV[4])
return {1, rec, now + tonumber(len), tonumber(len)}
`),

  // A hand-over that failed. ARGV[3] member, [4] lease token ('': a job taken for good, whose
  // record is ARGV[5]). A lease is ended only while it is the one handed over. Returns 1 or 0.
  putBack: script('allow-oom', `
local m = ARGV[3]
if ARGV[4] == '' then
  if redis.call('HEXISTS', J, m) == 1 then return 0 end
  local rec = ARGV[5]
  keep(m, rec)
  redis.call('ZADD', R, prio(rec), m)
  redis.call('HINCRBY', M, 'jobs', 1)
  redis.call('HINCRBY', M, 'bytes', msgBytes(rec))
  -- back in its lane: it holds its key again, unless another job took the key meanwhile
  redis.call('ZREM', UG, m)
  rehold(m, rec)
else
  local x = redis.call('HGET', X, m)
  local rec = redis.call('HGET', J, m)
  if not redis.call('ZSCORE', L, m) or not x or not rec or tokenOf(x) ~= ARGV[4] then return 0 end
  redis.call('ZREM', L, m)
  redis.call('HDEL', X, m)
  redis.call('ZADD', R, prio(rec), m)
end
wake(1)
return 1
`),

  // A run's end (runner lanes). ARGV[3] member, [4] token, [5] 'ok' | 'dead' | 'retry',
  // [6] attempts, [7] report (JSON, or ''), [8] keep_finished ms, [9] succeeded jobs kept per lane
  // at most, [10] retry delay ms, [11] the run's result (JSON, or ''). Returns {1, record, now} or {0} when the run's lease had ended.
  finish: script('allow-oom', `
local m, kind = ARGV[3], ARGV[5]
local x = redis.call('HGET', X, m)
local rec = redis.call('HGET', J, m)
if not redis.call('ZSCORE', L, m) or not x or not rec or tokenOf(x) ~= ARGV[4] then return {0} end
rec = withAttempts(rec, ARGV[6])
redis.call('ZREM', L, m)
redis.call('HDEL', X, m)
if ARGV[7] ~= '' then redis.call('HSET', REP, m, ARGV[7]) end
if kind == 'ok' then
  redis.call('HINCRBY', M, 'jobs', -1)
  redis.call('HINCRBY', M, 'bytes', 0 - msgBytes(rec))
  local maxF = tonumber(ARGV[9])
  local kept = keepDone(m, rec, ARGV[11], tonumber(ARGV[8]), maxF)
  if kept then
    trimDone(maxF)
  else
    forget(m, rec)
    redis.call('HDEL', REP, m)
  end
  unhold(m, false, not kept)
  ended(m, 'succeeded', rec, ARGV[11])
elseif kind == 'dead' then
  redis.call('HSET', J, m, rec)
  redis.call('ZADD', DEAD, now, m)
  unhold(m, false, false)
  ended(m, 'dead', rec, '')
else
  redis.call('HSET', J, m, rec)
  local delay = tonumber(ARGV[10])
  if delay > 0 then redis.call('ZADD', D, now + delay, m) else redis.call('ZADD', R, prio(rec), m) end
end
-- a run's end frees a slot: a frontend waiting on the lane may start the next
if redis.call('ZCARD', R) > 0 then wake(1) end
return {1, rec, now}
`),

  // Schedules jobs that may carry a unique key, as one step. ARGV[3] = n, then per job: priority,
  // job_num, delay ms, message, unique key ('' none), ms the key stays held once the job is
  // finished, ms a frontend waits for the job (0: none; the job, or the active holder of its key,
  // is watched: its end is kept for that frontend to read). Returns {now, then per job: 1, member,
  // '', '' (queued) or 0, holder's member, holder's job_num, until ('' while the holder is queued or out)}.
  scheduleUnique: script('', `
local n = tonumber(ARGV[3])
local out = {now}
local ready, bytes, queued = 0, 0, 0
for i = 0, n - 1 do
  local b = 4 + 7 * i
  local p, num, delay, msg, key, forMs, watch = ARGV[b], ARGV[b + 1], tonumber(ARGV[b + 2]), ARGV[b + 3], ARGV[b + 4], ARGV[b + 5], tonumber(ARGV[b + 6])
  local hm, hnum, huntil
  if key ~= '' then hm, hnum, huntil = holdOf(key) end
  if hm then
    if watch > 0 and huntil == '' then redis.call('ZADD', WT, now + watch, hm) end
    out[#out + 1] = 0
    out[#out + 1] = hm
    out[#out + 1] = hnum
    out[#out + 1] = huntil
  else
    local m = string.format('%012x', redis.call('HINCRBY', M, 'seq', 1))
    keep(m, num .. '|' .. clock[1] .. '|' .. p .. '|0||' .. msg)
    bytes = bytes + #msg
    queued = queued + 1
    if delay > 0 then redis.call('ZADD', D, now + delay, m) else redis.call('ZADD', R, p, m); ready = ready + 1 end
    if key ~= '' then hold(m, num, forMs, key) end
    if watch > 0 then redis.call('ZADD', WT, now + watch, m) end
    out[#out + 1] = 1
    out[#out + 1] = m
    out[#out + 1] = ''
    out[#out + 1] = ''
  end
end
redis.call('HINCRBY', M, 'jobs', queued)
redis.call('HINCRBY', M, 'bytes', bytes)
wake(ready)
return out
`),

  // A waited job's end, if it ended. ARGV[3] member. Returns {0} or {1, state, record, result or false}.
  ended: script('no-writes', `
local m = ARGV[3]
local state = redis.call('HGET', WE, m)
if not state then return {0} end
return {1, state, redis.call('HGET', WE, m .. ':rec'), redis.call('HGET', WE, m .. ':res')}
`),

  // Nobody waits for job ARGV[3] here any more.
  unwatch: script('allow-oom', `
unwatch(ARGV[3])
return 1
`),

  // ARGV[3] member. Returns {1, record} or {0}.
  retryDead: script('', `
local m = ARGV[3]
if redis.call('ZREM', DEAD, m) == 0 then return {0} end
redis.call('HDEL', REP, m)
local rec = withAttempts(redis.call('HGET', J, m), 0)
redis.call('HSET', J, m, rec)
redis.call('ZADD', R, prio(rec), m)
-- queued again: it holds its key again, unless another job took the key meanwhile
rehold(m, rec)
wake(1)
return {1, rec}
`),

  // ARGV[3] member. Returns {1, record}, {-1, record} (leased or running) or {0}.
  delete: script('allow-oom', `
due(1000)
local m = ARGV[3]
local rec = redis.call('HGET', J, m)
if not rec then return {0} end
if redis.call('ZSCORE', L, m) then return {-1, rec} end
if redis.call('ZREM', DEAD, m) + redis.call('ZREM', D, m) + redis.call('ZREM', R, m) == 0 then return {0} end
unhold(m, true, true)
ended(m, 'deleted', rec, '')
forget(m, rec)
redis.call('HDEL', REP, m)
redis.call('HINCRBY', M, 'jobs', -1)
redis.call('HINCRBY', M, 'bytes', 0 - msgBytes(rec))
return {1, rec}
`),

  // ARGV[3] member. Returns {state, record, deadline or '', report or false, result or false} or {0}.
  // ARGV[3] member. Returns {state, record, deadline or '', report or false, member, position or -1, result or false} or {0}.
  find: script('no-writes', FIND + 'return find(ARGV[3])'),

  // ARGV[3] job number. As find, by the lane's index of job numbers.
  findNum: script('no-writes', FIND + `
local m = redis.call('HGET', J, '#' .. ARGV[3])
if not m then return {0} end
return find(m)
`),

  // ARGV[3] offset, [4] limit. Returns {total, member, record, report, ...}, newest first.
  deadPage: script('no-writes', `
local off, lim = tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {redis.call('ZCARD', DEAD)}
if lim <= 0 then return out end
return withRecords(out, redis.call('ZRANGE', DEAD, off, off + lim - 1, 'REV'))
`),

  // A page of ready jobs in serving order: ARGV[3] the member the last page ended with ('' for
  // the first page), [4] the rank it had, [5] count. Returns {rank of the first, member, record, ...}.
  readyPage: script('allow-oom', `
due(1000)
local start = tonumber(ARGV[4])
if ARGV[3] ~= '' then
  local r = redis.call('ZRANK', R, ARGV[3])
  if r then start = r + 1 end
end
local out = {start}
for _, m in ipairs(redis.call('ZRANGE', R, start, start + tonumber(ARGV[5]) - 1)) do
  out[#out + 1] = m
  out[#out + 1] = redis.call('HGET', J, m)
end
return out
`),

  // Counts: {ready, leased, leases expired, delayed, delays over, dead, jobs, bytes, forgotten,
  // paused (1 or 0), when the lane's next job to serve was scheduled (seconds; -1: none ready),
  // unique keys held}.
  counts: script('no-writes', `
local f = redis.call('HMGET', M, 'jobs', 'bytes', 'forgotten', 'paused')
local head = -1
local top = redis.call('ZRANGE', R, 0, 0)
if #top > 0 then
  local _, created = string.match(redis.call('HGET', J, top[1]) or '', '^([^|]*)|([^|]*)|')
  head = tonumber(created) or -1
end
return {redis.call('ZCARD', R), redis.call('ZCARD', L), redis.call('ZCOUNT', L, '-inf', now), redis.call('ZCARD', D),
  redis.call('ZCOUNT', D, '-inf', now), redis.call('ZCARD', DEAD), tonumber(f[1] or 0), tonumber(f[2] or 0), tonumber(f[3] or 0),
  f[4] == '1' and 1 or 0, head, redis.call('HLEN', U) - redis.call('ZCOUNT', UE, '-inf', now)}
`),

  // POST /pause and /resume: ARGV[3] '1' to pause, '0' to resume. A resume names every waiting
  // frontend (their takes were refused while paused). Returns 1.
  pause: script('', `
if ARGV[3] == '1' then
  redis.call('HSET', M, 'paused', '1')
else
  redis.call('HDEL', M, 'paused')
  wake(redis.call('ZCARD', W))
end
return 1
`),

  // POST /move within the lane: ARGV[3] member, [4] new priority. Returns {1, record} (its new
  // record), {-1, record} (leased or running), {-2, record} (dead) or {0} (no such queued or delayed job).
  reprioritize: script('allow-oom', `
due(1000)
local m, p = ARGV[3], ARGV[4]
local rec = redis.call('HGET', J, m)
if not rec then return {0} end
if redis.call('ZSCORE', L, m) then return {-1, rec} end
if redis.call('ZSCORE', DEAD, m) then return {-2, rec} end
local ready = redis.call('ZSCORE', R, m)
if not ready and not redis.call('ZSCORE', D, m) then return {0} end
local a, b, _, d, e = string.match(rec, HEAD)
rec = a .. '|' .. b .. '|' .. p .. '|' .. d .. '|' .. e .. '|' .. string.sub(rec, headLen(rec) + 1)
redis.call('HSET', J, m, rec)
if ready then redis.call('ZADD', R, 'XX', p, m) end
return {1, rec}
`),

  // A page of ready jobs in serving order (GET /jobs?lane=…). ARGV[3] the member a previous page
  // ended with ('' for none) and [4] its priority, [5] jobs to skip, [6] limit, [7] a substring
  // the message must contain ('' for any), [8] jobs looked at at most. Returns {total, more (1/0),
  // the last member looked at, its priority, offset left to skip, member, record, ...}.
  readyOrder: script('allow-oom', `
due(1000)
local total = redis.call('ZCARD', R)
local start = 0
if ARGV[3] ~= '' then
  local r = redis.call('ZRANK', R, ARGV[3])
  if r then
    start = r + 1
  else
    -- taken meanwhile: where it would be is where the next page starts (added and removed in this step)
    redis.call('ZADD', R, ARGV[4], ARGV[3])
    start = redis.call('ZRANK', R, ARGV[3])
    redis.call('ZREM', R, ARGV[3])
  end
end
local skip, limit, q, budget = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8])
local out = {total, 0, '', '', 0}
if q == '' then
  start = start + skip
  skip = 0
  local ms = redis.call('ZRANGE', R, start, start + limit - 1, 'WITHSCORES')
  for i = 1, #ms, 2 do
    out[#out + 1] = ms[i]
    out[#out + 1] = redis.call('HGET', J, ms[i])
    out[3], out[4] = ms[i], ms[i + 1]
  end
  if start + limit < total then out[2] = 1 end
  return out
end
local found, scanned, at = 0, 0, start
while found < limit and scanned < budget do
  local ms = redis.call('ZRANGE', R, at, at + math.min(1000, budget - scanned) - 1, 'WITHSCORES')
  if #ms == 0 then return out end
  for i = 1, #ms, 2 do
    if found == limit then break end
    scanned = scanned + 1
    at = at + 1
    out[3], out[4] = ms[i], ms[i + 1]
    local rec = redis.call('HGET', J, ms[i])
    if string.find(string.sub(rec, headLen(rec) + 1), q, 1, true) then
      if skip > 0 then skip = skip - 1 else
        out[#out + 1] = ms[i]
        out[#out + 1] = rec
        found = found + 1
      end
    end
  end
end
if at < total then out[2] = 1 end
out[5] = skip
return out
`),

  // Jobs of one other state (GET /jobs?state=…): ARGV[3] 'l' (leased or running), 'd' (delayed),
  // 'dead' or 'done' (succeeded), [4] how many at most. Returns {member, record, report or false, ...}.
  listState: script('no-writes', `
local set = ({l = L, d = D, dead = DEAD, done = DONE})[ARGV[3]]
local ms
if ARGV[3] == 'dead' then ms = redis.call('ZRANGE', set, 0, tonumber(ARGV[4]) - 1)
else ms = redis.call('ZRANGE', set, '(' .. now, '+inf', 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[4])) end
return withRecords({}, ms)
`),

  // The sweeper: what is due goes back, succeeded jobs past their time are forgotten (and unique
  // keys past theirs, and waits nobody ended), waiting frontends are named for what became ready. ARGV[3] limit. Returns {moved, member, record, ...} (expired leases).
  reap: script('allow-oom', `
local expired, moved = due(tonumber(ARGV[3]))
trimDone(-1)
for _, key in ipairs(redis.call('ZRANGE', UE, '-inf', now, 'BYSCORE', 'LIMIT', 0, 1000)) do
  redis.call('ZREM', UE, key)
  local h = redis.call('HGET', U, key)
  if h and not string.match(h, '|$') and tonumber(string.match(h, '|([^|]*)$')) <= now then redis.call('HDEL', U, key) end
end
for _, m in ipairs(redis.call('ZRANGE', WT, '-inf', now, 'BYSCORE', 'LIMIT', 0, 1000)) do unwatch(m) end
for _, m in ipairs(redis.call('ZRANGE', UG, '-inf', now, 'BYSCORE', 'LIMIT', 0, 1000)) do
  redis.call('ZREM', UG, m)
  if redis.call('HEXISTS', J, m) == 0 then redis.call('HDEL', UK, m) end
end
if moved > 0 then wake(moved) end
local out = {moved}
for _, e in ipairs(expired) do out[#out + 1] = e end
return out
`),

  // A frontend named by a wake-up that has no receiver left on the lane: it leaves the waiting and
  // names the next one, if a job is ready.
  pass: script('allow-oom', `
redis.call('ZREM', W, FE)
if redis.call('ZCARD', R) > 0 then wake(1) end
return 1
`),

  // dispenserd migrate. ARGV[3] = n, then per job: priority, record, ready-at ms (0: ready now),
  // kind ('q' queued, 'dead'), report ('' if none). Returns the first sequence number used.
  import: script('', `
local n = tonumber(ARGV[3])
local first = redis.call('HINCRBY', M, 'seq', n) - n + 1
local bytes, kept = 0, 0
for i = 0, n - 1 do
  local p, rec, at, kind, rep = ARGV[4 + 5 * i], ARGV[5 + 5 * i], tonumber(ARGV[6 + 5 * i]), ARGV[7 + 5 * i], ARGV[8 + 5 * i]
  local m = string.format('%012x', first + i)
  keep(m, rec)
  bytes = bytes + msgBytes(rec)
  if rep ~= '' then redis.call('HSET', REP, m, rep) end
  if kind == 'dead' then redis.call('ZADD', DEAD, now, m)
  elseif at > now then redis.call('ZADD', D, at, m)
  else redis.call('ZADD', R, p, m) end
end
redis.call('HINCRBY', M, 'jobs', n)
redis.call('HINCRBY', M, 'bytes', bytes)
return first
`),
} as const

export type LaneScript = keyof typeof LANE_SCRIPTS

/** Scripts on the meta slot (`{prefix}:{meta}:…`): lane ids and the job number floor. */
export const META_SCRIPTS = {
  // KEYS: lanes (name -> id), lane ids (id -> name). ARGV[1] the lane's name. Returns its id (8 hex digits).
  laneId: `#!lua
local id = redis.call('HGET', KEYS[1], ARGV[1])
if id then return id end
id = string.format('%08x', redis.call('HINCRBY', KEYS[2], '#', 1))
redis.call('HSET', KEYS[1], ARGV[1], id)
redis.call('HSET', KEYS[2], id, ARGV[1])
return id
`,
  // KEYS: the job number counter. ARGV[1]: the lowest next job number allowed. Returns the counter.
  jobNumFloor: `#!lua
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n < tonumber(ARGV[1]) - 1 then redis.call('SET', KEYS[1], tonumber(ARGV[1]) - 1); n = tonumber(ARGV[1]) - 1 end
return n
`,
} as const
