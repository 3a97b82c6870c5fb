-- wrk script: request {path}?w=<base±10>&... so that consecutive requests are distinct URLs.
-- Env: REFRACT_PATH (e.g. /img/kleiber.jpg), REFRACT_QUERY (e.g. fm=jpeg&q=80), REFRACT_W, REFRACT_H (0 = none),
-- REFRACT_ACCEPT, REFRACT_VARY (0 = one hot URL).
local path = os.getenv("REFRACT_PATH")
local query = os.getenv("REFRACT_QUERY") or ""
local base_w = tonumber(os.getenv("REFRACT_W") or "400")
local base_h = tonumber(os.getenv("REFRACT_H") or "0")
local accept = os.getenv("REFRACT_ACCEPT") or "*/*"
local vary = (os.getenv("REFRACT_VARY") or "1") ~= "0"
local counter = 0
request = function()
  counter = counter + 1
  local d = vary and ((counter % 21) - 10) or 0
  local q = "w=" .. (base_w + d)
  if base_h > 0 then q = q .. "&h=" .. (base_h + d) end
  if query ~= "" then q = q .. "&" .. query end
  return wrk.format("GET", path .. "?" .. q, { ["Accept"] = accept })
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.2f %.2f %.2f %d %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout,
    summary.requests))
end
