-- POST /v1/orders: store validated orders of one tenant, each atomically with its contact.
-- ARGV: prefix, now_ms, contact_ttl_s, visit_timeout_ms, recent_views, contact_events,
--       cart_ttl_s, cart_window_ms, then one JSON {nc (a fresh contact id), order} per order.
-- Returns "a|<contactId>|<STATUS>" per order.
local now = tonumber(ARGV[2])
local lim = {now = now, ttl = tonumber(ARGV[3]), timeout = tonumber(ARGV[4]),
             views = tonumber(ARGV[5]), events = tonumber(ARGV[6]),
             cart_ttl = tonumber(ARGV[7]), window = tonumber(ARGV[8])}
local results = {}
for i = 9, #ARGV do
  local env = cjson.decode(ARGV[i])
  local tag, note, cid = apply_order(env.order, env.nc, lim)
  results[#results + 1] = tag .. '|' .. cid .. '|' .. note
end
return results
