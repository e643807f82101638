#!/usr/bin/env bash
# Fuzzes every parser that takes outside input (the targets of fuzz/, libFuzzer via
# cargo-fuzz): builds them, runs each for FUZZ_SECONDS (default 20) from its committed
# seed corpus (fuzz/corpus/<target>/) plus what earlier runs found
# (fuzz/work/<target>/, not committed), and prints per target
#   fuzz: <target>: ok|CRASH, <executions> executions in <s> s, corpus <n> inputs
# then
#   fuzz: N passed, M failed
# It exits non-zero when a target crashed (panic, timeout, out of memory); the input
# is kept in fuzz/artifacts/<target>/ — reproduce with
#   fuzz/target/x86_64-unknown-linux-gnu/release/<target> fuzz/artifacts/<target>/<file>
# and turn it into a regression test in the crate that owns the parser.
#
# FUZZ_TARGETS narrows the targets (space-separated). Works on a stable toolchain:
# the nightly-only flags libFuzzer's instrumentation needs are allowed with
# RUSTC_BOOTSTRAP=1, set here when rustc is not a nightly. cargo-fuzz is installed
# when missing. No sanitizer: the code under test forbids `unsafe`, and the build
# and each execution are several times faster without AddressSanitizer.
set -uo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${FUZZ_SECONDS:-20}
if ! rustc --version | grep -q nightly; then
  export RUSTC_BOOTSTRAP=1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked || exit 1
fi

triple=$(rustc -vV | sed -n 's/^host: //p')
echo "== fuzz: building the targets"
start=$(date +%s)
cargo fuzz build --sanitizer none || { echo "fuzz: 0 passed, 1 failed (build)"; exit 1; }
echo "fuzz: built in $(($(date +%s) - start)) s"

targets=${FUZZ_TARGETS:-$(cargo fuzz list)}
passed=0
failed=0
for t in $targets; do
  mkdir -p "work/$t" "artifacts/$t"
  log=$(mktemp)
  # -timeout: one input running over 10 s is a hang; -rss_limit_mb: memory use past
  # 2 GiB is a failure; -max_len: plans and frame streams of up to 64 KiB.
  "target/$triple/release/$t" "work/$t" "corpus/$t" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="artifacts/$t/" >"$log" 2>&1
  status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  time=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  corpus=$(find "work/$t" "corpus/$t" -type f | wc -l)
  if [ "$status" -eq 0 ]; then
    passed=$((passed + 1))
    echo "fuzz: $t: ok, ${execs:-0} executions in ${time:-$seconds} s, corpus $corpus inputs"
  else
    failed=$((failed + 1))
    echo "fuzz: $t: CRASH (exit $status), ${execs:-?} executions, corpus $corpus inputs"
    grep -E "panicked|ERROR: libFuzzer|SUMMARY|Test unit written|deadly signal|out-of-memory|timeout" "$log" | head -20
  fi
  rm -f "$log"
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
