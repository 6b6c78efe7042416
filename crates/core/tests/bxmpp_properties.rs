//! Property tests of the BXMPP codec over elements drawn from the registered vocabulary:
//! element → binary → element is the identity; XML text → element → binary → element → XML
//! text is stable; the same stream split into random reads gives the same events.

use std::sync::{Arc, OnceLock};

use base64::Engine;
use bytes::BytesMut;
use lithos_core::binary::{BxmppCodec, Vocabulary, decode_document, encode_document};
use lithos_core::{Element, Limits, StreamEvent, StreamHeader, ns, xml::parse_document};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

const CASES: u32 = 1000;

fn vocab() -> Arc<Vocabulary> {
    static V: OnceLock<Arc<Vocabulary>> = OnceLock::new();
    V.get_or_init(|| {
        let mut v = Vocabulary::linked().unwrap();
        for (name, text) in [
            ("ping", include_str!("tables/ext_ping.props")),
            ("thing", include_str!("tables/ext_thing.props")),
            ("light", include_str!("tables/ext_light.props")),
            ("actuator", include_str!("tables/ext_actuator.props")),
            ("lora-dac", include_str!("tables/ext_lora-dac.props")),
            ("sensor", include_str!("tables/ext_sensor.props")),
            ("edge", include_str!("tables/ext_edge.props")),
            (
                "concentrator",
                include_str!("tables/ext_concentrator.props"),
            ),
        ] {
            v.load(name, text).unwrap();
        }
        Arc::new(v)
    })
    .clone()
}

/// A keyword usable as an XML name.
fn is_name(k: &str) -> bool {
    let mut c = k.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'))
}

/// Per extension (the default one first): its namespace and the keywords usable as names.
fn tables() -> Vec<(Option<&'static str>, Vec<&'static str>)> {
    let v = vocab();
    let names = |e: &lithos_core::binary::Extension| -> Vec<&'static str> {
        (0..=255u8)
            .filter_map(|c| e.keyword(c))
            .filter(|k| is_name(k))
            .collect()
    };
    let mut out = vec![(None, names(v.default_extension()))];
    for e in v.extensions() {
        out.push((e.namespace(), names(e)));
    }
    out.retain(|(_, k)| !k.is_empty());
    out
}

#[derive(Debug, Clone)]
enum ValueShape {
    Keyword(u16),
    Text(String),
    Bytes(Vec<u8>),
    Byte(u8),
}

#[derive(Debug, Clone)]
struct Shape {
    switch_to: Option<u16>,
    name: u16,
    attrs: Vec<(u16, ValueShape)>,
    lang: Option<String>,
    text: Option<ValueShape>,
    children: Vec<Shape>,
}

fn value_shape() -> impl Strategy<Value = ValueShape> {
    prop_oneof![
        any::<u16>().prop_map(ValueShape::Keyword),
        // Text that needs escaping in XML, non-ASCII, one-byte values, '$B' look-alikes.
        "[a-zA-Z0-9<>&\"' \u{e9}\u{1F600}\u{FFFD}$\\[\\]{}]{1,12}".prop_map(ValueShape::Text),
        "[a-z]".prop_map(ValueShape::Text),
        prop::collection::vec(any::<u8>(), 1..12).prop_map(ValueShape::Bytes),
        any::<u8>().prop_map(ValueShape::Byte),
    ]
}

fn shape() -> impl Strategy<Value = Shape> {
    let leaf = (
        prop::option::weighted(0.3, any::<u16>()),
        any::<u16>(),
        prop::collection::vec((any::<u16>(), value_shape()), 0..4),
        prop::option::weighted(0.2, "[a-z]{2}"),
        prop::option::weighted(0.4, value_shape()),
    )
        .prop_map(|(switch_to, name, attrs, lang, text)| Shape {
            switch_to,
            name,
            attrs,
            lang,
            text,
            children: vec![],
        });
    leaf.prop_recursive(4, 32, 5, |inner| {
        (inner.clone(), prop::collection::vec(inner, 0..5)).prop_map(|(mut s, kids)| {
            s.children = kids;
            s
        })
    })
}

fn value(v: &ValueShape, keywords: &[&'static str]) -> String {
    match v {
        ValueShape::Keyword(i) => keywords[*i as usize % keywords.len()].to_string(),
        ValueShape::Text(t) => t.clone(),
        ValueShape::Bytes(b) => format!(
            "$B[{}]",
            base64::engine::general_purpose::STANDARD.encode(b)
        ),
        ValueShape::Byte(b) => format!("$B{{{b}}}"),
    }
}

/// Builds an element that the vocabulary can encode. `table` is the current extension's index.
fn build(
    s: &Shape,
    tables: &[(Option<&'static str>, Vec<&'static str>)],
    table: usize,
    ns: &str,
) -> Element {
    let (mut table, mut ns) = (table, ns.to_string());
    if let Some(t) = s.switch_to {
        let t = 1 + t as usize % (tables.len() - 1);
        table = t;
        ns = tables[t].0.unwrap().to_string();
    }
    let keywords = &tables[table].1;
    let mut el = Element::bare(keywords[s.name as usize % keywords.len()], ns.clone());
    for (k, v) in &s.attrs {
        let name = keywords[*k as usize % keywords.len()];
        if el.attr(name).is_none() {
            el.set_attr(name, value(v, keywords));
        }
    }
    if let Some(l) = &s.lang {
        // xml:lang is a keyword of the default extension and of the error extensions.
        let current = if table == 0 {
            vocab().default_extension().clone()
        } else {
            vocab().extension_for_ns(&ns).unwrap().clone()
        };
        if current.code_of("xml:lang").is_some() {
            el.set_attr_ns(ns::XML, "lang", l.clone());
        }
    }
    for c in &s.children {
        el.append_child(build(c, tables, table, &ns));
    }
    if let Some(t) = &s.text {
        let t = value(t, keywords);
        // Text that is only white space next to children is formatting, which BXMPP drops.
        if s.children.is_empty() || !t.trim().is_empty() {
            el.append_text(t);
        }
    }
    el
}

fn element() -> impl Strategy<Value = Element> {
    shape().prop_map(|s| build(&s, &tables(), 0, "jabber:client"))
}

#[test]
fn element_binary_element_is_identity() {
    let v = vocab();
    proptest!(ProptestConfig::with_cases(CASES), |(el in element())| {
        let bytes = encode_document(&v, &el).map_err(|e| TestCaseError::fail(format!("{e}: {el}")))?;
        let back = decode_document(&v, bytes.clone())
            .map_err(|e| TestCaseError::fail(format!("{e}: {el} as {bytes:02X?}")))?;
        prop_assert_eq!(back, el);
    });
}

#[test]
fn xml_binary_xml_is_stable() {
    let v = vocab();
    proptest!(ProptestConfig::with_cases(CASES), |(el in element())| {
        let text = el.to_xml();
        let parsed = parse_document(&text, &Limits::default()).unwrap();
        let bytes = encode_document(&v, &parsed).unwrap();
        let back = decode_document(&v, bytes).unwrap();
        prop_assert_eq!(back.to_xml(), text);
    });
}

#[test]
fn random_chunking_gives_the_same_events() {
    let v = vocab();
    let input = (
        prop::collection::vec(element(), 1..4),
        prop::collection::vec(1usize..24, 1..100),
    );
    proptest!(ProptestConfig::with_cases(CASES), |((els, sizes) in input)| {
        let mut codec = BxmppCodec::with_vocabulary(v.clone());
        let mut wire = BytesMut::new();
        let header = StreamHeader::client().to("example.com").id("s1");
        codec.encode(StreamEvent::from(header), &mut wire).unwrap();
        for el in &els {
            codec.encode(el, &mut wire).unwrap();
            codec.encode(StreamEvent::KeepAlive, &mut wire).unwrap();
        }
        codec.encode(StreamEvent::Close, &mut wire).unwrap();
        let decode = |chunks: &[&[u8]]| {
            let mut c = BxmppCodec::with_vocabulary(v.clone());
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            for ch in chunks {
                buf.extend_from_slice(ch);
                while let Some(ev) = c.decode(&mut buf).unwrap() {
                    if ev != StreamEvent::KeepAlive {
                        out.push(ev);
                    }
                }
            }
            out
        };
        let whole = decode(&[&wire]);
        prop_assert_eq!(whole.len(), els.len() + 2);
        for (ev, el) in whole[1..].iter().zip(&els) {
            prop_assert_eq!(ev, &StreamEvent::Element(el.clone()));
        }
        let mut chunks = Vec::new();
        let mut at = 0;
        for n in sizes.iter().cycle() {
            if at >= wire.len() {
                break;
            }
            let end = (at + n).min(wire.len());
            chunks.push(&wire[at..end]);
            at = end;
        }
        prop_assert_eq!(decode(&chunks), whole);
    });
}
