-- The delivery schedule of one webhook. ARGV: prefix, op, hook id, then per op:
--   enqueue group types_csv now count: move new triggers of the stream (read through the
--       webhook's consumer group) into the schedule, due now; XACKed in the same step, so a
--       trigger is scheduled exactly once even if the process dies right after.
--   claim now lease_ms count: the due jobs [streamId, body, attempts, ...]; each is pushed back
--       by the lease, so a process that dies mid-POST leaves it to be retried (at least once).
--   done streamId: delivered, forget it.
--   retry streamId due_ms: failed, try again at due_ms.
--   dead streamId entry_json max_dead: failed for good, move to the dead-letter list.
-- Keys: K_webhook_due (zset streamId -> due ms), K_webhook_jobs (hash streamId -> trigger JSON),
-- K_webhook_tries (hash streamId -> attempts), K_dead_letters (list, newest first).
local op = ARGV[2]
local hook = ARGV[3]
local due, jobs, tries = K_webhook_due(hook), K_webhook_jobs(hook), K_webhook_tries(hook)

local function forget(id)
  local existed = redis.call('ZREM', due, id)
  redis.call('HDEL', jobs, id)
  redis.call('HDEL', tries, id)
  return existed
end

if op == 'enqueue' then
  local stream, group, now = K_triggers, ARGV[4], ARGV[6]
  local wanted = nil
  if ARGV[5] ~= '' then
    wanted = {}
    for ty in string.gmatch(ARGV[5], '[^,]+') do wanted[ty] = true end
  end
  local read = redis.call('XREADGROUP', 'GROUP', group, 'gateway', 'COUNT', ARGV[7],
                          'STREAMS', stream, '>')
  if not read then return 0 end
  local added = 0
  for _, entry in ipairs(read[1][2]) do
    local id, fields = entry[1], entry[2]
    local f = {}
    for j = 1, #fields, 2 do f[fields[j]] = fields[j + 1] end
    if f.trigger and (not wanted or wanted[f.type]) then
      redis.call('HSET', jobs, id, f.trigger)
      redis.call('ZADD', due, now, id)
      added = added + 1
    end
    redis.call('XACK', stream, group, id)
  end
  return added
elseif op == 'claim' then
  local now, lease = tonumber(ARGV[4]), tonumber(ARGV[5])
  local out = {}
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, ARGV[6])) do
    redis.call('ZADD', due, now + lease, id)
    out[#out + 1] = id
    out[#out + 1] = redis.call('HGET', jobs, id) or ''
    out[#out + 1] = redis.call('HINCRBY', tries, id, 1)
  end
  return out
elseif op == 'done' then
  return forget(ARGV[4])
elseif op == 'retry' then
  if redis.call('ZSCORE', due, ARGV[4]) then return redis.call('ZADD', due, ARGV[5], ARGV[4]) end
  return 0
elseif op == 'dead' then
  if forget(ARGV[4]) == 0 then return 0 end
  redis.call('LPUSH', K_dead_letters, ARGV[5])
  redis.call('LTRIM', K_dead_letters, 0, tonumber(ARGV[6]) - 1)
  return 1
end
return redis.error_reply('unknown op ' .. tostring(op))
