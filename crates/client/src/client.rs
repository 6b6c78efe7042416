//! The client handle, its builder, and the events it delivers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use lithos_core::codec::WireFormat;
use lithos_core::stanza::{Iq, IqPayload, Message, Presence};
use lithos_core::{Element, Jid};
use lithos_sasl::Mechanism;
use tokio::sync::{mpsc, oneshot};

use crate::config::{Config, Reconnect, TlsMode};
use crate::error::{ConnectError, RequestError, SendError};
use crate::handler::IqHandler;
use crate::tls::Trust;

/// Something that happened on the connection, for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A message arrived.
    Message(Message),
    /// A presence arrived.
    Presence(Presence),
    /// An iq a handler answered and passed on (a roster push, for example).
    Iq(Iq),
    /// The connection was lost or closed. Stanzas not yet written were dropped. Requests in
    /// flight ended with [`RequestError::Disconnected`] — unless the session is resumable
    /// (stream management and reconnection on): then they wait, to be answered after
    /// [`Event::Resumed`], or to end when the reconnection starts a new session instead.
    Disconnected {
        /// Why, unless the application closed it.
        reason: Option<String>,
        /// Whether the client is trying to reconnect.
        reconnecting: bool,
    },
    /// A new connection is ready after a loss (with reconnection on), with a new session.
    Reconnected {
        /// The address bound this time.
        jid: Jid,
    },
    /// A new connection took the session back after a loss (XEP-0198 resumption): what the
    /// server had not received was sent again, what it sent meanwhile arrives now, and
    /// requests in flight go on.
    Resumed {
        /// The session's address (unchanged).
        jid: Jid,
    },
}

/// The events of one client. Read them: when the application does not, the connection
/// stops reading from the server (and answers stop arriving) once `event_queue` events wait.
/// Dropping `Events` discards them instead.
#[derive(Debug)]
pub struct Events {
    pub(crate) rx: mpsc::Receiver<Event>,
}

impl Events {
    /// The next event; `None` once the client is closed and every event was read.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }
}

/// What the handles ask of the connection task.
pub(crate) enum Command {
    Send(Element),
    Close(oneshot::Sender<()>),
}

/// A request waiting for its answer.
pub(crate) struct Pending {
    pub(crate) to: Option<Jid>,
    pub(crate) tx: oneshot::Sender<Result<Iq, RequestError>>,
}

/// State shared by the handles and the connection task.
pub(crate) struct Shared {
    pub(crate) pending: Mutex<HashMap<String, Pending>>,
    pub(crate) jid: RwLock<Jid>,
    pub(crate) connected: AtomicBool,
    /// The server offered client state indication (XEP-0352) on this connection.
    pub(crate) csi: AtomicBool,
}

impl Shared {
    pub(crate) fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends every request in flight with `Disconnected`.
    pub(crate) fn fail_pending(&self) {
        for (_, p) in self.lock_pending().drain() {
            let _ = p.tx.send(Err(RequestError::Disconnected));
        }
    }
}

/// A connected client. Cheap to clone; every clone drives the same connection, which closes
/// when the last clone is dropped (or on [`close`](Self::close)).
#[derive(Clone)]
pub struct Client {
    pub(crate) shared: Arc<Shared>,
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) ids: Arc<(u64, AtomicU64)>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("jid", &self.jid())
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl Client {
    /// A builder for `jid` (an account, optionally with the resource to ask for).
    pub fn builder(jid: &str, password: &str) -> Result<ClientBuilder, ConnectError> {
        ClientBuilder::new(jid, password)
    }

    /// The bound address (it may change after a reconnection).
    pub fn jid(&self) -> Jid {
        self.shared
            .jid
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether the connection is up.
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Acquire)
    }

    /// A fresh stanza id, unique for this client.
    pub fn next_id(&self) -> String {
        let (prefix, n) = &*self.ids;
        format!("{prefix:x}-{}", n.fetch_add(1, Ordering::Relaxed))
    }

    /// Queues a stanza for writing. Fails at once when not connected: nothing is kept to be
    /// sent later.
    pub async fn send(&self, stanza: impl Into<Element>) -> Result<(), SendError> {
        if !self.is_connected() {
            return Err(SendError::Disconnected);
        }
        self.commands
            .send(Command::Send(stanza.into()))
            .await
            .map_err(|_| SendError::Disconnected)
    }

    /// Tells the server whether the user is looking at this client (XEP-0352 client state
    /// indication): while inactive, a server may hold presence updates back and drop typing
    /// notifications, to save a phone's radio and battery. Nothing is sent to a server that
    /// did not offer it.
    pub async fn set_active(&self, active: bool) -> Result<(), SendError> {
        use lithos_core::Payload;
        if !self.shared.csi.load(Ordering::Acquire) {
            return Ok(());
        }
        let el = if active {
            lithos_csi::Active.into_element()
        } else {
            lithos_csi::Inactive.into_element()
        };
        self.send(el).await
    }

    /// Sends a chat message.
    pub async fn send_message(&self, to: Jid, body: &str) -> Result<(), SendError> {
        let mut m = Message::chat(to, body.to_string());
        m.id = Some(self.next_id().into());
        self.send(m).await
    }

    /// Sends presence (available, unless `presence` says otherwise).
    pub async fn send_presence(&self, presence: Presence) -> Result<(), SendError> {
        self.send(presence).await
    }

    /// Sends an iq get or set and waits for its answer until `timeout`. It ends in exactly
    /// one of: the result (`Ok`), the error the recipient answered
    /// ([`RequestError::Stanza`]), [`RequestError::Timeout`] at the deadline, or
    /// [`RequestError::Disconnected`] at once if the connection is lost first. An answer
    /// that comes after the deadline is dropped.
    ///
    /// An empty id is replaced by a fresh one. Only an answer from the entity asked (or, for
    /// a request without `to`, from the server or the own account) is accepted.
    pub async fn request(&self, mut iq: Iq, timeout: Duration) -> Result<Iq, RequestError> {
        if !iq.payload.is_request() {
            return Err(RequestError::Stanza(Box::new(
                lithos_core::stanza::StanzaError::new(
                    lithos_core::stanza::DefinedCondition::BadRequest,
                )
                .with_text("only get and set are requests"),
            )));
        }
        if iq.id.is_empty() {
            iq.id = self.next_id().into();
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let id = iq.id.to_string();
        let (tx, rx) = oneshot::channel();
        self.shared.lock_pending().insert(
            id.clone(),
            Pending {
                to: iq.to.clone(),
                tx,
            },
        );
        let forget = || {
            self.shared.lock_pending().remove(&id);
        };
        if self.send(iq).await.is_err() {
            forget();
            return Err(RequestError::Disconnected);
        }
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(Ok(answer))) => match answer.payload {
                IqPayload::Error { error, .. } => Err(RequestError::Stanza(error)),
                _ => Ok(answer),
            },
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(_)) => Err(RequestError::Disconnected),
            Err(_) => {
                forget();
                Err(RequestError::Timeout)
            }
        }
    }

    /// Closes the stream and waits (at most 5 seconds) for the server to close its side.
    /// Requests in flight end with `Disconnected`.
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Close(tx)).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(10), rx).await;
        }
    }
}

/// Builds a [`Config`] and connects.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use lithos_client::{ClientBuilder, Trust};
/// let (client, mut events) = ClientBuilder::new("juliet@localhost/balcony", "r0m30")?
///     .address("127.0.0.1:5222")
///     .trust(Trust::pinned_file("lithos-data/tls/cert.pem")?)
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    config: Config,
}

impl ClientBuilder {
    /// Starts with the defaults for the account `jid` (a resource, if given, is asked for).
    pub fn new(jid: &str, password: &str) -> Result<ClientBuilder, ConnectError> {
        let j = Jid::new(jid).map_err(|_| ConnectError::InvalidJid(jid.to_string()))?;
        if j.local().is_none() {
            return Err(ConnectError::InvalidJid(jid.to_string()));
        }
        Ok(ClientBuilder {
            config: Config::new(j, password),
        })
    }

    /// Starts from a whole configuration.
    pub fn from_config(config: Config) -> ClientBuilder {
        ClientBuilder { config }
    }

    /// `host:port` to connect to (default: the JID's domain, port 5222 or 5223).
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.config.address = Some(address.into());
        self
    }
    /// How the connection is secured (default STARTTLS).
    pub fn tls(mut self, mode: TlsMode) -> Self {
        self.config.tls = mode;
        self
    }
    /// Which certificates are trusted (default the system's roots).
    pub fn trust(mut self, trust: Trust) -> Self {
        self.config.trust = trust;
        self
    }
    /// The name the server's certificate must hold (default the JID's domain).
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.config.server_name = Some(name.into());
        self
    }
    /// SASL mechanisms in order of preference.
    pub fn mechanisms(mut self, mechanisms: Vec<Mechanism>) -> Self {
        self.config.mechanisms = mechanisms;
        self
    }
    /// Allows PLAIN without TLS (tests and benchmarks on loopback only).
    pub fn allow_plain_without_tls(mut self, allow: bool) -> Self {
        self.config.allow_plain_without_tls = allow;
        self
    }
    /// XML or BXMPP.
    pub fn format(mut self, format: WireFormat) -> Self {
        self.config.format = format;
        self
    }
    /// White-space keep-alive after this much idle time (`None`: never).
    pub fn keepalive(mut self, every: Option<Duration>) -> Self {
        self.config.keepalive = every;
        self
    }
    /// Reconnect after a lost connection.
    pub fn reconnect(mut self, reconnect: Option<Reconnect>) -> Self {
        self.config.reconnect = reconnect;
        self
    }
    /// Use stream management (XEP-0198) when the server offers it (default on).
    pub fn stream_management(mut self, on: bool) -> Self {
        self.config.stream_management = on;
        self
    }
    /// Limit for connecting and negotiating.
    pub fn connect_timeout(mut self, limit: Duration) -> Self {
        self.config.connect_timeout = limit;
        self
    }
    /// Answers incoming get and set iqs whose payload is in `ns` (over a linked plugin's
    /// handler for the same namespace).
    pub fn handle_iq(mut self, ns: &str, handler: Arc<dyn IqHandler>) -> Self {
        self.config.handlers.push((ns.to_string(), handler));
        self
    }
    /// The configuration so far.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Connects, authenticates and binds; then a task drives the connection.
    pub async fn connect(self) -> Result<(Client, Events), ConnectError> {
        let config = self.config;
        let connected = crate::negotiate::connect(&config, None).await?;
        tracing::info!(jid = %connected.jid, "connected");
        let shared = Arc::new(Shared {
            pending: Mutex::new(HashMap::new()),
            jid: RwLock::new(connected.jid.clone()),
            connected: AtomicBool::new(true),
            csi: AtomicBool::new(connected.csi),
        });
        let (commands, command_rx) = mpsc::channel(config.send_queue.max(1));
        let (events_tx, events_rx) = mpsc::channel(config.event_queue.max(1));
        let client = Client {
            shared: shared.clone(),
            commands,
            ids: Arc::new((rand::random::<u32>() as u64, AtomicU64::new(1))),
        };
        let driver = crate::connection::Driver::new(
            config,
            shared,
            client.downgrade(),
            command_rx,
            events_tx,
        );
        tokio::spawn(driver.run(connected));
        Ok((client, Events { rx: events_rx }))
    }
}

/// A handle that does not keep the connection open (held by the connection task itself).
#[derive(Clone)]
pub(crate) struct WeakClient {
    shared: Arc<Shared>,
    commands: mpsc::WeakSender<Command>,
    ids: Arc<(u64, AtomicU64)>,
}

impl WeakClient {
    pub(crate) fn upgrade(&self) -> Option<Client> {
        Some(Client {
            shared: self.shared.clone(),
            commands: self.commands.upgrade()?,
            ids: self.ids.clone(),
        })
    }
}

impl Client {
    fn downgrade(&self) -> WeakClient {
        WeakClient {
            shared: self.shared.clone(),
            commands: self.commands.downgrade(),
            ids: self.ids.clone(),
        }
    }
}
