# Helpers shared by the deployment test's stages (sourced, not run).
# Results: check NAME CMD... runs CMD, records a pass or a fail with NAME.

PASSED=0
FAILED=0
FAILURES=()

log() { printf '[deploy %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

pass() { PASSED=$((PASSED + 1)); log "PASS $1"; }
fail() { FAILED=$((FAILED + 1)); FAILURES+=("$1"); log "FAIL $1${2:+: $2}"; }

# check NAME CMD...: CMD's output goes to the log file; its tail is shown on failure.
check() {
  local name=$1; shift
  local out="$WORK/check-$((PASSED + FAILED)).log"
  if "$@" >"$out" 2>&1; then pass "$name"; else fail "$name"; tail -25 "$out" | sed 's/^/    /'; fi
}

# retry TRIES SLEEP CMD...: bounded retry; returns CMD's last status.
retry() {
  local tries=$1 pause=$2; shift 2
  local i
  for ((i = 1; i <= tries; i++)); do
    if "$@"; then return 0; fi
    [ "$i" -lt "$tries" ] && sleep "$pause"
  done
  return 1
}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Installs Debian packages whose command is missing: need CMD PACKAGE...
APT_UPDATED=0
need() {
  local cmd=$1; shift
  command -v "$cmd" >/dev/null 2>&1 && return 0
  if [ "$APT_UPDATED" = 0 ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  log "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
