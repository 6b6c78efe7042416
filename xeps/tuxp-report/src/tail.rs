//! The history's tail: the newest reports, stored in `report_history` but not yet in its
//! per-thing index (`report_index`), held in memory by thing so that queries see them.
//!
//! Why: an index on (thing, id) maintained on every insert costs most of a report's write.
//! The reports of one commit come from as many things as there are reports, so each lands
//! on its own index page, and every such page is written to the WAL again at every commit
//! (measured: 10.3 µs of CPU per report with the index, 3.4 without). Indexed in bulk
//! instead, sorted by thing, every page takes many entries at once ([`super::store`]).
//!
//! The tail is only touched while the database connection is held (inside
//! [`Database::run`](lithos_server::storage::Database::run)), so a query sees the
//! database and the tail at the same point: what a commit stored is in the tail when the
//! connection is released, and leaves it in the transaction that indexes it.

use std::collections::HashMap;

/// A stored report not yet indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    /// Its id in `report_history`.
    pub id: i64,
    /// The reporting node.
    pub node: Box<str>,
    /// When it was stored.
    pub stamp_ms: i64,
    /// The data, as stored.
    pub xml: Box<str>,
}

/// A thing's newest value of one data type, while it is in the tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Newest {
    /// The node, and the data's namespace and name: the key of `report_latest`.
    pub key: (Box<str>, Box<str>, Box<str>),
    /// Where the row is in the thing's tail.
    pub at: usize,
}

/// One thing's part of the tail.
#[derive(Debug, Default)]
pub(crate) struct ThingTail {
    /// By id, ascending.
    pub rows: Vec<Row>,
    /// The newest row per key.
    pub newest: Vec<Newest>,
}

/// The tail of every thing.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    /// Loaded from the database (after a start, the rows past `upto`).
    pub loaded: bool,
    /// The highest id in the index: every row above it is here.
    pub upto: i64,
    /// Rows held.
    pub len: usize,
    /// By thing name.
    pub things: HashMap<String, ThingTail>,
}

impl Tail {
    /// Adds a row just stored (ids only grow).
    pub fn push(&mut self, thing: &str, row: Row, ns: &str, name: &str) {
        let t = match self.things.get_mut(thing) {
            Some(t) => t,
            None => self.things.entry(thing.to_string()).or_default(),
        };
        let at = t.rows.len();
        match t
            .newest
            .iter_mut()
            .find(|n| *n.key.0 == *row.node && *n.key.1 == *ns && *n.key.2 == *name)
        {
            Some(n) => n.at = at,
            None => t.newest.push(Newest {
                key: (row.node.clone(), ns.into(), name.into()),
                at,
            }),
        }
        t.rows.push(row);
        self.len += 1;
    }

    /// A thing's tail, if it has one.
    pub fn of(&self, thing: &str) -> Option<&ThingTail> {
        self.things.get(thing)
    }

    /// Forgets a thing (its account was deleted).
    pub fn forget(&mut self, thing: &str) {
        if let Some(t) = self.things.remove(thing) {
            self.len -= t.rows.len();
        }
    }

    /// Everything was indexed, up to `upto`.
    pub fn indexed(&mut self, upto: i64) {
        self.things.clear();
        self.len = 0;
        self.upto = upto;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, node: &str) -> Row {
        Row {
            id,
            node: node.into(),
            stamp_ms: id * 10,
            xml: format!("<v n='{id}'/>").into(),
        }
    }

    #[test]
    fn the_newest_row_per_key_is_tracked() {
        let mut t = Tail::default();
        t.push("a", row(1, "0"), "urn:x", "t");
        t.push("a", row(2, "0"), "urn:x", "h");
        t.push("a", row(3, "0"), "urn:x", "t");
        t.push("a", row(4, "7"), "urn:x", "t");
        t.push("b", row(5, "0"), "urn:x", "t");
        assert_eq!(t.len, 5);
        let a = t.of("a").unwrap();
        let newest: Vec<(i64, &str)> = a
            .newest
            .iter()
            .map(|n| (a.rows[n.at].id, &*n.key.2))
            .collect();
        assert_eq!(newest, [(3, "t"), (2, "h"), (4, "t")]);
        t.forget("a");
        assert_eq!(t.len, 1);
        assert!(t.of("a").is_none());
        t.indexed(5);
        assert_eq!((t.len, t.upto), (0, 5));
        assert!(t.of("b").is_none());
    }
}
