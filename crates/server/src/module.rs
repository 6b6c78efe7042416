//! The module host: everything above the kernel is a module that registers itself through
//! `inventory`, and the server names none of them.
//!
//! An extension crate implements [`Module`] and submits a [`ModuleRegistration`]:
//!
//! ```
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use lithos_core::Element;
//! use lithos_server::module::{IqClaim, IqRequest, IqResponse, IqTarget, Module, ModuleRegistration};
//! use lithos_server::ServerHandle;
//!
//! struct Echo;
//!
//! #[async_trait]
//! impl Module for Echo {
//!     fn iq_claims(&self) -> Vec<IqClaim> {
//!         vec![IqClaim { ns: "urn:example:echo", target: IqTarget::Server }]
//!     }
//!     async fn handle_iq(&self, _server: &ServerHandle, req: IqRequest) -> IqResponse {
//!         Ok(Some(req.payload.clone()))
//!     }
//! }
//!
//! lithos_core::extension! {
//!     module: ModuleRegistration {
//!         name: "echo",
//!         description: "answers urn:example:echo with the request's payload",
//!         depends_on: &[],
//!         enabled_by_default: true,
//!         build: |_ctx| Ok(Arc::new(Echo)),
//!     },
//! }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_core::{Element, Jid};

use crate::ServerHandle;

/// The future a module's [`Module::client_stanza`] hook returns for a stanza it handles.
pub type ClientStanzaHook<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Flow> + Send + 'a>>;
use crate::config::Config;
use crate::session::SessionInfo;

/// A stanza a bound client sent, as [`Module::client_stanza`] sees it.
#[derive(Clone, Copy)]
pub struct ClientStanza<'a> {
    /// The server.
    pub server: &'a ServerHandle,
    /// The session that sent it.
    pub session: &'a SessionInfo,
    /// The stanza, its addresses checked and `from` stamped.
    pub stanza: &'a Element,
}

impl<'a> ClientStanza<'a> {
    /// The server, the session and the stanza.
    pub fn parts(self) -> (&'a ServerHandle, &'a SessionInfo, &'a Element) {
        (self.server, self.session, self.stanza)
    }
}

/// Whom an iq namespace is answered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IqTarget {
    /// The server itself (`to` is the domain).
    Server,
    /// An account (`to` is a user's bare JID, or absent: the sender's own account).
    Account,
    /// A client that has not authenticated yet (in-band registration). Such iqs reach the
    /// module only on a stream that has TLS, or where the configuration does not require it;
    /// [`IqRequest::from`] is then the server's domain and [`IqRequest::session`] is `None`.
    PreAuth,
}

/// A module's claim to answer iqs whose payload has namespace `ns`, sent to `target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IqClaim {
    /// Payload namespace.
    pub ns: &'static str,
    /// For whom.
    pub target: IqTarget,
}

impl IqClaim {
    /// Iqs with a payload in `ns` addressed to the server.
    pub const fn server(ns: &'static str) -> IqClaim {
        IqClaim {
            ns,
            target: IqTarget::Server,
        }
    }

    /// Iqs with a payload in `ns` addressed to an account.
    pub const fn account(ns: &'static str) -> IqClaim {
        IqClaim {
            ns,
            target: IqTarget::Account,
        }
    }

    /// Iqs with a payload in `ns` before authentication.
    pub const fn pre_auth(ns: &'static str) -> IqClaim {
        IqClaim {
            ns,
            target: IqTarget::PreAuth,
        }
    }
}

/// An iq request (get or set) for a module.
#[derive(Debug, Clone)]
pub struct IqRequest {
    /// `get` or `set`.
    pub is_set: bool,
    /// The request id.
    pub id: String,
    /// The sender (a full JID for client requests, the domain for the server's own).
    pub from: Jid,
    /// The entity addressed: the domain, or an account's bare JID.
    pub to: Jid,
    /// The payload element.
    pub payload: Element,
    /// The sending session, when a local client sent it.
    pub session: Option<SessionInfo>,
    /// The client's network address, when a local client (bound or not) sent it.
    pub peer: Option<std::net::SocketAddr>,
    /// The listener the sender came through (`Client` for the server's own requests).
    pub listener: crate::session::Listener,
}

/// A module's answer: a result payload (or none), or a stanza error.
pub type IqResponse = Result<Option<Element>, StanzaError>;

/// What a hook decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on: other modules and the kernel's default handling see the stanza.
    Continue,
    /// The module took care of it; nothing else happens.
    Handled,
}

/// What a module's [`filter`](Module::filter) decides for a stanza on its way to a local
/// account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Deliver it (as far as this module is concerned).
    Deliver,
    /// Drop it without a word.
    Drop,
    /// Refuse it: its sender gets this error (nothing, for an error or a result).
    Refuse(Box<StanzaError>),
}

/// A server module. Every method has a default that does nothing, so a module implements
/// only what it needs.
#[async_trait]
pub trait Module: Send + Sync + 'static {
    /// The iq namespaces this module answers.
    fn iq_claims(&self) -> Vec<IqClaim> {
        Vec::new()
    }

    /// Answers an iq it claimed.
    async fn handle_iq(&self, _server: &ServerHandle, _req: IqRequest) -> IqResponse {
        Err(StanzaError::new(DefinedCondition::ServiceUnavailable))
    }

    /// Elements for `<stream:features/>` once a client is authenticated.
    fn stream_features(&self) -> Vec<Element> {
        Vec::new()
    }

    /// Elements for `<stream:features/>` before authentication on a connection that came
    /// through `listener`, offered once the stream is encrypted (or where the configuration
    /// does not require TLS).
    fn pre_auth_features(&self, _listener: crate::session::Listener) -> Vec<Element> {
        Vec::new()
    }

    /// Features for the server's disco#info.
    fn disco_features(&self) -> Vec<&'static str> {
        Vec::new()
    }

    /// Features for an account's disco#info (its bare JID), such as a message archive's.
    fn account_disco_features(&self) -> Vec<&'static str> {
        Vec::new()
    }

    /// Identities (category, type) for an account's disco#info beside
    /// `account/registered`, such as personal eventing's `pubsub/pep`.
    fn account_disco_identities(&self) -> Vec<(&'static str, &'static str)> {
        Vec::new()
    }

    /// Every stanza a bound client sends, after its addresses are checked and `from` stamped,
    /// before routing. A module that wants `stanza` returns the future that handles it;
    /// one that does not returns `None`, synchronously and without allocating, so a stanza
    /// no module cares about (most messages) costs each module one call (an async hook
    /// would allocate and move its whole future every time). The default wants nothing.
    ///
    /// ```
    /// # use lithos_server::{ClientStanza, ClientStanzaHook, Flow, Module, ServerHandle};
    /// # use lithos_core::Element;
    /// struct Pings;
    /// impl Pings {
    ///     async fn answer(&self, _server: &ServerHandle, _stanza: &Element) -> Flow {
    ///         Flow::Continue
    ///     }
    /// }
    /// #[async_trait::async_trait]
    /// impl Module for Pings {
    ///     fn client_stanza<'a>(&'a self, cx: ClientStanza<'a>) -> Option<ClientStanzaHook<'a>> {
    ///         (cx.stanza.name() == "iq").then(|| Box::pin(self.answer(cx.server, cx.stanza)) as _)
    ///     }
    /// }
    /// ```
    fn client_stanza<'a>(&'a self, _cx: ClientStanza<'a>) -> Option<ClientStanzaHook<'a>> {
        None
    }

    /// A message or presence addressed to a local account (its bare JID, or a full JID with no
    /// session where RFC 6121 treats it as the bare JID), before the kernel's default
    /// delivery. `exists` says whether the account exists.
    async fn to_account(
        &self,
        _server: &ServerHandle,
        _stanza: &Element,
        _account: &Jid,
        _exists: bool,
    ) -> Flow {
        Flow::Continue
    }

    /// Once, when the server has started and before it accepts connections: load what the
    /// module keeps in memory.
    async fn started(&self, _server: &ServerHandle) {}

    /// Every stanza on its way to a local account (its bare JID or one of its sessions),
    /// whoever sent it, before any delivery: a module may drop or refuse it (a blocklist).
    /// Called for every such stanza, so it must be cheap and synchronous; the default
    /// delivers.
    fn filter(&self, _server: &ServerHandle, _stanza: &Element, _to: &Jid) -> Verdict {
        Verdict::Deliver
    }

    /// A stanza every module's [`filter`](Self::filter) let through, on its way to a local
    /// account, before delivery: a module may add to it (an archive stamps its stanza-id
    /// and records it). Synchronous, like `filter`, and called as often.
    fn accepted(&self, _server: &ServerHandle, _stanza: &mut Element, _to: &Jid) {}

    /// Whether this module wants to hear of messages delivered to sessions of the local
    /// account `account` (a bare JID): see [`delivered`](Self::delivered). Called for every
    /// message to a local account, so it must be cheap (an atomic, a map lookup); the
    /// default is `false`, and while every module says `false` the kernel copies nothing.
    fn watches_deliveries(&self, _server: &ServerHandle, _account: &str) -> bool {
        false
    }

    /// A message was queued for the sessions `to` (full JIDs of one local account), when
    /// [`watches_deliveries`](Self::watches_deliveries) said so for that account. Message
    /// carbons send their received copies from here. Synchronous: queue, do not wait.
    fn delivered(&self, _server: &ServerHandle, _message: &Element, _to: &[Jid]) {}

    /// A message to an existing account that no available resource could take.
    async fn undelivered(&self, _server: &ServerHandle, _stanza: &Element, _account: &Jid) -> Flow {
        Flow::Continue
    }

    /// An account is about to be deleted (its data is still there): cancel what it holds
    /// with others, such as presence subscriptions.
    async fn account_deleting(&self, _server: &ServerHandle, _account: &Jid) {}

    /// An account was deleted (its rows, and what
    /// [`ModuleSchema::account_deleted`](crate::storage::ModuleSchema::account_deleted)
    /// removes, are gone): drop what is
    /// kept in memory for it, and end what it allowed.
    async fn account_deleted(&self, _server: &ServerHandle, _account: &Jid) {}

    /// A session bound its resource.
    async fn session_bound(&self, _server: &ServerHandle, _session: &SessionInfo) {}

    /// A session sent its first available presence.
    async fn session_available(&self, _server: &ServerHandle, _session: &SessionInfo) {}

    /// A session ended; `was_available` says whether it had sent available presence.
    async fn session_closed(
        &self,
        _server: &ServerHandle,
        _session: &SessionInfo,
        _was_available: bool,
    ) {
    }

    /// The domain this module serves beside the server's own, if any (a multi-user chat
    /// service at `conference.<domain>`): every stanza addressed to it or to an address at
    /// it goes to [`service_stanza`](Module::service_stanza), and the server's disco#items
    /// lists it. Asked once, at start.
    fn service_domain(&self) -> Option<String> {
        None
    }

    /// A stanza for this module's [`service_domain`](Module::service_domain), its `from`
    /// stamped by the kernel (a local session's full JID, or a component's address). The
    /// module answers through the router ([`ServerHandle::route`]).
    async fn service_stanza(&self, _server: &ServerHandle, _stanza: Element) {}

    /// Routes this module adds to the `[http]` listener, usually under `/api/<name>`
    /// (`docs/http-api.md`), built once when the listener starts. Handlers reach the server
    /// through `axum::Extension<ServerHandle>` and the caller through
    /// [`crate::api::ApiUser`]; errors are [`crate::api::ApiError`]s.
    fn http_routes(&self, _server: &ServerHandle) -> Option<axum::Router> {
        None
    }
}

/// What a module's constructor gets.
pub struct ModuleContext<'a> {
    /// The whole server configuration.
    pub config: &'a Config,
    /// The module's own section (`[modules.<name>]` without `enabled`).
    pub section: toml::Table,
}

impl ModuleContext<'_> {
    /// For a module without settings: an error naming the first key its section has.
    ///
    /// ```
    /// use lithos_server::{Config, module::{ModuleContext, ModuleError}};
    /// let config = Config::default();
    /// let mut ctx = ModuleContext { config: &config, section: Default::default() };
    /// assert_eq!(ctx.expect_no_settings(), Ok(()));
    /// ctx.section.insert("speed".into(), 3.into());
    /// assert_eq!(ctx.expect_no_settings(), Err(ModuleError::unknown_key("speed")));
    /// assert_eq!(ModuleError::unknown_key("speed").to_string(), "unknown key speed");
    /// ```
    pub fn expect_no_settings(&self) -> Result<(), ModuleError> {
        match self.section.keys().next() {
            Some(k) => Err(ModuleError::unknown_key(k)),
            None => Ok(()),
        }
    }

    /// For a module without settings: `module`, or the error that names the first key its
    /// section has. `ModuleRegistration::new("x", "...", |ctx| ctx.no_settings(X))`.
    pub fn no_settings(&self, module: impl Module) -> Result<Arc<dyn Module>, ModuleError> {
        self.expect_no_settings()?;
        Ok(Arc::new(module))
    }
}

/// What a module answers when it cannot serve a request for a reason of its own (the
/// storage failed, a task is gone): the cause is logged, the requester gets
/// `internal-server-error` without it (the wire does not carry the server's internals).
///
/// ```
/// use lithos_core::stanza::DefinedCondition;
/// let e = lithos_server::module::internal_error("disk full");
/// assert_eq!(e.condition, DefinedCondition::InternalServerError);
/// assert!(e.text.is_none());
/// ```
pub fn internal_error(e: impl std::fmt::Display) -> StanzaError {
    tracing::error!(error = %e, "request failed; answering internal-server-error");
    StanzaError::new(DefinedCondition::InternalServerError)
}

/// A boxed error a module's build or storage failure carries as its cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a module cannot be built: what is wrong (naming the setting at fault), and the error
/// that caused it, kept as the [`source`](std::error::Error::source) and shown after the
/// message.
#[derive(Debug)]
pub struct ModuleError {
    message: String,
    source: Option<BoxError>,
}

impl std::fmt::Display for ModuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            Some(cause) => write!(f, "{}: {cause}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ModuleError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}

/// Two module errors are equal when they say the same (their causes are compared as text).
impl PartialEq for ModuleError {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}
impl Eq for ModuleError {}

impl From<crate::storage::StorageError> for ModuleError {
    fn from(e: crate::storage::StorageError) -> ModuleError {
        ModuleError::caused_by("the storage failed", e)
    }
}

impl ModuleError {
    /// An error saying `message`.
    pub fn new(message: impl Into<String>) -> ModuleError {
        ModuleError {
            message: message.into(),
            source: None,
        }
    }

    /// An error saying `message`, caused by `source`.
    ///
    /// ```
    /// use lithos_server::module::ModuleError;
    /// let e = ModuleError::caused_by("operator \"x@\"", lithos_core::Jid::new("x@").unwrap_err());
    /// assert!(std::error::Error::source(&e).is_some());
    /// assert!(e.to_string().starts_with("operator \"x@\": "));
    /// ```
    pub fn caused_by(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> ModuleError {
        ModuleError {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    /// What is wrong, without the cause.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// A setting of the module's section that must be `true` or `false`: its value, or the
    /// error that names `key`.
    pub fn boolean(key: &str, value: &toml::Value) -> Result<bool, ModuleError> {
        value
            .as_bool()
            .ok_or_else(|| ModuleError::new(format!("{key} must be true or false")))
    }

    /// A key the module's section may not have.
    pub fn unknown_key(key: &str) -> ModuleError {
        ModuleError::new(format!("unknown key {key}"))
    }

    /// A setting of the module's section that must be an integer of at least `min`: its
    /// value, or the error that names `key`.
    ///
    /// ```
    /// use lithos_server::module::ModuleError;
    /// let v = lithos_server::toml::Value::Integer(0);
    /// assert_eq!(ModuleError::integer("queue", &v, 0), Ok(0));
    /// assert!(ModuleError::integer("queue", &v, 1).is_err());
    /// ```
    pub fn integer(key: &str, value: &toml::Value, min: u64) -> Result<u64, ModuleError> {
        value
            .as_integer()
            .and_then(|n| u64::try_from(n).ok())
            .filter(|n| *n >= min)
            .ok_or_else(|| {
                ModuleError::new(match min {
                    0 => format!("{key} must be a non-negative integer"),
                    1 => format!("{key} must be a positive integer"),
                    _ => format!("{key} must be an integer of at least {min}"),
                })
            })
    }
}

/// How a module registers itself (in `server: [..]` of its crate's `lithos_core::extension!`).
pub struct ModuleRegistration {
    /// Unique name, also its configuration section.
    pub name: &'static str,
    /// One line for `lithosd modules`.
    pub description: &'static str,
    /// Modules that must be enabled for this one to work; they are started first.
    pub depends_on: &'static [&'static str],
    /// Whether it runs when the configuration says nothing.
    pub enabled_by_default: bool,
    /// Builds the module from its configuration.
    pub build: fn(&ModuleContext<'_>) -> Result<Arc<dyn Module>, ModuleError>,
}

impl ModuleRegistration {
    /// A module enabled by default that needs no other.
    ///
    /// ```
    /// # use lithos_server::ModuleRegistration;
    /// # fn build(_: &lithos_server::module::ModuleContext<'_>) -> Result<std::sync::Arc<dyn lithos_server::Module>, lithos_server::module::ModuleError> { unimplemented!() }
    /// const MODULE: ModuleRegistration =
    ///     ModuleRegistration::new("example", "what it does", build).depends_on(&["roster"]);
    /// assert!(MODULE.enabled_by_default);
    /// assert!(!MODULE.disabled_by_default().enabled_by_default);
    /// ```
    pub const fn new(
        name: &'static str,
        description: &'static str,
        build: fn(&ModuleContext<'_>) -> Result<Arc<dyn Module>, ModuleError>,
    ) -> ModuleRegistration {
        ModuleRegistration {
            name,
            description,
            depends_on: &[],
            enabled_by_default: true,
            build,
        }
    }

    /// The same, with these modules started first.
    pub const fn depends_on(self, names: &'static [&'static str]) -> ModuleRegistration {
        ModuleRegistration {
            depends_on: names,
            ..self
        }
    }

    /// The same, off unless the configuration enables it.
    pub const fn disabled_by_default(self) -> ModuleRegistration {
        ModuleRegistration {
            enabled_by_default: false,
            ..self
        }
    }
}

inventory::collect!(ModuleRegistration);

/// Every module linked into the program, sorted by name.
pub fn registered() -> Vec<&'static ModuleRegistration> {
    let mut v: Vec<_> = inventory::iter::<ModuleRegistration>.into_iter().collect();
    v.sort_by_key(|r| r.name);
    v
}

/// Why the module set cannot start.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// Two linked crates register the same module name.
    #[error("two modules are registered as {0:?}")]
    DuplicateName(String),
    /// The configuration has a section for a module that is not linked.
    #[error("the configuration names module {0:?}, which this server does not include")]
    UnknownModule(String),
    /// An enabled module needs one that is missing or disabled.
    #[error("module {module:?} needs {needs:?}, which is {why}")]
    MissingDependency {
        /// The module.
        module: String,
        /// What it needs.
        needs: String,
        /// `not included` or `disabled`.
        why: &'static str,
    },
    /// Dependencies form a cycle.
    #[error("modules depend on each other in a cycle: {0}")]
    Cycle(String),
    /// Two modules claim the same iq namespace for the same target.
    #[error("modules {first:?} and {second:?} both claim iq namespace {ns} ({target:?})")]
    Conflict {
        /// The namespace.
        ns: String,
        /// For whom.
        target: IqTarget,
        /// One module.
        first: String,
        /// The other.
        second: String,
    },
    /// A constructor failed.
    #[error("{first} and {second} both serve the domain {domain}")]
    ServiceConflict {
        /// The domain.
        domain: String,
        /// Who claimed it first (a module, a component or the server).
        first: String,
        /// Who claimed it second.
        second: String,
    },
    /// A constructor failed.
    #[error("module {module:?}: {error}")]
    Build {
        /// The module.
        module: String,
        /// Why.
        #[source]
        error: ModuleError,
    },
}

/// The running modules, in dependency order, the iq dispatch table and the service domains.
pub struct ModuleHost {
    modules: Vec<(&'static str, Arc<dyn Module>)>,
    iq: HashMap<(String, IqTarget), usize>,
    services: HashMap<String, usize>,
}

impl std::fmt::Debug for ModuleHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModuleHost")
            .field("modules", &self.names())
            .finish()
    }
}

/// Which modules are enabled, in start order (dependencies first), after checking names,
/// dependencies and cycles.
pub fn plan(
    config: &Config,
    regs: &[&'static ModuleRegistration],
) -> Result<Vec<&'static ModuleRegistration>, HostError> {
    let mut by_name: BTreeMap<&str, &'static ModuleRegistration> = BTreeMap::new();
    for r in regs {
        if by_name.insert(r.name, r).is_some() {
            return Err(HostError::DuplicateName(r.name.into()));
        }
    }
    for name in config.modules.keys() {
        if !by_name.contains_key(name.as_str()) {
            return Err(HostError::UnknownModule(name.clone()));
        }
    }
    let enabled: Vec<&'static ModuleRegistration> = by_name
        .values()
        .copied()
        .filter(|r| config.module_enabled(r.name, r.enabled_by_default))
        .collect();
    for r in &enabled {
        for dep in r.depends_on {
            match by_name.get(dep) {
                None => {
                    return Err(HostError::MissingDependency {
                        module: r.name.into(),
                        needs: (*dep).into(),
                        why: "not included",
                    });
                }
                Some(d) if !config.module_enabled(d.name, d.enabled_by_default) => {
                    return Err(HostError::MissingDependency {
                        module: r.name.into(),
                        needs: (*dep).into(),
                        why: "disabled",
                    });
                }
                Some(_) => {}
            }
        }
    }
    // Depth-first topological order.
    let mut order = Vec::new();
    let mut state: HashMap<&str, u8> = HashMap::new(); // 1 visiting, 2 done
    fn visit(
        r: &'static ModuleRegistration,
        by_name: &BTreeMap<&str, &'static ModuleRegistration>,
        state: &mut HashMap<&'static str, u8>,
        order: &mut Vec<&'static ModuleRegistration>,
        path: &mut Vec<&'static str>,
    ) -> Result<(), HostError> {
        match state.get(r.name) {
            Some(2) => return Ok(()),
            Some(1) => {
                path.push(r.name);
                return Err(HostError::Cycle(path.join(" -> ")));
            }
            _ => {}
        }
        state.insert(r.name, 1);
        path.push(r.name);
        for dep in r.depends_on {
            if let Some(d) = by_name.get(dep) {
                visit(d, by_name, state, order, path)?;
            }
        }
        path.pop();
        state.insert(r.name, 2);
        order.push(r);
        Ok(())
    }
    for r in enabled {
        visit(r, &by_name, &mut state, &mut order, &mut Vec::new())?;
    }
    Ok(order)
}

impl ModuleHost {
    /// Builds every enabled registered module.
    pub fn start(config: &Config) -> Result<ModuleHost, HostError> {
        Self::start_with(config, &registered())
    }

    /// Builds the enabled modules among `regs`.
    pub fn start_with(
        config: &Config,
        regs: &[&'static ModuleRegistration],
    ) -> Result<ModuleHost, HostError> {
        let order = plan(config, regs)?;
        let mut modules = Vec::new();
        let mut iq: HashMap<(String, IqTarget), usize> = HashMap::new();
        for r in order {
            let ctx = ModuleContext {
                config,
                section: config.module_section(r.name),
            };
            let m = (r.build)(&ctx).map_err(|error| HostError::Build {
                module: r.name.into(),
                error,
            })?;
            let index = modules.len();
            for claim in m.iq_claims() {
                let key = (claim.ns.to_string(), claim.target);
                if let Some(&other) = iq.get(&key) {
                    let first: &str = modules
                        .get(other)
                        .map(|(n, _): &(&str, Arc<dyn Module>)| *n)
                        .unwrap_or("?");
                    return Err(HostError::Conflict {
                        ns: claim.ns.into(),
                        target: claim.target,
                        first: first.into(),
                        second: r.name.into(),
                    });
                }
                iq.insert(key, index);
            }
            modules.push((r.name, m));
        }
        let mut services = HashMap::new();
        for (index, (name, m)) in modules.iter().enumerate() {
            let Some(domain) = m.service_domain() else {
                continue;
            };
            let first = if domain.eq_ignore_ascii_case(&config.domain) {
                Some("the server".to_string())
            } else if config.components.secrets.contains_key(&domain) {
                Some(format!("component {domain}"))
            } else {
                services
                    .get(&domain)
                    .map(|&i: &usize| format!("module {}", modules[i].0))
            };
            if let Some(first) = first {
                return Err(HostError::ServiceConflict {
                    domain,
                    first,
                    second: format!("module {name}"),
                });
            }
            services.insert(domain, index);
        }
        Ok(ModuleHost {
            modules,
            iq,
            services,
        })
    }

    /// The module serving `domain`, if one does.
    pub fn service(&self, domain: &str) -> Option<&Arc<dyn Module>> {
        self.services.get(domain).map(|&i| &self.modules[i].1)
    }

    /// The domains the modules serve.
    pub fn service_domains(&self) -> Vec<String> {
        let mut d: Vec<String> = self.services.keys().cloned().collect();
        d.sort();
        d
    }

    /// Names of the running modules, in start order.
    pub fn names(&self) -> Vec<&'static str> {
        self.modules.iter().map(|(n, _)| *n).collect()
    }

    /// The running modules, in start order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Module>> {
        self.modules.iter().map(|(_, m)| m)
    }

    /// The module that answers `ns` for `target`.
    pub fn iq_handler(&self, ns: &str, target: IqTarget) -> Option<&Arc<dyn Module>> {
        self.iq
            .get(&(ns.to_string(), target))
            .map(|&i| &self.modules[i].1)
    }

    /// The first verdict other than [`Verdict::Deliver`] of the modules' filters; when all
    /// deliver, the modules' [`accepted`](Module::accepted) see the stanza (in any order:
    /// what one filter refuses, no module has recorded).
    pub fn filter(&self, server: &ServerHandle, stanza: &mut Element, to: &Jid) -> Verdict {
        for m in self.iter() {
            match m.filter(server, stanza, to) {
                Verdict::Deliver => {}
                other => return other,
            }
        }
        for m in self.iter() {
            m.accepted(server, stanza, to);
        }
        Verdict::Deliver
    }

    /// Whether any module wants to hear of messages delivered to `account`'s sessions.
    pub fn watch_deliveries(&self, server: &ServerHandle, account: &str) -> bool {
        self.iter().any(|m| m.watches_deliveries(server, account))
    }

    /// Tells the modules that watch deliveries that `message` was queued for `to`.
    pub fn delivered(&self, server: &ServerHandle, message: &Element, to: &[Jid]) {
        let account = to.first().map(Jid::bare_str).unwrap_or_default();
        for m in self.iter() {
            if m.watches_deliveries(server, account) {
                m.delivered(server, message, to);
            }
        }
    }

    /// Every feature the modules add to an account's disco#info, sorted, without duplicates.
    pub fn account_disco_features(&self) -> Vec<&'static str> {
        let mut f: Vec<&'static str> = self
            .iter()
            .flat_map(|m| m.account_disco_features())
            .collect();
        f.sort_unstable();
        f.dedup();
        f
    }

    /// Every identity the modules add to an account's disco#info, sorted, without duplicates.
    pub fn account_disco_identities(&self) -> Vec<(&'static str, &'static str)> {
        let mut v: Vec<_> = self
            .iter()
            .flat_map(|m| m.account_disco_identities())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Every feature the modules add to disco#info, sorted and without duplicates.
    pub fn disco_features(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self.iter().flat_map(|m| m.disco_features()).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Every stream feature the modules add before authentication.
    pub fn pre_auth_features(&self, listener: crate::session::Listener) -> Vec<Element> {
        self.iter()
            .flat_map(|m| m.pre_auth_features(listener))
            .collect()
    }

    /// Every stream feature the modules add after authentication.
    pub fn stream_features(&self) -> Vec<Element> {
        self.iter().flat_map(|m| m.stream_features()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Claims(Vec<IqClaim>);
    #[async_trait]
    impl Module for Claims {
        fn iq_claims(&self) -> Vec<IqClaim> {
            self.0.clone()
        }
    }

    fn reg(
        name: &'static str,
        deps: &'static [&'static str],
        default: bool,
        build: fn(&ModuleContext<'_>) -> Result<Arc<dyn Module>, ModuleError>,
    ) -> &'static ModuleRegistration {
        Box::leak(Box::new(ModuleRegistration {
            name,
            description: "",
            depends_on: deps,
            enabled_by_default: default,
            build,
        }))
    }

    fn none(_: &ModuleContext<'_>) -> Result<Arc<dyn Module>, ModuleError> {
        Ok(Arc::new(Claims(vec![])))
    }
    fn ping(_: &ModuleContext<'_>) -> Result<Arc<dyn Module>, ModuleError> {
        Ok(Arc::new(Claims(vec![IqClaim {
            ns: "urn:xmpp:ping",
            target: IqTarget::Server,
        }])))
    }

    #[test]
    fn dependency_order_and_errors() {
        let c = Config::default();
        let a = reg("a", &["b"], true, none);
        let b = reg("b", &[], true, none);
        let host = ModuleHost::start_with(&c, &[a, b]).unwrap();
        assert_eq!(host.names(), ["b", "a"]);

        let off = Config::parse("[modules.b]\nenabled = false").unwrap();
        assert_eq!(
            ModuleHost::start_with(&off, &[a, b]).unwrap_err(),
            HostError::MissingDependency {
                module: "a".into(),
                needs: "b".into(),
                why: "disabled"
            }
        );
        assert!(matches!(
            ModuleHost::start_with(&c, &[a]).unwrap_err(),
            HostError::MissingDependency {
                why: "not included",
                ..
            }
        ));
        let x = reg("x", &["y"], true, none);
        let y = reg("y", &["x"], true, none);
        assert!(matches!(
            ModuleHost::start_with(&c, &[x, y]).unwrap_err(),
            HostError::Cycle(_)
        ));
        let unknown = Config::parse("[modules.nope]\nenabled = true").unwrap();
        assert_eq!(
            ModuleHost::start_with(&unknown, &[a, b]).unwrap_err(),
            HostError::UnknownModule("nope".into())
        );
        let optional = reg("optional", &[], false, none);
        assert_eq!(
            ModuleHost::start_with(&c, &[optional]).unwrap().names(),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn two_claims_on_one_namespace_stop_start_up() {
        let c = Config::default();
        let p1 = reg("ping1", &[], true, ping);
        let p2 = reg("ping2", &[], true, ping);
        let err = ModuleHost::start_with(&c, &[p1, p2]).unwrap_err();
        assert_eq!(
            err,
            HostError::Conflict {
                ns: "urn:xmpp:ping".into(),
                target: IqTarget::Server,
                first: "ping1".into(),
                second: "ping2".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "modules \"ping1\" and \"ping2\" both claim iq namespace urn:xmpp:ping (Server)"
        );
        let host = ModuleHost::start_with(&c, &[p1]).unwrap();
        assert!(host.iq_handler("urn:xmpp:ping", IqTarget::Server).is_some());
        assert!(
            host.iq_handler("urn:xmpp:ping", IqTarget::Account)
                .is_none()
        );
    }
}
