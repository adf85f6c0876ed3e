-- Shared by every script (store.py prepends it). ARGV[1] is always the tenant prefix `gw:<tenant>`.
local P = ARGV[1]
local SUFFIXES = {{CONTACT_SUFFIXES}}

local function ckey(cid, suffix) return P .. ':c:{' .. cid .. '}' .. suffix end

local function trim_views(cid, cap)
  local extra = redis.call('ZCARD', ckey(cid, ':pv')) - cap
  if extra > 0 then
    local old = redis.call('ZPOPMIN', ckey(cid, ':pv'), extra)
    for j = 1, #old, 2 do redis.call('HDEL', ckey(cid, ':pvd'), old[j]) end
  end
end

-- "type|<ms>-<seq>" entries of a contact's event list, newest first.
local function newer(a, b)
  local ams, aseq = string.match(a, '|(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '|(%d+)-(%d+)$')
  if ams ~= bms then return tonumber(ams) > tonumber(bms) end
  return tonumber(aseq) > tonumber(bseq)
end

local function merge_events(from, into, cap)
  local fk, ik = ckey(from, ':ev'), ckey(into, ':ev')
  local all = redis.call('LRANGE', ik, 0, -1)
  for _, entry in ipairs(redis.call('LRANGE', fk, 0, -1)) do all[#all + 1] = entry end
  if #all == 0 then return end
  table.sort(all, newer)
  redis.call('DEL', ik)
  for j = 1, math.min(#all, cap) do redis.call('RPUSH', ik, all[j]) end
end

local function merge_visit(from, into, timeout)
  local f = redis.call('HGETALL', ckey(from, ':visit'))
  if #f == 0 then return end
  local vk = ckey(into, ':visit')
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
  redis.call('ZREM', P .. ':visits', from)
  redis.call('ZADD', P .. ':visits', tonumber(redis.call('HGET', vk, 'last')) + timeout, into)
end

-- Stitching moves RFM figures with the rest of the contact (order figures: lib_orders.lua).
local function merge_rfm(from, into)
  local f = redis.call('HMGET', ckey(from, ':rfm'), 'count', 'revenue', 'lastMs', 'last')
  if not f[1] then return end
  local rk = ckey(into, ':rfm')
  redis.call('HINCRBY', rk, 'count', f[1])
  redis.call('HINCRBYFLOAT', rk, 'revenue', f[2])
  local mine = tonumber(redis.call('HGET', rk, 'lastMs'))
  if f[3] and (not mine or tonumber(f[3]) > mine) then
    redis.call('HSET', rk, 'lastMs', f[3], 'last', f[4])
  end
end

-- Stitch contact `from` into `into`: identifiers, views, cart (the newer), events, open visit.
local function merge_contact(from, into, limits)
  local ids = redis.call('HGETALL', ckey(from, ':ids'))
  for j = 1, #ids, 2 do
    redis.call('SET', P .. ':id:' .. ids[j], into, 'EX', limits.ttl)
    redis.call('HSETNX', ckey(into, ':ids'), ids[j], ids[j + 1])
  end
  local pv = redis.call('ZRANGE', ckey(from, ':pv'), 0, -1, 'WITHSCORES')
  for j = 1, #pv, 2 do
    local mine = redis.call('ZSCORE', ckey(into, ':pv'), pv[j])
    if not mine or tonumber(mine) < tonumber(pv[j + 1]) then
      redis.call('ZADD', ckey(into, ':pv'), pv[j + 1], pv[j])
      redis.call('HSET', ckey(into, ':pvd'), pv[j], redis.call('HGET', ckey(from, ':pvd'), pv[j]))
    end
  end
  trim_views(into, limits.views)
  local cv = redis.call('ZRANGE', ckey(from, ':cv'), 0, -1, 'WITHSCORES')
  for j = 1, #cv, 2 do redis.call('ZADD', ckey(into, ':cv'), 'GT', cv[j + 1], cv[j]) end
  redis.call('ZREMRANGEBYRANK', ckey(into, ':cv'), 0, -(limits.views + 1))
  local fc = redis.call('HMGET', ckey(from, ''), 'cart', 'cartAt', 'cartId', 'created')
  local ic = redis.call('HMGET', ckey(into, ''), 'cartAt', 'created')
  if fc[1] and (not ic[1] or tonumber(fc[2]) > tonumber(ic[1])) then
    redis.call('HSET', ckey(into, ''), 'cart', fc[1], 'cartAt', fc[2], 'cartId', fc[3])
    if redis.call('EXISTS', P .. ':cart:' .. fc[3]) == 1 then
      redis.call('HSET', P .. ':cart:' .. fc[3], 'contact', into)
    end
  end
  if fc[4] and (not ic[2] or tonumber(fc[4]) < tonumber(ic[2])) then
    redis.call('HSET', ckey(into, ''), 'created', fc[4])
  end
  merge_events(from, into, limits.events)
  merge_visit(from, into, limits.timeout)
  merge_rfm(from, into)
  for _, suffix in ipairs(SUFFIXES) do
    redis.call('DEL', ckey(from, suffix))
    if redis.call('EXISTS', ckey(into, suffix)) == 1 then
      redis.call('EXPIRE', ckey(into, suffix), limits.ttl)
    end
  end
end

-- The contact of `ids` ("kind:value", most decisive first): the first identifier already known
-- decides, every other contact they name is stitched into it, and all of them then point to it.
local function resolve_contact(ids, fresh, limits)
  local cid = nil
  local others = {}
  for _, ident in ipairs(ids) do
    local c = redis.call('GET', P .. ':id:' .. ident)
    if c then
      if not cid then cid = c elseif c ~= cid then others[c] = true end
    end
  end
  cid = cid or fresh
  for other in pairs(others) do merge_contact(other, cid, limits) end
  local now = limits.now
  for _, ident in ipairs(ids) do
    redis.call('SET', P .. ':id:' .. ident, cid, 'EX', limits.ttl)
    redis.call('HSETNX', ckey(cid, ':ids'), ident, now)
  end
  return cid
end

-- Count an event into the contact's open visit, opening one after `timeout` ms of silence.
local function open_visit(cid, counter, now, timeout)
  local vk = ckey(cid, ':visit')
  local last = tonumber(redis.call('HGET', vk, 'last'))
  if not last or now - last >= timeout then
    redis.call('DEL', vk)
    redis.call('HSET', vk, 'start', now)
  end
  redis.call('HSET', vk, 'last', now)
  redis.call('HINCRBY', vk, 'n', 1)
  redis.call('HINCRBY', vk, counter, 1)
  redis.call('ZADD', P .. ':visits', now + timeout, cid)
end
