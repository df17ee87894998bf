//! Contacts and presence from the engine (CONTRACT §12).

use redb::WriteTransaction;

use crate::engine::{ContactUpdate, PresenceUpdate};
use crate::store::records::Session;
use crate::store::StoreResult;

/// Stores what the engine learned about a contact; `contact.updated` when
/// its names, picture or blocked state changed.
pub fn apply_contact(_txn: &WriteTransaction, _key: u128, _session: &Session, _update: ContactUpdate, _now: i64) -> StoreResult<()> {
    Ok(())
}

/// A subscribed contact's presence: a `presence.update` event.
pub fn apply_presence(_txn: &WriteTransaction, _key: u128, _session: &Session, _update: PresenceUpdate, _now: i64) -> StoreResult<()> {
    Ok(())
}
