-- wrk script for bench/soak.py: valid SDK event batches, each one new, posted to /v1/log_event as the
-- legacy `statsig` SDK posts them (gzip body, Content-Encoding: gzip, STATSIG-API-KEY header).
--
-- Each request is a batch of SOAK_USERS users, each with one exposure of SOAK_CONFIG and one `click`
-- event; user ids are unique per thread and request ("w<thread>-<request>-<user>"), so that no batch is a
-- re-send and every acknowledged event must be a new row. wrk's LuaJIT has no zlib: the gzip member is
-- written with stored (uncompressed) deflate blocks and a real CRC-32, which every gzip reader accepts.
-- done() prints one line, "SOAK-WRK {json}", with the statuses and the events the server acknowledged.

local bit = require("bit")

local crc_table = {}
for i = 0, 255 do
  local c = i
  for _ = 1, 8 do
    if bit.band(c, 1) == 1 then
      c = bit.bxor(bit.rshift(c, 1), 0xEDB88320)
    else
      c = bit.rshift(c, 1)
    end
  end
  crc_table[i] = c
end

local function crc32(s)
  local c = 0xFFFFFFFF
  for i = 1, #s do
    c = bit.bxor(crc_table[bit.band(bit.bxor(c, s:byte(i)), 0xFF)], bit.rshift(c, 8))
  end
  return bit.bxor(c, 0xFFFFFFFF)
end

local function le32(n)
  return string.char(bit.band(n, 0xFF), bit.band(bit.rshift(n, 8), 0xFF),
    bit.band(bit.rshift(n, 16), 0xFF), bit.band(bit.rshift(n, 24), 0xFF))
end

local function gzip_stored(s)
  local parts = { "\31\139\8\0\0\0\0\0\0\255" }
  local pos, n = 1, #s
  repeat
    local chunk = s:sub(pos, pos + 65534)
    pos = pos + #chunk
    local len = #chunk
    local nlen = bit.band(bit.bnot(len), 0xFFFF)
    parts[#parts + 1] = string.char(pos > n and 1 or 0, bit.band(len, 0xFF), bit.rshift(len, 8),
      bit.band(nlen, 0xFF), bit.rshift(nlen, 8)) .. chunk
  until pos > n
  parts[#parts + 1] = le32(crc32(s)) .. le32(n)
  return table.concat(parts)
end

local threads = {}
local counter = 1

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local key, config, version, users, prefix
local rules = {}
-- Globals, not locals: done() reads them from each thread with thread:get().
sent, acked, rejected, ignored = 0, 0, 0, 0
statuses = {}

function init(args)
  key = os.getenv("SOAK_KEY")
  config = os.getenv("SOAK_CONFIG")
  version = os.getenv("SOAK_VERSION") or "1"
  users = tonumber(os.getenv("SOAK_USERS") or "50")
  prefix = os.getenv("SOAK_PREFIX") or "w"
  for rule in string.gmatch(os.getenv("SOAK_RULES") or "", "[^,]+") do
    rules[#rules + 1] = rule
  end
end

local function batch()
  sent = sent + 1
  local now = string.format("%d", os.time() * 1000)
  local events = {}
  for j = 1, users do
    local user = string.format(
      '{"userID":"%s%d-%d-%d","country":"DE","locale":"de_DE","custom":{"plan":"pro","age":%d},' ..
      '"statsigEnvironment":{"tier":"production"}}', prefix, id, sent, j, 20 + j % 50)
    events[#events + 1] = string.format(
      '{"eventName":"statsig::config_exposure","user":%s,"time":%s,"metadata":{"config":"%s","ruleID":"%s",' ..
      '"rulePassed":"true","configVersion":"%s","reason":"Network"},"secondaryExposures":[]}',
      user, now, config, rules[(j % #rules) + 1], version)
    events[#events + 1] = string.format(
      '{"eventName":"click","user":%s,"time":%s,"value":%d,"metadata":{"page":"home"}}', user, now, j % 7)
  end
  return '{"events":[' .. table.concat(events, ",") ..
    '],"statsigMetadata":{"sdkType":"py-server","sdkVersion":"0.72.1"}}'
end

function request()
  local headers = {
    ["STATSIG-API-KEY"] = key,
    ["Content-Type"] = "application/json",
    ["Content-Encoding"] = "gzip",
    ["STATSIG-SDK-TYPE"] = "py-server",
    ["STATSIG-SDK-VERSION"] = "0.72.1",
  }
  return wrk.format("POST", "/v1/log_event", headers, gzip_stored(batch()))
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 200 then
    acked = acked + tonumber(body:match('"accepted":(%d+)') or "0")
    ignored = ignored + tonumber(body:match('"ignored":(%d+)') or "0")
    local list = body:match('"rejected":%[(.-)%]') or ""
    for _ in list:gmatch('"index"') do
      rejected = rejected + 1
    end
  end
end

function done(summary, latency, requests)
  local totals = { acked = 0, rejected = 0, ignored = 0, sent = 0 }
  local merged = {}
  for _, thread in ipairs(threads) do
    totals.acked = totals.acked + thread:get("acked")
    totals.rejected = totals.rejected + thread:get("rejected")
    totals.ignored = totals.ignored + thread:get("ignored")
    totals.sent = totals.sent + thread:get("sent")
    for status, count in pairs(thread:get("statuses")) do
      merged[tostring(status)] = (merged[tostring(status)] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(merged) do
    parts[#parts + 1] = string.format('"%s":%d', status, count)
  end
  io.write(string.format(
    'SOAK-WRK {"requests":%d,"batches_built":%d,"acknowledged":%d,"rejected":%d,"ignored":%d,' ..
    '"socket_errors":%d,"timeouts":%d,"latency_p50_ms":%.1f,"latency_p99_ms":%.1f,"statuses":{%s}}\n',
    summary.requests, totals.sent, totals.acked, totals.rejected, totals.ignored,
    summary.errors.connect + summary.errors.read + summary.errors.write, summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, table.concat(parts, ",")))
end
