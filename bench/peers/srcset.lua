-- wrk script for bench/peers.sh, the srcset scenario: N distinct sources, each asked at every width
-- of a srcset in a burst. One sequence, (source 0, width 0), (source 0, width 1), ... (source 0,
-- width W-1), (source 1, width 0), ..., cycling through the N sources; each connection that is ready
-- takes the next pair, so at -c W (one connection per width) the W widths of one source are in
-- flight together, and the next source's begin as they finish. Run it with -t1: wrk's threads do
-- not share Lua state, so one thread is what makes the sequence shared (peers.sh does, via S_THREADS).
-- The warm-up phase asks the probe source only (never one of the N measured sources).
-- Environment: URL_TEMPLATE (path with {src} and {w}, e.g. /img/srcset/{src}.jpg?w={w}&q=80&fm=jpeg),
-- SRCSET_SOURCES (N, default 50; names s00..), SRCSET_WIDTHS (default "320 480 640 960 1280 1920"),
-- ACCEPT, EXPECT_CT, PHASE (warm|measure), RESULT_FILE. Same RESULT line as vary.lua, plus cycles=.

local tmpl = os.getenv("URL_TEMPLATE")
local nsrc = tonumber(os.getenv("SRCSET_SOURCES") or "50")
local widths = {}
for w in string.gmatch(os.getenv("SRCSET_WIDTHS") or "320 480 640 960 1280 1920", "%d+") do
  table.insert(widths, w)
end
local accept = os.getenv("ACCEPT") or "*/*"
local expect_ct = string.lower(os.getenv("EXPECT_CT") or "")
local phase = os.getenv("PHASE") or "measure"
local result_file = os.getenv("RESULT_FILE")

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  n, ok, bytes, bad_status, bad_ct = 0, 0, 0, 0, 0
  wrk.headers["Accept"] = accept
end

function request()
  local nw = #widths
  local src
  if phase == "warm" then
    src = "probe"
  else
    src = string.format("s%02d", math.floor(n / nw) % nsrc)
  end
  local w = widths[(n % nw) + 1]
  n = n + 1
  local path = tmpl:gsub("{src}", src):gsub("{w}", w):gsub("{h}", "0")
  return wrk.format("GET", path)
end

function response(status, headers, body)
  if status ~= 200 then
    bad_status = bad_status + 1
    return
  end
  local ct = ""
  for k, v in pairs(headers) do
    if string.lower(k) == "content-type" then ct = string.lower(v) end
  end
  if expect_ct ~= "" and ct:sub(1, #expect_ct) ~= expect_ct then
    bad_ct = bad_ct + 1
  end
  ok = ok + 1
  bytes = bytes + #body
end

function done(summary, latency, requests)
  local t_ok, t_bytes, t_status, t_ct, t_sent = 0, 0, 0, 0, 0
  for _, t in ipairs(threads) do
    t_ok = t_ok + t:get("ok")
    t_bytes = t_bytes + t:get("bytes")
    t_status = t_status + t:get("bad_status")
    t_ct = t_ct + t:get("bad_ct")
    t_sent = t_sent + t:get("n")
  end
  local e = summary.errors
  local sock = e.connect + e.read + e.write + e.timeout
  local secs = summary.duration / 1e6
  local mean_bytes = 0
  if t_ok > 0 then mean_bytes = t_bytes / t_ok end
  local per_cycle = nsrc * #widths
  local uniq = math.min(t_sent, per_cycle)
  if phase == "warm" then uniq = math.min(t_sent, #widths) end
  local line = string.format(
    "requests=%d duration_s=%.3f rps=%.3f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f ok=%d bad_status=%d bad_ct=%d sock_err=%d mean_bytes=%.0f sent=%d uniq=%d cycles=%.2f",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, t_ok, t_status, t_ct, sock, mean_bytes, t_sent, uniq, t_sent / per_cycle)
  if result_file then
    local f = io.open(result_file, "w")
    f:write(line .. "\n")
    f:close()
  end
  io.write("RESULT " .. line .. "\n")
end
