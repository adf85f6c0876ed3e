-- A tenant's destinations (docs/destinations.md): each accepted event or stored order is queued
-- for them in the step that stores it, so none is stored but never forwarded.
-- `spec` is arguments.TenantLimits.destinations: "<id>=<type>,<type>;<id>=" (no types: all).
local function destination_queues(spec)
  local found = {}
  for id, types in string.gmatch(spec, '([^;=]+)=([^;]*)') do
    local wanted = nil
    if types ~= '' then
      wanted = {}
      for ty in string.gmatch(types, '[^,]+') do wanted[ty] = true end
    end
    found[#found + 1] = {queue = K_destination_queue(id), wanted = wanted}
  end
  return found
end

-- Queue `body` for each destination taking it: kind 'e' an event of type `ty`, 'o' an order
-- (every destination takes orders; `ty` nil). webhook.lua's claim hands out kind .. body.
local function forward(dests, kind, ty, body)
  for _, d in ipairs(dests) do
    if not ty or not d.wanted or d.wanted[ty] then
      redis.call('XADD', d.queue, '*', kind, body)
    end
  end
end
