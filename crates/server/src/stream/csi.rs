//! XEP-0352 client state indication on a client connection: while the client says it is
//! inactive, presence updates wait (the latest per sender) and chat-state-only messages are
//! dropped; anything else goes out at once, after what waited, and `<active/>` writes what
//! waited before anything newer. Which stanza is which: [`lithos_csi::urgency`].

use std::collections::HashMap;

use lithos_core::Element;
use lithos_csi::Urgency;

use super::{Bound, Conn, ConnError};
use crate::outbox::Item;

/// What an inactive client's session holds back; it moves with the session on resumption.
#[derive(Debug, Default)]
pub(crate) struct CsiState {
    inactive: bool,
    /// The latest presence held per sender, in the order the senders were first held.
    held: Vec<Element>,
    /// Sender (`from`) → index in `held`.
    index: HashMap<String, usize>,
}

impl CsiState {
    /// What of `batch` to write now: all of it while active; while inactive, the urgent
    /// stanzas, each after everything held so far. Presence waits, at most `max_held`
    /// senders' (past that, what waited goes out too).
    pub(crate) fn sort(&mut self, batch: Vec<Item>, max_held: usize) -> Vec<Item> {
        if !self.inactive {
            return batch;
        }
        let mut now = Vec::new();
        for item in batch {
            // Stanzas a store still holds keep their way: their store waits for them.
            let urgency = if item.is_live() {
                lithos_csi::urgency(&item.el)
            } else {
                Urgency::Now
            };
            match urgency {
                Urgency::Latest => {
                    let from = item.el.attr("from").unwrap_or_default().to_string();
                    let el = item.written();
                    match self.index.get(&from) {
                        Some(&i) => self.held[i] = el,
                        None => {
                            self.index.insert(from, self.held.len());
                            self.held.push(el);
                        }
                    }
                    if self.held.len() > max_held {
                        now.extend(self.take());
                    }
                }
                Urgency::Droppable => drop(item.written()),
                Urgency::Now => {
                    now.extend(self.take());
                    now.push(item);
                }
            }
        }
        now
    }

    /// Everything held, oldest sender first, to be written.
    pub(crate) fn take(&mut self) -> Vec<Item> {
        self.index.clear();
        std::mem::take(&mut self.held)
            .into_iter()
            .map(Item::live)
            .collect()
    }

    /// Whether the client said it is inactive.
    pub(crate) fn inactive(&self) -> bool {
        self.inactive
    }

    /// The client became active (or the stream is new, after a resumption): what waited,
    /// to be written before anything else.
    pub(crate) fn activate(&mut self) -> Vec<Item> {
        self.inactive = false;
        self.take()
    }
}

impl Conn {
    /// An `<active/>` or `<inactive/>` from the client (nothing is answered).
    pub(crate) async fn on_csi(&mut self, el: Element, b: &mut Bound) -> Result<(), ConnError> {
        if !self.server.config().csi.enabled {
            tracing::debug!(element = %el, "client state indication is off; ignored");
            return Ok(());
        }
        match el.name() {
            "inactive" => {
                b.csi.get_or_insert_with(Default::default).inactive = true;
                Ok(())
            }
            "active" => {
                let held = b.csi.as_mut().map(|c| c.activate()).unwrap_or_default();
                // In order (XEP-0352 §4.1): what waited is on the wire before anything the
                // client sends next is handled.
                Box::pin(self.write_queued(held, b)).await
            }
            other => Err(ConnError::Stream(Box::new(
                lithos_core::StreamError::new(
                    lithos_core::StreamErrorCondition::UnsupportedStanzaType,
                )
                .with_text(format!(
                    "<{other}/> in urn:xmpp:csi:0 is not sent by clients"
                )),
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(xml: &str) -> Item {
        Item::live(Element::parse(xml).unwrap())
    }

    fn ids(items: &[Item]) -> Vec<&str> {
        items
            .iter()
            .map(|i| i.el.attr("id").unwrap_or("-"))
            .collect()
    }

    #[test]
    fn held_coalesced_and_flushed_in_order() {
        let mut c = CsiState::default();
        // Active: everything passes.
        let b = c.sort(
            vec![item("<presence xmlns='jabber:client' from='a' id='p0'/>")],
            8,
        );
        assert_eq!(ids(&b), ["p0"]);
        c.inactive = true;
        let b = c.sort(
            vec![
                item("<presence xmlns='jabber:client' from='a' id='p1'/>"),
                item("<presence xmlns='jabber:client' from='b' id='p2'/>"),
                item("<presence xmlns='jabber:client' from='a' id='p3'/>"),
                item("<message xmlns='jabber:client' id='typing'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"),
            ],
            8,
        );
        assert!(b.is_empty());
        // Something urgent: what waited first (a's latest, then b's), then it.
        let b = c.sort(
            vec![item(
                "<message xmlns='jabber:client' id='m'><body>x</body></message>",
            )],
            8,
        );
        assert_eq!(ids(&b), ["p3", "p2", "m"]);
        // Bounded: past max_held senders, what waited goes out.
        let b = c.sort(
            (0..3)
                .map(|i| {
                    item(&format!(
                        "<presence xmlns='jabber:client' from='s{i}' id='q{i}'/>"
                    ))
                })
                .collect(),
            2,
        );
        assert_eq!(ids(&b), ["q0", "q1", "q2"]);
        c.sort(
            vec![item("<presence xmlns='jabber:client' from='z' id='z'/>")],
            8,
        );
        assert_eq!(ids(&c.activate()), ["z"]);
        assert!(!c.inactive());
    }
}
