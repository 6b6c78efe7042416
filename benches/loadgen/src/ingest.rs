//! What the two sides of the ingest comparison share: the load's shape ([`Ingest`]) and the
//! line each run prints ([`Outcome`]), so `benches/compare_mqtt.py` reads Lithos reports
//! (`reports`) and MQTT publishes (`mqtt`) alike.

use std::time::{Duration, Instant};

use crate::{cpu_ms, ms_per_1000, percentile};

/// How long a consumer waits for the next reading before it gives up on the rest.
pub(crate) const CONSUMER_STALL: Duration = Duration::from_secs(10);

/// A process's read and write system calls so far (`syscr` + `syscw` in `/proc/<pid>/io`).
pub(crate) fn syscalls(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let field = |name: &str| -> Option<u64> {
        io.lines()
            .find_map(|l| l.strip_prefix(name))?
            .trim()
            .parse()
            .ok()
    };
    Some(field("syscr:")? + field("syscw:")?)
}

/// The measured phase of a run: the server's CPU time and system calls, and the clock,
/// from its start.
pub(crate) struct Measured {
    pid: Option<u32>,
    cpu: Option<f64>,
    syscalls: Option<u64>,
    start: Instant,
}

impl Measured {
    /// Starts it, and says so on stderr (a profiler attaches then: the set-up's logins
    /// would otherwise fill the profile).
    pub(crate) fn start(pid: Option<u32>) -> Measured {
        eprintln!("lithos-loadgen: measuring");
        Measured {
            pid,
            cpu: pid.and_then(cpu_ms),
            syscalls: pid.and_then(syscalls),
            start: Instant::now(),
        }
    }

    /// Ends it once the senders are done: waits for the consumer, if any (it gives what it
    /// received and when the last came), then fills in `out` and prints it.
    pub(crate) async fn end(
        self,
        mut out: Outcome,
        readings: usize,
        latencies: Vec<f64>,
        consumer: Option<tokio::task::JoinHandle<(usize, Instant)>>,
    ) {
        let mut end = Instant::now();
        if let Some(c) = consumer {
            let (got, last) = c.await.expect("consumer");
            out.consumed = Some(got);
            end = end.max(last);
        }
        out.syscalls(readings, self.syscalls, self.pid.and_then(syscalls));
        out.finish(
            readings,
            end.duration_since(self.start),
            self.cpu,
            self.pid.and_then(cpu_ms),
            latencies,
        );
        out.print();
    }
}

/// The load: devices, readings each, QoS, window, and whether one consumer takes everything.
#[derive(clap::Args, Clone)]
pub(crate) struct Ingest {
    /// Devices (things, or MQTT clients), each on its own connection.
    #[arg(long, default_value_t = 1000)]
    pub devices: usize,
    /// Readings each device sends.
    #[arg(long, default_value_t = 200)]
    pub messages: usize,
    /// QoS level of the readings: 0 (then a QoS 1 fence says the server took them all) or 1.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub qos: u8,
    /// QoS 1 readings in flight per device (sent, not yet acknowledged).
    #[arg(long, default_value_t = 8)]
    pub in_flight: usize,
    /// One consumer receives every reading live; the run ends when it has them all.
    #[arg(long)]
    pub consumer: bool,
}

/// Where a run failed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Phase {
    /// Setting up (authorizing, registering things).
    Setup,
    /// Connecting and logging in the devices.
    Connect,
    /// Setting up the consumer.
    Consumer,
    /// Sending the readings.
    Publish,
}

/// One run's figures, printed as one JSON line.
pub(crate) struct Outcome {
    server: String,
    qos: u8,
    in_flight: usize,
    consumer: bool,
    devices: usize,
    messages: usize,
    rate: f64,
    cpu_ms_per_1000: String,
    syscalls_per_reading: Option<f64>,
    rss_kib_per_device: Option<f64>,
    ack_p50_ms: Option<f64>,
    ack_p99_ms: Option<f64>,
    /// Readings the consumer received (with `--consumer`).
    pub consumed: Option<usize>,
}

fn json_number(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "null".into(), |v| format!("{v:.decimals$}"))
}

impl Outcome {
    pub(crate) fn new(server: &str, a: &Ingest) -> Outcome {
        Outcome {
            server: server.to_string(),
            qos: a.qos,
            in_flight: a.in_flight,
            consumer: a.consumer,
            devices: a.devices,
            messages: a.messages,
            rate: 0.0,
            cpu_ms_per_1000: "null".into(),
            syscalls_per_reading: None,
            rss_kib_per_device: None,
            ack_p50_ms: None,
            ack_p99_ms: None,
            consumed: None,
        }
    }

    /// The server's resident memory per connected device, from two readings (KiB).
    pub(crate) fn rss_per_device(&mut self, before: Option<u64>, after: Option<u64>) {
        if let (Some(b), Some(a)) = (before, after)
            && self.devices > 0
        {
            self.rss_kib_per_device = Some((a as f64 - b as f64) / self.devices as f64);
        }
    }

    /// The server's read and write system calls per reading, from two readings of
    /// [`syscalls`].
    fn syscalls(&mut self, readings: usize, before: Option<u64>, after: Option<u64>) {
        if let (Some(b), Some(a)) = (before, after)
            && readings > 0
        {
            self.syscalls_per_reading = Some(a.saturating_sub(b) as f64 / readings as f64);
        }
    }

    /// The run's rate, CPU per 1,000 readings and acknowledgement latency percentiles.
    pub(crate) fn finish(
        &mut self,
        readings: usize,
        took: Duration,
        cpu_before: Option<f64>,
        cpu_after: Option<f64>,
        mut latencies: Vec<f64>,
    ) {
        self.rate = readings as f64 / took.as_secs_f64().max(1e-9);
        self.cpu_ms_per_1000 = ms_per_1000(cpu_before, cpu_after, readings);
        if !latencies.is_empty() {
            latencies.sort_by(|a, b| a.total_cmp(b));
            self.ack_p50_ms = Some(percentile(&latencies, 0.5));
            self.ack_p99_ms = Some(percentile(&latencies, 0.99));
        }
    }

    fn fields(&self) -> String {
        format!(
            "\"scenario\":\"ingest\",\"server\":{:?},\"qos\":{},\"in_flight\":{},\"consumer\":{},\"devices\":{},\"messages\":{}",
            self.server, self.qos, self.in_flight, self.consumer, self.devices, self.messages
        )
    }

    /// Prints the line.
    pub(crate) fn print(&self) {
        println!(
            "{{{},\"rate\":{:.0},\"server_cpu_ms_per_1000\":{},\"server_syscalls_per_reading\":{},\"rss_kib_per_device\":{},\"ack_p50_ms\":{},\"ack_p99_ms\":{},\"consumed\":{}}}",
            self.fields(),
            self.rate,
            self.cpu_ms_per_1000,
            json_number(self.syscalls_per_reading, 2),
            json_number(self.rss_kib_per_device, 2),
            json_number(self.ack_p50_ms, 3),
            json_number(self.ack_p99_ms, 3),
            self.consumed
                .map_or_else(|| "null".into(), |c| c.to_string()),
        );
    }

    /// Prints the line of a failed run.
    pub(crate) fn fail(&self, phase: Phase, error: String) {
        println!(
            "{{{},\"error\":{:?}}}",
            self.fields(),
            format!("{phase:?}: {error}")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load() -> Ingest {
        Ingest {
            devices: 4,
            messages: 10,
            qos: 1,
            in_flight: 8,
            consumer: false,
        }
    }

    #[test]
    fn figures_come_from_the_readings() {
        let mut o = Outcome::new("x", &load());
        o.rss_per_device(Some(1000), Some(1040));
        assert_eq!(o.rss_kib_per_device, Some(10.0));
        o.finish(
            40,
            Duration::from_millis(500),
            Some(100.0),
            Some(104.0),
            (1..=100).map(f64::from).collect(),
        );
        assert_eq!(o.rate, 80.0);
        assert_eq!(o.cpu_ms_per_1000, "100.00");
        assert_eq!(o.ack_p50_ms, Some(51.0));
        assert_eq!(o.ack_p99_ms, Some(99.0));
        let mut none = Outcome::new("x", &load());
        none.rss_per_device(None, Some(1));
        none.finish(40, Duration::from_secs(1), None, Some(1.0), Vec::new());
        assert_eq!(none.rss_kib_per_device, None);
        assert_eq!(none.cpu_ms_per_1000, "null");
        assert_eq!(none.ack_p99_ms, None, "QoS 0 has no acknowledgements");
        o.syscalls(40, Some(100), Some(180));
        assert_eq!(o.syscalls_per_reading, Some(2.0));
        assert!(syscalls(std::process::id()).is_some_and(|n| n > 0));
    }
}
