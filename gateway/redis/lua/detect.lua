-- Close every visit of one tenant whose deadline (last event + timeout) has passed.
-- ARGV: arguments.DetectArgs. Atomic: two processes running this at once, or a process killed
-- while waiting for the answer, can neither close a visit twice nor leave it half closed.
-- Returns {visits closed, largest lag in ms past a deadline, tally [name, count, ...]}
-- (results.DetectResult); the tally also holds the closes done by ingest since the last call, so
-- somebody counts them once.
local args = {{DetectArgs}}
local now = NOW
local due = redis.call('ZRANGEBYSCORE', K_visits, '-inf', now, 'WITHSCORES', 'LIMIT', 0, args.batch)
local lag = 0
for j = 1, #due, 2 do
  lag = math.max(lag, now - tonumber(due[j + 1]))
  close_visit(due[j], now)
end
local tally = redis.call('HGETALL', K_tally)
redis.call('DEL', K_tally)
return {#due / 2, lag, tally}
