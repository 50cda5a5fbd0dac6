/**
 * The scripts that hand jobs out: single and batch takes (leased, or taken for good), the put-back
 * of a hand-over that failed, and a wake-up passed on by a frontend with no receiver left. A take
 * that finds nothing registers the frontend as waiting in the same step (wakeups.ts).
 */

import { script } from './prelude'

/** Take and takeMany: a job taken for good leaves the store; its unique key and any wait on it follow. */
const TAKEN_FOR_GOOD = `
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
`

export const TAKE_SCRIPTS = {
  // ARGV[3] lease ms (0: taken for good), [4] lease token, [5] '1': register this frontend as
  // waiting when nothing is ready, [6] leases allowed at once (0: no bound; runner lanes'
  // concurrency), [7] '1': count an attempt (runner lanes), [8] after a take: 'add' this frontend
  // to the waiting (it has more receivers), 'drop' it, or 'keep' as it is.
  // Returns {1, member, record, lease deadline or 0, now, expired...} or {0, next deadline or -1, now, expired...}.
  take: script('allow-oom', TAKEN_FOR_GOOD + `
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
  takeMany: script('allow-oom', TAKEN_FOR_GOOD + `
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

  // A frontend named by a wake-up that has no receiver left on the lane: it leaves the waiting and
  // names the next one, if a job is ready.
  pass: script('allow-oom', `
redis.call('ZREM', W, FE)
if redis.call('ZCARD', R) > 0 then wake(1) end
return 1
`),
} as const
