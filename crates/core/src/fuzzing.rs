//! The properties the fuzz targets check, shared with the test that replays every input the
//! fuzzers ever crashed on (`fuzz/regressions/`). Each function panics when its property
//! fails. Not part of the stable API.

use bytes::BytesMut;

use crate::binary::{BxmppCodec, BxmppError, Vocabulary};
use crate::element::NsContext;
use crate::jid::Jid;
use crate::stream::StreamEvent;
use crate::xml::{Limits, XmlDecoder, XmlError, parse_document};

fn run(chunks: &[&[u8]], limits: &Limits) -> (Vec<StreamEvent>, Option<XmlError>) {
    let mut d = XmlDecoder::with_limits(limits.clone());
    let mut buf = BytesMut::new();
    let mut events = Vec::new();
    for c in chunks {
        buf.extend_from_slice(c);
        loop {
            match d.decode(&mut buf) {
                Ok(Some(StreamEvent::KeepAlive)) => {}
                Ok(Some(ev)) => events.push(ev),
                Ok(None) => break,
                Err(e) => return (events, Some(e)),
            }
        }
    }
    (events, None)
}

/// The stream decoder on arbitrary bytes (the first byte seeds the chunking): no panic, the
/// same events and the same error whole and in chunks, and every element read survives a
/// write/read round trip.
pub fn xml_stream(data: &[u8]) {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_stanza_size: 4096,
        max_depth: 16,
        ..Limits::default()
    };
    let whole = run(&[input], &limits);
    let mut chunks = Vec::new();
    let mut at = 0;
    let mut n = (seed as usize % 7) + 1;
    while at < input.len() {
        let end = (at + n).min(input.len());
        chunks.push(&input[at..end]);
        at = end;
        n = (n * 5 + seed as usize) % 13 + 1;
    }
    let split = run(&chunks, &limits);
    assert_eq!(whole, split, "whole and chunked decoding differ");
    let reparse_limits = Limits {
        max_stanza_size: usize::MAX,
        ..limits
    };
    for ev in &whole.0 {
        if let StreamEvent::Element(el) = ev {
            let mut out = Vec::new();
            el.write_to(&mut out, &NsContext::empty());
            let text = String::from_utf8(out).expect("the serializer writes UTF-8");
            let back = parse_document(&text, &reparse_limits)
                .unwrap_or_else(|e| panic!("re-parse failed: {e} on {text}"));
            assert_eq!(&back, el);
        }
    }
}

/// JID parsing on arbitrary text: no panic, preparation idempotent, parts consistent.
pub fn jid(s: &str) {
    if let Ok(j) = Jid::new(s) {
        let again = Jid::new(j.as_str()).unwrap_or_else(|e| panic!("{j} does not re-parse: {e}"));
        assert_eq!(again, j);
        let bare = j.to_bare();
        assert!(bare.is_bare());
        assert_eq!(bare.domain(), j.domain());
        assert_eq!(bare.local(), j.local());
        if let Some(r) = j.resource() {
            assert_eq!(bare.with_resource(r).expect("resource re-applies"), j);
        }
    }
}

/// Standalone parsing on arbitrary text: no panic; an accepted element is written and read
/// back equal, and writing is a fixed point after one round.
pub fn element_roundtrip(s: &str) {
    let limits = Limits {
        max_stanza_size: 1 << 20,
        ..Limits::default()
    };
    if let Ok(el) = parse_document(s, &limits) {
        let xml = el.to_xml();
        let back = parse_document(&xml, &limits).unwrap_or_else(|e| panic!("{e} on {xml}"));
        assert_eq!(back, el);
        assert_eq!(back.to_xml(), xml);
    }
}

fn run_bxmpp(
    chunks: &[&[u8]],
    vocab: &std::sync::Arc<Vocabulary>,
) -> (Vec<StreamEvent>, Option<BxmppError>) {
    let mut c = BxmppCodec::with_vocabulary(vocab.clone()).max_frame(4096);
    let mut buf = BytesMut::new();
    let mut events = Vec::new();
    for ch in chunks {
        buf.extend_from_slice(ch);
        loop {
            match c.decode_event(&mut buf) {
                Ok(Some(StreamEvent::KeepAlive)) => {}
                Ok(Some(ev)) => events.push(ev),
                Ok(None) => break,
                Err(e) => return (events, Some(e)),
            }
        }
    }
    (events, None)
}

/// The BXMPP decoder on arbitrary bytes (the first byte seeds the chunking): no panic, the
/// same events and error whole and in chunks, and every element read is written and read back
/// equal.
pub fn bxmpp_stream(data: &[u8]) {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    let vocab = Vocabulary::global();
    let whole = run_bxmpp(&[input], &vocab);
    let mut chunks = Vec::new();
    let mut at = 0;
    let mut n = (seed as usize % 5) + 1;
    while at < input.len() {
        let end = (at + n).min(input.len());
        chunks.push(&input[at..end]);
        at = end;
        n = (n * 3 + seed as usize) % 11 + 1;
    }
    let split = run_bxmpp(&chunks, &vocab);
    assert_eq!(whole, split, "whole and chunked decoding differ");
    for ev in &whole.0 {
        if let StreamEvent::Element(el) = ev {
            let bytes = crate::binary::encode_document(&vocab, el)
                .unwrap_or_else(|e| panic!("a decoded element does not encode: {e}: {el}"));
            let back = crate::binary::decode_document(&vocab, bytes)
                .unwrap_or_else(|e| panic!("re-decoding failed: {e}"));
            assert_eq!(&back, el);
        }
    }
}

/// The BXMPP → XML cross-check on arbitrary bytes: every element the BXMPP decoder accepts,
/// written as XML into a client stream, is accepted by the XML decoder and reads back equal.
/// So a client speaking BXMPP cannot hand an XML recipient anything an XML client could not
/// have sent (issue 14, defect 5: duplicate attributes and control characters did).
pub fn bxmpp_to_xml(data: &[u8]) {
    let vocab = Vocabulary::global();
    let (events, _) = run_bxmpp(&[data], &vocab);
    const HEADER: &[u8] = b"<stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";
    let ctx = NsContext::stream(crate::ns::JABBER_CLIENT);
    let limits = Limits {
        max_stanza_size: usize::MAX,
        ..Limits::default()
    };
    for ev in &events {
        let StreamEvent::Element(el) = ev else {
            continue;
        };
        let mut xml = HEADER.to_vec();
        el.write_to(&mut xml, &ctx);
        let text = String::from_utf8_lossy(&xml[HEADER.len()..]).into_owned();
        let (read, err) = run(&[&xml], &limits);
        if let Some(e) = err {
            panic!("the XML decoder refuses what the BXMPP decoder accepted: {e} on {text}");
        }
        match read.as_slice() {
            [StreamEvent::Header(_), StreamEvent::Element(back)] => {
                assert_eq!(back, el, "read back differently: {text}")
            }
            other => panic!("expected one element from {text}, got {other:?}"),
        }
    }
}

/// A LAN frame from a node (issue 16: what a gateway reads off the radio) on arbitrary bytes:
/// decoding never panics; a protocol it reads encodes again as a LAN frame and decodes back
/// equal; every attribute that reads as a
/// trace id reads back from its own value, and the first five bytes as a trace id keep their
/// LAN id and kind through `answer`.
pub fn lan_frame(data: &[u8]) {
    use crate::binary::lan::{LanFrame, TraceId, TraceKind};
    let vocab = Vocabulary::global();
    if let Ok(el) = LanFrame::from_bytes(data.to_vec()).decode(&vocab) {
        let frame = LanFrame::encode(&vocab, &el)
            .unwrap_or_else(|e| panic!("a decoded protocol does not encode: {e}: {el}"));
        let back = frame
            .decode(&vocab)
            .unwrap_or_else(|e| panic!("a frame it wrote does not decode: {e}: {el}"));
        assert_eq!(back, el);
        for a in el.attrs() {
            if let Ok(t) = TraceId::from_value(a.value()) {
                assert_eq!(TraceId::from_value(&t.to_value()), Ok(t));
            }
        }
    }
    if let Some(b) = data.get(..5) {
        let mut five = [0u8; 5];
        five.copy_from_slice(b);
        if let Ok(t) = TraceId::from_bytes(five) {
            assert_eq!(TraceId::from_bytes(t.0), Ok(t));
            for kind in [TraceKind::Response, TraceKind::Error] {
                let a = t.answer(kind);
                assert_eq!((a.lan_id(), a.kind()), (t.lan_id(), kind));
                assert!(a.matches(&t));
            }
        }
    }
}
