-- One step of a webhook's delivery schedule (arguments.WebhookStep; `op` says which):
--   enqueue (WebhookEnqueue): move new triggers of the stream (read through the webhook's
--       consumer group) into the schedule, due now; XACKed in the same step, so a trigger is
--       scheduled exactly once even if the process dies right after.
--   claim (WebhookClaim): the due jobs [streamId, body, attempts, ...] (results.ClaimedJob);
--       each is pushed back by the lease, so a process that dies mid-POST leaves it to be
--       retried (at least once).
--   done (WebhookDone): delivered, forget it (counted in the day's trigger figures).
--   retry (WebhookRetry): failed, try again at due_ms.
--   dead (WebhookDead): failed for good, move to the dead-letter list (counted too).
-- Keys: K_webhook_due (zset streamId -> due ms), K_webhook_jobs (hash streamId -> trigger JSON),
-- K_webhook_tries (hash streamId -> attempts), K_dead_letters (list, newest first).
local step = {{WebhookStep}}
local op = step.op
local due, jobs, tries = K_webhook_due(step.hook), K_webhook_jobs(step.hook),
                         K_webhook_tries(step.hook)
local MAX_DEAD = {{MAX_DEAD}}

local function forget(id)
  local existed = redis.call('ZREM', due, id)
  redis.call('HDEL', jobs, id)
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
  local read = redis.call('XREADGROUP', 'GROUP', args.group, 'gateway', 'COUNT', args.count,
                          'STREAMS', K_triggers, '>')
  if not read then return 0 end
  local added = 0
  for _, entry in ipairs(read[1][2]) do
    local id, fields = entry[1], entry[2]
    local f = {}
    for j = 1, #fields, 2 do f[fields[j]] = fields[j + 1] end
    if f.trigger and (not wanted or wanted[f.type]) then
      redis.call('HSET', jobs, id, f.trigger)
      redis.call('ZADD', due, NOW, id)
      added = added + 1
    end
    redis.call('XACK', K_triggers, args.group, id)
  end
  return added
elseif op == 'claim' then
  local args = {{WebhookClaim}}
  local out = {}
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', due, '-inf', NOW, 'LIMIT', 0, args.count)) do
    redis.call('ZADD', due, NOW + args.lease_ms, id)
    out[#out + 1] = id
    out[#out + 1] = redis.call('HGET', jobs, id) or ''
    out[#out + 1] = redis.call('HINCRBY', tries, id, 1)
  end
  return out
elseif op == 'done' then
  local args = {{WebhookDone}}
  if forget(args.stream_id) == 0 then return 0 end -- delivered twice (a lease ran out): once
  count_stat(args.created_ms, args.trigger_type .. '|delivered')
  return 1
elseif op == 'retry' then
  local args = {{WebhookRetry}}
  if redis.call('ZSCORE', due, args.stream_id) then
    return redis.call('ZADD', due, args.due_ms, args.stream_id)
  end
  return 0
elseif op == 'dead' then
  local args = {{WebhookDead}}
  if forget(args.stream_id) == 0 then return 0 end
  redis.call('LPUSH', K_dead_letters, args.entry)
  redis.call('LTRIM', K_dead_letters, 0, MAX_DEAD - 1)
  count_stat(args.created_ms, args.trigger_type .. '|failed')
  return 1
end
return redis.error_reply('unknown op ' .. tostring(op))
