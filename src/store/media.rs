//! Where an outbound message's media bytes live, and every write or removal
//! of them (CONTRACT §11 continued: memory is bounded per request).
//!
//! A send does not carry its media into the commit that queues it: each
//! item's bytes are first *staged* in their own small commit ([`stage`]) as a
//! blob in [`MEDIA`] keyed by a fresh blob ULID, with a row in
//! [`MEDIA_STAGED`] (organization, size, when). The request keeps only the
//! blob ids. The commit that queues the messages then [`attach`]es each blob
//! to its message ([`MEDIA_REFS`]: message → blob) — a few key writes, no
//! bytes copied inside the single writer. A request that fails [`discard`]s
//! what it staged; blobs left staged by a crash are [`sweep`]ed at start and,
//! later, once older than [`STAGED_MAX_AGE_MS`].
//!
//! Files of schema 3 kept the bytes in [`MEDIA`] under the message's own id;
//! the upgrade to 4 ([`upgrade_to_4_media`]) gives each such row a reference
//! to itself, so there is one way to read media.
//!
//! Every function that adds or removes bytes is here (stage, attach, discard,
//! remove, sweep): a per-organization byte count hooks into exactly these.

use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::tables::{MEDIA, MEDIA_REFS, MEDIA_STAGED};
use super::{StoreError, StoreResult};

/// A staged blob older than this is an orphan (its request is long over: a
/// batch's fetches take at most 60 s each and its final commit follows at
/// once) and is swept by the periodic [`sweep`].
pub const STAGED_MAX_AGE_MS: i64 = 3_600_000;

/// Stages `bytes` for organization `org` in `txn` and returns the new blob's
/// id. The caller commits (one small commit per item) and keeps only the id.
pub fn stage(txn: &WriteTransaction, org: &str, bytes: &[u8], now: i64) -> StoreResult<u128> {
    let blob = u128::from(crate::new_id());
    txn.open_table(MEDIA)?.insert(blob, bytes)?;
    txn.open_table(MEDIA_STAGED)?.insert(blob, (org, bytes.len() as u64, now))?;
    Ok(blob)
}

/// Attaches staged `blob` to message `message` (no bytes copied) and
/// returns its size, which now counts in the organization's stored bytes.
/// `Ok(None)` when the blob is no longer staged (swept): nothing was
/// written then.
pub fn attach(txn: &WriteTransaction, message: u128, blob: u128) -> StoreResult<Option<u64>> {
    let Some(size) = txn.open_table(MEDIA_STAGED)?.remove(blob)?.map(|g| g.value().1) else {
        return Ok(None);
    };
    txn.open_table(MEDIA_REFS)?.insert(message, blob)?;
    Ok(Some(size))
}

/// Whether every blob of `blobs` is still staged (to validate before writing).
pub fn all_staged(txn: &WriteTransaction, blobs: impl IntoIterator<Item = u128>) -> StoreResult<bool> {
    let t = txn.open_table(MEDIA_STAGED)?;
    for b in blobs {
        if t.get(b)?.is_none() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Removes staged blobs that were never attached (a refused or failed
/// request). A blob already attached or gone is left alone.
pub fn discard(txn: &WriteTransaction, blobs: &[u128]) -> StoreResult<()> {
    let mut staged = txn.open_table(MEDIA_STAGED)?;
    let mut media = txn.open_table(MEDIA)?;
    for b in blobs {
        if staged.remove(*b)?.is_some() {
            media.remove(*b)?;
        }
    }
    Ok(())
}

/// Frees the media of messages `ids` (sent, failed, canceled, expired,
/// deleted, past retention) and returns, for each that had media, the bytes
/// freed (for the organization's stored-bytes count). A message without
/// media costs one lookup.
pub fn remove(txn: &WriteTransaction, ids: &[u128]) -> StoreResult<Vec<(u128, u64)>> {
    let mut refs = txn.open_table(MEDIA_REFS)?;
    let mut media = txn.open_table(MEDIA)?;
    let mut freed = Vec::new();
    for id in ids {
        if let Some(blob) = refs.remove(*id)?.map(|g| g.value()) {
            let n = media.remove(blob)?.map_or(0, |v| v.value().len() as u64);
            freed.push((*id, n));
        }
    }
    Ok(freed)
}

/// Removes staged blobs staged before `cutoff` (ms; `i64::MAX` at start,
/// when no request can be in flight). Returns how many were removed.
pub fn sweep(txn: &WriteTransaction, cutoff: i64) -> StoreResult<u64> {
    let doomed: Vec<u128> = {
        let staged = txn.open_table(MEDIA_STAGED)?;
        let mut v = Vec::new();
        for row in staged.iter()? {
            let (k, val) = row?;
            if val.value().2 < cutoff {
                v.push(k.value());
            }
        }
        v
    };
    discard(txn, &doomed)?;
    Ok(doomed.len() as u64)
}

/// [`sweep`] in its own transaction, written only when something is staged.
pub fn sweep_staged(store: &super::Store, cutoff: i64) -> StoreResult<u64> {
    if !any_staged(&store.read()?)? {
        return Ok(0);
    }
    let txn = store.write()?;
    let n = sweep(&txn, cutoff)?;
    store.commit(txn)?;
    Ok(n)
}

/// Whether any blob is staged (a read, so a sweep that has nothing to do
/// costs no write).
pub fn any_staged(txn: &ReadTransaction) -> StoreResult<bool> {
    Ok(txn.open_table(MEDIA_STAGED)?.len()? > 0)
}

/// Message `id`'s media bytes, while kept, in tables opened by either kind
/// of transaction.
pub fn read_in(
    refs: &impl ReadableTable<u128, u128>,
    media: &impl ReadableTable<u128, &'static [u8]>,
    id: u128,
) -> StoreResult<Option<Vec<u8>>> {
    let Some(blob) = refs.get(id)?.map(|g| g.value()) else { return Ok(None) };
    Ok(media.get(blob)?.map(|v| v.value().to_vec()))
}

/// Message `id`'s media bytes, while kept.
pub fn read(txn: &ReadTransaction, id: u128) -> StoreResult<Option<Vec<u8>>> {
    read_in(&txn.open_table(MEDIA_REFS)?, &txn.open_table(MEDIA)?, id)
}

/// Schema 3 → 4: each media row of schema 3 (keyed by its message id) gets
/// a reference to itself. Idempotent: a row already referenced is skipped,
/// and staged blobs (which schema 3 never had) are not touched.
pub fn upgrade_to_4_media(txn: &WriteTransaction) -> StoreResult<()> {
    let ids: Vec<u128> = {
        let media = txn.open_table(MEDIA)?;
        let staged = txn.open_table(MEDIA_STAGED)?;
        let mut ids = Vec::new();
        for row in media.iter()? {
            let id = row?.0.value();
            if staged.get(id)?.is_none() {
                ids.push(id);
            }
        }
        ids
    };
    let mut refs = txn.open_table(MEDIA_REFS)?;
    let referenced: std::collections::HashSet<u128> = refs.iter()?.map(|r| r.map(|(_, v)| v.value())).collect::<Result<_, _>>()?;
    for id in ids {
        if !referenced.contains(&id) {
            refs.insert(id, id)?;
        }
    }
    Ok(())
}

/// A staged blob the caller lost track of is an error worth naming.
pub fn gone() -> StoreError {
    StoreError::NotFound("staged media")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(&dir.path().join("data.redb"), 1 << 20).expect("open");
        (dir, s)
    }

    fn write<T>(s: &Store, f: impl FnOnce(&WriteTransaction) -> StoreResult<T>) -> T {
        let txn = s.write().expect("write");
        let out = f(&txn).expect("job");
        s.commit(txn).expect("commit");
        out
    }

    #[test]
    fn staged_blobs_attach_discard_and_sweep() {
        let (_d, s) = store();
        let a = write(&s, |t| stage(t, "org", b"aaaa", 10));
        let b = write(&s, |t| stage(t, "org", b"bb", 20));
        let c = write(&s, |t| stage(t, "org", b"c", 30));
        assert!(write(&s, |t| attach(t, 7, a)).is_some());
        assert!(write(&s, |t| attach(t, 8, a)).is_none(), "a blob attaches once");
        assert_eq!(read(&s.read().expect("r"), 7).expect("read").as_deref(), Some(&b"aaaa"[..]));
        write(&s, |t| discard(t, &[b, a]));
        assert_eq!(read(&s.read().expect("r"), 7).expect("read").as_deref(), Some(&b"aaaa"[..]), "discard leaves attached blobs");
        assert_eq!(write(&s, |t| sweep(t, 31)), 1);
        assert!(!any_staged(&s.read().expect("r")).expect("any"));
        assert!(s.read().expect("r").open_table(MEDIA).expect("t").get(c).expect("get").is_none());
        write(&s, |t| remove(t, &[7, 9]));
        assert_eq!(read(&s.read().expect("r"), 7).expect("read"), None);
        assert_eq!(s.read().expect("r").open_table(MEDIA).expect("t").len().expect("len"), 0);
    }

    /// `check` accepts staged and attached blobs and names each broken
    /// link: a blob neither staged nor attached, a reference to a missing
    /// blob or to a message that does not exist.
    #[test]
    fn check_names_orphan_blobs_and_dangling_references() {
        let (_d, s) = store();
        write(&s, |t| stage(t, "org", b"pending", 1));
        let report = crate::store::check::check(&s.read().expect("r")).expect("check");
        assert!(report.ok(), "a staged blob is legal: {report}");
        write(&s, |t| {
            t.open_table(MEDIA)?.insert(11u128, &b"orphan"[..])?;
            t.open_table(MEDIA_REFS)?.insert(12u128, 13u128)?;
            Ok(())
        });
        let report = crate::store::check::check(&s.read().expect("r")).expect("check");
        let text = report.to_string();
        assert!(text.contains("neither staged nor attached"), "{text}");
        assert!(text.contains("which is missing"), "{text}");
        assert!(text.contains("which does not exist"), "{text}");
    }

    #[test]
    fn the_upgrade_references_schema_3_rows_once() {
        let (_d, s) = store();
        write(&s, |t| {
            t.open_table(MEDIA)?.insert(5u128, &b"old"[..])?;
            Ok(())
        });
        let staged = write(&s, |t| stage(t, "org", b"new", 1));
        write(&s, upgrade_to_4_media);
        write(&s, upgrade_to_4_media);
        let r = s.read().expect("r");
        assert_eq!(read(&r, 5).expect("read").as_deref(), Some(&b"old"[..]));
        assert_eq!(r.open_table(MEDIA_REFS).expect("t").len().expect("len"), 1);
        assert!(r.open_table(MEDIA_REFS).expect("t").get(staged).expect("get").is_none());
    }
}
