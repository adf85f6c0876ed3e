-- Shared by every script (scripts.py prepends it). Every ARGV starts with the tenant prefix and the
-- time of the call (arguments.py): P and NOW.
{{ARGS_HEAD}}
-- The key builders (keys.py KEYSPACE; a key's parts as its arguments): K_events, K_cart(rsid),
-- K_contact(cid), K_contact_ev(cid)..., K_contact_keys(cid) (all that stitching moves), TENANT.
{{KEYSPACE}}
-- eventTypeKey -> its short code: a visit's counter, and (LIST_CODES) a contact's :ev entries.
local EVENT_CODES = {{EVENT_CODES}}
local LIST_CODES = {{LIST_CODES}}

local function trim_views(cid, cap)
  local extra = redis.call('ZCARD', K_contact_pv(cid)) - cap
  if extra > 0 then
    local old = redis.call('ZPOPMIN', K_contact_pv(cid), extra)
    for j = 1, #old, 2 do redis.call('HDEL', K_contact_pvd(cid), old[j]) end
  end
end

-- "type-or-code|<ms>-<seq>" entries of a contact's event list, newest first.
local function newer(a, b)
  local ams, aseq = string.match(a, '|(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '|(%d+)-(%d+)$')
  if ams ~= bms then return tonumber(ams) > tonumber(bms) end
  return tonumber(aseq) > tonumber(bseq)
end

local function merge_events(from, into, cap)
  local fk, ik = K_contact_ev(from), K_contact_ev(into)
  local all = redis.call('LRANGE', ik, 0, -1)
  for _, entry in ipairs(redis.call('LRANGE', fk, 0, -1)) do all[#all + 1] = entry end
  if #all == 0 then return end
  table.sort(all, newer)
  redis.call('DEL', ik)
  for j = 1, math.min(#all, cap) do redis.call('RPUSH', ik, all[j]) end
end

local function merge_visit(from, into, timeout)
  local f = redis.call('HGETALL', K_contact_visit(from))
  if #f == 0 then return end
  local vk = K_contact_visit(into)
  local start = tonumber(redis.call('HGET', vk, 'start'))
  for j = 1, #f, 2 do
    local name, value = f[j], tonumber(f[j + 1])
    if name == 'start' then
      if not start or value < start then redis.call('HSET', vk, 'start', value) end
    elseif name == 'last' then
      local last = tonumber(redis.call('HGET', vk, 'last'))
      if not last or value > last then redis.call('HSET', vk, 'last', value) end
    else
      redis.call('HINCRBY', vk, name, value)
    end
  end
  redis.call('ZREM', K_visits, from)
  redis.call('ZADD', K_visits, tonumber(redis.call('HGET', vk, 'last')) + timeout, into)
end

-- Stitching moves RFM figures with the rest of the contact, and the shares of its counted
-- orders (lib_orders.lua update_rfm), whose `counted` then names the contact holding them.
local function merge_rfm(from, into)
  local f = redis.call('HMGET', K_contact_rfm(from), 'count', 'revenue', 'lastMs', 'last')
  if not f[1] then return end
  local rk = K_contact_rfm(into)
  redis.call('HINCRBY', rk, 'count', f[1])
  redis.call('HINCRBYFLOAT', rk, 'revenue', f[2])
  local mine = tonumber(redis.call('HGET', rk, 'lastMs'))
  if f[3] and (not mine or tonumber(f[3]) > mine) then
    redis.call('HSET', rk, 'lastMs', f[3], 'last', f[4])
  end
  local shares = redis.call('HGETALL', K_contact_rfmo(from))
  for j = 1, #shares, 2 do
    redis.call('HSET', K_contact_rfmo(into), shares[j], shares[j + 1])
    local mk = K_order(shares[j])
    -- HGET, not HSET straight away: an order that has expired must not come back without a TTL
    if redis.call('HGET', mk, 'counted') == from then redis.call('HSET', mk, 'counted', into) end
  end
end

-- Stitch contact `from` into `into`: identifiers, views, cart (the newer), events, open visit.
local function merge_contact(from, into, limits)
  local ids = redis.call('HGETALL', K_contact_ids(from))
  for j = 1, #ids, 2 do
    redis.call('SET', K_identifier(ids[j]), into, 'EX', limits.contact_ttl)
    redis.call('HSETNX', K_contact_ids(into), ids[j], ids[j + 1])
  end
  local pv = redis.call('ZRANGE', K_contact_pv(from), 0, -1, 'WITHSCORES')
  for j = 1, #pv, 2 do
    local mine = redis.call('ZSCORE', K_contact_pv(into), pv[j])
    if not mine or tonumber(mine) < tonumber(pv[j + 1]) then
      redis.call('ZADD', K_contact_pv(into), pv[j + 1], pv[j])
      redis.call('HSET', K_contact_pvd(into), pv[j], redis.call('HGET', K_contact_pvd(from), pv[j]))
    end
  end
  trim_views(into, limits.recent_views)
  local cv = redis.call('ZRANGE', K_contact_cv(from), 0, -1, 'WITHSCORES')
  for j = 1, #cv, 2 do redis.call('ZADD', K_contact_cv(into), 'GT', cv[j + 1], cv[j]) end
  redis.call('ZREMRANGEBYRANK', K_contact_cv(into), 0, -(limits.recent_views + 1))
  local fc = redis.call('HMGET', K_contact(from), 'cart', 'cartAt', 'cartId', 'created')
  local ic = redis.call('HMGET', K_contact(into), 'cartAt', 'created')
  if fc[1] and (not ic[1] or tonumber(fc[2]) > tonumber(ic[1])) then
    redis.call('HSET', K_contact(into), 'cart', fc[1], 'cartAt', fc[2], 'cartId', fc[3])
    if redis.call('EXISTS', K_cart(fc[3])) == 1 then
      redis.call('HSET', K_cart(fc[3]), 'contact', into)
    end
  end
  if fc[4] and (not ic[2] or tonumber(fc[4]) < tonumber(ic[2])) then
    redis.call('HSET', K_contact(into), 'created', fc[4])
  end
  merge_events(from, into, limits.contact_events)
  merge_visit(from, into, limits.visit_timeout_ms)
  merge_rfm(from, into)
  local orders = redis.call('SMEMBERS', K_contact_orders(from))
  if #orders > 0 then redis.call('SADD', K_contact_orders(into), unpack(orders)) end
  -- the contacts stitched into `into`, whose events in the stream name them (erase.lua)
  local stitched = redis.call('SMEMBERS', K_contact_stitched(from))
  redis.call('SADD', K_contact_stitched(into), from, unpack(stitched))
  local into_keys = K_contact_keys(into)
  for i, key in ipairs(K_contact_keys(from)) do
    redis.call('DEL', key)
    if redis.call('EXISTS', into_keys[i]) == 1 then
      redis.call('EXPIRE', into_keys[i], limits.contact_ttl)
    end
  end
  -- The stream's events (and older answers) still name `from`: readers follow this to `into`.
  redis.call('SET', K_merged_into(from), into, 'EX', limits.contact_ttl)
end

-- The contact of `ids` ("kind:value", most decisive first): the first identifier already known
-- decides, every other contact they name is stitched into it, and all of them then point to it.
local function resolve_contact(ids, fresh, limits)
  local cid = nil
  local others = {}
  local keys = {}
  for i, ident in ipairs(ids) do keys[i] = K_identifier(ident) end
  local named = redis.call('MGET', unpack(keys)) -- one call for all (false: unknown)
  for i = 1, #ids do
    local c = named[i]
    if c then
      if not cid then cid = c elseif c ~= cid then others[c] = true end
    end
  end
  cid = cid or fresh
  for other in pairs(others) do merge_contact(other, cid, limits) end
  for i, ident in ipairs(ids) do
    -- An identifier already naming this contact is in its :ids; ingest.lua renews its TTL.
    if named[i] ~= cid then
      redis.call('SET', K_identifier(ident), cid, 'EX', limits.contact_ttl)
      redis.call('HSETNX', K_contact_ids(cid), ident, NOW)
    end
  end
  return cid
end

-- Visits and their triggers (docs/triggers.md). A visit is closed exactly once: by the detector when its
-- deadline in P:visits has passed, or by the contact's next event if that comes first. Closing,
-- deciding and XADDing the trigger happen inside one script, so no crash can split them.
local REACHABLE = {{REACHABLE_KINDS}}
local PUBLIC_NAMES = {{PUBLIC_NAMES}}
local TRIGGERS_MAXLEN = {{TRIGGERS_MAXLEN}}
-- The trigger types of a closed visit (constants.VISIT_TRIGGERS), and the P:tally fields.
local ABANDONED_CART, ABANDONED_BROWSE, ABANDONED_CATEGORY, ABANDONED_VISIT = {{VISIT_TRIGGERS}}
local TALLY_CLOSED, TALLY_ANONYMOUS, TALLY_TRIGGER = {{TALLY}}

-- ISO-8601 UTC with milliseconds; Redis' Lua has no os.date (civil-from-days, H. Hinnant).
local function iso(ms)
  ms = math.floor(ms)
  local secs = math.floor(ms / 1000)
  local days = math.floor(secs / 86400)
  local rem = secs - days * 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
                          - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local day = doy - math.floor((153 * mp + 2) / 5) + 1
  local month = mp < 10 and mp + 3 or mp - 9
  local year = yoe + era * 400 + (month <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', year, month, day,
                       math.floor(rem / 3600), math.floor(rem % 3600 / 60), rem % 60, ms % 1000)
end

-- The contact's identifiers as JSON {publicName: [values, oldest first]}, whether one of them
-- reaches a person, and the first email and phone. Values are strings: cjson encodes them safely.
local function contact_identity(cid)
  local raw = redis.call('HGETALL', K_contact_ids(cid))
  local list = {}
  for j = 1, #raw, 2 do list[#list + 1] = {raw[j], tonumber(raw[j + 1])} end
  table.sort(list, function(a, b)
    if a[2] ~= b[2] then return a[2] < b[2] end
    return a[1] < b[1]
  end)
  local groups, order, found = {}, {}, {reachable = false}
  for _, item in ipairs(list) do
    local kind, value = string.match(item[1], '^([^:]+):(.*)$')
    if REACHABLE[kind] then found.reachable = true end
    if (kind == 'email' or kind == 'phone') and not found[kind] then found[kind] = value end
    local name = PUBLIC_NAMES[kind] or kind
    if not groups[name] then
      groups[name] = {}
      order[#order + 1] = name
    end
    table.insert(groups[name], cjson.encode(value))
  end
  local parts = {}
  for _, name in ipairs(order) do
    parts[#parts + 1] = cjson.encode(name) .. ':[' .. table.concat(groups[name], ',') .. ']'
  end
  found.json = '{' .. table.concat(parts, ',') .. '}'
  return found
end

-- The first trigger type (docs/triggers.md, The trigger) that applies to a closed visit `v`, and the cart state key
-- to mark when it is abandonedCart (at most once per recycleStateId).
local function trigger_type(cid, v)
  local cart = redis.call('HMGET', K_contact(cid), 'cart', 'cartId', 'cartNotified')
  if cart[1] and cart[2] and cart[3] ~= cart[2] then
    local mark = redis.call('HMGET', K_cart(cart[2]), 'order', 'notified')
    if not mark[1] and not mark[2] then return ABANDONED_CART, cart end
  end
  if (v.o or 0) > 0 then return nil end
  local pv = v[EVENT_CODES.productViewed] or 0
  local cv = v[EVENT_CODES.productCategoryViewed] or 0
  local pg = v[EVENT_CODES.pageViewed] or 0
  if pv > 0 then return ABANDONED_BROWSE end
  if cv > 0 then return ABANDONED_CATEGORY end
  if pg > 0 and pg == v.n then return ABANDONED_VISIT end
  return nil
end

-- Build and append the trigger of a visit by concatenating the stored JSON (cjson would round
-- the shop's numbers to 14 digits).
-- A trigger's `contact` object, from contact_identity's answer.
local function contact_json(cid, who)
  return '{"id":' .. cjson.encode(cid)
    .. ',"email":' .. (who.email and cjson.encode(who.email) or 'null')
    .. ',"phone":' .. (who.phone and cjson.encode(who.phone) or 'null')
    .. ',"identifiers":' .. who.json .. '}'
end

-- Every trigger, visit or order, reaches the stream and the tally (read into /metrics) here.
local function append_trigger(ty, body)
  redis.call('XADD', K_triggers, 'MAXLEN', '~', TRIGGERS_MAXLEN, '*', 'type', ty, 'trigger', body)
  redis.call('HINCRBY', K_tally, TALLY_TRIGGER .. ty, 1)
end

-- A product view as JSON from its :pvd value: whole JSON, or the compact
-- `<lag>|<currency>|<other fields>` of recommendations.py (ids there need no JSON escaping).
local function view_json(pid, score, stored)
  if string.sub(stored, 1, 1) == '{' then return stored end
  local lag, currency, rest = string.match(stored, '^(-?%d+)|([^|]*)|(.*)$')
  return '{"productId":"' .. pid .. '"' .. (rest ~= '' and ',' .. rest or '')
    .. (currency ~= '' and ',"currencyCode":"' .. currency .. '"' or '')
    .. ',"viewedAt":"' .. iso(score - tonumber(lag)) .. '"}'
end

local function emit_trigger(cid, ty, v, who, cart, now)
  local ck = K_contact(cid)
  local current = cart and cart[1] or redis.call('HGET', ck, 'cart')
  local products = {}
  local pv = redis.call('ZREVRANGEBYSCORE', K_contact_pv(cid), v.last, v.start, 'WITHSCORES')
  for j = 1, #pv, 2 do
    local view = redis.call('HGET', K_contact_pvd(cid), pv[j])
    if view then products[#products + 1] = view_json(pv[j], tonumber(pv[j + 1]), view) end
  end
  local categories = {}
  local cv = redis.call('ZREVRANGEBYSCORE', K_contact_cv(cid), v.last, v.start, 'WITHSCORES')
  for j = 1, #cv, 2 do
    categories[#categories + 1] = '{"productCategoryId":' .. cjson.encode(cv[j])
      .. ',"viewedAt":"' .. iso(tonumber(cv[j + 1])) .. '"}'
  end
  local id = 'visit:' .. cid .. ':' .. string.format('%d', v.start)
  local body = '{"id":' .. cjson.encode(id) .. ',"type":"' .. ty .. '","tenant":'
    .. cjson.encode(TENANT) .. ',"createdAt":"' .. iso(now) .. '"'
    .. ',"contact":' .. contact_json(cid, who)
    .. ',"visit":{"startedAt":"' .. iso(v.start) .. '","endedAt":"' .. iso(v.last)
    .. '","events":' .. string.format('%d', v.n or 0) .. '}'
    .. ',"cart":' .. (current or 'null')
    .. ',"products":[' .. table.concat(products, ',') .. ']'
    .. ',"categories":[' .. table.concat(categories, ',') .. ']}'
  append_trigger(ty, body)
  if ty == ABANDONED_CART then
    redis.call('HSET', ck, 'cartNotified', cart[2])
    local state = K_cart(cart[2])
    if redis.call('EXISTS', state) == 1 then redis.call('HSET', state, 'notified', id) end
  end
end

-- Close the contact's visit (if open): at most one trigger, tallied in P:tally for /metrics.
-- Returns the trigger type, or nil.
local function close_visit(cid, now)
  redis.call('ZREM', K_visits, cid)
  local vk = K_contact_visit(cid)
  local raw = redis.call('HGETALL', vk)
  if #raw == 0 then return nil end
  redis.call('DEL', vk)
  local v = {}
  for j = 1, #raw, 2 do v[raw[j]] = tonumber(raw[j + 1]) end
  redis.call('HINCRBY', K_tally, TALLY_CLOSED, 1)
  local who = contact_identity(cid)
  if not who.reachable then
    redis.call('HINCRBY', K_tally, TALLY_ANONYMOUS, 1)
    return nil
  end
  local ty, cart = trigger_type(cid, v)
  if not ty then return nil end
  emit_trigger(cid, ty, v, who, cart, now)
  return ty
end

-- Close the contact's visit when it has been idle `timeout` ms but the detector has not yet got
-- to it, so its trigger reflects the visit as it was, before this event changes the contact.
-- Returns the open visit's last event time (nil: none open now), for open_visit.
local function close_idle_visit(cid, now, timeout)
  local last = tonumber(redis.call('HGET', K_contact_visit(cid), 'last'))
  if last and now - last >= timeout then
    close_visit(cid, now)
    return nil
  end
  return last
end

-- Count an event into the contact's visit: the open one (its last event at `last`, from
-- close_idle_visit), or a new one. True when it opened one (a new hash: the caller gives it
-- its TTL).
local function open_visit(cid, counter, now, timeout, last)
  local vk = K_contact_visit(cid)
  if last then
    redis.call('HSET', vk, 'last', now)
    redis.call('HINCRBY', vk, 'n', 1)
    redis.call('HINCRBY', vk, counter, 1)
  else
    redis.call('HSET', vk, 'start', now, 'last', now, 'n', 1, counter, 1)
  end
  redis.call('ZADD', K_visits, now + timeout, cid)
  return last == nil
end

-- Suppressed identifiers (docs/privacy.md): K_suppressed holds the SHA-1 of each "kind:value".
-- Whether any of `ids` is suppressed: one SMISMEMBER, asked only while the tenant has any.
local function any_suppressed(ids)
  local digests = {}
  for i, ident in ipairs(ids) do digests[i] = redis.sha1hex(ident) end
  for _, found in ipairs(redis.call('SMISMEMBER', K_suppressed, unpack(digests))) do
    if found == 1 then return true end
  end
  return false
end
