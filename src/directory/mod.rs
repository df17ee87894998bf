//! The directory (CONTRACT §12 contacts, presence, profile; §13 groups):
//! what the engines tell about people and groups, kept in the data file.
//!
//! The engine's directory events ([`EngineEvent::Contact`],
//! [`EngineEvent::Presence`], [`EngineEvent::Group`]) travel with the
//! session's message events and are committed by the messaging layer's
//! batch ([`crate::messaging::inbound`]) through [`apply`]: each change to a
//! stored contact or group is written in the same transaction as its event
//! (`contact.updated`, `presence.update`, `group.*`).
//!
//! - [`contacts`] — contacts, presence updates;
//! - [`budget`] — the lookup budget's admission rule;
//! - [`tasks`] — presence retention, the profile name from the connection;
//! - [`cache`] — contacts' about texts and pictures, kept an hour in memory;
//! - [`groups`] — groups and their participants, from notifications.

pub mod budget;
pub mod cache;
pub mod contacts;
pub mod groups;
pub mod groups_json;
#[cfg(test)]
mod groups_tests;
pub mod tasks;

use std::time::Duration;

use redb::WriteTransaction;

use crate::engine::EngineEvent;
use crate::store::records::Session;
use crate::store::StoreResult;

/// Default `--lookups-per-hour`.
pub const DEFAULT_LOOKUPS_PER_HOUR: u32 = 600;

/// The directory's limits and retention (`serve` flags).
#[derive(Clone, Debug)]
pub struct DirectoryConfig {
    /// Number checks and participant adds per session in a rolling hour
    /// (`--lookups-per-hour`; 0 = none allowed).
    pub lookups_per_hour: u32,
    /// A number check's answer is reused this long (`--contact-check-ttl`).
    pub contact_check_ttl: Duration,
    /// `presence.update` events are kept this long (`--presence-retention`).
    pub presence_retention: Duration,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        DirectoryConfig {
            lookups_per_hour: DEFAULT_LOOKUPS_PER_HOUR,
            contact_check_ttl: Duration::from_secs(7 * 86_400),
            presence_retention: Duration::from_secs(3600),
        }
    }
}

/// Applies one directory event of session `key` in the caller's
/// transaction; anything else is ignored.
pub fn apply(txn: &WriteTransaction, key: u128, session: &Session, event: EngineEvent, now: i64) -> StoreResult<()> {
    match event {
        EngineEvent::Contact(c) => contacts::apply_contact(txn, key, session, *c, now),
        EngineEvent::Presence(p) => contacts::apply_presence(txn, key, session, *p, now),
        EngineEvent::Group(g) => groups::apply_notice(txn, key, session, *g, now),
        _ => Ok(()),
    }
}
