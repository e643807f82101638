# Shared by run-stack.sh and demo.sh: install and start the server stack.
# Sourced, not run. Sets STACK_URL (the WebSocket URL to load) and STACK_PIDS.

LISTEN_PORT=${LISTEN_PORT:-8080}
REDIS_PORT=${REDIS_PORT:-6379}
BASE_PORT=${BASE_PORT:-9001} # the 12 ws-server workers listen on BASE_PORT..BASE_PORT+11
STACK_PIDS=()
# shellcheck source=scripts/lib/nginx.sh
source "$(dirname "${BASH_SOURCE[0]}")/nginx.sh"
STACK_WORK=$(mktemp -d)

# Installs what is missing (scripts/setup.sh: redis-server, nginx, ...); on failure
# the stack falls back to the embedded memory broker and no nginx, and says so.
stack_install() {
  ./scripts/setup.sh || echo "could not install everything: falling back to what is available" >&2
}

stack_stop() {
  local p
  for p in "${STACK_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${STACK_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$STACK_WORK"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local i
  for i in $(seq 1 100); do port_open "$1" && return 0; sleep 0.1; done
  echo "port $1 did not open" >&2
  return 1
}

# Starts redis (unless one answers on REDIS_PORT), 12 ws-server workers on
# BASE_PORT..BASE_PORT+11 and nginx with the repository's config on LISTEN_PORT.
stack_start() {
  local bin=$1 broker_args=(--broker memory)
  if command -v redis-server >/dev/null 2>&1; then
    if ! port_open "$REDIS_PORT"; then
      redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >"$STACK_WORK/redis.log" 2>&1 &
      STACK_PIDS+=($!)
      wait_port "$REDIS_PORT"
    fi
    broker_args=(--broker redis --redis-url "redis://127.0.0.1:$REDIS_PORT")
  else
    echo "redis-server is not available: using the embedded memory broker (one machine only)" >&2
  fi
  # STACK_LOGS=file sends the server's and nginx's output to files in the work dir.
  if [ "${STACK_LOGS:-}" = file ]; then
    "$bin" --base-port "$BASE_PORT" "${broker_args[@]}" >"$STACK_WORK/ws-server.log" 2>&1 &
  else
    "$bin" --base-port "$BASE_PORT" "${broker_args[@]}" &
  fi
  STACK_PIDS+=($!)
  local i
  for i in $(seq 0 11); do wait_port $((BASE_PORT + i)); done
  local nginx_bin
  nginx_bin=$(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true)
  if [ -n "$nginx_bin" ]; then
    nginx_conf "$STACK_WORK"
    nginx_site "$LISTEN_PORT" "$BASE_PORT" >"$STACK_WORK/sites-enabled/default"
    "$nginx_bin" -p "$STACK_WORK/" -c "$STACK_WORK/nginx.conf" -g 'daemon off;' &
    STACK_PIDS+=($!)
    wait_port "$LISTEN_PORT"
    STACK_URL="ws://127.0.0.1:$LISTEN_PORT/ws"
    echo "server stack up: $STACK_URL (nginx) -> 127.0.0.1:$BASE_PORT-$((BASE_PORT + 11)), broker: ${broker_args[1]}"
  else
    echo "nginx is not available: connecting straight to the first instance" >&2
    STACK_URL="ws://127.0.0.1:$BASE_PORT/ws"
  fi
}
