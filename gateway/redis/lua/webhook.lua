-- One step of a webhook's or a destination's delivery schedule (arguments.WebhookStep; `op` says
-- which, `source` whose):
--   enqueue (WebhookEnqueue): move new entries of the source stream (read through the consumer
--       group) into the schedule, due now; XACKed in the same step, so an entry is scheduled
--       exactly once even if the process dies right after.
--   claim (WebhookClaim): the due jobs [streamId, body, attempts, ...] (results.ClaimedJob);
--       each is pushed back by the lease, so a process that dies mid-POST leaves it to be
--       retried (at least once).
--   done (WebhookDone): delivered, forget them (a webhook's counted in the day's trigger
--       figures).
--   retry (WebhookRetry): failed, try again at due_ms.
--   dead (WebhookDead): failed for good, move to the dead letters (a webhook's counted too).
-- A webhook ("triggers") reads the trigger stream; its keys: K_webhook_due (zset streamId -> due
-- ms), K_webhook_jobs (hash streamId -> trigger JSON), K_webhook_tries (hash streamId ->
-- attempts), K_dead_letters (list, newest first) and K_webhook_dead (zset streamId -> dead ms, the
-- newest MAX_DEAD). A destination ("queue") reads its own queue
-- (lib_destinations.lua), which keeps each job (field kind -> body) until it is forwarded or dead,
-- so its length is what is undelivered; its dead letters are the stream K_destination_dead
-- (fields d destination, k kind, b body, m the entry), re-queued by destination.lua.
local step = {{WebhookStep}}
local op, queue = step.op, step.source == 'queue'
local due, jobs, tries
if queue then
  due, jobs, tries = K_destination_due(step.hook), K_destination_queue(step.hook),
                     K_destination_tries(step.hook)
else
  due, jobs, tries = K_webhook_due(step.hook), K_webhook_jobs(step.hook),
                     K_webhook_tries(step.hook)
end
local MAX_DEAD = {{MAX_DEAD}}

-- A queued job's kind and body ('e' an event, 'o' an order), or nil when it is gone.
local function queued(id)
  local entry = redis.call('XRANGE', jobs, id, id)[1]
  if entry then return entry[2][1], entry[2][2] end
  return nil
end

local function forget(id)
  local existed = redis.call('ZREM', due, id)
  if queue then
    redis.call('XDEL', jobs, id)
  else
    redis.call('HDEL', jobs, id)
  end
  redis.call('HDEL', tries, id)
  return existed
end

if op == 'enqueue' then
  local args = {{WebhookEnqueue}}
  local wanted = nil
  if args.types ~= '' then
    wanted = {}
    for ty in string.gmatch(args.types, '[^,]+') do wanted[ty] = true end
  end
  local source = queue and jobs or K_triggers
  local read = redis.call('XREADGROUP', 'GROUP', args.group, 'gateway', 'COUNT', args.count,
                          'STREAMS', source, '>')
  if not read then return 0 end
  local ids, scheduled = {}, {} -- one XACK and one ZADD for the whole read
  for _, entry in ipairs(read[1][2]) do
    local id, fields = entry[1], entry[2]
    ids[#ids + 1] = id
    local take = queue
    if not queue then
      local f = {}
      for j = 1, #fields, 2 do f[fields[j]] = fields[j + 1] end
      take = f.trigger and (not wanted or wanted[f.type])
      if take then redis.call('HSET', jobs, id, f.trigger) end
    end
    if take then
      scheduled[#scheduled + 1] = NOW
      scheduled[#scheduled + 1] = id
    end
  end
  if #scheduled > 0 then redis.call('ZADD', due, unpack(scheduled)) end
  redis.call('XACK', source, args.group, unpack(ids))
  return #scheduled / 2
elseif op == 'claim' then
  local args = {{WebhookClaim}}
  local out = {}
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', due, '-inf', NOW, 'LIMIT', 0, args.count)) do
    local body
    if queue then
      local kind, text = queued(id)
      body = kind and kind .. text
    else
      body = redis.call('HGET', jobs, id)
    end
    if body then
      redis.call('ZADD', due, NOW + args.lease_ms, id)
      out[#out + 1] = id
      out[#out + 1] = body
      out[#out + 1] = redis.call('HINCRBY', tries, id, 1)
    else -- its data was erased: nothing left to send
      forget(id)
    end
  end
  return out
elseif op == 'done' then
  local args = {{WebhookDone}}
  -- each "<streamId>" or, for a webhook, "<streamId>:<trigger type>" (results.py)
  local forgotten = 0
  for item in string.gmatch(args.stream_ids, '[^,]+') do
    local id, ty = string.match(item, '^([^:]+):?(.*)$')
    -- delivered twice (a lease ran out): counted once
    if forget(id) == 1 then
      forgotten = forgotten + 1
      if ty ~= '' then count_stat(tonumber(string.match(id, '^%d+')), ty .. '|delivered') end
    end
  end
  return forgotten
elseif op == 'retry' then
  local args = {{WebhookRetry}}
  if redis.call('ZSCORE', due, args.stream_id) then
    return redis.call('ZADD', due, args.due_ms, args.stream_id)
  end
  return 0
elseif op == 'dead' then
  local args = {{WebhookDead}}
  local kind, body
  if queue then kind, body = queued(args.stream_id) end
  if forget(args.stream_id) == 0 then return 0 end
  if queue then
    if not kind then return 0 end
    redis.call('XADD', K_destination_dead, 'MAXLEN', '~', MAX_DEAD, '*',
               'd', step.hook, 'k', kind, 'b', body, 'm', args.entry)
  else
    redis.call('LPUSH', K_dead_letters, args.entry)
    redis.call('LTRIM', K_dead_letters, 0, MAX_DEAD - 1)
    -- which triggers died, per webhook, for the feed's delivery states (api/deliveries.py)
    local dead = K_webhook_dead(step.hook)
    redis.call('ZADD', dead, NOW, args.stream_id)
    redis.call('ZREMRANGEBYRANK', dead, 0, -MAX_DEAD - 1)
    count_stat(args.created_ms, args.trigger_type .. '|failed')
  end
  return 1
end
return redis.error_reply('unknown op ' .. tostring(op))
