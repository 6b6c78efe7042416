//! The server: shared state, listeners, shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lithos_core::{Jid, StreamError, StreamErrorCondition};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::admission::{Admission, ConnectionCounts};
use crate::config::Config;
use crate::module::{HostError, ModuleHost};
use crate::session::Listener;
use crate::session::Sessions;
use crate::storage::{Storage, StorageError};
use crate::tls::TlsError;

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory cannot be created.
    #[error("data directory {path}: {error}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The database cannot be opened.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// TLS cannot be set up.
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    /// The modules cannot start.
    #[error("modules: {0}")]
    Modules(#[from] HostError),
    /// The configured domain is not a valid domain JID.
    #[error("invalid domain {0:?}")]
    Domain(String),
    /// The BXMPP keyword tables of the linked crates conflict (two claim one code).
    #[error("BXMPP tables: {0}")]
    Bxmpp(#[from] lithos_core::binary::TableError),
    /// A listener cannot bind.
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        error: std::io::Error,
    },
}

pub(crate) struct ServerInner {
    pub(crate) config: Config,
    pub(crate) domain: Jid,
    pub(crate) storage: Storage,
    pub(crate) sessions: Sessions,
    pub(crate) modules: ModuleHost,
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) admission: Arc<Admission>,
    /// The XEP-0114 components connected now.
    pub(crate) components: crate::component::Components,
    /// Sessions that may be resumed (XEP-0198).
    pub(crate) resumable: crate::resumption::Resumable,
    /// What `/metrics` shows.
    pub(crate) metrics: crate::metrics::Metrics,
    /// State modules share across crates, one value per type ([`ServerHandle::shared`]).
    pub(crate) shared: std::sync::Mutex<
        std::collections::HashMap<std::any::TypeId, Arc<dyn std::any::Any + Send + Sync>>,
    >,
}

/// A cheap handle to the running server, for modules and connection tasks.
#[derive(Clone)]
pub struct ServerHandle(pub(crate) Arc<ServerInner>);

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("domain", &self.0.domain)
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// The served domain.
    pub fn domain(&self) -> &Jid {
        &self.0.domain
    }
    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.0.config
    }
    /// What the server counts, for `/metrics`.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.0.metrics
    }

    /// The stores.
    pub fn storage(&self) -> &Storage {
        &self.0.storage
    }
    /// The session table.
    pub fn sessions(&self) -> &Sessions {
        &self.0.sessions
    }
    /// The running modules.
    pub fn modules(&self) -> &ModuleHost {
        &self.0.modules
    }
    /// Becomes `true` when the server starts shutting down: a module's background task
    /// (a sweep, a writer) waits on it to end with the server.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.0.shutdown.clone()
    }

    /// This server's one value of type `T` (made with `T::default()` on first use): state a
    /// module keeps and other crates read, such as the blocklists that the blocking module
    /// keeps and the execution module consults. One per server, not per process, so several
    /// servers in one process (tests) do not share it.
    pub fn shared<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let mut map = self.0.shared.lock().unwrap_or_else(|e| e.into_inner());
        let any = map
            .entry(std::any::TypeId::of::<T>())
            .or_insert_with(|| Arc::new(T::default()))
            .clone();
        // The map holds a `T` under `T`'s id, so the downcast cannot fail.
        any.downcast::<T>()
            .unwrap_or_else(|_| Arc::new(T::default()))
    }

    /// True when `jid` is the served domain or an address under it.
    pub fn is_local(&self, jid: &Jid) -> bool {
        jid.domain() == self.0.domain.domain()
    }

    /// The addresses of the services beside the server's own domain: those the modules
    /// serve ([`Module::service_domain`](crate::Module::service_domain)) and the configured
    /// XEP-0114 components' domains, connected or not (disco#items of the server lists them).
    pub fn service_domains(&self) -> Vec<String> {
        let mut d = self.0.modules.service_domains();
        d.extend(self.0.config.components.secrets.keys().cloned());
        d
    }

    /// Deletes the account `account` (a bare JID of this domain): the modules hear
    /// `account_deleting`, the store deletes it with everything kept for it and leaves a
    /// tombstone (see [`AccountStore::delete_account`](crate::storage::AccountStore::delete_account)),
    /// the modules hear `account_deleted`, and every session of the account writes what is
    /// queued for it (the answer to a removal request, say) and ends with `not-authorized`.
    pub async fn delete_account(&self, account: &Jid) -> Result<(), StorageError> {
        let Some(user) = account.local() else {
            return Err(StorageError::NotFound);
        };
        let account = account.to_bare();
        for m in self.modules().iter() {
            m.account_deleting(self, &account).await;
        }
        self.storage()
            .accounts
            .delete_account(user, self.domain().domain())
            .await?;
        for m in self.modules().iter() {
            m.account_deleted(self, &account).await;
        }
        self.sessions().close_account(
            account.bare_str(),
            &StreamError::new(StreamErrorCondition::NotAuthorized)
                .with_text("the account has been removed"),
        );
        tracing::info!(%account, "account deleted");
        Ok(())
    }

    /// Records a failed authentication from `ip` (a module's own kind: a thing registration
    /// with the wrong key, say), as SASL failures are: returns how long to wait before
    /// answering it, and past `[limits] auth_ban_failures` the address is banned.
    pub fn authentication_failed(&self, ip: std::net::IpAddr) -> Duration {
        self.0.admission.failed(ip)
    }

    /// Whether `ip` is banned after failed authentications.
    pub fn is_banned(&self, ip: std::net::IpAddr) -> bool {
        self.0.admission.is_banned(ip)
    }

    /// Writes `stanzas`, which a store still holds, to `session`: in batches of 64, each
    /// after the previous one is on the socket, so a large backlog goes at the client's pace
    /// and never fills its queue. Returns `true` once all are written, `false` if the session
    /// ended first (the store keeps what it has not deleted). Call it from a task of its own,
    /// not from a hook the session's connection task awaits: that task does the writing.
    pub async fn deliver_stored(
        &self,
        session: &crate::SessionInfo,
        stanzas: Vec<lithos_core::Element>,
    ) -> bool {
        const BATCH: usize = 64;
        let mut stanzas = stanzas.into_iter().peekable();
        while stanzas.peek().is_some() {
            let mut batch: Vec<_> = stanzas.by_ref().take(BATCH).collect();
            let receipt = loop {
                match self.sessions().send_stored(session, batch) {
                    Ok(r) => break r,
                    Err((crate::session::StoredRefused::Gone, _)) => return false,
                    // Other stored stanzas wait to be written (another store's): in a moment.
                    Err((crate::session::StoredRefused::Busy, back)) => {
                        batch = back;
                        tokio::time::sleep(Duration::from_millis(20)).await
                    }
                }
            };
            if !receipt.written().await {
                return false;
            }
        }
        true
    }

    /// Runs `work` every `period` (first right away) on a task of its own, until the server
    /// shuts down: a module's sweep of what expired, say.
    pub fn every<F, Fut>(&self, period: Duration, mut work: F)
    where
        F: FnMut(ServerHandle) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let server = self.clone();
        let mut stop = self.shutdown_signal();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => return,
                }
                work(server.clone()).await;
            }
        });
    }

    /// Registers the gauge `lithos_<name>` and sets it every 15 s (first right away) to the
    /// one integer `sql` returns: the size of a module's queue in its table (messages held
    /// offline, assured messages pending), for `/metrics`. A failed query leaves the last
    /// value and logs a warning.
    pub fn count_gauge(&self, name: &'static str, help: &str, sql: &'static str) {
        let gauge = self.metrics().gauge(name, help);
        self.every(Duration::from_secs(15), move |server| {
            let gauge = gauge.clone();
            async move {
                let n = server
                    .storage()
                    .db()
                    .run(move |c| c.query_value::<i64>(sql, crate::params![]))
                    .await;
                match n {
                    Ok(n) => {
                        gauge.set(n);
                    }
                    Err(e) => tracing::warn!(metric = name, error = %e, "a gauge's query failed"),
                }
            }
        });
    }

    /// Open connections, and how many of them have not authenticated yet.
    pub fn connection_counts(&self) -> ConnectionCounts {
        self.0.admission.counts()
    }

    /// Derives SCRAM credentials for a new password with the configured PBKDF2 iterations
    /// (`[accounts] pbkdf2_iterations`), off the async threads.
    pub async fn derive_credentials(
        &self,
        password: String,
    ) -> Result<crate::sasl::Credentials, crate::sasl::PasswordError> {
        let iterations = self.config().accounts.pbkdf2_iterations;
        tokio::task::spawn_blocking(move || crate::sasl::Credentials::new(&password, iterations))
            .await
            .unwrap_or(Err(crate::sasl::PasswordError::Invalid))
    }
}

/// A running server: its handle, the addresses it listens on, and its tasks.
pub struct RunningServer {
    handle: ServerHandle,
    /// STARTTLS listeners' local addresses (useful with port 0).
    pub c2s_addrs: Vec<SocketAddr>,
    /// Direct TLS listeners' local addresses.
    pub direct_tls_addrs: Vec<SocketAddr>,
    /// Thing listeners' local addresses.
    pub thing_addrs: Vec<SocketAddr>,
    /// XEP-0114 component listeners' local addresses.
    pub component_addrs: Vec<SocketAddr>,
    /// HTTP listeners' local addresses (`/health`, `/metrics`).
    pub http_addrs: Vec<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("c2s_addrs", &self.c2s_addrs)
            .field("direct_tls_addrs", &self.direct_tls_addrs)
            .finish_non_exhaustive()
    }
}

impl RunningServer {
    /// Opens storage, sets up TLS, starts the modules and binds the listeners.
    pub async fn start(config: Config) -> Result<RunningServer, StartError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|error| StartError::DataDir {
            path: config.data_dir.clone(),
            error,
        })?;
        let storage = Storage::of(config.open_database().await?);
        Self::start_with_storage(config, storage).await
    }

    /// As [`start`](Self::start), with given stores.
    pub async fn start_with_storage(
        config: Config,
        storage: Storage,
    ) -> Result<RunningServer, StartError> {
        // Check the linked BXMPP tables now, so a conflict stops start-up instead of failing
        // the first binary client.
        lithos_core::binary::Vocabulary::linked()?;
        storage
            .db()
            .set_tombstone_secs(config.accounts.tombstone_secs);
        let tls = Some(crate::tls::load(&config)?);
        let modules = ModuleHost::start(&config)?;
        tracing::info!(modules = ?modules.names(), "modules started");
        let (stop, shutdown) = watch::channel(false);
        let domain =
            Jid::new(&config.domain).map_err(|_| StartError::Domain(config.domain.clone()))?;
        let mut listeners = Vec::new();
        for (addrs, direct, kind) in [
            (&config.c2s.listen, false, Listener::Client),
            (&config.c2s.direct_tls, true, Listener::Client),
            (&config.things.listen, false, Listener::Thing),
        ] {
            for addr in addrs {
                let l = TcpListener::bind(addr)
                    .await
                    .map_err(|error| StartError::Bind { addr: *addr, error })?;
                listeners.push((l, direct, kind));
            }
        }
        let mut http_listeners = Vec::new();
        for addr in &config.http.listen {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|error| StartError::Bind { addr: *addr, error })?;
            http_listeners.push(l);
        }
        let mut component_listeners = Vec::new();
        for addr in &config.components.listen {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|error| StartError::Bind { addr: *addr, error })?;
            component_listeners.push(l);
        }
        let limits = config.limits.clone();
        let handle = ServerHandle(Arc::new(ServerInner {
            config,
            domain,
            storage,
            sessions: Sessions::default(),
            modules,
            tls,
            shutdown,
            admission: Admission::new(limits),
            components: Default::default(),
            resumable: Default::default(),
            metrics: Default::default(),
            shared: Default::default(),
        }));
        handle.metrics().register_histogram(
            "storage_operation_seconds",
            "How long storage operations take, waiting for the database included",
            handle.storage().db().latency(),
        );
        for m in handle.modules().iter() {
            m.started(&handle).await;
        }
        let mut tasks = JoinSet::new();
        let (mut c2s_addrs, mut direct_tls_addrs, mut thing_addrs) =
            (Vec::new(), Vec::new(), Vec::new());
        for (l, direct, kind) in listeners {
            let addr = l.local_addr().map_err(|error| StartError::Bind {
                addr: "0.0.0.0:0".parse().expect("literal"),
                error,
            })?;
            match (kind, direct) {
                (Listener::Thing, _) => thing_addrs.push(addr),
                (Listener::Client, true) => direct_tls_addrs.push(addr),
                (Listener::Client, false) => c2s_addrs.push(addr),
            }
            tracing::info!(%addr, direct_tls = direct, listener = ?kind, "listening");
            tasks.spawn(accept_loop(handle.clone(), l, direct, kind));
        }
        let mut component_addrs = Vec::new();
        for l in component_listeners {
            let addr = l.local_addr().map_err(|error| StartError::Bind {
                addr: "0.0.0.0:0".parse().expect("literal"),
                error,
            })?;
            tracing::info!(%addr, "listening for components (XEP-0114)");
            component_addrs.push(addr);
            tasks.spawn(crate::component::accept_loop(handle.clone(), l));
        }
        let mut http_addrs = Vec::new();
        for l in http_listeners {
            let addr = l.local_addr().map_err(|error| StartError::Bind {
                addr: "0.0.0.0:0".parse().expect("literal"),
                error,
            })?;
            let tls = handle.config().http.tls;
            tracing::info!(%addr, tls, "listening for HTTP (the console at /, /api, /xmpp-websocket, /health, /metrics)");
            http_addrs.push(addr);
            if tls {
                tasks.spawn(crate::http::serve_tls(handle.clone(), l));
            } else {
                tasks.spawn(crate::http::serve(handle.clone(), l));
            }
        }
        Ok(RunningServer {
            handle,
            http_addrs,
            c2s_addrs,
            direct_tls_addrs,
            thing_addrs,
            component_addrs,
            stop,
            tasks,
        })
    }

    /// The server's handle.
    pub fn handle(&self) -> &ServerHandle {
        &self.handle
    }

    /// Stops accepting, closes every stream with `system-shutdown`, waits for the connections
    /// to end (at most `grace`), and flushes storage.
    pub async fn shutdown(mut self, grace: Duration) {
        tracing::info!("shutting down");
        let _ = self.stop.send(true);
        self.handle.0.sessions.close_all(
            &StreamError::new(StreamErrorCondition::SystemShutdown)
                .with_text("the server is shutting down"),
        );
        let wait = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, wait).await.is_err() {
            tracing::warn!("connections still open after the grace period; closing them");
            self.tasks.abort_all();
        }
        if let Err(e) = self.handle.0.storage.flush().await {
            tracing::error!(error = %e, "flushing storage failed");
        }
        tracing::info!("stopped");
    }

    /// Runs until SIGTERM or SIGINT, then shuts down gracefully.
    pub async fn run_until_signal(self) {
        wait_for_signal().await;
        self.shutdown(Duration::from_secs(10)).await;
    }
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

async fn accept_loop(
    server: ServerHandle,
    listener: TcpListener,
    direct_tls: bool,
    kind: Listener,
) {
    accept_until_shutdown(&server, listener, |tcp, peer, conns| {
        match server.0.admission.admit(peer.ip()) {
            Ok(ticket) => {
                let _ = tcp.set_nodelay(true);
                conns.spawn(crate::stream::serve(
                    server.clone(),
                    tcp,
                    peer,
                    direct_tls,
                    kind,
                    ticket,
                ));
            }
            // Refused before a byte is read: closing costs the least, and a client that
            // opens too many learns nothing it could not guess.
            Err(why) => tracing::info!(%peer, %why, "connection refused"),
        }
    })
    .await
}

/// Accepts on `listener` until the server shuts down, handing each connection to `admit`
/// (which spawns its task into the set, or refuses it); then waits for those tasks.
pub(crate) async fn accept_until_shutdown(
    server: &ServerHandle,
    listener: TcpListener,
    mut admit: impl FnMut(tokio::net::TcpStream, SocketAddr, &mut JoinSet<()>),
) {
    let mut shutdown = server.0.shutdown.clone();
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((tcp, peer)) => admit(tcp, peer, &mut conns),
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}
