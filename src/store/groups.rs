//! A session's groups (CONTRACT §13): one row per group, keyed (session,
//! group id), so a session's groups list in id order with a seek and
//! O(limit) reads, and dropping a session's groups is one range.

use std::ops::Bound;

use redb::{ReadableTable, WriteTransaction};

use super::group_records::Group;
use super::records::Record;
use super::sessions::{collect_page, Page};
use super::tables::{GROUPS, LID_MAP};
use super::{Store, StoreError, StoreResult};

/// Above every group id (ids are ASCII): the end of a session's range.
const LAST: &str = "\u{10ffff}";

/// The stored group `id` of `session`, inside a write transaction.
pub fn get(txn: &WriteTransaction, session: u128, id: &str) -> StoreResult<Option<Group>> {
    let t = txn.open_table(GROUPS)?;
    let found = t.get((session, id))?.map(|v| Group::decode(v.value()));
    found.transpose()
}

/// Stores (creates or replaces) group `id` of `session`.
pub fn put(txn: &WriteTransaction, session: u128, id: &str, group: &Group) -> StoreResult<()> {
    txn.open_table(GROUPS)?.insert((session, id), group.encode().as_slice())?;
    Ok(())
}

/// Forgets group `id` of `session`; whether it was stored.
pub fn remove(txn: &WriteTransaction, session: u128, id: &str) -> StoreResult<bool> {
    Ok(txn.open_table(GROUPS)?.remove((session, id))?.is_some())
}

/// Drops every group of `session` (the session is deleted).
pub fn drop_session(txn: &WriteTransaction, session: u128) -> StoreResult<()> {
    let mut t = txn.open_table(GROUPS)?;
    let keys: Vec<String> = t
        .range::<(u128, &str)>((session, "")..=(session, LAST))?
        .map(|row| row.map(|(k, _)| k.value().1.to_string()))
        .collect::<Result<_, _>>()?;
    for k in keys {
        t.remove((session, k.as_str()))?;
    }
    Ok(())
}

/// The session's LID map, opened once per read (a page fills up to
/// 50 × 256 participants from it).
type LidMap = redb::ReadOnlyTable<(u128, &'static str), &'static str>;

/// A group read with the missing halves of its participants' addresses
/// filled from the session's LID map where known.
fn fill(lids: &LidMap, session: u128, mut g: Group) -> StoreResult<Group> {
    let other = |jid: &str| -> StoreResult<Option<String>> { Ok(lids.get((session, jid))?.map(|v| v.value().to_string())) };
    for p in &mut g.participants {
        match (&p.jid, &p.lid) {
            (Some(j), None) => p.lid = other(j)?,
            (None, Some(l)) => p.jid = other(l)?,
            _ => {}
        }
    }
    Ok(g)
}

impl Store {
    /// One stored group of a session (participants' addresses filled from
    /// the LID map); `NotFound` when the session does not have it.
    pub fn group(&self, session: u128, id: &str) -> StoreResult<Group> {
        let txn = self.read()?;
        let found = txn.open_table(GROUPS)?.get((session, id))?.map(|v| Group::decode(v.value()));
        match found.transpose()? {
            Some(g) => fill(&txn.open_table(LID_MAP)?, session, g),
            None => Err(StoreError::NotFound("group")),
        }
    }

    /// One page of a session's groups in id order, after group id `after`.
    pub fn list_groups(&self, session: u128, after: Option<String>, limit: usize) -> StoreResult<Page<String, Group>> {
        let txn = self.read()?;
        let table = txn.open_table(GROUPS)?;
        let lids = txn.open_table(LID_MAP)?;
        let start = match &after {
            Some(a) => Bound::Excluded((session, a.as_str())),
            None => Bound::Included((session, "")),
        };
        let end = Bound::Included((session, LAST));
        let rows = table.range::<(u128, &str)>((start, end))?.map(|row| {
            let (k, v) = row?;
            let g = fill(&lids, session, Group::decode(v.value())?)?;
            Ok((k.value().1.to_string(), g))
        });
        collect_page(rows, limit, limit, |_| true)
    }
}
