#!/usr/bin/env bash
# nginx serving, as a static file, the exact bytes Refract answers for one URL (the hot scenario's
# peer). Usage: nginx-static.sh CORPUS PORT URL_PATH. Run from bench/peers (peers.sh does).
# nginx gets its best static setup: sendfile, open_file_cache, unlimited keep-alive, no access log.
set -euo pipefail
CORPUS="$1"; PORT="$2"; URL_PATH="$3"
command -v nginx >/dev/null || { echo "nginx not installed (apt-get install nginx-light)" >&2; exit 1; }
D="$(mktemp -d)"; mkdir -p "$D/www" "$D/logs" "$D/tmp"
P2=$((PORT + 100))
../../target/release/refract --storage-root "$CORPUS" --data-dir "$D/refract" --listen "127.0.0.1:$P2" >"$D/logs/refract.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -sf -o "$D/www/hot.jpg" -H 'Accept: image/jpeg' "http://127.0.0.1:$P2$URL_PATH" && break
  sleep 0.1
done
kill "$pid"; wait "$pid" 2>/dev/null || true
[[ -s "$D/www/hot.jpg" ]] || { echo "could not fetch $URL_PATH from Refract" >&2; exit 1; }
chmod 755 "$D" "$D/www"; chmod 644 "$D/www/hot.jpg"   # nginx workers run as another user
cat >"$D/nginx.conf" <<CONF
worker_processes auto;
daemon off;
pid $D/nginx.pid;
error_log $D/logs/error.log warn;
events { worker_connections 4096; }
http {
  include /etc/nginx/mime.types;
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_requests 100000000;
  open_file_cache max=64 inactive=60s;
  client_body_temp_path $D/tmp; proxy_temp_path $D/tmp; fastcgi_temp_path $D/tmp;
  server {
    listen 127.0.0.1:$PORT;
    root $D/www;
    location / { add_header Cache-Control "public, max-age=31536000"; }
  }
}
CONF
exec nginx -p "$D" -c "$D/nginx.conf" -e "$D/logs/error.log"
