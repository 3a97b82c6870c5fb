-- wrk script for bench/soak.sh: a mix of cache hits, misses, uploads, API reads and bad
-- requests, with every response status counted (summed over threads in done()).
-- Env: SOAK_KEY (API key), SOAK_JPEG (path of a small JPEG used to make distinct uploads).
local key = os.getenv("SOAK_KEY") or ""
local threads = {}
local counter = 0
local jpeg = ""
do
  local f = io.open(os.getenv("SOAK_JPEG") or "", "rb")
  if f then jpeg = f:read("*a"); f:close() end
end
local sources = {
  "rocket-640x427-adobergb.jpg", "dice-800x600-alpha.png", "path-2560x1600-icc.jpg",
  "flower-480x360-exif.webp", "horses-402x280-anim.gif", "cmyk-100x100.jpg",
  "spacefun-2048x1542-palette.png", "orientation/Landscape_6.jpg",
}
local bad = {
  "/img/rocket-640x427-adobergb.jpg?w=abc",          -- 400 bad param
  "/img/rocket-640x427-adobergb.jpg?frobnicate=1",   -- 400 unknown param
  "/img/%2e%2e/%2e%2e/etc/passwd",                   -- 400 traversal
  "/img/missing-" .. "image.jpg?w=100",              -- 404
  "/img/regressions/webp-huge-chunk.webp?w=100",     -- 422
  "/img/MANIFEST.md?w=100",                          -- 415
  "/api/v1/images",                                  -- 401 (no key)
}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  counts = {}
  math.randomseed(os.time() + (id or 0) * 7919)
end

local function upload()
  counter = counter + 1
  local text = string.format("soak %d-%d-%d", id or 0, counter, math.random(1, 1e9))
  local len = #text + 2
  local body_img = jpeg:sub(1, 2) .. "\255\254" .. string.char(math.floor(len / 256), len % 256)
    .. text .. jpeg:sub(3)
  local b = "soakboundary7MA4YWxk"
  local body = "--" .. b .. "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"s.jpg\"\r\n\r\n"
    .. body_img .. "\r\n--" .. b .. "\r\nContent-Disposition: form-data; name=\"tags\"\r\n\r\nsoak\r\n--"
    .. b .. "--\r\n"
  return wrk.format("POST", "/api/v1/images",
    { ["X-API-Key"] = key, ["Content-Type"] = "multipart/form-data; boundary=" .. b }, body)
end

function request()
  local r = math.random()
  if r < 0.50 then
    return wrk.format("GET", "/img/rocket-640x427-adobergb.jpg?w=400&fm=webp", { Accept = "image/webp" })
  elseif r < 0.73 then
    local src = sources[math.random(#sources)]
    local fm = ({ "jpeg", "webp", "png" })[math.random(3)]
    return wrk.format("GET", string.format("/img/%s?w=%d&fm=%s", src, math.random(64, 900), fm))
  elseif r < 0.75 then
    return wrk.format("GET", string.format("/img/rocket-640x427-adobergb.jpg?w=%d&fm=avif", math.random(64, 400)))
  elseif r < 0.80 then
    return upload()
  elseif r < 0.88 then
    local q = ({ "/api/v1/images?tag=soak&per_page=20", "/api/v1/images?limit=50", "/api/v1/tags",
      "/api/v1/stats" })[math.random(4)]
    return wrk.format("GET", q, { ["X-API-Key"] = key })
  elseif r < 0.90 then
    return wrk.format("GET", "/api/v1/random?tag=soak&w=200", { Accept = "image/webp" })
  else
    return wrk.format("GET", bad[math.random(#bad)])
  end
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local c = t:get("counts")
    for s, n in pairs(c) do total[s] = (total[s] or 0) + n end
  end
  local keys = {}
  for s in pairs(total) do table.insert(keys, s) end
  table.sort(keys)
  for _, s in ipairs(keys) do io.write(string.format("STATUS %d %d\n", s, total[s])) end
  io.write(string.format("SOCKET connect=%d read=%d write=%d timeout=%d\n", summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout))
  io.write(string.format("TOTAL requests=%d seconds=%.0f p50=%.1fms p99=%.1fms\n", summary.requests,
    summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3))
end
