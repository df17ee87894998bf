//! Answers for whoever waits until an engine event is safe: committed, or
//! held in memory for redelivery while writes are refused (see
//! [`super::inbound::run`]).
//!
//! Exists so that `sim/incoming` and `sim/receipt` answer 202 only once the
//! gateway is responsible for the event (CONTRACT §11 continued), as
//! WhatsApp's acknowledgement works, without changing the engine boundary:
//! the caller registers the event's key before the engine emits it, and the
//! inbound task answers after its commit (or when it holds the batch).

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::oneshot;
use ulid::Ulid;

use crate::engine::{EngineEvent, ReceiptStatus};

/// What became of an awaited event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckOutcome {
    /// Committed to the data file.
    Stored,
    /// Held in memory while writes are refused; stored when they work.
    Held,
}

/// The waiters, by (session, event key).
#[derive(Default)]
pub struct Acks {
    waiting: Mutex<HashMap<(Ulid, String), oneshot::Sender<AckOutcome>>>,
}

/// The key of an inbound message.
pub fn message_key(wa_id: &str) -> String {
    format!("m:{wa_id}")
}

/// The key of a receipt for one message.
pub fn receipt_key(wa_id: &str, status: ReceiptStatus) -> String {
    let s = match status {
        ReceiptStatus::Delivered => "delivered",
        ReceiptStatus::Read => "read",
    };
    format!("r:{wa_id}:{s}")
}

/// The key of a contact event (address-book sync) about `address`.
pub fn contact_key(address: &str) -> String {
    format!("c:{address}")
}

/// The key of a presence event of `address`.
pub fn presence_key(address: &str) -> String {
    format!("p:{address}")
}

/// The keys an event answers.
fn keys(event: &EngineEvent) -> Vec<String> {
    match event {
        EngineEvent::Message(m) => vec![message_key(&m.wa_id)],
        EngineEvent::Receipt { wa_ids, status, .. } => wa_ids.iter().map(|w| receipt_key(w, *status)).collect(),
        EngineEvent::Contact(c) => c.person.address().map(contact_key).into_iter().collect(),
        EngineEvent::Presence(p) => p.person.address().map(presence_key).into_iter().collect(),
        _ => Vec::new(),
    }
}

impl Acks {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<(Ulid, String), oneshot::Sender<AckOutcome>>> {
        match self.waiting.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Registers a wait for event `key` of `session` (before it is emitted).
    pub fn wait_for(&self, session: Ulid, key: String) -> oneshot::Receiver<AckOutcome> {
        let (tx, rx) = oneshot::channel();
        self.map().insert((session, key), tx);
        rx
    }

    /// Forgets a wait (the caller gave up).
    pub fn forget(&self, session: Ulid, key: &str) {
        self.map().remove(&(session, key.to_string()));
    }

    /// Answers the waits of `events`: stored, or held.
    pub fn fire(&self, events: &[(Ulid, EngineEvent)], stored: bool) {
        let mut map = self.map();
        if map.is_empty() {
            return;
        }
        let outcome = if stored { AckOutcome::Stored } else { AckOutcome::Held };
        for (s, e) in events {
            for k in keys(e) {
                if let Some(tx) = map.remove(&(*s, k)) {
                    let _ = tx.send(outcome);
                }
            }
        }
    }

    /// Drops the waits of `events` unanswered (they could not be stored).
    pub fn drop_all(&self, events: &[(Ulid, EngineEvent)]) {
        let mut map = self.map();
        for (s, e) in events {
            for k in keys(e) {
                map.remove(&(*s, k));
            }
        }
    }
}
