//! Consistent snapshots of the data file.
//!
//! A snapshot copies every table out of ONE read transaction into a brand-new
//! redb file, so it is consistent even while the server keeps writing. (A `cp`
//! of the live file is not: it can catch a half-written commit.) The copy is
//! written to a temporary name, synced, then renamed into place, so a snapshot
//! that exists is complete.

use std::path::{Path, PathBuf};

use redb::{Key, ReadTransaction, ReadableTable, TableDefinition, Value, WriteTransaction};

use super::tables::{API_KEYS, API_KEY_HASHES, META, ORGS, ORG_API_KEYS, ORG_SESSIONS, RUNNING, SESSIONS, STATUS_COUNTS};
use super::{StoreError, StoreResult};

/// What a snapshot wrote.
#[derive(Debug, Clone)]
pub struct BackupReport {
    pub path: PathBuf,
    pub size_bytes: u64,
    pub sessions: u64,
}

fn copy<K: Key + 'static, V: Value + 'static>(
    src: &ReadTransaction,
    dst: &WriteTransaction,
    def: TableDefinition<K, V>,
) -> StoreResult<u64> {
    let from = src.open_table(def)?;
    let mut to = dst.open_table(def)?;
    let mut n = 0;
    for row in from.iter()? {
        let (k, v) = row?;
        to.insert(k.value(), v.value())?;
        n += 1;
    }
    Ok(n)
}

/// Writes every table of the snapshot `src` into a new file at `out`.
/// Refuses to overwrite an existing file.
pub fn snapshot(src: &ReadTransaction, out: &Path) -> StoreResult<BackupReport> {
    if out.exists() {
        return Err(StoreError::Conflict(format!("{} already exists", out.display())));
    }
    if let Some(parent) = out.parent() {
        if !parent.as_os_str().is_empty() {
            super::create_private_dir(parent)?;
        }
    }
    let tmp = out.with_extension(format!("partial-{}", ulid::Ulid::generate()));
    let result = (|| {
        super::create_private_file(&tmp)?;
        let db = redb::Database::create(&tmp)?;
        let txn = db.begin_write()?;
        copy(src, &txn, META)?;
        copy(src, &txn, ORGS)?;
        let sessions = copy(src, &txn, SESSIONS)?;
        copy(src, &txn, ORG_SESSIONS)?;
        copy(src, &txn, API_KEYS)?;
        copy(src, &txn, API_KEY_HASHES)?;
        copy(src, &txn, ORG_API_KEYS)?;
        copy(src, &txn, RUNNING)?;
        copy(src, &txn, STATUS_COUNTS)?;
        crate::engine::whatsapp::tables::copy_tables(src, &txn)?;
        txn.commit()?;
        db.close()?;
        std::fs::File::open(&tmp)?.sync_all()?;
        Ok::<u64, StoreError>(sessions)
    })();
    let sessions = match result {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, out)?;
    if let Some(dir) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    let size_bytes = std::fs::metadata(out)?.len();
    Ok(BackupReport { path: out.to_path_buf(), size_bytes, sessions })
}
