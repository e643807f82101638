#!/usr/bin/env bash
# The main job: the full server stack on this machine — redis, the ws-server
# supervisor with 12 workers (ports 9001-9012) and nginx with the repository's
# config in front (ws://127.0.0.1:${LISTEN_PORT:-8080}/ws). Installs redis-server
# and nginx when missing. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

LISTEN_PORT=${LISTEN_PORT:-8080}
REDIS_PORT=${REDIS_PORT:-6379}
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

need=()
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || need+=(redis-server)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
if [ ${#need[@]} -gt 0 ]; then
  if as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; then
    echo "installed: ${need[*]}"
  else
    echo "could not install ${need[*]}: running with the embedded memory broker and no nginx" >&2
  fi
fi

cargo build --release -p wsload-server
BIN=target/release/ws-server
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

broker_args=(--broker memory)
if command -v redis-server >/dev/null 2>&1; then
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null; then
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >"$work/redis.log" 2>&1 &
    pids+=($!)
    sleep 0.5
  fi
  broker_args=(--broker redis --redis-url "redis://127.0.0.1:$REDIS_PORT")
else
  echo "redis-server not available: using the embedded memory broker (one machine only)" >&2
fi

"$BIN" "${broker_args[@]}" &
pids+=($!)

if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
  NGINX=$(command -v nginx || echo /usr/sbin/nginx)
  mkdir -p "$work/sites-enabled" "$work/conf.d" "$work/logs"
  sed -e "s|user www-data;||; s|/etc/nginx/|$work/|g; s|/var/log/nginx/|$work/logs/|g; s|/run/nginx.pid|$work/nginx.pid|" \
    nginx/nginx.conf >"$work/nginx.conf"
  sed -e "s|listen 80 |listen $LISTEN_PORT |" nginx/sites-available/default >"$work/sites-enabled/default"
  "$NGINX" -p "$work/" -c "$work/nginx.conf" -g 'daemon off;' &
  pids+=($!)
  echo "server stack up: ws://127.0.0.1:$LISTEN_PORT/ws (nginx) -> 127.0.0.1:9001-9012; Ctrl-C stops"
else
  echo "server stack up without nginx: ws://127.0.0.1:9001/ws ... 9012; Ctrl-C stops"
fi
wait -n "${pids[@]}"
