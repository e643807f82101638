# Free loopback ports for the scripts (sourced, not run).
# free_ports N: prints the first of N consecutive free ports, taken outside the
# kernel's ephemeral range (where every outgoing connection takes its local port).
free_ports() { # N: the first of N consecutive free ports
  python3 - "$1" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
lo, hi = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
spans = [(10000, lo - 1)] if lo > 10000 + n else []
spans += [(hi + 1, 65535)] if hi + n < 65535 else []
for _ in range(200):
    a, b = random.choice(spans)
    base = random.randint(a, b - n + 1)
    socks = []
    try:
        for p in range(base, base + n):
            s = socket.socket(); s.bind(("127.0.0.1", p)); socks.append(s)
    except OSError:
        continue
    finally:
        for s in socks: s.close()
    print(base); sys.exit(0)
sys.exit("no free port block")
PY
}
