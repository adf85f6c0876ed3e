-- POST /v1/products: store validated products of one tenant in its catalog (docs/api.md,
-- Products). ARGV: arguments.CatalogArgs, then one JSON [productId, [field, JSON text, ...]] per
-- product (model/products.py): the fields given replace those stored, the others stay.
-- A product whose price fell (or was first given, or changed currency), or that came back in
-- stock, may concern its watchers: its fan-out is queued, due now, for fanout.lua to notify them
-- in the background (docs/triggers.md). One already under way starts over from its first
-- watcher (the state its watchers are compared with changed); its holder keeps it.
-- Returns "a" per product, or "e|<error>" for one whose writes failed (lib_errors.lua).
local _, first_item = {{CatalogArgs}}

local function may_notify(old, new)
  local price, was = tonumber(new[1]), tonumber(old[1])
  if price and (not was or price < was or new[2] ~= old[2]) then return true end
  return new[3] == '1' and old[3] ~= '1'
end

local function store_product(item)
  local pid, fields = item[1], item[2]
  local pk = K_product(pid)
  local old = redis.call('HMGET', pk, 'price', 'currencyCode', 'isInStock')
  redis.call('HSET', pk, 'updatedAt', NOW, unpack(fields))
  local new = redis.call('HMGET', pk, 'price', 'currencyCode', 'isInStock')
  if may_notify(old, new) then
    redis.call('ZADD', K_fanouts, 'NX', NOW, pid)
    redis.call('HDEL', K_fanout(pid), 'score', 'member')
  end
  return 'a'
end

local results = {}
for i = first_item, #ARGV do
  local ok, err = pcall(store_product, cjson.decode(ARGV[i]))
  results[#results + 1] = ok and 'a' or failed(err)
end
return results
