//! From a socket to a bound resource: stream headers, STARTTLS, SASL, resource binding
//! (RFC 6120 §4–7).

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use lithos_core::Payload;
use lithos_core::codec::StreamCodec;
use lithos_core::{Element, Jid, StreamError, StreamEvent, StreamHeader, ns};
use lithos_sasl::Mechanism;
use lithos_sasl::scram::ScramClient;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;
use tokio_util::either::Either;

use crate::config::{Config, TlsMode};
use crate::error::ConnectError;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The socket, in the clear or in TLS.
pub(crate) type Io = Either<TcpStream, tokio_rustls::client::TlsStream<TcpStream>>;
/// The socket framed into stream events.
pub(crate) type Transport = Framed<Io, StreamCodec>;

/// A negotiated connection.
pub(crate) struct Connected {
    pub(crate) framed: Transport,
    pub(crate) jid: Jid,
    /// What stream management gave it.
    pub(crate) sm: SmStart,
    /// Stanzas the server wrote between binding and `<enabled/>` (not counted by either
    /// side), to dispatch first.
    pub(crate) early: Vec<Element>,
    /// The server offers client state indication (XEP-0352).
    pub(crate) csi: bool,
}

/// Stream management on a new connection (XEP-0198).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SmStart {
    /// Not offered by the server, or not asked for.
    Off,
    /// Enabled on a new session; with the id when the session is resumable.
    Enabled { id: Option<String> },
    /// The previous session taken back; the server had handled `h` of the client's stanzas.
    Resumed { h: u32 },
}

/// The session a new connection should try to resume.
pub(crate) struct ResumeFrom {
    /// The resumption id from `<enabled/>`.
    pub(crate) id: String,
    /// How many stanzas the client handled from the server.
    pub(crate) h: u32,
    /// The address the session is bound to.
    pub(crate) jid: Jid,
}

/// Connects and negotiates, within the configured time limit; resumes `resume` if the
/// server still has it, or binds a new session.
pub(crate) async fn connect(
    config: &Config,
    resume: Option<&ResumeFrom>,
) -> Result<Connected, ConnectError> {
    tokio::time::timeout(config.connect_timeout, negotiate(config, resume))
        .await
        .map_err(|_| ConnectError::Timeout(config.connect_timeout))?
}

fn protocol(what: impl Into<String>) -> ConnectError {
    ConnectError::Protocol(what.into())
}

async fn tls_handshake(
    config: &Config,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ConnectError> {
    let tls_config = config.trust.client_config()?;
    let name = ServerName::try_from(config.server_name())
        .map_err(|e| ConnectError::Tls(format!("server name: {e}")))?;
    tokio_rustls::TlsConnector::from(tls_config)
        .connect(name, tcp)
        .await
        .map_err(|e| ConnectError::Tls(e.to_string()))
}

/// A stream up to the point where authentication would start: TLS done (unless plaintext),
/// features read.
pub(crate) struct Secured {
    pub(crate) framed: Transport,
    pub(crate) features: Element,
    pub(crate) tls: bool,
}

/// Connects, and negotiates TLS as configured; stops before SASL.
pub(crate) async fn secure(config: &Config) -> Result<Secured, ConnectError> {
    let tcp = tcp_connect(config).await?;
    tcp.set_nodelay(true)?;
    let mut tls = config.tls == TlsMode::Direct;
    let io = if tls {
        Either::Right(tls_handshake(config, tcp).await?)
    } else {
        Either::Left(tcp)
    };
    let mut framed = Framed::new(io, StreamCodec::new(config.format));
    loop {
        let features = open(&mut framed, config.jid.domain()).await?;
        if !tls && config.tls == TlsMode::StartTls {
            framed = starttls(config, framed, &features).await?;
            tls = true;
            continue;
        }
        return Ok(Secured {
            framed,
            features,
            tls,
        });
    }
}

async fn starttls(
    config: &Config,
    mut framed: Transport,
    features: &Element,
) -> Result<Transport, ConnectError> {
    if !features.has_child("starttls", ns::XMPP_TLS.as_ref()) {
        return Err(ConnectError::Tls(
            "the server does not offer STARTTLS".into(),
        ));
    }
    send(&mut framed, Element::bare("starttls", ns::XMPP_TLS)).await?;
    let answer = next_element(&mut framed).await?;
    if !answer.is("proceed", ns::XMPP_TLS.as_ref()) {
        return Err(ConnectError::Tls(format!(
            "STARTTLS refused: <{}/>",
            answer.name()
        )));
    }
    let parts = framed.into_parts();
    if !parts.read_buf.is_empty() {
        return Err(protocol("data after <proceed/>"));
    }
    let Either::Left(tcp) = parts.io else {
        return Err(protocol("STARTTLS on an encrypted stream"));
    };
    let io = Either::Right(tls_handshake(config, tcp).await?);
    Ok(Framed::new(io, StreamCodec::new(config.format)))
}

/// Sends a request on a stream that is not authenticated and reads its answer (the server
/// sends nothing else before authentication).
pub(crate) async fn pre_auth_request(
    framed: &mut Transport,
    iq: lithos_core::stanza::Iq,
) -> Result<lithos_core::stanza::Iq, ConnectError> {
    let id = iq.id.clone();
    send(framed, iq.into()).await?;
    loop {
        let el = next_element(framed).await?;
        if el.name() == "iq" && el.attr("id") == Some(&*id) {
            return lithos_core::stanza::Iq::try_from(el)
                .map_err(|e| protocol(format!("an invalid answer: {e}")));
        }
    }
}

/// Closes a stream politely.
pub(crate) async fn close_stream(framed: &mut Transport) {
    if framed.send(StreamEvent::Close).await.is_ok() {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
            while let Some(Ok(ev)) = framed.next().await {
                if ev == StreamEvent::Close {
                    break;
                }
            }
        })
        .await;
    }
}

async fn negotiate(
    config: &Config,
    resume: Option<&ResumeFrom>,
) -> Result<Connected, ConnectError> {
    let Secured {
        mut framed,
        features,
        tls,
    } = secure(config).await?;
    authenticate(&mut framed, &features, tls, config).await?;
    // SASL success restarts the stream.
    let features = open(&mut framed, config.jid.domain()).await?;
    let sm_offered = config.stream_management && features.get_child("sm", lithos_sm::NS).is_some();
    let csi = features.get_child("csi", lithos_csi::NS).is_some();
    if sm_offered && let Some(r) = resume {
        send(
            &mut framed,
            lithos_sm::Resume {
                previd: r.id.clone(),
                h: r.h,
            }
            .into_element(),
        )
        .await?;
        let answer = next_element(&mut framed).await?;
        if lithos_sm::Resumed::matches(&answer) {
            let resumed = lithos_sm::Resumed::from_element(answer)
                .map_err(|e| protocol(format!("<resumed/>: {e}")))?;
            return Ok(Connected {
                framed,
                jid: r.jid.clone(),
                sm: SmStart::Resumed { h: resumed.h },
                early: Vec::new(),
                csi,
            });
        }
        if !lithos_sm::Failed::matches(&answer) {
            return Err(unexpected(answer));
        }
        tracing::info!("the server no longer has the session; starting a new one");
    }
    let jid = bind(&mut framed, &features, config).await?;
    let mut early = Vec::new();
    let sm = if sm_offered {
        enable(&mut framed, config.reconnect.is_some(), &mut early).await?
    } else {
        SmStart::Off
    };
    Ok(Connected {
        framed,
        jid,
        sm,
        early,
        csi,
    })
}

/// Turns stream management on, resumable when the client reconnects; stanzas read before
/// the answer go to `early`.
async fn enable(
    framed: &mut Transport,
    resume: bool,
    early: &mut Vec<Element>,
) -> Result<SmStart, ConnectError> {
    send(
        framed,
        lithos_sm::Enable { resume, max: None }.into_element(),
    )
    .await?;
    loop {
        let el = next_element(framed).await?;
        if lithos_sm::Enabled::matches(&el) {
            let enabled = lithos_sm::Enabled::from_element(el)
                .map_err(|e| protocol(format!("<enabled/>: {e}")))?;
            return Ok(SmStart::Enabled {
                id: enabled.id.filter(|_| enabled.resume),
            });
        }
        if lithos_sm::Failed::matches(&el) {
            tracing::info!(answer = %el, "the server refused stream management");
            return Ok(SmStart::Off);
        }
        if lithos_core::stanza::is_stanza(&el) && early.len() < 64 {
            early.push(el);
        } else {
            return Err(unexpected(el));
        }
    }
}

/// The TCP connection: to the configured address, or (with the `srv` feature and no
/// address) to the first SRV target that answers, or to the domain itself.
async fn tcp_connect(config: &Config) -> Result<TcpStream, ConnectError> {
    #[cfg(feature = "srv")]
    if config.address.is_none() {
        let direct = config.tls == TlsMode::Direct;
        let targets = crate::srv::targets(config.jid.domain(), direct)
            .await
            .map_err(|_| protocol("DNS says the domain offers no XMPP client service"))?;
        let mut last = None;
        for (host, port) in targets {
            match TcpStream::connect((host.as_str(), port)).await {
                Ok(t) => return Ok(t),
                Err(e) => last = Some(e),
            }
        }
        if let Some(e) = last {
            return Err(ConnectError::Io(e));
        }
    }
    Ok(TcpStream::connect(config.address()).await?)
}

/// Sends a stream header and reads the server's header and features.
async fn open(framed: &mut Transport, domain: &str) -> Result<Element, ConnectError> {
    framed.codec_mut().reset_decoder();
    framed
        .send(StreamEvent::from(
            StreamHeader::client().to(domain.to_string()),
        ))
        .await
        .map_err(codec_error)?;
    loop {
        match framed.next().await {
            Some(Ok(StreamEvent::Header(_))) => break,
            Some(Ok(StreamEvent::KeepAlive)) => {}
            Some(Ok(StreamEvent::Element(el))) => return Err(unexpected(el)),
            Some(Ok(StreamEvent::Close)) => return Err(protocol("the server closed the stream")),
            Some(Err(e)) => return Err(codec_error(e)),
            None => return Err(eof()),
        }
    }
    let features = next_element(framed).await?;
    if !features.is("features", ns::STREAMS.as_ref()) {
        return Err(unexpected(features));
    }
    Ok(features)
}

fn eof() -> ConnectError {
    ConnectError::Io(std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "the server closed the connection",
    ))
}

pub(crate) fn codec_error(e: lithos_core::CodecError) -> ConnectError {
    match e {
        lithos_core::CodecError::Io(e) => ConnectError::Io(e),
        other => ConnectError::Protocol(other.to_string()),
    }
}

/// A stream error as the error it is; anything else as a protocol error.
fn unexpected(el: Element) -> ConnectError {
    match stream_error(&el) {
        Some(e) => ConnectError::Stream(Box::new(e)),
        None => protocol(format!("unexpected <{}/> in {}", el.name(), el.ns())),
    }
}

pub(crate) fn stream_error(el: &Element) -> Option<StreamError> {
    el.is("error", ns::STREAMS.as_ref())
        .then(|| StreamError::from_element(el).ok())
        .flatten()
}

async fn send(framed: &mut Transport, el: Element) -> Result<(), ConnectError> {
    framed
        .send(StreamEvent::Element(el))
        .await
        .map_err(codec_error)
}

/// The next element; a stream error or the end of the stream is an error.
async fn next_element(framed: &mut Transport) -> Result<Element, ConnectError> {
    loop {
        match framed.next().await {
            Some(Ok(StreamEvent::Element(el))) => {
                if let Some(e) = stream_error(&el) {
                    return Err(ConnectError::Stream(Box::new(e)));
                }
                return Ok(el);
            }
            Some(Ok(StreamEvent::KeepAlive)) => {}
            Some(Ok(StreamEvent::Header(_))) => return Err(protocol("unexpected stream header")),
            Some(Ok(StreamEvent::Close)) => return Err(protocol("the server closed the stream")),
            Some(Err(e)) => return Err(codec_error(e)),
            None => return Err(eof()),
        }
    }
}

fn sasl(name: &str, data: Option<&[u8]>) -> Element {
    let mut b = Element::builder(name.to_string(), ns::XMPP_SASL);
    if let Some(d) = data {
        // An empty payload is written as "=" (RFC 6120 §6.4.2).
        b = b.text(if d.is_empty() {
            "=".to_string()
        } else {
            B64.encode(d)
        });
    }
    b.build()
}

fn sasl_data(el: &Element) -> Result<Vec<u8>, ConnectError> {
    let t = el.text();
    let t = t.trim();
    if t.is_empty() || t == "=" {
        return Ok(Vec::new());
    }
    B64.decode(t)
        .map_err(|_| protocol("SASL data that is not base64"))
}

fn failure(el: &Element) -> ConnectError {
    let condition = el
        .children()
        .find(|c| c.name() != "text")
        .map(|c| c.name().to_string())
        .unwrap_or_else(|| "not-authorized".into());
    let text = el
        .get_child("text", ns::XMPP_SASL.as_ref())
        .map(|t| t.text().to_string());
    ConnectError::Auth { condition, text }
}

async fn authenticate(
    framed: &mut Transport,
    features: &Element,
    tls: bool,
    config: &Config,
) -> Result<(), ConnectError> {
    let offered: Vec<String> = features
        .get_child("mechanisms", ns::XMPP_SASL.as_ref())
        .map(|m| m.children().map(|c| c.text().to_string()).collect())
        .unwrap_or_default();
    let Some(mech) = config.mechanisms.iter().copied().find(|m| {
        offered.iter().any(|o| o == m.name())
            && (*m != Mechanism::Plain || tls || config.allow_plain_without_tls)
    }) else {
        return Err(ConnectError::NoMechanism(offered));
    };
    let user = config
        .jid
        .local()
        .ok_or_else(|| ConnectError::InvalidJid(config.jid.to_string()))?;
    let auth = |data: &[u8]| {
        let mut a = sasl("auth", Some(data));
        a.set_attr("mechanism", mech.name());
        a
    };
    let Some(hash) = mech.scram_hash() else {
        let msg = lithos_sasl::plain_message(None, user, &config.password);
        send(framed, auth(&msg)).await?;
        let answer = next_element(framed).await?;
        return match answer.name() {
            "success" => Ok(()),
            "failure" => Err(failure(&answer)),
            other => Err(protocol(format!("unexpected <{other}/> during SASL"))),
        };
    };
    let client =
        ScramClient::new(hash, user, &config.password).map_err(|e| ConnectError::Auth {
            condition: "not-authorized".into(),
            text: Some(e.to_string()),
        })?;
    send(framed, auth(client.client_first().as_bytes())).await?;
    let challenge = next_element(framed).await?;
    match challenge.name() {
        "challenge" => {}
        "failure" => return Err(failure(&challenge)),
        other => return Err(protocol(format!("unexpected <{other}/> during SASL"))),
    }
    let fin = client
        .server_first(&sasl_data(&challenge)?)
        .map_err(|e| protocol(format!("SCRAM: the server's first message: {e}")))?;
    send(framed, sasl("response", Some(fin.message().as_bytes()))).await?;
    let mut answer = next_element(framed).await?;
    if answer.name() == "challenge" {
        // Some servers send the signature in a last challenge and an empty success.
        fin.verify_server_final(&sasl_data(&answer)?)
            .map_err(|_| protocol("SCRAM: the server could not prove it knows the password"))?;
        send(framed, sasl("response", None)).await?;
        answer = next_element(framed).await?;
        return match answer.name() {
            "success" => Ok(()),
            "failure" => Err(failure(&answer)),
            other => Err(protocol(format!("unexpected <{other}/> during SASL"))),
        };
    }
    match answer.name() {
        "success" => fin
            .verify_server_final(&sasl_data(&answer)?)
            .map_err(|_| protocol("SCRAM: the server could not prove it knows the password")),
        "failure" => Err(failure(&answer)),
        other => Err(protocol(format!("unexpected <{other}/> during SASL"))),
    }
}

async fn bind(
    framed: &mut Transport,
    features: &Element,
    config: &Config,
) -> Result<Jid, ConnectError> {
    if !features.has_child("bind", ns::XMPP_BIND.as_ref()) {
        return Err(protocol("the server offers no resource binding"));
    }
    let mut b = Element::bare("bind", ns::XMPP_BIND);
    if let Some(r) = config.jid.resource() {
        b.append_child(
            Element::builder("resource", ns::XMPP_BIND)
                .text(r.to_string())
                .build(),
        );
    }
    let iq = |id: &str, payload: Element| {
        Element::builder("iq", ns::JABBER_CLIENT)
            .attr("type", "set")
            .attr("id", id.to_string())
            .child(payload)
            .build()
    };
    send(framed, iq("bind-1", b)).await?;
    let answer = next_element(framed).await?;
    if answer.attr("id") != Some("bind-1") || answer.attr("type") != Some("result") {
        return Err(protocol(format!("resource binding refused: {answer}")));
    }
    let jid = answer
        .get_child("bind", ns::XMPP_BIND.as_ref())
        .and_then(|b| b.get_child("jid", ns::XMPP_BIND.as_ref()))
        .and_then(|j| Jid::new(j.text().trim()).ok())
        .filter(|j| j.resource().is_some() && j.bare_eq(&config.jid))
        .ok_or_else(|| protocol(format!("the bound address is missing or foreign: {answer}")))?;
    // RFC 3921 sessions, for old servers that still require them.
    if let Some(s) = features.get_child("session", ns::XMPP_SESSION.as_ref())
        && !s.has_child("optional", ns::XMPP_SESSION.as_ref())
    {
        send(
            framed,
            iq("session-1", Element::bare("session", ns::XMPP_SESSION)),
        )
        .await?;
        let answer = next_element(framed).await?;
        if answer.attr("type") != Some("result") {
            return Err(protocol(format!("session establishment refused: {answer}")));
        }
    }
    Ok(jid)
}
