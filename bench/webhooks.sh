#!/usr/bin/env bash
# Webhook figures: (1) the delay writing an event adds to an upload (the same uploads with and
# without a subscribed endpoint, interleaved, medians), (2) outbox throughput: events/s from
# commit (the PATCH's answer) to a local receiver's 200, with the median commit→receipt delay.
#   bench/webhooks.sh [uploads] [events]     (defaults 200, 2000; needs python3)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200}
M=${2:-2000}
BIN=target/release/refract
[ -n "${NO_BUILD:-}" ] || cargo build --release --locked --bin refract >&2
OUT=$(mktemp -d)
trap 'kill $PID $RPID 2>/dev/null || true; rm -rf "$OUT"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
P=$(port); R=$(port)
KEY=bench-admin-key
REFRACT_API_KEY=$KEY REFRACT__SERVER__LOG=warn REFRACT__RATELIMIT__PER_MINUTE=0 \
  REFRACT__RATELIMIT__PER_HOUR=0 REFRACT__RATELIMIT__PER_DAY=0 REFRACT__RATELIMIT__UPLOADS_PER_MINUTE=0 \
  REFRACT__WEBHOOKS__ALLOW_HTTP=true REFRACT__WEBHOOKS__ALLOW_NETWORKS=127.0.0.1/32 REFRACT__WEBHOOKS__WORKERS=${WORKERS:-16} \
  "$BIN" --listen "127.0.0.1:$P" --data-dir "$OUT/data" >"$OUT/server.log" 2>&1 &
PID=$!
# The receiver: a bare asyncio HTTP/1.1 server answering 200 and recording arrival times.
python3 - "$R" "$OUT/arrivals" <<'EOF' &
import asyncio, json, sys, time
port, path = int(sys.argv[1]), sys.argv[2]
out = open(path, 'w', buffering=1)
async def handle(r, w):
    try:
        while True:
            head = await r.readuntil(b'\r\n\r\n')
            n = 0
            for line in head.split(b'\r\n'):
                if line.lower().startswith(b'content-length:'):
                    n = int(line.split(b':')[1])
            body = await r.readexactly(n)
            t = time.time()
            d = json.loads(body)
            out.write(f"{t} {d['type']} {d['data'].get('id', '')}\n")
            w.write(b'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok')
            await w.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
async def main():
    s = await asyncio.start_server(handle, '127.0.0.1', port)
    async with s:
        await s.serve_forever()
asyncio.run(main())
EOF
RPID=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$P/health" >/dev/null && break; sleep 0.1; done

python3 - "$P" "$R" "$KEY" "$N" "$M" "$OUT/arrivals" tests/fixtures/dice-800x600-alpha.png <<'EOF'
import sys, time, zlib, struct, json, urllib.request, concurrent.futures, statistics
port, rport, key, n, m, arrivals, png_path = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], sys.argv[7]
png = open(png_path, 'rb').read()
base = f'http://127.0.0.1:{port}'
def distinct(i):
    data = b'Comment\x00bench copy %d' % i
    chunk = struct.pack('>I', len(data)) + b'tEXt' + data + struct.pack('>I', zlib.crc32(b'tEXt' + data))
    return png[:33] + chunk + png[33:]
def call(method, path, body=None, ctype='application/json'):
    req = urllib.request.Request(base + path, data=body, method=method,
        headers={'X-API-Key': key, 'Content-Type': ctype})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())
def upload(i):
    b = 'refract-bench-boundary'
    body = (f'--{b}\r\nContent-Disposition: form-data; name="file"; filename="img{i}.png"\r\n\r\n').encode() \
        + distinct(i) + f'\r\n--{b}--\r\n'.encode()
    t = time.perf_counter()
    v = call('POST', '/api/v1/images', body, f'multipart/form-data; boundary={b}')
    return time.perf_counter() - t, v['images'][0]['id']
def arrived():
    with open(arrivals) as f:
        return [l.split() for l in f if l.strip()]

# (1) Upload latency, without and with an endpoint (alternating blocks of 20, so drift in the
# machine's state hits both alike).
hook = None
without, with_ = [], []
ids = []
for block in range(0, n, 20):
    for phase in (0, 1):
        if phase == 1 and hook is None:
            hook = call('POST', '/api/v1/webhooks', json.dumps({'url': f'http://127.0.0.1:{rport}/h', 'events': '*'}).encode())['webhook']['id']
        if phase == 0 and hook is not None:
            call('PATCH', f'/api/v1/webhooks/{hook}', json.dumps({'enabled': False}).encode())
        if phase == 1:
            call('PATCH', f'/api/v1/webhooks/{hook}', json.dumps({'enabled': True}).encode())
        for i in range(block, min(block + 20, n)):
            dt, id_ = upload(i + phase * 100000)
            (with_ if phase else without).append(dt)
            ids.append(id_)
mw, mo = statistics.median(with_), statistics.median(without)
print(f'| upload 800x600 PNG, no endpoint | p50 {mo*1000:.2f} ms | n={len(without)} |')
print(f'| upload 800x600 PNG, one endpoint subscribed | p50 {mw*1000:.2f} ms | n={len(with_)} |')
print(f'| delay added by writing the event | {1000*(mw-mo):+.2f} ms ({100*(mw/mo-1):+.1f} %) | |')

# (2) Throughput: M PATCHes over the stored images (8 clients), each an image.updated event to
# the endpoint; from the first commit to the last receipt.
time.sleep(2)  # the upload phase's deliveries drain (those pending at a disable were failed)
done0 = len(arrived())
commit = {}
def patch(j):
    id_ = ids[j % len(ids)]
    call('PATCH', f'/api/v1/images/{id_}', json.dumps({'description': f'd{j}'}).encode())
    return j, time.time()
t0 = time.time()
with concurrent.futures.ThreadPoolExecutor(8) as ex:
    stamps = list(ex.map(patch, range(m)))
t_commits = time.time()
while len(arrived()) < done0 + m:
    time.sleep(0.01)
t1 = time.time()
rows = arrived()[done0:]
last = max(float(r[0]) for r in rows)
print(f'| outbox: {m} image.updated events, 8 clients, 1 endpoint | {m / (last - t0):.0f} events/s commit→receipt | commits alone {m / (t_commits - t0):.0f}/s |')
# Per event: commit (PATCH answered) → receipt, matched in order per image.
by_image = {}
for j, t in sorted(stamps, key=lambda x: x[1]):
    by_image.setdefault(ids[j % len(ids)], []).append(t)
recv = {}
for r in rows:
    recv.setdefault(r[2], []).append(float(r[0]))
delays = []
for img, ts in by_image.items():
    for a, b in zip(sorted(ts), sorted(recv.get(img, []))):
        delays.append(max(0.0, b - a))
print(f'| commit → receipt delay | p50 {statistics.median(delays)*1000:.1f} ms | p90 {statistics.quantiles(delays, n=10)[-1]*1000:.1f} ms |')
EOF
