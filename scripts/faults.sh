#!/usr/bin/env bash
# Faults under load at full size: the tests of coordinator/tests/faults.rs (nginx
# reload, one worker killed, Redis restarted, an agent's link cut within --grace,
# the serve coordinator restarted) on the real stack with FAULTS_SESSIONS sessions
# (default 20,000), one test at a time, each printing its accounting.
#
#   scripts/faults.sh                      # all five at 20,000 sessions (release build)
#   FAULTS_SESSIONS=5000 scripts/faults.sh killed_worker
#   PROFILE=debug scripts/faults.sh        # the debug build the test suite uses
#
# FAULTS_MESSAGES (default 6) messages per session, one every FAULTS_INTERVAL_MS
# (default 5000 ms): 20,000 sessions then send ~4,000 messages/s for ~30 s.
set -euo pipefail
cd "$(dirname "$0")/.."

export FAULTS_SESSIONS=${FAULTS_SESSIONS:-20000}
export FAULTS_MESSAGES=${FAULTS_MESSAGES:-6}
export FAULTS_INTERVAL_MS=${FAULTS_INTERVAL_MS:-5000}
profile=()
[[ ${PROFILE:-release} == release ]] && profile=(--release)

# The binaries the tests start (ws-server, ws-agent, ws-coordinator) in the same profile.
cargo build "${profile[@]}" --workspace --bins
echo "faults: ${FAULTS_SESSIONS} sessions x ${FAULTS_MESSAGES} messages, one every ${FAULTS_INTERVAL_MS} ms"
# One at a time: each test holds the whole load.
cargo test "${profile[@]}" -p wsload-coordinator --test faults -- --test-threads 1 --nocapture "$@"
