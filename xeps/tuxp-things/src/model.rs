//! Thing models: what each kind of thing supports.

/// A protocol element a model supports: an action, an event or a data kind, named by its
/// qualified element name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Protocol {
    /// Namespace.
    pub ns: &'static str,
    /// Element name.
    pub name: &'static str,
}

impl Protocol {
    /// A protocol element.
    pub const fn new(ns: &'static str, name: &'static str) -> Protocol {
        Protocol { ns, name }
    }

    /// Whether `el` is this element.
    pub fn matches(&self, el: &lithos_core::Element) -> bool {
        el.is(self.name, self.ns)
    }

    /// The text form of a protocol in follows: `{ns}name` (Clark notation).
    pub fn key(&self) -> String {
        format!("{{{}}}{}", self.ns, self.name)
    }
}

/// The `{ns}name` key of an element (see [`Protocol::key`]).
pub fn key_of(el: &lithos_core::Element) -> String {
    format!("{{{}}}{}", el.ns(), el.name())
}

/// A model descriptor, contributed by the crate that defines the model:
///
/// ```
/// use lithos_tuxp_things::{Protocol, ThingModel};
/// lithos_core::extension! {
///     model: ThingModel {
///         name: "DOC-01",
///         description: "a lamp for the documentation",
///         actions: &[Protocol::new("urn:example:lamp", "on"), Protocol::new("urn:example:lamp", "off")],
///         events: &[],
///         data: &[],
///         concentrator: false,
///     },
/// }
/// assert!(lithos_tuxp_things::model("DOC-01").is_some());
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ThingModel {
    /// Model name, the prefix of its things' ids (`SL-01`).
    pub name: &'static str,
    /// One line for people.
    pub description: &'static str,
    /// Actions it executes (`urn:leps:tuxp:actuator`).
    pub actions: &'static [Protocol],
    /// Events it notifies.
    pub events: &'static [Protocol],
    /// Data it reports.
    pub data: &'static [Protocol],
    /// Whether its things are concentrators (gateways): edge things with LAN nodes behind
    /// them (`gateway/1` to `gateway/255`), added with `add-node`
    /// (`urn:leps:tuxp:concentrator`).
    pub concentrator: bool,
}

impl ThingModel {
    /// Whether the model executes `action`.
    pub fn supports_action(&self, action: &lithos_core::Element) -> bool {
        self.actions.iter().any(|p| p.matches(action))
    }

    /// Whether the model declares `event` (a notification's payload).
    pub fn declares_event(&self, event: &lithos_core::Element) -> bool {
        self.events.iter().any(|p| p.matches(event))
    }

    /// Whether the model declares `data` (a report's payload).
    pub fn declares_data(&self, data: &lithos_core::Element) -> bool {
        self.data.iter().any(|p| p.matches(data))
    }

    /// The declared event whose key (`{ns}name`) is `key`.
    pub fn event_by_key(&self, key: &str) -> Option<&'static Protocol> {
        self.events.iter().find(|p| p.key() == key)
    }

    /// The declared report data whose key (`{ns}name`) is `key`.
    pub fn data_by_key(&self, key: &str) -> Option<&'static Protocol> {
        self.data.iter().find(|p| p.key() == key)
    }
}

inventory::collect!(ThingModel);

/// Every model linked into the program, by name. Two models with one name is a build
/// mistake; the first registered wins and the other is reported in the log of whoever asks.
pub fn models() -> Vec<&'static ThingModel> {
    let mut v: Vec<&'static ThingModel> = inventory::iter::<ThingModel>.into_iter().collect();
    v.sort_by_key(|m| m.name);
    v.dedup_by_key(|m| m.name);
    v
}

/// The linked model named `name`.
pub fn model(name: &str) -> Option<&'static ThingModel> {
    inventory::iter::<ThingModel>
        .into_iter()
        .find(|m| m.name == name)
}
