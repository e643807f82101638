# Stage 1: the Ansible roles against three test hosts (sourced).
#   srv    : groups servers + coordinator (redis, ws-server, nginx, ws-coordinator)
#   agent1 : group agents, with two extra source addresses (needs NET_ADMIN)
#   agent2 : group agents
# Checks: lint, first run, second run changes nothing, units verified and active,
# kernel settings live, agents registered, a load test whose totals add up on the
# coordinator, in results.json and on the server.

SESSIONS=${DEPLOY_SESSIONS:-300}
MESSAGES=${DEPLOY_MESSAGES:-5}

playbook() {
  ANSIBLE_CONFIG="$REPO/ansible/ansible.cfg" ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 \
    ANSIBLE_PRIVATE_KEY_FILE="$KEY" ANSIBLE_RETRY_FILES_ENABLED=0 \
    timeout 900 ansible-playbook -i "$WORK/inventory" "$REPO/ansible/site.yml" -e "@$WORK/overrides.yml" "$@"
}

# Hosts in the PLAY RECAP that have no failures.
recap_hosts() { sed -n '/^PLAY RECAP/,$p' "$1" | grep -cE 'unreachable=0 +failed=0'; }

# Every host of the PLAY RECAP has changed=0 failed=0 unreachable=0.
recap_unchanged() {
  local recap
  recap=$(sed -n '/^PLAY RECAP/,$p' "$1" | grep -E 'ok=[0-9]+')
  echo "$recap"
  [ "$(wc -l <<<"$recap")" = 3 ] && ! grep -vqE 'changed=0 +unreachable=0 +failed=0' <<<"$recap"
}

write_inventory() {
  local subnet=$1 srv=$2 a1=$3 a2=$4 extra1=$5 extra2=$6
  mkdir -p "$WORK/inventory"
  # The example's group_vars, unchanged: the test runs with the documented settings.
  cp -r "$REPO/ansible/inventory/example/group_vars" "$WORK/inventory/"
  cat >"$WORK/inventory/hosts" <<INI
[coordinator]
srv ansible_host=$srv

[servers]
srv ansible_host=$srv

[agents]
agent1 ansible_host=$a1 agent_extra_addresses='["$extra1/32","$extra2/32"]'
agent2 ansible_host=$a2

[all:vars]
ansible_user=root
ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR'
INI
  # Site settings a real deployment would also set: token, binaries, allowed targets.
  cat >"$WORK/overrides.yml" <<YML
wsload_token: "$TOKEN"
wsload_bin_dir: "$BIN_STAGE"
agent_allow_targets: ["$subnet"]
YML
}

units_verified() {
  local c=$1; shift
  docker exec "$c" systemd-analyze verify "$@"
}

units_active() {
  local c=$1; shift
  docker exec "$c" systemctl is-active "$@"
}

# The live value of every setting in the role's sysctl file equals the file's.
sysctls_live() {
  docker exec "$1" sh -c '
    f=/etc/sysctl.d/60-wsload.conf; test -s "$f" || exit 1
    grep -v "^#" "$f" | grep = | while IFS="=" read -r k v; do
      k=$(echo $k); v=$(echo $v); live=$(sysctl -n "$k" | xargs)
      echo "$k: file=$v live=$live"; [ "$live" = "$v" ] || exit 1
    done'
}

agents_registered() {
  docker exec -e WSLOAD_TOKEN="$TOKEN" "$ID-srv" ws-coordinator agents --remote http://127.0.0.1:7700 >"$WORK/agents.txt" 2>&1
  grep -q agent1 "$WORK/agents.txt" && grep -q agent2 "$WORK/agents.txt"
}

load_test() {
  local target=$1
  docker exec -e WSLOAD_TOKEN="$TOKEN" "$ID-srv" timeout 240 ws-coordinator run \
    --remote http://127.0.0.1:7700 --agents 2 --target "ws://$target/ws" \
    --sessions "$SESSIONS" --batch-size 50 --batch-interval 200ms \
    --messages-per-session "$MESSAGES" --quiet >"$WORK/run.txt" 2>&1
  local rc=$?
  cat "$WORK/run.txt"
  # Exit 0 means completed with no failed session (without thresholds, a failed
  # connection or session exits 5); the summary line says the same in numbers.
  [ "$rc" = 0 ] && grep -q "sessions $SESSIONS (completed $SESSIONS), failed connections 0" "$WORK/run.txt"
}

# results.json on the coordinator: totals as planned, per-agent sessions sum to
# the total, both agents took part.
results_add_up() {
  local dir
  dir=$(sed -n 's/.*report (on the coordinator): //p' "$WORK/run.txt" | tail -1)
  [ -n "$dir" ] || { echo "no report dir in the run output"; return 1; }
  docker exec "$ID-srv" cat "$dir/results.json" >"$WORK/results.json" || return 1
  python3 - "$WORK/results.json" "$SESSIONS" "$MESSAGES" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); n, m = int(sys.argv[2]), int(sys.argv[3])
t = r["totals"]; agents = r["agents"]
print("totals:", {k: t[k] for k in ("sessions_planned", "sessions_opened", "failed_connections",
      "messages_sent", "responses_received", "errors_total", "lost_sessions")})
print("agents:", [(a["name"], a["sessions"]) for a in agents])
assert t["sessions_planned"] == n and t["sessions_opened"] == n, "sessions"
assert t["failed_connections"] == 0 and t["errors_total"] == 0 and t["lost_sessions"] == 0, "failures"
assert t["messages_sent"] == n * m and t["responses_received"] == n * m, "messages"
assert sum(a["sessions"] for a in agents) == n, "per-agent sessions do not sum to the total"
assert len(agents) == 2 and all(a["sessions"] > 0 for a in agents), "both agents must take part"
print("outcome:", r.get("outcome"))
PY
}

# The server counted every response the agents received (12 workers' /metrics).
server_counted() {
  local want=$((SESSIONS * MESSAGES)) got
  got=$(docker exec "$ID-srv" sh -c 'for p in $(seq 9001 9012); do curl -s 127.0.0.1:$p/metrics; done' \
    | awk '/^ws_responses_sent_total/ {s += $2} END {print s + 0}')
  echo "server responses_sent_total over 12 workers: $got (agents: $want)"
  [ "$got" = "$want" ]
}

# nginx saw sessions from agent1's extra addresses (its log is flushed every 5 s).
source_ips_used() {
  docker exec "$ID-srv" sh -c "grep -c '^$1 ' /var/log/nginx/access.log && grep -c '^$2 ' /var/log/nginx/access.log"
}

sysctls_live_all() { sysctls_live "$ID-agent1" && sysctls_live "$ID-agent2" && sysctls_live "$ID-srv"; }

ansible_stage() {
  docker network create --label "org.wsload.test=$ID" "$NET" >/dev/null
  local subnet
  subnet=$(docker network inspect -f '{{(index .IPAM.Config 0).Subnet}}' "$NET")
  start_host srv
  start_host agent1 --cap-add NET_ADMIN
  start_host agent2
  local h
  for h in srv agent1 agent2; do
    if ! wait_host "$h"; then
      # The roles need systemd as PID 1 (unprivileged, cgroup mounted read-only).
      fail "test host $h boots (systemd + sshd)"
      { docker exec "$ID-$h" systemctl --failed --no-pager; docker logs --tail 30 "$ID-$h"; } 2>&1 | sed 's/^/    /'
      return
    fi
  done
  pass "3 test hosts boot systemd and answer SSH"
  local srv a1 a2 x1 x2
  srv=$(host_ip srv); a1=$(host_ip agent1); a2=$(host_ip agent2)
  # Extra addresses at the top of the subnet (below broadcast), far from Docker's
  # allocation from the bottom; inside the subnet, so srv answers them directly.
  read -r x1 x2 < <(python3 -c 'import ipaddress, sys; n = ipaddress.ip_network(sys.argv[1]); print(n[-3], n[-2])' "$subnet")
  write_inventory "$subnet" "$srv" "$a1" "$a2" "$x1" "$x2"
  log "hosts: srv=$srv agent1=$a1 (+$x1,$x2) agent2=$a2 subnet=$subnet"

  local t0=$SECONDS
  check "ansible-lint (production profile)" sh -c "cd '$REPO/ansible' && ansible-lint --profile production -q --nocolor"
  if playbook >"$WORK/run1.log" 2>&1 && [ "$(recap_hosts "$WORK/run1.log")" = 3 ]; then
    pass "site.yml first run ($((SECONDS - t0)) s)"
  else
    fail "site.yml first run"; sed -n '/fatal\|FAILED\|PLAY RECAP/,+6p' "$WORK/run1.log" | head -40 | sed 's/^/    /'
    return
  fi
  t0=$SECONDS
  playbook >"$WORK/run2.log" 2>&1
  check "site.yml second run changes nothing ($((SECONDS - t0)) s)" recap_unchanged "$WORK/run2.log"

  check "unit files pass systemd-analyze verify" sh -c "
    docker exec $ID-srv systemd-analyze verify /etc/systemd/system/ws-server.service /etc/systemd/system/ws-coordinator.service &&
    docker exec $ID-agent1 systemd-analyze verify /etc/systemd/system/ws-agent.service /etc/systemd/system/wsload-source-ips.service &&
    docker exec $ID-agent2 systemd-analyze verify /etc/systemd/system/ws-agent.service"
  check "services active under systemd" sh -c "
    docker exec $ID-srv systemctl is-active redis-server ws-server nginx ws-coordinator &&
    docker exec $ID-agent1 systemctl is-active wsload-source-ips ws-agent &&
    docker exec $ID-agent2 systemctl is-active ws-agent"
  check "kernel settings live as written" sysctls_live_all
  check "extra source addresses on agent1" sh -c "docker exec $ID-agent1 ip -4 addr show | grep -F -e ' $x1/32' -e ' $x2/32'"
  check "nginx -> ws-server health from agent2" retry 20 0.5 docker exec "$ID-agent2" curl -fsS "http://$srv/healthz"

  check "agents registered with the coordinator" retry 30 1 agents_registered
  check "load test over the deployment: $SESSIONS sessions x $MESSAGES messages" load_test "$srv"
  check "results.json totals add up (per agent and in total)" results_add_up
  check "server counted every response" server_counted
  check "sessions came from agent1's extra addresses" retry 15 1 source_ips_used "$x1" "$x2"
  [ "${DEPLOY_TLS:-1}" = 0 ] || ansible_tls_stage
}
