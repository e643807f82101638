# Stage 1, continued: the same hosts switched to a TLS coordinator (sourced).
# A CA and a certificate for srv are made here; site.yml runs a third time with
# wsload_coordinator_tls: true, which must restart the coordinator and the agents
# (handlers), and the agents must register again over https and run a load test.

make_tls_files() {
  local dir=$WORK/tls srv=$1
  mkdir -p "$dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=wsload-test-ca" -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null &&
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=srv" \
    -keyout "$dir/coord.key" -out "$dir/coord.csr" 2>/dev/null &&
  openssl x509 -req -in "$dir/coord.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 2 \
    -extfile <(printf 'subjectAltName=DNS:srv,IP:%s,IP:127.0.0.1\n' "$srv") -out "$dir/coord.pem" 2>/dev/null
}

tls_units() {
  docker exec "$ID-srv" grep -q -- '--tls-cert /etc/wsload/tls/coordinator.pem' /etc/systemd/system/ws-coordinator.service &&
  docker exec "$ID-agent1" grep -q -- "--coordinator https://" /etc/systemd/system/ws-agent.service &&
  docker exec "$ID-agent2" grep -q -- '--tls-ca /etc/wsload/coordinator-ca.pem' /etc/systemd/system/ws-agent.service &&
  docker exec "$ID-srv" stat -c '%U:%G %a' /etc/wsload/tls/coordinator.key | grep -qx 'root:wsload-coordinator 640'
}

# The recap shows changes on every host: the TLS settings restarted the services.
recap_all_changed() {
  local recap
  recap=$(sed -n '/^PLAY RECAP/,$p' "$1" | grep -E 'ok=[0-9]+')
  echo "$recap"
  [ "$(grep -cE 'unreachable=0 +failed=0' <<<"$recap")" = 3 ] && ! grep -qE 'changed=0 ' <<<"$recap"
}

tls_agents_registered() {
  docker exec -e WSLOAD_TOKEN="$TOKEN" "$ID-srv" ws-coordinator agents --remote https://127.0.0.1:7700 \
    --tls-ca /tmp/ca.pem >"$WORK/agents-tls.txt" 2>&1
  cat "$WORK/agents-tls.txt"
  grep -q agent1 "$WORK/agents-tls.txt" && grep -q agent2 "$WORK/agents-tls.txt"
}

tls_load_test() {
  docker exec -e WSLOAD_TOKEN="$TOKEN" "$ID-srv" timeout 120 ws-coordinator run \
    --remote https://127.0.0.1:7700 --tls-ca /tmp/ca.pem --agents 2 --target "ws://$1/ws" \
    --sessions 100 --batch-size 50 --messages-per-session 2 --quiet >"$WORK/run-tls.txt" 2>&1
  local rc=$?
  cat "$WORK/run-tls.txt"
  [ "$rc" = 0 ] && grep -q 'sessions 100 (completed 100), failed connections 0' "$WORK/run-tls.txt" \
    && grep -q 'messages sent 200, responses 200' "$WORK/run-tls.txt"
}

ansible_tls_stage() {
  local srv
  srv=$(host_ip srv)
  make_tls_files "$srv" || { fail "TLS files made with openssl"; return; }
  cat >>"$WORK/overrides.yml" <<YML
wsload_coordinator_tls: true
coordinator_tls_cert_src: "$WORK/tls/coord.pem"
coordinator_tls_key_src: "$WORK/tls/coord.key"
agent_tls_ca_src: "$WORK/tls/ca.pem"
YML
  local t0=$SECONDS
  playbook >"$WORK/run3.log" 2>&1
  check "site.yml with TLS on restarts coordinator and agents ($((SECONDS - t0)) s)" recap_all_changed "$WORK/run3.log"
  check "TLS files and flags in the units" tls_units
  docker cp "$WORK/tls/ca.pem" "$ID-srv:/tmp/ca.pem"
  check "agents registered again over TLS" retry 30 1 tls_agents_registered
  check "load test through the TLS coordinator" tls_load_test "$srv"
}
