//! A real LoRa module on a serial line: an AS32-TTL-100 (or a module like it) in fixed
//! transmission mode, as Lithosphere's gateways drive one. To send, the gateway writes the
//! destination's address and channel (three bytes) then the frame; the module puts the frame
//! on the air. What the module hears comes out as bare bytes, frame after frame with nothing
//! between: [`Frames`] cuts them back into LAN frames (`FF … FF`, `FD` escaping the byte
//! after it, as mud reassembles them), dropping noise before a frame and frames past the
//! radio's 64 bytes.
//!
//! [`As32`] and [`Frames`] work over any byte stream (tests use an in-memory pipe);
//! `open`, with the `serial` feature, opens a serial port with `tokio-serial`. A module
//! hears one address and channel: a gateway has one per address it listens on (its uplink,
//! its DAC service), as Lithosphere's multichannel communicator does.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Buf, Bytes, BytesMut};
use lithos_core::binary::lan::LoraAddress;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::Mutex;

use crate::router::Link;

/// A LAN frame's first and last byte.
const DOC: u8 = 0xFF;
/// Escapes the byte after it.
const ESCAPE: u8 = 0xFD;

/// The sending side of a module: a [`Link`].
pub struct As32<S> {
    port: Mutex<WriteHalf<S>>,
}

impl<S> std::fmt::Debug for As32<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("As32").finish_non_exhaustive()
    }
}

#[async_trait]
impl<S: AsyncRead + AsyncWrite + Send + 'static> Link for As32<S> {
    async fn send(&self, to: LoraAddress, frame: &[u8]) -> Result<(), String> {
        if frame.is_empty() || frame.len() > lithos_lora_sim::MAX_FRAME {
            return Err(format!(
                "a frame of {} bytes (the radio carries 1 to {})",
                frame.len(),
                lithos_lora_sim::MAX_FRAME
            ));
        }
        let mut out = Vec::with_capacity(3 + frame.len());
        out.extend_from_slice(&to.to_bytes());
        out.extend_from_slice(frame);
        let mut port = self.port.lock().await;
        port.write_all(&out).await.map_err(|e| e.to_string())?;
        port.flush().await.map_err(|e| e.to_string())
    }
}

/// The receiving side of a module: the frames it heard.
pub struct Frames<S> {
    port: ReadHalf<S>,
    buf: BytesMut,
}

impl<S> std::fmt::Debug for Frames<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frames")
            .field("buffered", &self.buf.len())
            .finish()
    }
}

/// The module on `stream`: its sending and receiving sides.
pub fn split<S: AsyncRead + AsyncWrite + Send + 'static>(stream: S) -> (Arc<As32<S>>, Frames<S>) {
    let (r, w) = tokio::io::split(stream);
    (
        Arc::new(As32 {
            port: Mutex::new(w),
        }),
        Frames {
            port: r,
            buf: BytesMut::with_capacity(256),
        },
    )
}

impl<S: AsyncRead + Send> Frames<S> {
    /// The next frame heard; `None` once the port is closed.
    pub async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(frame) = cut(&mut self.buf) {
                return Some(frame);
            }
            let mut chunk = [0u8; 128];
            let n = self.port.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// A whole frame from the front of `buf`, if one is there; noise before a frame, and a frame
/// longer than the radio carries, are dropped.
fn cut(buf: &mut BytesMut) -> Option<Bytes> {
    loop {
        let start = buf.iter().position(|b| *b == DOC);
        let Some(start) = start else {
            buf.clear();
            return None;
        };
        buf.advance(start);
        let mut i = 1;
        let end = loop {
            match buf.get(i) {
                None => break None,
                Some(&ESCAPE) => i += 2,
                Some(&DOC) => break Some(i),
                Some(_) => i += 1,
            }
        };
        match end {
            // `FF FF`: an empty frame is no frame; the second may open the next.
            Some(1) => buf.advance(1),
            Some(end) if end < lithos_lora_sim::MAX_FRAME => {
                return Some(buf.split_to(end + 1).freeze());
            }
            // Too long for the radio: a frame lost in noise; look for the next.
            Some(end) => buf.advance(end),
            None if buf.len() > lithos_lora_sim::MAX_FRAME => buf.advance(1),
            None => return None,
        }
    }
}

/// Opens the module on the serial port `path` at `baud` bits/s (AS32 modules: 9,600 by
/// default).
#[cfg(feature = "serial")]
pub fn open(
    path: &str,
    baud: u32,
) -> Result<
    (
        Arc<As32<tokio_serial::SerialStream>>,
        Frames<tokio_serial::SerialStream>,
    ),
    tokio_serial::Error,
> {
    use tokio_serial::SerialPortBuilderExt;
    let port = tokio_serial::new(path, baud).open_native_async()?;
    Ok(split(port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_go_out_with_the_address_and_come_back_cut() {
        let (ours, mut module) = tokio::io::duplex(1024);
        let (link, mut frames) = split(ours);
        // Out: the destination's three bytes, then the frame.
        let frame = [0xFF, 0xF8, 0x03, 0x09, 0xFF];
        link.send(LoraAddress::new(0x00, 0x05, 0x17), &frame)
            .await
            .unwrap();
        let mut got = [0u8; 8];
        module.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [0x00, 0x05, 0x17, 0xFF, 0xF8, 0x03, 0x09, 0xFF]);
        assert!(
            link.send(LoraAddress::new(0, 5, 0x17), &[0u8; 65])
                .await
                .is_err()
        );

        // In: noise, a frame split over two writes with an escaped FF inside, a frame too
        // long for the radio, then a good one.
        module
            .write_all(&[0x00, 0x13, 0xFF, 0xF8, 0xFD])
            .await
            .unwrap();
        module.write_all(&[0xFF, 0x01, 0xFF]).await.unwrap();
        assert_eq!(
            frames.next().await.unwrap().as_ref(),
            &[0xFF, 0xF8, 0xFD, 0xFF, 0x01, 0xFF]
        );
        let mut long = vec![0xFF];
        long.extend(std::iter::repeat_n(0x41, 70));
        long.push(0xFF);
        module.write_all(&long).await.unwrap();
        module.write_all(&frame).await.unwrap();
        assert_eq!(frames.next().await.unwrap().as_ref(), &frame);
        drop(module);
        assert_eq!(frames.next().await, None);
    }

    /// Through a real pseudo-terminal: `open` on one end's path, a "module" on the other.
    #[cfg(feature = "serial")]
    #[tokio::test]
    async fn a_serial_port_carries_frames_both_ways() {
        use tokio_serial::SerialPort;
        let (mut module, other) = tokio_serial::SerialStream::pair().unwrap();
        let path = other.name().expect("a pseudo-terminal has a path");
        let (link, mut frames) = open(&path, 9_600).unwrap();
        let frame = [0xFF, 0xF8, 0x03, 0x09, 0xFF];
        link.send(LoraAddress::new(0xEF, 0xEE, 0x1F), &frame)
            .await
            .unwrap();
        let mut got = [0u8; 8];
        module.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [0xEF, 0xEE, 0x1F, 0xFF, 0xF8, 0x03, 0x09, 0xFF]);
        module.write_all(&frame).await.unwrap();
        assert_eq!(frames.next().await.unwrap().as_ref(), &frame);
        drop(other);
    }

    #[test]
    fn empty_frames_and_tails_wait() {
        let mut b = BytesMut::from(&[0xFF, 0xFF, 0xF8, 0x03, 0x09][..]);
        assert_eq!(cut(&mut b), None, "a frame not yet ended");
        b.extend_from_slice(&[0xFF]);
        assert_eq!(
            cut(&mut b).unwrap().as_ref(),
            &[0xFF, 0xF8, 0x03, 0x09, 0xFF]
        );
        assert!(b.is_empty());
    }
}
