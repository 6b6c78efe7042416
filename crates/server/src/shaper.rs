//! Traffic shaping: a token bucket on what a connection may send the server.
//!
//! A client that sends faster than its rate is not disconnected: the server reads it more
//! slowly, TCP's flow control pushes back on the sender, and the stanzas it sent are handled
//! in their turn (ejabberd's `shaper` and Prosody's `mod_limits` do the same). The bucket
//! holds up to `burst` bytes and refills at `rate` bytes per second; each read takes at most
//! what the bucket holds. It wraps the TCP socket, under TLS, so it counts the bytes on the
//! wire.
//!
//! Connections from trusted networks, or with a rate of 0, get no bucket: the wrapper then
//! passes reads straight through.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The smallest read worth waking up for (unless the burst is smaller).
const MIN_READ: u64 = 4096;

/// A rate and a burst, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Bytes per second.
    pub bytes_per_sec: u64,
    /// Bytes that may come at once above the rate.
    pub burst: u64,
}

#[derive(Debug)]
struct Bucket {
    rate: Rate,
    tokens: u64,
    last: Instant,
    /// The wake-up while the bucket refills.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last);
        let add = (elapsed.as_nanos() * u128::from(self.rate.bytes_per_sec) / 1_000_000_000) as u64;
        if add > 0 {
            self.tokens = (self.tokens.saturating_add(add)).min(self.rate.burst);
            // Advance by the time the tokens added are worth, so fractions are not lost.
            self.last += Duration::from_nanos(
                (u128::from(add) * 1_000_000_000 / u128::from(self.rate.bytes_per_sec)) as u64,
            );
            if self.tokens == self.rate.burst {
                self.last = now;
            }
        }
    }
}

/// An I/O object whose reads are shaped. Writes pass through.
#[derive(Debug)]
pub struct Shaped<T> {
    inner: T,
    bucket: Option<Box<Bucket>>,
}

impl<T> Shaped<T> {
    /// Wraps `inner`; `None` (or a rate of 0) reads without limit.
    pub fn new(inner: T, rate: Option<Rate>) -> Shaped<T> {
        let bucket = rate.filter(|r| r.bytes_per_sec > 0).map(|mut rate| {
            // A bucket that holds nothing would never let a byte through.
            rate.burst = rate.burst.max(1);
            Box::new(Bucket {
                rate,
                tokens: rate.burst,
                last: Instant::now(),
                sleep: None,
            })
        });
        Shaped { inner, bucket }
    }

    /// The wrapped object.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// Whether reads are shaped.
    pub fn is_shaped(&self) -> bool {
        self.bucket.is_some()
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Shaped<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(bucket) = this.bucket.as_mut() else {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        };
        loop {
            if let Some(sleep) = bucket.sleep.as_mut() {
                ready!(sleep.as_mut().poll(cx));
                bucket.sleep = None;
            }
            let now = Instant::now();
            bucket.refill(now);
            let want = MIN_READ.min(bucket.rate.burst).min(buf.remaining() as u64);
            if bucket.tokens >= want.max(1) {
                break;
            }
            // Sleep until the bucket holds a read's worth.
            let missing = want - bucket.tokens;
            let wait = Duration::from_nanos(
                (u128::from(missing) * 1_000_000_000 / u128::from(bucket.rate.bytes_per_sec))
                    as u64,
            )
            .max(Duration::from_millis(1));
            bucket.sleep = Some(Box::pin(tokio::time::sleep_until(now + wait)));
        }
        let allowed = usize::try_from(bucket.tokens).unwrap_or(usize::MAX);
        let n = if allowed >= buf.remaining() {
            // The common case: the bucket covers the whole buffer.
            let before = buf.filled().len();
            ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
            buf.filled().len() - before
        } else {
            // Read into the first `allowed` bytes of the free space only.
            let room = buf.initialize_unfilled_to(allowed);
            let mut limited = ReadBuf::new(room);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut limited))?;
            let n = limited.filled().len();
            buf.advance(n);
            n
        };
        bucket.tokens -= n as u64;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Shaped<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn read_all(rate: Option<Rate>, total: usize) -> Duration {
        let (mut a, b) = tokio::io::duplex(64 * 1024);
        let writer = tokio::spawn(async move {
            a.write_all(&vec![7u8; total]).await.unwrap();
            a.shutdown().await.unwrap();
        });
        let mut shaped = Shaped::new(b, rate);
        let start = Instant::now();
        let mut got = Vec::new();
        shaped.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        assert_eq!(got.len(), total);
        start.elapsed()
    }

    #[tokio::test]
    async fn reads_follow_the_rate_after_the_burst() {
        let rate = Rate {
            bytes_per_sec: 100_000,
            burst: 10_000,
        };
        // 10,000 at once, then 50,000 at 100,000 a second: 0.5 s at least. (An upper bound
        // only catches a shaper that waits far too long: the machine may be busy.)
        let took = read_all(Some(rate), 60_000).await;
        assert!(
            took >= Duration::from_millis(480) && took <= Duration::from_secs(3),
            "{took:?}"
        );
    }

    #[tokio::test]
    async fn no_bucket_no_waiting() {
        assert!(read_all(None, 2_000_000).await < Duration::from_millis(400));
        let zero = Rate {
            bytes_per_sec: 0,
            burst: 0,
        };
        assert!(read_all(Some(zero), 2_000_000).await < Duration::from_millis(400));
    }
}
