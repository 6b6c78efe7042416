//! Serialisation of elements to XML text.
//!
//! The writer declares a namespace only where it changes: a child in its parent's namespace
//! gets no `xmlns`, and a top-level stanza in the stream's default namespace gets none either.
//! Namespaced attributes other than `xml:*` get a generated prefix declared on the element that
//! first needs it.

use bytes::BufMut;
use bytestring::ByteString;

use super::{Element, Node};
use crate::ns;

/// The namespace declarations in force where an element is written: its parent's default
/// namespace and the prefixes bound above it.
#[derive(Clone, Debug, Default)]
pub struct NsContext {
    default: ByteString,
    prefixes: Vec<(ByteString, ByteString)>,
}

impl NsContext {
    /// No declarations: the element declares its own namespace.
    pub fn empty() -> NsContext {
        NsContext::default()
    }
    /// The context of a child of `<stream:stream xmlns=default xmlns:stream=...>`.
    pub fn stream(default: ByteString) -> NsContext {
        NsContext {
            default,
            prefixes: vec![(ByteString::from_static("stream"), ns::STREAMS)],
        }
    }
    /// A context with a default namespace and prefix bindings.
    pub fn new(default: ByteString, prefixes: Vec<(ByteString, ByteString)>) -> NsContext {
        NsContext { default, prefixes }
    }
    /// The default namespace in force.
    pub fn default_ns(&self) -> &ByteString {
        &self.default
    }
    /// The prefix bindings in force, as `(prefix, namespace)`.
    pub fn prefixes(&self) -> &[(ByteString, ByteString)] {
        &self.prefixes
    }
}

const ESC_NONE: u8 = 0;
const ESC_TEXT: u8 = 1;
const ESC_ATTR: u8 = 2;

/// Which bytes need escaping where: bit 0 in text, bit 1 in attribute values.
static ESCAPE: [u8; 256] = {
    let mut t = [ESC_NONE; 256];
    t[b'&' as usize] = ESC_TEXT | ESC_ATTR;
    t[b'<' as usize] = ESC_TEXT | ESC_ATTR;
    t[b'>' as usize] = ESC_TEXT | ESC_ATTR;
    t[b'"' as usize] = ESC_ATTR;
    t[b'\r' as usize] = ESC_TEXT | ESC_ATTR;
    t[b'\n' as usize] = ESC_ATTR;
    t[b'\t' as usize] = ESC_ATTR;
    t
};

fn escape_into<B: BufMut>(s: &str, out: &mut B, mask: u8) {
    let b = s.as_bytes();
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        if ESCAPE[c as usize] & mask == 0 {
            continue;
        }
        out.put_slice(&b[start..i]);
        out.put_slice(match c {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'"' => b"&quot;",
            b'\r' => b"&#13;",
            b'\n' => b"&#10;",
            _ => b"&#9;",
        });
        start = i + 1;
    }
    out.put_slice(&b[start..]);
}

/// Appends `s` escaped for use as character data.
///
/// ```
/// let mut out = Vec::new();
/// lithos_core::element::escape_text("a<b & c>d", &mut out);
/// assert_eq!(out, b"a&lt;b &amp; c&gt;d");
/// ```
pub fn escape_text<B: BufMut>(s: &str, out: &mut B) {
    escape_into(s, out, ESC_TEXT)
}

/// Appends `s` escaped for use inside a double-quoted attribute value. Tabs and line breaks are
/// written as character references so that attribute-value normalisation keeps them.
pub fn escape_attr<B: BufMut>(s: &str, out: &mut B) {
    escape_into(s, out, ESC_ATTR)
}

/// A prefix in scope: one from the context, or one the writer generated (`ns<N>`).
#[derive(Clone, Copy)]
enum Prefix<'a> {
    Named(&'a str),
    Generated(u32),
}

struct Writer<'a, B> {
    out: &'a mut B,
    prefixes: Vec<(Prefix<'a>, &'a str)>,
    generated: u32,
}

pub(crate) fn write_element<B: BufMut>(el: &Element, out: &mut B, ctx: &NsContext) {
    let mut w = Writer {
        out,
        prefixes: ctx
            .prefixes
            .iter()
            .map(|(p, n)| (Prefix::Named(p), &**n))
            .collect(),
        generated: 0,
    };
    w.element(el, &ctx.default);
}

impl<'a, B: BufMut> Writer<'a, B> {
    fn prefix_for(&self, ns: &str) -> Option<Prefix<'a>> {
        self.prefixes
            .iter()
            .rev()
            .find(|(_, n)| *n == ns)
            .map(|(p, _)| *p)
    }

    fn element(&mut self, el: &'a Element, parent_default: &'a str) {
        let mut default = parent_default;
        let mut declare_default = false;
        let mut prefix = None;
        if *el.ns != *parent_default {
            match (!el.ns.is_empty())
                .then(|| self.prefix_for(&el.ns))
                .flatten()
            {
                Some(p) => prefix = Some(p),
                None => {
                    declare_default = true;
                    default = &el.ns;
                }
            }
        }
        self.out.put_u8(b'<');
        self.qname(prefix, &el.name);
        if declare_default {
            self.out.put_slice(b" xmlns=\"");
            escape_attr(&el.ns, self.out);
            self.out.put_u8(b'"');
        }
        let mark = self.prefixes.len();
        for a in &el.attrs {
            self.out.put_u8(b' ');
            if a.ns.is_empty() {
                self.out.put_slice(a.name.as_bytes());
            } else if a.ns == ns::XML {
                self.out.put_slice(b"xml:");
                self.out.put_slice(a.name.as_bytes());
            } else {
                let p = match self.prefix_for(&a.ns) {
                    Some(p) => p,
                    None => {
                        // Skip numbers whose name a context prefix already uses.
                        while self.prefixes.iter().any(|(p, _)| {
                            matches!(p, Prefix::Named(n) if *n == format!("ns{}", self.generated))
                        }) {
                            self.generated += 1;
                        }
                        let p = Prefix::Generated(self.generated);
                        self.generated += 1;
                        self.out.put_slice(b"xmlns:");
                        self.write_prefix(p);
                        self.out.put_slice(b"=\"");
                        escape_attr(&a.ns, self.out);
                        self.out.put_slice(b"\" ");
                        self.prefixes.push((p, &a.ns));
                        p
                    }
                };
                self.qname(Some(p), &a.name);
            }
            self.out.put_slice(b"=\"");
            escape_attr(&a.value, self.out);
            self.out.put_u8(b'"');
        }
        if el.children.is_empty() {
            self.out.put_slice(b"/>");
        } else {
            self.out.put_u8(b'>');
            for n in &el.children {
                match n {
                    Node::Element(c) => self.element(c, default),
                    Node::Text(t) => escape_text(t, self.out),
                }
            }
            self.out.put_slice(b"</");
            self.qname(prefix, &el.name);
            self.out.put_u8(b'>');
        }
        self.prefixes.truncate(mark);
    }

    fn write_prefix(&mut self, p: Prefix<'_>) {
        match p {
            Prefix::Named(p) => self.out.put_slice(p.as_bytes()),
            Prefix::Generated(n) => {
                self.out.put_slice(b"ns");
                self.out.put_slice(n.to_string().as_bytes());
            }
        }
    }

    fn qname(&mut self, prefix: Option<Prefix<'_>>, name: &str) {
        if let Some(p) = prefix {
            self.write_prefix(p);
            self.out.put_u8(b':');
        }
        self.out.put_slice(name.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(el: &Element, ctx: &NsContext) -> String {
        let mut out = Vec::new();
        el.write_to(&mut out, ctx);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn no_redundant_declarations() {
        let el = Element::builder("message", "jabber:client")
            .attr("to", "a@b")
            .child(
                Element::builder("body", "jabber:client")
                    .text("1 < 2 & 3 > 2")
                    .build(),
            )
            .child(
                Element::builder("x", "urn:x")
                    .child(Element::bare("y", "urn:x"))
                    .child(Element::bare("z", "jabber:client"))
                    .build(),
            )
            .build();
        assert_eq!(
            w(&el, &NsContext::stream(ns::JABBER_CLIENT)),
            "<message to=\"a@b\"><body>1 &lt; 2 &amp; 3 &gt; 2</body>\
             <x xmlns=\"urn:x\"><y/><z xmlns=\"jabber:client\"/></x></message>"
        );
        assert_eq!(
            w(&el, &NsContext::empty()),
            "<message xmlns=\"jabber:client\" to=\"a@b\"><body>1 &lt; 2 &amp; 3 &gt; 2</body>\
             <x xmlns=\"urn:x\"><y/><z xmlns=\"jabber:client\"/></x></message>"
        );
    }

    #[test]
    fn stream_prefix_and_empty_namespace() {
        let f = Element::builder("features", ns::STREAMS)
            .child(Element::bare("starttls", ns::XMPP_TLS))
            .build();
        assert_eq!(
            w(&f, &NsContext::stream(ns::JABBER_CLIENT)),
            "<stream:features><starttls xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"/></stream:features>"
        );
        let e = Element::builder("a", "urn:a")
            .child(Element::bare("b", ""))
            .build();
        assert_eq!(
            w(&e, &NsContext::empty()),
            "<a xmlns=\"urn:a\"><b xmlns=\"\"/></a>"
        );
    }

    #[test]
    fn attribute_escaping_and_prefixes() {
        let e = Element::builder("a", "urn:a")
            .attr("v", "\"<&>\t\n\r'")
            .lang("en")
            .attr_ns("urn:other", "k", "1")
            .child(
                Element::builder("b", "urn:a")
                    .attr_ns("urn:other", "k", "2")
                    .build(),
            )
            .build();
        assert_eq!(
            w(&e, &NsContext::empty()),
            "<a xmlns=\"urn:a\" v=\"&quot;&lt;&amp;&gt;&#9;&#10;&#13;'\" xml:lang=\"en\" \
             xmlns:ns0=\"urn:other\" ns0:k=\"1\"><b ns0:k=\"2\"/></a>"
        );
    }
}
