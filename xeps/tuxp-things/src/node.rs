//! Who speaks for what: a gateway's edge session and the LAN nodes behind it.

use lithos_core::stanza::{StanzaError, error_reply};
use lithos_core::{Element, Jid};
use lithos_server::{ServerHandle, SessionInfo};

use crate::EDGE_RESOURCE;

/// Who sent a TUXP stanza: the session, or, when `from` names another resource of the same
/// account (which the kernel allows on the things port), the gateway's LAN node it speaks
/// for. Lithosphere's rule: only the edge resource `0` speaks for nodes, and a node is a
/// LAN id from 1 to 255, written plainly (`5`, not `05`). The error is the reason for a
/// `bad-request`.
pub fn speaker(stanza: &Element, session: &SessionInfo) -> Result<Jid, &'static str> {
    let Some(from) = stanza.attr("from").and_then(|f| Jid::new(f).ok()) else {
        return Ok(session.jid.clone());
    };
    if from == session.jid {
        return Ok(from);
    }
    let lan_id = from.resource().and_then(crate::lan_id);
    if !from.bare_eq(&session.jid)
        || session.jid.resource() != Some(EDGE_RESOURCE)
        || lan_id.is_none()
    {
        return Err("only the gateway's edge resource 0 speaks for its LAN nodes 1 to 255");
    }
    Ok(from)
}

/// Whether `node` (a resource) is a LAN node behind a gateway rather than the thing itself
/// ([`crate::lan_id`]).
pub fn is_lan_node(node: &str) -> bool {
    crate::lan_id(node).is_some()
}

/// Answers `stanza`, which `session` sent (perhaps for a LAN node), with `error`, through
/// that session: routing the error to a node's address would find no session for it.
pub fn refuse(server: &ServerHandle, session: &SessionInfo, stanza: &Element, error: StanzaError) {
    if let Some(mut reply) = error_reply(stanza, &error) {
        if reply.attr("from").is_none() {
            reply.set_attr("from", session.jid.to_bare().as_shared().clone());
        }
        server.sessions().send(&session.jid, reply);
    }
}
