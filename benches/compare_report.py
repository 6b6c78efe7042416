#!/usr/bin/env python3
"""Reads compare.sh's JSON lines; prints medians per server and Lithos's ratios."""
import json
import statistics
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]


def med(server, tag, key):
    vals = [r[key] for r in rows if r["server"] == server and r["tag"] == tag and r.get(key) is not None]
    return statistics.median(vals) if vals else None


# (row label, run tag, JSON key, which way is better; None: context, printed without ratios)
metrics = [
    ("1:1 messages/s", "throughput", "msgs_per_s", "higher"),
    ("server CPU-ms per 1,000 messages", "throughput", "server_cpu_ms_per_1000", "lower"),
    ("1:1 messages/s, stream management on", "throughput-sm", "msgs_per_s", "higher"),
    ("server CPU-ms per 1,000 messages, stream management on", "throughput-sm", "server_cpu_ms_per_1000", "lower"),
    ("1:1 messages/s over WebSocket (RFC 7395)", "throughput-ws", "msgs_per_s", "higher"),
    ("server CPU-ms per 1,000 messages over WebSocket", "throughput-ws", "server_cpu_ms_per_1000", "lower"),
    ("message latency p99 over WebSocket (ms)", "throughput-ws", "latency_p99_ms", "lower"),
    ("message latency p50 unloaded (ms)", "unloaded", "latency_p50_ms", "lower"),
    ("message latency p99 unloaded (ms)", "unloaded", "latency_p99_ms", "lower"),
    ("latency p99 at half the max rate (ms)", "half-rate", "latency_p99_ms", "lower"),
    # Context, not a contest: how full the machine was while that latency was measured
    # (the generator shares it), and what the generator itself spent.
    ("machine CPU busy during the half-rate run (%)", "half-rate", "machine_busy_pct", None),
    ("generator CPU-ms per 1,000 messages, half rate", "half-rate", "loadgen_cpu_ms_per_1000", None),
    ("logins/s, PLAIN", "idle-plain", "logins_per_s", "higher"),
    ("logins/s, SCRAM-SHA-1", "scram-sha1", "logins_per_s", "higher"),
    ("server CPU-ms per 1,000 logins, PLAIN", "idle-plain", "server_cpu_ms_per_1000_logins", "lower"),
    ("server CPU-ms per 1,000 logins, SCRAM-SHA-1", "scram-sha1", "server_cpu_ms_per_1000_logins", "lower"),
    ("RSS per idle logged-in connection (KiB)", "idle-plain", "rss_per_connection_kib", "lower"),
    ("MUC fan-out: delivered stanzas/s (one room, 100 occupants, 10 senders)", "muc-fanout", "delivered_per_s", "higher"),
    ("MUC fan-out: server CPU-ms per 1,000 delivered stanzas", "muc-fanout", "server_cpu_ms_per_1000", "lower"),
    ("MUC fan-out: delivery latency p99 (ms)", "muc-fanout", "latency_p99_ms", "lower"),
    ("PubSub fan-out: delivered notifications/s (one node, 1,000 subscribers)", "pubsub-fanout", "delivered_per_s", "higher"),
    ("PubSub fan-out: server CPU-ms per 1,000 delivered notifications", "pubsub-fanout", "server_cpu_ms_per_1000", "lower"),
    ("PubSub fan-out: publish-to-notification latency p50 (ms)", "pubsub-fanout", "latency_p50_ms", "lower"),
    ("PubSub fan-out: publish-to-notification latency p99 (ms)", "pubsub-fanout", "latency_p99_ms", "lower"),
]
servers = ["lithos", "prosody", "ejabberd"]
reps = max((r["rep"] for r in rows), default=0)
print(f"Medians of {reps} interleaved repetition(s); ratios are Lithos / peer.\n")
print("| | Lithos | Prosody | ejabberd | Lithos / Prosody | Lithos / ejabberd |")
print("|---|---:|---:|---:|---:|---:|")
for name, tag, key, better in metrics:
    v = {s: med(s, tag, key) for s in servers}

    def fmt(x):
        if x is None:
            return "–"
        return f"{x:,.0f}" if x >= 100 or (x >= 10 and x == int(x)) else f"{x:.2f}"

    def ratio(a, b):
        return f"{a / b:.2f}×" if a is not None and b else "–"

    rp, re = (ratio(v["lithos"], v["prosody"]), ratio(v["lithos"], v["ejabberd"])) if better else ("", "")
    print(f"| {name} | {fmt(v['lithos'])} | {fmt(v['prosody'])} | {fmt(v['ejabberd'])} | {rp} | {re} |")
# The A/B, when compare.sh ran the variants: this build against another one, and with
# every connection shaped.
ab = [s for s in ("lithos-base", "lithos-shaped", "lithos-mam") if any(r["server"] == s for r in rows)]
if ab:
    print()
    print("A/B, same run: `lithos` is this build with its defaults; " + ", ".join(
        {"lithos-base": "`lithos-base` the build given as LITHOS_BASE",
         "lithos-shaped": "`lithos-shaped` this build with every connection shaped",
         "lithos-mam": "`lithos-mam` this build with the message archive on"}[s] for s in ab) + ".\n")
    cols = ["lithos-base"] * ("lithos-base" in ab) + ["lithos"] + [s for s in ("lithos-shaped", "lithos-mam") if s in ab]
    head = " | ".join(cols)
    ratios = (["lithos / lithos-base"] if "lithos-base" in ab else []) + [f"{s} / lithos" for s in ("lithos-shaped", "lithos-mam") if s in ab]
    print(f"| | {head} | " + " | ".join(ratios) + " |")
    print("|---|" + "---:|" * (len(cols) + len(ratios)))
    for name, tag, key, better in metrics:
        if better is None:
            continue
        v = {s: med(s, tag, key) for s in cols}

        def f(x):
            return "–" if x is None else (f"{x:,.0f}" if x >= 100 else f"{x:.2f}")

        def r(a, b):
            return f"{a / b:.3f}×" if a is not None and b else "–"

        rs = ([r(v["lithos"], v["lithos-base"])] if "lithos-base" in ab else []) + [
            r(v[s], v["lithos"]) for s in ("lithos-shaped", "lithos-mam") if s in ab]
        print(f"| {name} | " + " | ".join(f(v[c]) for c in cols) + " | " + " | ".join(rs) + " |")
bad = [r for r in rows if r.get("lost") or r.get("duplicates") or r.get("out_of_order") or r.get("errors")]
print()
print("loss, duplicates, reordering, login errors: " + ("none" if not bad else json.dumps(bad)))
