-- POST /v1/destinations/dead/{id}/retry (arguments.DestinationRevive): the dead letter goes back
-- to its destination's queue as a new job (webhook.lua wrote its fields d, k, b). Returns 1, 0 for
-- no such dead letter, -1 when its destination is no longer configured (it is kept).
local args = {{DestinationRevive}}
local entry = redis.call('XRANGE', K_destination_dead, args.dead_id, args.dead_id)[1]
if not entry then return 0 end
local f = {}
for j = 1, #entry[2], 2 do f[entry[2][j]] = entry[2][j + 1] end
local known = false
for id in string.gmatch(args.configured, '[^,]+') do
  if id == f.d then known = true end
end
if not known then return -1 end
redis.call('XADD', K_destination_queue(f.d), '*', f.k, f.b)
redis.call('XDEL', K_destination_dead, args.dead_id)
return 1
