//! BXMPP next to XML on the same stanzas: bytes on the wire, and decode and encode throughput,
//! as ratios of interleaved timings (see `xml-ratio` for why interleaved).
//!
//! `cargo run --release -p lithos-benches --bin bxmpp-ratio [ROUNDS]` (with jemalloc, as in
//! `lithosd`; add `--features system-alloc` for the system allocator).

/// The allocator `lithosd` runs with, so the codecs are timed as the server runs them
/// (`--features system-alloc` times them with the system's instead).
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use lithos_benches::{
    LAN_EXECUTION_XML, binary_corpus, binary_stream_of, binary_vocabulary, bxmpp_parse,
    lithos_parse, parse_stanza, stream_of,
};
use lithos_core::binary::{BxmppCodec, encode_document, lan::LanFrame};
use lithos_core::element::NsContext;
use lithos_core::ns;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn time<F: FnOnce()>(f: F) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(40);
    let vocab = Arc::new(binary_vocabulary());

    println!("Bytes on the wire, one stanza:");
    println!(
        "{:<14} {:>6} {:>7} {:>7}",
        "stanza", "XML", "BXMPP", "XML/BX"
    );
    for (name, stanza) in binary_corpus() {
        let el = parse_stanza(&stanza);
        let mut xml = Vec::new();
        el.write_to(&mut xml, &NsContext::stream(ns::JABBER_CLIENT));
        let bin = encode_document(&vocab, &el).expect("encodable");
        println!(
            "{:<14} {:>6} {:>7} {:>7.1}",
            name,
            xml.len(),
            bin.len(),
            xml.len() as f64 / bin.len() as f64
        );
    }
    let lan = lithos_core::Element::parse(LAN_EXECUTION_XML).expect("valid");
    let frame = LanFrame::encode(&vocab, &lan).expect("encodable");
    let mut xml = Vec::new();
    lan.write_to(&mut xml, &NsContext::stream(ns::JABBER_CLIENT));
    println!(
        "{:<14} {:>6} {:>7} {:>7.1}   (LAN frame, as sent over LoRa)",
        "lan-execution",
        xml.len(),
        frame.as_bytes().len(),
        xml.len() as f64 / frame.as_bytes().len() as f64
    );

    println!("\nThroughput, stanzas per second (median of {rounds} interleaved rounds):");
    println!(
        "{:<14} {:>12} {:>12} {:>9} {:>12} {:>12} {:>9}",
        "stanza", "XML decode", "BX decode", "BX/XML", "XML encode", "BX encode", "BX/XML"
    );
    for (name, stanza) in binary_corpus() {
        let (xml_stream, n) = stream_of(&stanza, 256 * 1024);
        let (bin_stream, m) = binary_stream_of(&vocab, &stanza, 128 * 1024);
        let el = parse_stanza(&stanza);
        let (mut xd, mut bd, mut rd, mut xe, mut be, mut re) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        let ctx = NsContext::stream(ns::JABBER_CLIENT);
        let encode_n = 2000;
        for _ in 0..rounds {
            let xbuf = BytesMut::from(xml_stream.as_bytes());
            let a = time(|| assert_eq!(lithos_parse(xbuf), n)) / n as f64;
            let bbuf = BytesMut::from(&bin_stream[..]);
            let mut codec = BxmppCodec::with_vocabulary(vocab.clone());
            let b = time(|| assert_eq!(bxmpp_parse(&mut codec, bbuf), m)) / m as f64;
            let mut out = BytesMut::with_capacity(1 << 20);
            let c = time(|| {
                for _ in 0..encode_n {
                    el.write_to(&mut out, &ctx);
                }
            }) / encode_n as f64;
            let codec = BxmppCodec::with_vocabulary(vocab.clone());
            let mut out = BytesMut::with_capacity(1 << 20);
            let ev = lithos_core::StreamEvent::Element(el.clone());
            let d = time(|| {
                for _ in 0..encode_n {
                    codec.encode_event(&ev, &mut out).expect("encodable");
                }
            }) / encode_n as f64;
            xd.push(a);
            bd.push(b);
            rd.push(a / b);
            xe.push(c);
            be.push(d);
            re.push(c / d);
        }
        println!(
            "{:<14} {:>12.0} {:>12.0} {:>8.2}x {:>12.0} {:>12.0} {:>8.2}x",
            name,
            1.0 / median(&mut xd),
            1.0 / median(&mut bd),
            median(&mut rd),
            1.0 / median(&mut xe),
            1.0 / median(&mut be),
            median(&mut re)
        );
    }
}
