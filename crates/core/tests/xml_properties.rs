//! Property tests of the XML codec:
//! (a) serialise → parse gives back an equal tree;
//! (b) the same bytes split into random chunks give the same events;
//! (c) on random well-formed documents, our tree equals the one built from quick-xml's
//!     namespace-resolving reader.

use bytes::BytesMut;
use lithos_core::element::NsContext;
use lithos_core::xml::{XmlDecoder, parse_document};
use lithos_core::{Element, Limits, Node, StreamEvent, XmlCodec, ns};
use proptest::prelude::*;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use tokio_util::codec::Encoder;

const CASES: u32 = 1000;

// ---------------------------------------------------------------------------------------------
// Random trees, built through the API.

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-wyzA-Z_][a-zA-Z0-9._-]{0,8}",
        Just("body".to_string()),
        Just("\u{e9}t\u{e9}".to_string()),
        Just("\u{540d}\u{524d}".to_string()),
    ]
}

fn namespace() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("jabber:client".to_string()),
        Just("urn:a".to_string()),
        Just("urn:b".to_string()),
        Just("http://example.com/ns?x=1&y=<2>\"q\"".to_string()),
    ]
}

fn attr_ns() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(String::new()),
        1 => Just("urn:attr".to_string()),
        1 => Just("urn:a".to_string()),
        1 => Just(ns::XML.to_string()),
    ]
}

/// Text made of characters that need escaping, white space of every kind, and non-ASCII.
fn text() -> impl Strategy<Value = String> {
    "[a-z<>&\"' \t\n\r\\]\u{e9}\u{1F600}\u{FFFD}]{0,16}"
}

fn tree() -> impl Strategy<Value = Element> {
    let leaf = (
        name(),
        namespace(),
        prop::collection::vec((attr_ns(), name(), text()), 0..4),
    )
        .prop_map(|(n, ns, attrs)| {
            let mut e = Element::bare(n, ns);
            for (ans, an, av) in attrs {
                if ans.is_empty() {
                    if e.attr(&an).is_none() {
                        e.set_attr(an, av);
                    }
                } else if e.attr_ns(&ans, &an).is_none() {
                    e.set_attr_ns(ans, an, av);
                }
            }
            e
        });
    leaf.prop_recursive(5, 48, 6, |inner| {
        (
            inner.clone(),
            prop::collection::vec(
                prop_oneof![
                    inner.prop_map(Node::Element),
                    text().prop_map(|t| Node::Text(t.into()))
                ],
                0..6,
            ),
        )
            .prop_map(|(mut parent, kids)| {
                for k in kids {
                    match k {
                        Node::Element(e) => {
                            parent.append_child(e);
                        }
                        Node::Text(t) => parent.append_text(t),
                    }
                }
                parent
            })
    })
}

/// `\r` does not survive XML's end-of-line normalisation in text unless written as `&#13;`,
/// which our serializer does; every other character must come back as it was.
#[test]
fn serialize_then_parse_is_identity() {
    let config = ProptestConfig::with_cases(CASES);
    proptest!(config, |(el in tree())| {
        let xml = el.to_xml();
        let back = parse_document(&xml, &Limits::default())
            .map_err(|e| TestCaseError::fail(format!("{e} in {xml}")))?;
        prop_assert_eq!(&back, &el, "xml: {}", xml);

        // The same inside a stream, as a top-level element.
        let mut codec = XmlCodec::new();
        let mut wire = BytesMut::new();
        codec.encode(StreamEvent::from(lithos_core::StreamHeader::client()), &mut wire).unwrap();
        codec.encode(&el, &mut wire).unwrap();
        let mut d = XmlDecoder::new();
        prop_assert!(matches!(d.decode(&mut wire), Ok(Some(StreamEvent::Header(_)))));
        prop_assert_eq!(d.decode(&mut wire), Ok(Some(StreamEvent::Element(el.clone()))));
    });
}

// ---------------------------------------------------------------------------------------------
// Random documents, written as text with the syntactic variety a peer may use.

#[derive(Debug, Clone)]
enum Piece {
    Plain(String),
    Entity(&'static str),
    CharRef(u32, bool),
    CData(String),
}

#[derive(Debug, Clone)]
struct GenEl {
    prefix: Option<u8>,
    local: String,
    default_ns: Option<u8>,
    attrs: Vec<(Option<u8>, String, Vec<Piece>, bool)>,
    children: Vec<GenNode>,
    self_close: bool,
    tag_ws: &'static str,
}

#[derive(Debug, Clone)]
enum GenNode {
    El(GenEl),
    Text(Vec<Piece>),
}

fn piece(in_attr: bool) -> impl Strategy<Value = Piece> {
    let plain = if in_attr {
        "[a-z >\u{e9}\u{1F600}]{1,8}"
    } else {
        "[a-z >\"'\u{e9}\u{1F600}\n\t]{1,8}"
    };
    let mut options = vec![
        plain.prop_map(Piece::Plain).boxed(),
        prop::sample::select(vec!["lt", "gt", "amp", "quot", "apos"])
            .prop_map(Piece::Entity)
            .boxed(),
        (
            prop::sample::select(vec![0x41u32, 0x9, 0xA, 0xE9, 0x1F600, 0x3C, 0x26]),
            any::<bool>(),
        )
            .prop_map(|(c, h)| Piece::CharRef(c, h))
            .boxed(),
    ];
    if !in_attr {
        options.push("[a-z<>&\"' ]{0,8}".prop_map(Piece::CData).boxed());
    }
    prop::strategy::Union::new(options)
}

fn gen_el() -> impl Strategy<Value = GenEl> {
    let leaf = (
        prop::option::of(0u8..3),
        "[a-wyz][a-z0-9]{0,5}",
        prop::option::of(0u8..4),
        prop::collection::vec(
            (
                prop::option::of(0u8..3),
                "[a-wyz][a-z0-9]{0,3}",
                prop::collection::vec(piece(true), 0..3),
                any::<bool>(),
            ),
            0..4,
        ),
        any::<bool>(),
        prop::sample::select(vec!["", " ", "\n\t "]),
    )
        .prop_map(
            |(prefix, local, default_ns, mut attrs, self_close, tag_ws)| {
                let mut seen = std::collections::HashSet::new();
                attrs.retain(|(p, n, _, _)| seen.insert((*p, n.clone())));
                GenEl {
                    prefix,
                    local,
                    default_ns,
                    attrs,
                    children: vec![],
                    self_close,
                    tag_ws,
                }
            },
        );
    leaf.prop_recursive(4, 40, 5, |inner| {
        (
            inner.clone(),
            prop::collection::vec(
                prop_oneof![
                    inner.prop_map(GenNode::El),
                    prop::collection::vec(piece(false), 1..4).prop_map(GenNode::Text),
                ],
                0..5,
            ),
        )
            .prop_map(|(mut e, kids)| {
                e.children = kids;
                e.self_close = e.self_close && e.children.is_empty();
                e
            })
    })
}

fn render_pieces(pieces: &[Piece], quote: char, out: &mut String) {
    for p in pieces {
        match p {
            Piece::Plain(s) => {
                for c in s.chars() {
                    if c == quote {
                        out.push_str(if c == '"' { "&quot;" } else { "&apos;" });
                    } else {
                        out.push(c);
                    }
                }
            }
            Piece::Entity(e) => {
                out.push('&');
                out.push_str(e);
                out.push(';');
            }
            Piece::CharRef(c, true) => out.push_str(&format!("&#x{c:X};")),
            Piece::CharRef(c, false) => out.push_str(&format!("&#{c};")),
            Piece::CData(s) => {
                out.push_str("<![CDATA[");
                out.push_str(s);
                out.push_str("]]>");
            }
        }
    }
}

/// Writes the element, declaring each prefix where it is first needed. Prefix `pN` is always
/// bound to `urn:pN`, so attributes deduplicated by (prefix, name) are distinct after
/// namespace resolution too.
fn render(e: &GenEl, in_scope: &mut Vec<u8>, out: &mut String) {
    let mark = in_scope.len();
    let qname = |p: Option<u8>, l: &str| match p {
        Some(p) => format!("p{p}:{l}"),
        None => l.to_string(),
    };
    out.push('<');
    out.push_str(&qname(e.prefix, &e.local));
    let mut needed: Vec<u8> = e.prefix.into_iter().collect();
    needed.extend(e.attrs.iter().filter_map(|a| a.0));
    for p in needed {
        if !in_scope.contains(&p) {
            in_scope.push(p);
            out.push_str(&format!(" xmlns:p{p}='urn:p{p}'"));
        }
    }
    if let Some(d) = e.default_ns {
        out.push_str(&format!(
            "{}xmlns=\"urn:d{d}\"",
            if e.tag_ws.is_empty() { " " } else { e.tag_ws }
        ));
    }
    for (p, n, v, dq) in &e.attrs {
        out.push(' ');
        out.push_str(&qname(*p, n));
        out.push_str(e.tag_ws);
        out.push('=');
        let q = if *dq { '"' } else { '\'' };
        out.push(q);
        render_pieces(v, q, out);
        out.push(q);
    }
    out.push_str(e.tag_ws);
    if e.self_close {
        out.push_str("/>");
    } else {
        out.push('>');
        for c in &e.children {
            match c {
                GenNode::El(c) => render(c, in_scope, out),
                GenNode::Text(t) => {
                    let mut s = String::new();
                    render_pieces(t, '\0', &mut s);
                    // Plain pieces hold no ']' , so "]]>" only ends CDATA sections.
                    out.push_str(&s);
                }
            }
        }
        out.push_str("</");
        out.push_str(&qname(e.prefix, &e.local));
        out.push_str(e.tag_ws);
        out.push('>');
    }
    in_scope.truncate(mark);
}

fn document() -> impl Strategy<Value = String> {
    (gen_el(), any::<bool>()).prop_map(|(e, decl)| {
        let mut s = String::new();
        if decl {
            s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        }
        render(&e, &mut Vec::new(), &mut s);
        s
    })
}

/// Builds our tree type from quick-xml's namespace-resolving events.
fn quick_xml_tree(doc: &str) -> Result<Element, String> {
    use quick_xml::XmlVersion::Implicit1_0 as V;
    let mut reader = NsReader::from_str(doc);
    let mut stack: Vec<Element> = Vec::new();
    let ns_of = |r: ResolveResult<'_>| -> Result<String, String> {
        match r {
            ResolveResult::Bound(n) => Ok(n.0.to_string()),
            ResolveResult::Unbound => Ok(String::new()),
            ResolveResult::Unknown(p) => Err(format!("unknown prefix {p}")),
        }
    };
    loop {
        let (res, ev) = reader.read_resolved_event().map_err(|e| e.to_string())?;
        let is_empty = matches!(ev, Event::Empty(_));
        match ev {
            Event::Start(s) | Event::Empty(s) => {
                let ns = ns_of(res)?;
                let mut el = Element::bare(s.local_name().as_ref().to_string(), ns);
                for a in s.attributes() {
                    let a = a.map_err(|e| e.to_string())?;
                    if a.key.as_namespace_binding().is_some() {
                        continue;
                    }
                    let (r, local) = reader.resolver().resolve_attribute(a.key);
                    let ans = ns_of(r)?;
                    let v = a.normalized_value(V).map_err(|e| e.to_string())?;
                    let local = local.as_ref().to_string();
                    el.set_attr_ns(ans, local, v.into_owned());
                }
                if is_empty {
                    match stack.last_mut() {
                        Some(p) => {
                            p.append_child(el);
                        }
                        None => return Ok(el),
                    }
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or("unbalanced")?;
                match stack.last_mut() {
                    Some(p) => {
                        p.append_child(el);
                    }
                    None => return Ok(el),
                }
            }
            Event::Text(t) => {
                if let Some(p) = stack.last_mut() {
                    p.append_text(t.xml_content(V).into_owned());
                }
            }
            Event::CData(c) => {
                if let Some(p) = stack.last_mut() {
                    p.append_text(c.xml_content(V).into_owned());
                }
            }
            Event::GeneralRef(r) => {
                let s = if r.is_char_ref() {
                    r.resolve_char_ref()
                        .map_err(|e| e.to_string())?
                        .ok_or("bad char ref")?
                        .to_string()
                } else {
                    quick_xml::escape::resolve_predefined_entity(&r)
                        .ok_or("unknown entity")?
                        .to_string()
                };
                if let Some(p) = stack.last_mut() {
                    p.append_text(s);
                }
            }
            Event::Decl(_) => {}
            Event::Eof => return Err("eof".into()),
            other => return Err(format!("unexpected {other:?}")),
        }
    }
}

#[test]
fn agrees_with_quick_xml() {
    let config = ProptestConfig::with_cases(CASES);
    proptest!(config, |(doc in document())| {
        let ours = parse_document(&doc, &Limits::default())
            .map_err(|e| TestCaseError::fail(format!("ours failed: {e} on {doc}")))?;
        let theirs = quick_xml_tree(&doc)
            .map_err(|e| TestCaseError::fail(format!("quick-xml failed: {e} on {doc}")))?;
        prop_assert_eq!(ours, theirs, "document: {}", doc);
    });
}

// ---------------------------------------------------------------------------------------------
// Chunking.

fn decode_all(chunks: &[&[u8]]) -> Vec<StreamEvent> {
    let mut d = XmlDecoder::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for c in chunks {
        buf.extend_from_slice(c);
        loop {
            match d.decode(&mut buf) {
                Ok(Some(ev)) => out.push(ev),
                Ok(None) => break,
                Err(e) => panic!("{e}"),
            }
        }
    }
    // Keep-alives depend on how white space was split; compare the rest.
    out.retain(|e| *e != StreamEvent::KeepAlive);
    out
}

#[test]
fn random_chunking_gives_the_same_events() {
    let config = ProptestConfig::with_cases(CASES);
    let stream = (
        prop::collection::vec(document(), 1..4),
        prop::collection::vec(1usize..40, 1..200),
    );
    proptest!(config, |((docs, sizes) in stream)| {
        let mut s = String::from(
            "<?xml version='1.0'?>\n<stream:stream xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>",
        );
        for d in &docs {
            // Drop each document's XML declaration: only the stream may have one.
            s.push_str(d.trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"));
            s.push_str("\n ");
        }
        s.push_str("</stream:stream>");
        let bytes = s.as_bytes();
        let whole = decode_all(&[bytes]);
        prop_assert_eq!(whole.len(), docs.len() + 2);
        let mut chunks = Vec::new();
        let mut at = 0;
        for n in sizes.iter().cycle() {
            if at >= bytes.len() {
                break;
            }
            let end = (at + n).min(bytes.len());
            chunks.push(&bytes[at..end]);
            at = end;
        }
        prop_assert_eq!(decode_all(&chunks), whole);
    });
}

#[test]
fn stream_context_is_inherited_and_not_redeclared() {
    let el = Element::parse("<message xmlns='jabber:client'><body>x</body></message>").unwrap();
    let mut out = Vec::new();
    el.write_to(&mut out, &NsContext::stream(ns::JABBER_CLIENT));
    assert_eq!(out, b"<message><body>x</body></message>");
}
