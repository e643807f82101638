#!/usr/bin/env bash
# The main job, a demo worth watching (~60 s): brings up the server stack (redis, 12
# ws-server workers publishing a server event every 2 s, nginx), then a coordinator
# with 2 agent processes ramps arrivals up to several thousand held sessions, each
# sending one message a second, and ramps them down again. Open the dashboard URL it
# prints first; at the end it prints where report.html and the rest of the report are.
#
#   SESSIONS=4000   sessions over the whole run (arrivals of the three stages)
#   DURATION=60     length of the run in seconds (the stages and sessions scale with it)
#   DASHBOARD=127.0.0.1:7780   where the live dashboard listens
#   BIN_DIR=target/release     where ws-server, ws-agent and ws-coordinator are (built
#                              by `cargo build --release` when not given)
#   FREE_PORTS=1               every port (nginx, redis, workers, coordinator, dashboard)
#                              a free one instead of 8080, 6379, 9001-9012, 7700, 7780
#   OUT=results/demo-<time>    the report directory
#
# Falls back to the embedded memory broker (and no nginx) when redis or nginx cannot
# be installed, and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${FREE_PORTS:-0}" = 1 ]; then
  source scripts/lib/ports.sh
  LISTEN_PORT=$(free_ports 1) REDIS_PORT=$(free_ports 1) BASE_PORT=$(free_ports 12)
  COORD_PORT=$(free_ports 1) DASHBOARD=127.0.0.1:$(free_ports 1)
fi
source scripts/lib/stack.sh

SESSIONS=${SESSIONS:-4000}
DURATION=${DURATION:-60}
COORD_PORT=${COORD_PORT:-7700}
DASHBOARD=${DASHBOARD:-127.0.0.1:7780}
OUT=${OUT:-results/demo-$(date -u +%Y%m%dT%H%M%SZ)}

# Stages: ramp up over D/6, hold D/4, ramp down over D/12 (arrivals end at D/2); each
# session sends a message every second for 0.4 D, then stays open 0.08 D.
[ "$DURATION" -ge 12 ] || { echo "DURATION must be at least 12 (seconds)" >&2; exit 2; }
ramp=$((DURATION / 6)); hold=$((DURATION / 4)); down=$((DURATION / 12))
# Arrivals = rate x (ramp/2 + hold + down/2).
rate=$(( (SESSIONS * 2 + ramp + 2 * hold + down - 1) / (ramp + 2 * hold + down) ))
[ "$rate" -ge 1 ] || rate=1
messages=$((DURATION * 2 / 5)); hold_time=$((DURATION * 2 / 25))

stack_install
if [ -z "${BIN_DIR:-}" ]; then
  cargo build --release --workspace
  BIN_DIR=target/release
fi
trap stack_stop EXIT INT TERM
SERVER_EVENT_INTERVAL=${SERVER_EVENT_INTERVAL:-2s} STACK_LOGS=file stack_start "$BIN_DIR/ws-server"

export WSLOAD_TOKEN=${WSLOAD_TOKEN:-demo-$RANDOM$RANDOM}
for name in agent-1 agent-2; do
  "$BIN_DIR/ws-agent" --coordinator "http://127.0.0.1:$COORD_PORT" --name "$name" \
    --allow-target 127.0.0.1 >"$STACK_WORK/$name.log" 2>&1 &
  STACK_PIDS+=($!)
done
echo
echo "dashboard: http://$DASHBOARD/   (live; open it now)"
echo "plan:      ~$SESSIONS sessions over ${DURATION}s: ramp to $rate/s, $messages messages each (1/s), held ${hold_time}s"
echo
status=0
"$BIN_DIR/ws-coordinator" run --listen "127.0.0.1:$COORD_PORT" --agents 2 --dashboard "$DASHBOARD" \
  --target "$STACK_URL" --stage "${ramp}s:$rate" --stage "${hold}s:$rate" --stage "${down}s:0" \
  --batch-size 50 --max-active-batches "$((SESSIONS / 50 + 10))" --messages-per-session "$messages" --message-interval 1s --hold-time "${hold_time}s" \
  --max-duration "$((DURATION * 2))s" --out "$OUT" \
  --threshold 'connect_error_rate<1%' --threshold 'response_error_rate<1%' --threshold 'rtt_p99<250ms' || status=$?
echo
echo "report:  $OUT/report.html  (open it in a browser; works offline)"
echo "also:    $OUT/results.txt, results.json, timeseries.csv, $(cd "$OUT" 2>/dev/null && ls -- *.png | tr "\n" " ")"
exit $status
