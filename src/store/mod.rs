//! The data file: one redb database holding everything the gateway must not lose.
//!
//! Layout (schema version 4; see [`tables`] for the key and value types):
//!
//! | table            | key                    | value                         |
//! |------------------|------------------------|-------------------------------|
//! | `meta`           | name                   | raw bytes (schema version, cursor secret, data-file id) |
//! | `organizations`  | organization id        | [`records::Organization`] envelope |
//! | `sessions`       | session ULID (u128)    | [`records::Session`] envelope — the global index the admin listing walks |
//! | `org_sessions`   | (organization id, ULID)| `()` — per-organization index of sessions |
//! | `api_keys`       | key ULID (u128)        | [`records::ApiKey`] envelope |
//! | `api_key_hashes` | SHA-256 of the key     | key ULID |
//! | `org_api_keys`   | (organization id, ULID)| `()` |
//!
//! Messaging adds the messages, the send queue and the event log
//! ([`messages`], [`events`]); [`wa_state`] holds each WhatsApp session's
//! protocol state. The README's "Data file format" lists every table.
//!
//! The server opens the file in redb's `SingleWriter` mode so that `backup`,
//! `check` (and any reader) can open it read-only from another process while it
//! runs. Every write uses `Durability::Immediate`: a commit that returned is on disk.

pub mod api_keys;
pub mod backup;
pub mod check;
pub mod committer;
pub mod contact_records;
pub mod contacts;
pub mod deliveries;
pub mod events;
pub mod group_records;
pub mod groups;
#[cfg(test)]
mod groups_tests;
pub mod idempotency;
pub mod media;
pub mod message_records;
pub mod messages;
pub mod orgs;
pub mod records;
pub mod recovery;
pub mod sessions;
pub mod tables;
pub mod usage;
pub mod wa_state;
pub mod webhook_health;
pub mod webhook_records;
pub mod webhooks;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use redb::{ConcurrencyMode, Database, ReadOnlyDatabase, ReadTransaction, ReadableDatabase};

use recovery::Handle;

use tables::META;

/// The schema version this build writes; older files are upgraded at open.
pub const SCHEMA_VERSION: u32 = 5;

/// Default redb page cache: small enough for a 100 MiB resident budget.
pub const DEFAULT_CACHE_BYTES: usize = 32 * 1024 * 1024;

/// Why a store operation failed. The HTTP layer maps these once.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The record does not exist (or is not visible to the caller).
    NotFound(&'static str),
    /// The operation conflicts with current state.
    Conflict(String),
    /// redb failed.
    Db(redb::Error),
    /// A stored value could not be decoded, or the file is inconsistent.
    Corrupt(String),
    /// The file was written by a newer gateway.
    NewerSchema(u32),
    /// Filesystem error around the data file.
    Io(std::io::Error),
    /// Writes are refused: the data file's filesystem is nearly full.
    DiskFull { free: u64, min: u64 },
    /// Writes are refused after a write failed with an I/O error (a full
    /// disk, typically), until the store has reopened the file and space is
    /// back ([`recovery`]); or the file is being reopened this moment.
    Failed(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::NotFound(what) => write!(f, "{what} not found"),
            StoreError::Conflict(m) => write!(f, "conflict: {m}"),
            StoreError::Db(e) => write!(f, "data file error: {e}"),
            StoreError::Corrupt(m) => write!(f, "data file is corrupt: {m}"),
            StoreError::NewerSchema(v) => write!(
                f,
                "data file has schema version {v}, this gateway knows up to {SCHEMA_VERSION}: upgrade the gateway"
            ),
            StoreError::Io(e) => write!(f, "i/o error: {e}"),
            StoreError::DiskFull { free, min } => write!(
                f,
                "writes are paused: {free} bytes free on the data file's disk, below the {min} bytes --min-free-disk keeps"
            ),
            StoreError::Failed(m) => write!(f, "writes are paused: the data file could not be written ({m}); they resume by themselves once it can"),
        }
    }
}

impl std::error::Error for StoreError {}

impl StoreError {
    /// Whether the write was refused for lack of space or after an I/O
    /// error: it can be redone once writes work again (see [`recovery`]).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            StoreError::DiskFull { .. }
                | StoreError::Failed(_)
                | StoreError::Db(redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::DatabaseClosed)
        )
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::Db(e.into()) }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Io(e)
    }
}

/// One page of an id-ordered walk: the rows kept (with their ULID keys) and
/// where the next page starts (`None`: the walk is done).
pub type Rows<T> = (Vec<(u128, T)>, Option<u128>);

/// Result alias for store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// Values from the `meta` table that the process keeps in memory.
#[derive(Clone, Debug)]
pub struct Meta {
    pub schema_version: u32,
    /// Random id of this data file; cursors are bound to it.
    pub data_file_id: [u8; 16],
    /// HMAC-SHA256 key for list cursors, from the file's `cursor_secret`.
    pub cursor_key: ring::hmac::Key,
}

impl Meta {
    /// Meta values, with the cursor key prepared once.
    pub fn new(schema_version: u32, data_file_id: [u8; 16], cursor_secret: [u8; 32]) -> Meta {
        Meta {
            schema_version,
            data_file_id,
            cursor_key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &cursor_secret),
        }
    }
}

/// The open data file, for the server (the only writer).
pub struct Store {
    /// The open database; `None` only while [`recovery`] reopens it (reads
    /// and writes then answer [`StoreError::Failed`], a clean 503). Behind
    /// a lock so that the file can be reopened in-process: redb refuses
    /// every read and write on a handle after one I/O error.
    db: RwLock<Option<Arc<Handle>>>,
    meta: Meta,
    path: PathBuf,
    cache_bytes: usize,
    /// Bumped after every commit. This process is the file's only writer
    /// (`SingleWriter`), so an unchanged version means unchanged data: the
    /// page cache relies on it.
    version: AtomicU64,
    /// Writes are refused below this many free bytes on the file's disk.
    min_free: AtomicU64,
    /// Why writes are refused since a write failed with an I/O error (or
    /// the file could be opened for reading only); cleared by [`recovery`]
    /// once the file is reopened and space is back.
    failure: Mutex<Option<String>>,
    /// Consecutive I/O failures without a successful commit between them
    /// (the recovery backoff grows with it).
    failures: AtomicU64,
    /// Fired when a write fails with an I/O error (wakes [`recovery`]).
    failed: Arc<tokio::sync::Notify>,
    /// Bumped each time writes work again after being refused (below the
    /// floor or after an I/O failure): whoever held writes back (sessions
    /// to start, inbound events to store) retries then.
    writes_back: tokio::sync::watch::Sender<u64>,
    /// Wakes the live event streams after every commit that appended events.
    events: events::EventSignal,
    /// Ids of the suspended organizations, kept in step with every org
    /// write (this process is the only writer): every request asks, and
    /// the answer must not cost a read on an async worker.
    suspended: std::sync::RwLock<std::collections::HashSet<String>>,
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The data file's path inside a data directory.
pub fn data_file(dir: &Path) -> PathBuf {
    dir.join("gateway.redb")
}

impl Store {
    /// Opens (creating if needed) the data file for writing, and runs any
    /// schema upgrade inside one write transaction. On a full disk the file
    /// still opens for reading (writes refused until [`recovery`] finds
    /// space), as long as its schema is this build's.
    pub fn open(path: &Path, cache_bytes: usize) -> StoreResult<Store> {
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                create_private_dir(parent)?;
            }
        }
        create_private_file(path)?;
        let (handle, meta, failure) = recovery::open_for_serving(path, cache_bytes)?;
        let (suspended, last_event) = {
            let txn = handle.begin_read()?;
            (orgs::suspended_ids(&txn)?, events::last_id(&txn)?.unwrap_or(0))
        };
        Ok(Store {
            db: RwLock::new(Some(Arc::new(handle))),
            meta,
            path: path.to_path_buf(),
            cache_bytes,
            version: AtomicU64::new(0),
            min_free: AtomicU64::new(0),
            failures: AtomicU64::new(u64::from(failure.is_some())),
            failure: Mutex::new(failure),
            failed: Arc::new(tokio::sync::Notify::new()),
            writes_back: tokio::sync::watch::Sender::new(0),
            events: events::EventSignal::new(last_event),
            suspended: std::sync::RwLock::new(suspended),
        })
    }

    /// The open database, or a clean refusal while it is being reopened.
    fn handle(&self) -> StoreResult<Arc<Handle>> {
        let guard = match self.db.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        guard.clone().ok_or_else(|| StoreError::Failed("the data file is being reopened".into()))
    }

    /// In-memory copy of the meta table.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// The data file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts a read transaction (a consistent snapshot).
    pub fn read(&self) -> StoreResult<ReadTransaction> {
        self.handle()?.begin_read().map_err(|e| self.noting_failure(e))
    }

    /// Starts a durable write transaction, unless the disk is nearly full
    /// (refused before redb could meet ENOSPC) or an earlier write failed.
    pub fn write(&self) -> StoreResult<redb::WriteTransaction> {
        if let Some(why) = self.failure() {
            return Err(StoreError::Failed(why));
        }
        let min = self.min_free.load(Ordering::Relaxed);
        if min > 0 {
            if let Some(free) = self.free_bytes() {
                if free < min {
                    return Err(StoreError::DiskFull { free, min });
                }
            }
        }
        self.begin_write()
    }

    /// A durable write transaction on the open handle, with no floor check.
    fn begin_write(&self) -> StoreResult<redb::WriteTransaction> {
        let mut txn = self.handle()?.begin_write().map_err(|e| self.noting_failure(e))?;
        txn.set_durability(redb::Durability::Immediate)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(txn)
    }

    /// Commits durably, then bumps the version (before any response can
    /// report the write).
    pub fn commit(&self, txn: redb::WriteTransaction) -> StoreResult<()> {
        let committed = txn.commit();
        self.events.after_commit(committed.is_ok());
        committed.map_err(|e| self.noting_failure(e.into()))?;
        self.failures.store(0, Ordering::Relaxed);
        self.version.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// A receiver woken after every commit that appended events; its value
    /// is the newest committed event id (see [`events::EventSignal`]).
    pub fn subscribe_events(&self) -> tokio::sync::watch::Receiver<u128> {
        self.events.subscribe()
    }

    /// Commits durably without bumping the version: for writes no API page
    /// shows (the whatsapp engine's protocol state), so that a busy session's
    /// Signal traffic does not empty the page cache.
    pub fn commit_unversioned(&self, txn: redb::WriteTransaction) -> StoreResult<()> {
        let committed = txn.commit();
        self.events.after_commit(committed.is_ok());
        committed.map_err(|e| self.noting_failure(e.into()))
    }

    /// Records who issues this file's login tokens (`jwks` | `embedded`);
    /// writes only when it changed. A tiny meta write, so it is not held to
    /// `--min-free-disk` (a gateway must be able to start on a full disk).
    pub fn set_issuer_mode(&self, mode: &str) -> StoreResult<()> {
        if issuer_mode(&self.read()?)?.as_deref() == Some(mode) {
            return Ok(());
        }
        if let Some(why) = self.failure() {
            return Err(StoreError::Failed(why));
        }
        let txn = self.begin_write()?;
        txn.open_table(META)?.insert(tables::META_ISSUER_MODE, mode.as_bytes())?;
        self.commit(txn)
    }

    /// Refuses writes while fewer than `bytes` are free on the file's disk
    /// (0 = never).
    pub fn set_min_free_disk(&self, bytes: u64) {
        self.min_free.store(bytes, Ordering::Relaxed);
    }

    /// The configured floor of free bytes.
    pub fn min_free_disk(&self) -> u64 {
        self.min_free.load(Ordering::Relaxed)
    }

    /// Free bytes (for unprivileged users) on the data file's filesystem.
    pub fn free_bytes(&self) -> Option<u64> {
        free_bytes(self.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")))
    }

    /// Whether a write would be accepted now.
    pub fn writable(&self) -> bool {
        let min = self.min_free_disk();
        self.failure().is_none() && (min == 0 || self.free_bytes().is_none_or(|f| f >= min))
    }

    /// Why writes are refused since an I/O error, if they are.
    pub fn failure(&self) -> Option<String> {
        match self.failure.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// A receiver whose value is bumped each time writes work again after
    /// being refused (see [`recovery::watch`]).
    pub fn subscribe_writes_back(&self) -> tokio::sync::watch::Receiver<u64> {
        self.writes_back.subscribe()
    }

    /// Resolves once a write has failed with an I/O error (or at once if
    /// writes are refused for one now).
    pub async fn failed(&self) {
        let notified = self.failed.notified();
        if self.failure().is_some() {
            return;
        }
        notified.await
    }

    /// Latches an I/O failure (redb refuses every read and write on the
    /// handle after one) and wakes [`recovery`], which reopens the file.
    fn noting_failure(&self, e: StoreError) -> StoreError {
        let io = matches!(&e, StoreError::Db(redb::Error::Io(_) | redb::Error::PreviousIo));
        if io {
            let mut guard = match self.failure.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            if guard.is_none() {
                *guard = Some(e.to_string());
                self.failures.fetch_add(1, Ordering::Relaxed);
            }
            drop(guard);
            self.failed.notify_waiters();
        }
        e
    }

    /// The data version: changes after every versioned commit.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::SeqCst)
    }

    /// Closes the file cleanly, reporting any error.
    pub fn close(self) -> StoreResult<()> {
        let handle = match self.db.into_inner() {
            Ok(h) => h,
            Err(p) => p.into_inner(),
        };
        match handle.map(Arc::try_unwrap) {
            Some(Ok(h)) => h.close(),
            Some(Err(_)) => Err(StoreError::Conflict("the data file is still in use".into())),
            None => Ok(()),
        }
    }
}

/// Free bytes for unprivileged users on the filesystem holding `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
        // SAFETY: statvfs is plain old data; all-zero is a valid value.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs.
        if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
            return None;
        }
        Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// Creates a directory (and parents) readable by the owner only: the data
/// directory holds credentials.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

/// Creates `path` as an empty owner-only (0600) file if it does not exist,
/// and tightens an existing one to 0600.
pub fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let file = opts.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// A data file as `backup` (and library readers) see it: read without ever
/// being written.
pub enum Snapshot {
    /// Opened read-only (beside a running server, or on its own).
    ReadOnly(ReadOnlyDatabase),
    /// The file had not been closed cleanly (a crash) and no server had it
    /// open: redb can read such a file only after a writable open repairs it,
    /// so a private copy of it was repaired and is read instead. The file
    /// itself is untouched; the copy is deleted when this is dropped.
    RepairedCopy {
        db: Database,
        // After `db`, so that it is dropped (and the file deleted) last.
        copy: check::PrivateCopy,
    },
}

impl Snapshot {
    /// A consistent read transaction.
    pub fn begin_read(&self) -> StoreResult<ReadTransaction> {
        Ok(match self {
            Snapshot::ReadOnly(db) => db.begin_read()?,
            Snapshot::RepairedCopy { db, .. } => db.begin_read()?,
        })
    }

    /// What the user should know about how `path` was read, if anything.
    pub fn note(&self, path: &Path) -> Option<String> {
        match self {
            Snapshot::ReadOnly(_) => None,
            Snapshot::RepairedCopy { copy, .. } => Some(format!(
                "{} was not closed cleanly (crash or kill -9): read a recovered private copy ({}); the file itself is unchanged",
                path.display(),
                copy.path().display()
            )),
        }
    }
}

/// Opens a data file read-only, alongside a running server or on its own,
/// without ever writing to it. A file left unclean by a crash (and not open
/// elsewhere) is read through a repaired private copy ([`Snapshot::RepairedCopy`]).
pub fn open_read_only(path: &Path) -> StoreResult<Snapshot> {
    if !path.is_file() {
        return Err(StoreError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no data file at {}", path.display()),
        )));
    }
    let builder = || {
        let mut b = redb::Builder::new();
        b.set_concurrency_mode(ConcurrencyMode::SingleWriter).set_cache_size(DEFAULT_CACHE_BYTES);
        b
    };
    // A copy that a server starting meanwhile could have torn is thrown away
    // and the open retried: by then the server holds the file, and the
    // read-only open beside it works.
    for _ in 0..3 {
        match builder().open_read_only(path) {
            Ok(db) => return Ok(Snapshot::ReadOnly(db)),
            Err(redb::DatabaseError::RepairAborted) => match check::PrivateCopy::of(path) {
                Ok(copy) => {
                    let db = redb::Builder::new().set_cache_size(DEFAULT_CACHE_BYTES).open(copy.path())?;
                    return Ok(Snapshot::RepairedCopy { db, copy });
                }
                Err(check::CopyError::Changed) => continue,
                Err(e) => return Err(e.into()),
            },
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict(format!(
        "{} kept changing while it was read: is a server starting?",
        path.display()
    )))
}

/// Who issues the file's login tokens, as its last `serve` recorded.
pub fn issuer_mode(txn: &ReadTransaction) -> StoreResult<Option<String>> {
    let table = txn.open_table(META)?;
    let mode = table.get(tables::META_ISSUER_MODE)?.map(|v| String::from_utf8_lossy(v.value()).into_owned());
    Ok(mode)
}

/// Reads the meta values from any snapshot.
pub fn read_meta(txn: &ReadTransaction) -> StoreResult<Meta> {
    let table = txn.open_table(META)?;
    let get = |name: &str| -> StoreResult<Vec<u8>> {
        table
            .get(name)?
            .map(|v| v.value().to_vec())
            .ok_or_else(|| StoreError::Corrupt(format!("meta.{name} missing")))
    };
    let version: [u8; 4] = get(tables::META_SCHEMA_VERSION)?
        .try_into()
        .map_err(|_| StoreError::Corrupt("meta.schema_version".into()))?;
    let data_file_id: [u8; 16] = get(tables::META_DATA_FILE_ID)?
        .try_into()
        .map_err(|_| StoreError::Corrupt("meta.data_file_id".into()))?;
    let cursor_secret: [u8; 32] = get(tables::META_CURSOR_SECRET)?
        .try_into()
        .map_err(|_| StoreError::Corrupt("meta.cursor_secret".into()))?;
    Ok(Meta::new(u32::from_be_bytes(version), data_file_id, cursor_secret))
}
