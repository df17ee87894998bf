//! Remembered answers of `Idempotency-Key` requests (24 h), and their
//! expiry index so retention can drop old ones oldest first, in bounded
//! transactions, without reading the whole table.

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::message_records::Idempotent;
use super::records::Record;
use super::tables::{IDEMPOTENCY, IDEMPOTENCY_EXPIRY};
use super::{Store, StoreResult};

/// How long an idempotent answer is replayed: 24 h.
pub const TTL_MS: i64 = 24 * 3_600_000;

/// The remembered answer for (`org`, `key`) in `table`, if any (fresh or not).
fn find(table: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>, org: &str, key: &str) -> StoreResult<Option<Idempotent>> {
    let stored = table.get((org, key))?.map(|v| Idempotent::decode(v.value()));
    stored.transpose()
}

/// The remembered answer for (`org`, `key`), inside the queueing job.
pub fn lookup(txn: &WriteTransaction, org: &str, key: &str) -> StoreResult<Option<Idempotent>> {
    find(&txn.open_table(IDEMPOTENCY)?, org, key)
}

/// [`lookup`] in a read snapshot (the early check, before any work).
pub fn lookup_read(txn: &ReadTransaction, org: &str, key: &str) -> StoreResult<Option<Idempotent>> {
    find(&txn.open_table(IDEMPOTENCY)?, org, key)
}

/// Remembers `rec` as the answer for (`org`, `key`), replacing a stale one.
pub fn remember(txn: &WriteTransaction, org: &str, key: &str, rec: &Idempotent) -> StoreResult<()> {
    if let Some(old) = lookup(txn, org, key)? {
        txn.open_table(IDEMPOTENCY_EXPIRY)?.remove((old.created_at, org, key))?;
    }
    txn.open_table(IDEMPOTENCY)?.insert((org, key), rec.encode().as_slice())?;
    txn.open_table(IDEMPOTENCY_EXPIRY)?.insert((rec.created_at, org, key), ())?;
    Ok(())
}

impl Store {
    /// Forgets idempotent answers made before `cutoff` (Unix ms), oldest
    /// first, at most `max` in this transaction; returns how many.
    pub fn prune_idempotency(&self, cutoff: i64, max: usize) -> StoreResult<usize> {
        let txn = self.write()?;
        let mut doomed = Vec::new();
        {
            let expiry = txn.open_table(IDEMPOTENCY_EXPIRY)?;
            for row in expiry.range::<(i64, &str, &str)>((i64::MIN, "", "")..(cutoff, "", ""))? {
                if doomed.len() >= max {
                    break;
                }
                let (k, _) = row?;
                let (at, org, key) = k.value();
                doomed.push((at, org.to_string(), key.to_string()));
            }
        }
        if doomed.is_empty() {
            txn.abort()?;
            return Ok(0);
        }
        {
            let mut expiry = txn.open_table(IDEMPOTENCY_EXPIRY)?;
            let mut table = txn.open_table(IDEMPOTENCY)?;
            for (at, org, key) in &doomed {
                expiry.remove((*at, org.as_str(), key.as_str()))?;
                table.remove((org.as_str(), key.as_str()))?;
            }
        }
        self.commit(txn)?;
        Ok(doomed.len())
    }
}
