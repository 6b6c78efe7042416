//! # lithos-rsm
//!
//! [XEP-0059 Result Set Management](https://xmpp.org/extensions/xep-0059.html): the `<set/>`
//! element a requester puts in a query to page through a long result, and the one the
//! responder puts in the answer to say where the page sits.
//!
//! ```
//! use lithos_core::{Element, Payload};
//! use lithos_rsm::ResultSet;
//!
//! // "The ten items after the one whose id is 41."
//! let request = ResultSet::page(10).after("41");
//! let el: Element = request.clone().into_element();
//! assert_eq!(ResultSet::from_element(el).unwrap(), request);
//! ```

#![forbid(unsafe_code)]

use lithos_core::{Element, Payload, PayloadError};

/// The namespace.
pub const NS: &str = "http://jabber.org/protocol/rsm";

/// BXMPP table (Lithos's `F0 13`).
pub const BXMPP_TABLE: &str = include_str!("../tables/rsm.props");

lithos_core::extension! { table: BXMPP_TABLE }

/// A `<set/>`: in a request, `max` with `after` or `before` (or `index`); in an answer,
/// `first`, `last` and `count`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultSet {
    /// The largest page the requester wants.
    pub max: Option<usize>,
    /// The page starts after the item with this id.
    pub after: Option<String>,
    /// The page ends before the item with this id; `Some("")` asks for the last page.
    pub before: Option<String>,
    /// The page starts at this position (0-based).
    pub index: Option<usize>,
    /// In an answer: the first item's id, and its position in the whole set.
    pub first: Option<(String, Option<usize>)>,
    /// In an answer: the last item's id.
    pub last: Option<String>,
    /// In an answer: how many items the whole set holds.
    pub count: Option<usize>,
}

impl ResultSet {
    /// A request for at most `max` items.
    pub fn page(max: usize) -> ResultSet {
        ResultSet {
            max: Some(max),
            ..ResultSet::default()
        }
    }

    /// The page after the item `id`.
    pub fn after(mut self, id: impl Into<String>) -> ResultSet {
        self.after = Some(id.into());
        self
    }

    /// The page before the item `id` (`""`: the last page).
    pub fn before(mut self, id: impl Into<String>) -> ResultSet {
        self.before = Some(id.into());
        self
    }
}

fn number(el: &Element, what: &'static str) -> Result<usize, PayloadError> {
    el.text()
        .trim()
        .parse()
        .map_err(|_| PayloadError::Invalid(format!("<{what}/> must be a non-negative integer")))
}

impl Payload for ResultSet {
    const NS: &'static str = NS;
    const NAME: &'static str = "set";

    fn from_element(el: Element) -> Result<Self, PayloadError> {
        PayloadError::check_name::<Self>(&el)?;
        let mut s = ResultSet::default();
        for c in el.children().filter(|c| c.ns() == NS) {
            match c.name() {
                "max" => s.max = Some(number(c, "max")?),
                "after" => s.after = Some(c.text()),
                "before" => s.before = Some(c.text()),
                "index" => s.index = Some(number(c, "index")?),
                "first" => {
                    let index = match c.attr("index") {
                        Some(i) => Some(i.parse().map_err(|_| PayloadError::InvalidAttribute {
                            element: "first",
                            attribute: "index",
                            value: i.to_string(),
                        })?),
                        None => None,
                    };
                    s.first = Some((c.text(), index));
                }
                "last" => s.last = Some(c.text()),
                "count" => s.count = Some(number(c, "count")?),
                other => {
                    return Err(PayloadError::Invalid(format!(
                        "<{other}/> is not part of a result set"
                    )));
                }
            }
        }
        if s.after.is_some() && s.before.is_some() {
            return Err(PayloadError::Invalid(
                "a page is either after or before an item, not both".into(),
            ));
        }
        Ok(s)
    }

    fn into_element(self) -> Element {
        let leaf = |name: &str, text: String| Element::builder(name, NS).text(text).build();
        let mut b = Element::builder(Self::NAME, NS);
        if let Some(m) = self.max {
            b = b.child(leaf("max", m.to_string()));
        }
        if let Some(a) = self.after {
            b = b.child(leaf("after", a));
        }
        if let Some(x) = self.before {
            b = b.child(leaf("before", x));
        }
        if let Some(i) = self.index {
            b = b.child(leaf("index", i.to_string()));
        }
        if let Some((id, index)) = self.first {
            b = b.child(
                Element::builder("first", NS)
                    .opt_attr("index", index.map(|i| i.to_string()))
                    .text(id)
                    .build(),
            );
        }
        if let Some(l) = self.last {
            b = b.child(leaf("last", l));
        }
        if let Some(c) = self.count {
            b = b.child(leaf("count", c.to_string()));
        }
        b.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xep_examples() {
        // XEP-0059 example 2 and 3 (request, then answer).
        let req = Element::parse("<set xmlns='http://jabber.org/protocol/rsm'><max>10</max></set>")
            .unwrap();
        assert_eq!(ResultSet::from_element(req).unwrap(), ResultSet::page(10));
        let answer = Element::parse(
            "<set xmlns='http://jabber.org/protocol/rsm'>\
             <first index='0'>stpeter@jabber.org</first>\
             <last>peterpan@neverland.lit</last><count>800</count></set>",
        )
        .unwrap();
        let s = ResultSet::from_element(answer.clone()).unwrap();
        assert_eq!(s.first, Some(("stpeter@jabber.org".into(), Some(0))));
        assert_eq!(s.last.as_deref(), Some("peterpan@neverland.lit"));
        assert_eq!(s.count, Some(800));
        assert_eq!(s.into_element(), answer);
        // The last page.
        let last = Element::parse(
            "<set xmlns='http://jabber.org/protocol/rsm'><max>10</max><before/></set>",
        )
        .unwrap();
        assert_eq!(
            ResultSet::from_element(last).unwrap(),
            ResultSet::page(10).before("")
        );
    }

    #[test]
    fn malformed_sets() {
        for bad in [
            "<set xmlns='http://jabber.org/protocol/rsm'><max>ten</max></set>",
            "<set xmlns='http://jabber.org/protocol/rsm'><max>-1</max></set>",
            "<set xmlns='http://jabber.org/protocol/rsm'><after>a</after><before>b</before></set>",
            "<set xmlns='http://jabber.org/protocol/rsm'><first index='x'>a</first></set>",
            "<set xmlns='http://jabber.org/protocol/rsm'><page/></set>",
        ] {
            assert!(
                ResultSet::from_element(Element::parse(bad).unwrap()).is_err(),
                "{bad}"
            );
        }
    }
}
