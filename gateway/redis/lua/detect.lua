-- Close every visit of one tenant whose deadline (last event + timeout) has passed, then re-check
-- and emit (or suppress) every delayed trigger that is due (docs/triggers.md, Trigger policies).
-- ARGV: the tenant's limits (arguments.TenantLimits), then the batch size: at most that many of
-- each per call. Atomic: two processes running this at once, or a process killed while waiting
-- for the answer, can neither close a visit nor release a delayed trigger twice, nor leave either
-- half done.
-- Returns {the larger of visits closed and delayed triggers released, largest lag in ms past a
-- deadline, tally [name, count, ...]} (results.DetectResult); the tally also holds the closes
-- done by ingest and the orders attributed since the last call, so somebody counts them once.
local limits, first_item = {{TenantLimits}}
local batch = tonumber(ARGV[first_item])
local now = NOW

-- Why a delayed trigger no longer applies, in the order docs/triggers.md gives; nil: it does.
local function recheck(cid, ty, closed_at, rsid)
  local c = redis.call('HMGET', K_contact(cid), 'orderAt', 'cartId')
  local ordered = tonumber(c[1])
  if ordered and ordered >= closed_at then return 'ordered' end
  if ty == ABANDONED_CART
    and (c[2] ~= rsid or redis.call('HEXISTS', K_cart(rsid), 'order') == 1) then
    return 'converted'
  end
  if redis.call('HEXISTS', K_contact(cid), V_START) == 1 then return 'returned' end
  return policy_reason(cid, ty, now, limits)
end

local function release(id)
  local job = redis.call('HGET', K_pending_jobs, id)
  redis.call('ZREM', K_pending, id)
  redis.call('HDEL', K_pending_jobs, id)
  if not job then return end
  local cid, ty, start, last, n, closed_at, rsid =
    string.match(job, '^([^|]*)|([^|]*)|(%d+)|(%d+)|(%d+)|(%d+)|(.*)$')
  cid = redis.call('GET', K_merged_into(cid)) or cid -- stitched meanwhile
  local ck = K_contact(cid)
  if redis.call('HGET', ck, 'pending') == id then redis.call('HDEL', ck, 'pending') end
  local who = contact_identity(cid)
  if not who.reachable then return end -- the contact expired meanwhile
  local reason = recheck(cid, ty, tonumber(closed_at), rsid)
  if reason then
    suppress(ty, reason)
    return
  end
  local cart = nil
  if ty == ABANDONED_CART then cart = redis.call('HMGET', ck, 'cart', 'cartId') end
  local v = {start = tonumber(start), last = tonumber(last), n = tonumber(n)}
  emit_trigger(cid, ty, v, who, cart, now, limits)
end

local lag = 0
local due = redis.call('ZRANGEBYSCORE', K_visits, '-inf', now, 'WITHSCORES', 'LIMIT', 0, batch)
for j = 1, #due, 2 do
  lag = math.max(lag, now - tonumber(due[j + 1]))
  close_visit(due[j], now, limits)
end
local held = redis.call('ZRANGEBYSCORE', K_pending, '-inf', now, 'WITHSCORES', 'LIMIT', 0, batch)
for j = 1, #held, 2 do
  lag = math.max(lag, now - tonumber(held[j + 1]))
  release(held[j])
end
local tally = redis.call('HGETALL', K_tally)
redis.call('DEL', K_tally)
return {math.max(#due, #held) / 2, lag, tally}
