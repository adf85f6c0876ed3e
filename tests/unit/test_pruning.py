"""pruning.py: a script keeps every statement that runs and what they reach, and only that."""

from __future__ import annotations

from gateway.redis.pruning import prune, statements
from gateway.redis.scripts import Script

LIBRARY = """\
local P = ARGV[1]
local function K_rate(key_id) return P .. ':rate:' .. key_id end
local function K_events() return P .. ':events' end
local NAMES = {
  email = 'email',
  phone = 'phone',
}
local UNUSED = {1, 2, {3}}
local SEEN = redis.call('EXISTS', 'x') -- runs: it reaches Redis
local function helper(s)
  -- an 'end' in a comment, and one in a string: "end)"
  if s == 'end' then return NAMES[s] end
  for _, part in ipairs({s}) do
    local f = function(x) return x end
    s = f(part)
  end
  return s
end
local function used(s) return helper(s) .. '(' end
local function unused_caller() return used('a') end
local built = used('b')
"""


def test_a_script_keeps_what_runs_and_what_it_reaches():
    script = LIBRARY + "return redis.call('GET', K_rate(built))\n"
    kept = prune(script)
    reached = ("local P", "K_rate", "local NAMES", "local SEEN", "helper(s)", "used(s)", "built")
    for name in reached:
        assert name in kept
    for dropped in ("K_events", "UNUSED", "unused_caller"):
        assert dropped not in kept
    # whole lines of the script, in its order
    lines = kept.split("\n")
    assert [line for line in script.split("\n") if line in lines] == lines


def test_a_function_spanning_lines_is_one_statement():
    (function,) = [s for s in statements(LIBRARY) if s.declares == ("helper",)]
    assert function.function
    assert function.text.startswith("local function helper(s)")
    assert function.text.endswith("\nend")
    assert "NAMES" in function.names and "comment" not in function.names  # code only


def test_the_rate_script_makes_no_library_function():
    """rate.lua runs on every request of a rate-limited key: it makes its own key's builder and
    nothing of lib.lua's ~80 functions."""
    text = Script.load("rate").text
    assert [s.declares for s in statements(text) if s.function] == [("K_rate",)]
    assert "local function emit_trigger" in Script.load("detect").text
