#!/usr/bin/env bash
# The server stack alone: redis, the ws-server supervisor with 12 workers
# (ports 9001-9012) and nginx with the repository's config in front
# (ws://127.0.0.1:${LISTEN_PORT:-8080}/ws). Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/stack.sh

stack_install
cargo build --release -p wsload-server
trap stack_stop EXIT INT TERM
stack_start target/release/ws-server
echo "Ctrl-C stops"
wait -n "${STACK_PIDS[@]}"
