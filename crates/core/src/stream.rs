//! Stream-level items: the stream header and the events a codec reads and writes.

use bytes::BufMut;
use bytestring::ByteString;

use crate::element::{Attribute, Element, NsContext, escape_attr};
use crate::ns;
use crate::stream_error::StreamErrorCondition;

/// The opening `<stream:stream>` tag of an XMPP stream.
///
/// ```
/// use lithos_core::StreamHeader;
/// let h = StreamHeader::client().to("example.com").lang("en");
/// let mut out = Vec::new();
/// h.write_to(&mut out);
/// assert_eq!(
///     String::from_utf8(out).unwrap(),
///     "<stream:stream xmlns=\"jabber:client\" xmlns:stream=\"http://etherx.jabber.org/streams\" \
///      to=\"example.com\" version=\"1.0\" xml:lang=\"en\">"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamHeader {
    /// Namespace of the header element (must be [`ns::STREAMS`]).
    pub ns: ByteString,
    /// Local name of the header element (must be `stream`).
    pub name: ByteString,
    /// The content namespace: the default namespace declared on the header (`jabber:client`
    /// for clients), empty if none was declared.
    pub content_ns: ByteString,
    /// `to`
    pub to: Option<ByteString>,
    /// `from`
    pub from: Option<ByteString>,
    /// `id`
    pub id: Option<ByteString>,
    /// `version`
    pub version: Option<ByteString>,
    /// `xml:lang`
    pub lang: Option<ByteString>,
    /// Any other attributes.
    pub extra: Vec<Attribute>,
    /// The prefix bindings the header declared, other than the default namespace, as
    /// `(prefix, namespace)`; stanzas inherit them.
    pub prefixes: Vec<(ByteString, ByteString)>,
    /// The qualified name as written (for matching the closing tag).
    pub(crate) qname: ByteString,
}

impl StreamHeader {
    /// A header with the given content namespace, the `stream` prefix, and version 1.0.
    pub fn new(content_ns: ByteString) -> StreamHeader {
        StreamHeader {
            ns: ns::STREAMS,
            name: ByteString::from_static("stream"),
            content_ns,
            to: None,
            from: None,
            id: None,
            version: Some(ByteString::from_static("1.0")),
            lang: None,
            extra: Vec::new(),
            prefixes: vec![(ByteString::from_static("stream"), ns::STREAMS)],
            qname: ByteString::from_static("stream:stream"),
        }
    }
    /// A `jabber:client` header.
    pub fn client() -> StreamHeader {
        StreamHeader::new(ns::JABBER_CLIENT)
    }
    /// Sets `to`.
    pub fn to(mut self, to: impl Into<ByteString>) -> Self {
        self.to = Some(to.into());
        self
    }
    /// Sets `from`.
    pub fn from(mut self, from: impl Into<ByteString>) -> Self {
        self.from = Some(from.into());
        self
    }
    /// Sets `id`.
    pub fn id(mut self, id: impl Into<ByteString>) -> Self {
        self.id = Some(id.into());
        self
    }
    /// Sets `xml:lang`.
    pub fn lang(mut self, lang: impl Into<ByteString>) -> Self {
        self.lang = Some(lang.into());
        self
    }

    /// Checks what RFC 6120 §4.8 lets a receiver check without configuration: the element's
    /// namespace and name, and the content namespace. `version` and `to` are the server's call.
    pub fn check(&self) -> Result<(), StreamErrorCondition> {
        if self.ns != ns::STREAMS || &*self.name != "stream" {
            return Err(StreamErrorCondition::InvalidNamespace);
        }
        if self.content_ns.is_empty() {
            return Err(StreamErrorCondition::InvalidNamespace);
        }
        Ok(())
    }

    /// The namespace context that top-level elements of this stream are written in.
    pub fn ns_context(&self) -> NsContext {
        NsContext::new(self.content_ns.clone(), self.prefixes.clone())
    }

    /// The prefix this header uses for the streams namespace, if any.
    fn stream_prefix(&self) -> Option<&str> {
        self.prefixes
            .iter()
            .find(|(_, n)| *n == self.ns)
            .map(|(p, _)| &**p)
    }

    /// Writes the opening tag (no XML declaration).
    pub fn write_to<B: BufMut>(&self, out: &mut B) {
        out.put_u8(b'<');
        let prefix = self.stream_prefix();
        if let Some(p) = prefix {
            out.put_slice(p.as_bytes());
            out.put_u8(b':');
        }
        out.put_slice(self.name.as_bytes());
        let mut attr = |name: &str, value: &str| {
            out.put_u8(b' ');
            out.put_slice(name.as_bytes());
            out.put_slice(b"=\"");
            escape_attr(value, out);
            out.put_u8(b'"');
        };
        if prefix.is_none() {
            attr("xmlns", &self.ns);
        } else if !self.content_ns.is_empty() {
            attr("xmlns", &self.content_ns);
        }
        for (p, n) in &self.prefixes {
            attr(&format!("xmlns:{p}"), n);
        }
        for (k, v) in [
            ("from", &self.from),
            ("to", &self.to),
            ("id", &self.id),
            ("version", &self.version),
            ("xml:lang", &self.lang),
        ] {
            if let Some(v) = v {
                attr(k, v);
            }
        }
        for a in &self.extra {
            if a.ns.is_empty() {
                attr(&a.name, &a.value);
            }
        }
        out.put_u8(b'>');
    }

    /// Writes the closing tag.
    pub fn write_close<B: BufMut>(&self, out: &mut B) {
        out.put_slice(b"</");
        out.put_slice(self.qname.as_bytes());
        out.put_u8(b'>');
    }

    /// Builds a header from the parsed opening tag.
    pub(crate) fn from_parts(
        el: Element,
        qname: ByteString,
        declared: Vec<(ByteString, ByteString)>,
    ) -> StreamHeader {
        let mut h = StreamHeader {
            ns: el.ns,
            name: el.name,
            content_ns: ByteString::new(),
            to: None,
            from: None,
            id: None,
            version: None,
            lang: None,
            extra: Vec::new(),
            prefixes: Vec::new(),
            qname,
        };
        for (p, n) in declared {
            if p.is_empty() {
                h.content_ns = n;
            } else {
                h.prefixes.push((p, n));
            }
        }
        for a in el.attrs {
            let slot = if a.ns.is_empty() {
                match &*a.name {
                    "to" => &mut h.to,
                    "from" => &mut h.from,
                    "id" => &mut h.id,
                    "version" => &mut h.version,
                    _ => {
                        h.extra.push(a);
                        continue;
                    }
                }
            } else if a.ns == ns::XML && &*a.name == "lang" {
                &mut h.lang
            } else {
                h.extra.push(a);
                continue;
            };
            *slot = Some(a.value);
        }
        h
    }
}

impl From<StreamHeader> for StreamEvent {
    fn from(h: StreamHeader) -> StreamEvent {
        StreamEvent::Header(Box::new(h))
    }
}

impl From<crate::Element> for StreamEvent {
    fn from(e: crate::Element) -> StreamEvent {
        StreamEvent::Element(e)
    }
}

/// One item of an XMPP stream, read by a decoder or written by an encoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// The stream opened (`<stream:stream ...>`). Boxed: headers are rare and large, and
    /// events are moved around once per stanza.
    Header(Box<StreamHeader>),
    /// A top-level element: a stanza or a nonza (features, SASL, stream errors...).
    Element(Element),
    /// White space between top-level elements (a keep-alive).
    KeepAlive,
    /// The stream closed (`</stream:stream>`).
    Close,
}
