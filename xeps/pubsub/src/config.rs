//! A node's configuration and its `pubsub#node_config` data form (XEP-0060 §8.2), which
//! `publish-options` also use (§7.1.5).

use lithos_xdata::{Field, Form, FormType};

use crate::NS_NODE_CONFIG;

macro_rules! choice {
    ($(#[$m:meta])* $t:ident { $($(#[$vm:meta])* $v:ident = $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $t { $($(#[$vm])* $v),* }
        impl $t {
            /// XEP-0060's name.
            pub fn as_str(self) -> &'static str {
                match self { $($t::$v => $s),* }
            }
            /// From XEP-0060's name.
            pub fn parse(s: &str) -> Option<$t> {
                match s { $($s => Some($t::$v),)* _ => None }
            }
            /// Every value, for the form's options.
            pub fn options() -> &'static [(&'static str, &'static str)] {
                &[$(($s, $s)),*]
            }
        }
    };
}

choice!(
    /// Who may subscribe and retrieve items (XEP-0060 §4.5). `authorize` is not offered.
    AccessModel {
        /// Anyone.
        Open = "open",
        /// Entities subscribed to the owner's presence.
        Presence = "presence",
        /// Entities in the owner's roster, in an allowed group.
        Roster = "roster",
        /// Entities the owner affiliated.
        Whitelist = "whitelist",
    }
);

choice!(
    /// Who may publish.
    PublishModel {
        /// Owners and publishers.
        Publishers = "publishers",
        /// Subscribers too.
        Subscribers = "subscribers",
        /// Anyone.
        Open = "open",
    }
);

choice!(
    /// When the last item goes to an entity without its asking.
    SendLastPublished {
        /// Never.
        Never = "never",
        /// When it subscribes.
        OnSub = "on_sub",
        /// When it subscribes, and when its available presence arrives (PEP).
        OnSubAndPresence = "on_sub_and_presence",
    }
);

choice!(
    /// The type of notification messages.
    NotificationType {
        /// `headline`.
        Headline = "headline",
        /// `normal`.
        Normal = "normal",
    }
);

/// A node's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// A human-readable name.
    pub title: String,
    /// Notifications are sent at all.
    pub deliver_notifications: bool,
    /// Notifications carry the item's payload.
    pub deliver_payloads: bool,
    /// Subscribers are told of configuration changes.
    pub notify_config: bool,
    /// Subscribers are told when the node is deleted.
    pub notify_delete: bool,
    /// Subscribers are told when an item is retracted.
    pub notify_retract: bool,
    /// Items are kept.
    pub persist_items: bool,
    /// Items kept at most (the oldest go first).
    pub max_items: usize,
    /// Who may subscribe and retrieve.
    pub access_model: AccessModel,
    /// The roster groups `roster` access allows.
    pub roster_groups_allowed: Vec<String>,
    /// Who may publish.
    pub publish_model: PublishModel,
    /// When the last item is sent unasked.
    pub send_last_published_item: SendLastPublished,
    /// The payload's namespace, as the publisher declares it.
    pub payload_type: String,
    /// Notification messages' type.
    pub notification_type: NotificationType,
}

/// The service's bounds a configuration must stay within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// `max_items` at most (what `max` means).
    pub max_items: usize,
}

impl NodeConfig {
    /// A pubsub service's defaults.
    pub fn service_default(bounds: Bounds) -> NodeConfig {
        NodeConfig {
            title: String::new(),
            deliver_notifications: true,
            deliver_payloads: true,
            notify_config: false,
            notify_delete: true,
            notify_retract: true,
            persist_items: true,
            max_items: 10.min(bounds.max_items),
            access_model: AccessModel::Open,
            roster_groups_allowed: Vec::new(),
            publish_model: PublishModel::Publishers,
            send_last_published_item: SendLastPublished::OnSub,
            payload_type: String::new(),
            notification_type: NotificationType::Headline,
        }
    }

    /// XEP-0163 §4's defaults for a personal eventing node.
    pub fn pep_default(bounds: Bounds) -> NodeConfig {
        NodeConfig {
            access_model: AccessModel::Presence,
            max_items: 1,
            send_last_published_item: SendLastPublished::OnSubAndPresence,
            ..NodeConfig::service_default(bounds)
        }
    }

    /// The configuration form (`type='form'`) with the current values.
    pub fn to_form(&self, bounds: Bounds) -> Form {
        let flag = |var: &str, label: &str, v: bool| {
            field(
                var,
                "boolean",
                label,
                vec![if v { "1" } else { "0" }.into()],
            )
        };
        let list = |var: &str, label: &str, v: &str, options: &[(&str, &str)]| {
            field(var, "list-single", label, vec![v.to_string()]).with_options(options)
        };
        let max_items = if self.max_items >= bounds.max_items {
            "max".to_string()
        } else {
            self.max_items.to_string()
        };
        Form::new(FormType::Form, NS_NODE_CONFIG)
            .with(field(
                "pubsub#title",
                "text-single",
                "A name for the node",
                vec![self.title.clone()],
            ))
            .with(flag(
                "pubsub#deliver_notifications",
                "Deliver event notifications",
                self.deliver_notifications,
            ))
            .with(flag(
                "pubsub#deliver_payloads",
                "Deliver payloads with notifications",
                self.deliver_payloads,
            ))
            .with(flag(
                "pubsub#notify_config",
                "Notify subscribers when the configuration changes",
                self.notify_config,
            ))
            .with(flag(
                "pubsub#notify_delete",
                "Notify subscribers when the node is deleted",
                self.notify_delete,
            ))
            .with(flag(
                "pubsub#notify_retract",
                "Notify subscribers when items are removed",
                self.notify_retract,
            ))
            .with(flag(
                "pubsub#persist_items",
                "Keep items",
                self.persist_items,
            ))
            .with(field(
                "pubsub#max_items",
                "text-single",
                "Items kept at most",
                vec![max_items],
            ))
            .with(list(
                "pubsub#access_model",
                "Who may subscribe and retrieve items",
                self.access_model.as_str(),
                AccessModel::options(),
            ))
            .with(field(
                "pubsub#roster_groups_allowed",
                "list-multi",
                "Roster groups allowed to subscribe",
                self.roster_groups_allowed.clone(),
            ))
            .with(list(
                "pubsub#publish_model",
                "Who may publish",
                self.publish_model.as_str(),
                PublishModel::options(),
            ))
            .with(list(
                "pubsub#send_last_published_item",
                "When to send the last item",
                self.send_last_published_item.as_str(),
                SendLastPublished::options(),
            ))
            .with(field(
                "pubsub#type",
                "text-single",
                "The payload's namespace",
                vec![self.payload_type.clone()],
            ))
            .with(list(
                "pubsub#notification_type",
                "Notification messages' type",
                self.notification_type.as_str(),
                NotificationType::options(),
            ))
    }

    /// Sets one field. `Ok(false)`: not a field this service knows.
    fn set(&mut self, var: &str, values: &[&str], bounds: Bounds) -> Result<bool, String> {
        let v = values.first().copied().unwrap_or("");
        let flag = || match v {
            "1" | "true" => Ok(true),
            "0" | "false" => Ok(false),
            _ => Err(format!("{var}: {v:?} is not a boolean")),
        };
        fn pick<T>(var: &str, v: &str, parsed: Option<T>) -> Result<T, String> {
            parsed.ok_or_else(|| format!("{var}: {v:?} is not offered"))
        }
        match var {
            "pubsub#title" => self.title = v.to_string(),
            "pubsub#deliver_notifications" => self.deliver_notifications = flag()?,
            "pubsub#deliver_payloads" => self.deliver_payloads = flag()?,
            "pubsub#notify_config" => self.notify_config = flag()?,
            "pubsub#notify_delete" => self.notify_delete = flag()?,
            "pubsub#notify_retract" => self.notify_retract = flag()?,
            "pubsub#persist_items" => self.persist_items = flag()?,
            "pubsub#max_items" => {
                self.max_items = match v {
                    "max" => bounds.max_items,
                    _ => {
                        let n: usize = v
                            .parse()
                            .map_err(|_| format!("{var}: {v:?} is neither a number nor max"))?;
                        if n == 0 || n > bounds.max_items {
                            return Err(format!(
                                "{var}: between 1 and {} (or max)",
                                bounds.max_items
                            ));
                        }
                        n
                    }
                }
            }
            "pubsub#access_model" => self.access_model = pick(var, v, AccessModel::parse(v))?,
            "pubsub#roster_groups_allowed" => {
                self.roster_groups_allowed = values.iter().map(|s| s.to_string()).collect()
            }
            "pubsub#publish_model" => self.publish_model = pick(var, v, PublishModel::parse(v))?,
            "pubsub#send_last_published_item" => {
                self.send_last_published_item = pick(var, v, SendLastPublished::parse(v))?
            }
            "pubsub#type" => self.payload_type = v.to_string(),
            "pubsub#notification_type" => {
                self.notification_type = pick(var, v, NotificationType::parse(v))?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Applies a submitted configuration (or publish-options, for a node they create):
    /// fields it leaves out keep their values, fields of other services are ignored. A bad
    /// value is an error (its text says which) and changes nothing.
    pub fn apply(&mut self, form: &Form, bounds: Bounds) -> Result<(), String> {
        let mut next = self.clone();
        for f in &form.fields {
            let Some(var) = f.var.as_deref().filter(|v| *v != "FORM_TYPE") else {
                continue;
            };
            let values: Vec<&str> = f.values.iter().map(|v| v.text.as_str()).collect();
            next.set(var, &values, bounds)?;
        }
        *self = next;
        Ok(())
    }

    /// Checks publish-options against this configuration (XEP-0060 §7.1.5): every field must
    /// be one this service knows and hold the value the node has. `Err` says which does not.
    pub fn meets(&self, options: &Form, bounds: Bounds) -> Result<(), String> {
        for f in &options.fields {
            let Some(var) = f.var.as_deref().filter(|v| *v != "FORM_TYPE") else {
                continue;
            };
            let values: Vec<&str> = f.values.iter().map(|v| v.text.as_str()).collect();
            let mut probe = self.clone();
            match probe.set(var, &values, bounds) {
                Ok(true) if probe == *self => {}
                Ok(true) => return Err(format!("{var} differs from the node's")),
                Ok(false) => return Err(format!("{var} is not an option of this service")),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

fn field(var: &str, kind: &str, label: &str, values: Vec<String>) -> Field {
    Field {
        label: Some(label.into()),
        ..Field::new(var, Some(kind), values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lithos_core::Payload;

    const B: Bounds = Bounds { max_items: 1000 };

    fn submit(form_type: &str, fields: &[(&str, &str)]) -> Form {
        let mut f = Form::new(FormType::Submit, form_type);
        for (var, value) in fields {
            f = f.with(Field::new(var, None, vec![value.to_string()]));
        }
        f
    }

    #[test]
    fn a_submitted_form_changes_what_it_names_and_reads_back() {
        let mut c = NodeConfig::service_default(B);
        c.apply(
            &submit(
                NS_NODE_CONFIG,
                &[
                    ("pubsub#title", "Weather"),
                    ("pubsub#access_model", "whitelist"),
                    ("pubsub#max_items", "max"),
                    ("pubsub#deliver_payloads", "false"),
                    ("pubsub#itemreply", "owner"),
                ],
            ),
            B,
        )
        .unwrap();
        assert_eq!(c.title, "Weather");
        assert_eq!(c.access_model, AccessModel::Whitelist);
        assert_eq!(c.max_items, 1000);
        assert!(!c.deliver_payloads);
        let mut form = Form::from_element(c.to_form(B).to_element()).unwrap();
        form.type_ = FormType::Submit;
        let mut again = NodeConfig::service_default(B);
        again.apply(&form, B).unwrap();
        assert_eq!(again, c);
        let before = c.clone();
        assert!(
            c.apply(
                &submit(NS_NODE_CONFIG, &[("pubsub#access_model", "authorize")]),
                B
            )
            .is_err()
        );
        assert!(
            c.apply(&submit(NS_NODE_CONFIG, &[("pubsub#max_items", "0")]), B)
                .is_err()
        );
        assert!(
            c.apply(&submit(NS_NODE_CONFIG, &[("pubsub#max_items", "1001")]), B)
                .is_err()
        );
        assert!(
            c.apply(
                &submit(NS_NODE_CONFIG, &[("pubsub#persist_items", "perhaps")]),
                B
            )
            .is_err()
        );
        assert_eq!(c, before);
    }

    #[test]
    fn publish_options_are_preconditions() {
        // XEP-0402's options on a node created with them.
        let options = submit(
            crate::NS_PUBLISH_OPTIONS,
            &[
                ("pubsub#persist_items", "true"),
                ("pubsub#max_items", "max"),
                ("pubsub#send_last_published_item", "never"),
                ("pubsub#access_model", "whitelist"),
            ],
        );
        let mut c = NodeConfig::pep_default(B);
        assert!(c.meets(&options, B).is_err(), "presence is not whitelist");
        c.apply(&options, B).unwrap();
        c.meets(&options, B).unwrap();
        let other = submit(
            crate::NS_PUBLISH_OPTIONS,
            &[("pubsub#access_model", "open")],
        );
        assert!(c.meets(&other, B).unwrap_err().contains("access_model"));
        let unknown = submit(crate::NS_PUBLISH_OPTIONS, &[("pubsub#colour", "red")]);
        assert!(c.meets(&unknown, B).is_err());
    }
}
