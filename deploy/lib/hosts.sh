# Test hosts: containers on a private Docker network with systemd as PID 1 and
# sshd, reached by Ansible over SSH with a key made for this run (sourced).

# The kernel settings of group_vars, read from the example inventory so the
# containers' network namespaces are created with exactly the values the role
# writes (/proc/sys is read-only inside a container; see role wsload_tuning).
host_sysctl_args() {
  python3 - "$REPO/ansible/inventory/example/group_vars/all.yml" <<'PY'
import sys, yaml
for k, v in yaml.safe_load(open(sys.argv[1]))["wsload_tuning_sysctls"].items():
    print(f"--sysctl={k}={v}")
PY
}

# start_host NAME [docker run args...]: starts $ID-NAME, prints nothing.
start_host() {
  local name=$1; shift
  local sysctls
  mapfile -t sysctls < <(host_sysctl_args)
  docker run -d --name "$ID-$name" --hostname "$name" --network "$NET" \
    --label "org.wsload.test=$ID" \
    --tmpfs /run --tmpfs /run/lock -v /sys/fs/cgroup:/sys/fs/cgroup:ro \
    "${sysctls[@]}" "$@" "$HOST_IMAGE" >/dev/null
  docker exec -i "$ID-$name" sh -c 'cat > /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys' <"$KEY.pub"
}

host_ip() { docker inspect -f "{{(index .NetworkSettings.Networks \"$NET\").IPAddress}}" "$ID-$1"; }

ssh_ok() {
  ssh -i "$KEY" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o ConnectTimeout=3 -o LogLevel=ERROR "root@$1" true
}

# Waits (bounded) until systemd has finished booting the host and sshd answers.
wait_host() {
  local name=$1 ip
  ip=$(host_ip "$name")
  retry 60 0.5 sh -c "docker exec $ID-$name systemctl is-system-running 2>/dev/null | grep -qE 'running|degraded'" \
    && retry 20 0.5 ssh_ok "$ip"
}
