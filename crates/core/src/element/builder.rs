//! A fluent builder for [`Element`].

use bytestring::ByteString;

use super::{Element, Node};

/// Builds an [`Element`] step by step; get one from [`Element::builder`].
///
/// ```
/// # use lithos_core::Element;
/// let msg = Element::builder("message", "jabber:client")
///     .attr("to", "juliet@example.com")
///     .opt_attr("id", None::<&str>)
///     .lang("en")
///     .child(Element::builder("body", "jabber:client").text("Art thou not Romeo?").build())
///     .build();
/// assert_eq!(msg.attr("id"), None);
/// assert_eq!(msg.lang(), Some("en"));
/// ```
#[derive(Debug, Clone)]
#[must_use = "call build() to get the element"]
pub struct ElementBuilder {
    el: Element,
}

impl ElementBuilder {
    pub(super) fn new(el: Element) -> Self {
        ElementBuilder { el }
    }
    /// Adds (or replaces) an attribute in no namespace.
    pub fn attr(mut self, name: impl Into<ByteString>, value: impl Into<ByteString>) -> Self {
        self.el.set_attr(name, value);
        self
    }
    /// Adds an attribute only when `value` is `Some`.
    pub fn opt_attr<V: Into<ByteString>>(
        self,
        name: impl Into<ByteString>,
        value: Option<V>,
    ) -> Self {
        match value {
            Some(v) => self.attr(name, v),
            None => self,
        }
    }
    /// Adds (or replaces) a namespaced attribute.
    pub fn attr_ns(
        mut self,
        ns: impl Into<ByteString>,
        name: impl Into<ByteString>,
        value: impl Into<ByteString>,
    ) -> Self {
        self.el.set_attr_ns(ns, name, value);
        self
    }
    /// Sets `xml:lang`.
    pub fn lang(self, lang: impl Into<ByteString>) -> Self {
        self.attr_ns(crate::ns::XML, "lang", lang)
    }
    /// Appends a child element.
    pub fn child(mut self, child: Element) -> Self {
        self.el.children.push(Node::Element(child));
        self
    }
    /// Appends several child elements.
    pub fn children(mut self, children: impl IntoIterator<Item = Element>) -> Self {
        self.el
            .children
            .extend(children.into_iter().map(Node::Element));
        self
    }
    /// Appends text.
    pub fn text(mut self, text: impl Into<ByteString>) -> Self {
        self.el.append_text(text);
        self
    }
    /// Finishes the element.
    pub fn build(self) -> Element {
        self.el
    }
}

impl From<ElementBuilder> for Element {
    fn from(b: ElementBuilder) -> Element {
        b.build()
    }
}
