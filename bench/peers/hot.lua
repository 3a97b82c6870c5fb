-- wrk script for bench/peers.sh: one URL over and over (the hot-cache scenario). No per-response
-- Lua (so that wrk itself is not the bottleneck at 64 connections); status errors come from wrk.
-- Environment: URL_TEMPLATE (with {w} and {h}), BASE_W, BASE_H, ACCEPT, RESULT_FILE.
local tmpl = os.getenv("URL_TEMPLATE")
local w = os.getenv("BASE_W") or "400"
local h = os.getenv("BASE_H") or "0"
local path = tmpl:gsub("{w}", w):gsub("{h}", h)
wrk.method = "GET"
wrk.path = path
wrk.headers["Accept"] = os.getenv("ACCEPT") or "*/*"
local result_file = os.getenv("RESULT_FILE")

function done(summary, latency, requests)
  local e = summary.errors
  local sock = e.connect + e.read + e.write + e.timeout
  local secs = summary.duration / 1e6
  local ok = summary.requests - e.status
  local mean_bytes = 0
  if summary.requests > 0 then mean_bytes = summary.bytes / summary.requests end
  local line = string.format(
    "requests=%d duration_s=%.3f rps=%.3f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f ok=%d bad_status=%d bad_ct=0 sock_err=%d mean_bytes=%.0f sent=%d uniq=1",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, ok, e.status, sock, mean_bytes, summary.requests)
  if result_file then
    local f = io.open(result_file, "w")
    f:write(line, "\n")
    f:close()
  end
end
