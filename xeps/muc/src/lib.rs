//! # lithos-muc
//!
//! XEP-0045 multi-user chat: a room service on a domain of its own (`conference.<domain>`
//! unless `[modules.muc] domain` says otherwise), listed in the server's disco#items.
//!
//! - **Rooms** are created by joining them (`<presence to='room@conference.example/nick'>`);
//!   the creator is the owner (status `201`). Persistent rooms (configuration, subject,
//!   affiliations) are kept in the database and survive a restart; temporary ones go when
//!   the last occupant leaves.
//! - **Joining** checks, in XEP-0045's order: a nick (`jid-malformed`), a locked room
//!   (`item-not-found`), a ban (`forbidden`), the nick (`conflict`), membership in a
//!   members-only room (`registration-required`), room size (`service-unavailable`), the
//!   password (`not-authorized`). The newcomer gets everyone's presence, then its own
//!   (status `110`, `100` when real addresses are shown to all, `201` when it created the
//!   room), the history it asked for (`maxstanzas`, `maxchars`, `seconds`, `since`; each
//!   message with a XEP-0203 delay), then the subject.
//! - **Roles and affiliations**: owners and admins are moderators, members and others
//!   participants (visitors in a moderated room). Moderators kick (`307`) and give or take
//!   voice; admins ban (`301`) and manage members; owners manage admins and owners,
//!   configure (`muc#roomconfig` data form, XEP-0004) and destroy. Leaving a members-only
//!   room is forced when the membership is taken (`321`).
//! - **Messages**: groupchat to every occupant from `room/nick` (the sender's `id` kept),
//!   kept in the history; subject changes by moderators (or anyone, if configured); private
//!   messages between occupants; mediated invitations (with XEP-0249's `jabber:x:conference`
//!   beside them), which make the invitee a member of a members-only room; declines.
//! - **Nick changes** (`303`), presence updates passed on, XEP-0410 self-ping; requests to
//!   an occupant (`room/nick`: a vCard, a ping) passed on between room addresses.
//! - **Archive** (XEP-0313, while the server's `mam` module runs): each groupchat message
//!   with a body gets the room's `<stanza-id/>` and is archived; a query at the room's
//!   address is answered to those who may enter (or are in) the room; the archive goes with
//!   the room. `muc#roomconfig_enablearchiving` turns it off for a room.
//!
//! Real addresses are shown to moderators only (semi-anonymous) unless the room shows them
//! to all (`muc#roomconfig_whois = anyone`, status `100`).

#![forbid(unsafe_code)]

/// The MUC namespace (a join's `<x/>`).
pub const NS: &str = "http://jabber.org/protocol/muc";
/// Occupants' and invitations' `<x/>`.
pub const NS_USER: &str = "http://jabber.org/protocol/muc#user";
/// Moderation and affiliation lists.
pub const NS_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
/// Configuration and destruction.
pub const NS_OWNER: &str = "http://jabber.org/protocol/muc#owner";
/// The configuration form's `FORM_TYPE`.
pub const NS_ROOMCONFIG: &str = "http://jabber.org/protocol/muc#roomconfig";
/// The room information form's `FORM_TYPE` (disco#info).
pub const NS_ROOMINFO: &str = "http://jabber.org/protocol/muc#roominfo";
/// XEP-0249 direct invitations.
pub const NS_CONFERENCE: &str = "jabber:x:conference";
/// XEP-0203 delayed delivery.
pub const NS_DELAY: &str = "urn:xmpp:delay";

#[cfg(feature = "server")]
lithos_core::extension! { table_file: "muc.props", server: [store::SCHEMA, server::MODULE] }
#[cfg(not(feature = "server"))]
lithos_core::extension! { table_file: "muc.props" }

pub mod config;
#[cfg(feature = "server")]
pub mod forwarding;
#[cfg(feature = "server")]
pub mod room;
#[cfg(feature = "server")]
mod server;
#[cfg(feature = "server")]
pub mod store;

/// What an occupant may do now (XEP-0045 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Not in the room.
    None,
    /// Present, may not speak in a moderated room.
    Visitor,
    /// Present, may speak.
    Participant,
    /// May kick and give or take voice.
    Moderator,
}

/// Standing in the room that lasts beyond a visit (XEP-0045 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Affiliation {
    /// Banned.
    Outcast,
    /// None.
    None,
    /// A member (may enter a members-only room).
    Member,
    /// An administrator.
    Admin,
    /// An owner.
    Owner,
}

macro_rules! names {
    ($t:ty { $($v:ident = $s:literal),* $(,)? }) => {
        impl $t {
            /// The name XEP-0045 uses.
            pub fn as_str(self) -> &'static str {
                match self { $(<$t>::$v => $s),* }
            }
            /// From XEP-0045's name.
            pub fn parse(s: &str) -> Option<$t> {
                match s { $($s => Some(<$t>::$v),)* _ => None }
            }
        }
    };
}
names!(Role { None = "none", Visitor = "visitor", Participant = "participant", Moderator = "moderator" });
names!(Affiliation { Outcast = "outcast", None = "none", Member = "member", Admin = "admin", Owner = "owner" });

impl Affiliation {
    /// The role an occupant with this affiliation gets on entering (`None` for outcasts).
    pub fn default_role(self, moderated: bool) -> Role {
        match self {
            Affiliation::Owner | Affiliation::Admin => Role::Moderator,
            Affiliation::Member => Role::Participant,
            Affiliation::None if moderated => Role::Visitor,
            Affiliation::None => Role::Participant,
            Affiliation::Outcast => Role::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_roles_follow_affiliations() {
        for r in [
            Role::None,
            Role::Visitor,
            Role::Participant,
            Role::Moderator,
        ] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        for a in [
            Affiliation::Outcast,
            Affiliation::None,
            Affiliation::Member,
            Affiliation::Admin,
            Affiliation::Owner,
        ] {
            assert_eq!(Affiliation::parse(a.as_str()), Some(a));
        }
        assert_eq!(Role::parse("king"), None);
        assert_eq!(Affiliation::Owner.default_role(false), Role::Moderator);
        assert_eq!(Affiliation::None.default_role(true), Role::Visitor);
        assert_eq!(Affiliation::Member.default_role(true), Role::Participant);
        assert_eq!(Affiliation::Outcast.default_role(false), Role::None);
        assert!(Affiliation::Admin > Affiliation::Member);
    }
}
