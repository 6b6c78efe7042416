//! What namespace declarations cost the XML parser: a 250 KB stanza whose elements use a
//! prefix declared at the top of 3,600 bindings in scope (60 levels of 60 declarations), against
//! a plain stanza of the same size, timed interleaved (issue 14: a linear search of the scope
//! made the first cost about 15 times the second).
//!
//! `cargo run --release -p lithos-benches --bin ns-ratio [ROUNDS]`

use std::time::Instant;

use bytes::BytesMut;
use lithos_benches::{lithos_parse, stream_of};

const SIZE: usize = 250 * 1024;
const DEPTH: usize = 60;
const PER_LEVEL: usize = 60;

/// The stanza: `DEPTH` nested elements, each declaring `PER_LEVEL` prefixes (`declare`) or
/// none, then leaves up to `SIZE` bytes, using the first prefix declared (found last by a
/// search from the innermost binding) or the default namespace.
fn stanza(declare: bool) -> String {
    let mut s = String::from("<message xmlns='jabber:client' to='a@b'>");
    for d in 0..DEPTH {
        s.push_str("<n");
        for k in 0..PER_LEVEL {
            if declare {
                s.push_str(&format!(" xmlns:p{d}x{k}='urn:ns:{d}:{k}'"));
            } else {
                s.push_str(&format!(" a{k}='urn:ns:{d}:{k}'"));
            }
        }
        s.push('>');
    }
    let leaf = if declare {
        "<p0x0:leaf p0x0:v='1'/>"
    } else {
        "<leaf xmlns='urn:ns:0:0' v='1'/>"
    };
    let closing = DEPTH * 4 + 10;
    while s.len() + leaf.len() + closing < SIZE {
        s.push_str(leaf);
    }
    for _ in 0..DEPTH {
        s.push_str("</n>");
    }
    s.push_str("</message>");
    s
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(30);
    let (heavy, _) = stream_of(&stanza(true), 1);
    let (plain, _) = stream_of(&stanza(false), 1);
    let per_byte = |input: &str| {
        let t = Instant::now();
        assert_eq!(lithos_parse(BytesMut::from(input.as_bytes())), 1);
        t.elapsed().as_secs_f64() / input.len() as f64
    };
    for _ in 0..3 {
        per_byte(&heavy);
        per_byte(&plain);
    }
    let mut ratios = Vec::with_capacity(rounds);
    let mut heavy_mb = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let h = per_byte(&heavy);
        let p = per_byte(&plain);
        ratios.push(h / p);
        heavy_mb.push(1e-6 / h);
    }
    println!(
        "declarations stanza {} bytes, plain {} bytes: {:.2}x the CPU per byte ({:.0} MB/s), median of {rounds}",
        heavy.len(),
        plain.len(),
        median(&mut ratios),
        median(&mut heavy_mb)
    );
}
