#!/usr/bin/env bash
# Where a message's CPU goes on the full path (agents -> nginx -> 12 Redis-backed
# workers -> Redis and back): runs the agent bench's end-to-end echo and, in the middle
# of its closed-loop run of the built-in protocol, measures for WINDOW seconds
#   - CPU per process kind (user and system, from /proc/<pid>/stat), per message;
#   - perf's system-wide profile: the share of each process kind and kernel vs user,
#     and the hottest functions.
# Run it alone on the machine (2 cores: anything else distorts it). Needs perf
# (linux-perf) and release binaries (cargo build --release --workspace).
#
#   scripts/profile-echo.sh                 # WINDOW=20 BENCH_ECHO_MESSAGES=600
#
# Prints one table; the raw perf data stays in $OUT (results/profile-<UTC time>).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
WINDOW=${WINDOW:-20}
export BENCH_ECHO_MESSAGES=${BENCH_ECHO_MESSAGES:-600} BENCH_PARTS=echo
OUT=${OUT:-$REPO/results/profile-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
command -v perf >/dev/null || { echo "profile-echo: perf is not installed (apt-get install linux-perf)" >&2; exit 2; }
echo -1 >/proc/sys/kernel/perf_event_paranoid 2>/dev/null || true

KINDS=(ws-agent nginx ws-server redis-server ws-coordinator)
ticks() { # total utime+stime ticks of every process named $1: "user system"
  local u=0 s=0 f
  for f in /proc/[0-9]*/stat; do
    read -r line <"$f" 2>/dev/null || continue
    local comm=${line#*(}; comm=${comm%%)*}
    [ "$comm" = "$1" ] || continue
    # shellcheck disable=SC2086
    set -- "$1" ${line##*) }
    u=$((u + ${13})); s=$((s + ${14}))
  done
  echo "$u $s"
}

(cd "$REPO" && cargo bench -q -p wsload-coordinator --bench agent >"$OUT/bench.log" 2>&1) &
BENCH=$!
trap 'kill $BENCH 2>/dev/null || true' EXIT
# The closed-loop built-in run starts once the burst runs have printed their ratio.
until grep -q "scripted / built-in (burst)" "$OUT/bench.log" 2>/dev/null; do
  kill -0 $BENCH 2>/dev/null || { cat "$OUT/bench.log"; echo "profile-echo: the bench ended early" >&2; exit 1; }
  sleep 0.5
done
sleep 3
declare -A U0 S0
for k in "${KINDS[@]}"; do read -r U0[$k] S0[$k] < <(ticks "$k"); done
perf record -q -a -F 499 -o "$OUT/perf.data" -- sleep "$WINDOW" 2>"$OUT/perf.log"
declare -A U1 S1
for k in "${KINDS[@]}"; do read -r U1[$k] S1[$k] < <(ticks "$k"); done
wait $BENCH
trap - EXIT
rate=$(grep "built-in protocol, closed" -A3 "$OUT/bench.log" | grep -o '[0-9,]* messages/s' | head -1 | tr -d ', messages/s')
[ -n "$rate" ] || { cat "$OUT/bench.log"; echo "profile-echo: no closed-loop rate in the bench output" >&2; exit 1; }
hz=$(getconf CLK_TCK)
echo "== closed loop, built-in protocol: $rate messages/s; CPU over ${WINDOW}s in the middle of the run"
printf '%-16s %10s %10s %14s\n' process "user %" "system %" "us / message"
for k in "${KINDS[@]}"; do
  du=$((U1[$k] - U0[$k])); ds=$((S1[$k] - S0[$k]))
  python3 -c "
u, s, hz, w, r = $du, $ds, $hz, $WINDOW, $rate
print(f'%-16s %10.1f %10.1f %14.1f' % ('$k', u * 100 / hz / w, s * 100 / hz / w, (u + s) / hz / (r * w) * 1e6))"
done
echo "== perf: samples by process and by user/kernel"
perf report -i "$OUT/perf.data" --no-children --sort comm,dso --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -25
echo "== perf: hottest functions"
perf report -i "$OUT/perf.data" --no-children --sort sym --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -30
