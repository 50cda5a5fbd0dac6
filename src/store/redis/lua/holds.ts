/**
 * Lua helpers for unique keys and waited jobs, part of every lane script's prelude: a job's
 * unique key is held while it is queued or out and for its unique_for once it finished; a job
 * someone waits for (POST /schedule with a wait) has its end kept for the waiting frontend.
 */
export const HOLDS_LUA = `-- unique holds: U key -> 'member|job_num|until' (until '' while the job is queued or out);
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
`
