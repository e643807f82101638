#!/usr/bin/env bash
# How many concurrent sessions this machine holds, and what each one costs.
#
# Sizes and starts the whole stack on this machine: redis, the ws-server supervisor
# with 12 Redis-backed workers, nginx with the repository's config (worker_processes
# sized for the run), `ws-coordinator run` and enough `ws-agent` processes, each
# with its own range of source addresses 127.0.0.x (a process may hold at most
# ~20,000 open files here). It applies and reports the kernel settings the run
# needs, runs one plan (SESSIONS opened at RATE per second, each sending MESSAGES
# paced every MESSAGE_INTERVAL, receiving server events, then held for HOLD),
# samples every process and the kernel each second, and prints one table: sessions
# held, open rate asked vs achieved, errors by kind, and the per-session bill (RSS
# of agents, nginx, workers and Redis; kernel socket memory and slab).
#
#   SESSIONS=100000 RATE=1000 HOLD=10m scripts/scale.sh
#
# Knobs (environment):
#   SESSIONS           sessions to open and hold               (20000)
#   RATE               opens per second asked                  (1000)
#   MESSAGES           messages per session, paced              (3)
#   MESSAGE_INTERVAL   pause between a session's messages       (5s)
#   HOLD               time held after the last response        (30s)
#   SERVER_EVENT_INTERVAL  ws-server's periodic server event    (10s)
#   FAN_OUT_RATE       clients per second per worker a server event or a round of
#                      pings reaches (ws-server --fan-out-rate; 4000: 200,000 sessions
#                      in ~4 s instead of 200,000 frames in one instant)
#   REDIS_NICE         nice value of redis-server (-10: the one process every setup and
#                      count waits for is served first when everything shares 2 cores)
#   SESSIONS_PER_AGENT most sessions per ws-agent process       (18000)
#   AGENTS             ws-agent processes      (SESSIONS / SESSIONS_PER_AGENT, rounded up)
#   ADDRS_PER_AGENT    source addresses per agent   (enough for the kernel's port range)
#   FIRST_SOURCE       last octet of the first agent's first address (20: 127.0.0.20)
#   NGINX_WORKERS      nginx worker_processes   (2 x SESSIONS / 19,000 + 14 %, at least 2)
#   NGINX_SOURCES      loopback addresses nginx connects to the workers from
#                      (127.0.1.1-127.0.1.N; SESSIONS / 50,000 + 1)
#   CONNECT_TIMEOUT    agents' connect + upgrade + session-event bound (10s)
#   HEARTBEAT_TIMEOUT  an agent (or, for the agents, the coordinator) silent this long
#                      is lost (30s: everything shares the CPU)
#   APPLY_SYSCTL       1: raise kernel settings that are too low; 0: only report (1)
#   BIN_DIR            ws-server, ws-agent, ws-coordinator  (target/release, built if missing)
#   OUT                report directory        (results/scale-<UTC time>)
#   LISTEN_PORT REDIS_PORT BASE_PORT COORD_PORT   (free ports outside the ephemeral range)
#
# Exit status: 0 when every session was opened and held with no error, 1 otherwise,
# 2 on bad knobs or a stack that did not start.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib/kernel.sh
source "$REPO/scripts/lib/kernel.sh"

die() { echo "scale: $*" >&2; exit 2; }
int() { [[ $2 =~ ^[0-9]+$ ]] && [ "$2" -gt 0 ] || die "$1 must be a positive integer, not '$2'"; }

SESSIONS=${SESSIONS:-20000}
RATE=${RATE:-1000}
MESSAGES=${MESSAGES:-3}
MESSAGE_INTERVAL=${MESSAGE_INTERVAL:-5s}
HOLD=${HOLD:-30s}
SERVER_EVENT_INTERVAL=${SERVER_EVENT_INTERVAL:-10s}
SESSIONS_PER_AGENT=${SESSIONS_PER_AGENT:-18000}
FIRST_SOURCE=${FIRST_SOURCE:-20}
CONNECT_TIMEOUT=${CONNECT_TIMEOUT:-10s}
FAN_OUT_RATE=${FAN_OUT_RATE:-4000}
REDIS_NICE=${REDIS_NICE:--10}
[[ $FAN_OUT_RATE =~ ^[0-9]+$ ]] || die "FAN_OUT_RATE must be a number, not '$FAN_OUT_RATE'"
[[ $REDIS_NICE =~ ^-?[0-9]+$ ]] || die "REDIS_NICE must be a number, not '$REDIS_NICE'"
int SESSIONS "$SESSIONS"; int RATE "$RATE"; int SESSIONS_PER_AGENT "$SESSIONS_PER_AGENT"
[[ $MESSAGES =~ ^[0-9]+$ ]] || die "MESSAGES must be a number, not '$MESSAGES'"
[ "$SESSIONS_PER_AGENT" -le 19000 ] || die "SESSIONS_PER_AGENT must be <= 19000 (20,000 open files per process)"
AGENTS=${AGENTS:-$(((SESSIONS + SESSIONS_PER_AGENT - 1) / SESSIONS_PER_AGENT))}
int AGENTS "$AGENTS"
PER_AGENT=$(((SESSIONS + AGENTS - 1) / AGENTS))
[ "$PER_AGENT" -le 19000 ] || die "$AGENTS agents would hold $PER_AGENT sessions each (> 19,000 open files): raise AGENTS"
PORTS_PER_ADDR=$(kernel_ports_per_address)
# Each address gets at most 40 % of the port range towards nginx's one address:port:
# the kernel hands out one parity of the range first (half of it), and past that
# every new connection searches the range in the kernel (seen with 200,000 sessions
# over 12 addresses: the ramp fell from 250 to ~50 opens/s past ~14,100 per address,
# the machine at 78 % system time).
ADDRS_PER_AGENT=${ADDRS_PER_AGENT:-$(((PER_AGENT * 5 / 2 + PORTS_PER_ADDR - 1) / PORTS_PER_ADDR))}
int ADDRS_PER_AGENT "$ADDRS_PER_AGENT"
LAST_SOURCE=$((FIRST_SOURCE + AGENTS * ADDRS_PER_AGENT - 1))
[ "$LAST_SOURCE" -le 254 ] || die "$AGENTS agents x $ADDRS_PER_AGENT addresses from 127.0.0.$FIRST_SOURCE run past 127.0.0.254"
# Each session costs nginx two connections; 19,000 per worker (nginx/nginx.conf).
NGINX_WORKERS=${NGINX_WORKERS:-$(((SESSIONS * 2 * 114 / 100 + 18999) / 19000))}
[ "$NGINX_WORKERS" -ge 2 ] || NGINX_WORKERS=2
int NGINX_WORKERS "$NGINX_WORKERS"
[ "$SESSIONS" -le $((12 * 19000)) ] || echo "scale: warning: $SESSIONS sessions exceed 12 workers x MAX_CONNECTIONS 19,000" >&2
# Batches of a tenth of a second's arrivals, all of them allowed to be active at once
# (a plan's batches beyond --max-active-batches would wait for earlier ones to end).
BATCH=$(((RATE + 9) / 10))
BATCH_INTERVAL_MS=$((BATCH * 1000 / RATE))
[ "$BATCH_INTERVAL_MS" -ge 1 ] || BATCH_INTERVAL_MS=1
BATCHES=$(((SESSIONS + BATCH - 1) / BATCH))
OUT=${OUT:-$REPO/results/scale-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"

# --- binaries -------------------------------------------------------------------
if [ -z "${BIN_DIR:-}" ]; then
  BIN_DIR=$REPO/target/release
  for b in ws-server ws-agent ws-coordinator; do
    if [ ! -x "$BIN_DIR/$b" ]; then
      echo "scale: building the release binaries (cargo build --release)"
      (cd "$REPO" && nice -n 19 cargo build --release -q -p wsload-server -p wsload-agent -p wsload-coordinator)
      break
    fi
  done
fi
for b in ws-server ws-agent ws-coordinator; do [ -x "$BIN_DIR/$b" ] || die "$BIN_DIR/$b is missing"; done
for b in redis-server redis-cli curl python3; do command -v "$b" >/dev/null || die "$b is not installed (scripts/setup.sh)"; done
NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX_BIN" ] || die "nginx is not installed (scripts/setup.sh)"

# --- ports: free ones outside the ephemeral range (clients never take them) -------
# shellcheck source=scripts/lib/ports.sh
source "$REPO/scripts/lib/ports.sh"
# shellcheck source=scripts/lib/nginx.sh
source "$REPO/scripts/lib/nginx.sh"
LISTEN_PORT=${LISTEN_PORT:-$(free_ports 1)}
REDIS_PORT=${REDIS_PORT:-$(free_ports 1)}
BASE_PORT=${BASE_PORT:-$(free_ports 12)}
COORD_PORT=${COORD_PORT:-$(free_ports 1)}

WORK=$(mktemp -d /tmp/wsload-scale.XXXXXX)
PIDS=()
AGENT_PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  cp "$WORK"/*.log "$OUT/" 2>/dev/null || true
  cp -r "$WORK/nginx/logs" "$OUT/nginx-logs" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # PORT WHAT PID
  for _ in $(seq 1 300); do
    port_open "$1" && return 0
    kill -0 "$3" 2>/dev/null || die "$2 exited before listening on $1 (logs: $OUT)"
    sleep 0.1
  done
  die "$2 did not listen on $1 within 30 s"
}

echo "== scale: $SESSIONS sessions at $RATE/s, $AGENTS agents x $ADDRS_PER_AGENT source addresses (127.0.0.$FIRST_SOURCE-127.0.0.$LAST_SOURCE), $NGINX_WORKERS nginx workers"
echo "== kernel settings"
ulimit -n "$(ulimit -Hn)"
printf '  %-34s %s per process (ulimit -Hn): agents hold <= %s sessions each\n' "open files" "$(ulimit -Hn)" "$PER_AGENT"
if [ -e /proc/sys/net/netfilter/nf_conntrack_max ]; then
  # Every session is two tracked connections (agent -> nginx, nginx -> worker).
  kernel_need net.netfilter.nf_conntrack_max $((SESSIONS * 5 / 2 + 65536)) \
    "2 tracked connections per session; a full table drops new connections"
else
  printf '  %-34s n/a (nf_conntrack not loaded: no limit)\n' net.netfilter.nf_conntrack_max
fi
kernel_need net.core.somaxconn 65535 "caps every listen backlog (nginx 65535, ws-server --listen-backlog 65535)"
kernel_need net.ipv4.tcp_max_syn_backlog 65535 "half-open connections queued per listener during an open burst"
kernel_need fs.file-max $((SESSIONS * 4 + 100000)) "4 open files per session (agent, nginx x2, worker)"
kernel_report net.ipv4.ip_local_port_range \
  "$PORTS_PER_ADDR ports per source address; $ADDRS_PER_AGENT addresses per agent of <= $PER_AGENT sessions instead of a wider range, whose ports other programs may listen on"
kernel_report net.ipv4.tcp_mem "pages; socket buffers past the 3rd value fail allocations"
[ "$KERNEL_UNSET" -eq 0 ] || echo "  !! $KERNEL_UNSET setting(s) left below what $SESSIONS sessions need: expect failures past them"

# --- the stack --------------------------------------------------------------------
echo "== stack: redis :$REDIS_PORT, ws-server :$BASE_PORT-$((BASE_PORT + 11)), nginx :$LISTEN_PORT, coordinator :$COORD_PORT"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --maxclients 10000 \
  >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!; PIDS+=("$REDIS_PID")
wait_port "$REDIS_PORT" redis-server "$REDIS_PID"
if renice -n "$REDIS_NICE" -p "$REDIS_PID" >/dev/null 2>&1; then
  echo "  redis-server at nice $REDIS_NICE"
else
  echo "  !! redis-server left at nice $(ps -o ni= -p "$REDIS_PID" | tr -d ' '): renice $REDIS_NICE needs root"
fi
RUST_LOG=${RUST_LOG:-warn} "$BIN_DIR/ws-server" --base-port "$BASE_PORT" --redis-url "redis://127.0.0.1:$REDIS_PORT" \
  --server-event-interval "$SERVER_EVENT_INTERVAL" --fan-out-rate "$FAN_OUT_RATE" >"$WORK/ws-server.log" 2>&1 &
SERVER_PID=$!; PIDS+=("$SERVER_PID")
for i in $(seq 0 11); do wait_port $((BASE_PORT + i)) ws-server "$SERVER_PID"; done
nginx_conf "$WORK/nginx" "$NGINX_WORKERS"
# nginx's connections to the workers all come from 127.0.0.1, and the kernel's
# ephemeral ports to one worker port run out near 14,000 (seen: 169,187 sessions
# through 12 workers, then "connect() failed (99: Cannot assign requested address)").
# So nginx spreads its upstream connections over several loopback source addresses
# (proxy_bind; nginx binds with IP_BIND_ADDRESS_NO_PORT, so the port is still picked
# per destination): one per 50,000 sessions, and one more. A host whose workers sit
# on other machines does the same with its own addresses.
NGINX_SOURCES=${NGINX_SOURCES:-$((SESSIONS / 50000 + 1))}
int NGINX_SOURCES "$NGINX_SOURCES"
{
  echo "split_clients \"\$remote_addr\$remote_port\" \$wsload_upstream_source {"
  for i in $(seq 1 $((NGINX_SOURCES - 1))); do
    echo "    $(python3 -c "print(f'{100 / $NGINX_SOURCES:.2f}%')") 127.0.1.$i;"
  done
  echo "    * 127.0.1.$NGINX_SOURCES;"
  echo "}"
  nginx_site "127.0.0.1:$LISTEN_PORT" "$BASE_PORT" -e "s|^\( *\)proxy_pass http://websocket;|&\n\1proxy_bind \$wsload_upstream_source;|"
} >"$WORK/nginx/sites-enabled/default"
echo "== nginx: $NGINX_WORKERS workers; upstream connections from 127.0.1.1-127.0.1.$NGINX_SOURCES"
"$NGINX_BIN" -p "$WORK/nginx/" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' >"$WORK/nginx.log" 2>&1 &
NGINX_PID=$!; PIDS+=("$NGINX_PID")
wait_port "$LISTEN_PORT" nginx "$NGINX_PID"
for i in $(seq 0 11); do
  for _ in $(seq 1 100); do curl -fs "127.0.0.1:$((BASE_PORT + i))/healthz" >/dev/null && break; sleep 0.1; done
done

export WSLOAD_TOKEN=scale-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
for k in $(seq 0 $((AGENTS - 1))); do
  first=$((FIRST_SOURCE + k * ADDRS_PER_AGENT))
  RUST_LOG=${RUST_LOG:-warn} "$BIN_DIR/ws-agent" --coordinator "http://127.0.0.1:$COORD_PORT" --name "scale-$((k + 1))" \
    --source-ips "127.0.0.$first-127.0.0.$((first + ADDRS_PER_AGENT - 1))" --allow-target 127.0.0.1 \
    --grace "${HEARTBEAT_TIMEOUT:-30s}" >"$WORK/agent-$((k + 1)).log" 2>&1 &
  AGENT_PIDS+=($!); PIDS+=($!)
done

# --- sampling -----------------------------------------------------------------------
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
tree_rss_kb() { local t=0 p; for p in $1 $(pgrep -P "$1" || true); do t=$((t + $(rss_kb "$p"))); done; echo "$t"; }
server_open() { # ws_connections_open summed over the 12 workers
  local i t=0 v
  for i in $(seq 0 11); do
    v=$(curl -fs "127.0.0.1:$((BASE_PORT + i))/metrics" | awk '/^ws_connections_open\{/ {print $2}')
    t=$((t + ${v:-0}))
  done
  echo "$t"
}
# One line of key=value figures of everything a session costs.
sample() {
  local agents=0 p
  for p in "${AGENT_PIDS[@]}"; do agents=$((agents + $(rss_kb "$p"))); done
  echo "open=$(server_open) agents_kb=$agents nginx_kb=$(tree_rss_kb "$NGINX_PID")" \
    "server_kb=$(tree_rss_kb "$SERVER_PID") redis_kb=$(rss_kb "$REDIS_PID")" \
    "redis_used=$(redis-cli -p "$REDIS_PORT" info memory | awk -F: '/^used_memory:/ {print $2+0}')" \
    "tcp_inuse=$(awk '/^TCP:/ {print $3}' /proc/net/sockstat) tcp_mem_pages=$(awk '/^TCP:/ {print $11}' /proc/net/sockstat)" \
    "slab_kb=$(awk '/^Slab:/ {print $2}' /proc/meminfo)" \
    "slab_tcp_kb=$({ cat /proc/slabinfo 2>/dev/null || true; } | awk '$1 ~ /^(TCP|tw_sock_TCP|request_sock_TCP|sock_inode_cache|nf_conntrack|eventpoll_epi|eventpoll_pwq|filp|dentry)$/ {s += $3 * $4} END {print int(s / 1024)}')" \
    "conntrack=$(cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null || echo 0)"
}
# Agents' RSS before they hold anything (they register once the coordinator listens).
sleep 1
sample >"$WORK/baseline"

# Bounded: the opening phase, the messages, the hold and a margin.
secs() { python3 -c 'import re,sys; v=sys.argv[1]; m={"ms":0.001,"s":1,"m":60,"h":3600}; print(int(sum(float(n)*m[u] for n,u in re.findall(r"([0-9.]+)(ms|s|m|h)",v)) or float(v)))' "$1"; }
MAX_DURATION=$((SESSIONS / RATE * 3 + MESSAGES * $(secs "$MESSAGE_INTERVAL") + $(secs "$HOLD") + 120))
# A session lives for its messages and then HOLD: if that is shorter than opening
# them all takes, the first close before the last opens and never all are held at once.
RAMP_S=$(((SESSIONS + RATE - 1) / RATE))
LIFE_S=$(((MESSAGES > 0 ? MESSAGES - 1 : 0) * $(secs "$MESSAGE_INTERVAL") + $(secs "$HOLD")))
if [ "$LIFE_S" -le "$RAMP_S" ]; then
  echo "scale: warning: a session lives ~${LIFE_S}s (its messages, then HOLD) but opening all takes ${RAMP_S}s at $RATE/s:" \
    "the first close before the last opens, so never all $SESSIONS are held at once" \
    "(HOLD=$(($(secs "$HOLD") + RAMP_S - LIFE_S + 600))s would hold all of them for 10 minutes)" >&2
fi

echo "== run: $BATCHES batches of $BATCH every ${BATCH_INTERVAL_MS}ms (max duration ${MAX_DURATION}s)"
START=$(date +%s.%N)
"$BIN_DIR/ws-coordinator" run --listen "127.0.0.1:$COORD_PORT" --agents "$AGENTS" --agent-wait 60s \
  --heartbeat-timeout "${HEARTBEAT_TIMEOUT:-30s}" \
  --target "ws://127.0.0.1:$LISTEN_PORT/ws" --sessions "$SESSIONS" --batch-size "$BATCH" \
  --batch-interval "${BATCH_INTERVAL_MS}ms" --max-active-batches "$BATCHES" --connect-timeout "$CONNECT_TIMEOUT" \
  --messages-per-session "$MESSAGES" --message-interval "$MESSAGE_INTERVAL" --hold-time "$HOLD" \
  --max-duration "${MAX_DURATION}s" --out "$OUT/report" --quiet >"$WORK/coordinator.log" 2>&1 &
RUN_PID=$!; PIDS+=("$RUN_PID")
best=-1
while kill -0 "$RUN_PID" 2>/dev/null; do
  s=$(sample)
  open=${s%% *}; open=${open#open=}
  if [ "$open" -gt "$best" ]; then best=$open; echo "$s" >"$WORK/peak"; fi
  printf '\r  open now: %-8s peak: %-8s' "$open" "$best"
  sleep 1
done
echo
rc=0; wait "$RUN_PID" || rc=$?
cp "$WORK/coordinator.log" "$OUT/" 2>/dev/null || true
[ -f "$OUT/report/results.json" ] || { tail -20 "$WORK/coordinator.log" >&2; die "the run wrote no results.json (exit $rc)"; }
grep -q . "$WORK/peak" 2>/dev/null || sample >"$WORK/peak"
echo "== no live upstreams (nginx error log): $(grep -c 'no live upstreams' "$WORK/nginx/logs/error.log" 2>/dev/null || true)"

python3 "$REPO/scripts/lib/scale_bill.py" --results "$OUT/report/results.json" --baseline "$WORK/baseline" \
  --peak "$WORK/peak" --rate "$RATE" --agents "$AGENTS" --nginx-workers "$NGINX_WORKERS" | tee "$OUT/bill.md"
