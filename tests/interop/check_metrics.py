#!/usr/bin/env python3
"""Reads a running lithosd's /health and /metrics after the interop run and checks /metrics
with the Prometheus project's own OpenMetrics parser (the `prometheus_client` package): it
parses, and the stanza counters moved with the traffic the run sent.

    check_metrics.py http://127.0.0.1:PORT
"""
import sys
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families

base = sys.argv[1]
with urllib.request.urlopen(base + "/health", timeout=10) as r:
    assert r.status == 200, r.status
    assert b'"status":"ok"' in r.read()
with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
    assert r.headers["Content-Type"].startswith("application/openmetrics-text"), r.headers
    text = r.read().decode()
families = {f.name: f for f in text_string_to_metric_families(text)}
for name, kind in [
    ("lithos_stanzas_received", "counter"),
    ("lithos_stanzas_routed", "counter"),
    ("lithos_sessions", "gauge"),
    ("lithos_connections", "gauge"),
    ("lithos_build_info", "gauge"),
    ("lithos_stanzas_refused", "counter"),
    ("lithos_storage_operation_seconds", "histogram"),
    ("lithos_sessions_by_listener", "gauge"),
    ("lithos_offline_messages", "gauge"),
]:
    assert name in families, f"{name} missing: {sorted(families)}"
    assert families[name].type == kind, (name, families[name].type)


def total(family, kind):
    return sum(s.value for s in families[family].samples
               if s.name.endswith("_total") and s.labels.get("kind") == kind)


for kind in ("message", "presence", "iq"):
    assert total("lithos_stanzas_received", kind) > 0, (kind, text)
    assert total("lithos_stanzas_routed", kind) > 0, (kind, text)
# The run bounced messages (to a blocked contact, among others), and read the database.
refused = sum(s.value for s in families["lithos_stanzas_refused"].samples if s.name.endswith("_total"))
assert refused > 0, text
stored = [s.value for s in families["lithos_storage_operation_seconds"].samples if s.name.endswith("_count")]
assert stored and stored[0] > 0, text
print(f"/metrics parses as OpenMetrics ({len(families)} families); "
      f"{int(total('lithos_stanzas_received', 'message'))} messages received, "
      f"{int(total('lithos_stanzas_routed', 'message'))} routed, {int(refused)} refused, "
      f"{int(stored[0])} storage operations")
