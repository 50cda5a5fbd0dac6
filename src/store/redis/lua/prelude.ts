/**
 * What every lane script begins with, and how a lane script is made (`script`). A lane script runs
 * as one atomic step on the lane's one hash slot; it is given the lane's keys (LANE_KEY_SUFFIXES in
 * ../keys.ts, in that order) and, as ARGV[1] and ARGV[2], the lane's wake-up channel prefix and the
 * calling frontend's id.
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
import { FINISHED_LUA } from './finished'
import { HOLDS_LUA } from './holds'

/** The lane's keys as locals, the server's time, the record's fields, and the moves every kind of script makes. */
const LANE_LUA = `
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
`

const PRELUDE = LANE_LUA + HOLDS_LUA + FINISHED_LUA

/** A lane script: the flags line, the prelude, then `body` (which may define helpers of its own first). */
export function script(flags: string, body: string): string {
  return `#!lua${flags === '' ? '' : ` flags=${flags}`}\n${PRELUDE}\n${body}`
}
