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

dofile("counted.lua")

local tmpl = os.getenv("URL_TEMPLATE")
local nsrc = tonumber(os.getenv("SRCSET_SOURCES") or "50")
local widths = {}
for w in string.gmatch(os.getenv("SRCSET_WIDTHS") or "320 480 640 960 1280 1920", "%d+") do
  table.insert(widths, w)
end
local accept = os.getenv("ACCEPT") or "*/*"
local phase = os.getenv("PHASE") or "measure"

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

function done(summary, latency, requests)
  local per_cycle = nsrc * #widths
  report(summary, latency, threads, function(sent)
    if phase == "warm" then return math.min(sent, #widths) end
    return math.min(sent, per_cycle)
  end, function(sent) return string.format(" cycles=%.2f", sent / per_cycle) end)
end
