-- POST /v1/orders: store validated orders of one tenant, each atomically with its contact.
-- ARGV: the tenant's limits (arguments.TenantLimits), then one JSON {nc (a fresh contact id),
-- order, fwd (with destinations: the order as received, JSON text)} per order; a stored order is
-- queued for the destinations in its own step (lib_destinations.lua). Returns "a|<STATUS>" per
-- order, "s" for one naming a suppressed identifier, or "e|<error>" for an order whose writes
-- failed (lib_errors.lua: a damaged key fails its order, not the call) (results.EventResult).
local limits, first_item = {{TenantLimits}}
local dests = destination_queues(limits.destinations)
local results = {}
local suppressing = redis.call('SCARD', K_suppressed) > 0

-- Whether the order names a suppressed identifier (as sent, or as stored before).
local function order_suppressed(o)
  local ids = {}
  for _, pair in ipairs(ORDER_IDENTIFIERS) do
    local value = o.f[pair[1]] or redis.call('HGET', K_order_fields(o.eoid), pair[1])
    if value then ids[#ids + 1] = pair[2] .. ':' .. cjson.decode(value) end
  end
  return any_of(ids, suppressed_among({ids}))
end

for i = first_item, #ARGV do
  local env = cjson.decode(ARGV[i])
  if suppressing and order_suppressed(env.order) then
    results[#results + 1] = 's'
  else
    local ok, tag, note = pcall(apply_order, env.order, env.nc, limits)
    if ok and tag == 'a' and env.fwd then forward(dests, 'o', nil, env.fwd) end
    results[#results + 1] = ok and tag .. '|' .. note or failed(tag)
  end
end
return results
