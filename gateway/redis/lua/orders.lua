-- POST /v1/orders: store validated orders of one tenant, each atomically with its contact.
-- ARGV: the tenant's limits (arguments.TenantLimits), then one JSON {nc (a fresh contact id),
-- order, fwd (with destinations: the order as received, JSON text)} per order; a stored order is
-- queued for the destinations in its own step (lib_destinations.lua). Returns "a|<STATUS>" per order, or "e|<error>" for an order whose writes
-- failed (lib_errors.lua: a damaged key fails its order, not the call) (results.EventResult).
local limits, first_item = {{TenantLimits}}
local dests = destination_queues(limits.destinations)
local results = {}
for i = first_item, #ARGV do
  local env = cjson.decode(ARGV[i])
  local ok, tag, note = pcall(apply_order, env.order, env.nc, limits)
  if ok and tag == 'a' and env.fwd then forward(dests, 'o', nil, env.fwd) end
  results[#results + 1] = ok and tag .. '|' .. note or failed(tag)
end
return results
