//! Consistent snapshots of the data file.
//!
//! A snapshot copies every table out of ONE read transaction into a brand-new
//! redb file, so it is consistent even while the server keeps writing. (A `cp`
//! of the live file is not: it can catch a half-written commit.)
//!
//! The target is checked before anything is written (a directory, a path
//! ending in `/` or an existing file is refused). The copy is written to a
//! temporary name in the target's directory and synced, then hard-linked to
//! the target name — `link(2)` fails if that name exists, so an existing file
//! is never replaced, even one created meanwhile — and the temporary name is
//! removed. A snapshot that exists is complete, and no temporary file is left
//! behind on any failure.

use std::fs::File;
use std::path::{Path, PathBuf};

use redb::{Key, ReadTransaction, ReadableTable, TableDefinition, Value, WriteTransaction};

use super::tables::{
    API_KEYS, API_KEY_HASHES, EVENTS, IDEMPOTENCY, IDEMPOTENCY_EXPIRY, LID_MAP, MEDIA, MESSAGES, META, ORGS, ORG_USAGE, ORG_API_KEYS, ORG_EVENTS,
    ORG_SESSIONS, QUEUE_HEADS, RUNNING, SEND_PAUSES, SEND_LOG, SEND_QUEUE, SESSIONS, SESSION_MESSAGES,
    STATUS_COUNTS, WA_IDS, WEBHOOKS, ORG_WEBHOOKS,
    WEBHOOK_CURSORS, DELIVERIES, DELIVERY_QUEUE, DELIVERY_LOG, WEBHOOK_HEALTH,
};
use super::{StoreError, StoreResult};

/// What a snapshot wrote.
#[derive(Debug, Clone)]
pub struct BackupReport {
    pub path: PathBuf,
    pub size_bytes: u64,
    pub sessions: u64,
}

/// A file this process created under a fresh name, removed when dropped
/// (also while a panic unwinds): so that a failed backup or check leaves no
/// temporary file behind.
pub(crate) struct TempPath {
    path: PathBuf,
}

impl TempPath {
    /// Creates `path`, which must not exist (`O_EXCL`), readable by the owner
    /// only (the data file holds credentials).
    pub(crate) fn create_new(path: PathBuf) -> std::io::Result<(TempPath, File)> {
        let mut opts = std::fs::OpenOptions::new();
        opts.read(true).write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts.open(&path)?;
        Ok((TempPath { path }, file))
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn copy<K: Key + 'static, V: Value + 'static>(
    src: &ReadTransaction,
    dst: &WriteTransaction,
    def: TableDefinition<K, V>,
) -> StoreResult<u64> {
    let from = match src.open_table(def) {
        Ok(t) => t,
        // A file last served by a gateway from before the table: empty.
        Err(redb::TableError::TableDoesNotExist(_)) => {
            dst.open_table(def)?;
            return Ok(0);
        }
        Err(e) => return Err(e.into()),
    };
    let mut to = dst.open_table(def)?;
    let mut n = 0;
    for row in from.iter()? {
        let (k, v) = row?;
        to.insert(k.value(), v.value())?;
        n += 1;
    }
    Ok(n)
}

/// Refuses a snapshot target that is not a new file name: a path ending in a
/// slash (or in `.`/`..`), an existing directory, or any existing file
/// (including a symlink). Called before anything is written, so a refused
/// backup creates nothing. (The final hard link re-checks atomically.)
pub fn check_target(out: &Path) -> StoreResult<()> {
    let raw = out.to_string_lossy();
    let refuse = |why: &str| Err(StoreError::Conflict(format!("{raw} {why}")));
    if raw.is_empty() {
        return Err(StoreError::Conflict("no snapshot file named".into()));
    }
    if raw.ends_with('/') || raw.ends_with(std::path::MAIN_SEPARATOR) {
        return refuse("ends with a slash, so it names a directory: name the snapshot file to create (e.g. DIR/gateway-backup.redb)");
    }
    let last = raw.rsplit(['/', std::path::MAIN_SEPARATOR]).next().unwrap_or_default();
    if last == "." || last == ".." || out.file_name().is_none() {
        return refuse("names a directory: name the snapshot file to create (e.g. DIR/gateway-backup.redb)");
    }
    match std::fs::symlink_metadata(out) {
        Ok(m) if m.is_dir() => {
            refuse("is a directory: name the snapshot file to create inside it (e.g. DIR/gateway-backup.redb)")
        }
        Ok(_) => refuse("already exists: a snapshot never replaces a file"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::Io(std::io::Error::new(e.kind(), format!("{raw}: {e}")))),
    }
}

/// Writes every table of the snapshot `src` into a new file at `out`.
/// Refuses to overwrite an existing file, and leaves nothing behind on failure.
pub fn snapshot(src: &ReadTransaction, out: &Path) -> StoreResult<BackupReport> {
    check_target(out)?;
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = dir {
        super::create_private_dir(dir)?;
    }
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp_path = out.with_file_name(format!(".{name}.partial-{}", ulid::Ulid::generate()));
    let (tmp, file) = TempPath::create_new(tmp_path)?;
    drop(file);
    let db = redb::Database::create(tmp.path())?;
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
    copy(src, &txn, MESSAGES)?;
    copy(src, &txn, SESSION_MESSAGES)?;
    copy(src, &txn, SEND_QUEUE)?;
    copy(src, &txn, QUEUE_HEADS)?;
    copy(src, &txn, WA_IDS)?;
    copy(src, &txn, MEDIA)?;
    copy(src, &txn, ORG_USAGE)?;
    copy(src, &txn, super::tables::MEDIA_REFS)?;
    copy(src, &txn, super::tables::MEDIA_STAGED)?;
    copy(src, &txn, SEND_LOG)?;
    copy(src, &txn, SEND_PAUSES)?;
    copy(src, &txn, LID_MAP)?;
    copy(src, &txn, IDEMPOTENCY)?;
    copy(src, &txn, IDEMPOTENCY_EXPIRY)?;
    copy(src, &txn, EVENTS)?;
    copy(src, &txn, ORG_EVENTS)?;
    copy(src, &txn, WEBHOOKS)?;
    copy(src, &txn, ORG_WEBHOOKS)?;
    copy(src, &txn, WEBHOOK_CURSORS)?;
    copy(src, &txn, DELIVERIES)?;
    copy(src, &txn, DELIVERY_QUEUE)?;
    copy(src, &txn, DELIVERY_LOG)?;
    copy(src, &txn, WEBHOOK_HEALTH)?;
    // The directory (schema 5).
    copy(src, &txn, super::tables::CONTACTS)?;
    copy(src, &txn, super::tables::CONTACT_ADDRESSES)?;
    copy(src, &txn, super::tables::NUMBER_CHECKS)?;
    copy(src, &txn, super::tables::LOOKUP_BUDGET)?;
    copy(src, &txn, super::tables::PROFILES)?;
    copy(src, &txn, super::tables::PRESENCE_EVENTS)?;
    copy(src, &txn, super::tables::GROUPS)?;
    crate::store::wa_state::copy_tables(src, &txn)?;
    txn.commit()?;
    db.close()?;
    File::open(tmp.path())?.sync_all()?;
    // Fails if `out` exists, however it came to: nothing is ever replaced.
    std::fs::hard_link(tmp.path(), out).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => StoreError::Conflict(format!(
            "{} already exists: a snapshot never replaces a file",
            out.display()
        )),
        _ => StoreError::Io(std::io::Error::new(
            e.kind(),
            format!("cannot create {}: {e}", out.display()),
        )),
    })?;
    drop(tmp);
    // The new name is durable once its directory is synced.
    if let Ok(d) = File::open(dir.unwrap_or(Path::new("."))) {
        let _ = d.sync_all();
    }
    let size_bytes = std::fs::metadata(out)?.len();
    Ok(BackupReport {
        path: out.to_path_buf(),
        size_bytes,
        sessions,
    })
}
