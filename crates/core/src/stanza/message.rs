//! `<message/>` (RFC 6121 §5).

use bytestring::ByteString;

use super::{InvalidStanza, StanzaError, element_with_common, take_common, take_error};
use crate::element::Element;
use crate::jid::Jid;

/// The `type` of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MessageType {
    /// One-to-one chat.
    Chat,
    /// An error about a message previously sent.
    Error,
    /// A message to a multi-user chat room.
    Groupchat,
    /// An alert or notification that expects no reply.
    Headline,
    /// A standalone message (the default when `type` is absent).
    #[default]
    Normal,
}

impl MessageType {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Chat => "chat",
            MessageType::Error => "error",
            MessageType::Groupchat => "groupchat",
            MessageType::Headline => "headline",
            MessageType::Normal => "normal",
        }
    }
    fn parse(s: &str) -> Option<MessageType> {
        Some(match s {
            "chat" => MessageType::Chat,
            "error" => MessageType::Error,
            "groupchat" => MessageType::Groupchat,
            "headline" => MessageType::Headline,
            "normal" => MessageType::Normal,
            _ => return None,
        })
    }
}

/// A message stanza. Its children (`body`, `subject`, `thread` and extensions) stay elements in
/// [`payloads`](Message::payloads), with helpers for the common ones.
///
/// ```
/// use lithos_core::{Jid, stanza::{Message, MessageType}};
/// let m = Message::chat(Jid::new("juliet@example.com").unwrap(), "Wherefore art thou?");
/// assert_eq!(m.type_, MessageType::Chat);
/// assert_eq!(m.body(), Some("Wherefore art thou?".to_string()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// Recipient.
    pub to: Option<Jid>,
    /// Sender (stamped by the server).
    pub from: Option<Jid>,
    /// Stanza id.
    pub id: Option<ByteString>,
    /// `xml:lang`.
    pub lang: Option<ByteString>,
    /// Message type.
    pub type_: MessageType,
    /// For `type="error"`: the error.
    pub error: Option<StanzaError>,
    /// Child elements other than the error.
    pub payloads: Vec<Element>,
}

impl Message {
    /// An empty message to `to`.
    pub fn new(to: Option<Jid>) -> Message {
        Message {
            to,
            ..Message::default()
        }
    }
    /// A chat message with a body.
    pub fn chat(to: Jid, body: impl Into<ByteString>) -> Message {
        let mut m = Message::new(Some(to));
        m.type_ = MessageType::Chat;
        m.set_body(body);
        m
    }
    /// The text of the first `<body/>`, if any.
    pub fn body(&self) -> Option<String> {
        self.child_text("body")
    }
    /// The text of the first `<subject/>`, if any.
    pub fn subject(&self) -> Option<String> {
        self.child_text("subject")
    }
    /// The text of the `<thread/>`, if any.
    pub fn thread(&self) -> Option<String> {
        self.child_text("thread")
    }
    fn child_text(&self, name: &str) -> Option<String> {
        self.payloads
            .iter()
            .find(|p| p.name() == name && super::is_content_ns(p.ns()))
            .map(Element::text)
    }
    /// Replaces the body (or adds one).
    pub fn set_body(&mut self, body: impl Into<ByteString>) {
        self.payloads
            .retain(|p| !(p.name() == "body" && super::is_content_ns(p.ns())));
        self.payloads.push(
            Element::builder("body", crate::ns::JABBER_CLIENT)
                .text(body)
                .build(),
        );
    }
    /// The first payload with this name and namespace.
    pub fn payload(&self, name: &str, ns: &str) -> Option<&Element> {
        self.payloads.iter().find(|p| p.is(name, ns))
    }
}

impl TryFrom<Element> for Message {
    type Error = InvalidStanza;
    fn try_from(mut el: Element) -> Result<Message, InvalidStanza> {
        let c = take_common(&mut el)?;
        let type_ = match c.type_.as_deref() {
            None => MessageType::Normal,
            Some(t) => MessageType::parse(t).ok_or_else(|| InvalidStanza::BadType(t.into()))?,
        };
        let error = if type_ == MessageType::Error {
            Some(take_error(&mut el)?)
        } else {
            None
        };
        Ok(Message {
            to: c.to,
            from: c.from,
            id: c.id,
            lang: c.lang,
            type_,
            error,
            payloads: el.children().cloned().collect(),
        })
    }
}

impl From<Message> for Element {
    fn from(m: Message) -> Element {
        let type_ = (m.type_ != MessageType::Normal).then(|| m.type_.as_str());
        let mut el = element_with_common(
            "message",
            m.to.as_ref(),
            m.from.as_ref(),
            m.id.as_ref(),
            type_,
            m.lang.as_ref(),
        );
        for p in m.payloads {
            el.append_child(p);
        }
        if let Some(e) = m.error {
            el.append_child(e.to_element());
        }
        el
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stanza::DefinedCondition;

    #[test]
    fn round_trip() {
        let el = Element::parse(
            r#"<message xmlns="jabber:client" to="a@b/c" from="d@e" id="1" type="chat" xml:lang="en"><body>hi</body><thread>t1</thread><x xmlns="urn:x"/></message>"#,
        )
        .unwrap();
        let m = Message::try_from(el.clone()).unwrap();
        assert_eq!(m.to.as_ref().unwrap().as_str(), "a@b/c");
        assert_eq!(m.lang.as_deref(), Some("en"));
        assert_eq!(m.body().as_deref(), Some("hi"));
        assert_eq!(m.thread().as_deref(), Some("t1"));
        assert_eq!(m.payloads.len(), 3);
        assert_eq!(Element::from(m), el);
    }

    #[test]
    fn error_messages() {
        let el = Element::parse(
            r#"<message xmlns="jabber:client" type="error" id="1"><body>hi</body><error type="cancel"><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>"#,
        )
        .unwrap();
        let m = Message::try_from(el.clone()).unwrap();
        assert_eq!(
            m.error.as_ref().unwrap().condition,
            DefinedCondition::ServiceUnavailable
        );
        assert_eq!(m.payloads.len(), 1);
        assert_eq!(Element::from(m), el);
        let el = Element::parse(r#"<message xmlns="jabber:client" type="error"/>"#).unwrap();
        assert!(matches!(
            Message::try_from(el),
            Err(InvalidStanza::BadError(_))
        ));
    }

    #[test]
    fn unknown_type() {
        let el = Element::parse(r#"<message xmlns="jabber:client" type="shout"/>"#).unwrap();
        assert_eq!(
            Message::try_from(el),
            Err(InvalidStanza::BadType("shout".into()))
        );
    }
}
