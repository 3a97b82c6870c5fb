-- Shared by the wrk scripts of bench/peers.sh (loaded with dofile: peers.sh runs wrk from
-- bench/peers/): the per-thread count of answers (`response`, which wrk calls) and the RESULT line
-- (`report`). Environment: EXPECT_CT (content-type prefix of a correct answer), RESULT_FILE.

local expect_ct = string.lower(os.getenv("EXPECT_CT") or "")
local result_file = os.getenv("RESULT_FILE")

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

-- The RESULT line from wrk's summary and the threads' counters; `uniq(sent)` says how many
-- distinct URLs were sent, `extra` is appended as is.
function report(summary, latency, threads, uniq, extra)
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
  local line = string.format(
    "requests=%d duration_s=%.3f rps=%.3f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f ok=%d bad_status=%d bad_ct=%d sock_err=%d mean_bytes=%.0f sent=%d uniq=%d",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, t_ok, t_status, t_ct, sock, mean_bytes, t_sent, uniq(t_sent))
  line = line .. (extra and extra(t_sent) or "")
  if result_file then
    local f = io.open(result_file, "w")
    f:write(line .. "\n")
    f:close()
  end
  io.write("RESULT " .. line .. "\n")
end
