/**
 * The scripts that end or extend a lease: acks (several of a lane in one call), releases, touches,
 * and a run's end on a runner lane (succeeded, dead, or retried). Each checks that the lease named
 * is the one in force before it writes.
 */

import { script } from './prelude'

export const LEASE_SCRIPTS = {
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
} as const
