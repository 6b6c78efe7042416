//! `<iq/>` (RFC 6120 §8.2.3).

use bytestring::ByteString;

use super::{InvalidStanza, StanzaError, element_with_common, take_common, take_error};
use crate::element::Element;
use crate::jid::Jid;

/// The type of an iq together with what that type carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IqPayload {
    /// A request for information: exactly one payload.
    Get(Element),
    /// A request to change something: exactly one payload.
    Set(Element),
    /// A successful answer: zero or one payload.
    Result(Option<Element>),
    /// A failed answer, possibly echoing the request's payload.
    Error {
        /// The error (boxed: errors are rare, requests and results are not).
        error: Box<StanzaError>,
        /// The request payload, if the responder included it.
        original: Option<Element>,
    },
}

impl IqPayload {
    /// The `type` attribute value.
    pub fn type_str(&self) -> &'static str {
        match self {
            IqPayload::Get(_) => "get",
            IqPayload::Set(_) => "set",
            IqPayload::Result(_) => "result",
            IqPayload::Error { .. } => "error",
        }
    }
    /// True for get and set (requests that must be answered).
    pub fn is_request(&self) -> bool {
        matches!(self, IqPayload::Get(_) | IqPayload::Set(_))
    }
}

/// An info/query stanza: a request (get/set) that must be answered by exactly one result or
/// error with the same id.
///
/// ```
/// use lithos_core::{Element, Jid, stanza::{Iq, IqPayload, StanzaError, DefinedCondition}};
/// let req = Iq::get("q1", Element::bare("query", "jabber:iq:roster"));
/// let err = req.error_reply(StanzaError::new(DefinedCondition::ServiceUnavailable));
/// assert_eq!(err.id, "q1");
/// assert!(matches!(err.payload, IqPayload::Error { .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iq {
    /// Recipient.
    pub to: Option<Jid>,
    /// Sender.
    pub from: Option<Jid>,
    /// Request id (required).
    pub id: ByteString,
    /// `xml:lang`.
    pub lang: Option<ByteString>,
    /// Type and payload.
    pub payload: IqPayload,
}

impl Iq {
    /// A get request.
    pub fn get(id: impl Into<ByteString>, payload: Element) -> Iq {
        Iq::new(id, IqPayload::Get(payload))
    }
    /// A set request.
    pub fn set(id: impl Into<ByteString>, payload: Element) -> Iq {
        Iq::new(id, IqPayload::Set(payload))
    }
    fn new(id: impl Into<ByteString>, payload: IqPayload) -> Iq {
        Iq {
            to: None,
            from: None,
            id: id.into(),
            lang: None,
            payload,
        }
    }
    /// Sets the recipient.
    pub fn with_to(mut self, to: Jid) -> Iq {
        self.to = Some(to);
        self
    }
    /// The namespace of the request payload (get/set), or of the result payload.
    pub fn payload_ns(&self) -> Option<&str> {
        match &self.payload {
            IqPayload::Get(p) | IqPayload::Set(p) | IqPayload::Result(Some(p)) => Some(p.ns()),
            _ => None,
        }
    }
    /// The result answering this request: addresses swapped, same id.
    pub fn result_reply(&self, payload: Option<Element>) -> Iq {
        Iq {
            to: self.from.clone(),
            from: self.to.clone(),
            id: self.id.clone(),
            lang: None,
            payload: IqPayload::Result(payload),
        }
    }
    /// The error answering this request: addresses swapped, same id.
    pub fn error_reply(&self, error: StanzaError) -> Iq {
        Iq {
            to: self.from.clone(),
            from: self.to.clone(),
            id: self.id.clone(),
            lang: None,
            payload: IqPayload::Error {
                error: Box::new(error),
                original: None,
            },
        }
    }
}

impl TryFrom<Element> for Iq {
    type Error = InvalidStanza;
    fn try_from(mut el: Element) -> Result<Iq, InvalidStanza> {
        let c = take_common(&mut el)?;
        let id = c.id.ok_or(InvalidStanza::MissingId)?;
        let type_ = c
            .type_
            .ok_or_else(|| InvalidStanza::BadType(String::new()))?;
        let payload = match &*type_ {
            "get" | "set" => {
                let n = el.child_count();
                let (name, ctor): (&'static str, fn(Element) -> IqPayload) = if &*type_ == "get" {
                    ("get", IqPayload::Get)
                } else {
                    ("set", IqPayload::Set)
                };
                if n != 1 {
                    return Err(InvalidStanza::PayloadCount {
                        type_: name,
                        expected: "exactly one payload",
                        found: n,
                    });
                }
                ctor(el.children().next().cloned().expect("counted one"))
            }
            "result" => {
                let n = el.child_count();
                if n > 1 {
                    return Err(InvalidStanza::PayloadCount {
                        type_: "result",
                        expected: "at most one payload",
                        found: n,
                    });
                }
                IqPayload::Result(el.children().next().cloned())
            }
            "error" => {
                let error = take_error(&mut el)?;
                IqPayload::Error {
                    error: Box::new(error),
                    original: el.children().next().cloned(),
                }
            }
            other => return Err(InvalidStanza::BadType(other.into())),
        };
        Ok(Iq {
            to: c.to,
            from: c.from,
            id,
            lang: c.lang,
            payload,
        })
    }
}

impl From<Iq> for Element {
    fn from(iq: Iq) -> Element {
        let mut el = element_with_common(
            "iq",
            iq.to.as_ref(),
            iq.from.as_ref(),
            Some(&iq.id),
            Some(iq.payload.type_str()),
            iq.lang.as_ref(),
        );
        match iq.payload {
            IqPayload::Get(p) | IqPayload::Set(p) | IqPayload::Result(Some(p)) => {
                el.append_child(p);
            }
            IqPayload::Result(None) => {}
            IqPayload::Error { error, original } => {
                if let Some(o) = original {
                    el.append_child(o);
                }
                el.append_child(error.to_element());
            }
        }
        el
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stanza::DefinedCondition;

    fn parse(s: &str) -> Result<Iq, InvalidStanza> {
        Iq::try_from(Element::parse(s).unwrap())
    }

    #[test]
    fn validation() {
        assert_eq!(
            parse(r#"<iq xmlns="jabber:client" type="get"><a xmlns="urn:a"/></iq>"#),
            Err(InvalidStanza::MissingId)
        );
        assert_eq!(
            parse(r#"<iq xmlns="jabber:client" id="1"><a xmlns="urn:a"/></iq>"#),
            Err(InvalidStanza::BadType(String::new()))
        );
        assert_eq!(
            parse(r#"<iq xmlns="jabber:client" id="1" type="get"/>"#),
            Err(InvalidStanza::PayloadCount {
                type_: "get",
                expected: "exactly one payload",
                found: 0
            })
        );
        assert_eq!(
            parse(
                r#"<iq xmlns="jabber:client" id="1" type="set"><a xmlns="urn:a"/><b xmlns="urn:a"/></iq>"#
            ),
            Err(InvalidStanza::PayloadCount {
                type_: "set",
                expected: "exactly one payload",
                found: 2
            })
        );
        assert_eq!(
            parse(
                r#"<iq xmlns="jabber:client" id="1" type="result"><a xmlns="urn:a"/><b xmlns="urn:a"/></iq>"#
            ),
            Err(InvalidStanza::PayloadCount {
                type_: "result",
                expected: "at most one payload",
                found: 2
            })
        );
        assert_eq!(
            parse(r#"<iq xmlns="jabber:client" id="1" type="fetch"><a xmlns="urn:a"/></iq>"#),
            Err(InvalidStanza::BadType("fetch".into()))
        );
        assert!(matches!(
            parse(r#"<iq xmlns="jabber:client" id="1" type="error"/>"#),
            Err(InvalidStanza::BadError(_))
        ));
    }

    #[test]
    fn round_trips() {
        for s in [
            r#"<iq xmlns="jabber:client" id="1" type="get" to="a@b"><a xmlns="urn:a"/></iq>"#,
            r#"<iq xmlns="jabber:client" id="1" type="set" from="a@b/c"><a xmlns="urn:a"><b/></a></iq>"#,
            r#"<iq xmlns="jabber:client" id="1" type="result"/>"#,
            r#"<iq xmlns="jabber:client" id="1" type="result"><a xmlns="urn:a"/></iq>"#,
            r#"<iq xmlns="jabber:client" id="1" type="error"><a xmlns="urn:a"/><error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>"#,
        ] {
            let el = Element::parse(s).unwrap();
            let iq = Iq::try_from(el.clone()).unwrap();
            assert_eq!(Element::from(iq), el, "{s}");
        }
    }

    #[test]
    fn replies_swap_addresses() {
        let iq = parse(r#"<iq xmlns="jabber:client" id="7" type="get" from="a@b/c" to="b"><a xmlns="urn:a"/></iq>"#).unwrap();
        let r = iq.error_reply(StanzaError::new(DefinedCondition::ServiceUnavailable));
        assert_eq!(r.to.unwrap().as_str(), "a@b/c");
        assert_eq!(r.from.unwrap().as_str(), "b");
        assert_eq!(r.id, "7");
    }
}
