-- One step of a product's fan-out (docs/triggers.md, Price drops and back in stock), run by the
-- background of every process (background/fanout.py), each with its own token.
-- ARGV: arguments.FanoutStep. The step goes on with the fan-out of args.product_id if this
-- process still holds it, else claims the first one due in P:pfq (products.lua queues them); it
-- holds it args.lease_ms from now (a process killed mid-way loses it then, and another goes on
-- from the cursor) and looks at no more than args.chunk watchers of the product's watch index,
-- from the cursor (a watcher: its score and member; see below). Deciding, emitting and
-- marking a watcher told (in its score's fraction, keys.py) happen in this one atomic step, and
-- a watcher told of a type for its watch is not told of it again for that watch: each watcher
-- gets its trigger once, whichever process looks at it and however often.
-- Returns {productId ('' when none is due), watchers looked at, 1 when the fan-out is done}
-- (results.FanoutResult).
local args = {{FanoutStep}}
local WATCH_TOLD = {{WATCH_TOLD}} -- trigger type -> its mark in a watch's score (keys.py)
local TOLD_TEXT = {[0.25] = '.25', [0.5] = '.5', [0.75] = '.75'} -- the marks' sums, as written
local now = NOW
local ttl = args.contact_ttl + math.ceil(args.contact_ttl / 10) -- as ingest.lua gives a contact
local pid = args.product_id
if pid == '' or redis.call('HGET', K_fanout(pid), 'owner') ~= args.token then
  local due = redis.call('ZRANGEBYSCORE', K_fanouts, '-inf', now, 'LIMIT', 0, 1)
  if #due == 0 then return {'', 0, 0} end
  pid = due[1]
end
local jk, wk = K_fanout(pid), K_product_watchers(pid)
redis.call('ZADD', K_fanouts, now + args.lease_ms, pid)
redis.call('HSET', jk, 'owner', args.token)
redis.call('ZREMRANGEBYSCORE', wk, '-inf', '(' .. (now - args.watch_ms))

-- The catalog's state, as JSON texts (products.lua).
local cat = redis.call('HMGET', K_product(pid), 'price', 'currencyCode', 'isInStock')
local price, currency = tonumber(cat[1]), cat[2] and cjson.decode(cat[2]) or nil
local in_stock = cat[3] == '1'

-- A number as the shop wrote it in `stored` JSON, when its "price" there is `value` (cjson would
-- write it with 14 digits).
local function price_text(stored, value)
  if type(value) ~= 'number' then return nil end
  local raw = string.match(stored, '"price":(%-?[%d.eE+-]+)')
  if raw and tonumber(raw) == value then return raw end
  return cjson.encode(value)
end

-- What the watcher saw of the product: its view (:pvd, the compact form or JSON, keys.py), else
-- the line of its cart; nil when it has neither any more (trimmed from its recent views).
local function seen_by(cid)
  local stored = redis.call('HGET', K_contact_pvd(cid), pid)
  if stored then
    local view, at
    if string.sub(stored, 1, 1) == '{' then
      view = cjson.decode(stored)
      at = view.viewedAt
    else
      local lag, cur, rest = string.match(stored, '^(-?%d+)|([^|]*)|(.*)$')
      view = cjson.decode('{' .. rest .. '}')
      if cur ~= '' then view.currencyCode = cur end
      at = iso(tonumber(redis.call('ZSCORE', K_contact_pv(cid), pid)) - tonumber(lag))
    end
    return {price = tonumber(view.price), text = price_text(stored, view.price),
            currency = view.currencyCode, stock = view.isInStock, at = at}
  end
  local cart = redis.call('HGET', K_contact(cid), 'cart')
  if not cart then return nil end
  cart = cjson.decode(cart)
  for _, line in ipairs(cart.products) do
    if line.productId == pid then
      return {price = tonumber(line.price), text = price_text('', line.price),
              currency = cart.currencyCode, at = cart.updatedAt}
    end
  end
  return nil
end

local function same_currency(theirs)
  if type(theirs) ~= 'string' then theirs = nil end
  return (theirs and string.upper(theirs)) == currency
end

-- What every trigger of this step shares, written once.
local tenant_json, created = cjson.encode(TENANT), iso(now)
local catalog_json = ',"product":{"productId":' .. cjson.encode(pid) .. ',"price":'
  .. (cat[1] or 'null') .. ',"currencyCode":' .. (cat[2] or 'null') .. ',"isInStock":'
  .. (cat[3] or 'null')

local function emit(ty, cid, who, seen, score)
  local id = ty .. ':' .. cid .. ':' .. pid .. ':' .. string.format('%d', score)
  append_trigger(ty, '{"id":' .. cjson.encode(id) .. ',"type":"' .. ty .. '","tenant":'
    .. tenant_json .. ',"createdAt":"' .. created .. '","contact":' .. contact_json(cid, who)
    .. catalog_json .. ',"seenPrice":' .. (seen.text or 'null') .. ',"seenAt":'
    .. (type(seen.at) == 'string' and cjson.encode(seen.at) or 'null') .. '}}')
  return id
end

-- Tell watcher `cid` (its watch scored `score`) what applies to it; its score now. Nil when it
-- watches no more (it has seen nothing of the product left): it leaves the index.
local function notify(cid, score)
  local seen = seen_by(cid)
  if not seen then
    redis.call('ZREM', wk, cid)
    return nil
  end
  local drop = price and seen.price and price < seen.price and same_currency(seen.currency)
    and price * 100 <= (100 - args.drop_percent) * seen.price
  local back = in_stock and seen.stock == 0
  if not (drop or back) then return score end
  local at = tonumber(score)
  local whole = math.floor(at)
  local told = at - whole -- the sum of the WATCH_TOLD marks of the types told
  local due = {}
  if drop and told % 0.5 < WATCH_TOLD.priceDrop then due[#due + 1] = 'priceDrop' end
  if back and told < WATCH_TOLD.backInStock then due[#due + 1] = 'backInStock' end
  if #due == 0 then return score end
  local who = contact_identity(cid)
  if not who.reachable then return score end
  local was = told
  for _, kind in ipairs(due) do
    local last = tonumber(redis.call('HGET', K_trigger_times(cid), kind))
    if not last or now - last >= args.cooldown_ms then -- the type's cooldown ([tenants.triggers])
      -- the cooldown's time, and the contact's last trigger, which an order is attributed to
      trigger_reached(cid, kind, emit(kind, cid, who, seen, whole), now, ttl)
      told = told + WATCH_TOLD[kind]
    else
      suppress(kind, 'cooldown')
    end
  end
  if told == was then return score end -- held back by the cooldown
  -- written out here: Lua would pass the number to Redis with 14 significant digits only
  -- (and as Redis writes it back: ZSCORE, the cursor's check)
  local marked = string.format('%d', whole) .. TOLD_TEXT[told]
  redis.call('ZADD', wk, 'XX', marked, cid)
  return marked
end

-- The walk goes from the newest watch to the oldest: a watcher told moves up (its score grows by
-- its mark) into the part already walked, never past one still to come. The cursor is the lowest
-- watcher of the part walked (after its mark): the walk goes on right after it. If it has left or
-- moved (a new view, an order), from the first watcher not above its score (those looked at
-- again are not told twice).
local start = 0
local cursor = redis.call('HMGET', jk, 'score', 'member')
if cursor[1] then
  local rank = redis.call('ZREVRANK', wk, cursor[2])
  if rank and redis.call('ZSCORE', wk, cursor[2]) == cursor[1] then
    start = rank + 1
  else
    start = redis.call('ZCOUNT', wk, '(' .. cursor[1], '+inf')
  end
end
local batch = redis.call('ZREVRANGE', wk, start, start + args.chunk - 1, 'WITHSCORES')
local low_score, low_member = nil, nil
for j = 1, #batch, 2 do
  local member, score = batch[j], notify(batch[j], batch[j + 1])
  if score and (not low_member or tonumber(score) < tonumber(low_score)
                or (tonumber(score) == tonumber(low_score) and member < low_member)) then
    low_score, low_member = score, member
  end
end
if #batch < 2 * args.chunk then
  redis.call('ZREM', K_fanouts, pid)
  redis.call('DEL', jk)
  return {pid, #batch / 2, 1}
end
if low_member then redis.call('HSET', jk, 'score', low_score, 'member', low_member) end
return {pid, #batch / 2, 0}
