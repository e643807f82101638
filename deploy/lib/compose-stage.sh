# Stage 2: server/Dockerfile + server/docker-compose.yml (sourced).
# Builds the images from the prebuilt binaries in target/dist (no registry here),
# brings up redis + ws-server + nginx and the agents profile, drives WebSocket
# sessions through nginx from a container on the compose network, runs a load
# test with the containerised coordinator and agents, and tears it all down.

COMPOSE_SESSIONS=${DEPLOY_COMPOSE_SESSIONS:-20}
COMPOSE_MESSAGES=${DEPLOY_COMPOSE_MESSAGES:-5}

dc() {
  WSLOAD_PREBUILT=1 WSLOAD_RUST_IMAGE="$BASE_IMAGE" WSLOAD_BASE_IMAGE="$BASE_IMAGE" \
    WSLOAD_TAG=deploy-test WSLOAD_HTTP_PUBLISH=80 WSLOAD_TOKEN="$TOKEN" \
    WSLOAD_NOFILE="${WSLOAD_NOFILE:-$(ulimit -Hn)}" \
    timeout 600 docker-compose -p "$ID" -f "$REPO/server/docker-compose.yml" --profile agents "$@"
}

compose_down() {
  [ -n "${COMPOSE_UP:-}" ] || return 0
  dc down -v --remove-orphans --timeout 10 >/dev/null 2>&1
}

# The health of every container of service $1, one word ("healthy") when all agree.
health() {
  local ids
  ids=$(dc ps -q "$1")
  [ -n "$ids" ] || { echo missing; return; }
  # shellcheck disable=SC2086
  docker inspect -f '{{.State.Health.Status}}' $ids 2>/dev/null | sort -u | paste -sd/
}

all_healthy() {
  local s st
  for s in redis ws-server nginx ws-coordinator ws-agent; do
    st=$(health "$s"); echo "$s: $st"
    [ "$st" = healthy ] || return 1
  done
}

ws_through_nginx() {
  docker run --rm --network "${ID}_default" -v "$REPO/deploy/lib/ws_sessions.py:/ws_sessions.py:ro" \
    "$HOST_IMAGE" timeout 60 python3 /ws_sessions.py ws://nginx/ws "$COMPOSE_SESSIONS" "$COMPOSE_MESSAGES"
}

# Sessions were spread over the workers, and every response was counted there.
workers_counted() {
  local want=$((COMPOSE_SESSIONS * (COMPOSE_MESSAGES + 1))) out
  out=$(dc exec -T ws-server sh -c 'for p in $(seq 9001 9012); do curl -s 127.0.0.1:$p/metrics; done')
  local got used
  got=$(awk '/^ws_responses_sent_total/ {s += $2} END {print s + 0}' <<<"$out")
  used=$(awk '/^ws_connections_total/ && $2 > 0 {n++} END {print n + 0}' <<<"$out")
  echo "responses counted by the workers: $got (sent: $want); workers that took sessions: $used of 12"
  [ "$got" = "$want" ] && [ "$used" -ge 2 ]
}

compose_load_test() {
  dc exec -T ws-coordinator ws-coordinator run --remote http://127.0.0.1:7700 --agents 2 \
    --target ws://nginx/ws --sessions 100 --batch-size 25 --messages-per-session 3 --quiet \
    >"$WORK/compose-run.txt" 2>&1
  local rc=$?
  cat "$WORK/compose-run.txt"
  [ "$rc" = 0 ] \
    && grep -q 'sessions 100 (completed 100), failed connections 0' "$WORK/compose-run.txt" \
    && grep -q 'messages sent 300, responses 300' "$WORK/compose-run.txt"
}

non_root() {
  local s u
  for s in ws-server ws-coordinator ws-agent redis; do
    u=$(dc exec -T "$s" id -un | tr -d '\r'); echo "$s runs as $u"
    [ "$u" != root ] || return 1
  done
}

compose_stage() {
  local t0=$SECONDS
  COMPOSE_UP=1
  if dc build >"$WORK/compose-build.log" 2>&1; then
    pass "compose images build without a registry ($((SECONDS - t0)) s)"
  else
    fail "compose images build"; tail -20 "$WORK/compose-build.log" | sed 's/^/    /'; return
  fi
  t0=$SECONDS
  if dc up -d --scale ws-agent=2 >"$WORK/compose-up.log" 2>&1 && retry 40 1 all_healthy >"$WORK/health.log" 2>&1; then
    pass "compose stack up, every service healthy ($((SECONDS - t0)) s)"
  else
    fail "compose stack up and healthy"; tail -15 "$WORK/compose-up.log" "$WORK/health.log" | sed 's/^/    /'
    dc logs --tail 20 >"$WORK/compose-logs.txt" 2>&1; tail -40 "$WORK/compose-logs.txt" | sed 's/^/    /'
    return
  fi
  check "WebSocket sessions through nginx: $COMPOSE_SESSIONS x $COMPOSE_MESSAGES (+binary frame)" ws_through_nginx
  check "ws-server workers counted every response" workers_counted
  check "containers run as non-root users" non_root
  check "load test with the containerised coordinator and 2 agents" compose_load_test
  t0=$SECONDS
  check "compose stack torn down" dc down -v --remove-orphans --timeout 10
  COMPOSE_UP=
}
