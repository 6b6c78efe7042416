//! One client connection: format detection, stream negotiation (RFC 6120 §4–7), then the
//! session loop that reads stanzas, routes them, and writes what is queued for the session.

mod csi;
mod negotiate;
mod sm;

pub(crate) use csi::CsiState;
use negotiate::Negotiated;
pub(crate) use negotiate::password_matches;
pub(crate) use sm::SmState;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use lithos_core::codec::{Detection, StreamCodec, WireFormat, detect_format};
use lithos_core::stanza::{DefinedCondition, StanzaError, iq_shape_error, is_stanza};
use lithos_core::{
    Element, Jid, Limits, StreamError, StreamErrorCondition, StreamEvent, StreamHeader, XmlCodec,
    binary::BxmppCodec,
};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::codec::{Framed, FramedParts};
use tokio_util::either::Either;
use tracing::Instrument;

use crate::ServerHandle;
use crate::admission::Ticket;
use crate::module::Flow;
use crate::outbox::{Item, Taken};
use crate::session::{Listener, PresenceState, SessionInfo};
use crate::shaper::{Rate, Shaped};

/// A connection's transport. TLS state is boxed: inline, its size (over a kilobyte) would
/// be paid by every plaintext connection too.
pub(crate) type Io = Either<Tcp, Box<tokio_rustls::server::TlsStream<Tcp>>>;
/// The TCP socket, with reads shaped (`[limits] c2s_rate`, `things_rate`).
pub(crate) type Tcp = Shaped<TcpStream>;
mod transport;
pub(crate) use transport::Transport;

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnError {
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("stream error {0}")]
    Stream(Box<StreamError>),
    #[error("the peer closed the connection")]
    Eof,
    #[error("the peer closed its stream")]
    Closed,
    #[error("the session was resumed on another connection")]
    Detached,
}

/// How long the last words to a peer (a stream error, the stream's close) may take to be
/// written before the connection is dropped anyway.
const FAREWELL: Duration = Duration::from_secs(2);

/// An encoding or transport error as a connection error.
fn codec_io(e: lithos_core::CodecError) -> ConnError {
    match e {
        lithos_core::CodecError::Io(e) => ConnError::Io(e),
        other => ConnError::Io(std::io::Error::other(other.to_string())),
    }
}

/// How long a session must be quiet before its buffers are trimmed.
const QUIET: Duration = Duration::from_secs(2);
/// The read buffer a quiet session keeps (reads of a small stanza still fit in one call).
const QUIET_READ_BUFFER: usize = 512;

pub(crate) async fn serve(
    server: ServerHandle,
    tcp: TcpStream,
    peer: SocketAddr,
    direct_tls: bool,
    listener: Listener,
    ticket: Ticket,
) {
    let span = match listener {
        Listener::Client => tracing::info_span!("c2s", %peer),
        Listener::Thing => tracing::info_span!("thing", %peer),
    };
    async move {
        tracing::debug!("connected");
        // Boxed: the task then holds a pointer, and the connection future is allocated at
        // its own size (measured: the unboxed task was 3.8 KiB per connection).
        log_end(Box::pin(connection(server, tcp, peer, direct_tls, listener, ticket)).await);
    }
    .instrument(span)
    .await
}

/// A client session over a WebSocket (RFC 7395), handed over by the HTTP listener: the
/// same negotiation and session as a TCP stream, without STARTTLS.
pub(crate) async fn serve_websocket(
    server: ServerHandle,
    ws: crate::websocket::WsTransport,
    peer: SocketAddr,
    tls: bool,
    ticket: Ticket,
) {
    async move {
        tracing::debug!("connected");
        let deadline =
            Instant::now() + Duration::from_secs(server.config().c2s.negotiation_timeout_secs);
        let conn = Conn::new(
            server,
            peer,
            Listener::Client,
            Transport::Ws(Box::new(ws)),
            tls,
            ticket,
        );
        let r = match Box::pin(negotiated(conn, deadline)).await {
            Ok(Some((conn, bound))) => Box::new(conn).session(bound).await,
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        log_end(r);
    }
    .instrument(tracing::info_span!("ws", %peer))
    .await
}

/// How a connection ended, in the log.
fn log_end(r: Result<(), ConnError>) {
    match r {
        Ok(()) | Err(ConnError::Closed) => tracing::debug!("closed"),
        Err(ConnError::Eof) => tracing::debug!("peer went away"),
        Err(ConnError::Detached) => tracing::debug!("session resumed elsewhere"),
        Err(ConnError::Stream(e)) => {
            tracing::info!(condition = %e.condition, "closed with stream error")
        }
        Err(ConnError::Io(e)) => tracing::debug!(error = %e, "I/O error"),
    }
}

fn make_codec(server: &ServerHandle, format: WireFormat) -> StreamCodec {
    match format {
        WireFormat::Xml => StreamCodec::Xml(XmlCodec::with_limits(Limits {
            max_stanza_size: server.config().c2s.max_stanza_size,
            ..Limits::default()
        })),
        WireFormat::Bxmpp => {
            StreamCodec::Bxmpp(BxmppCodec::new().max_frame(server.config().c2s.max_stanza_size))
        }
    }
}

/// Reads until the first bytes tell what the peer speaks, then frames the transport.
async fn frame(server: &ServerHandle, mut io: Io) -> Result<Option<Transport>, ConnError> {
    let mut buf = BytesMut::with_capacity(512);
    loop {
        match detect_format(&buf) {
            Detection::Format(f) => {
                let mut parts = FramedParts::new::<&StreamEvent>(io, make_codec(server, f));
                parts.read_buf = buf;
                return Ok(Some(Transport::Bytes(Framed::from_parts(parts))));
            }
            Detection::NeedMore => {
                if buf.len() > 4096 || io.read_buf(&mut buf).await? == 0 {
                    return Ok(None);
                }
            }
            Detection::Tls | Detection::Unknown => return Ok(None),
        }
    }
}

async fn tls_accept(server: &ServerHandle, tcp: Tcp) -> Result<Io, ConnError> {
    let cfg = server
        .0
        .tls
        .clone()
        .ok_or_else(|| ConnError::Io(std::io::Error::other("no TLS configuration")))?;
    let tls = tokio_rustls::TlsAcceptor::from(cfg).accept(tcp).await?;
    let (_, state) = tls.get_ref();
    // XEP-0368: a direct TLS client names the XMPP domain in SNI. Another name is not
    // refused here (the stream header's `to` is checked next), but it is worth a log line:
    // it usually means a client or a DNS record set up for another host.
    if let Some(sni) = state.server_name()
        && !sni.eq_ignore_ascii_case(server.domain().domain())
    {
        tracing::info!(
            sni,
            domain = server.domain().domain(),
            "TLS client asked for another name (SNI)"
        );
    }
    tracing::debug!(
        sni = state.server_name().unwrap_or("-"),
        alpn = state
            .alpn_protocol()
            .map(String::from_utf8_lossy)
            .as_deref()
            .unwrap_or("-"),
        "TLS established"
    );
    Ok(Either::Right(Box::new(tls)))
}

/// The shaping rule for a connection from `peer` on `listener`: none for trusted networks.
fn rate_for(server: &ServerHandle, peer: SocketAddr, listener: Listener) -> Option<Rate> {
    let l = &server.config().limits;
    if l.is_trusted(peer.ip()) {
        return None;
    }
    let (bytes_per_sec, burst) = match listener {
        Listener::Client => (l.c2s_rate, l.c2s_burst),
        Listener::Thing => (l.things_rate, l.things_burst),
    };
    Some(Rate {
        bytes_per_sec,
        burst,
    })
}

async fn connection(
    server: ServerHandle,
    tcp: TcpStream,
    peer: SocketAddr,
    direct_tls: bool,
    listener: Listener,
    ticket: Ticket,
) -> Result<(), ConnError> {
    // Everything before the session runs in its own boxed future: its locals (the socket
    // before framing, TLS handshakes, SASL) are freed when it ends, and the future that
    // lives as long as the session holds only the connection itself.
    let established = Box::pin(establish(server, tcp, peer, direct_tls, listener, ticket)).await?;
    match established {
        Some((conn, bound)) => Box::new(conn).session(bound).await,
        None => Ok(()),
    }
}

/// From an accepted socket to a bound session; `Ok(None)` when the stream ended during
/// negotiation (already reported to the client).
async fn establish(
    server: ServerHandle,
    tcp: TcpStream,
    peer: SocketAddr,
    direct_tls: bool,
    listener: Listener,
    ticket: Ticket,
) -> Result<Option<(Conn, Bound)>, ConnError> {
    let negotiation = Duration::from_secs(server.config().c2s.negotiation_timeout_secs);
    let deadline = Instant::now() + negotiation;
    let rate = rate_for(&server, peer, listener);
    let io = if direct_tls {
        tokio::time::timeout_at(deadline, tls_accept(&server, Shaped::new(tcp, rate)))
            .await
            .map_err(|_| ConnError::Eof)??
    } else {
        // A TLS ClientHello on the STARTTLS port is served as direct TLS.
        let mut first = [0u8; 1];
        let n = tokio::time::timeout_at(deadline, tcp.peek(&mut first))
            .await
            .map_err(|_| ConnError::Eof)??;
        let tcp = Shaped::new(tcp, rate);
        if n == 1 && detect_format(&first) == Detection::Tls {
            tokio::time::timeout_at(deadline, tls_accept(&server, tcp))
                .await
                .map_err(|_| ConnError::Eof)??
        } else {
            Either::Left(tcp)
        }
    };
    let tls = matches!(io, Either::Right(_));
    let Some(framed) = tokio::time::timeout_at(deadline, frame(&server, io))
        .await
        .map_err(|_| ConnError::Eof)??
    else {
        return Err(ConnError::Eof);
    };
    let conn = Conn::new(server, peer, listener, framed, tls, ticket);
    negotiated(conn, deadline).await
}

/// Negotiates `conn` (STARTTLS, SASL, binding, or a resumption) until a session is bound,
/// by `deadline`; `Ok(None)` when the stream ended (already reported to the client).
async fn negotiated(mut conn: Conn, deadline: Instant) -> Result<Option<(Conn, Bound)>, ConnError> {
    loop {
        let step = match tokio::time::timeout_at(deadline, Box::pin(conn.negotiate())).await {
            Ok(r) => r,
            Err(_) => Err(ConnError::Stream(Box::new(
                StreamError::new(StreamErrorCondition::ConnectionTimeout)
                    .with_text("negotiation took too long"),
            ))),
        };
        match step {
            Ok(Negotiated::Bound(b)) => return Ok(Some((conn, b))),
            Ok(Negotiated::StartTls) => {
                conn = match tokio::time::timeout_at(deadline, Box::pin(conn.upgrade())).await {
                    Ok(Ok(c)) => c,
                    Ok(Err(e)) => return Err(e),
                    Err(_) => return Err(ConnError::Eof),
                };
            }
            Err(e) => return conn.fail(e).await.map(|()| None),
        }
    }
}

/// What negotiation produced: an authenticated, bound session (new, or resumed).
pub(crate) struct Bound {
    pub(crate) info: SessionInfo,
    pub(crate) outbox: std::sync::Arc<crate::outbox::Outbox>,
    /// Stream management, once the client enabled it.
    pub(crate) sm: Option<Box<SmState>>,
    /// Client state indication, once the client said it is inactive.
    pub(crate) csi: Option<Box<CsiState>>,
    /// Taken back by `<resume/>`: `<resumed/>` and the unacknowledged stanzas are written
    /// first, and the modules are not told of a new session.
    pub(crate) resuming: bool,
}

impl Bound {
    /// A new session.
    pub(crate) fn new(info: SessionInfo, outbox: std::sync::Arc<crate::outbox::Outbox>) -> Bound {
        Bound {
            info,
            outbox,
            sm: None,
            csi: None,
            resuming: false,
        }
    }

    /// The resumption id, when the session is resumable.
    fn resumption_id(&self) -> Option<String> {
        self.sm.as_ref()?.id.clone()
    }
}

/// Ends a session for good: it leaves the session table and the resumable ones; what was
/// queued for it and never written, and what was written and never acknowledged (stream
/// management), is routed again now that it is gone — a message goes to another resource or
/// to offline storage, an iq back to its sender as an error (RFC 6121 §8.5.3.2); nothing the
/// server took is dropped. Then the modules hear of it.
pub(crate) async fn end_session(server: &ServerHandle, mut b: Bound) {
    if let Some(id) = b.resumption_id() {
        server.0.resumable.forget(&id);
    }
    let was = server.sessions().unbind(&b.info).unwrap_or_default();
    let mut unsent =
        b.sm.take()
            .map(|mut s| s.sent.take_all())
            .unwrap_or_default();
    unsent.extend(b.outbox.close());
    if !unsent.is_empty() {
        tracing::info!(
            jid = %b.info.jid,
            stanzas = unsent.len(),
            "re-routing what the session did not write or the client did not acknowledge"
        );
    }
    for el in unsent {
        Box::pin(server.route(el)).await;
    }
    for m in server.modules().iter() {
        m.session_closed(server, &b.info, was.available).await;
    }
    tracing::info!(jid = %b.info.jid, "session ended");
}

/// A resumable session whose connection broke: handed to the connection resuming it, or
/// held until one does or the window passes (then ended), or the server stops.
async fn hold(server: ServerHandle, id: String, b: Bound) {
    let window = b.sm.as_ref().map(|s| s.window).unwrap_or_default();
    let jid = b.info.jid.clone();
    let generation = match server.0.resumable.hold(&id, b) {
        Ok(None) => return,
        Ok(Some(g)) => g,
        Err(b) => return end_session(&server, b).await,
    };
    tracing::info!(%jid, secs = window.as_secs(), "connection lost; session held for resumption");
    let mut shutdown = server.0.shutdown.clone();
    if !*shutdown.borrow() {
        tokio::select! {
            _ = tokio::time::sleep(window) => {}
            _ = shutdown.changed() => {}
        }
    }
    if let Some(b) = server.0.resumable.expire(&id, generation) {
        tracing::info!(%jid, "not resumed in time");
        end_session(&server, b).await;
    }
}

pub(crate) struct Conn {
    pub(crate) server: ServerHandle,
    pub(crate) peer: SocketAddr,
    pub(crate) listener: Listener,
    pub(crate) framed: Transport,
    pub(crate) tls: bool,
    pub(crate) header_sent: bool,
    /// The account name, once SASL succeeded.
    pub(crate) authenticated: Option<String>,
    /// Failed SASL attempts on this connection.
    pub(crate) auth_failures: u32,
    /// The connection's place in the admission counts.
    pub(crate) ticket: Ticket,
    /// Elements in the transport's buffer and not flushed yet (stream management's `<a/>`
    /// answers): flushed as soon as no input is waiting, so the answers to several `<r/>`
    /// read at once leave in one write, and at the latest every [`sm::MAX_UNFLUSHED`].
    pub(crate) unflushed: u8,
}

impl Conn {
    /// A connection about to negotiate its stream.
    fn new(
        server: ServerHandle,
        peer: SocketAddr,
        listener: Listener,
        framed: Transport,
        tls: bool,
        ticket: Ticket,
    ) -> Conn {
        Conn {
            server,
            peer,
            listener,
            framed,
            tls,
            header_sent: false,
            authenticated: None,
            auth_failures: 0,
            ticket,
            unflushed: 0,
        }
    }

    /// Replaces the transport with TLS over it, after `<proceed/>`.
    async fn upgrade(mut self) -> Result<Conn, ConnError> {
        SinkExt::<&StreamEvent>::flush(&mut self.framed)
            .await
            .map_err(codec_io)?;
        let format = self.format();
        let Transport::Bytes(framed) = self.framed else {
            return Err(ConnError::Eof);
        };
        let parts = framed.into_parts();
        let buffered = match &parts.codec {
            StreamCodec::Xml(c) => c.decoder().has_buffered_input(),
            StreamCodec::Bxmpp(_) => false,
        };
        // Anything sent after <starttls/> and before the handshake would be read as if it had
        // come over TLS (STARTTLS command injection): refuse it.
        if !parts.read_buf.is_empty() || buffered {
            tracing::warn!("data after <starttls/> before the TLS handshake; closing");
            return Err(ConnError::Eof);
        }
        let Either::Left(tcp) = parts.io else {
            return Err(ConnError::Eof);
        };
        let io = tls_accept(&self.server, tcp).await?;
        Ok(Conn {
            framed: Transport::Bytes(Framed::new(io, make_codec(&self.server, format))),
            tls: true,
            header_sent: false,
            ..self
        })
    }

    pub(crate) fn format(&self) -> WireFormat {
        self.framed.format()
    }

    pub(crate) async fn send(&mut self, el: &Element) -> Result<(), ConnError> {
        match self.framed.send(&StreamEvent::Element(el.clone())).await {
            Ok(()) => Ok(()),
            Err(lithos_core::CodecError::Io(e)) => Err(ConnError::Io(e)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot encode an element for this stream; dropped");
                Ok(())
            }
        }
    }

    /// Sends our stream header (once per stream).
    pub(crate) async fn send_header(&mut self, to: Option<&str>) -> Result<(), ConnError> {
        let id = crate::ids::random_hex::<8>();
        let mut h = StreamHeader::client()
            .from(self.server.domain().as_shared().clone())
            .id(id)
            .lang("en");
        if let Some(t) = to {
            h = h.to(t.to_string());
        }
        self.framed
            .send(&StreamEvent::from(h))
            .await
            .map_err(codec_io)?;
        self.header_sent = true;
        Ok(())
    }

    /// Ends the connection after an error: a stream error (after a header, if none was sent)
    /// and the close, for errors the peer should hear about. The goodbye gets [`FAREWELL`]
    /// to be written: a peer that does not read is not waited on.
    async fn fail(&mut self, e: ConnError) -> Result<(), ConnError> {
        if let ConnError::Stream(se) = &e {
            let se = (**se).clone();
            let goodbye = async {
                if !self.header_sent {
                    self.send_header(None).await?;
                }
                self.send(&se.to_element()).await?;
                self.close_stream().await
            };
            let _ = tokio::time::timeout(FAREWELL, goodbye).await;
        }
        Err(e)
    }

    /// Writes `</stream:stream>` and shuts the transport's write side (TLS `close_notify`
    /// included). Callers bound it with a deadline.
    async fn close_stream(&mut self) -> Result<(), ConnError> {
        self.framed
            .send(&StreamEvent::Close)
            .await
            .map_err(codec_io)?;
        SinkExt::<&StreamEvent>::close(&mut self.framed)
            .await
            .map_err(codec_io)
    }

    /// The next event, mapping decoding errors to stream errors.
    pub(crate) async fn next_event(&mut self) -> Result<StreamEvent, ConnError> {
        match self.framed.next().await {
            None => Err(ConnError::Eof),
            Some(Ok(ev)) => Ok(ev),
            Some(Err(lithos_core::CodecError::Io(e))) => Err(ConnError::Io(e)),
            Some(Err(e)) => {
                let cond = e.condition().unwrap_or(StreamErrorCondition::NotWellFormed);
                Err(ConnError::Stream(Box::new(
                    StreamError::new(cond).with_text(e.to_string()),
                )))
            }
        }
    }

    /// The session loop: read and route stanzas, write what is queued. A resumable session
    /// whose connection breaks is held for a new connection instead of ending.
    async fn session(mut self: Box<Self>, mut b: Bound) -> Result<(), ConnError> {
        let server = self.server.clone();
        if !b.resuming {
            for m in server.modules().iter() {
                m.session_bound(&server, &b.info).await;
            }
        }
        let r = self.session_loop(&mut b).await;
        let r = match r {
            Err(e @ ConnError::Stream(_)) => Box::pin(self.fail(e)).await,
            other => other,
        };
        let broke = matches!(
            r,
            Err(ConnError::Eof | ConnError::Io(_) | ConnError::Detached)
        );
        match b.resumption_id() {
            Some(id) if broke => {
                // The connection is gone; only the session waits.
                drop(self);
                Box::pin(hold(server, id, b)).await;
            }
            _ => Box::pin(end_session(&server, b)).await,
        }
        r
    }

    async fn session_loop(&mut self, b: &mut Bound) -> Result<(), ConnError> {
        let idle = Duration::from_secs(self.server.config().c2s.idle_timeout_secs);
        let mut shutdown = self.server.0.shutdown.clone();
        let mut last = Instant::now();
        if b.resuming {
            b.resuming = false;
            self.resumed(b).await?;
            // A new stream starts active (XEP-0352 §4): what waited goes out.
            if let Some(held) = b.csi.as_mut().map(|c| c.activate()) {
                Box::pin(self.write_queued(held, b)).await?;
            }
        }
        let max_held = self.server.config().csi.max_held;
        let max_unacked = self.server.config().stream_management.max_unacked;
        // Negotiation leaves large buffers behind; a quiet session keeps small ones.
        self.trim_buffers();
        let mut last_io = last;
        let mut trimmed = true;
        loop {
            // One timer for both: the idle timeout, and (while buffers are large) the moment
            // the session has been quiet long enough to give them back.
            let idle_at = last + idle;
            let wake_at = if trimmed {
                idle_at
            } else {
                idle_at.min(last_io + QUIET)
            };
            // With stream management, at most `max_unacked` stanzas are written ahead of the
            // client's acknowledgements.
            let room = b.sm.as_ref().map_or(256, |s| s.room(max_unacked).min(256));
            tokio::select! {
                biased;
                _ = b.outbox.ready(room > 0) => {
                    last_io = Instant::now();
                    trimmed = false;
                    match b.outbox.take(room) {
                        Taken::Close(e) => return Err(ConnError::Stream(Box::new(e))),
                        Taken::CloseAfter(queued, e) => {
                            Box::pin(self.write_queued(queued, b)).await?;
                            return Err(ConnError::Stream(Box::new(e)));
                        }
                        Taken::Detach => return Err(ConnError::Detached),
                        Taken::Stanzas(batch) => {
                            let batch = match b.csi.as_mut() {
                                Some(c) if c.inactive() => c.sort(batch, max_held),
                                _ => batch,
                            };
                            Box::pin(self.write_queued(batch, b)).await?
                        }
                    }
                },
                ev = self.next_event() => {
                    last = Instant::now();
                    last_io = last;
                    trimmed = false;
                    match ev? {
                        // Boxed: routing runs module hooks and can nest deeply; inline, its
                        // state would size every idle session's future (measured: ~10 KiB).
                        StreamEvent::Element(el) if lithos_sm::is_sm(&el) => {
                            Box::pin(self.on_sm(el, b)).await?;
                        }
                        StreamEvent::Element(el) if el.ns() == lithos_csi::NS => {
                            Box::pin(self.on_csi(el, b)).await?;
                        }
                        StreamEvent::Element(el) => {
                            Box::pin(self.on_element(el, &b.info)).await?;
                            if let Some(sm) = b.sm.as_deref_mut() {
                                sm.handled.count();
                            }
                        }
                        StreamEvent::KeepAlive => {}
                        StreamEvent::Close => {
                            let _ = tokio::time::timeout(FAREWELL, self.close_stream()).await;
                            return Err(ConnError::Closed);
                        }
                        StreamEvent::Header(_) => {
                            return Err(ConnError::Stream(Box::new(StreamError::new(StreamErrorCondition::InvalidXml)
                                .with_text("unexpected stream header"))));
                        }
                    }
                }
                // Nothing more to read right now: what was answered goes out.
                () = std::future::ready(()), if self.unflushed > 0 => {
                    self.unflushed = 0;
                    self.flush_timed().await?;
                }
                _ = tokio::time::sleep_until(wake_at) => {
                    if Instant::now() >= idle_at {
                        return Err(ConnError::Stream(Box::new(StreamError::new(StreamErrorCondition::ConnectionTimeout))));
                    }
                    self.trim_buffers();
                    b.outbox.release();
                    trimmed = true;
                }
                _ = shutdown.changed() => {
                    return Err(ConnError::Stream(Box::new(StreamError::new(StreamErrorCondition::SystemShutdown))));
                }
            }
        }
    }

    /// Gives back the read and write buffers' memory when they hold nothing: an idle
    /// session then costs a few hundred bytes of buffer instead of kilobytes. They grow
    /// again with traffic.
    fn trim_buffers(&mut self) {
        self.framed.trim_buffers();
    }

    /// Writes a batch of queued stanzas, then flushes once; only then are stored stanzas
    /// reported written (their store may delete them). A stanza this stream's format cannot
    /// carry (BXMPP without a code for one of its namespaces) goes back to its sender as
    /// `not-acceptable` instead of vanishing. If the batch cannot be written (an I/O error, or
    /// a socket that takes nothing for `write_timeout_secs`), it goes back to the front of
    /// the outbox, so the session's end re-routes it with the rest.
    pub(crate) async fn write_queued(
        &mut self,
        batch: Vec<Item>,
        b: &mut Bound,
    ) -> Result<(), ConnError> {
        if batch.is_empty() {
            return Ok(());
        }
        let limit = Duration::from_secs(self.server.config().c2s.write_timeout_secs);
        // With stream management: ask for an acknowledgement along with the batch, once
        // enough is outstanding.
        let every = self.server.config().stream_management.request_every;
        let request =
            b.sm.as_ref()
                .is_some_and(|s| s.should_request(batch.len(), every))
                .then(|| lithos_core::Payload::into_element(lithos_sm::Request));
        let framed = &mut self.framed;
        // Indexes of the stanzas this stream's format cannot carry (rare), with why.
        let mut refused: Vec<(usize, String)> = Vec::new();
        // The batch is only borrowed by the write: if the deadline drops it midway, every
        // stanza is still here, to go back to the outbox.
        let write = async {
            for (i, item) in batch.iter().enumerate() {
                match SinkExt::<&Element>::feed(framed, &item.el).await {
                    Ok(()) => {}
                    Err(lithos_core::CodecError::Io(e)) => return Err(ConnError::Io(e)),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot encode an element for this stream; returned to its sender");
                        refused.push((i, e.to_string()));
                    }
                }
            }
            if let Some(r) = &request {
                SinkExt::<&Element>::feed(framed, r)
                    .await
                    .map_err(codec_io)?;
            }
            SinkExt::<&Element>::flush(framed).await.map_err(codec_io)
        };
        let result = match tokio::time::timeout(limit, write).await {
            Ok(r) => r,
            Err(_) => {
                tracing::info!("the peer does not read; closing");
                Err(ConnError::Eof)
            }
        };
        for (i, why) in &refused {
            let e = StanzaError::new(DefinedCondition::NotAcceptable)
                .with_text(format!("the recipient's stream cannot carry it: {why}"));
            self.server.bounce(&batch[*i].el, e).await;
        }
        let was_refused = |i: usize| refused.iter().any(|(k, _)| *k == i);
        match result {
            // Written (or, for the refused, answered): a store may forget them; stream
            // management keeps what was written until the client acknowledges it.
            Ok(()) => {
                match b.sm.as_deref_mut() {
                    Some(sm) => {
                        sm.requested |= request.is_some();
                        for (i, item) in batch.into_iter().enumerate() {
                            let el = item.written();
                            if !was_refused(i) {
                                sm.sent.push(el);
                            }
                        }
                    }
                    None => batch.into_iter().for_each(|i| drop(i.written())),
                }
                Ok(())
            }
            Err(e) => {
                let (answered, unsent): (Vec<_>, Vec<_>) = batch
                    .into_iter()
                    .enumerate()
                    .partition(|(i, _)| was_refused(*i));
                answered
                    .into_iter()
                    .for_each(|(_, item)| drop(item.written()));
                b.outbox
                    .unshift(unsent.into_iter().map(|(_, item)| item).collect());
                Err(e)
            }
        }
    }

    /// A top-level element from a bound client.
    async fn on_element(&mut self, mut el: Element, info: &SessionInfo) -> Result<(), ConnError> {
        if !is_stanza(&el) || el.ns() != "jabber:client" {
            return Err(ConnError::Stream(Box::new(
                StreamError::new(StreamErrorCondition::UnsupportedStanzaType).with_text(format!(
                    "<{}/> in {} is not supported here",
                    el.name(),
                    el.ns()
                )),
            )));
        }
        let server = self.server.clone();
        // `from`: absent, or the session's own address (RFC 6120 §8.1.2.1). On the things
        // listener a device may also speak for another resource of its own account: a
        // gateway writes `<gateway>@<domain>/<lan-id>` for the node behind it (TUXP), and the
        // modules that take such stanzas check who may.
        let mut speaks_for_node = false;
        match el.attr("from") {
            None => {}
            Some(f) => match Jid::new(f) {
                Ok(j) if j == info.jid || (j.is_bare() && j.bare_eq(&info.jid)) => {}
                Ok(j)
                    if info.listener == Listener::Thing && j.is_full() && j.bare_eq(&info.jid) =>
                {
                    speaks_for_node = true;
                }
                _ => {
                    return Err(ConnError::Stream(Box::new(
                        StreamError::new(StreamErrorCondition::InvalidFrom)
                            .with_text("from does not match the session"),
                    )));
                }
            },
        }
        if !speaks_for_node {
            el.set_attr("from", info.jid.as_shared().clone());
        }
        // A client cannot speak for an archive here (XEP-0359 §5): stanza-ids that claim to
        // come from an address of this server are removed.
        if el.name() == "message" && el.has_child("stanza-id", "urn:xmpp:sid:0") {
            let domain = server.domain().domain().to_string();
            el.retain_children(|c| {
                !(c.is("stanza-id", "urn:xmpp:sid:0")
                    && c.attr("by")
                        .and_then(|b| Jid::new(b).ok())
                        .is_none_or(|b| b.domain() == domain))
            });
        }
        if el.name() == "iq" {
            if let Some(why) = iq_shape_error(&el) {
                Box::pin(server.bounce_without_payload(
                    &el,
                    StanzaError::new(DefinedCondition::BadRequest).with_text(why),
                ))
                .await;
                return Ok(());
            }
            if is_legacy_session(&el, &server) {
                // RFC 3921 session establishment: long obsolete (RFC 6121 drops it) but
                // still sent by older clients; offered as <optional/> and answered empty.
                let reply = Element::builder("iq", lithos_core::ns::JABBER_CLIENT)
                    .attr("type", "result")
                    .attr("id", el.attr_shared("id").cloned().unwrap_or_default())
                    .attr("to", info.jid.as_shared().clone())
                    .attr("from", server.domain().as_shared().clone())
                    .build();
                server.sessions().send_to_id(info, reply);
                return Ok(());
            }
        }
        let to = match el.attr_shared("to").map(|t| Jid::parse_shared(t.clone())) {
            None => None,
            Some(Ok(j)) => Some(j),
            Some(Err(_)) => {
                Box::pin(server.bounce(&el, StanzaError::new(DefinedCondition::JidMalformed)))
                    .await;
                return Ok(());
            }
        };
        server.metrics().received(el.name());
        // Undirected presence sets the session's availability, which routing depends on.
        let mut became_available = false;
        if el.name() == "presence" && el.attr("to").is_none() {
            let state = match el.attr("type") {
                None => Some(PresenceState {
                    available: true,
                    priority: el
                        .get_child("priority", "jabber:client")
                        .and_then(|p| p.text().trim().parse().ok())
                        .unwrap_or(0),
                }),
                Some("unavailable") => Some(PresenceState::default()),
                _ => None,
            };
            if let Some(state) = state {
                let before = server
                    .sessions()
                    .set_presence(info, state)
                    .unwrap_or_default();
                became_available = state.available && !before.available;
            }
        }
        for m in server.modules().iter() {
            let cx = crate::module::ClientStanza {
                server: &server,
                session: info,
                stanza: &el,
            };
            let Some(hook) = m.client_stanza(cx) else {
                continue;
            };
            if hook.await == Flow::Handled {
                if became_available {
                    Box::pin(self.announce_available(info)).await;
                }
                return Ok(());
            }
        }
        if el.name() == "presence" && el.attr("to").is_none() {
            // No module took the broadcast: nothing else to do for undirected presence.
        } else {
            server.route_to(el, to, Some(info)).await;
        }
        if became_available {
            Box::pin(self.announce_available(info)).await;
        }
        Ok(())
    }

    async fn announce_available(&self, info: &SessionInfo) {
        for m in self.server.modules().iter() {
            m.session_available(&self.server, info).await;
        }
    }
}

/// `<iq type='set'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>` for the server.
fn is_legacy_session(iq: &Element, server: &ServerHandle) -> bool {
    iq.attr("type") == Some("set")
        && iq.has_child("session", lithos_core::ns::XMPP_SESSION.as_ref())
        && iq
            .attr("to")
            .is_none_or(|to| Jid::new(to).is_ok_and(|j| j == *server.domain()))
}
