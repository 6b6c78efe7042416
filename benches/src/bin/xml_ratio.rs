//! Interleaved throughput ratios of lithos-core's XML parser against quick-xml and minidom.
//!
//! Shared machines are noisy, and criterion measures one contender after another, so a burst
//! of load can favour either side. Here each round times every contender once, back to back
//! on the same input, and the ratio is taken within the round; the median over rounds is
//! robust to bursts.
//!
//! `cargo run --release -p lithos-benches --bin xml-ratio [ROUNDS]`

use std::time::Instant;

use bytes::BytesMut;

use lithos_benches::{
    corpus, lithos_parse, minidom_parse, quick_xml_events, quick_xml_events_attrs, stream_of,
};

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
        .unwrap_or(60);
    println!(
        "{:<15} {:>9} {:>12} {:>12} {:>16} {:>12} {:>10} {:>10} {:>10}",
        "stanza",
        "bytes",
        "lithos MB/s",
        "stanzas/s",
        "vs qx-events",
        "vs qx+attrs",
        "vs minidom",
        "qx MB/s",
        "md MB/s"
    );
    for (name, stanza) in corpus() {
        let (stream, n) = stream_of(&stanza, 256 * 1024);
        let bytes = stream.len() as f64;
        let (mut ours, mut qx, mut qxa, mut md) = (vec![], vec![], vec![], vec![]);
        let (mut r_qx, mut r_qxa, mut r_md) = (vec![], vec![], vec![]);
        for _ in 0..3 {
            lithos_parse(BytesMut::from(stream.as_bytes()));
            quick_xml_events(&stream);
        }
        for _ in 0..rounds {
            let buf = BytesMut::from(stream.as_bytes());
            let a = time(|| {
                lithos_parse(buf);
            });
            let b = time(|| {
                quick_xml_events(&stream);
            });
            let c = time(|| {
                quick_xml_events_attrs(&stream);
            });
            let d = time(|| {
                minidom_parse(&stream);
            });
            r_qx.push(b / a);
            r_qxa.push(c / a);
            r_md.push(d / a);
            ours.push(a);
            qx.push(b);
            qxa.push(c);
            md.push(d);
        }
        let mb = |t: f64| bytes / t / 1e6;
        let t = median(&mut ours);
        println!(
            "{:<15} {:>9} {:>12.1} {:>12.0} {:>15.2}x {:>11.2}x {:>9.2}x {:>10.1} {:>10.1}",
            name,
            stanza.len(),
            mb(t),
            n as f64 / t,
            median(&mut r_qx),
            median(&mut r_qxa),
            median(&mut r_md),
            mb(median(&mut qx)),
            mb(median(&mut md)),
        );
        let _ = median(&mut qxa);
    }
    println!("ratios: lithos throughput / peer throughput, median of {rounds} interleaved rounds");
}
