#!/usr/bin/env bash
# Library indexing figures: the release binary indexes a generated tree (bench/library_tree.py:
# N real images, 512-1024 px, PNG and JPEG with generation info, nested folders). Prints the
# first scan's images/s, the server's peak RSS, and the time of a rescan of the unchanged tree.
#   bench/library.sh [N]     (default 10000; Pillow is installed into a venv for the generator)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
BIN=target/release/refract
[ -n "${NO_BUILD:-}" ] || cargo build --release --locked --bin refract >&2
TOOLS=${REFRACT_TOOLS:-$HOME/.cache/refract-ci}
if ! "$TOOLS/pil-venv/bin/python" -c 'import PIL' 2>/dev/null; then
  python3 -m venv "$TOOLS/pil-venv" && "$TOOLS/pil-venv/bin/pip" install -q Pillow
fi
TREE=${TREE:-/tmp/refract-library-tree-$N}
if [ ! -f "$TREE/.done" ]; then
  rm -rf "$TREE"
  "$TOOLS/pil-venv/bin/python" bench/library_tree.py "$TREE" "$N"
  touch "$TREE/.done"
fi
OUT=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$OUT"' EXIT
P=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
KEY=bench-admin-key
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
REFRACT_API_KEY=$KEY REFRACT__SERVER__LOG=warn REFRACT__LIBRARY__ENABLED=true REFRACT__RATELIMIT__PER_MINUTE=0 \
  REFRACT__RATELIMIT__PER_HOUR=0 REFRACT__RATELIMIT__PER_DAY=0 \
  REFRACT__LIBRARY__WATCH=false REFRACT__LIBRARY__RESCAN_SECS=0 \
  "$BIN" --listen "127.0.0.1:$P" --data-dir "$OUT/data" --storage-root "$TREE" >"$OUT/server.log" 2>&1 &
PID=$!
status() { curl -sf -H "X-API-Key: $KEY" "http://127.0.0.1:$P/api/v1/library/status" || echo '{}'; }
wait_scans() {  # wait until `scans` >= $1 and no scan runs; print the status
  python3 - "$1" "$P" "$KEY" <<'PY'
import json, sys, time, urllib.request
want, port, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
while True:
    try:
        req = urllib.request.Request(f'http://127.0.0.1:{port}/api/v1/library/status', headers={'X-API-Key': key})
        s = json.load(urllib.request.urlopen(req))['status']
        if s['scans'] >= want and not s['running']:
            print(json.dumps(s)); break
    except Exception:
        pass
    time.sleep(0.2)
PY
}
FIRST=$(wait_scans 1)
RSS=$(awk '/VmHWM/ {print int($2/1024)}' /proc/$PID/status)
curl -sf -X POST -H "X-API-Key: $KEY" "http://127.0.0.1:$P/api/v1/library/rescan" >/dev/null
SECOND=$(wait_scans 2)
python3 - "$FIRST" "$SECOND" "$RSS" "$N" <<'PY'
import json, sys
a, b, rss, n = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
t1 = (a['finished_at'] - a['started_at']) / 1000
t2 = (b['finished_at'] - b['started_at']) / 1000
print('| measure | value |\n|---|---|')
print(f"| tree | {n} files generated, {a['seen']} seen, {a['indexed']} indexed, {a['failed']} failed, {a['skipped']} skipped |")
print(f"| first scan | {t1:.1f} s, **{a['indexed'] / t1:.0f} images/s** |")
print(f"| peak RSS (first scan) | **{rss} MiB** |")
print(f"| rescan, unchanged tree | **{t2:.2f} s** ({b['unchanged']} unchanged, {b['indexed']} analysed) |")
PY
