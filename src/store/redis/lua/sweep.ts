/**
 * The sweeper's script, run on every lane once a second by whichever frontend takes the turn:
 * what is due goes back, and what outlived its time (succeeded jobs, unique keys, waits, records
 * of keys of jobs taken for good) is forgotten.
 */

import { script } from './prelude'

export const SWEEP_SCRIPTS = {
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
} as const
