//! XEP-0114 external components: the `[components]` listener, the handshake, and the
//! connected components the router delivers to.
//!
//! A component is a program given a domain (`bridge.example.org`) and a shared secret in
//! `[components.secrets]`. It connects to a `[components] listen` address, opens a stream in
//! `jabber:component:accept` `to` its domain, and proves the secret (`lithos_component::
//! digest` of the stream id and the secret). It then sends stanzas `from` any address of its
//! domain, to anyone the server routes to, and receives every stanza addressed to its domain
//! (the domain itself, and any `local@domain/resource`). Inside the server stanzas are in
//! `jabber:client`; the namespace is changed at the component's stream, both ways.
//!
//! Bounds and answers: one connection per domain (a second one gets `conflict`); at most
//! [`MAX_HANDSHAKING`] connections between accept and handshake, each given `[c2s]
//! negotiation_timeout_secs`; stanzas waiting for a component at most `[c2s] outbound_queue`
//! (past it, the sender gets `resource-constraint`; presence is dropped); a component that
//! does not read for `[c2s] write_timeout_secs` is disconnected. A stanza for a configured
//! component that is not connected gets `service-unavailable`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use lithos_component::{Handshake, NS_ACCEPT};
use lithos_core::codec::XmlCodec;
use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_core::{
    Element, Jid, Limits, Payload, StreamError, StreamErrorCondition, StreamEvent, StreamHeader, ns,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::codec::Framed;
use tracing::Instrument;

use crate::ServerHandle;

/// Connections accepted and not yet through the handshake, at most: past it, new ones are
/// closed at once.
pub const MAX_HANDSHAKING: usize = 16;

/// The components connected now, by domain.
#[derive(Default)]
pub(crate) struct Components {
    connected: RwLock<HashMap<String, Connected>>,
    next_id: AtomicU64,
}

struct Connected {
    id: u64,
    tx: mpsc::Sender<Element>,
}

/// What became of a stanza for a component's domain.
pub(crate) enum Handoff {
    /// Not a component's domain.
    NotComponent(Element),
    /// Queued for the component.
    Queued,
    /// The component is configured but not connected.
    Absent(Element),
    /// Its queue is full.
    Full(Element),
}

impl Components {
    /// Hands `stanza` to the component serving `domain`, if one is configured.
    pub(crate) fn hand_off(&self, server: &ServerHandle, domain: &str, stanza: Element) -> Handoff {
        if !server.config().components.secrets.contains_key(domain) {
            return Handoff::NotComponent(stanza);
        }
        let map = self.connected.read().unwrap_or_else(|e| e.into_inner());
        let Some(c) = map.get(domain) else {
            return Handoff::Absent(stanza);
        };
        match c.tx.try_send(stanza) {
            Ok(()) => Handoff::Queued,
            Err(mpsc::error::TrySendError::Full(s)) => Handoff::Full(s),
            Err(mpsc::error::TrySendError::Closed(s)) => Handoff::Absent(s),
        }
    }

    /// Registers a component's connection; `None` when the domain has one already.
    fn connect(&self, domain: &str, tx: mpsc::Sender<Element>) -> Option<u64> {
        let mut map = self.connected.write().unwrap_or_else(|e| e.into_inner());
        if map.contains_key(domain) {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        map.insert(domain.to_string(), Connected { id, tx });
        Some(id)
    }

    fn disconnect(&self, domain: &str, id: u64) {
        let mut map = self.connected.write().unwrap_or_else(|e| e.into_inner());
        if map.get(domain).is_some_and(|c| c.id == id) {
            map.remove(domain);
        }
    }
}

/// Accepts component connections until shutdown.
pub(crate) async fn accept_loop(server: ServerHandle, listener: TcpListener) {
    let handshaking = Arc::new(Semaphore::new(MAX_HANDSHAKING));
    crate::server::accept_until_shutdown(&server, listener, |tcp, peer, conns| {
        match handshaking.clone().try_acquire_owned() {
            Ok(permit) => {
                let _ = tcp.set_nodelay(true);
                let span = tracing::info_span!("component", %peer);
                conns.spawn(serve(server.clone(), tcp, peer, permit).instrument(span));
            }
            Err(_) => {
                tracing::warn!(%peer, "component connection refused: too many handshakes in progress")
            }
        }
    })
    .await
}

type Stream = Framed<TcpStream, XmlCodec>;

/// Why a component's connection ended.
enum End {
    /// With a stream error to send.
    Error(Box<StreamError>),
    /// The component closed its stream, or the connection broke.
    Gone,
}

fn error(condition: StreamErrorCondition, text: &str) -> End {
    End::Error(Box::new(StreamError::new(condition).with_text(text)))
}

async fn serve(
    server: ServerHandle,
    tcp: TcpStream,
    peer: SocketAddr,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let limits = Limits {
        max_stanza_size: server.config().c2s.max_stanza_size,
        ..Limits::default()
    };
    let mut stream = Framed::new(tcp, XmlCodec::with_limits(limits));
    let mut header_sent = false;
    let end = run(&server, &mut stream, &mut header_sent, permit).await;
    if let End::Error(e) = end {
        tracing::info!(%peer, condition = %e.condition, "component stream closed with an error");
        let goodbye = async {
            if !header_sent {
                let mut h =
                    StreamHeader::new(NS_ACCEPT.into()).from(server.domain().as_shared().clone());
                h.version = None;
                stream.send(&StreamEvent::from(h)).await?;
            }
            stream.send(&StreamEvent::Element(e.to_element())).await?;
            stream.send(&StreamEvent::Close).await
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), goodbye).await;
    }
}

/// The next element, skipping keep-alives.
async fn next_element(stream: &mut Stream) -> Result<Element, End> {
    loop {
        match stream.next().await {
            Some(Ok(StreamEvent::Element(el))) => return Ok(el),
            Some(Ok(StreamEvent::KeepAlive)) => continue,
            Some(Ok(StreamEvent::Header(_))) => {
                return Err(error(
                    StreamErrorCondition::NotWellFormed,
                    "a second stream header",
                ));
            }
            Some(Ok(StreamEvent::Close)) | None => return Err(End::Gone),
            Some(Err(e)) => {
                return Err(match e.condition() {
                    Some(c) => error(c, "unreadable input"),
                    None => End::Gone,
                });
            }
        }
    }
}

/// The stream header, the handshake, then stanzas until either side ends.
async fn run(
    server: &ServerHandle,
    stream: &mut Stream,
    header_sent: &mut bool,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> End {
    let negotiation = Duration::from_secs(server.config().c2s.negotiation_timeout_secs);
    let opened = tokio::time::timeout(negotiation, async {
        let header = loop {
            match stream.next().await {
                Some(Ok(StreamEvent::Header(h))) => break h,
                Some(Ok(StreamEvent::KeepAlive)) => continue,
                Some(Ok(_)) => {
                    return Err(error(
                        StreamErrorCondition::NotWellFormed,
                        "expected a stream header",
                    ));
                }
                Some(Err(e)) => {
                    return Err(match e.condition() {
                        Some(c) => error(c, "unreadable stream header"),
                        None => End::Gone,
                    });
                }
                None => return Err(End::Gone),
            }
        };
        if header.check().is_err() || header.content_ns != NS_ACCEPT {
            return Err(error(
                StreamErrorCondition::InvalidNamespace,
                "components speak jabber:component:accept (XEP-0114)",
            ));
        }
        let domain = header
            .to
            .as_deref()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let Some(secret) = server.config().components.secrets.get(&domain).cloned() else {
            return Err(error(
                StreamErrorCondition::HostUnknown,
                "no component is configured for this domain",
            ));
        };
        let id = crate::ids::random_hex::<8>();
        // XEP-0114's answer: no version (a version would promise stream features).
        let mut ours = StreamHeader::new(NS_ACCEPT.into())
            .from(domain.clone())
            .id(id.clone());
        ours.version = None;
        stream
            .send(&StreamEvent::from(ours))
            .await
            .map_err(|_| End::Gone)?;
        *header_sent = true;
        let el = next_element(stream).await?;
        let offered = match Handshake::from_element(el) {
            Ok(h) => h.digest,
            Err(_) => {
                return Err(error(
                    StreamErrorCondition::NotAuthorized,
                    "expected <handshake/>",
                ));
            }
        };
        if !lithos_component::verify(&id, &secret, &offered) {
            return Err(error(
                StreamErrorCondition::NotAuthorized,
                "wrong handshake",
            ));
        }
        Ok(domain)
    })
    .await;
    let domain = match opened {
        Ok(Ok(d)) => d,
        Ok(Err(end)) => return end,
        Err(_) => {
            return error(
                StreamErrorCondition::ConnectionTimeout,
                "no handshake in time",
            );
        }
    };
    let (tx, mut rx) = mpsc::channel(server.config().c2s.outbound_queue);
    let Some(conn_id) = server.0.components.connect(&domain, tx) else {
        return error(
            StreamErrorCondition::Conflict,
            "this component is connected already",
        );
    };
    drop(permit);
    tracing::info!(%domain, "component connected");
    let end = stanzas(server, stream, &domain, &mut rx).await;
    server.0.components.disconnect(&domain, conn_id);
    // What was queued for it and not written is answered as for an absent component.
    rx.close();
    while let Some(el) = rx.recv().await {
        unavailable(server, el).await;
    }
    tracing::info!(%domain, "component disconnected");
    end
}

async fn stanzas(
    server: &ServerHandle,
    stream: &mut Stream,
    domain: &str,
    rx: &mut mpsc::Receiver<Element>,
) -> End {
    if stream
        .send(&StreamEvent::Element(Handshake::default().into_element()))
        .await
        .is_err()
    {
        return End::Gone;
    }
    let write_timeout = Duration::from_secs(server.config().c2s.write_timeout_secs);
    let mut shutdown = server.shutdown_signal();
    loop {
        tokio::select! {
            r = next_element(stream) => {
                let el = match r {
                    Ok(el) => el,
                    Err(End::Gone) => {
                        let _ = stream.send(&StreamEvent::Close).await;
                        return End::Gone;
                    }
                    Err(e) => return e,
                };
                if let Err(e) = from_component(server, domain, el).await {
                    return e;
                }
            }
            Some(mut el) = rx.recv() => {
                el.replace_ns(&ns::JABBER_CLIENT, NS_ACCEPT);
                match tokio::time::timeout(write_timeout, stream.send(&StreamEvent::Element(el))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return End::Gone,
                    Err(_) => return error(StreamErrorCondition::ConnectionTimeout, "the component does not read"),
                }
            }
            _ = shutdown.changed() => {
                return error(StreamErrorCondition::SystemShutdown, "the server is shutting down");
            }
        }
    }
}

/// A stanza the component sent: checked, moved into `jabber:client`, routed.
async fn from_component(server: &ServerHandle, domain: &str, mut el: Element) -> Result<(), End> {
    if el.ns() != NS_ACCEPT || !matches!(el.name(), "message" | "presence" | "iq") {
        return Err(error(
            StreamErrorCondition::UnsupportedStanzaType,
            "components send message, presence and iq in jabber:component:accept",
        ));
    }
    let from = el.attr("from").and_then(|f| Jid::new(f).ok());
    if from.is_none_or(|f| f.domain() != domain) {
        return Err(error(
            StreamErrorCondition::InvalidFrom,
            "a component sends from addresses of its own domain",
        ));
    }
    match el.attr("to").map(Jid::new) {
        Some(Ok(_)) => {}
        Some(Err(_)) => {
            let e = StanzaError::new(DefinedCondition::JidMalformed);
            el.replace_ns(NS_ACCEPT, ns::JABBER_CLIENT);
            server.bounce(&el, e).await;
            return Ok(());
        }
        None => {
            return Err(error(
                StreamErrorCondition::ImproperAddressing,
                "a component's stanzas name their recipient",
            ));
        }
    }
    el.replace_ns(NS_ACCEPT, ns::JABBER_CLIENT);
    server.route(el).await;
    Ok(())
}

/// A stanza for a configured component that is not there: as for an absent resource, an
/// iq or message is answered `service-unavailable`, presence is dropped.
pub(crate) async fn unavailable(server: &ServerHandle, stanza: Element) {
    if stanza.name() != "presence" {
        server
            .bounce_without_payload(
                &stanza,
                StanzaError::new(DefinedCondition::ServiceUnavailable)
                    .with_text("the component is not connected"),
            )
            .await;
    }
}
