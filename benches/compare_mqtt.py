#!/usr/bin/env python3
"""Table of `benches/compare-mqtt.sh`'s results: medians per configuration and server, and
Lithos's ratios to Mosquitto's (CPU per reading, and rate).

    python3 benches/compare_mqtt.py target/compare-mqtt/results.jsonl
"""

import json
import statistics
import sys
from collections import defaultdict


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=2):
    if v is None:
        return "-"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def main(path):
    runs = defaultdict(list)
    errors = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            if r.get("scenario") != "ingest":
                continue
            if "error" in r:
                errors.append(r)
                continue
            key = (r["qos"], r["in_flight"], r["consumer"])
            runs[key, r["server"]].append(r)
    configs = sorted({k for k, _ in runs}, key=lambda k: (k[2], -k[0], -k[1]))
    servers = sorted({s for _, s in runs}, key=lambda s: (s == "mosquitto", s))
    print(
        "| QoS | in flight | consumer | server | runs | readings/s | server CPU-ms / 1,000"
        " | syscalls / reading | RSS KiB / device | ack p99 ms | consumed | CPU vs Mosquitto"
        " | rate vs Mosquitto |"
    )
    print("|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key in configs:
        qos, win, cons = key
        base = runs.get((key, "mosquitto"), [])
        base_cpu = median([r["server_cpu_ms_per_1000"] for r in base])
        base_rate = median([r["rate"] for r in base])
        for s in servers:
            rs = runs.get((key, s))
            if not rs:
                continue
            cpu = median([r["server_cpu_ms_per_1000"] for r in rs])
            rate = median([r["rate"] for r in rs])
            total = rs[0]["devices"] * rs[0]["messages"]
            consumed = median([r["consumed"] for r in rs])
            cpu_ratio = f"{cpu / base_cpu:.2f}×" if cpu and base_cpu and s != "mosquitto" else ""
            rate_ratio = f"{rate / base_rate:.2f}×" if rate and base_rate and s != "mosquitto" else ""
            print(
                f"| {qos} | {win if qos else '-'} | {'one' if cons else 'none'} | {s} | {len(rs)}"
                f" | {fmt(rate, 0)} | {fmt(cpu)}"
                f" | {fmt(median([r.get('server_syscalls_per_reading') for r in rs]))}"
                f" | {fmt(median([r['rss_kib_per_device'] for r in rs]))}"
                f" | {fmt(median([r['ack_p99_ms'] for r in rs]), 3)}"
                f" | {'-' if consumed is None else f'{consumed:,.0f} of {total:,}'}"
                f" | {cpu_ratio} | {rate_ratio} |"
            )
    for e in errors:
        print(f"\nFAILED: {e['server']} QoS {e['qos']} W={e['in_flight']} consumer={e['consumer']}: {e['error']}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "target/compare-mqtt/results.jsonl"))
