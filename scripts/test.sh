#!/usr/bin/env bash
# The test command: installs what the tests need (redis-server, nginx, Python's
# websockets for the compression interop test) when missing, then runs
# fmt --check, clippy -D warnings and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

need=()
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || need+=(redis-server)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! python3 -c 'import websockets' 2>/dev/null; then
  python3 -m pip install -q websockets 2>/dev/null \
    || python3 -m pip install -q --break-system-packages websockets 2>/dev/null \
    || as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-websockets >/dev/null
fi

cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
# Tests of one crate start the binaries of another (e.g. ws-server): build them all first.
cargo build --workspace
log=$(mktemp)
dlog=$(mktemp)
trap 'rm -f "$log" "$dlog"' EXIT
cargo test --workspace 2>&1 | tee "$log"
passed=$(awk '/^test result:/ {s += $4} END {print s + 0}' "$log")
failed=$(awk '/^test result:/ {s += $6} END {print s + 0}' "$log")

# The deployment test: Ansible to containers over SSH, then the compose stack. It
# uses the target/debug binaries built above and ends with
# "deploy: N passed, M failed (S s)"; a crash without that line counts as a failure.
./deploy/test-deploy.sh 2>&1 | tee "$dlog" || true
dline=$(grep -E '^deploy: [0-9]+ passed, [0-9]+ failed' "$dlog" | tail -1 || true)
read -r _ dpassed _ dfailed _ <<<"${dline:-deploy: 0 passed, 1 failed}"
passed=$((passed + dpassed))
failed=$((failed + dfailed))

echo
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
