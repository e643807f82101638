#!/usr/bin/env bash
# Installs what the tests and the demo need, when it is missing: redis-server, nginx,
# chromium (the dashboard tests), Python's websockets (the server's compression interop
# test) and grpcio (the Control API's independent-client test). Idempotent, and
# silent when everything is there. scripts/test.sh and scripts/demo.sh (through
# scripts/lib/stack.sh) run it first.
#
# To require something more, add one line to the list below:
#   need_cmd COMMAND DEBIAN_PACKAGE [FALLBACK_PATH...]   e.g. need_cmd chromium chromium
#   need_py MODULE PIP_PACKAGE DEBIAN_PACKAGE
set -euo pipefail

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

APT=() # Debian packages of missing commands
PY=()  # missing Python modules, as MODULE:PIP_PACKAGE:DEBIAN_PACKAGE

# A command found on PATH or at one of the fallback paths (sbin is not on every PATH).
need_cmd() {
  local cmd=$1 pkg=$2 p
  shift 2
  command -v "$cmd" >/dev/null 2>&1 && return 0
  for p in "$@"; do [ -x "$p" ] && return 0; done
  APT+=("$pkg")
}

need_py() { python3 -c "import $1" 2>/dev/null || PY+=("$1:$2:$3"); }

# --- what the tests and the demo need ------------------------------------------
need_cmd redis-server redis-server /usr/bin/redis-server
need_cmd nginx nginx /usr/sbin/nginx
need_cmd python3 python3
need_cmd chromium chromium /usr/bin/chromium
# --------------------------------------------------------------------------------

APT_UPDATED=0
apt_install() {
  if [ "$APT_UPDATED" = 0 ]; then
    as_root apt-get update -qq
    APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if [ ${#APT[@]} -gt 0 ]; then
  echo "setup: installing ${APT[*]}"
  apt_install "${APT[@]}"
fi

# Python modules once python3 is surely there.
need_py websockets websockets python3-websockets
# The Control API's independent-client test (Google's grpcio, with reflection v1alpha).
need_py grpc grpcio python3-grpcio
need_py grpc_tools grpcio-tools python3-grpc-tools
need_py grpc_reflection grpcio-reflection python3-grpcio-reflection

for entry in "${PY[@]}"; do
  IFS=: read -r module pip_pkg deb_pkg <<<"$entry"
  echo "setup: installing Python's $module"
  python3 -m pip install -q "$pip_pkg" 2>/dev/null ||
    python3 -m pip install -q --break-system-packages "$pip_pkg" 2>/dev/null ||
    apt_install "$deb_pkg"
  python3 -c "import $module" 2>/dev/null || { echo "setup: cannot install Python's $module" >&2; exit 1; }
done
