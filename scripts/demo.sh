#!/usr/bin/env bash
# The main job, a full demo: brings up the server stack (redis, 12 ws-server
# workers, nginx), runs a coordinator with 2 agent processes for a short test
# (SESSIONS x MESSAGES, default 2,000 x 30) and prints where the report and
# charts are. Falls back to the embedded memory broker (and no nginx) when redis
# or nginx cannot be installed, and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/stack.sh

SESSIONS=${SESSIONS:-2000}
MESSAGES=${MESSAGES:-30}
COORD_PORT=${COORD_PORT:-7700}
OUT=${OUT:-results/demo-$(date -u +%Y%m%dT%H%M%SZ)}

stack_install
cargo build --release --workspace
trap stack_stop EXIT INT TERM
STACK_LOGS=file stack_start target/release/ws-server

export WSLOAD_TOKEN=${WSLOAD_TOKEN:-demo-$RANDOM$RANDOM}
for name in agent-1 agent-2; do
  target/release/ws-agent --coordinator "http://127.0.0.1:$COORD_PORT" --name "$name" \
    --allow-target 127.0.0.1 >"$STACK_WORK/$name.log" 2>&1 &
  STACK_PIDS+=($!)
done
status=0
target/release/ws-coordinator run --listen "127.0.0.1:$COORD_PORT" --agents 2 \
  --target "$STACK_URL" --sessions "$SESSIONS" --batch-size 250 --batch-interval 250ms \
  --messages-per-session "$MESSAGES" --out "$OUT" \
  --threshold 'connect_error_rate<1%' --threshold 'response_error_rate<1%' || status=$?
echo
echo "report:  $OUT/results.txt  (also results.json, timeseries.csv)"
echo "charts:  $OUT/*.png: $(cd "$OUT" 2>/dev/null && ls -- *.png | tr "\n" " ")"
exit $status
