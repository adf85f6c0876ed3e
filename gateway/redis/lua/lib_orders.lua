-- Orders (docs/api.md, Orders and carts), shared by orders.lua (POST /v1/orders) and ingest.lua (order events), so
-- both paths store an order the same way, atomically. An order is three keys with one hash tag:
-- K_order (meta), K_order_fields (field -> JSON text), K_order_history (status history). Field
-- values are JSON made by Python and only concatenated here: cjson would re-encode numbers with
-- 14 significant digits.
local ORDER_HISTORY_MAX = {{ORDER_HISTORY_MAX}}
-- {order field, identifier kind} pairs (constants.ORDER_IDENTIFIERS).
local ORDER_IDENTIFIERS = {{ORDER_IDENTIFIERS}}

-- The order's contact: its own email, phone and externalCustomerId decide (linked together like
-- an event's identifiers, in KIND_ORDER order); `fallback` when none of them is known yet.
local function order_contact(fk, fallback, lim)
  local ids = {}
  for _, pair in ipairs(ORDER_IDENTIFIERS) do
    local value = redis.call('HGET', fk, pair[1])
    if value then ids[#ids + 1] = pair[2] .. ':' .. cjson.decode(value) end
  end
  if #ids == 0 then return fallback end
  local cid = resolve_contact(ids, fallback, lim)
  -- resolve_contact leaves identifiers already naming this contact as they are (ingest renews
  -- their TTLs with the contact's); an order is activity of the contact too.
  for _, ident in ipairs(ids) do redis.call('EXPIRE', K_identifier(ident), lim.contact_ttl) end
  local ck = K_contact(cid)
  redis.call('HSETNX', ck, 'created', NOW)
  redis.call('HSET', ck, 'updated', NOW)
  redis.call('EXPIRE', ck, lim.contact_ttl)
  return cid
end

local function order_json(fk)
  local raw = redis.call('HGETALL', fk)
  local parts = {}
  for j = 1, #raw, 2 do parts[#parts + 1] = cjson.encode(raw[j]) .. ':' .. raw[j + 1] end
  return '{' .. table.concat(parts, ',') .. '}'
end

-- Append the trigger `order<STATUS>` (format shared with the trigger feed and webhooks).
local function order_trigger(o, cid, status, oid, fk)
  local who = contact_identity(cid)
  local email, phone = redis.call('HGET', fk, 'email'), redis.call('HGET', fk, 'phone')
  local kind = 'order' .. status
  local head = cjson.encode({
    id = o.tid, type = kind, tenant = TENANT, createdAt = o.at,
    externalOrderId = o.eoid, orderId = oid, contactId = cid,
    email = email and cjson.decode(email) or who.email or cjson.null,
    phone = phone and cjson.decode(phone) or who.phone or cjson.null})
  append_trigger(kind, string.sub(head, 1, -2) .. ',"contact":' .. contact_json(cid, who)
    .. ',"order":' .. order_json(fk) .. '}')
end

local function clear_cart(cid, rsid)
  if cid and redis.call('HGET', K_contact(cid), 'cartId') == rsid then
    release_cart(cid)
    redis.call('HDEL', K_contact(cid), 'cart', 'cartAt', 'cartId')
  end
end

-- The cart state `rsid` was bought by order `eoid`: remember it, clear it from its contact, name
-- it on the order. An order can beat its cart's beacon (a back-end call against a page's
-- request), so a state not seen yet is made with only its order: the late cartUpdated then finds
-- it bought (ingest.lua) instead of a current cart. A state already bought by another order keeps
-- that order, and this one converts nothing.
local function convert_cart(rsid, eoid, cid, lim)
  clear_cart(cid, rsid)
  local sk = K_cart(rsid)
  local bought = redis.call('HGET', sk, 'order')
  if bought and bought ~= eoid then return end
  if not bought then
    redis.call('HSET', sk, 'order', eoid, 'orderAt', NOW)
    redis.call('EXPIRE', sk, lim.cart_ttl)
    clear_cart(redis.call('HGET', sk, 'contact'), rsid)
  end
  redis.call('HSET', K_order(eoid), 'cart', rsid)
end

-- RFM (docs/api.md, RFM) follows the orders whose current status is DELIVERED, with their current
-- totalCost and date. The contact's :rfmo hash holds the share each counted order added to its
-- :rfm figures, "<totalCost>|<date ms>|<date JSON>", and the order's meta `counted` names that
-- contact; so a CANCELLED (or any status but DELIVERED), a corrected total or date, or a move to
-- another contact takes back exactly what the order added, and a retry adds nothing.
local function rfm_share(mk, fk)
  return (redis.call('HGET', fk, 'totalCost') or '0') .. '|'
    .. (redis.call('HGET', mk, 'dms') or '') .. '|' .. (redis.call('HGET', fk, 'date') or '')
end

local function split_share(share) return string.match(share, '^([^|]*)|([^|]*)|(.*)$') end

-- The contact's latest order date, read again from its shares after one is taken back (a contact
-- has few DELIVERED orders).
local function rfm_last(cid)
  local rk = K_contact_rfm(cid)
  local best, last = nil, nil
  for _, share in ipairs(redis.call('HVALS', K_contact_rfmo(cid))) do
    local _, dms, date = split_share(share)
    if dms ~= '' and (not best or tonumber(dms) > tonumber(best)) then best, last = dms, date end
  end
  if best then
    redis.call('HSET', rk, 'lastMs', best, 'last', last)
  else
    redis.call('HDEL', rk, 'lastMs', 'last')
  end
end

local function update_rfm(eoid, cid, status, counted, mk, fk, lim)
  local share = status == 'DELIVERED' and rfm_share(mk, fk) or nil
  local was = counted and redis.call('HGET', K_contact_rfmo(counted), eoid) or nil
  if was == share and (not was or counted == cid) then return end -- counted as it is, or not
  if was then -- take back what it added
    local rk = K_contact_rfm(counted)
    redis.call('HDEL', K_contact_rfmo(counted), eoid)
    if redis.call('HINCRBY', rk, 'count', -1) <= 0 then
      -- none left: no float residue of subtracted revenues, and no share rfm_last could find to
      -- write into a key without its TTL
      redis.call('DEL', rk, K_contact_rfmo(counted))
    else
      local cost = split_share(was)
      redis.call('HINCRBYFLOAT', rk, 'revenue', '-' .. cost)
    end
  end
  if share then
    local rk = K_contact_rfm(cid)
    local cost, dms, date = split_share(share)
    redis.call('HSET', K_contact_rfmo(cid), eoid, share)
    redis.call('HINCRBY', rk, 'count', 1)
    redis.call('HINCRBYFLOAT', rk, 'revenue', cost)
    local last = tonumber(redis.call('HGET', rk, 'lastMs'))
    if dms ~= '' and (not last or tonumber(dms) > last) then
      redis.call('HSET', rk, 'lastMs', dms, 'last', date)
    end
    redis.call('EXPIRE', rk, lim.contact_ttl)
    redis.call('EXPIRE', K_contact_rfmo(cid), lim.contact_ttl)
    redis.call('HSET', mk, 'counted', cid)
  else
    redis.call('HDEL', mk, 'counted')
  end
  if was then rfm_last(counted) end
end

-- An order ends its contact's watches of the products it holds (items' externalItemId): no
-- priceDrop or backInStock for what was bought since the view; a later view watches again
-- (docs/triggers.md, Price drops and back in stock).
local function end_watches(cid, fk)
  local items = redis.call('HGET', fk, 'items')
  local ok, list = pcall(cjson.decode, items or '[]')
  if not ok or type(list) ~= 'table' then return end
  for _, item in ipairs(list) do
    local id = type(item) == 'table' and item.externalItemId
    if type(id) == 'number' and id == math.floor(id) then id = string.format('%d', id) end
    if type(id) == 'string' then redis.call('ZREM', K_product_watchers(id), cid) end
  end
end

-- Store the order change `o` (orders.envelope in Python). `fallback` is the contact when the order
-- names none known (the event's contact, or a fresh id). Returns 'a', status, contact (stored, or
-- identical to what is stored) or 'i', reason, fallback (an order event that changes nothing).
-- lim: the tenant's limits (arguments.TenantLimits, read by the calling script).
local function apply_order(o, fallback, lim)
  local mk, fk, hk = K_order(o.eoid), K_order_fields(o.eoid), K_order_history(o.eoid)
  local meta = redis.call('HMGET', mk, 'status', 'oid', 'cart', 'counted', 'contact')
  local old = meta[1]
  if not old then
    if o.op == 'status' then return 'i', 'The order does not exist.', fallback end
    if o.miss then return 'i', o.miss, fallback end
  end
  local status = o.st or old
  local changed = status ~= old
  for name, value in pairs(o.f) do
    if redis.call('HGET', fk, name) ~= value then
      changed = true
      redis.call('HSET', fk, name, value)
    end
  end
  if not changed then -- a retried request: no second trigger
    return 'a', status, meta[5]
  end
  local cid = order_contact(fk, meta[5] or fallback, lim) -- an order keeps its contact
  local oid = meta[2] or o.oid
  redis.call('HSET', mk, 'status', status, 'oid', oid, 'contact', cid, 'updated', NOW)
  redis.call('HSETNX', mk, 'created', NOW)
  if o.dms then redis.call('HSET', mk, 'dms', o.dms) end
  if status ~= old then
    redis.call('RPUSH', hk, cjson.encode({status = status, at = o.at, source = o.src}))
    redis.call('LTRIM', hk, -ORDER_HISTORY_MAX, -1)
  end
  update_rfm(o.eoid, cid, status, meta[4], mk, fk, lim)
  -- a new order, not CANCELLED: what the trigger policies' `ordered` and `recentOrder` read
  if not old and status ~= 'CANCELLED' then redis.call('HSET', K_contact(cid), 'orderAt', NOW) end
  -- lib_attribution.lua: read before the order converts its cart
  local attributed = not old and status ~= 'CANCELLED' and attribution_of(cid, fk, lim)
  if status ~= 'CANCELLED' then end_watches(cid, fk) end
  if status ~= 'CANCELLED' and not meta[3] then
    local rsid = redis.call('HGET', fk, 'recycleStateId')
    if rsid then
      convert_cart(cjson.decode(rsid), o.eoid, cid, lim)
    elseif not old then -- the time rule only for a new order: an update is no new purchase
      local cart = redis.call('HMGET', K_contact(cid), 'cartId', 'cartAt')
      if cart[1] and NOW - tonumber(cart[2]) <= lim.purchase_window_ms then
        convert_cart(cart[1], o.eoid, cid, lim)
      end
    end
  end
  -- The open visit (if any) learns of the order: abandonedBrowse needs "no order". An order from
  -- a back-end is no site activity, so it neither opens nor extends a visit.
  local last = tonumber(redis.call('HGET', K_contact(cid), V_LAST))
  if last and NOW - last < lim.visit_timeout_ms then
    redis.call('HINCRBY', K_contact(cid), VISIT .. 'o', 1)
  end
  -- the contact's orders, for its export and erasure (docs/privacy.md)
  redis.call('SADD', K_contact_orders(cid), o.eoid)
  for _, key in ipairs({mk, fk, hk, K_contact_orders(cid)}) do
    redis.call('EXPIRE', key, lim.contact_ttl)
  end
  order_trigger(o, cid, status, oid, fk)
  if attributed then
    attribute_order(o.eoid, mk, fk, status, cid, attributed)
  elseif status == 'CANCELLED' and old ~= 'CANCELLED' then
    unattribute_order(mk)
  end
  return 'a', status, cid
end
