-- Erasure of a contact (docs/privacy.md), one step per call (arguments.EraseOp; `op` says which):
--   start (EraseStart): the synchronous part, atomically: identifiers and their index entries,
--       profile, views, events list, open visit, delayed trigger, cart and cart states, the
--       personal fields of its orders, and (suppress) the identifiers' digests into
--       K_suppressed. It writes the erasure's record and queues it in K_erasures for the
--       background work. Returns {'missing'} for a contact that does not exist, else {'running'}.
--   claim (EraseClaim): one queued erasure whose lease has run out (or never started), leased to
--       `owner`: its id, or false.
--   chunk (EraseChunk): the next bounded chunk of the background work (the streams, the jobs,
--       the dead letters, the walks over the tenant's cart states and product watches), by the
--       record's owner only: {'more'}, {'done'} (the last chunk) or {'lost'} (another process
--       owns it now, or it is over). Each chunk erases, counts and moves the cursor in one step,
--       so a process killed between two chunks leaves the work exactly where the last one ended.
-- The record (K_erasure): status, counts `n:<kind>`, and while running what an entry is matched
-- by (the contact's id and those stitched into it, K_contact_stitched; its identifier values
-- and contact ids as JSON strings) and the position `step`/`cursor` in STEPS.
local head = {{EraseOp}}
local op = head.op
local ERASURE_TTL = {{ERASURE_TTL}}
local ORDER_IDENTIFIERS = {{ORDER_IDENTIFIERS}}
local ORDER_PERSONAL_FIELDS = {{ORDER_PERSONAL_FIELDS}}

local function needle(value) -- a value as JSON writes it (orjson leaves '/' as it is)
  local text = string.gsub(cjson.encode(value), '\\/', '/')
  return text
end

-- Whether a stored JSON `body` (of contact `c`, if known) is the erased contact's: its contact
-- (or one stitched into it), or one of its identifier values or contact ids in the text.
local function matches(job, c, body)
  if c and job.cids[c] then return true end
  for _, n in ipairs(job.exact) do
    if string.find(body, n, 1, true) then return true end
  end
  if #job.lower > 0 then
    local lowered = string.lower(body)
    for _, n in ipairs(job.lower) do
      if string.find(lowered, n, 1, true) then return true end
    end
  end
  return false
end

local function delete_cart(rsid)
  return redis.call('DEL', K_cart(rsid))
end

-- An order of the contact: stored with it, or naming one of its identifiers (a stitched one).
local function is_theirs(eoid, cid, idents)
  if redis.call('HGET', K_order(eoid), 'contact') == cid then return true end
  for _, pair in ipairs(ORDER_IDENTIFIERS) do
    local value = redis.call('HGET', K_order_fields(eoid), pair[1])
    if value and idents[pair[2] .. ':' .. cjson.decode(value)] then return true end
  end
  return false
end

-- The personal fields of the contact's orders go; totals, items and dates stay (revenue).
local function scrub_orders(cid, idents, erasure)
  local n, carts = 0, {}
  local seen = {}
  local listed = redis.call('SMEMBERS', K_contact_orders(cid))
  for _, eoid in ipairs(redis.call('HKEYS', K_contact_rfmo(cid))) do listed[#listed + 1] = eoid end
  for _, eoid in ipairs(listed) do
    if not seen[eoid] and redis.call('EXISTS', K_order(eoid)) == 1 and is_theirs(eoid, cid, idents)
    then
      redis.call('HDEL', K_order_fields(eoid), unpack(ORDER_PERSONAL_FIELDS))
      redis.call('HDEL', K_order(eoid), 'contact', 'counted')
      redis.call('HSET', K_order(eoid), 'erased', erasure)
      local rsid = redis.call('HGET', K_order(eoid), 'cart')
      if rsid then carts[#carts + 1] = rsid end
      n = n + 1
    end
    seen[eoid] = true
  end
  return n, carts
end

if op == 'start' then
  local a = {{EraseStart}}
  local cid, rec = a.contact_id, K_erasure(a.erasure)
  local ck = K_contact(cid)
  if redis.call('EXISTS', ck) == 0 then return {'missing'} end
  local counts = {}
  local cids = redis.call('SMEMBERS', K_contact_stitched(cid))
  local exact, lower, idents = {}, {}, {}
  for _, other in ipairs(cids) do
    exact[#exact + 1] = needle(other)
    redis.call('DEL', K_merged_into(other))
  end
  cids[#cids + 1] = cid
  exact[#exact + 1] = needle(cid)
  local own, listed = identifiers_of(cid), {}
  for j = 1, #own, 2 do listed[#listed + 1] = own[j] end
  for _, ident in ipairs(listed) do
    idents[ident] = true
    local kind, value = string.match(ident, '^([^:]+):(.*)$')
    local into = kind == 'email' and lower or exact
    into[#into + 1] = needle(value)
    -- as it appears in JSON text kept inside a JSON string (a refused request's body)
    into[#into + 1] = string.sub(needle(needle(value)), 2, -2)
    if redis.call('GET', K_identifier(ident)) == cid then redis.call('DEL', K_identifier(ident)) end
    if a.suppress == 1 then redis.call('SADD', K_suppressed, redis.sha1hex(ident)) end
  end
  counts.identifiers = #listed
  local orders, carts = scrub_orders(cid, idents, a.erasure)
  counts.orders = orders
  local current = redis.call('HGET', ck, 'cartId')
  if current then carts[#carts + 1] = current end
  counts.carts = 0
  for _, rsid in ipairs(carts) do counts.carts = counts.carts + delete_cart(rsid) end
  counts.views = redis.call('ZCARD', K_contact_pv(cid)) + redis.call('ZCARD', K_contact_cv(cid))
  redis.call('ZREM', K_visits, cid)
  counts.visits = redis.call('HEXISTS', ck, V_START)
  -- its delayed trigger (lib.lua hold_trigger): released, it would find nobody to reach
  local pending = redis.call('HGET', ck, 'pending')
  counts.pendingTriggers = 0
  if pending then
    redis.call('ZREM', K_pending, pending)
    counts.pendingTriggers = redis.call('HDEL', K_pending_jobs, pending)
  end
  counts.profile = 1
  for _, key in ipairs(K_contact_keys(cid)) do redis.call('DEL', key) end
  local function last_id(key)
    local newest = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
    return newest[1] and newest[1][1] or '0-0'
  end
  -- each destination's queue as far as it goes now: `<destination>=<last id>,...`
  local queues = {}
  for dest in string.gmatch(a.destinations, '[^,]+') do
    queues[#queues + 1] = dest .. '=' .. last_id(K_destination_queue(dest))
  end
  redis.call('HSET', rec, 'status', 'running', 'created', NOW, 'step', 1, 'cursor', '',
    'cids', cjson.encode(cids), 'exact', cjson.encode(exact), 'lower', cjson.encode(lower),
    'hooks', a.hooks, 'uptoEvents', last_id(K_events), 'uptoTriggers', last_id(K_triggers),
    'uptoRefused', last_id(K_refused), 'queues', table.concat(queues, ','))
  for kind, n in pairs(counts) do redis.call('HSET', rec, 'n:' .. kind, n) end
  redis.call('EXPIRE', rec, ERASURE_TTL)
  redis.call('ZADD', K_erasures, 0, a.erasure)
  return {'running'}
end

if op == 'claim' then
  local a = {{EraseClaim}}
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', K_erasures, '-inf', NOW, 'LIMIT', 0, 10)) do
    if redis.call('HGET', K_erasure(id), 'status') == 'running' then
      redis.call('ZADD', K_erasures, NOW + a.lease_ms, id)
      redis.call('HSET', K_erasure(id), 'owner', a.owner)
      return id
    end
    redis.call('ZREM', K_erasures, id) -- its record has expired
  end
  return false
end

-- The stream work: each step erases at most `count` entries per call, from `cursor` ('' at
-- first), and returns the next cursor (nil: the step is done) and how many it erased.
local function scan_stream(key, upto, field, job, cursor, count)
  if upto == '0-0' then return nil, 0 end
  local rows = redis.call('XRANGE', key, cursor == '' and '-' or '(' .. cursor, upto,
                          'COUNT', count)
  local n = 0
  for _, row in ipairs(rows) do
    local f = {}
    for j = 1, #row[2], 2 do f[row[2][j]] = row[2][j + 1] end
    if f[field] and matches(job, f.c, f[field]) then
      redis.call('XDEL', key, row[1])
      n = n + 1
      local rsid = string.match(f[field], '"recycleStateId":"([^"]*)"')
      if rsid then job.carts = job.carts + delete_cart(rsid) end
      -- its eventId's duplicate mark stays (a retry must still be a duplicate), but without
      -- the contact id that the marks of earlier gateways hold
      local eid = f.e and string.match(f.e, '"eventId":"([^"]*)"')
      if eid then redis.call('SET', K_dedup(eid), '1', 'KEEPTTL', 'XX') end
    end
  end
  if #rows < count or rows[#rows][1] == upto then return nil, n end
  return rows[#rows][1], n
end

local function dead_letters(job, cursor, count)
  local from = tonumber(cursor) or 0
  local rows = redis.call('LRANGE', K_dead_letters, from, from + count - 1)
  local n = 0
  for _, row in ipairs(rows) do
    if matches(job, nil, row) then n = n + redis.call('LREM', K_dead_letters, 1, row) end
  end
  if #rows < count then return nil, n end
  return tostring(from + #rows - n), n -- LREM moved the later entries up by n
end

local function webhook_jobs(job, cursor, count)
  local hooks = {}
  for hook in string.gmatch(job.hooks, '[^,]+') do hooks[#hooks + 1] = hook end
  local i, at = string.match(cursor, '^(%d+):(%d+)$')
  i, at = tonumber(i) or 1, at or '0'
  if i > #hooks then return nil, 0 end
  local hook = hooks[i]
  local found = redis.call('HSCAN', K_webhook_jobs(hook), at, 'COUNT', count)
  local n = 0
  for j = 1, #found[2], 2 do
    local id = found[2][j]
    if matches(job, nil, found[2][j + 1]) then
      redis.call('ZREM', K_webhook_due(hook), id)
      redis.call('HDEL', K_webhook_jobs(hook), id)
      redis.call('HDEL', K_webhook_tries(hook), id)
      n = n + 1
    end
  end
  if found[1] == '0' then i, at = i + 1, '0' else at = found[1] end
  if i > #hooks then return nil, n end
  return i .. ':' .. at, n
end

-- The destinations' undelivered jobs (docs/destinations.md): each queue's entries, `e` (an event)
-- or `o` (an order) -> the body to send, with their place in the delivery schedule, which
-- webhook.lua keeps as it does a webhook's. A queue is not compacted (below): its entries are
-- deleted as they are delivered, which frees their bytes with the rest of their node, and a copy
-- would bring back the jobs delivered while it was made.
local function destination_jobs(job, cursor, count)
  local queues = {}
  for dest, upto in string.gmatch(job.queues, '([^,=]+)=([^,]+)') do
    queues[#queues + 1] = {dest, upto}
  end
  local i, at = string.match(cursor, '^(%d+):(.*)$')
  i, at = tonumber(i) or 1, at or ''
  if i > #queues then return nil, 0 end
  local dest, upto = queues[i][1], queues[i][2]
  local key, n, more = K_destination_queue(dest), 0, nil
  if upto ~= '0-0' then
    local rows = redis.call('XRANGE', key, at == '' and '-' or '(' .. at, upto, 'COUNT', count)
    for _, row in ipairs(rows) do
      if row[2][2] and matches(job, nil, row[2][2]) then
        redis.call('XDEL', key, row[1])
        redis.call('ZREM', K_destination_due(dest), row[1])
        redis.call('HDEL', K_destination_tries(dest), row[1])
        n = n + 1
      end
    end
    if #rows == count and rows[#rows][1] ~= upto then more = rows[#rows][1] end
  end
  if more then return i .. ':' .. more, n end
  if i == #queues then return nil, n end
  return (i + 1) .. ':', n
end

-- XDEL only marks an entry deleted: its bytes stay in the stream's node (of up to 100 entries)
-- in memory, RDB and AOF until the node's other entries go too. So the stream is copied, chunk
-- by chunk, into a fresh key, which the final chunk (with what was added meanwhile) renames over
-- it, with its consumer groups at their positions and its last id. Left to the last queued
-- erasure of the tenant: one copy serves them all. A group with entries pending (read, not yet
-- acknowledged) would lose them: such a stream is left as it is (docs/privacy.md).
local function compact(key, job, cursor, count)
  if cursor == '' and redis.call('ZCARD', K_erasures) > 1 then return nil, 0 end
  local copy = K_erasure_copy(job.erasure)
  if redis.call('EXISTS', key) == 0 then
    redis.call('DEL', copy)
    return nil, 0
  end
  local rows = redis.call('XRANGE', key, cursor == '' and '-' or '(' .. cursor, '+',
                          'COUNT', count)
  for _, row in ipairs(rows) do redis.call('XADD', copy, row[1], unpack(row[2])) end
  if #rows == count then return rows[#rows][1], 0 end
  local groups = {}
  for _, raw in ipairs(redis.call('XINFO', 'GROUPS', key)) do
    local g = {}
    for j = 1, #raw, 2 do g[raw[j]] = raw[j + 1] end
    if g.pending > 0 then
      redis.call('DEL', copy)
      return nil, 0
    end
    groups[#groups + 1] = g
  end
  if redis.call('EXISTS', copy) == 0 then -- every entry was deleted: an empty stream
    redis.call('XGROUP', 'CREATE', copy, 'erasure', '0', 'MKSTREAM')
    redis.call('XGROUP', 'DESTROY', copy, 'erasure')
  end
  local info = redis.call('XINFO', 'STREAM', key)
  for j = 1, #info, 2 do
    if info[j] == 'last-generated-id' then redis.call('XSETID', copy, info[j + 1]) end
  end
  for _, g in ipairs(groups) do
    redis.call('XGROUP', 'CREATE', copy, g.name, g['last-delivered-id'])
  end
  redis.call('RENAME', copy, key)
  return nil, 0
end

-- Cart states and product watches the contact left where nothing of it still points: a cart
-- state is reached only from the contact's current cart, its orders and the cart events still in
-- the stream, and a watch (the contact id in a product's :w, keys.py) only from its recent views
-- and cart, which are capped. Recording them all would cost every contact bytes (keys.py) and
-- miss what earlier versions wrote. So each kind's keys of the tenant are walked with SCAN, MATCH
-- its builder with `*` for its part (a tenant id holds no glob character: settings/tenants.py),
-- COUNT `count` per call, on the node serving the tenant's slot, where this script runs. A call
-- looks at ~`count` keys of the node, whatever their tenant: a walk costs ~1 us of Redis per
-- key on the node (docs/privacy.md, Erasure). A SCAN cursor holds only on the server run that
-- gave it: kept with its run_id, a cursor of another run (a restart, a failover) starts the walk
-- over, as the keys' places in its table differ.
local function run_id()
  return string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
end

local function walk(pattern, job, cursor, count, each)
  local run, at = string.match(cursor, '^(%x+):(%d+)$')
  local here = run_id()
  if run ~= here then at = '0' end
  local found = redis.call('SCAN', at, 'MATCH', pattern, 'COUNT', count)
  local n = 0
  for _, key in ipairs(found[2]) do n = n + each(job, key) end
  if found[1] == '0' then return nil, n end
  return here .. ':' .. found[1], n
end

-- A cart state of the contact (or of one stitched into it): its contact field, or its cart's
-- JSON naming one of its identifiers (a state written before its contact was stitched in).
local function cart_state(job, key)
  local f = redis.call('HMGET', key, 'contact', 'cart')
  if (f[1] and job.cids[f[1]]) or (f[2] and matches(job, nil, f[2])) then
    return redis.call('DEL', key)
  end
  return 0
end

-- Where a product's id sits in K_product_watchers(id) and K_fanout(id).
local PROBE = K_product_watchers('\1')
local PID_AT = string.find(PROBE, '\1', 1, true)
local PID_TAIL = #PROBE - PID_AT

-- The contact's watches of a product, and a fan-out's cursor naming it (fanout.lua): without
-- the member the walk goes on from the cursor's score, as after a watcher who left.
local function watches(job, key)
  local n = 0
  for c in pairs(job.cids) do n = n + redis.call('ZREM', key, c) end
  local fanout = K_fanout(string.sub(key, PID_AT, #key - PID_TAIL))
  local member = redis.call('HGET', fanout, 'member')
  if member and job.cids[member] then redis.call('HSET', fanout, 'member', '') end
  return n
end

-- {kind counted, step}, run in this order. Another kind of stored data the contact may be in
-- is one more entry here (a function like these: job, cursor, count -> next cursor, erased).
local STEPS = {
  {'events', function(job, c, n) return scan_stream(K_events, job.uptoEvents, 'e', job, c, n) end},
  {'triggers',
   function(job, c, n) return scan_stream(K_triggers, job.uptoTriggers, 'trigger', job, c, n) end},
  {'deadLetters', dead_letters},
  {'webhookJobs', webhook_jobs},
  -- the refused requests of the debug log (docs/dashboard.md) whose body names it
  {'refusedRequests',
   function(job, c, n) return scan_stream(K_refused, job.uptoRefused, 'r', job, c, n) end},
  {'carts', function(job, c, n) return walk(K_cart('*'), job, c, n, cart_state) end},
  {'productWatches',
   function(job, c, n) return walk(K_product_watchers('*'), job, c, n, watches) end},
  {'eventsCompacted', function(job, c, n) return compact(K_events, job, c, n) end},
  {'triggersCompacted', function(job, c, n) return compact(K_triggers, job, c, n) end},
  {'refusedCompacted', function(job, c, n) return compact(K_refused, job, c, n) end},
  {'destinationJobs', destination_jobs},
  -- to the stream's end, not its end at the start: a job of the contact that failed for good
  -- between the start and the queues' step above was dead-lettered instead of found there
  {'destinationDeadLetters',
   function(job, c, n) return scan_stream(K_destination_dead, '+', 'b', job, c, n) end},
  {'destinationDeadCompacted',
   function(job, c, n) return compact(K_destination_dead, job, c, n) end},
}

if op == 'chunk' then
  local a = {{EraseChunk}}
  local rec = K_erasure(a.erasure)
  local s = redis.call('HMGET', rec, 'owner', 'status', 'step', 'cursor', 'cids', 'exact',
                       'lower', 'hooks', 'uptoEvents', 'uptoTriggers', 'uptoRefused', 'queues')
  if s[1] ~= a.owner or s[2] ~= 'running' then return {'lost'} end
  local job = {cids = {}, exact = cjson.decode(s[6]), lower = cjson.decode(s[7]), hooks = s[8],
               uptoEvents = s[9], uptoTriggers = s[10], uptoRefused = s[11] or '0-0',
               queues = s[12] or '', carts = 0,
               erasure = a.erasure}
  for _, c in ipairs(cjson.decode(s[5])) do job.cids[c] = true end
  local step = tonumber(s[3])
  local kind, run = STEPS[step][1], STEPS[step][2]
  local cursor, n = run(job, s[4], a.count)
  if n > 0 then redis.call('HINCRBY', rec, 'n:' .. kind, n) end
  if job.carts > 0 then redis.call('HINCRBY', rec, 'n:carts', job.carts) end
  if cursor then
    redis.call('HSET', rec, 'cursor', cursor)
  elseif step < #STEPS then
    redis.call('HSET', rec, 'step', step + 1, 'cursor', '')
  else -- done: the identifiers it matched by go too
    redis.call('HSET', rec, 'status', 'done', 'finished', NOW)
    redis.call('HDEL', rec, 'owner', 'step', 'cursor', 'cids', 'exact', 'lower', 'hooks',
               'uptoEvents', 'uptoTriggers', 'uptoRefused', 'queues')
    redis.call('ZREM', K_erasures, a.erasure)
    return {'done'}
  end
  redis.call('ZADD', K_erasures, NOW + a.lease_ms, a.erasure)
  return {'more'}
end
return redis.error_reply('unknown op ' .. tostring(op))
