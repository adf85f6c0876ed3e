-- Store a batch of validated events of one tenant, atomically, in one round trip.
-- ARGV: the tenant's limits (arguments.TenantLimits), then two items: a JSON array of envelopes
--       (arguments.ENVELOPE), arrays read by position: [eventId, dedup (a client's eventId), type,
--        identifiers ["kind:value"...], fresh contact id, then at most one part at its place:
--        pv [productId, value, receive ms (compact value)], cv categoryId,
--        cart [recycleStateId, json, empty, productIds], order (lib_orders.lua apply_order),
--        ig (why the order part is ignored); parts before it are false], then the events as the
--       stream keeps them (JSON), one per line, in the same order; with destinations, a third: the
--       body each is forwarded as (lib_destinations.lua), one per line.
-- Returns one "a" (accepted), "d" (duplicate) or "s" (suppressed: nothing stored) per event;
-- order events "a|<STATUS>" or
-- "i|<reason>" (stored, its order part ignored); "e|<error>" for an event whose writes failed
-- (lib_errors.lua: a damaged key fails its event, not the call) (results.EventResult).
-- Python has validated every envelope, so what can fail is what Redis holds.
local limits, first_item = {{TenantLimits}}
local now, timeout, dedup_ttl = NOW, limits.visit_timeout_ms, limits.dedup_window
local maxlen, cap_views = limits.stream_maxlen, limits.recent_views
local cap_events = limits.contact_events
local dests = destination_queues(limits.destinations)
-- TTLs cost a command per key, so they are not renewed on every event: a contact's keys expire
-- `contact_ttl + slack` after their last renewal, renewed (with its identifier keys) once `slack`
-- has passed; keys created in between get theirs at creation. A contact is thus kept at least
-- `contact_ttl`, at most `contact_ttl + slack`, after its last event: every key is given
-- `contact_ttl + slack` (lib.lua, lib_orders.lua too, through `limits`).
local slack = math.ceil(limits.contact_ttl / 10)
local renew_ms = slack * 1000
limits.contact_ttl = limits.contact_ttl + slack
local ttl = limits.contact_ttl
-- Numbers Redis is given, as text (lib.lua NOW_S): formatted here once a call, not by Redis on
-- every command (a Lua number argument costs Redis 6.2 a %.17g formatting, ~1 us).
ttl = string.format('%d', ttl)
limits.ttl_arg = ttl
local deadline = string.format('%d', now + timeout) -- of a visit an event of now opens or extends
local watch_cutoff = string.format('(%d', now - limits.watch_ms)
local watch_ms = string.format('%d', limits.watch_ms)
local maxlen_arg, dedup_ttl_arg = string.format('%d', maxlen), string.format('%d', dedup_ttl)
local cart_ttl = string.format('%d', limits.cart_ttl)

-- The envelope's places, named after arguments.ENVELOPE: ID, DEDUP, TYPE, IDS, FRESH, PV, CV,
-- CART, ORDER, IG = 1, 2, ...
local {{ENVELOPE_NAMES}} = {{ENVELOPE_PLACES}}

-- A contact's :ev entry for an event (keys.py): the integer form where it fits.
local SEQUENCE_PAD = {'00', '0', ''}
local function list_entry(ty, sid)
  local digit = LIST_DIGITS[ty]
  if digit and #sid <= 17 then
    local ms, seq = string.match(sid, '^(%d%d%d%d%d%d%d%d%d%d%d%d%d)%-(%d+)$')
    if ms then return digit .. ms .. SEQUENCE_PAD[#seq] .. seq end
  end
  return (LIST_CODES[ty] or ty) .. '|' .. sid
end

-- The event on the tenant's stream, and a client's eventId marked seen (at `dk`; the mark holds
-- nothing of the contact, docs/privacy.md): its stream id. Queued for the destinations in the
-- same step (`fwd`: its forwarded body, nil without any).
local function append_event(cid, ev, raw, dk, fwd)
  local sid = redis.call('XADD', K_events, 'MAXLEN', '~', maxlen_arg, '*', 'c', cid, 'e', raw)
  if ev[DEDUP] then redis.call('SET', dk, '1', 'EX', dedup_ttl_arg) end
  if fwd then forward(dests, 'e', ev[TYPE], fwd) end
  return sid
end

-- ZADD arguments scoring each of `ids` at `now`.
local function scored_now(ids)
  local scored = {}
  for _, id in ipairs(ids) do
    scored[#scored + 1] = NOW_S
    scored[#scored + 1] = id
  end
  return scored
end

-- A reachable contact (lib.lua REACHABLE: the event's identifiers, else the contact's) watches
-- the products it views or has in its cart (docs/triggers.md, Price drops and back in stock):
-- it is a member of each product's watch index, scored by the view's time, which is its :pv
-- score too (a whole ms: what it was told for an earlier view is cleared, keys.py); what it saw
-- stays in its :pvd (or its cart). `keep`: a cart keeps the time a watch
-- has (a cart sent again is no new view). The index keeps watch_days of watches: it lives that
-- long after its last watch, and loses the older ones whenever it grows.
local function watch(cid, ids, products, keep)
  if #products == 0 or not reachable(cid, ids) then return end
  for _, pid in ipairs(products) do
    local wk = K_product_watchers(pid)
    local added
    if keep then
      added = redis.call('ZADD', wk, 'NX', NOW_S, cid)
    else
      added = redis.call('ZADD', wk, NOW_S, cid)
    end
    if added == 1 then
      redis.call('ZREMRANGEBYSCORE', wk, '-inf', watch_cutoff)
    end
    redis.call('PEXPIRE', wk, watch_ms)
  end
end

-- A compact view (recommendations.py) is stored with its receive time's lag behind `now`.
local function view_value(pv)
  return pv[3] and string.format('%d', now - pv[3]) .. pv[2] or pv[2]
end

-- A run: consecutive events of one contact (the same identifiers) that only add to its history
-- (page, product and category views, custom events; no cart, no order). The snippet and apps send
-- a visitor's queued events together and the batcher merges concurrent requests, so one call
-- often holds many events of one contact. The first event of a run is stored in full; the others
-- only add their stream entry and dedup mark at once, and their list, view and visit-count changes
-- are written once at the end of the run: one LPUSH, ZADD, HSET and HINCRBY per run instead of
-- about a dozen calls per event. All events of a call share `now`, so the contact, visit and TTL
-- state the first event left is already what each further event would leave.
-- `added`: the indices of the events after the first, whose writes flush_run finishes.
local run = nil

local function flush_run()
  local cid = run.cid
  if #run.ev > 0 then
    local evk = K_contact_ev(cid)
    if redis.call('LPUSH', evk, unpack(run.ev)) > cap_events then
      redis.call('LTRIM', evk, 0, cap_events - 1)
    end
    local ck = K_contact(cid)
    redis.call('HINCRBY', ck, V_N, #run.ev)
    for counter, count in pairs(run.counts) do
      redis.call('HINCRBY', ck, VISIT .. counter, count)
    end
  end
  if #run.products > 0 then
    local details = {}
    for _, id in ipairs(run.products) do
      details[#details + 1] = id
      details[#details + 1] = run.views[id]
    end
    local pv, pvd = K_contact_pv(cid), K_contact_pvd(cid)
    local added = redis.call('ZADD', pv, unpack(scored_now(run.products)))
    redis.call('HSET', pvd, unpack(details))
    if added > 0 then
      trim_views(cid, cap_views)
      redis.call('EXPIRE', pv, ttl)
      redis.call('EXPIRE', pvd, ttl)
    end
    watch(cid, run.ids, run.products)
  end
  if #run.categories > 0 then
    local cv = K_contact_cv(cid)
    redis.call('ZADD', cv, unpack(scored_now(run.categories)))
    redis.call('ZREMRANGEBYRANK', cv, 0, -(cap_views + 1))
    redis.call('EXPIRE', cv, ttl)
  end
end

local function add_to_run(ev, raw, dk, fwd)
  local cid, ty, pv = run.cid, ev[TYPE], ev[PV]
  run.ev[#run.ev + 1] = list_entry(ty, append_event(cid, ev, raw, dk, fwd))
  local counter = EVENT_CODES[ty] or 'x'
  run.counts[counter] = (run.counts[counter] or 0) + 1
  if pv then
    local id = pv[1]
    if not run.views[id] then run.products[#run.products + 1] = id end
    run.views[id] = view_value(pv)
  elseif ev[CV] then
    run.categories[#run.categories + 1] = ev[CV]
  end
end

-- Store one event in full (the first of a run, or a cart or order event): its contact, result.
-- A new contact (the first event of most visitors) has no keys yet: nothing to read (its visit,
-- its TTL renewal, the size of its view list) and one HSET makes its profile, identifiers and
-- visit.
local function store_event(ev, raw, dk, fwd)
  local cid, new, first_seen = resolve_contact(ev[IDS], ev[FRESH], limits, true)
  local ty, pv, cv, cart = ev[TYPE], ev[PV], ev[CV], ev[CART]
  local counter = EVENT_CODES[ty] or 'x'
  local open = not new and close_idle_visit(cid, now, limits, counter) or nil

  local ck = K_contact(cid)
  local touched = {ck, K_contact_ev(cid)}
  local renewed = not new and tonumber(redis.call('HGET', ck, 'ttlAt'))
  local renew = not renewed or now - renewed >= renew_ms
  if new then
    open_visit(cid, counter, deadline, nil, 'created', NOW_S, 'updated', NOW_S, 'ttlAt', NOW_S,
               unpack(first_seen))
  elseif not renewed then
    redis.call('HSETNX', ck, 'created', NOW_S)
    redis.call('HSET', ck, 'updated', NOW_S, 'ttlAt', NOW_S)
  elseif renew then
    redis.call('HSET', ck, 'updated', NOW_S, 'ttlAt', NOW_S)
  else
    redis.call('HSET', ck, 'updated', NOW_S)
  end

  local entry = list_entry(ty, append_event(cid, ev, raw, dk, fwd))
  local listed = redis.call('LPUSH', K_contact_ev(cid), entry)
  if listed == 1 and not renew then redis.call('EXPIRE', K_contact_ev(cid), ttl) end
  if listed > cap_events then redis.call('LTRIM', K_contact_ev(cid), 0, cap_events - 1) end

  if pv then
    local pvk, pvd = K_contact_pv(cid), K_contact_pvd(cid)
    -- Only a product new to the list can make it grow or be its first (keys without a TTL yet).
    local added = redis.call('ZADD', pvk, NOW_S, pv[1]) == 1
    redis.call('HSET', pvd, pv[1], view_value(pv))
    if added then
      if not new then trim_views(cid, cap_views) end
      if not renew then
        redis.call('EXPIRE', pvk, ttl)
        redis.call('EXPIRE', pvd, ttl)
      end
    end
    touched[#touched + 1] = pvk
    touched[#touched + 1] = pvd
    watch(cid, ev[IDS], {pv[1]})
  elseif cv then
    local cvk = K_contact_cv(cid)
    redis.call('ZADD', cvk, NOW_S, cv)
    redis.call('ZREMRANGEBYRANK', cvk, 0, -(cap_views + 1))
    if not renew then redis.call('EXPIRE', cvk, ttl) end
    touched[#touched + 1] = cvk
  elseif cart then
    local rsid, cart_json, empty = cart[1], cart[2], cart[3]
    local state = K_cart(rsid)
    -- a state already bought (a re-sent last cart) is no current cart: it would look abandoned
    local current = not empty and redis.call('HEXISTS', state, 'order') == 0
    release_cart(cid, rsid)
    if current then
      -- the contact hash holds the current cart's JSON; its state, only a state that may outlive
      -- the contact (lib.lua release_cart)
      redis.call('HSET', ck, 'cart', cart_json, 'cartAt', NOW_S, 'cartId', rsid)
      if limits.cart_ttl > limits.contact_ttl - slack then
        redis.call('HSET', state, 'cart', cart_json, 'contact', cid, 'at', NOW_S)
      else
        redis.call('HSET', state, 'contact', cid, 'at', NOW_S)
        redis.call('HDEL', state, 'cart')
      end
      watch(cid, ev[IDS], cart[4], true)
    else
      redis.call('HDEL', ck, 'cart', 'cartAt', 'cartId')
      redis.call('HSET', state, 'cart', cart_json, 'contact', cid, 'at', NOW_S)
    end
    redis.call('EXPIRE', state, cart_ttl)
  end

  if not new then open_visit(cid, counter, deadline, open) end
  local tag, note = 'a', nil
  if ev[IG] then
    tag, note = 'i', ev[IG]
  elseif ev[ORDER] then -- after open_visit: the visit this event is part of counts the order
    tag, note = apply_order(ev[ORDER], cid, limits) -- the order's own contact may differ
  end
  if renew then
    for _, key in ipairs(touched) do redis.call('EXPIRE', key, ttl) end
    -- a new contact's identifier keys were all created just now, with their TTL
    if cid ~= ev[FRESH] then
      local own = identifiers_of(cid)
      for j = 1, #own, 2 do redis.call('EXPIRE', K_identifier(own[j]), ttl) end
    end
  end
  return cid, note and tag .. '|' .. note or tag
end

-- Whether two events name the same identifiers (a run is one contact's).
local function same_ids(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do
    if a[i] ~= b[i] then return false end
  end
  return true
end

local events = cjson.decode(ARGV[first_item])
local raws, lines, from = {}, ARGV[first_item + 1], 1
for i = 1, #events do -- string.find, not gmatch: a third of the cost (measured)
  local newline = string.find(lines, '\n', from, true)
  raws[i] = string.sub(lines, from, (newline or 0) - 1)
  from = newline and newline + 1
end
local fwds = {}
if #dests > 0 then
  local bodies = ARGV[first_item + 2]
  from = 1
  for i = 1, #events do
    local newline = string.find(bodies, '\n', from, true)
    fwds[i] = string.sub(bodies, from, (newline or 0) - 1)
    from = newline and newline + 1
  end
end
local results = {}
-- Events naming a suppressed identifier store nothing (answer "s"): the identifiers of every
-- event of the call are looked up at once.
local ids_of = {}
for i, ev in ipairs(events) do ids_of[i] = ev[IDS] end
local suppressed = suppressed_among(ids_of)
local suppressing = next(suppressed) ~= nil

-- A failed event is not acknowledged, so its eventId must not make the client's retry a
-- duplicate: its dedup mark (if it was set) goes.
local function fail(i, err)
  results[i] = failed(err)
  local ev = events[i]
  if ev[DEDUP] then redis.call('DEL', K_dedup(ev[ID])) end
end

-- A run's deferred writes are those of its events after the first: if they fail, so do those
-- events (the first was stored in full), and only those.
local function end_run()
  if not run then return end
  local ok, err = pcall(flush_run)
  if not ok then
    for _, i in ipairs(run.added) do fail(i, err) end
  end
  run = nil
end

-- Each event is stored under pcall (lib_errors.lua), of a function made once: no closure per
-- event.
for i, ev in ipairs(events) do
  local dk = ev[DEDUP] and K_dedup(ev[ID])
  if dk and redis.call('EXISTS', dk) == 1 then
    results[i] = 'd'
  else
    local ids = ev[IDS]
    local history_only = not (ev[CART] or ev[ORDER] or ev[IG])
    if history_only and run and same_ids(ids, run.ids) then
      local ok, err = pcall(add_to_run, ev, raws[i], dk, fwds[i])
      if ok then
        results[i] = 'a'
        run.added[#run.added + 1] = i
      else
        fail(i, err)
      end
    elseif suppressing and any_of(ids, suppressed) then
      results[i] = 's'
    else
      end_run()
      local ok, cid, result = pcall(store_event, ev, raws[i], dk, fwds[i])
      if not ok then
        fail(i, cid) -- pcall's error, in place of the contact id
      else
        results[i] = result
        if history_only then
          run = {ids = ids, cid = cid, ev = {}, counts = {}, products = {}, views = {},
                 categories = {}, added = {}}
        end
      end
    end
  end
end
end_run()
-- Accepted events per minute by type (GET /v1/stats/events): one HINCRBY per type in the call; a
-- field's first count is when the minute's hash may be new, and it gets its TTL then. Under pcall:
-- the events are stored, and a damaged counts key must not fail their answers.
local function count_accepted()
  local accepted = {}
  for i, ev in ipairs(events) do
    local result = results[i]
    if result ~= 'd' and string.sub(result, 1, 2) ~= 'e|' then
      accepted[ev[TYPE]] = (accepted[ev[TYPE]] or 0) + 1
    end
  end
  local counts = K_stats(math.floor(now / 60000))
  for ty, n in pairs(accepted) do
    if redis.call('HINCRBY', counts, 'a:' .. ty, n) == n then
      redis.call('EXPIRE', counts, STATS_SECONDS)
    end
  end
end
pcall(count_accepted)
return results
