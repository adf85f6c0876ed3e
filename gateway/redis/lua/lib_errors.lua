-- The failure of one event or order (scripts.py puts the lib_*.lua files after lib.lua).
-- An event's (or an order's) writes run under pcall: an error there, a damaged key (WRONGTYPE) or
-- a value Lua cannot read, fails that one alone, and the call goes on with the next. Its answer
-- is "e|<the error>" (results.EventResult.failed); writes it made before the error stay (Redis
-- has no rollback). Errors of constants.WHOLE_CALL_ERRORS are raised again and fail the call as
-- before: they concern Redis or the call, not the event (Redis refusing writes refuses the
-- script's first, so nothing is written), the call stops at once instead of failing every event
-- in turn, and Python answers it as it did (a 503), with no per-event mapping to keep.
local WHOLE_CALL_ERRORS = {{WHOLE_CALL_ERRORS}}

local function failed(err)
  local message = type(err) == 'table' and err.err or tostring(err)
  for _, code in ipairs(WHOLE_CALL_ERRORS) do
    if string.sub(message, 1, #code) == code or string.find(message, '-' .. code, 1, true) then
      error(err, 0)
    end
  end
  return 'e|' .. message
end
