#!/usr/bin/env bash
# The deployment test (run by scripts/test.sh after the cargo tests):
#   1. Ansible: site.yml against three containers (systemd + sshd) on a private
#      Docker network, twice; units, kernel settings, agents registering with the
#      coordinator and a load test whose totals add up.       (lib/ansible-stage.sh)
#      Then a third run switches the coordinator to TLS.       (lib/ansible-tls.sh)
#   2. Docker: server/Dockerfile images and server/docker-compose.yml brought up,
#      WebSocket sessions driven through nginx, torn down.     (lib/compose-stage.sh)
# No registry is needed: the base image is debootstrapped and imported when missing
# (lib/base-image.sh). Only private Docker addresses are load targets; no fixed
# host port is used (compose's nginx gets one Docker picks). Everything it starts
# is removed on exit; images stay as a cache.
#
# Binaries: WSLOAD_BIN_DIR (default target/debug, which scripts/test.sh has just
# built) must hold ws-server, ws-agent and ws-coordinator, built on Debian 12 or
# older glibc. Stages can be chosen with DEPLOY_STAGES="ansible compose".
set -uo pipefail
# shellcheck source-path=SCRIPTDIR/..
REPO=$(cd "$(dirname "$0")/.." && pwd)
. "$REPO/deploy/lib/common.sh"
. "$REPO/deploy/lib/hosts.sh"
. "$REPO/deploy/lib/ansible-stage.sh"
. "$REPO/deploy/lib/ansible-tls.sh"
. "$REPO/deploy/lib/compose-stage.sh"

STAGES=${DEPLOY_STAGES:-ansible compose}
BIN_DIR=${WSLOAD_BIN_DIR:-$REPO/target/debug}
BASE_IMAGE=${BASE_IMAGE:-debian:bookworm-slim}
HOST_IMAGE=wsload/test-host:bookworm
ID=wsload-deploy-$$
NET=$ID
WORK=$(mktemp -d /tmp/wsload-deploy.XXXXXX)
# Stripped copies of the binaries: what the roles copy and the images contain.
# Inside target/ so the Docker build context (the repository) can see them.
BIN_STAGE=$REPO/target/dist
TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
START=$SECONDS

cleanup() {
  compose_down 2>/dev/null
  local ids
  ids=$(docker ps -aq --filter "label=org.wsload.test=$ID")
  # shellcheck disable=SC2086 # one id per word
  [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1
  docker network rm "$NET" >/dev/null 2>&1
  if [ -n "${DEPLOY_KEEP_LOGS:-}" ]; then echo "logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

summary() {
  echo "deploy: $PASSED passed, $FAILED failed ($((SECONDS - START)) s)"
  for f in "${FAILURES[@]}"; do echo "  failed: $f"; done
  [ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ]
}

prepare() {
  [ "$(id -u)" -eq 0 ] || command -v sudo >/dev/null || { echo "deploy: needs root (apt-get)"; exit 1; }
  if ! docker info >/dev/null 2>&1; then fail "docker engine reachable"; summary; exit 1; fi
  need ansible-playbook ansible
  need ansible-lint ansible-lint
  need debootstrap debootstrap
  need ssh-keygen openssh-client
  need strip binutils
  need openssl openssl
  need docker-compose docker-compose
  local b
  mkdir -p "$BIN_STAGE"
  for b in ws-server ws-agent ws-coordinator; do
    [ -x "$BIN_DIR/$b" ] || { fail "binary $BIN_DIR/$b exists (build first)"; summary; exit 1; }
    # Debug builds are ~100-170 MB: without their debug info they copy in a blink.
    strip --strip-debug -o "$BIN_STAGE/$b.tmp" "$BIN_DIR/$b" && mv "$BIN_STAGE/$b.tmp" "$BIN_STAGE/$b"
  done
  ssh-keygen -q -t ed25519 -N '' -C "wsload-deploy-test" -f "$WORK/id_ed25519"
  KEY=$WORK/id_ed25519
  local t0=$SECONDS
  "$REPO/deploy/lib/base-image.sh" "$BASE_IMAGE" || { fail "base image $BASE_IMAGE"; summary; exit 1; }
  log "base image $BASE_IMAGE ready ($((SECONDS - t0)) s)"
  t0=$SECONDS
  docker build -q --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$HOST_IMAGE" "$REPO/deploy/test-host" >"$WORK/host-image.log" 2>&1 \
    || { cat "$WORK/host-image.log"; fail "test host image"; summary; exit 1; }
  log "test host image ready ($((SECONDS - t0)) s)"
}

prepare
for stage in $STAGES; do
  t0=$SECONDS
  log "stage $stage"
  "${stage}_stage"
  log "stage $stage done ($((SECONDS - t0)) s)"
done
summary
