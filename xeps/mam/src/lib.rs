//! # lithos-mam
//!
//! XEP-0313 (Message Archive Management, `urn:xmpp:mam:2`): the server archives each
//! account's chats, and the account pages through them. With the `server` feature, the
//! `mam` module archives every eligible message (type `chat`, or `normal` with a body; not
//! with the XEP-0334 `no-store` or `no-permanent-store` hints) sent or received by a local
//! account, stamping what it delivers with a XEP-0359 `<stanza-id by='<account>'/>`; queries
//! filter by `with` (a bare JID matches its every resource), `start` and `end`, and page
//! with XEP-0059 (`max`, `after`, `before`, `before` empty for the last page, `index`),
//! answering `<fin complete='true'/>` on the last page; preferences (`always`, `never`,
//! `roster`, with lists of addresses always or never archived) are kept per account; old
//! messages go after `retention_days`.
//!
//! Archiving is written in batches by one task (a group commit): a message is archived a
//! few milliseconds after its delivery, and when more than `max_queue` wait (the database
//! cannot keep up), newer ones are not archived (and say so in the log); delivery never
//! waits for the archive.

use lithos_core::Jid;
use lithos_forward::Forwarded;
use lithos_rsm::ResultSet;
use lithos_xdata::Form;

#[cfg(feature = "server")]
mod archive;
#[cfg(feature = "server")]
pub mod rooms;
#[cfg(feature = "server")]
mod server;
#[cfg(feature = "server")]
pub use server::query_form;
#[cfg(feature = "server")]
pub mod store;

/// The namespace.
pub const NS: &str = "urn:xmpp:mam:2";

// Code `F0 22`.
lithos_core::extension! { table_file: "mam.props", server: [store::SCHEMA, server::MODULE] }

/// `<query/>`: search the archive.
#[derive(Debug, Clone, PartialEq, Eq, Default, lithos_core::Payload)]
#[payload(ns = NS, name = "query")]
pub struct Query {
    /// Echoed in every result.
    #[payload(attr)]
    pub queryid: Option<String>,
    /// A pubsub node (not served: refused).
    #[payload(attr)]
    pub node: Option<String>,
    /// The filters (`with`, `start`, `end`).
    #[payload(child)]
    pub form: Option<Form>,
    /// The page.
    #[payload(child)]
    pub set: Option<ResultSet>,
    /// Pages asked with `before` come newest first.
    #[payload(flag = "flip-page")]
    pub flip_page: bool,
}

/// `<result/>`: one archived message, sent in a `<message/>` to the requester.
#[derive(Debug, Clone, PartialEq, Eq, lithos_core::Payload)]
#[payload(ns = NS, name = "result")]
pub struct ArchivedMessage {
    /// The query's id.
    #[payload(attr)]
    pub queryid: Option<String>,
    /// The message's archive id (its stanza-id).
    #[payload(attr)]
    pub id: String,
    /// The message, with when it was archived.
    #[payload(child)]
    pub forwarded: Forwarded,
}

/// `<fin/>`: the end of a query's results.
#[derive(Debug, Clone, PartialEq, Eq, lithos_core::Payload)]
#[payload(ns = NS, name = "fin")]
pub struct Fin {
    /// The last page in the query's direction.
    #[payload(attr, default, skip_default)]
    pub complete: bool,
    /// The page: first and last ids, the whole result's count.
    #[payload(child)]
    pub set: ResultSet,
}

/// Which messages an account archives by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, lithos_core::AttrValue)]
pub enum DefaultMode {
    /// All.
    #[default]
    Always,
    /// None.
    Never,
    /// Those with addresses in the account's roster.
    Roster,
}

/// `<jid/>`: one address in a preference list.
#[derive(Debug, Clone, PartialEq, Eq, lithos_core::Payload)]
#[payload(ns = NS, name = "jid")]
pub struct ListedJid {
    /// The address.
    #[payload(text)]
    pub jid: Jid,
}

/// `<always/>`: addresses always archived.
#[derive(Debug, Clone, PartialEq, Eq, Default, lithos_core::Payload)]
#[payload(ns = NS, name = "always")]
pub struct Always {
    /// The addresses.
    #[payload(child)]
    pub jids: Vec<ListedJid>,
}

/// `<never/>`: addresses never archived.
#[derive(Debug, Clone, PartialEq, Eq, Default, lithos_core::Payload)]
#[payload(ns = NS, name = "never")]
pub struct Never {
    /// The addresses.
    #[payload(child)]
    pub jids: Vec<ListedJid>,
}

/// `<prefs/>`: an account's archiving preferences.
#[derive(Debug, Clone, PartialEq, Eq, Default, lithos_core::Payload)]
#[payload(ns = NS, name = "prefs")]
pub struct Prefs {
    /// The default.
    #[payload(attr = "default", default)]
    pub default_mode: DefaultMode,
    /// Always archived.
    #[payload(child)]
    pub always: Option<Always>,
    /// Never archived.
    #[payload(child)]
    pub never: Option<Never>,
}

/// What a preference says of one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Archiving {
    /// Archive.
    Yes,
    /// Do not.
    No,
    /// Archive if the peer is in the account's roster.
    IfInRoster,
}

impl Prefs {
    /// Whether a message with `peer` is archived: the `never` list first, then `always`,
    /// then the default.
    pub fn decide(&self, peer: &Jid) -> Archiving {
        let listed =
            |l: Option<&Vec<ListedJid>>| l.is_some_and(|l| l.iter().any(|j| j.jid.bare_eq(peer)));
        if listed(self.never.as_ref().map(|n| &n.jids)) {
            return Archiving::No;
        }
        if listed(self.always.as_ref().map(|a| &a.jids)) {
            return Archiving::Yes;
        }
        match self.default_mode {
            DefaultMode::Always => Archiving::Yes,
            DefaultMode::Never => Archiving::No,
            DefaultMode::Roster => Archiving::IfInRoster,
        }
    }
}

/// The payload namespaces whose messages are archived without a body, by default: TUXP
/// notifications (`urn:leps:tuxp:thing`), so a thing's owner pages the thing's events in
/// the owner's archive (`with` the thing).
pub const ALSO_ARCHIVED: &[&str] = &["urn:leps:tuxp:thing"];

/// Whether `message` goes into an archive (XEP-0313 §5.1's suggestion, and XEP-0334): a
/// chat or normal message with a body, or with a payload in [`ALSO_ARCHIVED`].
pub fn eligible(message: &lithos_core::Element) -> bool {
    eligible_with(message, ALSO_ARCHIVED)
}

/// [`eligible`], with `also` for the payload namespaces archived without a body.
pub fn eligible_with(message: &lithos_core::Element, also: &[impl AsRef<str>]) -> bool {
    if message.name() != "message" {
        return false;
    }
    let content = message.has_child("body", "jabber:client")
        || message
            .children()
            .any(|c| also.iter().any(|ns| c.ns() == ns.as_ref()));
    let typed = matches!(message.attr("type"), None | Some("chat" | "normal"));
    typed
        && content
        && !lithos_hints::Hint::NoStore.is_on(message)
        && !lithos_hints::Hint::NoPermanentStore.is_on(message)
        && !message.has_child("result", NS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lithos_core::{Element, Payload};

    fn el(x: &str) -> Element {
        Element::parse(x).unwrap()
    }

    #[test]
    fn the_specification_examples() {
        let q = Query::from_element(el(
            "<query xmlns='urn:xmpp:mam:2' queryid='f27'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field><field var='with'><value>juliet@capulet.lit</value></field></x><set xmlns='http://jabber.org/protocol/rsm'><max>10</max></set></query>",
        ))
        .unwrap();
        assert_eq!(q.queryid.as_deref(), Some("f27"));
        assert_eq!(
            q.form.as_ref().and_then(|f| f.value("with")),
            Some("juliet@capulet.lit")
        );
        assert_eq!(q.set.as_ref().and_then(|s| s.max), Some(10));
        let p = Prefs::from_element(el(
            "<prefs xmlns='urn:xmpp:mam:2' default='roster'><always><jid>romeo@montague.lit</jid></always><never><jid>montague@montague.lit</jid></never></prefs>",
        ))
        .unwrap();
        let j = |s: &str| Jid::new(s).unwrap();
        assert_eq!(p.decide(&j("romeo@montague.lit/orchard")), Archiving::Yes);
        assert_eq!(p.decide(&j("montague@montague.lit")), Archiving::No);
        assert_eq!(p.decide(&j("tybalt@capulet.lit")), Archiving::IfInRoster);
        assert_eq!(
            Prefs::default().decide(&j("tybalt@capulet.lit")),
            Archiving::Yes
        );
        assert!(
            Prefs::from_element(el("<prefs xmlns='urn:xmpp:mam:2' default='sometimes'/>")).is_err()
        );
    }

    #[test]
    fn eligibility() {
        assert!(eligible(&el(
            "<message xmlns='jabber:client' type='chat'><body>b</body></message>"
        )));
        assert!(eligible(&el(
            "<message xmlns='jabber:client'><body>b</body></message>"
        )));
        for no in [
            "<message xmlns='jabber:client' type='chat'/>",
            "<message xmlns='jabber:client' type='normal'><x xmlns='urn:other'/></message>",
            "<message xmlns='jabber:client' type='headline'><body>b</body></message>",
            "<message xmlns='jabber:client' type='groupchat'><body>b</body></message>",
            "<message xmlns='jabber:client' type='error'><body>b</body></message>",
            "<message xmlns='jabber:client' type='chat'><body>b</body><no-store xmlns='urn:xmpp:hints'/></message>",
            "<message xmlns='jabber:client' type='chat'><body>b</body><no-permanent-store xmlns='urn:xmpp:hints'/></message>",
            "<presence xmlns='jabber:client'/>",
        ] {
            assert!(!eligible(&el(no)), "{no}");
        }
    }
}
