-- Token bucket per API key, shared by every gateway process.
-- ARGV: arguments.RateArgs. Returns 0 when allowed, else ms until a token.
local args = {{RateArgs}}
local bucket = K_rate(args.key_id)
local rate, now = args.rate, NOW
local burst = math.max(rate, 1)
local state = redis.call('HMGET', bucket, 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', bucket, 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', bucket, math.ceil(burst * 1000 / rate) + 1000)
return wait
