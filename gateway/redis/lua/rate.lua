-- Token bucket per API key, shared by every gateway process.
-- ARGV: prefix, key id, rate per second, now_ms. Returns 0 when allowed, else ms until a token.
local bucket = K_rate(ARGV[2])
local rate = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
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
