-- Shared by every script (scripts.py prepends it). Every ARGV starts with the tenant prefix and the
-- time of the call (arguments.py): P, and NOW (NOW_S as text: Redis' argument wherever it is one).
{{ARGS_HEAD}}
-- The key builders (keys.py KEYSPACE; a key's parts as its arguments): K_events, K_cart(rsid),
-- K_contact(cid), K_contact_ev(cid)..., K_contact_keys(cid) (all that stitching moves), TENANT.
{{KEYSPACE}}
-- eventTypeKey -> its short code: a visit's counter, and (LIST_DIGITS, LIST_CODES) a contact's
-- :ev entries (keys.py).
local EVENT_CODES = {{EVENT_CODES}}
local LIST_CODES, LIST_DIGITS = {{LIST_CODES}}, {{LIST_DIGITS}}
-- A contact's open visit: these fields of its hash, VISIT .. 'start', 'last', 'n', <code>...
-- (constants.py VISIT_FIELD, VISIT_FIELDS), named without their prefix in VISIT_NAMES.
local VISIT_FIELDS, VISIT_NAMES = {{VISIT_FIELDS}}, {{VISIT_NAMES}}
local VISIT = {{VISIT_FIELD}}
local V_START, V_LAST, V_N = VISIT .. 'start', VISIT .. 'last', VISIT .. 'n'

-- A contact's identifiers: fields '<IDENTIFIER_FIELD><kind>:<value>' of its hash, each the ms it
-- was first seen (constants.py). identifiers_of(cid): {ident, ms (text), ident, ms...}, as
-- HGETALL gives them.
local IDENTIFIER_FIELD = {{IDENTIFIER_FIELD}}
local IDENT_FROM = #IDENTIFIER_FIELD + 1

local function identifiers_of(cid)
  local raw = redis.call('HGETALL', K_contact(cid))
  local found = {}
  for j = 1, #raw, 2 do
    if string.sub(raw[j], 1, IDENT_FROM - 1) == IDENTIFIER_FIELD then
      found[#found + 1] = string.sub(raw[j], IDENT_FROM)
      found[#found + 1] = raw[j + 1]
    end
  end
  return found
end

-- The contact's open visit, {start =, last =, n =, <code> = ...} (numbers), and the fields it
-- has; nil when none is open.
local function read_visit(cid)
  local raw = redis.call('HMGET', K_contact(cid), unpack(VISIT_FIELDS))
  if not raw[1] then return nil end
  local v, fields = {}, {}
  for i, name in ipairs(VISIT_NAMES) do
    if raw[i] then
      v[name] = tonumber(raw[i])
      fields[#fields + 1] = VISIT_FIELDS[i]
    end
  end
  return v, fields
end

local function trim_views(cid, cap)
  local extra = redis.call('ZCARD', K_contact_pv(cid)) - cap
  if extra > 0 then
    local old = redis.call('ZPOPMIN', K_contact_pv(cid), extra)
    for j = 1, #old, 2 do redis.call('HDEL', K_contact_pvd(cid), old[j]) end
  end
end

-- The ms and sequence of the stream id an :ev entry names (its two forms: keys.py).
local function entry_id(entry)
  local ms, seq = string.match(entry, '|(%d+)-(%d+)$')
  if ms then return tonumber(ms), tonumber(seq) end
  return tonumber(string.sub(entry, 2, 14)), tonumber(string.sub(entry, 15))
end

-- Whether entry `a` names a later event than `b`: a contact's event list is newest first.
local function newer(a, b)
  local ams, aseq = entry_id(a)
  local bms, bseq = entry_id(b)
  if ams ~= bms then return ams > bms end
  return aseq > bseq
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
  local f = read_visit(from)
  if not f then return end
  local mine = read_visit(into) or {start = f.start, last = f.last}
  local last = math.max(f.last, mine.last)
  local merged = {V_START, string.format('%d', math.min(f.start, mine.start)),
                  V_LAST, string.format('%d', last)}
  for name, value in pairs(f) do
    if name ~= 'start' and name ~= 'last' then
      merged[#merged + 1] = VISIT .. name
      merged[#merged + 1] = string.format('%d', value + (mine[name] or 0))
    end
  end
  redis.call('HSET', K_contact(into), unpack(merged))
  redis.call('ZREM', K_visits, from)
  redis.call('ZADD', K_visits, last + timeout, into)
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

-- A cart state holds its cart's JSON only while the cart is not its contact's current cart: the
-- contact hash holds that one, so the JSON is kept once, not twice. When a contact's current cart
-- stops being current (replaced by another recycleStateId, emptied, bought, or left behind by
-- stitching), its JSON goes back to its state, if the state still exists and names this contact.
-- `unless` is a recycleStateId that is not leaving (the cart an event is about to replace).
local function release_cart(cid, unless)
  local current = redis.call('HMGET', K_contact(cid), 'cart', 'cartId')
  if not current[1] or not current[2] or current[2] == unless then return end
  local state = K_cart(current[2])
  if redis.call('HGET', state, 'contact') == cid then
    redis.call('HSET', state, 'cart', current[1])
  end
end

-- Stitching moves the contact's product watches (ingest.lua watch), of the products it viewed
-- or has in its cart, with their scores (the time, and what it was told: keys.py).
local function merge_watches(from, into)
  local products = redis.call('ZRANGE', K_contact_pv(from), 0, -1)
  local cart = redis.call('HGET', K_contact(from), 'cart')
  if cart then
    for _, line in ipairs(cjson.decode(cart).products) do products[#products + 1] = line.productId end
  end
  for _, pid in ipairs(products) do
    local wk = K_product_watchers(pid)
    local at = redis.call('ZSCORE', wk, from)
    if at then
      redis.call('ZREM', wk, from)
      redis.call('ZADD', wk, 'GT', at, into)
    end
  end
end

-- Stitch contact `from` into `into`: identifiers, views, cart (the newer), events, open visit.
local function merge_contact(from, into, limits)
  merge_watches(from, into) -- first: it reads `from`'s views and cart, which the rest moves
  local ids = identifiers_of(from)
  for j = 1, #ids, 2 do
    redis.call('SET', K_identifier(ids[j]), into, 'EX', limits.contact_ttl)
    redis.call('HSETNX', K_contact(into), IDENTIFIER_FIELD .. ids[j], ids[j + 1])
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
    release_cart(into)
    redis.call('HSET', K_contact(into), 'cart', fc[1], 'cartAt', fc[2], 'cartId', fc[3])
    if redis.call('EXISTS', K_cart(fc[3])) == 1 then
      redis.call('HSET', K_cart(fc[3]), 'contact', into)
    end
  elseif fc[1] then
    release_cart(from)
  end
  if fc[4] and (not ic[2] or tonumber(fc[4]) < tonumber(ic[2])) then
    redis.call('HSET', K_contact(into), 'created', fc[4])
  end
  merge_events(from, into, limits.contact_events)
  merge_visit(from, into, limits.visit_timeout_ms)
  merge_rfm(from, into)
  -- the cooldowns (lib.lua trigger_reached) hold for the stitched contact: the later time wins
  local times = redis.call('HGETALL', K_trigger_times(from))
  for j = 1, #times, 2 do
    local mine = tonumber(redis.call('HGET', K_trigger_times(into), times[j]))
    if not mine or mine < tonumber(times[j + 1]) then
      redis.call('HSET', K_trigger_times(into), times[j], times[j + 1])
    end
  end
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
-- decides, every other contact they name is stitched into it, and all of them then point to it;
-- `fallback` when none is known. Returns the contact, and whether it is new: none was known and
-- `fallback` is a new id (ingest.lua's fresh contact id), so none of its keys exists yet; a new
-- contact's identifier fields are returned too, for the caller's HSET of its profile to write.
local function resolve_contact(ids, fallback, limits, fallback_is_new)
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
  if not cid and fallback_is_new then
    local first_seen = {}
    local ttl = limits.ttl_arg or limits.contact_ttl
    for _, ident in ipairs(ids) do
      redis.call('SET', K_identifier(ident), fallback, 'EX', ttl)
      first_seen[#first_seen + 1] = IDENTIFIER_FIELD .. ident
      first_seen[#first_seen + 1] = NOW_S
    end
    return fallback, true, first_seen
  end
  cid = cid or fallback
  for other in pairs(others) do merge_contact(other, cid, limits) end
  for i, ident in ipairs(ids) do
    -- An identifier already naming this contact is in its hash; ingest.lua renews its TTL.
    if named[i] ~= cid then
      redis.call('SET', K_identifier(ident), cid, 'EX', limits.ttl_arg or limits.contact_ttl)
      redis.call('HSETNX', K_contact(cid), IDENTIFIER_FIELD .. ident, NOW_S)
    end
  end
  return cid, false
end

-- Visits and their triggers (docs/triggers.md). A visit is closed exactly once: by the detector when its
-- deadline in P:visits has passed, or by the contact's next event if that comes first. Closing,
-- deciding and XADDing the trigger happen inside one script, so no crash can split them.
local REACHABLE = {{REACHABLE_KINDS}}

-- Whether a trigger can reach contact `cid`: one of `ids` ("kind:value", an event's) or else of
-- its own identifiers is of a REACHABLE kind.
local function reachable(cid, ids)
  for _, ident in ipairs(ids) do
    if REACHABLE[string.match(ident, '^[^:]+')] then return true end
  end
  local own = identifiers_of(cid)
  for j = 1, #own, 2 do
    if REACHABLE[string.match(own[j], '^[^:]+')] then return true end
  end
  return false
end
local PUBLIC_NAMES = {{PUBLIC_NAMES}}
local TRIGGERS_MAXLEN = string.format('%d', {{TRIGGERS_MAXLEN}}) -- Redis' argument: text
-- how long a minute's counts are kept (keys.py `stats`; ingest.lua, refused.lua)
local STATS_SECONDS = {{STATS_SECONDS}}
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
-- reaches a person, and the first email, phone and externalCustomerId (kind `customer`). Values
-- are strings: cjson encodes them safely.
local function contact_identity(cid)
  local raw = identifiers_of(cid)
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
    if (kind == 'email' or kind == 'phone' or kind == 'customer') and not found[kind] then
      found[kind] = value
    end
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
    .. ',"externalCustomerId":' .. (who.customer and cjson.encode(who.customer) or 'null')
    .. ',"identifiers":' .. who.json .. '}'
end

-- Add to a figure of GET /v1/triggers/stats (`amount`, 1 if nil; a revenue is `fractional`): the
-- hash of the UTC day of `ms`, kept TRIGGER_STATS_TTL from its first figure (a field's first
-- write, which a new hash's always is, sets it: one command less per trigger).
local TRIGGER_STATS_TTL = {{TRIGGER_STATS_TTL}}
local stats_keys = {} -- ms -> its day's key: most figures of a call are of NOW
local function count_stat(ms, field, amount, fractional)
  local key = stats_keys[ms]
  if not key then
    key = K_trigger_stats(string.sub(iso(ms), 1, 10))
    stats_keys[ms] = key
  end
  local now = redis.call(fractional and 'HINCRBYFLOAT' or 'HINCRBY', key, field, amount or '1')
  if tonumber(now) == (amount or 1) then redis.call('EXPIRE', key, TRIGGER_STATS_TTL) end
end

-- Every trigger, visit or order, reaches the stream, the tally (read into /metrics) and the
-- day's figures here.
local function append_trigger(ty, body)
  redis.call('XADD', K_triggers, 'MAXLEN', '~', TRIGGERS_MAXLEN, '*', 'type', ty, 'trigger', body)
  redis.call('HINCRBY', K_tally, TALLY_TRIGGER .. ty, '1')
  count_stat(NOW, ty .. '|emitted')
end

-- Trigger policies (docs/triggers.md, Trigger policies): lim is the tenant's limits
-- (arguments.TenantLimits), whose delay_ms, cooldown_ms and recent_order_ms they read.
local TALLY_SUPPRESSED, TALLY_CONVERTED, TALLY_REVENUE = {{POLICY_TALLY}}

local function suppress(ty, reason)
  redis.call('HINCRBY', K_tally, TALLY_SUPPRESSED .. ty .. '|' .. reason, '1')
  count_stat(NOW, ty .. '|suppressed|' .. reason)
end

-- What suppresses a trigger of type `ty` due now, delayed or not: a trigger of its type reached
-- the contact within the cooldown (abandonedCart: once per recycleStateId instead), or its last
-- order (contact field orderAt, lib_orders.lua) is too recent. nil: none.
local function policy_reason(cid, ty, now, lim)
  if lim.cooldown_ms > 0 and ty ~= ABANDONED_CART then
    local last = tonumber(redis.call('HGET', K_trigger_times(cid), ty))
    if last and now - last < lim.cooldown_ms then return 'cooldown' end
  end
  if lim.recent_order_ms > 0 then
    local ordered = tonumber(redis.call('HGET', K_contact(cid), 'orderAt'))
    if ordered and now - ordered < lim.recent_order_ms then return 'recentOrder' end
  end
  return nil
end

-- A trigger reached the contact: the cooldown's time of its type (K_trigger_times, shared with
-- the product triggers), and the contact's last trigger, which an order may be attributed to.
local function trigger_reached(cid, ty, id, now, ttl)
  local times, at = K_trigger_times(cid), now == NOW and NOW_S or string.format('%d', now)
  ttl = string.format('%d', ttl)
  redis.call('HSET', times, ty, at)
  redis.call('EXPIRE', times, ttl)
  redis.call('SET', K_last_trigger(cid), id .. '|' .. ty .. '|' .. at, 'EX', ttl)
end

-- A visit's trigger waits lim.delay_ms in K_pending (its id -> due ms) and K_pending_jobs (its id
-- -> "<contact>|<type>|<visit start>|<visit end>|<events>|<closed at>|<recycleStateId>");
-- detect.lua re-checks and emits it when due. The contact's field `pending` names it.
local function hold_trigger(cid, ty, v, rsid, now, lim)
  local id = 'visit:' .. cid .. ':' .. string.format('%d', v.start)
  redis.call('ZADD', K_pending, now + lim.delay_ms, id)
  redis.call('HSET', K_pending_jobs, id, string.format('%s|%s|%d|%d|%d|%d|%s', cid, ty, v.start,
             v.last, v.n or 0, now, rsid or ''))
  redis.call('HSET', K_contact(cid), 'pending', id)
end

-- The contact is back (another visit of it closed): its delayed trigger gives way, `returned`.
local function drop_pending(cid)
  local id = redis.call('HGET', K_contact(cid), 'pending')
  if not id then return end
  redis.call('HDEL', K_contact(cid), 'pending')
  local job = redis.call('HGET', K_pending_jobs, id)
  redis.call('ZREM', K_pending, id)
  redis.call('HDEL', K_pending_jobs, id)
  if job then suppress(string.match(job, '^[^|]*|([^|]*)|'), 'returned') end
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

local function emit_trigger(cid, ty, v, who, cart, now, lim)
  local ck = K_contact(cid)
  local current = cart and cart[1] or redis.call('HGET', ck, 'cart')
  local products = {}
  local last, start = string.format('%d', v.last), string.format('%d', v.start)
  local pv = redis.call('ZREVRANGEBYSCORE', K_contact_pv(cid), last, start, 'WITHSCORES')
  for j = 1, #pv, 2 do
    local view = redis.call('HGET', K_contact_pvd(cid), pv[j])
    if view then products[#products + 1] = view_json(pv[j], tonumber(pv[j + 1]), view) end
  end
  local categories = {}
  local cv = redis.call('ZREVRANGEBYSCORE', K_contact_cv(cid), last, start, 'WITHSCORES')
  for j = 1, #cv, 2 do
    categories[#categories + 1] = '{"productCategoryId":' .. cjson.encode(cv[j])
      .. ',"viewedAt":"' .. iso(tonumber(cv[j + 1])) .. '"}'
  end
  local id = 'visit:' .. cid .. ':' .. start
  local body = '{"id":' .. cjson.encode(id) .. ',"type":"' .. ty .. '","tenant":'
    .. cjson.encode(TENANT) .. ',"createdAt":"' .. iso(now) .. '"'
    .. ',"contact":' .. contact_json(cid, who)
    .. ',"visit":{"startedAt":"' .. iso(v.start) .. '","endedAt":"' .. iso(v.last)
    .. '","events":' .. string.format('%d', v.n or 0) .. '}'
    .. ',"cart":' .. (current or 'null')
    .. ',"products":[' .. table.concat(products, ',') .. ']'
    .. ',"categories":[' .. table.concat(categories, ',') .. ']}'
  append_trigger(ty, body)
  trigger_reached(cid, ty, id, now, lim.contact_ttl)
  if ty == ABANDONED_CART then
    redis.call('HSET', ck, 'cartNotified', cart[2])
    local state = K_cart(cart[2])
    if redis.call('EXISTS', state) == 1 then
      redis.call('HSET', state, 'notified', id, 'notifiedAt', now) -- lib_attribution.lua
    end
  end
end

-- Close the contact's visit (if open): at most one trigger, tallied in P:tally for /metrics,
-- held for lim.delay_ms if there is a delay, else emitted unless a policy suppresses it.
local function close_visit(cid, now, lim)
  redis.call('ZREM', K_visits, cid)
  local v, fields = read_visit(cid)
  if not v then return end
  redis.call('HDEL', K_contact(cid), unpack(fields))
  redis.call('HINCRBY', K_tally, TALLY_CLOSED, '1')
  if lim.delay_ms > 0 then drop_pending(cid) end -- no delay: nothing of it waits
  local who = contact_identity(cid)
  if not who.reachable then
    redis.call('HINCRBY', K_tally, TALLY_ANONYMOUS, '1')
    return
  end
  local ty, cart = trigger_type(cid, v)
  if not ty then return end
  if lim.delay_ms > 0 then
    hold_trigger(cid, ty, v, cart and cart[2], now, lim)
    return
  end
  local reason = policy_reason(cid, ty, now, lim)
  if reason then
    suppress(ty, reason)
  else
    emit_trigger(cid, ty, v, who, cart, now, lim)
  end
end

-- Close the contact's visit when it has been idle lim.visit_timeout_ms but the detector has not
-- yet got to it, so its trigger reflects the visit as it was, before this event changes the
-- contact. Returns the open visit as open_visit counts into it, {last event time, events, events
-- of this `counter`}, or nil when none is open now: read in one HMGET, so that counting this
-- event is one HSET instead of an HSET and two HINCRBYs.
local function close_idle_visit(cid, now, lim, counter)
  local v = redis.call('HMGET', K_contact(cid), V_LAST, V_N, VISIT .. counter)
  local last = tonumber(v[1])
  if not last then return nil end
  if now - last >= lim.visit_timeout_ms then
    close_visit(cid, now, lim)
    return nil
  end
  return {last, tonumber(v[2]) or 0, tonumber(v[3]) or 0}
end

-- Count an event of now into the contact's visit: the open one (`open`, from close_idle_visit), or
-- a new one, due to close at `deadline` (text). `...`: more fields of the contact's hash to set in
-- the same HSET (a new contact's profile).
local function open_visit(cid, counter, deadline, open, ...)
  local ck = K_contact(cid)
  if open then
    redis.call('HSET', ck, V_LAST, NOW_S, V_N, open[2] + 1, VISIT .. counter, open[3] + 1, ...)
  else
    redis.call('HSET', ck, V_START, NOW_S, V_LAST, NOW_S, V_N, '1', VISIT .. counter, '1', ...)
  end
  redis.call('ZADD', K_visits, deadline, cid)
end

-- Suppressed identifiers (docs/privacy.md): K_suppressed holds the SHA-1 of each "kind:value".
-- Of the identifiers in `lists` (lists of them), the set of the suppressed ones: one SMISMEMBER
-- asks for all of them, so the check is one lookup however many lists there are.
local function suppressed_among(lists)
  local idents, digests, found = {}, {}, {}
  for _, ids in ipairs(lists) do
    for _, ident in ipairs(ids) do
      if not found[ident] then
        found[ident] = false
        idents[#idents + 1] = ident
        digests[#digests + 1] = redis.sha1hex(ident)
      end
    end
  end
  if #digests == 0 then return {} end
  found = {}
  for i, hit in ipairs(redis.call('SMISMEMBER', K_suppressed, unpack(digests))) do
    if hit == 1 then found[idents[i]] = true end
  end
  return found
end

local function any_of(ids, set)
  for _, ident in ipairs(ids) do
    if set[ident] then return true end
  end
  return false
end
