-- wrk script for bench/ingest_log.py: posts real gzip batches of 500 SDK events to /v1/log_event.
--
-- The bodies are made by the Python side (realistic users, exposures and clicks, gzip level 6 like
-- the SDKs' zlib default) and written to LOG_BODIES as "<8-digit length><bytes>" records; each wrk
-- thread cycles through them from its own offset. done() prints "LOG-WRK {json}" with the statuses
-- and the events acknowledged (each 200 acknowledges a whole batch of LOG_EVENTS events).

local bodies = {}
local threads = {}
local counter = 1
local key
local events_per_batch
-- Globals, not locals: done() reads them from each thread with thread:get().
statuses = {}
acked = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  key = os.getenv("LOG_KEY")
  events_per_batch = tonumber(os.getenv("LOG_EVENTS") or "500")
  pace = tonumber(os.getenv("LOG_DELAY_MS") or "0")
  local file = assert(io.open(os.getenv("LOG_BODIES"), "rb"))
  local data = file:read("*a")
  file:close()
  local pos = 1
  while pos <= #data do
    local length = tonumber(data:sub(pos, pos + 7))
    bodies[#bodies + 1] = data:sub(pos + 8, pos + 7 + length)
    pos = pos + 8 + length
  end
  next_body = (id * 7919) % #bodies
end

-- LOG_DELAY_MS paces each connection (a fixed offered rate, for the sustained-processing run).
function delay()
  return pace
end

function request()
  next_body = next_body % #bodies + 1
  local headers = {
    ["STATSIG-API-KEY"] = key,
    ["Content-Type"] = "application/json",
    ["Content-Encoding"] = "gzip",
  }
  return wrk.format("POST", "/v1/log_event", headers, bodies[next_body])
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 200 then
    acked = acked + events_per_batch
  end
end

function done(summary, latency, requests)
  local merged = {}
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("acked")
    for status, count in pairs(thread:get("statuses")) do
      merged[tostring(status)] = (merged[tostring(status)] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(merged) do
    parts[#parts + 1] = string.format('"%s":%d', status, count)
  end
  io.write(string.format(
    'LOG-WRK {"requests":%d,"duration_s":%.3f,"acknowledged":%d,"socket_errors":%d,"timeouts":%d,' ..
    '"latency_p50_ms":%.1f,"latency_p99_ms":%.1f,"statuses":{%s}}\n',
    summary.requests, summary.duration / 1e6, total,
    summary.errors.connect + summary.errors.read + summary.errors.write, summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, table.concat(parts, ",")))
end
