/**
 * The scripts of the operators' API: a dead job retried, a job deleted, a job moved within its lane
 * (a new priority), a lane paused or resumed.
 */

import { script } from './prelude'

export const OPERATOR_SCRIPTS = {
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
} as const
