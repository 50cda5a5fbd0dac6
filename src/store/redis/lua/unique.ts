/**
 * The scripts of unique keys and waited jobs: a schedule that checks and takes each job's key in
 * the same step (so two frontends scheduling one key at once queue it once) and watches the jobs
 * a request waits for; the end of a watched job as the waiting frontend reads it; a wait given up.
 */

import { script } from './prelude'

export const UNIQUE_SCRIPTS = {
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
} as const
