-- wrk script: POST the body in $BENCH_BODY with the headers the snippet's sendBeacon sends, and
-- print one JSON line of results for benchmarks/run.py to read. No response() callback: wrk would
-- copy every answer into Lua; summary.errors.status already counts answers >= 400.
-- Where the body holds @@ID@@ (every place that names the contact), each request replaces it with
-- a number of its own: a new visitor per request.
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "text/plain;charset=UTF-8"
wrk.headers["Origin"] = "https://shop.example"

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local parts = {}
for part in (wrk.body .. "@@ID@@"):gmatch("(.-)@@ID@@") do parts[#parts + 1] = part end
if #parts > 1 then
  local sent = 0
  function request()
    sent = sent + 1
    local id = string.format("%d%08d", tid, sent)
    return wrk.format(nil, nil, nil, table.concat(parts, id))
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"non2xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.status, e.connect + e.read + e.write + e.timeout))
end
