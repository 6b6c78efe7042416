//! Stanza errors (RFC 6120 §8.3).

use bytestring::ByteString;

use crate::element::Element;
use crate::jid::Jid;
use crate::ns;
use crate::stream_error::conditions;

conditions! {
    /// A defined stanza error condition (RFC 6120 §8.3.3).
    DefinedCondition {
        /// The request is malformed.
        BadRequest = "bad-request",
        /// A resource or session with this name already exists.
        Conflict = "conflict",
        /// The feature is not implemented by the recipient or server.
        FeatureNotImplemented = "feature-not-implemented",
        /// The sender lacks the permissions.
        Forbidden = "forbidden",
        /// The recipient is no longer at this address (may carry a new address).
        Gone = "gone",
        /// The server could not process the stanza because of an internal error.
        InternalServerError = "internal-server-error",
        /// The addressed item or JID cannot be found.
        ItemNotFound = "item-not-found",
        /// The address does not follow RFC 7622.
        JidMalformed = "jid-malformed",
        /// The request does not meet criteria of the recipient.
        NotAcceptable = "not-acceptable",
        /// No entity may perform the action.
        NotAllowed = "not-allowed",
        /// The sender must authenticate first.
        NotAuthorized = "not-authorized",
        /// A local policy was violated.
        PolicyViolation = "policy-violation",
        /// The recipient is temporarily unavailable.
        RecipientUnavailable = "recipient-unavailable",
        /// The recipient has moved (carries the new address).
        Redirect = "redirect",
        /// The sender must register first.
        RegistrationRequired = "registration-required",
        /// A remote server does not exist.
        RemoteServerNotFound = "remote-server-not-found",
        /// A remote server did not answer in time.
        RemoteServerTimeout = "remote-server-timeout",
        /// The recipient lacks resources to serve the request.
        ResourceConstraint = "resource-constraint",
        /// The service is not offered.
        ServiceUnavailable = "service-unavailable",
        /// A subscription is required.
        SubscriptionRequired = "subscription-required",
        /// None of the others (an application condition usually says more).
        UndefinedCondition = "undefined-condition",
        /// The request was not expected at this time.
        UnexpectedRequest = "unexpected-request",
    }
}

impl DefinedCondition {
    /// The error type RFC 6120 §8.3.3 suggests for this condition.
    pub fn default_type(self) -> ErrorType {
        use DefinedCondition::*;
        match self {
            BadRequest | JidMalformed | NotAcceptable | PolicyViolation | Redirect => {
                ErrorType::Modify
            }
            Forbidden | NotAuthorized | RegistrationRequired | SubscriptionRequired => {
                ErrorType::Auth
            }
            RecipientUnavailable | RemoteServerTimeout | ResourceConstraint | UnexpectedRequest => {
                ErrorType::Wait
            }
            Conflict
            | FeatureNotImplemented
            | Gone
            | InternalServerError
            | ItemNotFound
            | NotAllowed
            | RemoteServerNotFound
            | ServiceUnavailable
            | UndefinedCondition => ErrorType::Cancel,
        }
    }
}

/// What the sender should do about an error (RFC 6120 §8.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorType {
    /// Retry after providing credentials.
    Auth,
    /// Do not retry.
    Cancel,
    /// Proceed; the condition was only a warning.
    Continue,
    /// Retry after changing the data sent.
    Modify,
    /// Retry after waiting.
    Wait,
}

impl ErrorType {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::Auth => "auth",
            ErrorType::Cancel => "cancel",
            ErrorType::Continue => "continue",
            ErrorType::Modify => "modify",
            ErrorType::Wait => "wait",
        }
    }
    /// Parses the attribute value.
    pub fn from_name(s: &str) -> Option<ErrorType> {
        Some(match s {
            "auth" => ErrorType::Auth,
            "cancel" => ErrorType::Cancel,
            "continue" => ErrorType::Continue,
            "modify" => ErrorType::Modify,
            "wait" => ErrorType::Wait,
            _ => return None,
        })
    }
}

/// A stanza error: type, defined condition, and optional details.
///
/// ```
/// use lithos_core::stanza::{StanzaError, DefinedCondition, ErrorType};
/// let e = StanzaError::new(DefinedCondition::ItemNotFound).with_text("no such thing");
/// assert_eq!(e.type_, ErrorType::Cancel);
/// assert_eq!(
///     e.to_element().to_xml(),
///     "<error xmlns=\"jabber:client\" type=\"cancel\">\
///      <item-not-found xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>\
///      <text xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\">no such thing</text></error>"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StanzaError {
    /// The error type.
    pub type_: ErrorType,
    /// The defined condition.
    pub condition: DefinedCondition,
    /// For `gone` and `redirect`: the new address (the condition element's text).
    pub alternative: Option<ByteString>,
    /// The entity that generated the error (`by`).
    pub by: Option<Jid>,
    /// Descriptive text and its language.
    pub text: Option<(Option<ByteString>, ByteString)>,
    /// An application-specific condition element.
    pub application: Option<Element>,
}

/// Why an element is not a valid stanza error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StanzaErrorParseError {
    /// The `type` attribute is missing or unknown.
    #[error("stanza error without a valid type")]
    BadType,
    /// No defined condition in the stanzas namespace.
    #[error("stanza error without a defined condition")]
    MissingCondition,
    /// The element is not `<error/>`.
    #[error("not an error element")]
    NotError,
}

impl StanzaError {
    /// An error with the condition's usual type.
    pub fn new(condition: DefinedCondition) -> StanzaError {
        StanzaError::typed(condition.default_type(), condition)
    }
    /// An error with an explicit type.
    pub fn typed(type_: ErrorType, condition: DefinedCondition) -> StanzaError {
        StanzaError {
            type_,
            condition,
            alternative: None,
            by: None,
            text: None,
            application: None,
        }
    }
    /// An error with the condition's usual type and descriptive text.
    ///
    /// ```
    /// use lithos_core::stanza::{DefinedCondition, StanzaError};
    /// let e = StanzaError::explained(DefinedCondition::BadRequest, "no thing-id");
    /// assert_eq!(e, StanzaError::new(DefinedCondition::BadRequest).with_text("no thing-id"));
    /// ```
    pub fn explained(condition: DefinedCondition, text: impl Into<ByteString>) -> StanzaError {
        StanzaError::new(condition).with_text(text)
    }
    /// Adds descriptive text (no language).
    pub fn with_text(mut self, text: impl Into<ByteString>) -> StanzaError {
        self.text = Some((None, text.into()));
        self
    }
    /// Adds an application-specific condition.
    pub fn with_application(mut self, app: Element) -> StanzaError {
        self.application = Some(app);
        self
    }

    /// The `<error/>` element, in `jabber:client`.
    pub fn to_element(&self) -> Element {
        self.to_element_ns(ns::JABBER_CLIENT)
    }

    /// The `<error/>` element in the given content namespace.
    pub fn to_element_ns(&self, content_ns: ByteString) -> Element {
        let mut cond = Element::bare(self.condition.as_str(), ns::XMPP_STANZAS);
        if let Some(alt) = &self.alternative {
            cond.append_text(alt.clone());
        }
        let mut b = Element::builder("error", content_ns)
            .attr("type", self.type_.as_str())
            .opt_attr("by", self.by.as_ref().map(|j| j.as_shared().clone()))
            .child(cond);
        if let Some((lang, text)) = &self.text {
            let mut t = Element::builder("text", ns::XMPP_STANZAS).text(text.clone());
            if let Some(l) = lang {
                t = t.lang(l.clone());
            }
            b = b.child(t.build());
        }
        if let Some(app) = &self.application {
            b = b.child(app.clone());
        }
        b.build()
    }

    /// Reads an `<error/>` element (in any content namespace).
    pub fn from_element(el: &Element) -> Result<StanzaError, StanzaErrorParseError> {
        if el.name() != "error" {
            return Err(StanzaErrorParseError::NotError);
        }
        let type_ = el
            .attr("type")
            .and_then(ErrorType::from_name)
            .ok_or(StanzaErrorParseError::BadType)?;
        let mut err: Option<StanzaError> = None;
        let mut text = None;
        let mut app = None;
        for c in el.children() {
            if *c.ns() == *ns::XMPP_STANZAS {
                if c.name() == "text" {
                    text = Some((c.lang().map(ByteString::from), ByteString::from(c.text())));
                } else if let Some(cond) = DefinedCondition::from_name(c.name())
                    && err.is_none()
                {
                    let mut e = StanzaError::typed(type_, cond);
                    let t = c.text();
                    if !t.is_empty() {
                        e.alternative = Some(t.into());
                    }
                    err = Some(e);
                }
            } else if app.is_none() {
                app = Some(c.clone());
            }
        }
        let mut e = err.ok_or(StanzaErrorParseError::MissingCondition)?;
        e.by = el.attr("by").and_then(|b| Jid::new(b).ok());
        e.text = text;
        e.application = app;
        Ok(e)
    }
}

impl From<DefinedCondition> for StanzaError {
    fn from(c: DefinedCondition) -> StanzaError {
        StanzaError::new(c)
    }
}

impl std::fmt::Display for StanzaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.condition, self.type_.as_str())?;
        if let Some((_, t)) = &self.text {
            write!(f, ": {t}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StanzaError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_condition_round_trips() {
        assert_eq!(DefinedCondition::ALL.len(), 22);
        for &c in DefinedCondition::ALL {
            for t in [
                ErrorType::Auth,
                ErrorType::Cancel,
                ErrorType::Continue,
                ErrorType::Modify,
                ErrorType::Wait,
            ] {
                let mut e = StanzaError::typed(t, c);
                e.text = Some((Some("en".into()), "details".into()));
                e.by = Some(Jid::new("example.com").unwrap());
                e.application = Some(Element::bare("too-many", "urn:example:app"));
                assert_eq!(StanzaError::from_element(&e.to_element()).unwrap(), e);
            }
        }
    }

    #[test]
    fn redirect_carries_an_address() {
        let mut e = StanzaError::new(DefinedCondition::Redirect);
        e.alternative = Some("xmpp:romeo@example.net".into());
        let back = StanzaError::from_element(&e.to_element()).unwrap();
        assert_eq!(back.alternative.as_deref(), Some("xmpp:romeo@example.net"));
        assert_eq!(back.type_, ErrorType::Modify);
    }

    #[test]
    fn malformed_errors() {
        let no_type = Element::builder("error", "jabber:client")
            .child(Element::bare("bad-request", ns::XMPP_STANZAS))
            .build();
        assert_eq!(
            StanzaError::from_element(&no_type),
            Err(StanzaErrorParseError::BadType)
        );
        let no_cond = Element::builder("error", "jabber:client")
            .attr("type", "cancel")
            .build();
        assert_eq!(
            StanzaError::from_element(&no_cond),
            Err(StanzaErrorParseError::MissingCondition)
        );
    }
}
