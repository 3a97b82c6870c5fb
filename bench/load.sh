#!/usr/bin/env bash
# Load driver for /img: one Refract process per scenario (so peak RSS is per scenario), wrk with
# distinct URLs per request (cache off) or one hot URL (cache on), results as a markdown table.
#   bench/load.sh [seconds-per-scenario]   (default 15; needs wrk: apt-get install wrk)
# The peer comparison (ipx/sharp, thumbor, nginx) is the performance issue's: see ../shared/bench.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-15}
CORPUS=${CORPUS:-$(cd ../shared/corpus 2>/dev/null && pwd || echo "$PWD/tests/fixtures")}
BIN=target/release/refract
command -v wrk >/dev/null || { echo "wrk missing: apt-get install wrk" >&2; exit 1; }
cargo build --release --locked --bin refract >&2
OUT=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$OUT"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# name | file | w | h | query | accept | connections | vary | cache bytes
SCENARIOS=(
  "jpeg400|kleiber-6028x3391.jpg|400|0|fm=jpeg&q=80|image/jpeg|4|1|0"
  "webp400|kleiber-6028x3391.jpg|400|0|fm=webp&q=80|image/webp|4|1|0"
  "avif400|kleiber-6028x3391.jpg|400|0|fm=avif&q=60|image/avif|4|1|0"
  "alpha-webp300|dice-800x600-alpha.png|300|0|fm=webp&q=80|image/webp|4|1|0"
  "cover150|rocket-640x427-adobergb.jpg|150|150|fm=jpeg&q=80|image/jpeg|4|1|0"
  "fit512|path-2560x1600-icc.jpg|512|512|fit=inside|*/*|4|1|0"
  "hot-hit-c64|rocket-640x427-adobergb.jpg|400|0|fm=webp|image/webp|64|0|268435456"
)
printf '| scenario | conc. | req/s | p50 ms | p99 ms | peak RSS MB | mean bytes | errors |\n|---|---|---|---|---|---|---|---|\n'
for s in "${SCENARIOS[@]}"; do
  IFS='|' read -r name file w h query accept conc vary cache <<<"$s"
  [ -f "$CORPUS/$file" ] || { echo "skip $name: $CORPUS/$file missing" >&2; continue; }
  P=$(port)
  REFRACT__SERVER__LOG=warn REFRACT__CACHE__MEMORY_BYTES=$cache "$BIN" --listen "127.0.0.1:$P" \
    --storage-root "$CORPUS" --data-dir "$OUT" >"$OUT/server.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$P/health" >/dev/null && break; sleep 0.1; done
  hq="w=$w"; [ "$h" != 0 ] && hq="$hq&h=$h"
  bytes=$(curl -s -H "Accept: $accept" "http://127.0.0.1:$P/img/$file?$hq&$query" | wc -c)
  line=$(REFRACT_PATH="/img/$file" REFRACT_QUERY="$query" REFRACT_W=$w REFRACT_H=$h REFRACT_ACCEPT="$accept" REFRACT_VARY=$vary \
    wrk -t2 -c"$conc" -d"${DUR}s" --timeout 10s -s bench/vary.lua "http://127.0.0.1:$P" | grep '^RESULT')
  rss=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$PID/status")
  kill "$PID"; wait "$PID" 2>/dev/null || true
  read -r _ rps p50 p99 errs _ <<<"$line"
  printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$conc" "$rps" "$p50" "$p99" "$rss" "$bytes" "$errs"
done
