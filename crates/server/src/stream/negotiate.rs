//! Stream negotiation: header checks, STARTTLS, SASL, resource binding.

use base64::Engine;
use hmac::{KeyInit, Mac};
use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_core::{Element, Jid, StreamError, StreamErrorCondition, StreamEvent, StreamHeader, ns};
use std::sync::OnceLock;

use super::{Bound, Conn, ConnError};
use crate::sasl::{self, ClientFirst, Mechanism, SaslError, ScramCredential, ScramHash};
use crate::session::SessionInfo;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn stream_err(c: StreamErrorCondition, text: &str) -> ConnError {
    ConnError::Stream(Box::new(StreamError::new(c).with_text(text.to_string())))
}

/// A secret for this process, so decoy SCRAM parameters for unknown users are stable but not
/// predictable.
fn process_secret() -> &'static [u8; 32] {
    static SECRET: OnceLock<[u8; 32]> = OnceLock::new();
    SECRET.get_or_init(|| {
        let mut s = [0u8; 32];
        rand::fill(&mut s[..]);
        s
    })
}

fn keyed(label: &str, user: &str) -> Vec<u8> {
    let mut m = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(process_secret())
        .expect("HMAC takes keys of any length");
    m.update(label.as_bytes());
    m.update(user.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// SCRAM parameters for a user that does not exist: stable per name, unpredictable, with the
/// iteration count new accounts get, so the exchange looks like a real one.
fn decoy(hash: ScramHash, user: &str, iterations: u32) -> ScramCredential {
    let len = if hash == ScramHash::Sha1 { 20 } else { 32 };
    ScramCredential {
        salt: keyed("salt", user)[..16].to_vec(),
        iterations,
        stored_key: keyed("stored", user)[..len].to_vec(),
        server_key: keyed("server", user)[..len].to_vec(),
    }
}

/// Whether `password` is the account `username`'s (SASL PLAIN, HTTP Basic), checked against
/// its stored SCRAM keys off the async threads. An unknown user costs the same PBKDF2 as a
/// known one, so the time taken does not tell which names exist.
pub(crate) async fn password_matches(
    server: &crate::ServerHandle,
    username: &str,
    password: String,
) -> Result<bool, crate::storage::StorageError> {
    let creds = server.storage().accounts.credentials(username).await?;
    let known = creds.is_some();
    let creds = creds.unwrap_or_else(|| decoy_credentials(server, username));
    let ok = tokio::task::spawn_blocking(move || creds.verify_password(&password))
        .await
        .unwrap_or(false);
    Ok(ok && known)
}

/// Credentials no password matches, for checking PLAIN against an unknown user.
fn decoy_credentials(server: &crate::ServerHandle, user: &str) -> sasl::Credentials {
    let iterations = server.config().accounts.pbkdf2_iterations;
    sasl::Credentials {
        sha1: decoy(ScramHash::Sha1, user, iterations),
        sha256: decoy(ScramHash::Sha256, user, iterations),
    }
}

enum Phase {
    /// Waiting for `<auth/>`.
    Start,
    /// A SCRAM exchange waiting for the client's final message.
    Scram {
        state: Box<crate::sasl::ServerFirst>,
        username: String,
    },
}

/// Where negotiation got to.
pub(crate) enum Negotiated {
    /// A resource is bound: the session can start.
    Bound(Bound),
    /// The client asked for TLS and was told to proceed: upgrade, then negotiate again.
    StartTls,
}

impl Conn {
    /// Runs negotiation up to a bound resource, or up to a STARTTLS upgrade.
    pub(crate) async fn negotiate(&mut self) -> Result<Negotiated, ConnError> {
        loop {
            // A new stream: the client's header, then ours and the features.
            let header = match self.next_event().await? {
                StreamEvent::Header(h) => h,
                StreamEvent::KeepAlive => continue,
                _ => {
                    return Err(stream_err(
                        StreamErrorCondition::NotWellFormed,
                        "expected a stream header",
                    ));
                }
            };
            self.check_header(&header)?;
            self.send_header(header.from.as_deref()).await?;
            let features = self.features(self.authenticated.is_some());
            self.send(&features).await?;
            // Negotiate one feature; a restart begins a new stream.
            if let Some(next) = self.negotiate_stream().await? {
                return Ok(next);
            }
        }
    }

    fn check_header(&self, h: &StreamHeader) -> Result<(), ConnError> {
        if let Err(c) = h.check() {
            return Err(stream_err(
                c,
                "the stream namespace must be http://etherx.jabber.org/streams and the content namespace jabber:client",
            ));
        }
        if h.content_ns != ns::JABBER_CLIENT {
            return Err(stream_err(
                StreamErrorCondition::InvalidNamespace,
                "only jabber:client streams are served",
            ));
        }
        match h.version.as_deref() {
            Some(v) if v.split('.').next() == Some("1") => {}
            _ => {
                return Err(stream_err(
                    StreamErrorCondition::UnsupportedVersion,
                    "version 1.0 is required",
                ));
            }
        }
        match h.to.as_deref() {
            None => {}
            Some(to) => match Jid::new(to) {
                Ok(j) if j == *self.server.domain() => {}
                _ => {
                    return Err(stream_err(
                        StreamErrorCondition::HostUnknown,
                        "this server does not serve that domain",
                    ));
                }
            },
        }
        Ok(())
    }

    fn mechanisms(&self) -> Vec<Mechanism> {
        let c = &self.server.config().c2s;
        let mut m = vec![Mechanism::ScramSha256, Mechanism::ScramSha1];
        if self.tls || c.allow_plain_without_tls {
            m.push(Mechanism::Plain);
        }
        m
    }

    fn features(&self, authenticated: bool) -> Element {
        let c = &self.server.config().c2s;
        let mut f = Element::bare("features", ns::STREAMS);
        if authenticated {
            f.append_child(Element::bare("bind", ns::XMPP_BIND));
            f.append_child(
                Element::builder("session", ns::XMPP_SESSION)
                    .child(Element::bare("optional", ns::XMPP_SESSION))
                    .build(),
            );
            if self.server.config().stream_management.enabled {
                f.append_child(lithos_core::Payload::into_element(lithos_sm::Feature));
            }
            if self.server.config().csi.enabled {
                f.append_child(lithos_core::Payload::into_element(lithos_csi::Feature));
            }
            for extra in self.server.modules().stream_features() {
                if self.encodable(&extra) {
                    f.append_child(extra);
                }
            }
            return f;
        }
        if !self.tls && self.server.0.tls.is_some() && !self.framed.is_websocket() {
            let mut tls = Element::bare("starttls", ns::XMPP_TLS);
            if c.require_tls {
                tls.append_child(Element::bare("required", ns::XMPP_TLS));
            }
            f.append_child(tls);
        }
        if self.tls || !c.require_tls {
            let mut m = Element::bare("mechanisms", ns::XMPP_SASL);
            for mech in self.mechanisms() {
                m.append_child(
                    Element::builder("mechanism", ns::XMPP_SASL)
                        .text(mech.name())
                        .build(),
                );
            }
            f.append_child(m);
            for extra in self.server.modules().pre_auth_features(self.listener) {
                if self.encodable(&extra) {
                    f.append_child(extra);
                }
            }
        }
        f
    }

    /// Whether this stream can carry `el`: always in XML; in BXMPP only if every name has a
    /// code (a feature the client cannot be told about is left out, not the whole list).
    fn encodable(&self, el: &Element) -> bool {
        self.framed.encodable(el)
    }

    /// Handles the elements of one stream until it restarts (`Ok(None)`) or a resource is
    /// bound (`Ok(Some)`).
    async fn negotiate_stream(&mut self) -> Result<Option<Negotiated>, ConnError> {
        let mut phase = Phase::Start;
        loop {
            let el = match self.next_event().await? {
                StreamEvent::Element(el) => el,
                StreamEvent::KeepAlive => continue,
                StreamEvent::Close => {
                    let _ = self.close_stream().await;
                    return Err(ConnError::Closed);
                }
                StreamEvent::Header(_) => {
                    return Err(stream_err(
                        StreamErrorCondition::NotWellFormed,
                        "unexpected stream header",
                    ));
                }
            };
            let (name, el_ns) = (el.name().to_string(), el.ns().to_string());
            match (el_ns.as_str(), name.as_str()) {
                ("urn:ietf:params:xml:ns:xmpp-tls", "starttls")
                    if !self.tls
                        && self.authenticated.is_none()
                        && self.server.0.tls.is_some()
                        && !self.framed.is_websocket() =>
                {
                    self.send(&Element::bare("proceed", ns::XMPP_TLS)).await?;
                    return Ok(Some(Negotiated::StartTls));
                }
                ("urn:ietf:params:xml:ns:xmpp-sasl", "auth") if self.authenticated.is_none() => {
                    self.refuse_if_banned()?;
                    if self.server.config().c2s.require_tls && !self.tls {
                        self.sasl_failure(SaslError::EncryptionRequired).await?;
                        continue;
                    }
                    match self.auth_start(&el).await {
                        Ok(AuthStep::Success(user, extra)) => {
                            self.sasl_success(extra).await?;
                            self.ticket.authenticated();
                            self.authenticated = Some(user);
                            self.framed.reset_decoder();
                            return Ok(None);
                        }
                        Ok(AuthStep::Challenge(data, p)) => {
                            phase = p;
                            self.send(
                                &Element::builder("challenge", ns::XMPP_SASL)
                                    .text(B64.encode(data))
                                    .build(),
                            )
                            .await?;
                        }
                        Err(e) => self.auth_failed(e).await?,
                    }
                }
                ("urn:ietf:params:xml:ns:xmpp-sasl", "response")
                    if self.authenticated.is_none() =>
                {
                    match std::mem::replace(&mut phase, Phase::Start) {
                        Phase::Scram { state, username } => {
                            let data = match decode_b64(&el.text()) {
                                Ok(d) => d,
                                Err(e) => {
                                    self.auth_failed(e).await?;
                                    continue;
                                }
                            };
                            match state.client_final(&data) {
                                Ok(server_final) => {
                                    self.sasl_success(Some(server_final)).await?;
                                    self.ticket.authenticated();
                                    self.authenticated = Some(username);
                                    self.framed.reset_decoder();
                                    return Ok(None);
                                }
                                Err(e) => self.auth_failed(e).await?,
                            }
                        }
                        Phase::Start => self.auth_failed(SaslError::MalformedRequest).await?,
                    }
                }
                ("urn:ietf:params:xml:ns:xmpp-sasl", "abort") => {
                    // An abort counts as a failed attempt: otherwise a client could have the
                    // server answer aborts forever.
                    phase = Phase::Start;
                    self.auth_failed(SaslError::Aborted).await?;
                }
                ("jabber:client", "iq")
                    if self.authenticated.is_none()
                        && (self.tls || !self.server.config().c2s.require_tls) =>
                {
                    self.pre_auth_iq(el).await?;
                }
                (lithos_sm::NS, "resume") if self.authenticated.is_some() => {
                    let user = self.authenticated.clone().unwrap_or_default();
                    let account = format!("{user}@{}", self.server.domain().domain());
                    if let Some(b) = self.resume(el, &account).await? {
                        return Ok(Some(Negotiated::Bound(b)));
                    }
                }
                // Stream management starts once a resource is bound (XEP-0198 §3).
                (lithos_sm::NS, "enable") if self.authenticated.is_some() => {
                    self.send(&lithos_core::Payload::into_element(lithos_sm::Failed::new(
                        DefinedCondition::UnexpectedRequest,
                        None,
                    )))
                    .await?;
                }
                ("jabber:client", "iq") if self.authenticated.is_some() => {
                    let user = self.authenticated.clone().unwrap_or_default();
                    if let Some(b) = self.bind_or_session(&el, &user).await? {
                        return Ok(Some(Negotiated::Bound(b)));
                    }
                }
                _ => {
                    return Err(stream_err(
                        StreamErrorCondition::NotAuthorized,
                        "authenticate and bind a resource first",
                    ));
                }
            }
        }
    }

    /// An iq before authentication: answered by the module that claimed its namespace for
    /// [`IqTarget::PreAuth`](crate::IqTarget::PreAuth) (in-band registration), or refused.
    async fn pre_auth_iq(&mut self, el: Element) -> Result<(), ConnError> {
        let is_set = match el.attr("type") {
            Some("get") => false,
            Some("set") => true,
            // Results and errors answer nothing the server asked: ignored.
            Some("result" | "error") => return Ok(()),
            _ => {
                return Err(stream_err(
                    StreamErrorCondition::NotAuthorized,
                    "authenticate and bind a resource first",
                ));
            }
        };
        let mut payloads = el.children();
        let (Some(payload), None) = (payloads.next().cloned(), payloads.next()) else {
            return Err(stream_err(
                StreamErrorCondition::NotAuthorized,
                "authenticate and bind a resource first",
            ));
        };
        let Some(handler) = self
            .server
            .modules()
            .iq_handler(payload.ns(), crate::IqTarget::PreAuth)
            .cloned()
        else {
            // Nothing is served before authentication but what a module offers.
            return Err(stream_err(
                StreamErrorCondition::NotAuthorized,
                "authenticate and bind a resource first",
            ));
        };
        let server = self.server.clone();
        let req = crate::IqRequest {
            is_set,
            id: el.attr("id").unwrap_or_default().to_string(),
            from: server.domain().clone(),
            to: server.domain().clone(),
            payload,
            session: None,
            peer: Some(self.peer),
            listener: self.listener,
        };
        let reply = match handler.handle_iq(&server, req).await {
            Ok(result) => {
                let mut r = Element::builder("iq", ns::JABBER_CLIENT)
                    .attr("type", "result")
                    .attr("id", el.attr("id").unwrap_or_default())
                    .build();
                if let Some(p) = result {
                    r.append_child(p);
                }
                r
            }
            Err(e) => iq_error(&el, e),
        };
        self.send(&reply).await
    }

    async fn sasl_success(&mut self, extra: Option<Vec<u8>>) -> Result<(), ConnError> {
        let mut s = Element::bare("success", ns::XMPP_SASL);
        if let Some(d) = extra {
            s.append_text(B64.encode(d));
        }
        self.send(&s).await?;
        self.header_sent = false;
        tracing::debug!("authenticated");
        Ok(())
    }

    async fn sasl_failure(&mut self, e: SaslError) -> Result<(), ConnError> {
        let f = Element::builder("failure", ns::XMPP_SASL)
            .child(Element::bare(e.condition(), ns::XMPP_SASL))
            .build();
        self.send(&f).await
    }

    /// A failed attempt (an abort included): answered after a delay that grows with recent
    /// failures from this address; too many on one connection end it, and too many from one
    /// address ban the address for a while (`[limits] auth_ban_*`).
    async fn auth_failed(&mut self, e: SaslError) -> Result<(), ConnError> {
        self.auth_failures += 1;
        let failures = self.auth_failures;
        tracing::info!(
            condition = e.condition(),
            attempt = failures,
            "authentication failed"
        );
        let delay = self.server.0.admission.failed(self.peer.ip());
        tokio::time::sleep(delay).await;
        self.sasl_failure(e).await?;
        if failures >= self.server.config().c2s.max_auth_failures {
            return Err(stream_err(
                StreamErrorCondition::PolicyViolation,
                "too many failed authentication attempts",
            ));
        }
        self.refuse_if_banned()
    }

    /// Ends the stream if this address is banned (it may have been banned by failures on
    /// other connections since this one opened).
    fn refuse_if_banned(&self) -> Result<(), ConnError> {
        if self.server.0.admission.is_banned(self.peer.ip()) {
            return Err(stream_err(
                StreamErrorCondition::PolicyViolation,
                "too many failed authentications from this address; try again later",
            ));
        }
        Ok(())
    }

    async fn auth_start(&mut self, el: &Element) -> Result<AuthStep, SaslError> {
        let mech = el
            .attr("mechanism")
            .and_then(Mechanism::from_name)
            .filter(|m| self.mechanisms().contains(m))
            .ok_or(SaslError::InvalidMechanism)?;
        let text = el.text();
        let initial = decode_b64(&text)?;
        let accounts = self.server.storage().accounts.clone();
        match mech.scram_hash() {
            Some(hash) => {
                let first = ClientFirst::parse(hash, &initial)?;
                let username = sasl_username(&first.username)?;
                self.check_authzid(first.authzid.as_deref(), &username)?;
                let cred = accounts
                    .credentials(&username)
                    .await
                    .map_err(|_| SaslError::TemporaryAuthFailure)?
                    .map(|c| c.for_hash(hash).clone());
                let mut nonce = [0u8; 18];
                rand::fill(&mut nonce[..]);
                let (msg, state) = first.server_first(
                    cred,
                    decoy(
                        hash,
                        &username,
                        self.server.config().accounts.pbkdf2_iterations,
                    ),
                    &B64.encode(nonce),
                );
                Ok(AuthStep::Challenge(
                    msg,
                    Phase::Scram {
                        state: Box::new(state),
                        username,
                    },
                ))
            }
            None => {
                let p = sasl::parse_plain(&initial)?;
                let username = sasl_username(&p.authcid)?;
                self.check_authzid(p.authzid.as_deref(), &username)?;
                let ok = password_matches(&self.server, &username, p.password)
                    .await
                    .map_err(|_| SaslError::TemporaryAuthFailure)?;
                if ok {
                    Ok(AuthStep::Success(username, None))
                } else {
                    Err(SaslError::NotAuthorized)
                }
            }
        }
    }

    fn check_authzid(&self, authzid: Option<&str>, username: &str) -> Result<(), SaslError> {
        match authzid {
            None => Ok(()),
            Some(z) => match Jid::new(z) {
                Ok(j) if j.is_bare() && j.local() == Some(username) && self.server.is_local(&j) => {
                    Ok(())
                }
                _ => Err(SaslError::InvalidAuthzid),
            },
        }
    }

    /// Resource binding (RFC 6120 §7) and the legacy session iq (RFC 3921).
    async fn bind_or_session(
        &mut self,
        el: &Element,
        username: &str,
    ) -> Result<Option<Bound>, ConnError> {
        let id = el.attr("id").unwrap_or_default().to_string();
        let reply = |payload: Option<Element>| {
            let mut r = Element::builder("iq", ns::JABBER_CLIENT)
                .attr("type", "result")
                .attr("id", id.clone())
                .build();
            if let Some(p) = payload {
                r.append_child(p);
            }
            r
        };
        let error = |e: StanzaError| {
            lithos_core::stanza::error_reply(el, &e).unwrap_or_else(|| reply(None))
        };
        if el.attr("type") != Some("set") {
            self.send(&error(StanzaError::new(DefinedCondition::NotAuthorized)))
                .await?;
            return Ok(None);
        }
        if el.has_child("session", ns::XMPP_SESSION.as_ref()) {
            self.send(&reply(None)).await?;
            return Ok(None);
        }
        let Some(bind) = el.get_child("bind", ns::XMPP_BIND.as_ref()) else {
            self.send(&error(StanzaError::new(DefinedCondition::NotAuthorized)))
                .await?;
            return Ok(None);
        };
        let bare = match Jid::from_parts(Some(username), self.server.domain().domain(), None) {
            Ok(j) => j,
            Err(_) => {
                return Err(stream_err(
                    StreamErrorCondition::InternalServerError,
                    "bad account name",
                ));
            }
        };
        let wanted = bind
            .get_child("resource", ns::XMPP_BIND.as_ref())
            .map(|r| r.text())
            .filter(|r| !r.is_empty());
        let jid = match wanted {
            Some(r) => match bare.with_resource(&r) {
                Ok(j) => j,
                Err(_) => {
                    self.send(&error(
                        StanzaError::new(DefinedCondition::BadRequest)
                            .with_text("invalid resource"),
                    ))
                    .await?;
                    return Ok(None);
                }
            },
            None => {
                let r = crate::ids::random_hex::<6>();
                bare.with_resource(&format!("lithos-{r}")).map_err(|_| {
                    stream_err(StreamErrorCondition::InternalServerError, "resource")
                })?
            }
        };
        let info = SessionInfo {
            id: self.server.sessions().next_id(),
            jid: jid.clone(),
            tls: self.tls,
            format: self.format(),
            peer: self.peer,
            listener: self.listener,
        };
        let outbox = std::sync::Arc::new(crate::outbox::Outbox::new(
            self.server.config().c2s.outbound_queue,
        ));
        let max = self.server.config().limits.max_resources_per_account;
        match self
            .server
            .sessions()
            .bind(info.clone(), outbox.clone(), max)
        {
            Ok(Some(old)) => {
                tracing::info!(jid = %old.jid, "replaced by a new session for the same resource")
            }
            Ok(None) => {}
            Err(crate::session::TooManyResources) => {
                tracing::info!(account = %bare, max, "too many resources; bind refused");
                self.send(&error(StanzaError::explained(
                    DefinedCondition::ResourceConstraint,
                    format!("this account has {max} sessions already"),
                )))
                .await?;
                return Ok(None);
            }
        }
        self.send(&reply(Some(
            Element::builder("bind", ns::XMPP_BIND)
                .child(
                    Element::builder("jid", ns::XMPP_BIND)
                        .text(jid.as_shared().clone())
                        .build(),
                )
                .build(),
        )))
        .await?;
        tracing::info!(jid = %jid, tls = self.tls, format = ?self.format(), "session bound");
        Ok(Some(Bound::new(info, outbox)))
    }
}

enum AuthStep {
    Success(String, Option<Vec<u8>>),
    Challenge(Vec<u8>, Phase),
}

/// SASL data: `=` is an empty response; anything else is base64.
fn decode_b64(text: &str) -> Result<Vec<u8>, SaslError> {
    let t = text.trim();
    if t.is_empty() || t == "=" {
        return Ok(Vec::new());
    }
    B64.decode(t).map_err(|_| SaslError::IncorrectEncoding)
}

/// A SASL user name as an account name (a prepared localpart).
fn sasl_username(name: &str) -> Result<String, SaslError> {
    lithos_core::jid::prep_local(name)
        .map(|c| c.into_owned())
        .map_err(|_| SaslError::NotAuthorized)
}

/// An error reply to a get or set iq, without the request's payload (it may hold a password).
fn iq_error(iq: &Element, e: StanzaError) -> Element {
    lithos_core::stanza::error_reply_without_payload(iq, &e).unwrap_or_else(|| {
        // Only errors have no error reply, and callers pass gets and sets.
        Element::bare("iq", ns::JABBER_CLIENT)
    })
}
