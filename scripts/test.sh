#!/usr/bin/env bash
# The test command (CI runs it through .ci/run). Installs what the tests need
# (scripts/setup.sh), then runs every stage even when an earlier one failed:
#   fmt --check, clippy -D warnings, the build, the whole test suite, a bounded
#   fuzzing run (scripts/fuzz.sh) and the deployment test (deploy/test-deploy.sh).
# It always ends with the line
#   tests: N passed, M failed
# and exits non-zero when anything failed. N and M add up the cargo tests' and the
# deployment test's own counts; a failed check stage (setup, fmt, clippy, build)
# counts as one failure, and so does a test binary that ended without its
# `test result:` line (a crash) and a cargo run that failed without any count.
#
# For trying it locally: TEST_ARGS (default --workspace) narrows the cargo tests,
# SKIP_DEPLOY=1 leaves the deployment test out (it needs Docker), SKIP_FUZZ=1 the
# fuzzing (each target counts as one test; FUZZ_SECONDS per target, default 10).
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
failures=()
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() {
  failed=$((failed + 1))
  failures+=("$1")
}

# check NAME CMD...: a stage that passes or fails as a whole.
check() {
  local name=$1
  shift
  echo "== $name"
  "$@" || fail "$name"
}

# The counts of a cargo test log: "passed failed crashed". A binary is crashed when
# its "Running"/"Doc-tests" line is not followed by a "test result:" line.
count_cargo_tests() {
  awk '
    function close_binary() { if (pending) crashed++; pending = 0 }
    /^ *(Running|Doc-tests) / { close_binary(); pending = 1; next }
    /^test result:/ { p += $4; f += $6; pending = 0 }
    END { close_binary(); print p + 0, f + 0, crashed + 0 }
  ' "$1"
}

check setup ./scripts/setup.sh
check "cargo fmt --check" cargo fmt --all --check
check "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings
# Tests of one crate start the binaries of another (e.g. ws-server): build them all first.
check "cargo build" cargo build --workspace

echo "== cargo test"
# shellcheck disable=SC2086 # TEST_ARGS is a list of arguments
cargo test ${TEST_ARGS:---workspace} --no-fail-fast 2>&1 | tee "$work/cargo-test.log"
status=${PIPESTATUS[0]}
read -r tpassed tfailed crashed < <(count_cargo_tests "$work/cargo-test.log")
passed=$((passed + tpassed))
failed=$((failed + tfailed + crashed))
[ "$crashed" -gt 0 ] && failures+=("$crashed test binaries ended without a result (crashed?)")
[ "$tfailed" -gt 0 ] && failures+=("$tfailed cargo tests")
if [ "$status" -ne 0 ] && [ "$tfailed" -eq 0 ] && [ "$crashed" -eq 0 ]; then
  fail "cargo test exited with $status without a failed test (build error?)"
fi

# Fuzzing: every fuzz target for FUZZ_SECONDS from its seed corpus; the script ends
# with "fuzz: N passed, M failed" (one per target); a run without it is a failure.
if [ "${SKIP_FUZZ:-0}" = 1 ]; then
  echo "== fuzzing skipped (SKIP_FUZZ=1)"
else
  echo "== fuzzing"
  FUZZ_SECONDS=${FUZZ_SECONDS:-10} ./scripts/fuzz.sh 2>&1 | tee "$work/fuzz.log"
  fline=$(grep -E '^fuzz: [0-9]+ passed, [0-9]+ failed' "$work/fuzz.log" | tail -1)
  read -r _ fpassed _ ffailed _ <<<"${fline:-fuzz: 0 passed, 1 failed}"
  passed=$((passed + fpassed))
  failed=$((failed + ffailed))
  [ "$ffailed" -gt 0 ] && failures+=("fuzzing: $ffailed targets")
fi

# The deployment test: Ansible to containers over SSH, then the compose stack. It
# uses the target/debug binaries built above and ends with
# "deploy: N passed, M failed (S s)"; a run without that line counts as a failure.
if [ "${SKIP_DEPLOY:-0}" = 1 ]; then
  echo "== deployment test skipped (SKIP_DEPLOY=1)"
else
  echo "== deployment test"
  ./deploy/test-deploy.sh 2>&1 | tee "$work/deploy.log"
  dline=$(grep -E '^deploy: [0-9]+ passed, [0-9]+ failed' "$work/deploy.log" | tail -1)
  read -r _ dpassed _ dfailed _ <<<"${dline:-deploy: 0 passed, 1 failed}"
  passed=$((passed + dpassed))
  failed=$((failed + dfailed))
  [ "$dfailed" -gt 0 ] && failures+=("deployment test: $dfailed")
fi

echo
for f in "${failures[@]}"; do echo "failed: $f"; done
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
