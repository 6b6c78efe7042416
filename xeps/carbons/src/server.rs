//! The `carbons` module: enabling per session, sent copies from the sending session's
//! stanzas, received copies from the kernel's deliveries.

#![cfg(feature = "server")]

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use lithos_core::stanza::{DefinedCondition, StanzaError};
use lithos_core::{Element, Jid, Payload};
use lithos_server::{
    ClientStanza, ClientStanzaHook, IqClaim, IqRequest, IqResponse, Module, ModuleRegistration,
    ServerHandle, SessionInfo,
};

use crate::{Disable, Enable, NS, copy, eligible};

/// The session mark of a carbons-enabled resource.
const MARK: &str = "carbons";

#[derive(Default)]
struct CarbonsModule {
    /// The sessions with carbons on, by id (so their end can be counted).
    on: Mutex<HashSet<u64>>,
    /// `on.len()`, read on every message: while it is 0 nothing else is looked at.
    count: AtomicUsize,
}

impl CarbonsModule {
    fn set(&self, server: &ServerHandle, session: &SessionInfo, on: bool) {
        let mut ids = self.on.lock().unwrap_or_else(|e| e.into_inner());
        if on {
            ids.insert(session.id);
            server.sessions().mark(session, MARK);
        } else {
            ids.remove(&session.id);
            server.sessions().unmark(session, MARK);
        }
        self.count.store(ids.len(), Ordering::Relaxed);
    }

    /// Sends `message`'s copy to the carbons-enabled sessions of `account` but `except`.
    fn copies(
        &self,
        server: &ServerHandle,
        message: &Element,
        account: &Jid,
        except: &[Jid],
        sent: bool,
    ) {
        for s in server.sessions().marked(account.bare_str(), MARK) {
            if !except.contains(&s.jid) {
                server
                    .sessions()
                    .send_to_id(&s, copy(message, account, &s.jid, sent));
            }
        }
    }
}

#[async_trait]
impl Module for CarbonsModule {
    fn disco_features(&self) -> Vec<&'static str> {
        vec![NS]
    }

    fn iq_claims(&self) -> Vec<IqClaim> {
        vec![IqClaim::account(NS)]
    }

    async fn handle_iq(&self, server: &ServerHandle, req: IqRequest) -> IqResponse {
        let Some(session) = req
            .session
            .as_ref()
            .filter(|s| req.from.bare_eq(&req.to) && s.jid == req.from)
        else {
            return Err(StanzaError::explained(
                DefinedCondition::NotAllowed,
                "carbons are enabled by a resource for itself",
            ));
        };
        if !req.is_set {
            return Err(StanzaError::new(DefinedCondition::BadRequest));
        }
        let on = match req.payload.name() {
            "enable" => Enable::from_element(req.payload).map(|_| true)?,
            _ => Disable::from_element(req.payload).map(|_| false)?,
        };
        self.set(server, session, on);
        Ok(None)
    }

    fn client_stanza<'a>(&'a self, cx: ClientStanza<'a>) -> Option<ClientStanzaHook<'a>> {
        if self.count.load(Ordering::Relaxed) == 0 || !eligible(cx.stanza) {
            return None;
        }
        let (server, session, message) = cx.parts();
        let account = session.jid.to_bare();
        if server.sessions().any_marked(account.bare_str(), MARK) {
            self.copies(
                server,
                message,
                &account,
                std::slice::from_ref(&session.jid),
                true,
            );
        }
        None
    }

    fn watches_deliveries(&self, server: &ServerHandle, account: &str) -> bool {
        self.count.load(Ordering::Relaxed) > 0 && server.sessions().any_marked(account, MARK)
    }

    fn delivered(&self, server: &ServerHandle, message: &Element, to: &[Jid]) {
        let Some(first) = to.first() else { return };
        if eligible(message) {
            self.copies(server, message, &first.to_bare(), to, false);
        }
    }

    async fn session_closed(&self, server: &ServerHandle, session: &SessionInfo, _was: bool) {
        if self.count.load(Ordering::Relaxed) > 0 {
            self.set(server, session, false);
        }
    }
}

/// The module, registered in `lib.rs`.
pub(crate) const MODULE: ModuleRegistration = ModuleRegistration::new(
    "carbons",
    "XEP-0280: message carbons, copies of each resource's chats for the account's other resources",
    |ctx| ctx.no_settings(CarbonsModule::default()),
);
