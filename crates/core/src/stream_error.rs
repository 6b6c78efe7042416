//! Stream errors (RFC 6120 §4.9).
//!
//! ```
//! use lithos_core::{StreamError, StreamErrorCondition};
//! let e = StreamError::new(StreamErrorCondition::PolicyViolation).with_text("stanza too large");
//! let el = e.to_element();
//! assert_eq!(el.name(), "error");
//! assert_eq!(StreamError::from_element(&el).unwrap(), e);
//! ```

use bytestring::ByteString;

use crate::element::Element;
use crate::ns;

macro_rules! conditions {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $s:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $var,)*
        }
        impl $name {
            /// Every condition, in the order the RFC lists them.
            pub const ALL: &'static [$name] = &[$($name::$var,)*];
            /// The element name of this condition.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$var => $s,)* }
            }
            /// The condition with this element name.
            pub fn from_name(s: &str) -> Option<$name> {
                match s { $($s => Some($name::$var),)* _ => None }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use conditions;

conditions! {
    /// A defined stream error condition (RFC 6120 §4.9.3).
    StreamErrorCondition {
        /// The entity sent XML that cannot be processed.
        BadFormat = "bad-format",
        /// An unsupported namespace prefix, or none where one is needed.
        BadNamespacePrefix = "bad-namespace-prefix",
        /// A new stream conflicts with an existing one.
        Conflict = "conflict",
        /// No traffic for too long.
        ConnectionTimeout = "connection-timeout",
        /// The `to` host is no longer served.
        HostGone = "host-gone",
        /// The `to` host is not served here.
        HostUnknown = "host-unknown",
        /// A stanza lacks a required `to` or `from`.
        ImproperAddressing = "improper-addressing",
        /// A server misconfiguration or similar.
        InternalServerError = "internal-server-error",
        /// The `from` address does not match an authorised identity.
        InvalidFrom = "invalid-from",
        /// The stream namespace is not `http://etherx.jabber.org/streams` or the content namespace is unsupported.
        InvalidNamespace = "invalid-namespace",
        /// The XML is well-formed but not valid for XMPP.
        InvalidXml = "invalid-xml",
        /// Data was sent before authentication, or authentication failed hard.
        NotAuthorized = "not-authorized",
        /// The XML is not well-formed.
        NotWellFormed = "not-well-formed",
        /// A local policy was broken (for example a stanza size limit).
        PolicyViolation = "policy-violation",
        /// A remote connection failed.
        RemoteConnectionFailed = "remote-connection-failed",
        /// The stream must be reset (security-critical features changed).
        Reset = "reset",
        /// The server lacks resources to serve the stream.
        ResourceConstraint = "resource-constraint",
        /// Comments, processing instructions, DTDs or entity references were sent.
        RestrictedXml = "restricted-xml",
        /// Connect to another host (given as the element's text).
        SeeOtherHost = "see-other-host",
        /// The server is shutting down.
        SystemShutdown = "system-shutdown",
        /// None of the others.
        UndefinedCondition = "undefined-condition",
        /// The stream is not UTF-8.
        UnsupportedEncoding = "unsupported-encoding",
        /// A mandatory-to-negotiate feature is not supported.
        UnsupportedFeature = "unsupported-feature",
        /// A top-level element the server does not understand.
        UnsupportedStanzaType = "unsupported-stanza-type",
        /// The stream version is not supported.
        UnsupportedVersion = "unsupported-version",
    }
}

/// A stream error: a condition, optional human-readable text, and an optional
/// application-specific child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    /// The defined condition.
    pub condition: StreamErrorCondition,
    /// For `see-other-host`: the host (and optional port) to connect to instead.
    pub see_other_host: Option<ByteString>,
    /// Descriptive text and its language.
    pub text: Option<(Option<ByteString>, ByteString)>,
    /// An application-specific condition element.
    pub application: Option<Element>,
}

/// Why an element is not a valid stream error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamErrorParseError {
    /// The element is not `<stream:error/>`.
    #[error("not a stream error element")]
    NotStreamError,
    /// No defined condition element in the streams namespace.
    #[error("stream error without a defined condition")]
    MissingCondition,
}

impl StreamError {
    /// A stream error with only a condition.
    pub fn new(condition: StreamErrorCondition) -> StreamError {
        StreamError {
            condition,
            see_other_host: None,
            text: None,
            application: None,
        }
    }
    /// Adds descriptive text (no language).
    pub fn with_text(mut self, text: impl Into<ByteString>) -> StreamError {
        self.text = Some((None, text.into()));
        self
    }

    /// The `<stream:error/>` element.
    pub fn to_element(&self) -> Element {
        let mut cond = Element::bare(self.condition.as_str(), ns::XMPP_STREAMS);
        if let Some(h) = &self.see_other_host {
            cond.append_text(h.clone());
        }
        let mut b = Element::builder("error", ns::STREAMS).child(cond);
        if let Some((lang, text)) = &self.text {
            let mut t = Element::builder("text", ns::XMPP_STREAMS).text(text.clone());
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

    /// Reads a `<stream:error/>` element.
    pub fn from_element(el: &Element) -> Result<StreamError, StreamErrorParseError> {
        if !el.is("error", &ns::STREAMS) {
            return Err(StreamErrorParseError::NotStreamError);
        }
        let mut out: Option<StreamError> = None;
        let mut text = None;
        let mut app = None;
        for c in el.children() {
            if *c.ns() == *ns::XMPP_STREAMS {
                if c.name() == "text" {
                    text = Some((c.lang().map(ByteString::from), ByteString::from(c.text())));
                } else if let Some(cond) = StreamErrorCondition::from_name(c.name())
                    && out.is_none()
                {
                    let mut e = StreamError::new(cond);
                    let host = c.text();
                    if cond == StreamErrorCondition::SeeOtherHost && !host.is_empty() {
                        e.see_other_host = Some(host.into());
                    }
                    out = Some(e);
                }
            } else if app.is_none() {
                app = Some(c.clone());
            }
        }
        let mut e = out.ok_or(StreamErrorParseError::MissingCondition)?;
        e.text = text;
        e.application = app;
        Ok(e)
    }
}

impl From<StreamErrorCondition> for StreamError {
    fn from(c: StreamErrorCondition) -> StreamError {
        StreamError::new(c)
    }
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stream error <{}/>", self.condition)?;
        if let Some((_, t)) = &self.text {
            write!(f, ": {t}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StreamError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_condition_round_trips() {
        assert_eq!(StreamErrorCondition::ALL.len(), 25);
        for &c in StreamErrorCondition::ALL {
            let e = StreamError::new(c).with_text("why");
            let parsed = StreamError::from_element(&e.to_element()).unwrap();
            assert_eq!(parsed, e);
            assert_eq!(StreamErrorCondition::from_name(c.as_str()), Some(c));
        }
    }

    #[test]
    fn see_other_host_and_application_condition() {
        let mut e = StreamError::new(StreamErrorCondition::SeeOtherHost);
        e.see_other_host = Some("[2001:db8::1]:5222".into());
        e.application = Some(Element::bare("escape-your-data", "application-ns"));
        let el = e.to_element();
        assert_eq!(
            el.to_xml(),
            "<error xmlns=\"http://etherx.jabber.org/streams\">\
             <see-other-host xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\">[2001:db8::1]:5222</see-other-host>\
             <escape-your-data xmlns=\"application-ns\"/></error>"
        );
        assert_eq!(StreamError::from_element(&el).unwrap(), e);
    }

    #[test]
    fn rejects_non_errors() {
        let el = Element::bare("error", "jabber:client");
        assert_eq!(
            StreamError::from_element(&el),
            Err(StreamErrorParseError::NotStreamError)
        );
        let el = Element::bare("error", ns::STREAMS);
        assert_eq!(
            StreamError::from_element(&el),
            Err(StreamErrorParseError::MissingCondition)
        );
    }
}
