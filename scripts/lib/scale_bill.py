#!/usr/bin/env python3
"""The table scripts/scale.sh prints: what a run held and what each session cost.

Inputs: the run's results.json, and two samples of key=value figures taken by the
script (before the run, and at the moment the most sessions were open on the
workers). Exit status 0 when every planned session was opened and held at once with
no error, 1 otherwise.
"""
import argparse
import json
import sys


def sample(path):
    with open(path) as f:
        return {k: int(v) for k, v in (kv.split("=", 1) for kv in f.read().split())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--baseline", required=True)
    ap.add_argument("--peak", required=True)
    ap.add_argument("--rate", type=int, required=True)
    ap.add_argument("--agents", type=int, required=True)
    ap.add_argument("--nginx-workers", type=int, required=True)
    a = ap.parse_args()
    r = json.load(open(a.results))
    base, peak = sample(a.baseline), sample(a.peak)
    t = r["totals"]
    series = r.get("timeseries") or []
    held = max((s["active_sessions"] for s in series), default=0)
    opening = [s["t"] for s in series if s["connections_opened"] > 0]
    span = (opening[-1] - opening[0] + 1) if opening else 0
    achieved = t["sessions_opened"] / span if span else 0.0
    errors = {k: v for k, v in sorted((t.get("errors") or {}).items()) if v}
    error_text = ", ".join(f"{k} {v}" for k, v in errors.items()) or "none"
    n = peak["open"]

    rows = [
        ("sessions planned", t["sessions_planned"]),
        ("sessions opened", t["sessions_opened"]),
        ("sessions held at once (peak)", held),
        ("sessions open on the workers at the sample", n),
        ("open rate asked (/s)", a.rate),
        ("open rate achieved (/s)", round(achieved)),
        ("failed connections", t["failed_connections"]),
        ("sessions failed", t["sessions_failed"]),
        ("sessions lost (agent lost)", t["lost_sessions"]),
        ("errors by kind", error_text),
        ("messages sent", t["messages_sent"]),
        ("responses received", t["responses_received"]),
        ("server events received", t["server_events"]),
        ("outcome", r["outcome"]["status"]),
    ]
    print(f"\n## scale bill: {t['sessions_planned']} sessions through nginx "
          f"({a.agents} agents, {a.nginx_workers} nginx workers, 12 ws-server workers, 1 redis)\n")
    print("| figure | value |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")

    def per(before, after, unit=1):
        return round((after - before) * unit / n) if n else 0

    def ratio(before, after):
        return round((after - before) / n, 2) if n else 0

    kib = 1024
    bill = [
        (f"agents RSS ({a.agents} processes)", base["agents_kb"] * kib, peak["agents_kb"] * kib),
        (f"nginx RSS (master + {a.nginx_workers} workers)", base["nginx_kb"] * kib, peak["nginx_kb"] * kib),
        ("ws-server RSS (supervisor + 12 workers)", base["server_kb"] * kib, peak["server_kb"] * kib),
        ("redis RSS", base["redis_kb"] * kib, peak["redis_kb"] * kib),
        ("kernel TCP socket buffers (sockstat mem)", base["tcp_mem_pages"] * 4096, peak["tcp_mem_pages"] * 4096),
        ("kernel slab (meminfo Slab)", base["slab_kb"] * kib, peak["slab_kb"] * kib),
    ]
    total = sum(per(b, p) for _, b, p in bill)
    print(f"\n| per-session bill at {n} open sessions | before | at the peak | bytes per session |\n|---|---|---|---|")
    for name, b, p in bill:
        print(f"| {name} | {b // kib} KiB | {p // kib} KiB | {per(b, p)} |")
    print(f"| of which TCP, socket, epoll, file, conntrack caches (slabinfo) | {base['slab_tcp_kb']} KiB "
          f"| {peak['slab_tcp_kb']} KiB | {per(base['slab_tcp_kb'], peak['slab_tcp_kb'], kib)} |")
    print(f"| redis used_memory (inside its RSS) | {base['redis_used'] // kib} KiB | {peak['redis_used'] // kib} KiB "
          f"| {per(base['redis_used'], peak['redis_used'])} |")
    print(f"| TCP sockets in use (sockstat) | {base['tcp_inuse']} | {peak['tcp_inuse']} "
          f"| {ratio(base['tcp_inuse'], peak['tcp_inuse'])} per session |")
    print(f"| conntrack entries | {base['conntrack']} | {peak['conntrack']} "
          f"| {ratio(base['conntrack'], peak['conntrack'])} per session |")
    print(f"| **total (RSS + socket buffers + slab)** | | | **{total}** |")
    print("\nKernel figures are machine-wide: other programs' sockets and caches move them too.")

    ok = (t["sessions_opened"] == t["sessions_planned"] and held == t["sessions_planned"]
          and t["sessions_failed"] == 0 and t["lost_sessions"] == 0 and not errors)
    print(f"\nresult: {'every session opened and held, no error' if ok else 'NOT every session held without error'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
