//! Parse and serialize throughput of lithos-core's XML codec, next to quick-xml's NsReader
//! (events only, no tree) and minidom (a tree, like ours), over the same bytes in the same run.
//!
//! Each group parses one stream: the header, one kind of stanza repeated to about 256 KiB, the
//! close. Throughput is reported in bytes; stanzas/s is bytes/s divided by the stanza size.

use bytes::BytesMut;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lithos_benches::{
    corpus, lithos_parse, minidom_parse, quick_xml_events, quick_xml_events_attrs, stream_of,
};
use lithos_core::element::NsContext;
use lithos_core::{Element, ns};
use std::hint::black_box;

const STREAM_BYTES: usize = 256 * 1024;

fn parse(c: &mut Criterion) {
    for (name, stanza) in corpus() {
        let (stream, stanzas) = stream_of(&stanza, STREAM_BYTES);
        assert_eq!(lithos_parse(BytesMut::from(stream.as_bytes())), stanzas);
        assert_eq!(minidom_parse(&stream), stanzas);
        let mut g = c.benchmark_group(format!("parse/{name}"));
        g.throughput(Throughput::Bytes(stream.len() as u64));
        g.bench_with_input(BenchmarkId::new("lithos-tree", stanzas), &stream, |b, s| {
            b.iter_batched(
                || BytesMut::from(s.as_bytes()),
                lithos_parse,
                BatchSize::LargeInput,
            )
        });
        g.bench_with_input(
            BenchmarkId::new("quick-xml-events", stanzas),
            &stream,
            |b, s| b.iter(|| quick_xml_events(s)),
        );
        g.bench_with_input(
            BenchmarkId::new("quick-xml-events-attrs", stanzas),
            &stream,
            |b, s| b.iter(|| quick_xml_events_attrs(s)),
        );
        g.bench_with_input(
            BenchmarkId::new("minidom-tree", stanzas),
            &stream,
            |b, s| b.iter(|| minidom_parse(s)),
        );
        g.finish();
    }
}

fn serialize(c: &mut Criterion) {
    for (name, stanza) in corpus() {
        let ours = Element::parse(&stanza.replacen('>', " xmlns='jabber:client'>", 1))
            .expect("valid stanza");
        let theirs: minidom::Element = stanza
            .replacen('>', " xmlns='jabber:client'>", 1)
            .parse()
            .expect("valid stanza");
        let mut probe = Vec::new();
        ours.write_to(&mut probe, &NsContext::stream(ns::JABBER_CLIENT));
        let mut g = c.benchmark_group(format!("serialize/{name}"));
        g.throughput(Throughput::Bytes(probe.len() as u64 * 100));
        g.bench_function("lithos", |b| {
            let mut out = Vec::with_capacity(probe.len() * 100);
            b.iter(|| {
                out.clear();
                for _ in 0..100 {
                    ours.write_to(&mut out, &NsContext::stream(ns::JABBER_CLIENT));
                }
                black_box(out.len())
            })
        });
        g.bench_function("minidom", |b| {
            let mut out = Vec::with_capacity(probe.len() * 120);
            b.iter(|| {
                out.clear();
                for _ in 0..100 {
                    theirs.write_to(&mut out).expect("writes");
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
    targets = parse, serialize
}
criterion_main!(benches);
