-- POST /v1/orders: store validated orders of one tenant, each atomically with its contact.
-- ARGV: the tenant's limits (arguments.TenantLimits), then one JSON {nc (a fresh contact id),
-- order} per order. Returns "a|<STATUS>" per order, or "e|<error>" for an order whose writes
-- failed (lib_errors.lua: a damaged key fails its order, not the call) (results.EventResult).
local limits, first_item = {{TenantLimits}}
local results = {}
for i = first_item, #ARGV do
  local env = cjson.decode(ARGV[i])
  local ok, tag, note = pcall(apply_order, env.order, env.nc, limits)
  results[#results + 1] = ok and tag .. '|' .. note or failed(tag)
end
return results
