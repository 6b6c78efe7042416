//! The publish-subscribe engine: nodes in memory (configuration, affiliations,
//! subscriptions, latest item) and in the database (everything, items included), the
//! requests of XEP-0060 §6–8, and the notifications they cause.
//!
//! One engine serves the `pubsub.<domain>` service and another every account's personal
//! eventing service (XEP-0163); a request names its service (a domain or an account's bare
//! JID) and its [`Profile`]. Changes are written one at a time, each answered only once it
//! is in the database; notifications are returned as [`Event`]s for the module to deliver
//! (PEP adds the contacts that asked for them with `+notify`).

// Refusals end as the kernel's `IqResponse`, whose error is a `StanzaError` by value: boxing
// them here would only box and unbox each one on its way out.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_core::{Element, Jid, Payload};
use lithos_rsm::ResultSet;
use lithos_server::ServerHandle;
use lithos_server::module::{IqRequest, internal_error};
use lithos_server::storage::Database;
use lithos_xdata::{Form, FormType};

use crate::config::{AccessModel, Bounds, NodeConfig, PublishModel, SendLastPublished};
use crate::error::{PubsubError, pubsub_error, unsupported};
use crate::store::{self, Item, Selection};
use crate::{Affiliation, NS, NS_EVENT, NS_META_DATA, NS_OWNER, NS_PUBLISH_OPTIONS};

/// Which service a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// The `pubsub.<domain>` service: local accounts create nodes and own what they create.
    Service,
    /// An account's personal eventing service (XEP-0163): the account owns every node, and
    /// a node is created by its first publication.
    Pep,
}

/// The bounds of an engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Nodes per service (an account's PEP, or the pubsub service).
    pub max_nodes: usize,
    /// What `max_items` may be at most.
    pub max_items: usize,
    /// A payload's serialized size at most, in bytes.
    pub max_payload_bytes: usize,
    /// Subscriptions per node.
    pub max_subscriptions: usize,
    /// Items one retrieval returns at most (a larger request gets the latest this many).
    pub max_retrieve: usize,
}

impl Limits {
    fn bounds(&self) -> Bounds {
        Bounds {
            max_items: self.max_items,
        }
    }
}

/// A node in memory.
#[derive(Debug, Clone)]
pub struct Node {
    /// Its configuration.
    pub config: NodeConfig,
    /// Affiliations other than `none`, by bare JID (for PEP, the account is the owner
    /// without being listed).
    pub affiliations: HashMap<String, Affiliation>,
    /// Subscriptions: the subscribed JID (bare or full) and its subid.
    pub subscriptions: BTreeMap<String, String>,
    /// The latest item of a persistent node.
    pub last: Option<Item>,
}

/// A notification to deliver: from the service, about `node`, to its subscribers (and, for
/// PEP when `broadcast`, to the contacts that asked with `+notify`).
#[derive(Debug, Clone)]
pub struct Event {
    /// The node.
    pub node: String,
    /// Its configuration when the event happened.
    pub config: NodeConfig,
    /// The explicit subscribers (bare or full JIDs).
    pub subscribers: Vec<String>,
    /// The `<event/>`'s child: `<items/>`, `<delete/>`, `<purge/>` or `<configuration/>`.
    pub body: Element,
    /// For everyone interested (a publication, a retraction...), or only for
    /// `subscribers` (the last item sent to a new subscriber).
    pub broadcast: bool,
}

impl Event {
    /// The notification message from `service` to `to`.
    pub fn message(&self, service: &Jid, to: &str, id: String) -> Element {
        Element::builder("message", lithos_core::ns::JABBER_CLIENT)
            .attr("from", service.to_string())
            .attr("to", to.to_string())
            .attr("type", self.config.notification_type.as_str())
            .attr("id", id)
            .child(
                Element::builder("event", NS_EVENT)
                    .child(self.body.clone())
                    .build(),
            )
            .build()
    }
}

/// A request's context.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    /// The server.
    pub server: &'a ServerHandle,
    /// The service addressed: the pubsub domain, or an account's bare JID.
    pub service: &'a Jid,
    /// The requester.
    pub from: &'a Jid,
    /// Which kind of service.
    pub profile: Profile,
}

impl Ctx<'_> {
    fn requester(&self) -> String {
        self.from.to_bare().to_string()
    }
}

/// The publish-subscribe engine.
pub struct Engine {
    limits: Limits,
    state: Mutex<HashMap<String, HashMap<String, Node>>>,
    /// Changes, one at a time: each decided, written, then applied in memory.
    writes: tokio::sync::Mutex<()>,
    seq: AtomicI64,
    ids: AtomicU64,
}

type Answer = Result<(Option<Element>, Vec<Event>), StanzaError>;

fn refuse(condition: DefinedCondition, text: &str) -> StanzaError {
    StanzaError::explained(condition, text.to_string())
}

fn no_node() -> StanzaError {
    refuse(DefinedCondition::ItemNotFound, "no such node")
}

fn pubsub(ns: &str, child: Element) -> Element {
    Element::builder("pubsub", ns.to_string())
        .child(child)
        .build()
}

fn config_xml(config: &NodeConfig, bounds: Bounds) -> String {
    let mut form = config.to_form(bounds);
    form.type_ = FormType::Submit;
    form.to_element().to_xml()
}

fn form_in(el: Option<&Element>) -> Result<Option<Form>, StanzaError> {
    match el.and_then(|e| e.get_child("x", lithos_xdata::NS)) {
        None => Ok(None),
        Some(x) => Form::from_element(x.clone())
            .map(Some)
            .map_err(|e| refuse(DefinedCondition::BadRequest, &format!("the form: {e}"))),
    }
}

fn item_element(item: &Item, with_payload: bool, ns: &str) -> Element {
    let mut el = Element::builder("item", ns.to_string())
        .attr("id", item.id.clone())
        .attr("publisher", item.publisher.clone())
        .build();
    if with_payload && let Some(p) = &item.payload {
        el.append_child(p.clone());
    }
    el
}

impl Engine {
    /// An empty engine.
    pub fn new(limits: Limits) -> Engine {
        Engine {
            limits,
            state: Mutex::new(HashMap::new()),
            writes: tokio::sync::Mutex::new(()),
            seq: AtomicI64::new(0),
            ids: AtomicU64::new(0),
        }
    }

    /// Its bounds.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, HashMap<String, Node>>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads the nodes of the services `mine` accepts. A node whose configuration cannot be
    /// read is left out, and said so.
    pub async fn load(
        &self,
        db: &Database,
        mine: impl Fn(&str) -> bool,
    ) -> Result<usize, lithos_server::storage::StorageError> {
        let (nodes, max_seq) = store::load(db).await?;
        self.seq.fetch_max(max_seq, Ordering::Relaxed);
        let bounds = self.limits.bounds();
        let mut state = self.lock();
        let mut n = 0;
        for s in nodes {
            if !mine(&s.service) {
                continue;
            }
            let form = Element::parse(&s.config)
                .ok()
                .and_then(|e| Form::from_element(e).ok());
            let mut config = NodeConfig::service_default(bounds);
            if !matches!(form.map(|f| config.apply(&f, bounds)), Some(Ok(()))) {
                tracing::error!(service = %s.service, node = %s.node, "a pubsub node's configuration is unreadable; the node is not loaded");
                continue;
            }
            let node = Node {
                config,
                affiliations: s
                    .affiliations
                    .into_iter()
                    .filter_map(|(j, a)| Affiliation::parse(&a).map(|a| (j, a)))
                    .collect(),
                subscriptions: s.subscriptions.into_iter().collect(),
                last: s.last,
            };
            state.entry(s.service).or_default().insert(s.node, node);
            n += 1;
        }
        Ok(n)
    }

    /// Changes the node `node` of `cx`'s service in memory, if it is still there.
    fn change<R>(&self, cx: &Ctx<'_>, node: &str, f: impl FnOnce(&mut Node) -> R) -> Option<R> {
        self.lock()
            .get_mut(cx.service.as_str())
            .and_then(|m| m.get_mut(node))
            .map(f)
    }

    /// An event about `node` for its subscribers and, for PEP, everyone interested.
    fn event(node: &str, n: &Node, body: Element) -> Event {
        Event {
            node: node.to_string(),
            config: n.config.clone(),
            subscribers: n.subscriptions.keys().cloned().collect(),
            body,
            broadcast: true,
        }
    }

    /// A copy of a node.
    pub fn node(&self, service: &str, node: &str) -> Option<Node> {
        self.lock().get(service)?.get(node).cloned()
    }

    /// The names of a service's nodes.
    pub fn node_names(&self, service: &str) -> Vec<String> {
        self.lock()
            .get(service)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The nodes of `service` with a latest item to send when a contact's presence arrives
    /// (`on_sub_and_presence`), as events for that contact alone.
    pub fn presence_items(&self, service: &str) -> Vec<Event> {
        let state = self.lock();
        let Some(nodes) = state.get(service) else {
            return Vec::new();
        };
        nodes
            .iter()
            .filter(|(_, n)| {
                n.config.send_last_published_item == SendLastPublished::OnSubAndPresence
            })
            .filter_map(|(name, n)| {
                let item = n.last.as_ref()?;
                Some(Event {
                    node: name.clone(),
                    config: n.config.clone(),
                    subscribers: Vec::new(),
                    body: items_body(name, item, n.config.deliver_payloads),
                    broadcast: false,
                })
            })
            .collect()
    }

    /// Forgets what an account had: its personal nodes (`service`), its affiliations and
    /// its subscriptions (the database rows go with the account's deletion).
    pub fn forget_account(&self, bare: &str) {
        let mut state = self.lock();
        state.remove(bare);
        let prefix = format!("{bare}/");
        for nodes in state.values_mut() {
            for n in nodes.values_mut() {
                n.affiliations.remove(bare);
                n.subscriptions
                    .retain(|j, _| j != bare && !j.starts_with(&prefix));
            }
        }
    }

    fn next_id(&self) -> String {
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        format!("{:x}-{n:x}", lithos_core::datetime::now_ms())
    }

    /// The affiliation of `bare` with a node.
    pub fn affiliation(cx: &Ctx<'_>, node: &Node, bare: &str) -> Affiliation {
        if cx.profile == Profile::Pep && bare == cx.service.as_str() {
            return Affiliation::Owner;
        }
        node.affiliations
            .get(bare)
            .copied()
            .unwrap_or(Affiliation::None)
    }

    /// Whether `bare` may subscribe to and retrieve from a node (XEP-0060 §6.1.3, §6.5.9).
    pub async fn check_access(
        &self,
        cx: &Ctx<'_>,
        node: &Node,
        bare: &str,
    ) -> Result<(), StanzaError> {
        let aff = Self::affiliation(cx, node, bare);
        if aff == Affiliation::Outcast {
            return Err(refuse(
                DefinedCondition::Forbidden,
                "you are banned from this node",
            ));
        }
        if aff >= Affiliation::Member {
            return Ok(());
        }
        let model = node.config.access_model;
        if model == AccessModel::Open {
            return Ok(());
        }
        if model == AccessModel::Whitelist {
            return Err(pubsub_error(
                PubsubError::ClosedNode,
                "this node is open to its whitelist only",
            ));
        }
        // Presence and roster: the owner's roster says.
        let owners: Vec<String> = match cx.profile {
            Profile::Pep => vec![cx.service.to_string()],
            Profile::Service => node
                .affiliations
                .iter()
                .filter(|(_, a)| **a == Affiliation::Owner)
                .map(|(j, _)| j.clone())
                .collect(),
        };
        let rosters = lithos_roster::store::Rosters::of(cx.server);
        for owner in owners {
            let Ok(jid) = Jid::new(&owner) else { continue };
            let Some(user) = jid.local().filter(|_| cx.server.is_local(&jid)) else {
                continue;
            };
            let item = rosters
                .roster_item(user, bare)
                .await
                .map_err(internal_error)?;
            let Some(item) = item else { continue };
            let ok = match model {
                AccessModel::Presence => item.subscription.has_from(),
                _ => item
                    .groups
                    .iter()
                    .any(|g| node.config.roster_groups_allowed.contains(g)),
            };
            if ok {
                return Ok(());
            }
        }
        Err(match model {
            AccessModel::Presence => pubsub_error(
                PubsubError::PresenceSubscriptionRequired,
                "this node is for the owner's presence subscribers",
            ),
            _ => pubsub_error(
                PubsubError::NotInRosterGroup,
                "this node is for some of the owner's contacts",
            ),
        })
    }

    /// Answers a request (`pubsub` or `pubsub#owner`), returning the answer's payload and the
    /// notifications to deliver.
    pub async fn handle(&self, cx: &Ctx<'_>, req: &IqRequest) -> Answer {
        let p = &req.payload;
        if p.name() != "pubsub" {
            return Err(refuse(DefinedCondition::BadRequest, "not a pubsub request"));
        }
        let owner = p.ns() == NS_OWNER;
        // The request's verb; `configure`, `publish-options`, `options` and a result set
        // travel beside `create`, `publish`, `subscribe` and `items`.
        let verb = if owner {
            p.children().next()
        } else {
            p.children()
                .find(|c| {
                    !matches!(
                        c.name(),
                        "configure" | "publish-options" | "options" | "set"
                    )
                })
                .or_else(|| p.children().next())
        };
        let Some(verb) = verb else {
            return Err(refuse(
                DefinedCondition::BadRequest,
                "an empty pubsub request",
            ));
        };
        let node = verb.attr("node").map(str::to_string);
        let set = req.is_set;
        match (owner, verb.name(), set) {
            (false, "create", true) => self.create(cx, node, p.get_child("configure", NS)).await,
            (false, "publish", true) => {
                let node = node.ok_or_else(|| {
                    pubsub_error(PubsubError::NodeidRequired, "publish names a node")
                })?;
                self.publish(cx, node, verb, p.get_child("publish-options", NS))
                    .await
            }
            (false, "retract", true) => self.retract(cx, need(node)?, verb).await,
            (false, "subscribe", true) => self.subscribe(cx, need(node)?, verb).await,
            (false, "unsubscribe", true) => self.unsubscribe(cx, need(node)?, verb).await,
            (false, "items", false) => {
                self.items(cx, need(node)?, verb, p.get_child("set", lithos_rsm::NS))
                    .await
            }
            (false, "subscriptions", false) => {
                Ok((Some(self.own_subscriptions(cx, node.as_deref())), vec![]))
            }
            (false, "affiliations", false) => {
                Ok((Some(self.own_affiliations(cx, node.as_deref())), vec![]))
            }
            (false, "options", _) => Err(unsupported("subscription-options")),
            (true, "configure", false) => self.get_configuration(cx, need(node)?),
            (true, "configure", true) => self.configure(cx, need(node)?, verb).await,
            (true, "default", false) => {
                let c = self.default_config(cx.profile);
                let form = c.to_form(self.limits.bounds()).to_element();
                Ok((
                    Some(pubsub(
                        NS_OWNER,
                        Element::builder("default", NS_OWNER).child(form).build(),
                    )),
                    vec![],
                ))
            }
            (true, "delete", true) => self.delete(cx, need(node)?).await,
            (true, "purge", true) => self.purge(cx, need(node)?).await,
            (true, "subscriptions", false) => self.owner_subscriptions(cx, need(node)?),
            (true, "subscriptions", true) => self.set_subscriptions(cx, need(node)?, verb).await,
            (true, "affiliations", false) => self.owner_affiliations(cx, need(node)?),
            (true, "affiliations", true) => self.set_affiliations(cx, need(node)?, verb).await,
            (_, name, _) => Err(refuse(
                DefinedCondition::FeatureNotImplemented,
                &format!("{name} is not a request this service answers with this type"),
            )),
        }
    }

    fn default_config(&self, profile: Profile) -> NodeConfig {
        match profile {
            Profile::Service => NodeConfig::service_default(self.limits.bounds()),
            Profile::Pep => NodeConfig::pep_default(self.limits.bounds()),
        }
    }

    /// Whether `cx.from` may create nodes on this service.
    fn may_create(&self, cx: &Ctx<'_>) -> Result<(), StanzaError> {
        let ok = match cx.profile {
            Profile::Pep => cx.from.bare_eq(cx.service),
            Profile::Service => cx.server.is_local(cx.from),
        };
        if ok {
            Ok(())
        } else {
            Err(refuse(
                DefinedCondition::Forbidden,
                "you may not create nodes here",
            ))
        }
    }

    /// Decides a new node (under the lock): its name and configuration.
    fn new_node(
        &self,
        cx: &Ctx<'_>,
        name: Option<String>,
        form: Option<&Form>,
    ) -> Result<(String, NodeConfig), StanzaError> {
        self.may_create(cx)?;
        let name = match name {
            Some(n) if n.is_empty() || n.len() > 256 => {
                return Err(refuse(
                    DefinedCondition::BadRequest,
                    "a node name has 1 to 256 bytes",
                ));
            }
            Some(n) => n,
            None => self.next_id(),
        };
        let mut config = self.default_config(cx.profile);
        if let Some(f) = form {
            config
                .apply(f, self.limits.bounds())
                .map_err(|e| refuse(DefinedCondition::NotAcceptable, &e))?;
        }
        let state = self.lock();
        let nodes = state.get(cx.service.as_str());
        if nodes.is_some_and(|m| m.contains_key(&name)) {
            return Err(refuse(DefinedCondition::Conflict, "the node exists"));
        }
        if nodes.is_some_and(|m| m.len() >= self.limits.max_nodes) {
            return Err(pubsub_error(
                PubsubError::MaxNodesExceeded,
                "this service keeps no more nodes",
            ));
        }
        Ok((name, config))
    }

    /// Writes a decided node and puts it in memory.
    async fn insert_node(
        &self,
        cx: &Ctx<'_>,
        name: &str,
        config: NodeConfig,
    ) -> Result<(), StanzaError> {
        let owner = match cx.profile {
            Profile::Pep => cx.service.to_string(),
            Profile::Service => cx.requester(),
        };
        store::create_node(
            cx.server.storage().db(),
            cx.service.as_str(),
            name,
            config_xml(&config, self.limits.bounds()),
            &owner,
        )
        .await
        .map_err(internal_error)?;
        let mut affiliations = HashMap::new();
        affiliations.insert(owner, Affiliation::Owner);
        self.lock()
            .entry(cx.service.to_string())
            .or_default()
            .insert(
                name.to_string(),
                Node {
                    config,
                    affiliations,
                    subscriptions: BTreeMap::new(),
                    last: None,
                },
            );
        Ok(())
    }

    /// Creates `node` for `cx.from` with `config` applied to the defaults, unless it exists,
    /// and makes each of `publishers` (bare JIDs) a publisher of a node it creates.
    pub async fn ensure_node(
        &self,
        cx: &Ctx<'_>,
        node: &str,
        config: Option<&Form>,
        publishers: &[String],
    ) -> Result<(), StanzaError> {
        if self.node(cx.service.as_str(), node).is_some() {
            return Ok(());
        }
        let _w = self.writes.lock().await;
        if self.node(cx.service.as_str(), node).is_some() {
            return Ok(());
        }
        let (name, config) = self.new_node(cx, Some(node.to_string()), config)?;
        self.insert_node(cx, &name, config).await?;
        let db = cx.server.storage().db();
        for p in publishers {
            store::set_affiliation(
                db,
                cx.service.as_str(),
                &name,
                p,
                Some(Affiliation::Publisher.as_str()),
            )
            .await
            .map_err(internal_error)?;
            self.change(cx, &name, |n| {
                n.affiliations.insert(p.clone(), Affiliation::Publisher);
            });
        }
        Ok(())
    }

    async fn create(
        &self,
        cx: &Ctx<'_>,
        name: Option<String>,
        configure: Option<&Element>,
    ) -> Answer {
        let form = form_in(configure)?;
        let _w = self.writes.lock().await;
        let instant = name.is_none();
        let (name, config) = self.new_node(cx, name, form.as_ref())?;
        self.insert_node(cx, &name, config).await?;
        // An instant node's name goes back to its creator (§8.1.2).
        let answer = instant.then(|| {
            pubsub(
                NS,
                Element::builder("create", NS).attr("node", name).build(),
            )
        });
        Ok((answer, vec![]))
    }

    /// Looks a node up, or answers `item-not-found`.
    fn existing(&self, cx: &Ctx<'_>, node: &str) -> Result<Node, StanzaError> {
        self.node(cx.service.as_str(), node).ok_or_else(no_node)
    }

    /// An owner's change: the write lock, and the node, which `cx.from` must own.
    async fn owned(
        &self,
        cx: &Ctx<'_>,
        node: &str,
    ) -> Result<(tokio::sync::MutexGuard<'_, ()>, Node), StanzaError> {
        let w = self.writes.lock().await;
        let n = self.existing(cx, node)?;
        Self::require_owner(cx, &n)?;
        Ok((w, n))
    }

    fn require_owner(cx: &Ctx<'_>, node: &Node) -> Result<(), StanzaError> {
        if Self::affiliation(cx, node, &cx.requester()) == Affiliation::Owner {
            Ok(())
        } else {
            Err(refuse(
                DefinedCondition::Forbidden,
                "only the node's owners may do this",
            ))
        }
    }

    async fn publish(
        &self,
        cx: &Ctx<'_>,
        node: String,
        verb: &Element,
        options: Option<&Element>,
    ) -> Answer {
        let options = form_in(options)?;
        if let Some(f) = &options
            && f.form_type() != Some(NS_PUBLISH_OPTIONS)
        {
            return Err(refuse(
                DefinedCondition::BadRequest,
                "publish-options need their FORM_TYPE",
            ));
        }
        let mut items = verb.children().filter(|c| c.is("item", NS));
        let item = items.next();
        if items.next().is_some() || verb.children().any(|c| !c.is("item", NS)) {
            return Err(pubsub_error(
                PubsubError::InvalidPayload,
                "one item per publication",
            ));
        }
        let payload = match item {
            None => None,
            Some(i) => {
                let mut children = i.children();
                let p = children.next().cloned();
                if children.next().is_some() {
                    return Err(pubsub_error(
                        PubsubError::InvalidPayload,
                        "one payload per item",
                    ));
                }
                p
            }
        };
        if let Some(p) = &payload
            && p.to_xml().len() > self.limits.max_payload_bytes
        {
            return Err(pubsub_error(
                PubsubError::PayloadTooBig,
                &format!(
                    "a payload has {} bytes at most",
                    self.limits.max_payload_bytes
                ),
            ));
        }
        let id = item
            .and_then(|i| i.attr("id"))
            .filter(|id| !id.is_empty())
            .map(str::to_string);
        self.publish_item(cx, node, item.is_some(), payload, id, options)
            .await
    }

    /// Publishes an item to `node` as `cx.from` (XEP-0060 §7.1): `has_item` says whether the
    /// request held an `<item/>`, `payload` its payload, `id` its id (generated if `None`),
    /// `options` its publish-options (preconditions, or a new node's configuration).
    pub async fn publish_item(
        &self,
        cx: &Ctx<'_>,
        node: String,
        has_item: bool,
        payload: Option<Element>,
        id: Option<String>,
        options: Option<Form>,
    ) -> Answer {
        let id = id.unwrap_or_else(|| self.next_id());
        let publisher = cx.requester();
        let _w = self.writes.lock().await;
        let current = self.node(cx.service.as_str(), &node);
        let node_now = match current {
            Some(n) => {
                if let Some(f) = &options {
                    n.config
                        .meets(f, self.limits.bounds())
                        .map_err(|e| pubsub_error(PubsubError::PreconditionNotMet, &e))?;
                }
                n
            }
            None => {
                // Auto-create (§7.1.4), with the publish-options as the configuration.
                let (name, config) = self.new_node(cx, Some(node.clone()), options.as_ref())?;
                self.insert_node(cx, &name, config).await?;
                self.existing(cx, &node)?
            }
        };
        let aff = Self::affiliation(cx, &node_now, &publisher);
        let allowed = aff != Affiliation::Outcast
            && match node_now.config.publish_model {
                PublishModel::Publishers => aff >= Affiliation::Publisher,
                PublishModel::Subscribers => {
                    aff >= Affiliation::Publisher
                        || node_now
                            .subscriptions
                            .keys()
                            .any(|j| Jid::new(j).is_ok_and(|j| j.bare_eq(cx.from)))
                }
                PublishModel::Open => true,
            };
        if !allowed {
            return Err(refuse(
                DefinedCondition::Forbidden,
                "you may not publish to this node",
            ));
        }
        let config = &node_now.config;
        if (config.persist_items || config.deliver_payloads) && payload.is_none() {
            return Err(if !has_item {
                pubsub_error(PubsubError::ItemRequired, "this node needs an item")
            } else {
                pubsub_error(PubsubError::PayloadRequired, "this node needs a payload")
            });
        }
        if !config.persist_items && !config.deliver_payloads && payload.is_some() {
            return Err(pubsub_error(
                PubsubError::InvalidPayload,
                "this node takes notifications without payloads",
            ));
        }
        let item = Item {
            id: id.clone(),
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            publisher,
            stamp: lithos_core::datetime::now_ms() as i64,
            payload,
        };
        if config.persist_items {
            store::put_item(
                cx.server.storage().db(),
                cx.service.as_str(),
                &node,
                &item,
                config.max_items,
            )
            .await
            .map_err(internal_error)?;
        }
        let event = {
            let mut state = self.lock();
            let n = state
                .get_mut(cx.service.as_str())
                .and_then(|m| m.get_mut(&node))
                .ok_or_else(no_node)?;
            if n.config.persist_items {
                n.last = Some(item.clone());
            }
            Self::event(
                &node,
                n,
                items_body(&node, &item, n.config.deliver_payloads),
            )
        };
        let answer = pubsub(
            NS,
            Element::builder("publish", NS)
                .attr("node", node)
                .child(Element::builder("item", NS).attr("id", id).build())
                .build(),
        );
        let events = if event.config.deliver_notifications {
            vec![event]
        } else {
            vec![]
        };
        Ok((Some(answer), events))
    }

    async fn retract(&self, cx: &Ctx<'_>, node: String, verb: &Element) -> Answer {
        let ids: Vec<String> = verb
            .children()
            .filter(|c| c.is("item", NS))
            .filter_map(|c| c.attr("id").map(str::to_string))
            .collect();
        if ids.len() != 1 {
            return Err(refuse(
                DefinedCondition::BadRequest,
                "retract one item, by its id",
            ));
        }
        let notify = matches!(verb.attr("notify"), Some("true" | "1"));
        let _w = self.writes.lock().await;
        let n = self.existing(cx, &node)?;
        let id = &ids[0];
        let aff = Self::affiliation(cx, &n, &cx.requester());
        if aff < Affiliation::Publisher {
            return Err(refuse(
                DefinedCondition::Forbidden,
                "only publishers and owners retract",
            ));
        }
        let db = cx.server.storage().db();
        if !store::retract_item(db, cx.service.as_str(), &node, id)
            .await
            .map_err(internal_error)?
        {
            return Err(refuse(DefinedCondition::ItemNotFound, "no such item"));
        }
        let last = store::latest(db, cx.service.as_str(), &node)
            .await
            .map_err(internal_error)?;
        let mut state = self.lock();
        let Some(n) = state
            .get_mut(cx.service.as_str())
            .and_then(|m| m.get_mut(&node))
        else {
            return Err(no_node());
        };
        n.last = last;
        let events = if (notify || n.config.notify_retract) && n.config.deliver_notifications {
            vec![Self::event(
                &node,
                n,
                Element::builder("items", NS_EVENT)
                    .attr("node", node.clone())
                    .child(
                        Element::builder("retract", NS_EVENT)
                            .attr("id", id.clone())
                            .build(),
                    )
                    .build(),
            )]
        } else {
            vec![]
        };
        Ok((None, events))
    }

    async fn subscribe(&self, cx: &Ctx<'_>, node: String, verb: &Element) -> Answer {
        let jid = verb
            .attr("jid")
            .and_then(|j| Jid::new(j).ok())
            .ok_or_else(|| pubsub_error(PubsubError::InvalidJid, "subscribe names a valid jid"))?;
        if !jid.bare_eq(cx.from) {
            return Err(pubsub_error(
                PubsubError::InvalidJid,
                "you may subscribe your own address only",
            ));
        }
        let n = self.existing(cx, &node)?;
        self.check_access(cx, &n, &cx.requester()).await?;
        let _w = self.writes.lock().await;
        let n = self.existing(cx, &node)?;
        let key = jid.to_string();
        let subid = match n.subscriptions.get(&key) {
            Some(s) => s.clone(),
            None => {
                if n.subscriptions.len() >= self.limits.max_subscriptions {
                    return Err(pubsub_error(
                        PubsubError::TooManySubscriptions,
                        "this node has as many subscribers as it may",
                    ));
                }
                let subid = self.next_id();
                store::set_subscription(
                    cx.server.storage().db(),
                    cx.service.as_str(),
                    &node,
                    &key,
                    Some(subid.clone()),
                )
                .await
                .map_err(internal_error)?;
                self.change(cx, &node, |n| {
                    n.subscriptions.insert(key.clone(), subid.clone());
                });
                subid
            }
        };
        let answer = pubsub(
            NS,
            Element::builder("subscription", NS)
                .attr("node", node.clone())
                .attr("jid", key.clone())
                .attr("subid", subid)
                .attr("subscription", "subscribed")
                .build(),
        );
        let mut events = Vec::new();
        if n.config.send_last_published_item != SendLastPublished::Never
            && let Some(item) = &n.last
        {
            events.push(Event {
                node: node.clone(),
                config: n.config.clone(),
                subscribers: vec![key],
                body: items_body(&node, item, n.config.deliver_payloads),
                broadcast: false,
            });
        }
        Ok((Some(answer), events))
    }

    async fn unsubscribe(&self, cx: &Ctx<'_>, node: String, verb: &Element) -> Answer {
        let jid = verb
            .attr("jid")
            .and_then(|j| Jid::new(j).ok())
            .ok_or_else(|| {
                pubsub_error(PubsubError::InvalidJid, "unsubscribe names a valid jid")
            })?;
        let _w = self.writes.lock().await;
        let n = self.existing(cx, &node)?;
        if !jid.bare_eq(cx.from) && Self::affiliation(cx, &n, &cx.requester()) != Affiliation::Owner
        {
            return Err(refuse(
                DefinedCondition::Forbidden,
                "you may unsubscribe your own address only",
            ));
        }
        let key = jid.to_string();
        let Some(subid) = n.subscriptions.get(&key) else {
            return Err(pubsub_error(
                PubsubError::NotSubscribed,
                "this address is not subscribed",
            ));
        };
        if verb.attr("subid").is_some_and(|s| s != subid) {
            return Err(refuse(
                DefinedCondition::NotAcceptable,
                "no subscription with this subid",
            ));
        }
        store::set_subscription(
            cx.server.storage().db(),
            cx.service.as_str(),
            &node,
            &key,
            None,
        )
        .await
        .map_err(internal_error)?;
        self.change(cx, &node, |n| {
            n.subscriptions.remove(&key);
        });
        Ok((None, vec![]))
    }

    async fn items(
        &self,
        cx: &Ctx<'_>,
        node: String,
        verb: &Element,
        rsm: Option<&Element>,
    ) -> Answer {
        let n = self.existing(cx, &node)?;
        self.check_access(cx, &n, &cx.requester()).await?;
        let cap = self.limits.max_retrieve;
        let ids: Vec<String> = verb
            .children()
            .filter(|c| c.is("item", NS))
            .filter_map(|c| c.attr("id").map(str::to_string))
            .collect();
        let rsm = match rsm {
            Some(el) => Some(ResultSet::from_element(el.clone()).map_err(|e| {
                refuse(
                    DefinedCondition::BadRequest,
                    &format!("the result set: {e}"),
                )
            })?),
            None => None,
        };
        let selection = if !ids.is_empty() {
            Selection::Ids(ids)
        } else if let Some(set) = &rsm {
            Selection::Page {
                max: set.max.unwrap_or(cap).min(cap),
                after: set.after.clone(),
                before: set.before.clone(),
            }
        } else {
            let max = verb
                .attr("max_items")
                .and_then(|m| m.parse::<usize>().ok())
                .unwrap_or(cap);
            Selection::Latest(max.min(cap))
        };
        let (found, count) = store::items(
            cx.server.storage().db(),
            cx.service.as_str(),
            &node,
            selection,
        )
        .await
        .map_err(internal_error)?;
        let mut items = Element::builder("items", NS).attr("node", node).build();
        for i in &found {
            items.append_child(item_element(i, true, NS));
        }
        let mut answer = pubsub(NS, items);
        if rsm.is_some() {
            let set = ResultSet {
                first: found.first().map(|i| (i.id.clone(), None)),
                last: found.last().map(|i| i.id.clone()),
                count: Some(count),
                ..ResultSet::default()
            };
            answer.append_child(set.into_element());
        }
        Ok((Some(answer), vec![]))
    }

    fn own_subscriptions(&self, cx: &Ctx<'_>, only: Option<&str>) -> Element {
        let mut list = Element::bare("subscriptions", NS);
        let state = self.lock();
        if let Some(nodes) = state.get(cx.service.as_str()) {
            for (name, n) in nodes {
                if only.is_some_and(|o| o != name) {
                    continue;
                }
                for (jid, subid) in &n.subscriptions {
                    if Jid::new(jid).is_ok_and(|j| j.bare_eq(cx.from)) {
                        list.append_child(
                            Element::builder("subscription", NS)
                                .attr("node", name.clone())
                                .attr("jid", jid.clone())
                                .attr("subid", subid.clone())
                                .attr("subscription", "subscribed")
                                .build(),
                        );
                    }
                }
            }
        }
        pubsub(NS, list)
    }

    fn own_affiliations(&self, cx: &Ctx<'_>, only: Option<&str>) -> Element {
        let mut list = Element::bare("affiliations", NS);
        let me = cx.requester();
        let state = self.lock();
        if let Some(nodes) = state.get(cx.service.as_str()) {
            for (name, n) in nodes {
                if only.is_some_and(|o| o != name) {
                    continue;
                }
                let a = Self::affiliation(cx, n, &me);
                if a != Affiliation::None {
                    list.append_child(
                        Element::builder("affiliation", NS)
                            .attr("node", name.clone())
                            .attr("affiliation", a.as_str())
                            .build(),
                    );
                }
            }
        }
        pubsub(NS, list)
    }

    fn get_configuration(&self, cx: &Ctx<'_>, node: String) -> Answer {
        let n = self.existing(cx, &node)?;
        Self::require_owner(cx, &n)?;
        let form = n.config.to_form(self.limits.bounds()).to_element();
        Ok((
            Some(pubsub(
                NS_OWNER,
                Element::builder("configure", NS_OWNER)
                    .attr("node", node)
                    .child(form)
                    .build(),
            )),
            vec![],
        ))
    }

    async fn configure(&self, cx: &Ctx<'_>, node: String, verb: &Element) -> Answer {
        let form = form_in(Some(verb))?
            .ok_or_else(|| refuse(DefinedCondition::BadRequest, "configure carries a form"))?;
        let (_w, n) = self.owned(cx, &node).await?;
        if form.type_ == FormType::Cancel {
            return Ok((None, vec![]));
        }
        let mut config = n.config.clone();
        config
            .apply(&form, self.limits.bounds())
            .map_err(|e| refuse(DefinedCondition::NotAcceptable, &e))?;
        let db = cx.server.storage().db();
        store::save_node(
            db,
            cx.service.as_str(),
            &node,
            config_xml(&config, self.limits.bounds()),
        )
        .await
        .map_err(internal_error)?;
        if !config.persist_items || config.max_items < n.config.max_items {
            let keep = if config.persist_items {
                config.max_items
            } else {
                0
            };
            store::trim(db, cx.service.as_str(), &node, keep)
                .await
                .map_err(internal_error)?;
        }
        let last = store::latest(db, cx.service.as_str(), &node)
            .await
            .map_err(internal_error)?;
        let mut state = self.lock();
        let Some(n) = state
            .get_mut(cx.service.as_str())
            .and_then(|m| m.get_mut(&node))
        else {
            return Err(no_node());
        };
        n.config = config;
        n.last = last;
        let events = if n.config.notify_config && n.config.deliver_notifications {
            vec![Self::event(
                &node,
                n,
                Element::builder("configuration", NS_EVENT)
                    .attr("node", node.clone())
                    .build(),
            )]
        } else {
            vec![]
        };
        Ok((None, events))
    }

    async fn delete(&self, cx: &Ctx<'_>, node: String) -> Answer {
        let (_w, n) = self.owned(cx, &node).await?;
        store::delete_node(cx.server.storage().db(), cx.service.as_str(), &node)
            .await
            .map_err(internal_error)?;
        if let Some(m) = self.lock().get_mut(cx.service.as_str()) {
            m.remove(&node);
        }
        let events = if n.config.notify_delete && n.config.deliver_notifications {
            vec![Self::event(
                &node,
                &n,
                Element::builder("delete", NS_EVENT)
                    .attr("node", node.clone())
                    .build(),
            )]
        } else {
            vec![]
        };
        Ok((None, events))
    }

    async fn purge(&self, cx: &Ctx<'_>, node: String) -> Answer {
        let (_w, n) = self.owned(cx, &node).await?;
        if !n.config.persist_items {
            return Err(unsupported("persistent-items"));
        }
        store::trim(cx.server.storage().db(), cx.service.as_str(), &node, 0)
            .await
            .map_err(internal_error)?;
        self.change(cx, &node, |n| {
            n.last = None;
        });
        let events = if n.config.deliver_notifications {
            vec![Self::event(
                &node,
                &n,
                Element::builder("purge", NS_EVENT)
                    .attr("node", node.clone())
                    .build(),
            )]
        } else {
            vec![]
        };
        Ok((None, events))
    }

    fn owner_subscriptions(&self, cx: &Ctx<'_>, node: String) -> Answer {
        let n = self.existing(cx, &node)?;
        Self::require_owner(cx, &n)?;
        let mut list = Element::builder("subscriptions", NS_OWNER)
            .attr("node", node)
            .build();
        for (jid, subid) in &n.subscriptions {
            list.append_child(
                Element::builder("subscription", NS_OWNER)
                    .attr("jid", jid.clone())
                    .attr("subid", subid.clone())
                    .attr("subscription", "subscribed")
                    .build(),
            );
        }
        Ok((Some(pubsub(NS_OWNER, list)), vec![]))
    }

    async fn set_subscriptions(&self, cx: &Ctx<'_>, node: String, verb: &Element) -> Answer {
        let (_w, n) = self.owned(cx, &node).await?;
        let mut changes = Vec::new();
        for s in verb.children().filter(|c| c.is("subscription", NS_OWNER)) {
            let jid = jid_of(s, "a subscription")?;
            let on = match s.attr("subscription") {
                Some("subscribed") => true,
                Some("none") => false,
                _ => {
                    return Err(refuse(
                        DefinedCondition::NotAcceptable,
                        "subscription is subscribed or none",
                    ));
                }
            };
            changes.push((jid.to_string(), on));
        }
        let added = changes
            .iter()
            .filter(|(j, on)| *on && !n.subscriptions.contains_key(j))
            .count();
        if n.subscriptions.len() + added > self.limits.max_subscriptions {
            return Err(pubsub_error(
                PubsubError::TooManySubscriptions,
                "this node has as many subscribers as it may",
            ));
        }
        let db = cx.server.storage().db();
        for (jid, on) in changes {
            let subid = match (on, n.subscriptions.get(&jid)) {
                (false, _) => None,
                (true, Some(s)) => Some(s.clone()),
                (true, None) => Some(self.next_id()),
            };
            store::set_subscription(db, cx.service.as_str(), &node, &jid, subid.clone())
                .await
                .map_err(internal_error)?;
            self.change(cx, &node, |n| {
                match subid {
                    Some(s) => n.subscriptions.insert(jid, s),
                    None => n.subscriptions.remove(&jid),
                };
            });
        }
        Ok((None, vec![]))
    }

    fn owner_affiliations(&self, cx: &Ctx<'_>, node: String) -> Answer {
        let n = self.existing(cx, &node)?;
        Self::require_owner(cx, &n)?;
        let mut list = Element::builder("affiliations", NS_OWNER)
            .attr("node", node)
            .build();
        let mut all: Vec<(String, Affiliation)> = n
            .affiliations
            .iter()
            .map(|(j, a)| (j.clone(), *a))
            .collect();
        if cx.profile == Profile::Pep && !n.affiliations.contains_key(cx.service.as_str()) {
            all.push((cx.service.to_string(), Affiliation::Owner));
        }
        all.sort();
        for (jid, a) in all {
            list.append_child(
                Element::builder("affiliation", NS_OWNER)
                    .attr("jid", jid)
                    .attr("affiliation", a.as_str())
                    .build(),
            );
        }
        Ok((Some(pubsub(NS_OWNER, list)), vec![]))
    }

    async fn set_affiliations(&self, cx: &Ctx<'_>, node: String, verb: &Element) -> Answer {
        let (_w, n) = self.owned(cx, &node).await?;
        let mut changes = Vec::new();
        for a in verb.children().filter(|c| c.is("affiliation", NS_OWNER)) {
            let jid = jid_of(a, "an affiliation")?.to_bare().to_string();
            let aff = a
                .attr("affiliation")
                .and_then(Affiliation::parse)
                .ok_or_else(|| {
                    refuse(
                        DefinedCondition::NotAcceptable,
                        "an affiliation XEP-0060 names",
                    )
                })?;
            if cx.profile == Profile::Pep && jid == cx.service.as_str() {
                return Err(refuse(
                    DefinedCondition::NotAcceptable,
                    "the account owns its personal nodes",
                ));
            }
            changes.push((jid, aff));
        }
        // A node keeps an owner (§8.9.2.4 lets a service refuse to leave it without one).
        let mut after = n.affiliations.clone();
        for (j, a) in &changes {
            after.insert(j.clone(), *a);
        }
        if cx.profile == Profile::Service && !after.values().any(|a| *a == Affiliation::Owner) {
            return Err(refuse(
                DefinedCondition::NotAcceptable,
                "the node would have no owner",
            ));
        }
        let db = cx.server.storage().db();
        for (jid, aff) in changes {
            let stored = (aff != Affiliation::None).then_some(aff.as_str());
            store::set_affiliation(db, cx.service.as_str(), &node, &jid, stored)
                .await
                .map_err(internal_error)?;
            if aff == Affiliation::Outcast {
                // An outcast's subscriptions go.
                let gone: Vec<String> = n
                    .subscriptions
                    .keys()
                    .filter(|k| Jid::new(k).is_ok_and(|k| k.bare_str() == jid))
                    .cloned()
                    .collect();
                for k in &gone {
                    store::set_subscription(db, cx.service.as_str(), &node, k, None)
                        .await
                        .map_err(internal_error)?;
                }
                self.change(cx, &node, |n| {
                    for k in &gone {
                        n.subscriptions.remove(k);
                    }
                });
            }
            self.change(cx, &node, |n| {
                match aff {
                    Affiliation::None => n.affiliations.remove(&jid),
                    a => n.affiliations.insert(jid, a),
                };
            });
        }
        Ok((None, vec![]))
    }

    /// disco#info of a node: its identity and metadata form (XEP-0060 §5.4).
    pub fn node_info(&self, cx: &Ctx<'_>, node: &str) -> Result<Element, StanzaError> {
        let n = self.existing(cx, node)?;
        let disco = "http://jabber.org/protocol/disco#info";
        let owners: Vec<String> = match cx.profile {
            Profile::Pep => vec![cx.service.to_string()],
            Profile::Service => n
                .affiliations
                .iter()
                .filter(|(_, a)| **a == Affiliation::Owner)
                .map(|(j, _)| j.clone())
                .collect(),
        };
        let meta = Form::new(FormType::Result, NS_META_DATA)
            .with(lithos_xdata::Field::new(
                "pubsub#title",
                None,
                vec![n.config.title.clone()],
            ))
            .with(lithos_xdata::Field::new(
                "pubsub#type",
                None,
                vec![n.config.payload_type.clone()],
            ))
            .with(lithos_xdata::Field::new(
                "pubsub#owner",
                Some("jid-multi"),
                owners,
            ))
            .with(lithos_xdata::Field::new(
                "pubsub#access_model",
                None,
                vec![n.config.access_model.as_str().into()],
            ))
            .with(lithos_xdata::Field::new(
                "pubsub#publish_model",
                None,
                vec![n.config.publish_model.as_str().into()],
            ))
            .with(lithos_xdata::Field::new(
                "pubsub#num_subscribers",
                None,
                vec![n.subscriptions.len().to_string()],
            ));
        Ok(Element::builder("query", disco)
            .attr("node", node.to_string())
            .child(
                Element::builder("identity", disco)
                    .attr("category", "pubsub")
                    .attr("type", "leaf")
                    .build(),
            )
            .child(Element::builder("feature", disco).attr("var", NS).build())
            .child(meta.to_element())
            .build())
    }

    /// disco#items of a node: its items' ids (XEP-0060 §5.5), if the requester may see them.
    pub async fn node_items(&self, cx: &Ctx<'_>, node: &str) -> Result<Element, StanzaError> {
        let n = self.existing(cx, node)?;
        self.check_access(cx, &n, &cx.requester()).await?;
        let disco = "http://jabber.org/protocol/disco#items";
        let (found, _) = store::items(
            cx.server.storage().db(),
            cx.service.as_str(),
            node,
            Selection::Latest(self.limits.max_retrieve),
        )
        .await
        .map_err(internal_error)?;
        let mut q = Element::builder("query", disco)
            .attr("node", node.to_string())
            .build();
        for i in found {
            q.append_child(
                Element::builder("item", disco)
                    .attr("jid", cx.service.to_string())
                    .attr("name", i.id)
                    .build(),
            );
        }
        Ok(q)
    }
}

/// The `jid` attribute of an owner's list item, or `jid-malformed`.
fn jid_of(item: &Element, what: &str) -> Result<Jid, StanzaError> {
    item.attr("jid")
        .and_then(|j| Jid::new(j).ok())
        .ok_or_else(|| {
            refuse(
                DefinedCondition::JidMalformed,
                &format!("{what} names a valid jid"),
            )
        })
}

fn need(node: Option<String>) -> Result<String, StanzaError> {
    node.ok_or_else(|| pubsub_error(PubsubError::NodeidRequired, "this request names a node"))
}

/// The `<items/>` of a notification carrying `item`.
pub fn items_body(node: &str, item: &Item, with_payload: bool) -> Element {
    Element::builder("items", NS_EVENT)
        .attr("node", node.to_string())
        .child(item_element(item, with_payload, NS_EVENT))
        .build()
}

/// Delivers `event` from `service` to each of `to` (bare or full JIDs): at once to
/// connected local sessions, through the router otherwise. The message is built once; each
/// copy overwrites the template's `to` and `id`.
pub async fn deliver(server: &ServerHandle, service: &Jid, event: &Event, to: &[String]) {
    if to.is_empty() {
        return;
    }
    let prefix = format!("{:x}", lithos_core::datetime::now_ms());
    let template = event.message(service, "", String::new());
    for (i, target) in to.iter().enumerate() {
        let mut msg = template.clone();
        msg.set_attr("to", target.as_str());
        msg.set_attr("id", format!("{prefix}-{i}"));
        if let Err(msg) = server.deliver_now(msg) {
            server.route(msg).await;
        }
    }
}
