//! A TCP proxy in front of a server, for links that fail: it can stall what the server sends
//! (a link that stopped moving), cut every connection it carries (a link that broke, with
//! no `</stream>`), and refuse new ones while it is down.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::AbortHandle;

#[derive(Default)]
struct State {
    pipes: Vec<AbortHandle>,
    down: bool,
}

/// See the module docs. Dropping it stops it and cuts what it carries.
pub struct Proxy {
    addr: SocketAddr,
    stall: watch::Sender<bool>,
    state: Arc<Mutex<State>>,
    accept: AbortHandle,
}

impl Proxy {
    /// Listens on a loopback port and carries each connection to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stall, stalled) = watch::channel(false);
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if st.lock().unwrap().down {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(target).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                let up = tokio::spawn(pipe(cr, sw, None));
                let down = tokio::spawn(pipe(sr, cw, Some(stalled.clone())));
                let mut s = st.lock().unwrap();
                s.pipes.retain(|p| !p.is_finished());
                s.pipes.push(up.abort_handle());
                s.pipes.push(down.abort_handle());
            }
        })
        .abort_handle();
        Proxy {
            addr,
            stall,
            state,
            accept,
        }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Holds what the server sends (`true`) or lets it through again (`false`).
    pub fn stall(&self, on: bool) {
        let _ = self.stall.send(on);
    }

    /// Cuts every connection it carries: both sockets closed at once, nothing more passes.
    pub fn cut(&self) {
        for p in self.state.lock().unwrap().pipes.drain(..) {
            p.abort();
        }
    }

    /// Cuts every connection and closes new ones at once until [`up`](Self::up).
    pub fn down(&self) {
        self.state.lock().unwrap().down = true;
        self.cut();
    }

    /// Carries new connections again.
    pub fn up(&self) {
        self.state.lock().unwrap().down = false;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// Copies one direction; while `stalled` says so, what was read waits here, as it would in
/// the buffers of a link that stopped moving.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut stalled: Option<watch::Receiver<bool>>,
) {
    let mut buf = [0u8; 4096];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(s) = stalled.as_mut() {
            while *s.borrow() {
                if s.changed().await.is_err() {
                    return;
                }
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
}
