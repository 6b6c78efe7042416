//! `#[derive(Payload)]` and `#[derive(AttrValue)]`: every kind of field, read strictly and
//! written back.

use lithos_core::{AttrValue, Element, Payload, PayloadError};

const NS: &str = "urn:example:derive";

#[derive(Debug, Clone, Copy, PartialEq, Eq, AttrValue)]
enum Level {
    #[payload(value = "0")]
    Low,
    #[payload(value = "1")]
    High,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, AttrValue)]
enum Mode {
    TurnOn,
    Off,
}

fn short(s: &str) -> bool {
    !s.is_empty() && s.len() <= 8
}

mod stamp {
    pub fn parse(s: &str) -> Option<i64> {
        s.strip_prefix('t')?.parse().ok()
    }
    pub fn format(v: i64) -> String {
        format!("t{v}")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "item")]
struct Item {
    #[payload(attr)]
    id: u32,
    #[payload(text)]
    label: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS)]
struct Note {
    #[payload(text)]
    body: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, validate = Query::validate)]
struct Query {
    #[payload(attr = "level", default = Level::Low)]
    level: Level,
    #[payload(attr, check = short)]
    tag: Option<String>,
    #[payload(attr, with = stamp)]
    stamp: Option<i64>,
    #[payload(attr)]
    mode: Option<Mode>,
    #[payload(text_child = "max")]
    max: Option<usize>,
    #[payload(flag = "urgent")]
    urgent: bool,
    #[payload(child)]
    note: Option<Note>,
    #[payload(child)]
    items: Vec<Item>,
    #[payload(element, name = "message")]
    message: Option<Element>,
}

impl Query {
    fn validate(&self) -> Result<(), PayloadError> {
        if self.urgent && self.level == Level::Low {
            return Err(PayloadError::Invalid("urgent queries are high".into()));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "wrap")]
struct Wrap {
    #[payload(attr = "report-id")]
    report_id: String,
    #[payload(element)]
    data: Element,
}

#[derive(Debug, Clone, PartialEq, Eq, Payload)]
#[payload(ns = NS, name = "open", ignore_unknown_attrs, ignore_unknown_children)]
struct Open {
    #[payload(child)]
    items: Vec<Item>,
}

fn el(xml: &str) -> Element {
    Element::parse(xml).unwrap()
}

fn query(inner: &str) -> Result<Query, PayloadError> {
    Query::from_element(el(&format!("<query xmlns='{NS}' {inner}")))
}

#[test]
fn every_kind_reads_and_round_trips() {
    let q = query(
        "level='1' tag='abc' stamp='t42' mode='turn-on'>\
         <max>10</max><urgent/><note>n</note><item id='1'>one</item><item id='2'>two</item><item id='3'/>\
         <message xmlns='jabber:client'><body>hi</body></message></query>",
    )
    .unwrap();
    assert_eq!(q.level, Level::High);
    assert_eq!(q.tag.as_deref(), Some("abc"));
    assert_eq!(q.stamp, Some(42));
    assert_eq!(q.mode, Some(Mode::TurnOn));
    assert_eq!(q.max, Some(10));
    assert!(q.urgent);
    assert_eq!(q.note.as_ref().unwrap().body.as_deref(), Some("n"));
    assert_eq!(q.items.len(), 3);
    assert_eq!(q.items[2].label, "");
    assert_eq!(q.message.as_ref().unwrap().name(), "message");
    let back = Query::from_element(q.clone().into_element()).unwrap();
    assert_eq!(back, q);
    assert!(
        q.into_element()
            .to_xml()
            .contains("<max>10</max><urgent/><note>n</note><item id=\"1\">one</item>")
    );
}

#[test]
fn defaults_and_absences() {
    let q = query("/>").unwrap();
    assert_eq!(q.level, Level::Low);
    assert_eq!((q.tag, q.stamp, q.mode, q.max), (None, None, None, None));
    assert!(!q.urgent && q.note.is_none() && q.items.is_empty() && q.message.is_none());
    // A default is written out.
    assert_eq!(query("/>").unwrap().into_element().attr("level"), Some("0"));
}

#[test]
fn strict_errors_name_what_is_wrong() {
    let cases: &[(&str, PayloadError)] = &[
        (
            "level='2'/>",
            PayloadError::InvalidAttribute {
                element: "query",
                attribute: "level",
                value: "2".into(),
            },
        ),
        (
            "tag='much-too-long'/>",
            PayloadError::InvalidAttribute {
                element: "query",
                attribute: "tag",
                value: "much-too-long".into(),
            },
        ),
        (
            "stamp='42'/>",
            PayloadError::InvalidAttribute {
                element: "query",
                attribute: "stamp",
                value: "42".into(),
            },
        ),
        (
            "other='x'/>",
            PayloadError::UnknownAttribute {
                element: "query",
                attribute: "other".into(),
            },
        ),
        (
            "xmlns:p='urn:p' p:tag='x'/>",
            PayloadError::UnknownAttribute {
                element: "query",
                attribute: "{urn:p}tag".into(),
            },
        ),
        (
            "><max>ten</max></query>",
            PayloadError::InvalidText {
                element: "max",
                value: "ten".into(),
            },
        ),
        (
            "><max>1</max><max>2</max></query>",
            PayloadError::DuplicateChild {
                element: "query",
                child: "max",
            },
        ),
        (
            "><urgent/><urgent/></query>",
            PayloadError::DuplicateChild {
                element: "query",
                child: "urgent",
            },
        ),
        (
            "><urgent>now</urgent></query>",
            PayloadError::UnexpectedText { element: "urgent" },
        ),
        (
            "><max><b/></max></query>",
            PayloadError::UnknownChild {
                element: "max",
                child: "b".into(),
                ns: NS.into(),
            },
        ),
        (
            "><other/></query>",
            PayloadError::UnknownChild {
                element: "query",
                child: "other".into(),
                ns: NS.into(),
            },
        ),
        (
            "><item id='x'/></query>",
            PayloadError::InvalidAttribute {
                element: "item",
                attribute: "id",
                value: "x".into(),
            },
        ),
        (
            "><item/></query>",
            PayloadError::MissingAttribute {
                element: "item",
                attribute: "id",
            },
        ),
        (
            ">stray</query>",
            PayloadError::UnexpectedText { element: "query" },
        ),
        (
            "><message/><message/></query>",
            PayloadError::DuplicateChild {
                element: "query",
                child: "message",
            },
        ),
        (
            "level='0'><urgent/></query>",
            PayloadError::Invalid("urgent queries are high".into()),
        ),
    ];
    for (xml, expected) in cases {
        assert_eq!(query(xml).as_ref(), Err(expected), "{xml}");
    }
    // An empty optional text reads as absent.
    assert_eq!(query("><note/></query>").unwrap().note.unwrap().body, None);
    // Whitespace between children is not text.
    assert!(query(">\n  <max>1</max>\n</query>").is_ok());
}

#[test]
fn any_element() {
    let w = Wrap::from_element(el(&format!(
        "<wrap xmlns='{NS}' report-id='r'><celsius xmlns='urn:t' value='2'/></wrap>"
    )))
    .unwrap();
    assert_eq!(w.data.name(), "celsius");
    assert_eq!(Wrap::from_element(w.clone().into_element()).unwrap(), w);
    assert_eq!(
        Wrap::from_element(el(&format!("<wrap xmlns='{NS}' report-id='r'/>"))),
        Err(PayloadError::MissingChild {
            element: "wrap",
            child: "element"
        })
    );
    assert_eq!(
        Wrap::from_element(el(&format!(
            "<wrap xmlns='{NS}' report-id='r'><a/><b/></wrap>"
        ))),
        Err(PayloadError::DuplicateChild {
            element: "wrap",
            child: "element"
        })
    );
    assert_eq!(
        Wrap::from_element(el(&format!("<wrap xmlns='{NS}'><a/></wrap>"))),
        Err(PayloadError::MissingAttribute {
            element: "wrap",
            attribute: "report-id"
        })
    );
}

#[test]
fn lenient_types_skip_what_they_do_not_know() {
    let o = Open::from_element(el(&format!(
        "<open xmlns='{NS}' x='1'>text<item id='4'/><other xmlns='urn:o'/></open>"
    )))
    .unwrap();
    assert_eq!(o.items.len(), 1);
}

#[test]
fn wrong_element_is_refused() {
    assert!(matches!(
        Item::from_element(el("<item xmlns='urn:other' id='1'/>")),
        Err(PayloadError::WrongElement { .. })
    ));
}

#[test]
fn attr_values() {
    assert_eq!(Mode::parse_attr(&"off".into()), Some(Mode::Off));
    assert_eq!(Mode::parse_attr(&"Off".into()), None);
    assert_eq!(Level::High.into_attr(), "1");
}

#[test]
fn payload_errors_answer_bad_request() {
    let e: lithos_core::stanza::StanzaError = query("level='9'/>").unwrap_err().into();
    assert_eq!(
        e.condition,
        lithos_core::stanza::DefinedCondition::BadRequest
    );
}
