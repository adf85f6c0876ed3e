-- One chunk of a contact's export (gateway/api/privacy.py, docs/privacy.md): of the event or
-- trigger stream (`source`), at most `count` entries older than `cursor` ('': from the newest)
-- are read, and the bodies of those that are the contact's, or of one stitched into it
-- (K_contact_stitched), are returned newest first after the cursor to go on from ('': the
-- stream's start is reached). An event names its contact in its field `c`, a trigger in its JSON.
-- The stream is read here, not in the gateway, so that only the contact's entries leave Redis,
-- and in chunks, so that a long stream never holds Redis up for long.
local args = {{ExportChunk}}
local events = args.source == 'events'
local theirs, needles = {[args.contact_id] = true}, {cjson.encode(args.contact_id)}
for _, c in ipairs(redis.call('SMEMBERS', K_contact_stitched(args.contact_id))) do
  theirs[c] = true
  needles[#needles + 1] = cjson.encode(c)
end
local rows = redis.call('XREVRANGE', events and K_events or K_triggers,
                        args.cursor == '' and '+' or '(' .. args.cursor, '-', 'COUNT', args.count)
local out = {#rows == args.count and rows[#rows][1] or ''}
local wanted = events and 'c' or 'trigger'
for _, row in ipairs(rows) do
  local f, value, body = row[2], nil, nil
  for j = 1, #f, 2 do
    if f[j] == wanted then value = f[j + 1] elseif f[j] == 'e' then body = f[j + 1] end
  end
  if events then
    if theirs[value] then out[#out + 1] = body end
  elseif value then
    for _, needle in ipairs(needles) do
      if string.find(value, needle, 1, true) then
        out[#out + 1] = value
        break
      end
    end
  end
end
return out
