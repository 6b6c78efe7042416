//! The simulated air between processes: a gateway program serves its [`RadioNetwork`] on a
//! loopback TCP port ([`serve`]); node programs join it with [`RemoteRadio::connect`] and
//! get a radio on that network, with its conditions (delay, loss, duty cycle...) applied
//! as for one in the same process. Only for simulations: no authentication, loopback only.
//!
//! The wire: the radio sends `00 <address 3>` first, then `01 <to 3> <length> <frame>` to
//! send and `02 <address 3>` to tune; the network sends `<length> <frame>` for each frame
//! the radio receives, and `00` (an empty frame, which the air never carries) once a tune
//! has taken effect.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::{Address, MAX_FRAME, RadioError, RadioNetwork};

const HELLO: u8 = 0;
const SEND: u8 = 1;
const TUNE: u8 = 2;

async fn read_address<R: AsyncReadExt + Unpin>(r: &mut R) -> std::io::Result<Address> {
    let mut a = [0u8; 3];
    r.read_exact(&mut a).await?;
    Address::from_bytes(a).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.0))
}

/// Serves `net` to radios in other processes, until the listener fails.
pub async fn serve(net: RadioNetwork, listener: TcpListener) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let net = net.clone();
        tokio::spawn(async move {
            if let Err(e) = bridge(net, stream).await {
                tracing::debug!(error = %e, "a remote radio left");
            }
        });
    }
}

/// One remote radio: its messages to the network, its frames back.
async fn bridge(net: RadioNetwork, stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    if r.read_u8().await? != HELLO {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "a remote radio starts with its address",
        ));
    }
    let mut radio = net.radio(read_address(&mut r).await?);
    loop {
        tokio::select! {
            op = r.read_u8() => match op? {
                SEND => {
                    let to = read_address(&mut r).await?;
                    let len = usize::from(r.read_u8().await?);
                    let mut frame = vec![0u8; len];
                    r.read_exact(&mut frame).await?;
                    // A frame the air refuses (empty, too long) is lost, as on a module.
                    let _ = radio.send(to, &frame).await;
                }
                TUNE => {
                    radio.set_address(read_address(&mut r).await?);
                    // Tuned: frames sent to the new address from now on reach it.
                    w.write_all(&[0]).await?;
                }
                other => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("unknown remote radio message {other}"),
                    ));
                }
            },
            frame = radio.recv() => {
                let Some(frame) = frame else { return Ok(()) };
                let mut out = Vec::with_capacity(frame.len() + 1);
                out.push(frame.len() as u8);
                out.extend_from_slice(&frame);
                w.write_all(&out).await?;
            }
        }
    }
}

fn tune_message(address: Address) -> Vec<u8> {
    let mut m = vec![TUNE];
    m.extend_from_slice(&address.to_bytes());
    m
}

/// A radio on a network another process serves.
#[derive(Debug)]
pub struct RemoteRadio {
    tx: mpsc::Sender<Vec<u8>>,
    rx: BufReader<OwnedReadHalf>,
    /// Frames read while waiting for a tune's acknowledgement.
    early: std::collections::VecDeque<Bytes>,
    /// Tunes sent and not yet acknowledged (the network acknowledges them in order).
    unacked: std::sync::atomic::AtomicUsize,
}

impl RemoteRadio {
    /// Joins the network served at `air` with a radio tuned to `address`.
    pub async fn connect(air: SocketAddr, address: Address) -> std::io::Result<RemoteRadio> {
        let stream = TcpStream::connect(air).await?;
        stream.set_nodelay(true)?;
        let (r, mut w) = stream.into_split();
        let mut hello = vec![HELLO];
        hello.extend_from_slice(&address.to_bytes());
        w.write_all(&hello).await?;
        let (tx, mut out) = mpsc::channel::<Vec<u8>>(256);
        tokio::spawn(async move {
            while let Some(m) = out.recv().await {
                if w.write_all(&m).await.is_err() {
                    break;
                }
            }
        });
        Ok(RemoteRadio {
            tx,
            rx: BufReader::new(r),
            early: std::collections::VecDeque::new(),
            unacked: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Sends `payload` to `to` (checked here as the local radio checks it).
    pub async fn send(&self, to: Address, payload: &[u8]) -> Result<(), RadioError> {
        if payload.is_empty() {
            return Err(RadioError::Empty);
        }
        if payload.len() > MAX_FRAME {
            return Err(RadioError::TooLong(payload.len()));
        }
        let mut m = Vec::with_capacity(payload.len() + 5);
        m.push(SEND);
        m.extend_from_slice(&to.to_bytes());
        m.push(payload.len() as u8);
        m.extend_from_slice(payload);
        self.tx.send(m).await.map_err(|_| RadioError::Gone)
    }

    /// Tunes the radio to `address` (takes effect shortly after; [`tune`](Self::tune) waits).
    pub fn set_address(&self, address: Address) {
        if self.tx.try_send(tune_message(address)).is_ok() {
            self.unacked.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Tunes the radio to `address` and returns once frames sent there reach it: once every
    /// tune sent so far is acknowledged (they are, in order), not on an earlier one's.
    pub async fn tune(&mut self, address: Address) -> Result<(), RadioError> {
        self.tx
            .send(tune_message(address))
            .await
            .map_err(|_| RadioError::Gone)?;
        self.unacked.fetch_add(1, Ordering::SeqCst);
        while self.unacked.load(Ordering::SeqCst) > 0 {
            match self.read().await {
                Some(Some(frame)) => self.early.push_back(frame),
                Some(None) => {}
                None => return Err(RadioError::Gone),
            }
        }
        Ok(())
    }

    /// The next frame received; `None` once the network is gone.
    pub async fn recv(&mut self) -> Option<Bytes> {
        if let Some(f) = self.early.pop_front() {
            return Some(f);
        }
        loop {
            match self.read().await? {
                Some(frame) => return Some(frame),
                // A tune acknowledged that nobody waited for.
                None => continue,
            }
        }
    }

    /// A frame, or a tune's acknowledgement (`None` inside); `None` once the network is gone.
    async fn read(&mut self) -> Option<Option<Bytes>> {
        let len = usize::from(self.rx.read_u8().await.ok()?);
        if len == 0 {
            let _ = self
                .unacked
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            return Some(None);
        }
        let mut frame = vec![0u8; len];
        self.rx.read_exact(&mut frame).await.ok()?;
        Some(Some(Bytes::from(frame)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Conditions;

    #[tokio::test]
    async fn radios_in_two_processes_talk() {
        let net = RadioNetwork::new(1, Conditions::perfect());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let air = listener.local_addr().unwrap();
        tokio::spawn(serve(net.clone(), listener));
        let mut local = net.radio(Address::new(0xEF, 0xEF, 0x1F));
        let mut remote = RemoteRadio::connect(air, Address::new(0xEF, 0xEE, 0x1F))
            .await
            .unwrap();
        remote
            .send(
                Address::new(0xEF, 0xEF, 0x1F),
                &[0xFF, 0xF8, 0x03, 0x09, 0xFF],
            )
            .await
            .unwrap();
        assert_eq!(
            local.recv().await.unwrap().as_ref(),
            &[0xFF, 0xF8, 0x03, 0x09, 0xFF]
        );
        local
            .send(Address::new(0xEF, 0xEE, 0x1F), &[0xFF, 0x01, 0xFF])
            .await
            .unwrap();
        assert_eq!(remote.recv().await.unwrap().as_ref(), &[0xFF, 0x01, 0xFF]);
        // Tuned elsewhere, it hears its new address only.
        remote.tune(Address::new(0, 5, 0x17)).await.unwrap();
        local
            .send(Address::new(0xEF, 0xEE, 0x1F), &[0xFF, 0x02, 0xFF])
            .await
            .unwrap();
        local
            .send(Address::new(0, 5, 0x17), &[0xFF, 0x03, 0xFF])
            .await
            .unwrap();
        assert_eq!(remote.recv().await.unwrap().as_ref(), &[0xFF, 0x03, 0xFF]);
        // A tune right after an unawaited one waits for both acknowledgements: a frame sent
        // to the last address as soon as it returns reaches the radio.
        for round in 0..20u8 {
            remote.set_address(Address::new(0, 6, 0x17));
            remote.tune(Address::new(0, 7, 0x17)).await.unwrap();
            local
                .send(Address::new(0, 7, 0x17), &[0xFF, round, 0xFF])
                .await
                .unwrap();
            assert_eq!(remote.recv().await.unwrap().as_ref(), &[0xFF, round, 0xFF]);
        }
        assert_eq!(
            remote.send(Address::new(0, 0, 0), &[0u8; 65]).await,
            Err(RadioError::TooLong(65))
        );
    }
}
