//! Answering incoming iqs, and client plugins: extension crates register handlers (and the
//! features they give) through `inventory`, so a client answers pings or disco queries as
//! soon as the crate is linked.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use lithos_core::Element;
use lithos_core::stanza::{Iq, StanzaError};

use crate::{Client, Event};

/// What a handler answers: a result payload (or none), or a stanza error.
pub type IqAnswer = Result<Option<Element>, StanzaError>;

/// What a handler can reach besides the request.
#[derive(Clone)]
pub struct HandlerContext {
    pub(crate) client: Client,
    pub(crate) events: tokio::sync::mpsc::Sender<Event>,
}

impl HandlerContext {
    /// The client that received the request (to send other stanzas).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Hands `iq` to the application as [`Event::Iq`] (a roster push, for example), after
    /// the handler has answered it.
    pub async fn notify(&self, iq: Iq) {
        let _ = self.events.send(Event::Iq(iq)).await;
    }

    /// Hands any event to the application (a message a plugin received inside an iq, for
    /// example).
    pub async fn emit(&self, event: Event) {
        let _ = self.events.send(event).await;
    }
}

/// Answers incoming get and set iqs whose payload is in one namespace. Each request runs in
/// its own task, so a slow handler does not hold up the connection.
#[async_trait]
pub trait IqHandler: Send + Sync + 'static {
    /// Answers `request` (a get or a set).
    async fn handle(&self, ctx: &HandlerContext, request: Iq) -> IqAnswer;
}

/// A plain async function as a handler.
///
/// ```
/// use lithos_client::{ClientBuilder, handler::fn_handler};
/// let builder = ClientBuilder::new("bot@example.com", "pw").unwrap().handle_iq(
///     "urn:example:echo",
///     fn_handler(|_ctx, iq| async move {
///         Ok(match iq.payload {
///             lithos_core::stanza::IqPayload::Get(p) | lithos_core::stanza::IqPayload::Set(p) => Some(p),
///             _ => None,
///         })
///     }),
/// );
/// ```
pub fn fn_handler<F, Fut>(f: F) -> Arc<dyn IqHandler>
where
    F: Fn(HandlerContext, Iq) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = IqAnswer> + Send + 'static,
{
    struct FnHandler<F>(F);
    #[async_trait]
    impl<F, Fut> IqHandler for FnHandler<F>
    where
        F: Fn(HandlerContext, Iq) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = IqAnswer> + Send + 'static,
    {
        async fn handle(&self, ctx: &HandlerContext, request: Iq) -> IqAnswer {
            (self.0)(ctx.clone(), request).await
        }
    }
    Arc::new(FnHandler(f))
}

/// Handlers by payload namespace, as a plugin gives them.
pub type Handlers = Vec<(&'static str, Arc<dyn IqHandler>)>;

/// How an extension crate plugs into every client of the program (in `client: [..]` of its
/// `lithos_core::extension!`).
pub struct ClientPlugin {
    /// Unique name.
    pub name: &'static str,
    /// Features it adds to what the client tells disco#info queries.
    pub features: &'static [&'static str],
    /// Its iq handlers, by payload namespace.
    pub handlers: fn() -> Handlers,
}

inventory::collect!(ClientPlugin);

/// Every plugin linked into the program, sorted by name.
pub fn plugins() -> Vec<&'static ClientPlugin> {
    let mut v: Vec<_> = inventory::iter::<ClientPlugin>.into_iter().collect();
    v.sort_by_key(|p| p.name);
    v
}

/// Every feature the linked plugins give, sorted, without duplicates (for disco#info).
pub fn features() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = plugins().iter().flat_map(|p| p.features).copied().collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The handlers of a connection: the plugins', then the application's (which win).
pub(crate) fn table(own: &[(String, Arc<dyn IqHandler>)]) -> HashMap<String, Arc<dyn IqHandler>> {
    let mut t = HashMap::new();
    for p in plugins() {
        for (ns, h) in (p.handlers)() {
            t.insert(ns.to_string(), h);
        }
    }
    for (ns, h) in own {
        t.insert(ns.clone(), h.clone());
    }
    t
}
