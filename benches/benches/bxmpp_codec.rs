//! BXMPP decode and encode throughput next to the XML codec, on the same stanzas, in the same
//! run. Sizes and interleaved ratios come from the `bxmpp-ratio` tool.

use std::sync::Arc;

use bytes::BytesMut;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lithos_benches::{
    binary_corpus, binary_stream_of, binary_vocabulary, bxmpp_parse, lithos_parse, parse_stanza,
    stream_of,
};
use lithos_core::binary::BxmppCodec;
use lithos_core::element::NsContext;
use lithos_core::{StreamEvent, ns};
use std::hint::black_box;

fn decode(c: &mut Criterion) {
    let vocab = Arc::new(binary_vocabulary());
    for (name, stanza) in binary_corpus() {
        let (xml, n) = stream_of(&stanza, 256 * 1024);
        let (bin, m) = binary_stream_of(&vocab, &stanza, 128 * 1024);
        let mut g = c.benchmark_group(format!("decode/{name}"));
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("xml", n), &xml, |b, s| {
            b.iter_batched(
                || BytesMut::from(s.as_bytes()),
                lithos_parse,
                BatchSize::LargeInput,
            )
        });
        g.throughput(Throughput::Elements(m as u64));
        g.bench_with_input(BenchmarkId::new("bxmpp", m), &bin, |b, s| {
            b.iter_batched(
                || {
                    (
                        BxmppCodec::with_vocabulary(vocab.clone()),
                        BytesMut::from(&s[..]),
                    )
                },
                |(mut codec, buf)| bxmpp_parse(&mut codec, buf),
                BatchSize::LargeInput,
            )
        });
        g.finish();
    }
}

fn encode(c: &mut Criterion) {
    let vocab = Arc::new(binary_vocabulary());
    for (name, stanza) in binary_corpus() {
        let el = parse_stanza(&stanza);
        let ev = StreamEvent::Element(el.clone());
        let codec = BxmppCodec::with_vocabulary(vocab.clone());
        let mut g = c.benchmark_group(format!("encode/{name}"));
        g.throughput(Throughput::Elements(100));
        g.bench_function("xml", |b| {
            let mut out = BytesMut::with_capacity(1 << 20);
            b.iter(|| {
                out.clear();
                for _ in 0..100 {
                    el.write_to(&mut out, &NsContext::stream(ns::JABBER_CLIENT));
                }
                black_box(out.len())
            })
        });
        g.bench_function("bxmpp", |b| {
            let mut out = BytesMut::with_capacity(1 << 20);
            b.iter(|| {
                out.clear();
                for _ in 0..100 {
                    codec.encode_event(&ev, &mut out).expect("encodable");
                }
                black_box(out.len())
            })
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = decode, encode
}
criterion_main!(benches);
