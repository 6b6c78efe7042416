//! The message archive's cost: writing archived messages (in the writer's batches) and
//! paging an account's archive of many messages, the way `lithos-mam` does.
//!
//! ```sh
//! cargo run --release -p lithos-benches --bin mam-query [MESSAGES] [QUERIES]
//! # default 100,000 messages for one account (with 20 peers), 1,000 queries of each kind
//! ```
//!
//! The database is a fresh file in a temporary directory, with the server's settings (WAL,
//! `synchronous=FULL`); another account's 10,000 messages sit beside the measured one's.
//! Each query asks for a page of 50: the first page, the last page, the page after a random
//! message, and the page after a random message with one peer. Printed: microseconds per
//! archived message written, and each kind's p50, p99 and maximum in milliseconds.

use std::time::Instant;

use lithos_mam::store::{ArchiveStore, Entry, Filter, From};
use lithos_server::storage::{Database, SqliteStore};

fn entry(user: &str, i: usize, peers: usize) -> Entry {
    let peer = format!("peer{}@localhost", i % peers);
    Entry {
        username: user.to_string(),
        stanza_id: format!("{user}-{i:012}"),
        peer: peer.clone(),
        peer_full: format!("{peer}/phone"),
        ts: 1_765_000_000_000 + i as i64 * 1000,
        xml: format!(
            "<message xmlns='jabber:client' from='{peer}/phone' to='{user}@localhost/app' type='chat' id='m{i}'><body>message number {i}, about as long as a chat line</body><stanza-id xmlns='urn:xmpp:sid:0' by='{user}@localhost' id='{user}-{i:012}'/></message>"
        ),
    }
}

/// Makes one query of a kind: its filter and where its page starts.
type Query = Box<dyn FnMut() -> (Filter, From)>;

fn percentiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |p: f64| v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1];
    (at(0.5), at(0.99), *v.last().unwrap_or(&0.0))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let messages: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let queries: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = SqliteStore::open(&dir.path().join("lithos.sqlite")).expect("database");
        let store = ArchiveStore::new(Database::from(db));
        let peers = 20;
        let start = Instant::now();
        let mut i = 0;
        while i < messages {
            let n = 512.min(messages - i);
            let batch = (i..i + n).map(|k| entry("alice", k, peers)).collect();
            store.insert(batch).await.expect("insert");
            i += n;
        }
        let per_message = start.elapsed().as_secs_f64() * 1e6 / messages as f64;
        for k in (0..10_000).step_by(512) {
            let batch = (k..(k + 512).min(10_000))
                .map(|j| entry("bob", j, peers))
                .collect();
            store.insert(batch).await.expect("insert");
        }
        println!(
            "archived {messages} messages: {per_message:.1} µs per message written (batches of 512)"
        );
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let kinds: [(&str, Query); 4] = [
            ("first page", Box::new(|| (Filter::default(), From::Start))),
            (
                "last page",
                Box::new(|| (Filter::default(), From::Before(String::new()))),
            ),
            (
                "after a random message",
                Box::new(move || {
                    (
                        Filter::default(),
                        From::After(format!("alice-{:012}", next(messages))),
                    )
                }),
            ),
            (
                "with one peer, after a random message",
                Box::new(move || {
                    let k = next(messages);
                    let f = Filter {
                        with_bare: Some(format!("peer{}@localhost", k % peers)),
                        ..Filter::default()
                    };
                    (f, From::After(format!("alice-{k:012}")))
                }),
            ),
        ];
        println!("| query (page of 50, {messages} messages) | p50 ms | p99 ms | max ms |");
        println!("|---|---:|---:|---:|");
        for (name, mut make) in kinds {
            let mut times = Vec::with_capacity(queries);
            for _ in 0..queries {
                let (filter, from) = make();
                let t = Instant::now();
                let page = store
                    .page("alice", filter, from, 50)
                    .await
                    .expect("query")
                    .expect("page");
                times.push(t.elapsed().as_secs_f64() * 1000.0);
                assert!(page.items.len() <= 50);
            }
            let (p50, p99, max) = percentiles(times);
            println!("| {name} | {p50:.3} | {p99:.3} | {max:.3} |");
        }
    });
}
