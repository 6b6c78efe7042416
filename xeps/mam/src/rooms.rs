//! The archives of multi-user chat rooms (XEP-0313 §6, for `lithos-muc`): a room's
//! groupchat messages with a body, as the room sent them, kept under the room's bare JID
//! beside the accounts' archives and queried at the room's address. They exist while the
//! `mam` module runs; the room decides what to archive and who may read it.

use std::sync::Arc;

use lithos_core::stanza::StanzaError;
use lithos_core::{Element, Jid};
use lithos_server::{IqResponse, ServerHandle};

use crate::archive::{Archiver, Job};
use crate::server::{Pages, Reader, answer_query};
use crate::store::{ArchiveStore, Entry};

/// Where the running `mam` module leaves its room archives for the MUC service.
#[derive(Default)]
struct Slot(std::sync::OnceLock<Arc<RoomArchive>>);

/// The rooms' archives.
pub struct RoomArchive {
    pub(crate) archiver: Arc<Archiver>,
    pub(crate) pages: Pages,
}

pub(crate) fn install(server: &ServerHandle, archive: RoomArchive) {
    let _ = server.shared::<Slot>().0.set(Arc::new(archive));
}

/// The rooms' archives, when the `mam` module runs.
pub fn room_archive(server: &ServerHandle) -> Option<Arc<RoomArchive>> {
    server.shared::<Slot>().0.get().cloned()
}

impl RoomArchive {
    /// A fresh archive id, for the `<stanza-id/>` the room adds before it sends the message.
    pub fn new_id() -> String {
        lithos_server::ids::random_hex::<16>()
    }

    /// Queues `message` (as the room sends it: from `room/nick`, with its `<stanza-id/>`)
    /// for `room`'s archive under `stanza_id`. A full queue leaves it out, as for accounts.
    pub fn archive(&self, room: &Jid, stanza_id: String, message: &Element) {
        let from = message.attr("from").unwrap_or_default().to_string();
        let mut copy = message.clone();
        copy.remove_attr("to");
        self.archiver.push(Job {
            entry: Entry {
                username: room.bare_str().to_string(),
                stanza_id,
                peer: room.bare_str().to_string(),
                peer_full: from,
                ts: lithos_core::datetime::now_ms(),
                xml: copy.to_xml(),
            },
            roster_only: false,
        });
    }

    /// Answers a query of `room`'s archive from `requester`, whom the room let read it: each
    /// result from the room to `requester`, then the `<fin/>` (XEP-0313 §4; `with` names an
    /// occupant, `room/nick`).
    pub async fn query(
        &self,
        server: &ServerHandle,
        room: &Jid,
        requester: &Jid,
        payload: Element,
    ) -> IqResponse {
        let owner = room.bare_str().to_string();
        answer_query(
            server,
            &self.archiver,
            self.pages,
            &owner,
            &room.to_bare(),
            &Reader::Jid(requester.clone()),
            payload,
        )
        .await
    }

    /// Forgets `room`'s archive (the room was destroyed, or a temporary room emptied), once
    /// what is queued for it is written.
    pub async fn forget(&self, server: &ServerHandle, room: &Jid) -> Result<(), StanzaError> {
        self.archiver.settled().await;
        ArchiveStore::of(server)
            .forget(room.bare_str())
            .await
            .map(|_| ())
            .map_err(lithos_server::module::internal_error)
    }
}
