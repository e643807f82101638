#!/usr/bin/env bash
# Measures the figures docs/OPERATIONS.md sizes a fleet with, on this machine:
#   - ws-agent RSS per open idle session (a separate ws-agent process, read from
#     /proc/PID/status before and while N sessions are held open),
#   - Redis memory per open session (used_memory before and during the hold),
#   - nginx (repository config, all 12 workers) and ws-server RSS per session,
#   - the kernel defaults that bound a load machine.
# Uses redis-server on a free loopback port, ws-server (1 worker, Redis broker),
# nginx with nginx/ (its 12 upstreams pointed at that worker), ws-coordinator
# serve + one ws-agent, all on 127.0.0.1; ~1 minute.
#   deploy/measure-sizing.sh [SESSIONS]       (default 10000)
# Binaries: WSLOAD_BIN_DIR, default target/release if it has all three, else target/debug.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-10000}
BIN=${WSLOAD_BIN_DIR:-}
if [ -z "$BIN" ]; then
  BIN=$REPO/target/release
  for b in ws-server ws-agent ws-coordinator; do [ -x "$BIN/$b" ] || BIN=$REPO/target/debug; done
fi
work=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done; sleep 1
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# Sum over a process and its children (nginx master + workers, ws-server supervisor + worker).
tree_rss_kb() { local t=0 p; for p in $1 $(pgrep -P "$1"); do t=$((t + $(rss_kb "$p"))); done; echo $t; }
redis_mem() { redis-cli -p "$RP" info memory | awk -F: '/^used_memory:/ {print $2+0}'; }

RP=$(free_port); CP=$(free_port); NP=$(free_port)
WP=$(free_port)
TOKEN=measure-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
ulimit -n "$(ulimit -Hn)"
echo "binaries: $BIN; sessions: $N; open-file limit: $(ulimit -n)"

redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no >"$work/redis.log" 2>&1 & pids+=($!)
for _ in $(seq 1 50); do redis-cli -p "$RP" ping >/dev/null 2>&1 && break; sleep 0.1; done
"$BIN/ws-server" --instances 1 --base-port "$WP" --redis-url "redis://127.0.0.1:$RP" --server-event-interval 0 \
  >"$work/server.log" 2>&1 & pids+=($!)
SERVER=${pids[-1]}
mkdir -p "$work/nginx/sites-enabled" "$work/nginx/conf.d" "$work/nginx/logs"
sed -e "s|user www-data;||; s|/etc/nginx/|$work/nginx/|g; s|/var/log/nginx/|$work/nginx/logs/|g; s|/run/nginx.pid|$work/nginx/nginx.pid|" \
  "$REPO/nginx/nginx.conf" >"$work/nginx/nginx.conf"
sed -e "s|listen 80 |listen $NP |; s|127\.0\.0\.1:90[0-9][0-9]|127.0.0.1:$WP|" "$REPO/nginx/sites-available/default" \
  >"$work/nginx/sites-enabled/default"
/usr/sbin/nginx -p "$work/nginx/" -c "$work/nginx/nginx.conf" -g 'daemon off;' >"$work/nginx.log" 2>&1 & pids+=($!)
NGINX=${pids[-1]}
"$BIN/ws-coordinator" serve --listen "127.0.0.1:$CP" --token "$TOKEN" --out "$work/runs" >"$work/coord.log" 2>&1 & pids+=($!)
for _ in $(seq 1 100); do curl -fs "127.0.0.1:$WP/healthz" >/dev/null && break; sleep 0.1; done
"$BIN/ws-agent" --coordinator "http://127.0.0.1:$CP" --name measure --token "$TOKEN" >"$work/agent.log" 2>&1 & AGENT=$!; pids+=("$AGENT")
sleep 3
agent_idle=$(rss_kb "$AGENT"); redis_idle=$(redis_mem)
nginx_idle=$(tree_rss_kb "$NGINX"); server_idle=$(tree_rss_kb "$SERVER")

# Through nginx, as in a deployment; the hold keeps every session open long
# enough to sample.
"$BIN/ws-coordinator" run --remote "http://127.0.0.1:$CP" --token "$TOKEN" --agents 1 \
  --target "ws://127.0.0.1:$NP/ws" --sessions "$N" --batch-size 1000 --batch-interval 300ms \
  --messages-per-session 1 --hold-time 25s --quiet >"$work/run.txt" 2>&1 & RUN=$!
peak_agent=0; peak_redis=0; peak_nginx=0; peak_server=0
for _ in $(seq 1 60); do
  sleep 0.5
  a=$(rss_kb "$AGENT"); r=$(redis_mem)
  [ "$a" -gt "$peak_agent" ] && peak_agent=$a
  [ "$r" -gt "$peak_redis" ] && peak_redis=$r
  g=$(tree_rss_kb "$NGINX"); w=$(tree_rss_kb "$SERVER")
  [ "$g" -gt "$peak_nginx" ] && peak_nginx=$g
  [ "$w" -gt "$peak_server" ] && peak_server=$w
  kill -0 "$RUN" 2>/dev/null || break
done
wait "$RUN" || true
sed -n '/^run /,/rtt/p' "$work/run.txt"
echo
echo "ws-agent RSS idle (registered): ${agent_idle} KiB; with $N sessions open: ${peak_agent} KiB"
echo "ws-agent RSS per open session: $(( (peak_agent - agent_idle) * 1024 / N )) bytes"
echo "redis used_memory idle: ${redis_idle} B; with $N sessions: ${peak_redis} B"
echo "redis memory per open session: $(( (peak_redis - redis_idle) / N )) bytes"
echo "nginx RSS (master + 12 workers) idle: ${nginx_idle} KiB; with $N sessions: ${peak_nginx} KiB"
echo "nginx RSS per proxied session: $(( (peak_nginx - nginx_idle) * 1024 / N )) bytes"
echo "ws-server RSS (supervisor + 1 worker) idle: ${server_idle} KiB; with $N sessions: ${peak_server} KiB"
echo "ws-server RSS per session (Redis broker): $(( (peak_server - server_idle) * 1024 / N )) bytes"
echo
echo "kernel defaults here:"
for k in net.ipv4.ip_local_port_range net.core.somaxconn net.ipv4.tcp_tw_reuse net.ipv4.tcp_max_syn_backlog \
  fs.file-max fs.nr_open net.netfilter.nf_conntrack_max; do
  printf '  %s = %s\n' "$k" "$(sysctl -n "$k" 2>/dev/null | xargs || echo n/a)"
done
echo "  open-file hard limit of this shell: $(ulimit -Hn)"
