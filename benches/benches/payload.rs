//! Typed payloads: `#[derive(Payload)]` against the hand-written implementations it replaced
//! (release 0.1.0's report payloads, kept in `payload/handwritten.rs`), in the same run. The
//! derive must not cost parse speed: each group's two lines should stay within ±5 %.
//!
//! `cargo bench -p lithos-benches --bench payload`

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use lithos_core::{Element, Payload};

#[path = "payload/handwritten.rs"]
mod handwritten;

fn report() -> Element {
    Element::parse(
        r#"<report xmlns="urn:leps:tuxp:sensor" qos="2" report-id="r-000042" stamp="2026-12-06T23:59:59.250Z"><celsius-degree xmlns="urn:leps:things:simple-temperature-reporter" value="23.5"/></report>"#,
    )
    .unwrap()
}

fn latest(n: usize) -> Element {
    let items: String = (0..n)
        .map(|i| {
            format!(
                r#"<item id="{i}" node="{}" stamp="2026-12-06T23:59:{:02}.000Z"><celsius-degree xmlns="urn:leps:things:simple-temperature-reporter" value="2{}.5"/></item>"#,
                i % 4,
                i % 60,
                i % 10
            )
        })
        .collect();
    Element::parse(&format!(
        r#"<latest xmlns="urn:leps:tuxp:sensor">{items}</latest>"#
    ))
    .unwrap()
}

/// `handwritten` (the reference, measured first) and `derived` read, then write, the same
/// element.
fn pair<D: Payload + Clone, H: Payload + Clone>(c: &mut Criterion, name: &str, el: Element) {
    let mut g = c.benchmark_group(format!("parse/{name}"));
    g.bench_function("handwritten", |b| {
        b.iter_batched(
            || el.clone(),
            |e| black_box(H::from_element(e).unwrap()),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("derived", |b| {
        b.iter_batched(
            || el.clone(),
            |e| black_box(D::from_element(e).unwrap()),
            BatchSize::SmallInput,
        )
    });
    g.finish();
    let d = D::from_element(el.clone()).unwrap();
    let h = H::from_element(el).unwrap();
    let mut g = c.benchmark_group(format!("write/{name}"));
    g.bench_function("handwritten", |b| {
        b.iter_batched(
            || h.clone(),
            |v| black_box(v.into_element()),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("derived", |b| {
        b.iter_batched(
            || d.clone(),
            |v| black_box(v.into_element()),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn payloads(c: &mut Criterion) {
    pair::<lithos_tuxp_report::Report, handwritten::Report>(c, "report", report());
    pair::<lithos_tuxp_report::Latest, handwritten::Latest>(c, "latest-50", latest(50));
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(std::time::Duration::from_secs(3));
    targets = payloads
}
criterion_main!(benches);
