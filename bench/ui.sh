#!/usr/bin/env bash
# Web interface figures, measured in the browser (Debian's Chromium through playwright-core,
# Performance API): with a library of N images (bench/library_tree.py: real images, 512-1024
# px, nested folders; default 10,000) indexed by the release binary, the time to the first grid
# paint and to 1,000 thumbnails scrolled through (each screen loaded before the next scroll),
# with an empty and then a warm server cache (a fresh browser each time), and the bytes of one
# screen of thumbnails against the originals those thumbnails show.
#   bench/ui.sh [N]      (NODE_PATH must hold playwright-core; .ci/test.sh installs it)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
BIN=target/release/refract
[ -n "${NO_BUILD:-}" ] || cargo build --release --locked --bin refract >&2
TOOLS=${REFRACT_TOOLS:-$HOME/.cache/refract-ci}
export NODE_PATH=${NODE_PATH:-$TOOLS/node/node_modules}
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
REFRACT_API_KEY=$KEY REFRACT_ADMIN_EMAIL=bench@example.com REFRACT_ADMIN_PASSWORD='a long bench password' \
  REFRACT__SERVER__LOG=warn REFRACT__LIBRARY__ENABLED=true REFRACT__RATELIMIT__PER_MINUTE=0 \
  REFRACT__RATELIMIT__PER_HOUR=0 REFRACT__RATELIMIT__PER_DAY=0 \
  REFRACT__LIBRARY__WATCH=false REFRACT__LIBRARY__RESCAN_SECS=0 \
  "$BIN" --listen "127.0.0.1:$P" --data-dir "$OUT/data" --storage-root "$TREE" >"$OUT/server.log" 2>&1 &
PID=$!
python3 - "$P" "$KEY" <<'PY'
import json, sys, time, urllib.request
port, key = sys.argv[1], sys.argv[2]
while True:
    try:
        req = urllib.request.Request(f'http://127.0.0.1:{port}/api/v1/library/status', headers={'X-API-Key': key})
        s = json.load(urllib.request.urlopen(req))['status']
        if s['scans'] >= 1 and not s['running']:
            print(f"indexed {s['indexed']} images", file=sys.stderr); break
    except Exception:
        pass
    time.sleep(0.5)
PY
cold=$(node bench/ui_scroll.mjs "http://127.0.0.1:$P" bench@example.com 'a long bench password' 1000)
warm=$(node bench/ui_scroll.mjs "http://127.0.0.1:$P" bench@example.com 'a long bench password' 1000)
python3 - "$cold" "$warm" "$N" <<'PY'
import json, sys
c, w, n = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
mb = lambda b: f"{b / 1e6:.2f} MB"
print(f"| measure ({n} images, 1280×800, DPR 1) | server cache empty | server cache warm |\n|---|---|---|")
print(f"| first contentful paint | {c['fcp']:.0f} ms | {w['fcp']:.0f} ms |")
print(f"| first grid paint (first screen of thumbnails loaded) | **{c['first_screen']:.0f} ms** | **{w['first_screen']:.0f} ms** |")
print(f"| 1,000 thumbnails scrolled (each screen loaded) | **{c['scrolled'] / 1000:.1f} s** | **{w['scrolled'] / 1000:.1f} s** |")
print(f"| thumbnails loaded while scrolling | {c['loaded']} | {w['loaded']} |")
print(f"| one screen: thumbnails ({c['screen_count']}) vs their originals | {mb(c['screen_bytes'])} vs {mb(c['screen_originals'])} (**{c['screen_originals'] / max(1, c['screen_bytes']):.0f}× less**) | {mb(w['screen_bytes'])} vs {mb(w['screen_originals'])} |")
print(f"| 1,000 thumbnails vs their originals | {mb(c['all_bytes'])} vs {mb(c['all_originals'])} | {mb(w['all_bytes'])} vs {mb(w['all_originals'])} |")
PY
