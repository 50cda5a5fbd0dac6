/**
 * The scripts that read jobs and counts: a job by member or by number, pages of dead and ready jobs
 * (GET /jobs, GET /dead, the migration's listing), the jobs of one other state, and a lane's counts
 * for GET / and the limits. Only the pages of ready jobs write: they first put back what is due
 * (so that they list it), and readyOrder places a cursor's job taken meanwhile for a moment.
 */

import { script } from './prelude'

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

/** deadPage, listState: `out`, then jobs with their records and reports. */
const WITH_RECORDS = `
-- out, then each member of ms with its record and report (or false)
local function withRecords(out, ms)
  for _, m in ipairs(ms) do
    out[#out + 1] = m
    out[#out + 1] = redis.call('HGET', J, m)
    out[#out + 1] = redis.call('HGET', REP, m)
  end
  return out
end
`

export const READ_SCRIPTS = {
  // ARGV[3] member. Returns {state, record, deadline or '', report or false, member, position or -1, result or false} or {0}.
  find: script('no-writes', FIND + 'return find(ARGV[3])'),

  // ARGV[3] job number. As find, by the lane's index of job numbers.
  findNum: script('no-writes', FIND + `
local m = redis.call('HGET', J, '#' .. ARGV[3])
if not m then return {0} end
return find(m)
`),

  // ARGV[3] offset, [4] limit. Returns {total, member, record, report, ...}, newest first.
  deadPage: script('no-writes', WITH_RECORDS + `
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
  listState: script('no-writes', WITH_RECORDS + `
local set = ({l = L, d = D, dead = DEAD, done = DONE})[ARGV[3]]
local ms
if ARGV[3] == 'dead' then ms = redis.call('ZRANGE', set, 0, tonumber(ARGV[4]) - 1)
else ms = redis.call('ZRANGE', set, '(' .. now, '+inf', 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[4])) end
return withRecords({}, ms)
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
} as const
