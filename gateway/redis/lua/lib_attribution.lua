-- Attribution (docs/triggers.md, Attribution): an order (not CANCELLED) within the tenant's
-- attribution window after a trigger reached its contact is attributed to one trigger, the
-- abandonedCart of the cart it converts, else the contact's last trigger (lib.lua
-- trigger_reached); a triggerConverted trigger tells the stream, and the order's meta field
-- `attributed` ("<trigger ms>|<type>|<currency>|<totalCost>") lets a later CANCELLED take the
-- order back out of the day's figures. Used by lib_orders.lua apply_order.
local TRIGGER_CONVERTED = {{TRIGGER_CONVERTED}}
local NO_CURRENCY = 'XXX' -- ISO 4217's code for "no currency": an order without one

-- The cart an order converts: the recycleStateId it names, else the contact's current cart if
-- recent enough (lib_orders.lua convert_cart's time rule). `foreign`: it names a cart this tenant
-- never saw (another tenant's), which attributes nothing.
local function converted_cart(cid, fk, lim)
  local named = redis.call('HGET', fk, 'recycleStateId')
  if named then
    local rsid = cjson.decode(named)
    return rsid, redis.call('EXISTS', K_cart(rsid)) == 0
  end
  local cart = redis.call('HMGET', K_contact(cid), 'cartId', 'cartAt')
  if cart[1] and NOW - tonumber(cart[2]) <= lim.purchase_window_ms then return cart[1], false end
  return nil, false
end

-- The trigger a new order of contact `cid` is attributed to, {id, type, at}; nil: none. Read
-- before the order converts its cart (which leaves the cart's `notified` mark as it is).
local function attribution_of(cid, fk, lim)
  local rsid, foreign = converted_cart(cid, fk, lim)
  if foreign then return nil end
  if rsid then
    local mark = redis.call('HMGET', K_cart(rsid), 'notified', 'notifiedAt')
    if mark[1] and mark[2] and NOW - tonumber(mark[2]) <= lim.attribution_ms then
      return {id = mark[1], type = ABANDONED_CART, at = tonumber(mark[2])}
    end
  end
  local last = redis.call('GET', K_last_trigger(cid))
  if not last then return nil end
  local id, ty, at = string.match(last, '^(.*)|([^|]*)|(%d+)$')
  if NOW - tonumber(at) > lim.attribution_ms then return nil end
  return {id = id, type = ty, at = tonumber(at)}
end

local function count_conversion(ty, at, currency, cost, sign)
  count_stat(at, ty .. '|converted', sign)
  count_stat(at, ty .. '|revenue|' .. currency, sign * cost, true)
end

-- The order `eoid` (meta `mk`, fields `fk`, its contact `cid`) is attributed to `trig`.
local function attribute_order(eoid, mk, fk, status, cid, trig)
  local currency = redis.call('HGET', fk, 'currency')
  currency = currency and cjson.decode(currency) or NO_CURRENCY
  local cost = redis.call('HGET', fk, 'totalCost') or '0'
  redis.call('HSET', mk, 'attributed', string.format('%d', trig.at) .. '|' .. trig.type .. '|'
             .. currency .. '|' .. cost)
  count_conversion(trig.type, trig.at, currency, tonumber(cost), 1)
  redis.call('HINCRBY', K_tally, TALLY_CONVERTED .. trig.type, 1)
  redis.call('HINCRBYFLOAT', K_tally, TALLY_REVENUE .. trig.type .. '|' .. currency, cost)
  local body = '{"id":' .. cjson.encode('converted:' .. eoid) .. ',"type":"' .. TRIGGER_CONVERTED
    .. '","tenant":' .. cjson.encode(TENANT) .. ',"createdAt":"' .. iso(NOW) .. '"'
    .. ',"trigger":{"id":' .. cjson.encode(trig.id) .. ',"type":' .. cjson.encode(trig.type)
    .. ',"createdAt":"' .. iso(trig.at) .. '"}'
    .. ',"order":{"externalOrderId":' .. cjson.encode(eoid) .. ',"totalCost":' .. cost
    .. ',"currency":' .. cjson.encode(currency) .. ',"status":' .. cjson.encode(status) .. '}'
    .. ',"contact":' .. contact_json(cid, contact_identity(cid)) .. '}'
  append_trigger(TRIGGER_CONVERTED, body)
end

-- The attributed order `mk` was CANCELLED: it leaves the figures of its trigger's day.
local function unattribute_order(mk)
  local was = redis.call('HGET', mk, 'attributed')
  if not was then return end
  redis.call('HDEL', mk, 'attributed')
  local at, ty, currency, cost = string.match(was, '^(%d+)|([^|]*)|([^|]*)|(.*)$')
  count_conversion(ty, tonumber(at), currency, tonumber(cost), -1)
end
