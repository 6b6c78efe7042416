//! Errors with XEP-0060's application-specific conditions (`pubsub#errors`).

use lithos_core::Element;
use lithos_core::stanza::{DefinedCondition, StanzaError};

use crate::NS_ERRORS;

/// An application-specific condition of XEP-0060 §7–8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PubsubError {
    /// The node's access model is `whitelist` and the requester is not on it.
    ClosedNode,
    /// The subscription's JID is not the requester's.
    InvalidJid,
    /// The item holds more or less than one payload, or something else than an item.
    InvalidPayload,
    /// This node takes no items.
    ItemForbidden,
    /// This node needs an item.
    ItemRequired,
    /// The service keeps no more nodes.
    MaxNodesExceeded,
    /// A node name is needed.
    NodeidRequired,
    /// The requester is in none of the roster groups the node allows.
    NotInRosterGroup,
    /// The requester is not subscribed.
    NotSubscribed,
    /// The payload is larger than the node allows.
    PayloadTooBig,
    /// This node needs a payload.
    PayloadRequired,
    /// A publish-options field does not match the node's configuration.
    PreconditionNotMet,
    /// The access model is `presence` and the requester has no presence subscription.
    PresenceSubscriptionRequired,
    /// The node has as many subscriptions as the service allows.
    TooManySubscriptions,
}

impl PubsubError {
    /// The element's name.
    pub fn name(self) -> &'static str {
        match self {
            PubsubError::ClosedNode => "closed-node",
            PubsubError::InvalidJid => "invalid-jid",
            PubsubError::InvalidPayload => "invalid-payload",
            PubsubError::ItemForbidden => "item-forbidden",
            PubsubError::ItemRequired => "item-required",
            PubsubError::MaxNodesExceeded => "max-nodes-exceeded",
            PubsubError::NodeidRequired => "nodeid-required",
            PubsubError::NotInRosterGroup => "not-in-roster-group",
            PubsubError::NotSubscribed => "not-subscribed",
            PubsubError::PayloadTooBig => "payload-too-big",
            PubsubError::PayloadRequired => "payload-required",
            PubsubError::PreconditionNotMet => "precondition-not-met",
            PubsubError::PresenceSubscriptionRequired => "presence-subscription-required",
            PubsubError::TooManySubscriptions => "too-many-subscriptions",
        }
    }

    /// The defined condition XEP-0060 pairs it with.
    pub fn condition(self) -> DefinedCondition {
        match self {
            PubsubError::ClosedNode
            | PubsubError::MaxNodesExceeded
            | PubsubError::TooManySubscriptions => DefinedCondition::NotAllowed,
            PubsubError::InvalidJid
            | PubsubError::InvalidPayload
            | PubsubError::ItemForbidden
            | PubsubError::ItemRequired
            | PubsubError::NodeidRequired
            | PubsubError::PayloadRequired => DefinedCondition::BadRequest,
            PubsubError::NotInRosterGroup | PubsubError::PresenceSubscriptionRequired => {
                DefinedCondition::NotAuthorized
            }
            PubsubError::NotSubscribed => DefinedCondition::UnexpectedRequest,
            PubsubError::PayloadTooBig => DefinedCondition::NotAcceptable,
            PubsubError::PreconditionNotMet => DefinedCondition::Conflict,
        }
    }
}

/// The stanza error for `e`, with a text for people.
pub fn pubsub_error(e: PubsubError, text: &str) -> StanzaError {
    StanzaError::explained(e.condition(), text.to_string())
        .with_application(Element::bare(e.name(), NS_ERRORS))
}

/// `feature-not-implemented` with `<unsupported feature='…'/>` (XEP-0060 §7–8).
pub fn unsupported(feature: &str) -> StanzaError {
    StanzaError::new(DefinedCondition::FeatureNotImplemented).with_application(
        Element::builder("unsupported", NS_ERRORS)
            .attr("feature", feature.to_string())
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_their_condition_and_element() {
        let e = pubsub_error(PubsubError::PreconditionNotMet, "access model differs");
        let el = e.to_element();
        let xml = el.to_xml();
        assert!(xml.contains("<conflict"), "{xml}");
        assert!(xml.contains("precondition-not-met"), "{xml}");
        assert_eq!(
            pubsub_error(PubsubError::ClosedNode, "").condition,
            DefinedCondition::NotAllowed
        );
        assert!(
            unsupported("subscription-options")
                .to_element()
                .to_xml()
                .contains("subscription-options")
        );
    }
}
