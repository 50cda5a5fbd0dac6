/** Scripts on the meta slot (`{prefix}:{meta}:…`): lane ids and the job number floor. */
export const META_SCRIPTS = {
  // KEYS: lanes (name -> id), lane ids (id -> name). ARGV[1] the lane's name. Returns its id (8 hex digits).
  laneId: `#!lua
local id = redis.call('HGET', KEYS[1], ARGV[1])
if id then return id end
id = string.format('%08x', redis.call('HINCRBY', KEYS[2], '#', 1))
redis.call('HSET', KEYS[1], ARGV[1], id)
redis.call('HSET', KEYS[2], id, ARGV[1])
return id
`,
  // KEYS: the job number counter. ARGV[1]: the lowest next job number allowed. Returns the counter.
  jobNumFloor: `#!lua
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n < tonumber(ARGV[1]) - 1 then redis.call('SET', KEYS[1], tonumber(ARGV[1]) - 1); n = tonumber(ARGV[1]) - 1 end
return n
`,
} as const
