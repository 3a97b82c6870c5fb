#!/usr/bin/env bash
# Soak: one release server, wrk at concurrency 64 for N seconds (default 600) with a mix of
# cache hits (50%), misses (25%, AVIF among them), uploads (5%), API reads (10%) and bad requests
# (10%); RSS sampled every second. Prints a markdown report (statuses, errors, RSS) and writes
# the RSS curve to bench/soak-rss.svg.
#   bench/soak.sh [seconds]        (needs wrk and python3)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-600}
BIN=target/release/refract
command -v wrk >/dev/null || { echo "wrk missing: apt-get install wrk" >&2; exit 1; }
[ -n "${NO_BUILD:-}" ] || cargo build --release --locked --bin refract >&2
OUT=$(mktemp -d)
trap 'kill $PID $SAMPLER 2>/dev/null || true; rm -rf "$OUT"' EXIT
cp -r tests/fixtures "$OUT/images"
P=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
KEY=soak-admin-key
REFRACT_API_KEY=$KEY REFRACT__SERVER__LOG=warn REFRACT__CACHE__MEMORY_BYTES=67108864 \
  REFRACT__RATELIMIT__PER_MINUTE=0 REFRACT__RATELIMIT__PER_HOUR=0 REFRACT__RATELIMIT__PER_DAY=0 \
  REFRACT__RATELIMIT__UPLOADS_PER_MINUTE=0 \
  "$BIN" --listen "127.0.0.1:$P" --data-dir "$OUT/data" --storage-root "$OUT/images" >"$OUT/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$P/health" >/dev/null && break; sleep 0.1; done
( t=0; while kill -0 "$PID" 2>/dev/null; do
    echo "$t $(awk '/VmRSS/ {print $2}' /proc/$PID/status)"; sleep 1; t=$((t + 1)); done ) >"$OUT/rss.txt" &
SAMPLER=$!
SOAK_KEY=$KEY SOAK_JPEG=tests/fixtures/cmyk-100x100.jpg \
  wrk -t2 -c64 -d"${DUR}s" --timeout 30s -s bench/soak.lua "http://127.0.0.1:$P" >"$OUT/wrk.txt"
kill "$SAMPLER" 2>/dev/null || true
stored=$(curl -s -H "X-API-Key: $KEY" "http://127.0.0.1:$P/api/v1/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["images"])')
python3 - "$OUT/wrk.txt" "$OUT/rss.txt" "$DUR" "$stored" bench/soak-rss.svg <<'EOF'
import sys
wrk, rss_path, dur, stored, svg = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
statuses, sock, total = {}, '', ''
for line in open(wrk):
    if line.startswith('STATUS'):
        _, s, n = line.split(); statuses[int(s)] = int(n)
    elif line.startswith('SOCKET'): sock = line.split(' ', 1)[1].strip()
    elif line.startswith('TOTAL'): total = line.split(' ', 1)[1].strip()
rss = [(int(a), int(b) / 1024) for a, b in (l.split() for l in open(rss_path) if len(l.split()) == 2)]
expected = {200: 'hits, misses, API reads', 201: 'uploads', 304: 'revalidations', 400: 'bad params, traversal',
            401: 'API call without a key', 404: 'missing image / nothing to pick', 415: 'not an image',
            422: 'corrupt image', 503: 'documented shedding (queue full)'}
print(f'Requests: {total}; socket errors: {sock}; images stored by the run: {stored}.\n')
print('| status | count | meaning |\n|---|---|---|')
errors = 0
for s, n in sorted(statuses.items()):
    meaning = expected.get(s)
    if meaning is None:
        errors += n; meaning = '**unexpected**'
    print(f'| {s} | {n} | {meaning} |')
print(f'\nUnexpected statuses: {errors}.')
warm = [m for t, m in rss if t >= 60] or [m for _, m in rss]
first_min = [m for t, m in rss if 60 <= t < 120] or warm[:60]
last_min = [m for t, m in rss if t >= max(0, len(rss) - 60)] or warm[-60:]
print(f'RSS: peak {max(m for _, m in rss):.0f} MB; after warm-up (60 s) min {min(warm):.0f} / max {max(warm):.0f} MB; '
      f'mean of minute 2 {sum(first_min)/len(first_min):.0f} MB vs last minute {sum(last_min)/len(last_min):.0f} MB.')
W, H, pad = 640, 200, 36
tmax = max(t for t, _ in rss) or 1; mmax = max(m for _, m in rss) * 1.1 or 1
pts = ' '.join(f'{pad + t / tmax * (W - 2 * pad):.1f},{H - pad - m / mmax * (H - 2 * pad):.1f}' for t, m in rss)
ticks = ''.join(f'<text x="{pad - 4}" y="{H - pad - v / mmax * (H - 2 * pad) + 4:.0f}" text-anchor="end">{v:.0f}</text>'
                for v in (0, mmax / 2.2, mmax / 1.1))
open(svg, 'w').write(f'''<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">
<rect width="{W}" height="{H}" fill="white"/>
<text x="{W/2}" y="14" text-anchor="middle">Refract RSS (MB) during a {dur} s soak at c=64</text>
<line x1="{pad}" y1="{H-pad}" x2="{W-pad}" y2="{H-pad}" stroke="#888"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{H-pad}" stroke="#888"/>
{ticks}<text x="{W-pad}" y="{H-pad+16}" text-anchor="end">{tmax} s</text><text x="{pad}" y="{H-pad+16}">0 s</text>
<polyline fill="none" stroke="#c33" stroke-width="1.5" points="{pts}"/>
</svg>
''')
print(f'\nRSS curve: `{svg}`.')
EOF
