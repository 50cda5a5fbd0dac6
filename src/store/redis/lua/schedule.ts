/**
 * The scripts that queue jobs without unique keys: POST /schedule's, and `dispenserd migrate`'s
 * import of an in-memory store's jobs. Each numbers its jobs in the lane in one step.
 */

import { script } from './prelude'

export const SCHEDULE_SCRIPTS = {
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
