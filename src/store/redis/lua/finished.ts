/**
 * Lua helpers for succeeded jobs kept for their lane's keep_finished (with their result), part of
 * every lane script's prelude: kept, then forgotten past their time or past the lane's count.
 */
export const FINISHED_LUA = `local function forgetDone(ms)
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
