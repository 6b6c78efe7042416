//! # lithos-tuxp-directory
//!
//! An account's things, for a console or an application: which things the account may
//! command (those it owns, those their owners granted it), each thing's model with the
//! actions, events and data it declares, and whether it is online, kept up to date live.
//! Lithos's own protocol (`urn:lithos:tuxp:directory`); TUXP has no such query, and things
//! are not in their owners' rosters, so presence does not tell an owner this.
//!
//! ## Wire form
//!
//! ```xml
//! <iq type="get" to="example.com" id="d1"><things xmlns="urn:lithos:tuxp:directory"/></iq>
//!
//! <iq type="result" id="d1">
//!   <things xmlns="urn:lithos:tuxp:directory">
//!     <thing id="SL-01-0A1B2C40" name="sl-01-0a1b2c40" jid="sl-01-0a1b2c40@example.com"
//!            model="SL-01" online="true" owned="true">
//!       <action ns="urn:leps:things:simple-light" name="flash"/>
//!       <event ns="…" name="…"/>
//!       <data ns="…" name="…"/>
//!     </thing>
//!   </things>
//! </iq>
//! ```
//!
//! `<watch/>` (set) answers the same list and, for as long as the session lasts (or until
//! `<unwatch/>`), sends it a headline message from the thing's bare JID each time the
//! thing's edge session (resource `0`) comes or goes:
//! `<thing-state xmlns="urn:lithos:tuxp:directory" id="…" online="false"/>`. The state
//! sent is the thing's state when the message is made, so a replaced session never shows a
//! connected thing as offline.
//!
//! The HTTP API serves the same (`GET /api/things`, `GET /api/things/{name}`, see
//! `docs/http-api.md`).

#![forbid(unsafe_code)]

#[cfg(feature = "server")]
mod server;

/// The namespace.
pub const NS: &str = "urn:lithos:tuxp:directory";

/// BXMPP table (`F0 2D`).
pub const BXMPP_TABLE: &str = include_str!("../tables/tuxp-directory.props");

/// Things one list holds at most (an account commanding more sees the first, by name).
pub const MAX_LISTED: usize = 2_000;

lithos_core::extension! { table: BXMPP_TABLE, server: [server::MODULE] }
