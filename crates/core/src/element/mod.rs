//! A namespace-aware XML element tree.
//!
//! Every [`Element`] knows its namespace; prefixes are a detail of the serialised form and are
//! not kept. Strings are [`ByteString`]s: a parsed element shares the bytes of the stanza it was
//! read from, so names, attribute values and text that needed no unescaping are not copied.
//!
//! ```
//! use lithos_core::Element;
//! let ping = Element::builder("iq", "jabber:client")
//!     .attr("type", "get")
//!     .attr("id", "p1")
//!     .child(Element::bare("ping", "urn:xmpp:ping"))
//!     .build();
//! assert_eq!(ping.attr("type"), Some("get"));
//! assert!(ping.get_child("ping", "urn:xmpp:ping").is_some());
//! assert_eq!(
//!     ping.to_xml(),
//!     r#"<iq xmlns="jabber:client" type="get" id="p1"><ping xmlns="urn:xmpp:ping"/></iq>"#
//! );
//! ```

mod builder;
mod write;

pub use builder::ElementBuilder;
pub use write::{NsContext, escape_attr, escape_text};

use bytestring::ByteString;

/// One attribute: an optional namespace (empty when none), a local name and a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    pub(crate) ns: ByteString,
    pub(crate) name: ByteString,
    pub(crate) value: ByteString,
}

impl Attribute {
    /// An attribute in no namespace.
    pub fn new(name: impl Into<ByteString>, value: impl Into<ByteString>) -> Attribute {
        Attribute {
            ns: ByteString::new(),
            name: name.into(),
            value: value.into(),
        }
    }
    /// A namespaced attribute (for example `xml:lang`, whose namespace is [`crate::ns::XML`]).
    pub fn with_ns(
        ns: impl Into<ByteString>,
        name: impl Into<ByteString>,
        value: impl Into<ByteString>,
    ) -> Attribute {
        Attribute {
            ns: ns.into(),
            name: name.into(),
            value: value.into(),
        }
    }
    /// The namespace, or `""` for an attribute in no namespace.
    pub fn ns(&self) -> &str {
        &self.ns
    }
    /// The local name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The (unescaped) value.
    pub fn value(&self) -> &str {
        &self.value
    }
    /// The value as a shared string (no copy).
    pub fn value_shared(&self) -> &ByteString {
        &self.value
    }
}

/// A child of an element: another element or a run of text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// A child element.
    Element(Element),
    /// Character data, unescaped. Adjacent text and CDATA sections are merged into one node.
    Text(ByteString),
}

impl Node {
    /// The element, if this node is one.
    pub fn as_element(&self) -> Option<&Element> {
        match self {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        }
    }
    /// The text, if this node is text.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Node::Text(t) => Some(t),
            Node::Element(_) => None,
        }
    }
}

/// An XML element: a namespaced name, attributes, and child nodes.
///
/// Two elements are equal when their names, namespaces, attribute sets (in any order) and child
/// nodes (in order) are equal.
#[derive(Clone, Debug)]
pub struct Element {
    pub(crate) name: ByteString,
    pub(crate) ns: ByteString,
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) children: Vec<Node>,
}

impl PartialEq for Element {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.ns == other.ns
            && self.attrs.len() == other.attrs.len()
            && self.attrs.iter().all(|a| {
                other
                    .attrs
                    .iter()
                    .any(|b| a.name == b.name && a.ns == b.ns && a.value == b.value)
            })
            && self.children == other.children
    }
}
impl Eq for Element {}

impl Element {
    /// An element with no attributes and no children.
    pub fn bare(name: impl Into<ByteString>, ns: impl Into<ByteString>) -> Element {
        Element {
            name: name.into(),
            ns: ns.into(),
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Starts building an element.
    pub fn builder(name: impl Into<ByteString>, ns: impl Into<ByteString>) -> ElementBuilder {
        ElementBuilder::new(Element::bare(name, ns))
    }

    /// Parses one standalone XML element (no stream around it) with the default [`Limits`].
    ///
    /// ```
    /// # use lithos_core::Element;
    /// let e = Element::parse(r#"<a xmlns="urn:x"><b>hi &amp; bye</b></a>"#).unwrap();
    /// assert_eq!(e.get_child("b", "urn:x").unwrap().text(), "hi & bye");
    /// ```
    ///
    /// [`Limits`]: crate::Limits
    pub fn parse(xml: &str) -> Result<Element, crate::XmlError> {
        crate::xml::parse_document(xml, &crate::Limits::default())
    }

    /// The local name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The namespace (`""` when none).
    pub fn ns(&self) -> &str {
        &self.ns
    }
    /// The local name as a shared string.
    pub fn name_shared(&self) -> &ByteString {
        &self.name
    }
    /// The namespace as a shared string.
    pub fn ns_shared(&self) -> &ByteString {
        &self.ns
    }
    /// Moves the element, and every descendant in namespace `from`, into namespace `to`:
    /// a stanza passing between streams whose content namespaces differ (`jabber:client`
    /// and XEP-0114's `jabber:component:accept`), whose `<body/>` and `<error/>` children
    /// are in the stanza's namespace too. Descendants in other namespaces (payloads) are
    /// left as they are, with their own children.
    ///
    /// ```
    /// # use lithos_core::Element;
    /// let mut m = Element::parse("<message xmlns='jabber:client'><body>hi</body><x xmlns='urn:x'><body/></x></message>").unwrap();
    /// m.replace_ns("jabber:client", "jabber:component:accept");
    /// assert!(m.is("message", "jabber:component:accept"));
    /// assert!(m.has_child("body", "jabber:component:accept"));
    /// assert!(m.get_child("x", "urn:x").unwrap().has_child("body", "urn:x"));
    /// ```
    pub fn replace_ns(&mut self, from: &str, to: impl Into<ByteString>) {
        fn walk(el: &mut Element, from: &str, to: &ByteString) {
            if *el.ns != *from {
                return;
            }
            el.ns = to.clone();
            for n in &mut el.children {
                if let Node::Element(c) = n {
                    walk(c, from, to);
                }
            }
        }
        walk(self, from, &to.into());
    }

    /// True when the element has this local name and namespace.
    pub fn is(&self, name: &str, ns: &str) -> bool {
        *self.name == *name && *self.ns == *ns
    }

    /// The value of the attribute `name` in no namespace.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attr_shared(name).map(|v| &**v)
    }
    /// The value of the attribute `name` in no namespace, as a shared string.
    pub fn attr_shared(&self, name: &str) -> Option<&ByteString> {
        self.attrs
            .iter()
            .find(|a| a.ns.is_empty() && *a.name == *name)
            .map(|a| &a.value)
    }
    /// The value of the attribute `name` in namespace `ns`.
    pub fn attr_ns(&self, ns: &str, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| *a.ns == *ns && *a.name == *name)
            .map(|a| &*a.value)
    }
    /// The `xml:lang` attribute of this element, if set here.
    pub fn lang(&self) -> Option<&str> {
        self.attr_ns(crate::ns::XML.as_ref(), "lang")
    }
    /// All attributes in document order.
    pub fn attrs(&self) -> &[Attribute] {
        &self.attrs
    }
    /// Sets (or replaces) an attribute in no namespace.
    pub fn set_attr(&mut self, name: impl Into<ByteString>, value: impl Into<ByteString>) {
        let name = name.into();
        let value = value.into();
        match self
            .attrs
            .iter_mut()
            .find(|a| a.ns.is_empty() && a.name == name)
        {
            Some(a) => a.value = value,
            None => self.attrs.push(Attribute {
                ns: ByteString::new(),
                name,
                value,
            }),
        }
    }
    /// Sets (or replaces) a namespaced attribute.
    pub fn set_attr_ns(
        &mut self,
        ns: impl Into<ByteString>,
        name: impl Into<ByteString>,
        value: impl Into<ByteString>,
    ) {
        let (ns, name, value) = (ns.into(), name.into(), value.into());
        match self.attrs.iter_mut().find(|a| a.ns == ns && a.name == name) {
            Some(a) => a.value = value,
            None => self.attrs.push(Attribute { ns, name, value }),
        }
    }
    /// Removes an attribute in no namespace, returning its value.
    pub fn remove_attr(&mut self, name: &str) -> Option<ByteString> {
        let i = self
            .attrs
            .iter()
            .position(|a| a.ns.is_empty() && *a.name == *name)?;
        Some(self.attrs.remove(i).value)
    }

    /// All child nodes (elements and text) in order.
    pub fn nodes(&self) -> &[Node] {
        &self.children
    }
    /// Mutable access to the child nodes.
    pub fn nodes_mut(&mut self) -> &mut Vec<Node> {
        &mut self.children
    }
    /// Takes the child nodes out, leaving none.
    pub fn take_nodes(&mut self) -> Vec<Node> {
        std::mem::take(&mut self.children)
    }
    /// The child elements in order (text nodes skipped).
    pub fn children(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(Node::as_element)
    }
    /// Number of child elements.
    pub fn child_count(&self) -> usize {
        self.children().count()
    }
    /// The first child element with this name and namespace.
    pub fn get_child(&self, name: &str, ns: &str) -> Option<&Element> {
        self.children().find(|c| c.is(name, ns))
    }
    /// Mutable access to the first child element with this name and namespace.
    pub fn get_child_mut(&mut self, name: &str, ns: &str) -> Option<&mut Element> {
        self.children.iter_mut().find_map(|n| match n {
            Node::Element(e) if e.is(name, ns) => Some(e),
            _ => None,
        })
    }
    /// True when a child element with this name and namespace exists.
    pub fn has_child(&self, name: &str, ns: &str) -> bool {
        self.get_child(name, ns).is_some()
    }
    /// Removes and returns the first child element with this name and namespace.
    pub fn remove_child(&mut self, name: &str, ns: &str) -> Option<Element> {
        let i = self
            .children
            .iter()
            .position(|n| matches!(n, Node::Element(e) if e.is(name, ns)))?;
        match self.children.remove(i) {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        }
    }
    /// Keeps only the child elements for which `keep` is true (text is kept).
    pub fn retain_children(&mut self, mut keep: impl FnMut(&Element) -> bool) {
        self.children.retain(|n| match n {
            Node::Element(e) => keep(e),
            Node::Text(_) => true,
        });
    }
    /// Appends a child element.
    pub fn append_child(&mut self, child: Element) -> &mut Element {
        self.children.push(Node::Element(child));
        match self.children.last_mut() {
            Some(Node::Element(e)) => e,
            _ => unreachable!("just pushed an element"),
        }
    }
    /// Appends text, merging it with a text node that ends the children.
    pub fn append_text(&mut self, text: impl Into<ByteString>) {
        let text = text.into();
        if text.is_empty() {
            return;
        }
        if let Some(Node::Text(t)) = self.children.last_mut() {
            let mut s = String::with_capacity(t.len() + text.len());
            s.push_str(t);
            s.push_str(&text);
            *t = ByteString::from(s);
        } else {
            self.children.push(Node::Text(text));
        }
    }
    /// The concatenated text of this element's direct text nodes.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for n in &self.children {
            if let Node::Text(t) = n {
                out.push_str(t);
            }
        }
        out
    }
    /// The text when the element holds exactly one text node (no copy), `""` when it holds
    /// none, and `None` when it holds several nodes or any child element.
    pub fn text_shared(&self) -> Option<ByteString> {
        match self.children.as_slice() {
            [] => Some(ByteString::new()),
            [Node::Text(t)] => Some(t.clone()),
            _ => None,
        }
    }

    /// Serialises the element as a standalone document fragment (namespace declared at the root).
    pub fn to_xml(&self) -> String {
        let mut out = Vec::with_capacity(128);
        self.write_to(&mut out, &NsContext::empty());
        String::from_utf8(out).expect("the serializer writes UTF-8")
    }

    /// Serialises the element into `out`, as a child of a context whose default namespace and
    /// prefixes are given (a stream, for top-level stanzas).
    pub fn write_to<B: bytes::BufMut>(&self, out: &mut B, ctx: &NsContext) {
        write::write_element(self, out, ctx);
    }
}

impl std::str::FromStr for Element {
    type Err = crate::XmlError;
    fn from_str(s: &str) -> Result<Element, crate::XmlError> {
        Element::parse(s)
    }
}

impl std::fmt::Display for Element {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_xml())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equality_ignores_attribute_order() {
        let a = Element::builder("x", "urn:a")
            .attr("p", "1")
            .attr("q", "2")
            .build();
        let b = Element::builder("x", "urn:a")
            .attr("q", "2")
            .attr("p", "1")
            .build();
        assert_eq!(a, b);
        let c = Element::builder("x", "urn:a")
            .attr("q", "2")
            .attr("p", "3")
            .build();
        assert_ne!(a, c);
        let d = Element::builder("x", "urn:b")
            .attr("q", "2")
            .attr("p", "1")
            .build();
        assert_ne!(a, d);
    }

    #[test]
    fn attribute_access() {
        let mut e = Element::bare("x", "urn:a");
        e.set_attr("id", "1");
        e.set_attr("id", "2");
        e.set_attr_ns(crate::ns::XML, "lang", "en");
        assert_eq!(e.attrs().len(), 2);
        assert_eq!(e.attr("id"), Some("2"));
        assert_eq!(e.lang(), Some("en"));
        assert_eq!(e.attr("lang"), None);
        assert_eq!(e.remove_attr("id").as_deref(), Some("2"));
        assert_eq!(e.attr("id"), None);
    }

    #[test]
    fn children_and_text() {
        let mut e = Element::bare("x", "urn:a");
        e.append_text("a");
        e.append_text("b");
        e.append_child(Element::bare("y", "urn:a"));
        e.append_text("c");
        assert_eq!(e.nodes().len(), 3);
        assert_eq!(e.text(), "abc");
        assert_eq!(e.text_shared(), None);
        assert!(e.has_child("y", "urn:a"));
        assert!(!e.has_child("y", "urn:b"));
        assert!(e.remove_child("y", "urn:a").is_some());
        assert_eq!(e.child_count(), 0);
    }
}
