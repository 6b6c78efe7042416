//! The thing runtime: register once and keep the credentials, connect to the things port,
//! and run actions by type, answering each with its result or a mapped error. Executions
//! that arrive after their expiry are refused without running.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use lithos_client::Trust;
//! use lithos_tuxp_execution::thing::{ThingRuntime, action_handler};
//! let runtime = ThingRuntime::new("SL-01-0A1B2C3D", "ABCDEF123456", "localhost")
//!     .address("127.0.0.1:6222")
//!     .trust(Trust::pinned_file("lithos-data/tls/cert.pem")?)
//!     .credentials_file("light.credentials")
//!     .on_action("urn:leps:things:simple-light", "flash", action_handler(|action| async move {
//!         println!("flash {:?} times", action.attr("repeat"));
//!         Ok(None)
//!     }));
//! let (client, mut events) = runtime.start().await?;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lithos_client::handler::{HandlerContext, IqAnswer, IqHandler};
use lithos_client::{Client, ClientBuilder, ConnectError, Events, Trust, WireFormat};
use lithos_core::stanza::{DefinedCondition, Iq, IqPayload, StanzaError};
use lithos_core::{Element, Payload};
use lithos_tuxp_ibtr::{RegisterError, Registered, register_thing};

use crate::{Execution, NS, now_ms};

/// What an action handler answers: a result payload (or none), or an error for the
/// controller (for example `StanzaError::new(DefinedCondition::ResourceConstraint)`).
pub type ActionResult = Result<Option<Element>, StanzaError>;

/// Runs one kind of action.
#[async_trait]
pub trait ActionHandler: Send + Sync + 'static {
    /// Runs `action` (the element inside the execution).
    async fn run(&self, action: Element) -> ActionResult;
}

/// A plain async function as an action handler.
pub fn action_handler<F, Fut>(f: F) -> Arc<dyn ActionHandler>
where
    F: Fn(Element) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ActionResult> + Send + 'static,
{
    struct H<F>(F);
    #[async_trait]
    impl<F, Fut> ActionHandler for H<F>
    where
        F: Fn(Element) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ActionResult> + Send + 'static,
    {
        async fn run(&self, action: Element) -> ActionResult {
            (self.0)(action).await
        }
    }
    Arc::new(H(f))
}

/// Why a thing could not start.
#[derive(Debug, thiserror::Error)]
pub enum ThingError {
    /// Registration failed.
    #[error("registration: {0}")]
    Register(#[from] RegisterError),
    /// Logging in failed.
    #[error("connection: {0}")]
    Connect(#[from] ConnectError),
    /// The credentials file could not be read or written.
    #[error("credentials file {path}: {error}")]
    CredentialsFile {
        /// The file.
        path: PathBuf,
        /// Why.
        error: String,
    },
}

/// A thing program's connection to its server.
pub struct ThingRuntime {
    thing_id: String,
    registration_key: String,
    domain: String,
    address: Option<String>,
    trust: Trust,
    format: WireFormat,
    credentials_file: Option<PathBuf>,
    actions: HashMap<(String, String), Arc<dyn ActionHandler>>,
    timeout: Duration,
    reconnect: Option<lithos_client::Reconnect>,
    /// Executions for the LAN nodes behind a gateway (`to` = `<gateway>/<lan-id>`).
    lan: Option<Arc<dyn IqHandler>>,
    /// Handlers of other namespaces' requests (WebRTC signaling, say).
    iq_handlers: Vec<(String, Arc<dyn IqHandler>)>,
}

impl std::fmt::Debug for ThingRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThingRuntime")
            .field("thing_id", &self.thing_id)
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

impl ThingRuntime {
    /// A thing `thing_id` holding `registration_key`, for the server of `domain`.
    pub fn new(thing_id: &str, registration_key: &str, domain: &str) -> ThingRuntime {
        ThingRuntime {
            thing_id: thing_id.to_string(),
            registration_key: registration_key.to_string(),
            domain: domain.to_string(),
            address: None,
            trust: Trust::default(),
            format: WireFormat::Xml,
            credentials_file: None,
            actions: HashMap::new(),
            timeout: Duration::from_secs(15),
            reconnect: None,
            lan: None,
            iq_handlers: Vec::new(),
        }
    }

    /// Answers requests (iq get and set) whose payload is in `ns` with `handler`, besides
    /// executions.
    pub fn handle_iq(mut self, ns: &str, handler: Arc<dyn IqHandler>) -> Self {
        self.iq_handlers.push((ns.to_string(), handler));
        self
    }
    /// Reconnect after a lost connection (off by default). With the server's stream
    /// management (XEP-0198) the session is resumed where it broke; an execution that waited
    /// for the thing past its expiry is still refused when it arrives, so nothing runs late.
    pub fn reconnect(mut self, policy: Option<lithos_client::Reconnect>) -> Self {
        self.reconnect = policy;
        self
    }
    /// The things port, `host:port` (default: the domain, port 6222).
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }
    /// Trusted server certificates.
    pub fn trust(mut self, trust: Trust) -> Self {
        self.trust = trust;
        self
    }
    /// XML or BXMPP.
    pub fn format(mut self, format: WireFormat) -> Self {
        self.format = format;
        self
    }
    /// Where the credentials are kept between runs: registration happens once, when the
    /// file does not exist yet. Without a file, the thing registers on every start (which
    /// only works once per authorization).
    pub fn credentials_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.credentials_file = Some(path.into());
        self
    }
    /// For a gateway: hands executions addressed to a LAN node (`<gateway>/<lan-id>`, 1 to
    /// 255) to `handler` (`lithos-gateway`'s LAN router) instead of running them here.
    pub fn lan_nodes(mut self, handler: Arc<dyn IqHandler>) -> Self {
        self.lan = Some(handler);
        self
    }

    /// Runs `handler` for actions `<name xmlns="ns"/>`.
    pub fn on_action(mut self, ns: &str, name: &str, handler: Arc<dyn ActionHandler>) -> Self {
        self.actions
            .insert((ns.to_string(), name.to_string()), handler);
        self
    }

    fn builder(&self, jid: &str, password: &str) -> Result<ClientBuilder, ConnectError> {
        let mut b = ClientBuilder::new(jid, password)?
            .trust(self.trust.clone())
            .format(self.format)
            .connect_timeout(self.timeout)
            .reconnect(self.reconnect);
        b = b.address(
            self.address
                .clone()
                .unwrap_or_else(|| format!("{}:6222", self.domain)),
        );
        Ok(b)
    }

    /// The credentials: from the file if there is one, else by registering (and then saved).
    pub async fn credentials(&self) -> Result<Registered, ThingError> {
        if let Some(p) = &self.credentials_file
            && let Some(r) = load(p)?
        {
            return Ok(r);
        }
        let b = self.builder(&format!("registration@{}", self.domain), "")?;
        let r = register_thing(&b, &self.thing_id, &self.registration_key, self.timeout).await?;
        if let Some(p) = &self.credentials_file {
            save(p, &r)?;
        }
        Ok(r)
    }

    /// Registers if needed, connects as `<thing-name>@<domain>/0`, sends presence, and
    /// answers executions until the client is closed.
    pub async fn start(self) -> Result<(Client, Events), ThingError> {
        let creds = self.credentials().await?;
        let jid = format!(
            "{}@{}/{}",
            creds.thing_name,
            self.domain,
            lithos_tuxp_things::EDGE_RESOURCE
        );
        let dispatcher = Arc::new(Dispatcher {
            actions: self.actions.clone(),
            lan: self.lan.clone(),
        });
        let mut builder = self
            .builder(&jid, &creds.credentials)?
            .handle_iq(NS, dispatcher);
        for (ns, h) in &self.iq_handlers {
            builder = builder.handle_iq(ns, h.clone());
        }
        let (client, events) = builder.connect().await?;
        let _ = client
            .send_presence(lithos_core::stanza::Presence::available())
            .await;
        Ok((client, events))
    }
}

/// Answers executions: refuses late ones, runs the handler of the action's type; a
/// gateway's LAN nodes' go to its LAN handler.
struct Dispatcher {
    actions: HashMap<(String, String), Arc<dyn ActionHandler>>,
    lan: Option<Arc<dyn IqHandler>>,
}

#[async_trait]
impl IqHandler for Dispatcher {
    async fn handle(&self, ctx: &HandlerContext, request: Iq) -> IqAnswer {
        let to_node = request
            .to
            .as_ref()
            .and_then(|t| t.resource())
            .and_then(lithos_tuxp_things::lan_id)
            .is_some();
        if to_node {
            return match &self.lan {
                Some(lan) => lan.handle(ctx, request).await,
                None => Err(StanzaError::explained(
                    DefinedCondition::ItemNotFound,
                    "this thing has no LAN nodes",
                )),
            };
        }
        let IqPayload::Set(payload) = request.payload else {
            return Err(StanzaError::new(DefinedCondition::BadRequest));
        };
        let exec = Execution::from_element(payload)?;
        if exec.expired(now_ms()) {
            tracing::warn!(
                action = exec.action.name(),
                "refused an execution that arrived after its expiry"
            );
            return Err(StanzaError::new(DefinedCondition::RemoteServerTimeout)
                .with_text("the execution arrived after its expiry; not run"));
        }
        let key = (exec.action.ns().to_string(), exec.action.name().to_string());
        let Some(handler) = self.actions.get(&key) else {
            return Err(StanzaError::new(DefinedCondition::ServiceUnavailable)
                .with_text("this thing does not run that action"));
        };
        handler.run(exec.action).await
    }
}

/// The credentials file: three lines, `thing-name`, `credentials`, and the security key in
/// hexadecimal. Written with owner-only permissions.
fn save(path: &PathBuf, r: &Registered) -> Result<(), ThingError> {
    let fail = |e: std::io::Error| ThingError::CredentialsFile {
        path: path.clone(),
        error: e.to_string(),
    };
    let key: String = r.security_key.iter().map(|b| format!("{b:02x}")).collect();
    let text = format!("{}\n{}\n{key}\n", r.thing_name, r.credentials);
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        let mut f = o.open(&tmp).map_err(fail)?;
        f.write_all(text.as_bytes()).map_err(fail)?;
        f.sync_all().map_err(fail)?;
    }
    std::fs::rename(&tmp, path).map_err(fail)
}

fn load(path: &PathBuf) -> Result<Option<Registered>, ThingError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ThingError::CredentialsFile {
                path: path.clone(),
                error: e.to_string(),
            });
        }
    };
    let bad = || ThingError::CredentialsFile {
        path: path.clone(),
        error: "not a credentials file (name, credentials, key)".into(),
    };
    let mut lines = text.lines();
    let (Some(name), Some(creds), Some(key)) = (lines.next(), lines.next(), lines.next()) else {
        return Err(bad());
    };
    let security_key = (0..key.len())
        .step_by(2)
        .map(|i| {
            key.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)?;
    Ok(Some(Registered {
        thing_name: name.to_string(),
        credentials: creds.to_string(),
        security_key,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_file_round_trip() {
        let dir = std::env::temp_dir().join(format!("lithos-thing-{}", rand_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("c");
        assert!(load(&p).unwrap().is_none());
        let r = Registered {
            thing_name: "sl-01-0a1b2c3d".into(),
            credentials: "9F3A01BC".into(),
            security_key: (0..16).collect(),
        };
        save(&p, &r).unwrap();
        assert_eq!(load(&p).unwrap(), Some(r));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "readable by others: {mode:o}");
        }
        std::fs::write(&p, "only one line").unwrap();
        assert!(load(&p).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn rand_suffix() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    }
}
