#!/usr/bin/env bash
# Control-plane figures: upload rate (distinct real images, sequential and 4 at a time), then
# with N images stored: search, random pick and key check throughput under wrk.
#   bench/api.sh [images] [seconds-per-wrk-run]     (defaults 500, 10; needs wrk and python3)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-500}
DUR=${2:-10}
BIN=target/release/refract
command -v wrk >/dev/null || { echo "wrk missing: apt-get install wrk" >&2; exit 1; }
[ -n "${NO_BUILD:-}" ] || cargo build --release --locked --bin refract >&2
OUT=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$OUT"' EXIT
P=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
KEY=bench-admin-key
REFRACT_API_KEY=$KEY REFRACT__SERVER__LOG=warn REFRACT__RATELIMIT__PER_MINUTE=0 \
  REFRACT__RATELIMIT__PER_HOUR=0 REFRACT__RATELIMIT__PER_DAY=0 REFRACT__RATELIMIT__UPLOADS_PER_MINUTE=0 \
  "$BIN" --listen "127.0.0.1:$P" --data-dir "$OUT/data" >"$OUT/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$P/health" >/dev/null && break; sleep 0.1; done

python3 - "$P" "$KEY" "$N" tests/fixtures/dice-800x600-alpha.png tests/fixtures/rocket-640x427-adobergb.jpg <<'EOF'
import sys, time, zlib, struct, urllib.request, concurrent.futures, statistics
port, key, n, png_path, jpg_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
png = open(png_path, 'rb').read()
def distinct(i):
    data = b'Comment\x00bench copy %d' % i
    chunk = struct.pack('>I', len(data)) + b'tEXt' + data + struct.pack('>I', zlib.crc32(b'tEXt' + data))
    return png[:33] + chunk + png[33:]
def upload(i):
    b = 'refract-bench-boundary'
    body = (f'--{b}\r\nContent-Disposition: form-data; name="file"; filename="img{i}.png"\r\n\r\n').encode() \
        + distinct(i) + (f'\r\n--{b}\r\nContent-Disposition: form-data; name="tags"\r\n\r\n'
                         f'bench,t{i % 10}\r\n--{b}--\r\n').encode()
    req = urllib.request.Request(f'http://127.0.0.1:{port}/api/v1/images', data=body, method='POST',
        headers={'X-API-Key': key, 'Content-Type': f'multipart/form-data; boundary={b}'})
    t = time.perf_counter()
    with urllib.request.urlopen(req) as r:
        assert r.status == 201, r.status
    return time.perf_counter() - t
seq = min(50, n)
t0 = time.perf_counter(); lat = [upload(i) for i in range(seq)]; t1 = time.perf_counter()
print(f'| upload 800x600 PNG, sequential | {seq / (t1 - t0):.1f} /s | p50 {statistics.median(lat)*1000:.1f} ms |')
t0 = time.perf_counter()
with concurrent.futures.ThreadPoolExecutor(4) as ex:
    lat = list(ex.map(upload, range(seq, n)))
t1 = time.perf_counter()
print(f'| upload 800x600 PNG, 4 at a time | {(n - seq) / (t1 - t0):.1f} /s | p50 {statistics.median(lat)*1000:.1f} ms |')
EOF

run() {  # run NAME PATH [header]
  local line
  line=$(wrk -t2 -c8 -d"${DUR}s" -H "X-API-Key: $KEY" -H "Accept: image/webp" --latency "http://127.0.0.1:$P$2" |
    awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {printf "%s | p50 %s | p99 %s", rps, p50, p99}')
  echo "| $1 ($N images stored, c=8) | $line |"
}
run "search: tag + not_tag, page of 20" "/api/v1/images?tag=bench&not_tag=t3&per_page=20"
run "search: q substring, page of 20" "/api/v1/images?q=img4&per_page=20"
run "cursor page of 50" "/api/v1/images?limit=50"
run "random pick (text/plain URL)" "/api/v1/random?tag=t5&w=300"
run "GET one image" "/api/v1/images/$(curl -s -H "X-API-Key: $KEY" "http://127.0.0.1:$P/api/v1/images?per_page=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["images"][0]["id"])')"
echo "peak RSS $(awk '/VmHWM/ {printf "%.1f MB", $2/1024}' /proc/$PID/status)"
