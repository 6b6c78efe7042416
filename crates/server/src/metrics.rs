//! What the server counts for `/metrics`, in the Prometheus text format (through
//! `prometheus-client`). Counters on hot paths are plain atomics behind pre-made handles;
//! gauges that the server already knows (sessions, connections) are read at scrape time.

use prometheus_client::encoding::EncodeLabelSet;
/// A counter a module made with [`Metrics::counters`]: `inc()` adds one.
pub use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
/// A gauge a module made with [`Metrics::gauge`]: `set()` it.
pub use prometheus_client::metrics::gauge::Gauge;
/// A histogram a module made with [`Metrics::histogram`]: `observe()` a value.
pub use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// A stanza's kind, as a label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// The kinds counted: message, presence, iq.
const KINDS: [&str; 3] = ["message", "presence", "iq"];

fn kind_index(name: &str) -> Option<usize> {
    KINDS.iter().position(|k| *k == name)
}

/// The server's metrics.
pub struct Metrics {
    registry: std::sync::Mutex<Registry>,
    received: [Counter; 3],
    routed: [Counter; 3],
    connections: Gauge,
    unauthenticated: Gauge,
    sessions: Gauge,
    /// Stanzas answered with an error by the router or a module's `bounce`, by condition.
    refused: Family<Vec<(&'static str, &'static str)>, Counter>,
    /// Sessions by listener and format, in [`crate::session::Sessions::tally`]'s order.
    sessions_by: [Gauge; 4],
    uptime: Gauge,
    started: std::time::Instant,
}

/// Buckets, in seconds, for latencies from 100 µs to 10 s.
pub fn latency_buckets() -> impl Iterator<Item = f64> {
    [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        5.0, 10.0,
    ]
    .into_iter()
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("lithos");
        let received_family = Family::<KindLabel, Counter>::default();
        let routed_family = Family::<KindLabel, Counter>::default();
        let received = KINDS.map(|kind| received_family.get_or_create(&KindLabel { kind }).clone());
        let routed = KINDS.map(|kind| routed_family.get_or_create(&KindLabel { kind }).clone());
        registry.register(
            "stanzas_received",
            "Stanzas received from bound clients and things",
            received_family,
        );
        registry.register(
            "stanzas_routed",
            "Stanzas the router handled (from clients, modules and components)",
            routed_family,
        );
        let refused = Family::<Vec<(&'static str, &'static str)>, Counter>::default();
        registry.register(
            "stanzas_refused",
            "Stanzas answered with a stanza error instead of being delivered, by condition",
            refused.clone(),
        );
        let connections = Gauge::default();
        registry.register(
            "connections",
            "Open client and thing connections",
            connections.clone(),
        );
        let unauthenticated = Gauge::default();
        registry.register(
            "connections_unauthenticated",
            "Open connections that have not authenticated yet",
            unauthenticated.clone(),
        );
        let sessions = Gauge::default();
        registry.register("sessions", "Bound sessions", sessions.clone());
        let by = Family::<Vec<(&'static str, &'static str)>, Gauge>::default();
        let sessions_by = [
            ("client", "xml"),
            ("client", "bxmpp"),
            ("thing", "xml"),
            ("thing", "bxmpp"),
        ]
        .map(|(l, f)| {
            by.get_or_create(&vec![("listener", l), ("format", f)])
                .clone()
        });
        registry.register(
            "sessions_by_listener",
            "Bound sessions by listener (client: [c2s] and WebSocket; thing: [things]) and wire format",
            by,
        );
        let uptime = Gauge::default();
        registry.register(
            "uptime_seconds",
            "Seconds since the server started",
            uptime.clone(),
        );
        let build = Family::<Vec<(&'static str, &'static str)>, Gauge>::default();
        build
            .get_or_create(&vec![("version", env!("CARGO_PKG_VERSION"))])
            .set(1);
        registry.register("build_info", "The server's version", build);
        Metrics {
            registry: std::sync::Mutex::new(registry),
            received,
            routed,
            connections,
            unauthenticated,
            sessions,
            refused,
            sessions_by,
            uptime,
            started: std::time::Instant::now(),
        }
    }
}

impl Metrics {
    /// A stanza named `name` was received from a bound session.
    pub fn received(&self, name: &str) {
        if let Some(i) = kind_index(name) {
            self.received[i].inc();
        }
    }

    /// A stanza was refused with the stanza error `condition` (rare: the family's lock is
    /// taken).
    pub fn refused(&self, condition: &'static str) {
        self.refused
            .get_or_create(&vec![("condition", condition)])
            .inc();
    }

    /// The router handled a stanza named `name`.
    pub fn routed(&self, name: &str) {
        if let Some(i) = kind_index(name) {
            self.routed[i].inc();
        }
    }

    /// Registers a counter family `lithos_<name>_total` labelled `label`, with one counter
    /// for each of `values`, made now so that counting costs one atomic add: for modules,
    /// at `started`. A second registration of a name is refused by the exposition format,
    /// so each module registers its own names once.
    pub fn counters(
        &self,
        name: &str,
        help: &str,
        label: &'static str,
        values: &[&'static str],
    ) -> Vec<Counter> {
        let family = Family::<Vec<(&'static str, &'static str)>, Counter>::default();
        let made = values
            .iter()
            .map(|v| family.get_or_create(&vec![(label, *v)]).clone())
            .collect();
        self.registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .register(name, help, family);
        made
    }

    /// Registers a gauge `lithos_<name>` for a module to set (a queue's size, read by a
    /// periodic task), once per name.
    pub fn gauge(&self, name: &str, help: &str) -> Gauge {
        let g = Gauge::default();
        self.registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .register(name, help, g.clone());
        g
    }

    /// Registers a histogram `lithos_<name>` with these bucket bounds ([`latency_buckets`]
    /// for latencies in seconds), once per name.
    pub fn histogram(
        &self,
        name: &str,
        help: &str,
        buckets: impl Iterator<Item = f64>,
    ) -> Histogram {
        let h = Histogram::new(buckets);
        self.register_histogram(name, help, h.clone());
        h
    }

    /// Registers an existing histogram (the storage's own) as `lithos_<name>`.
    pub fn register_histogram(&self, name: &str, help: &str, h: Histogram) {
        self.registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .register(name, help, h);
    }

    /// The text exposition, with the gauges read now.
    pub fn encode(&self, server: &crate::ServerHandle) -> String {
        let counts = server.connection_counts();
        self.connections.set(counts.open as i64);
        self.unauthenticated.set(counts.unauthenticated as i64);
        self.sessions.set(server.sessions().count() as i64);
        for (g, n) in self.sessions_by.iter().zip(server.sessions().tally()) {
            g.set(n as i64);
        }
        self.uptime.set(self.started.elapsed().as_secs() as i64);
        let mut out = String::new();
        // Writing to a String does not fail.
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_move_by_kind() {
        let m = Metrics::default();
        m.received("message");
        m.received("message");
        m.routed("iq");
        m.received("open"); // not a stanza kind: not counted
        assert_eq!(m.received[0].get(), 2);
        assert_eq!(m.routed[2].get(), 1);
        let made = m.counters(
            "things_test",
            "A module's counters",
            "outcome",
            &["ok", "no"],
        );
        made[1].inc();
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &m.registry.lock().unwrap()).unwrap();
        assert!(
            out.contains("lithos_things_test_total{outcome=\"no\"} 1"),
            "{out}"
        );
        assert!(
            out.contains("lithos_stanzas_received_total{kind=\"message\"} 2"),
            "{out}"
        );
        assert!(out.contains("lithos_build_info{version=\""), "{out}");
        assert!(out.ends_with("# EOF\n"), "{out}");
    }
}
