-- Log refused ingest requests of one tenant (gateway/redis/refusals.py) for GET /v1/debug/events,
-- and count them per minute for GET /v1/stats/events.
-- ARGV after the head: a JSON object {"<minute>|<error code>": n}, then one JSON entry per refusal,
-- oldest first. The log keeps the newest REFUSED_MAX entries, none older than REFUSED_SECONDS.
local _, first_item = {{RefusedArgs}}
local REFUSED_MAX, REFUSED_SECONDS = {{REFUSED_MAX}}, {{REFUSED_SECONDS}}
local log = K_refused
for i = first_item + 1, #ARGV do
  redis.call('XADD', log, 'MAXLEN', REFUSED_MAX, '*', 'r', ARGV[i])
end
redis.call('XTRIM', log, 'MINID', NOW - REFUSED_SECONDS * 1000)
redis.call('EXPIRE', log, REFUSED_SECONDS)
for name, n in pairs(cjson.decode(ARGV[first_item])) do
  local minute, code = string.match(name, '^(%d+)|(.*)$')
  local counts = K_stats(minute)
  -- a field's first count is the moment the minute's hash may be new: it gets its TTL then
  if redis.call('HINCRBY', counts, 'r:' .. code, n) == n then
    redis.call('EXPIRE', counts, STATS_SECONDS)
  end
end
return 0
