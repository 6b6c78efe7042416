//! What the fan-out scenarios (`muc`, `pubsub`) share: readers that count what each
//! connection receives and the delivery latency from a timestamp the sender wrote, and the
//! summary of them all.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::SplitStream;
use lithos_core::{Element, StreamEvent};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::Conn;

/// How long a reader waits for the next stanza before giving up on the rest.
pub(crate) const STALL: Duration = Duration::from_secs(10);

/// What a reader makes of a stanza.
pub(crate) struct Seen {
    /// A delivery, with the sender's timestamp (microseconds since the run's base).
    pub(crate) sent_us: Option<u64>,
    /// Frees one place in this connection's own sending window.
    pub(crate) release: bool,
}

/// A reader's count, latencies (µs) and when it received its last delivery.
pub(crate) type Counted = (usize, Vec<u32>, Instant);

/// Reads `stream` until `expected` deliveries arrived (or nothing came for [`STALL`]),
/// counting them into `delivered` and releasing `window` as `classify` says.
pub(crate) fn reader(
    mut stream: SplitStream<Conn>,
    expected: usize,
    base: Instant,
    delivered: Arc<AtomicUsize>,
    window: Option<Arc<Semaphore>>,
    classify: impl Fn(&Element) -> Seen + Send + 'static,
) -> JoinHandle<Counted> {
    tokio::spawn(async move {
        let mut got = 0usize;
        let mut latencies: Vec<u32> = Vec::with_capacity(expected);
        let mut last = Instant::now();
        while got < expected {
            let el = match tokio::time::timeout(STALL, stream.next()).await {
                Ok(Some(Ok(StreamEvent::Element(e)))) => e,
                Ok(Some(Ok(_))) => continue,
                _ => break,
            };
            let seen = classify(&el);
            if seen.release
                && let Some(w) = &window
            {
                w.add_permits(1);
            }
            if let Some(ts) = seen.sent_us {
                got += 1;
                delivered.fetch_add(1, Ordering::Relaxed);
                last = Instant::now();
                latencies.push((base.elapsed().as_micros() as u64).saturating_sub(ts) as u32);
            }
        }
        (got, latencies, last)
    })
}

/// Deliveries in all, latencies in milliseconds (sorted), and when the last one arrived.
pub(crate) async fn collect(
    readers: Vec<JoinHandle<Counted>>,
    start: Instant,
) -> (usize, Vec<f64>, Instant) {
    let mut latencies = Vec::new();
    let mut last = start;
    let mut total = 0;
    for r in readers {
        let (got, l, at) = r.await.expect("reader");
        total += got;
        latencies.extend(l.into_iter().map(|u| f64::from(u) / 1000.0));
        if got > 0 {
            last = last.max(at);
        }
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    (total, latencies, last)
}

/// The timestamp at the end of a text (`"<anything> <µs>"`).
pub(crate) fn stamp(text: &str) -> Option<u64> {
    text.rsplit(' ').next().and_then(|t| t.parse().ok())
}
