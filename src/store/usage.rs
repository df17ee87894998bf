//! Per-organization stored bytes (CONTRACT "§11 (continued)": disk is
//! bounded per organization).
//!
//! What counts: the media bytes kept for an organization's messages (the
//! decoded bytes, as stored in `message_media`: an outbound message's
//! media until it has left) plus the UTF-8 length of each stored message's
//! `text` (body or caption, both directions). Inbound media is not stored
//! (it is fetched from WhatsApp on demand), so it counts nothing; nor do the
//! other fields of a message record, its index rows or its events.
//!
//! The count lives in `org_stored_bytes` ([`ORG_USAGE`]), one small row per
//! organization, and is changed by [`add`] in the same write transaction as
//! the write that adds or removes such bytes: a message stored (either
//! direction), media dropped once a message has left (or never will), a
//! text changed by an edit or a revoke, retention pruning, session delete.
//! Everything in `crate::store::messages` that writes messages or media calls
//! [`add`]; so must any new code that does (e.g. a staging table for a
//! batch's media). `check` recomputes the count ([`tally`]) and compares.

use std::collections::HashMap;

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::message_records::Message;
use super::records::Record;
use super::tables::{MEDIA, MEDIA_REFS, MESSAGES, ORG_USAGE};
use super::StoreResult;

/// The bytes a stored message counts for itself (its media is counted
/// where it is kept): the UTF-8 length of its `text`.
pub fn message_bytes(m: &Message) -> u64 {
    m.text.as_ref().map_or(0, |t| t.len() as u64)
}

/// Adds `delta` (negative: gives back) to `org`'s stored bytes, in the
/// caller's write transaction. A zero delta writes nothing. The count never
/// goes below 0 (a counter that would is wrong, and `check` says so; a send
/// must not fail for it). The row is removed when it reaches 0.
pub fn add(txn: &WriteTransaction, org: &str, delta: i64) -> StoreResult<()> {
    if delta == 0 {
        return Ok(());
    }
    let mut t = txn.open_table(ORG_USAGE)?;
    let now = t.get(org)?.map_or(0, |v| v.value());
    let next = now.saturating_add_signed(delta);
    if next == 0 {
        t.remove(org)?;
    } else {
        t.insert(org, next)?;
    }
    Ok(())
}

/// Per-organization deltas gathered over several messages, applied with one
/// [`add`] per organization (a batch of sends updates the row once).
#[derive(Default, Debug)]
pub struct Deltas(Vec<(String, i64)>);

impl Deltas {
    /// Notes `delta` bytes for `org`.
    pub fn note(&mut self, org: &str, delta: i64) {
        match self.0.iter_mut().find(|(o, _)| o == org) {
            Some((_, d)) => *d += delta,
            None => self.0.push((org.to_string(), delta)),
        }
    }

    /// Applies every noted delta in `txn`.
    pub fn apply(self, txn: &WriteTransaction) -> StoreResult<()> {
        for (org, delta) in self.0 {
            add(txn, &org, delta)?;
        }
        Ok(())
    }
}

/// `org`'s stored bytes, in a write transaction (what this transaction has
/// added so far included: concurrent sends in one group commit see each
/// other).
pub fn stored_in(txn: &WriteTransaction, org: &str) -> StoreResult<u64> {
    Ok(txn.open_table(ORG_USAGE)?.get(org)?.map_or(0, |v| v.value()))
}

/// `org`'s stored bytes, in a snapshot. A file from before the table reads 0.
pub fn stored(txn: &ReadTransaction, org: &str) -> StoreResult<u64> {
    match txn.open_table(ORG_USAGE) {
        Ok(t) => Ok(t.get(org)?.map_or(0, |v| v.value())),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// What the counters should be, recomputed from the messages and the kept
/// media: per organization, the bytes; and the media rows whose message is
/// missing (they belong to no organization). Undecodable messages are
/// passed over (`check` reports them on their own).
pub fn tally(
    messages: &impl ReadableTable<u128, &'static [u8]>,
    refs: &impl ReadableTable<u128, u128>,
    media: &impl ReadableTable<u128, &'static [u8]>,
) -> StoreResult<(HashMap<String, u64>, Vec<u128>)> {
    let mut out: HashMap<String, u64> = HashMap::new();
    for row in messages.iter()? {
        let (_, v) = row?;
        if let Ok(m) = Message::decode(v.value()) {
            *out.entry(m.organization_id).or_default() += message_bytes(&m);
        }
    }
    let mut orphans = Vec::new();
    for row in refs.iter()? {
        let (k, blob) = row?;
        let id = k.value();
        let size = media.get(blob.value())?.map_or(0, |v| v.value().len() as u64);
        match messages.get(id)?.map(|m| Message::decode(m.value())) {
            Some(Ok(m)) => *out.entry(m.organization_id).or_default() += size,
            Some(Err(_)) => {}
            None => orphans.push(id),
        }
    }
    out.retain(|_, n| *n > 0);
    Ok((out, orphans))
}

/// Rewrites every organization's counter from [`tally`]: one pass over the
/// messages and the kept media.
pub fn recount(txn: &WriteTransaction) -> StoreResult<()> {
    let (counts, _) = {
        let (messages, refs, media) = (txn.open_table(MESSAGES)?, txn.open_table(MEDIA_REFS)?, txn.open_table(MEDIA)?);
        tally(&messages, &refs, &media)?
    };
    let mut t = txn.open_table(ORG_USAGE)?;
    t.retain(|_, _| false)?;
    for (org, n) in counts {
        t.insert(org.as_str(), n)?;
    }
    Ok(())
}

/// Schema 3 → 4 (quotas): fills `org_stored_bytes` from what the file
/// holds. Idempotent and self-contained (a recount from scratch), so it can
/// be merged with another step to 4.
pub fn upgrade_to_4_quota(txn: &WriteTransaction) -> StoreResult<()> {
    recount(txn)
}

#[cfg(test)]
#[path = "usage_tests.rs"]
mod tests;
