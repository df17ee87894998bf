//! Recovery from a full disk, in-process (CONTRACT §11, "§11 (continued)").
//!
//! What redb 4.6 does, measured on a small tmpfs (see the README's disk
//! section): once a write fails with an I/O error (ENOSPC), the `Database`
//! refuses every later write *and read* (`PreviousIo`) until the file is
//! reopened; closing it releases the file lock at once (or at the end of a
//! write transaction still alive). A file not closed cleanly cannot be opened
//! read-only (`RepairAborted`), but its writable open repairs it in memory
//! and succeeds even on a full disk; only the first write then fails again.
//!
//! So the store never makes the process exit over a full disk:
//! - at start, a writable open whose schema upgrade (a write) fails for
//!   lack of space is reopened and served read-only in effect (writes
//!   refused), provided the file already has this build's schema; if even
//!   the writable open fails, a clean file is opened read-only;
//! - after an I/O failure the handle is swapped for a fresh one at once, so
//!   reads keep working (a reader in the middle of the swap gets a clean 503);
//! - writes stay refused until free space looks sufficient again and the
//!   backoff of [`retry_after`] has passed; a write that fails again starts
//!   the cycle over with a longer wait;
//! - every time writes work again (after the floor or after a failure) the
//!   store's `writes_back` counter is bumped: sessions that could not start
//!   and inbound events that were held are retried on it.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use redb::{ConcurrencyMode, Database, ReadOnlyDatabase, ReadTransaction, ReadableDatabase, WriteTransaction};

use super::{read_meta, tables, Meta, Store, StoreError, StoreResult, SCHEMA_VERSION};

/// Free bytes needed (beyond `--min-free-disk`) before writes are tried
/// again after an I/O failure: with `--min-free-disk 0` a disk that is
/// still full must not be written into again at once.
pub const RESUME_FREE_BYTES: u64 = 4 << 20;

/// How often free space is checked: while writes are refused, and to
/// notice the disk crossing the floor either way.
pub const POLL: Duration = Duration::from_millis(250);

/// The open database: writable, or read-only when only that open succeeded
/// (a clean file on a disk so full that even the writable open failed).
pub enum Handle {
    Rw(Database),
    Ro(ReadOnlyDatabase),
}

impl Handle {
    /// A read transaction.
    pub fn begin_read(&self) -> StoreResult<ReadTransaction> {
        Ok(match self {
            Handle::Rw(db) => db.begin_read()?,
            Handle::Ro(db) => db.begin_read()?,
        })
    }

    /// A write transaction (refused on a read-only handle).
    pub fn begin_write(&self) -> StoreResult<WriteTransaction> {
        match self {
            Handle::Rw(db) => Ok(db.begin_write()?),
            Handle::Ro(_) => Err(StoreError::Failed("the data file is open read-only until space returns".into())),
        }
    }

    /// Closes the file, reporting any error.
    pub fn close(self) -> StoreResult<()> {
        match self {
            Handle::Rw(db) => Ok(db.close()?),
            Handle::Ro(db) => Ok(db.close()?),
        }
    }
}

/// Opens the file writable, or read-only if that fails for a reason other
/// than another process holding it.
fn open_handle(path: &Path, cache_bytes: usize) -> StoreResult<Handle> {
    let rw = redb::Builder::new()
        .set_concurrency_mode(ConcurrencyMode::SingleWriter)
        .set_cache_size(cache_bytes)
        .create(path);
    match rw {
        Ok(db) => Ok(Handle::Rw(db)),
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => Err(StoreError::Conflict(format!(
            "{} is already open in another process: is another wa-gateway serving this data directory?",
            path.display()
        ))),
        Err(e) => {
            let ro = redb::Builder::new()
                .set_concurrency_mode(ConcurrencyMode::SingleWriter)
                .set_cache_size(cache_bytes)
                .open_read_only(path);
            match ro {
                Ok(db) => {
                    tracing::warn!(error = %e, "the data file could not be opened for writing: serving it read-only until it can");
                    Ok(Handle::Ro(db))
                }
                Err(_) => Err(e.into()),
            }
        }
    }
}

/// Whether `e` is an I/O error from redb (a full disk, typically).
fn is_io(e: &StoreError) -> bool {
    matches!(e, StoreError::Db(redb::Error::Io(_) | redb::Error::PreviousIo))
}

/// Opens the file for `serve`: the handle, its meta values, and why writes
/// are refused from the start (`None`: they are not).
pub(super) fn open_for_serving(path: &Path, cache_bytes: usize) -> StoreResult<(Handle, Meta, Option<String>)> {
    let handle = open_handle(path, cache_bytes)?;
    let upgraded = match &handle {
        Handle::Rw(db) => tables::migrate(db),
        Handle::Ro(_) => Err(StoreError::Failed("the data file is open read-only until space returns".into())),
    };
    let (handle, why) = match upgraded {
        Ok(meta) => return Ok((handle, meta, None)),
        Err(e) if is_io(&e) || matches!(e, StoreError::Failed(_)) => {
            // The handle refuses reads after an I/O error: a fresh one.
            let handle = match handle {
                Handle::Rw(db) => {
                    drop(db);
                    open_handle(path, cache_bytes)?
                }
                ro => ro,
            };
            (handle, e)
        }
        Err(e) => return Err(e),
    };
    let meta = read_meta(&handle.begin_read()?).map_err(|_| why_not(&why))?;
    if meta.schema_version != SCHEMA_VERSION {
        return Err(why_not(&why));
    }
    tracing::warn!(error = %why, "the data file cannot be written now (disk full?): serving reads; writes resume once space returns");
    Ok((handle, meta, Some(why.to_string())))
}

/// The open's own error, when the file cannot even be served read-only.
fn why_not(e: &StoreError) -> StoreError {
    StoreError::Failed(format!("the data file needs a write before it can be served, and {e}"))
}

/// How long after the `failures`-th I/O failure in a row writes are tried
/// again (once space looks sufficient): 1 s, doubling, at most 60 s. A pure
/// rule, so that it is property-tested; the clock is the caller's.
pub fn retry_after(failures: u64) -> Duration {
    let exp = failures.saturating_sub(1).min(6) as u32;
    Duration::from_secs(1u64 << exp).min(Duration::from_secs(60))
}

impl Store {
    /// Swaps the handle for a freshly opened one: the old one is closed
    /// first (redb holds a file lock), retried until it is. Reads during
    /// the swap answer [`StoreError::Failed`]. Blocking.
    pub fn reopen(&self) -> StoreResult<()> {
        let old = match self.db.write() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(mut old) = old {
            // Readers hold a clone only while they begin a transaction.
            let started = std::time::Instant::now();
            loop {
                match Arc::try_unwrap(old) {
                    Ok(h) => {
                        // A poisoned handle reports its old error on close.
                        let _ = h.close();
                        break;
                    }
                    Err(still) if started.elapsed() < Duration::from_secs(5) => {
                        old = still;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err(still) => {
                        // Dropped by its last user; the open below waits for that.
                        drop(still);
                        break;
                    }
                }
            }
        }
        let mut last = None;
        for _ in 0..200 {
            match open_handle(&self.path, self.cache_bytes) {
                Ok(h) => {
                    match self.db.write() {
                        Ok(mut g) => *g = Some(Arc::new(h)),
                        Err(p) => *p.into_inner() = Some(Arc::new(h)),
                    }
                    return Ok(());
                }
                // A write transaction still alive defers the old close.
                Err(e @ StoreError::Conflict(_)) => {
                    last = Some(e);
                    std::thread::sleep(Duration::from_millis(25));
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| StoreError::Failed("the data file could not be reopened".into())))
    }

    /// Whether the open handle is writable (not read-only, not mid-swap).
    fn handle_writable(&self) -> bool {
        self.handle().is_ok_and(|h| matches!(*h, Handle::Rw(_)))
    }

    /// Clears the failure latch: writes are tried again.
    fn clear_failure(&self) {
        match self.failure.lock() {
            Ok(mut g) => *g = None,
            Err(p) => *p.into_inner() = None,
        }
    }
}

/// What one recovery round decided.
enum Step {
    /// Nothing refused, or nothing to do yet.
    Idle,
    /// The handle must be swapped for a fresh one.
    Reopen,
}

/// Keeps the store serving through a full disk, until the store is dropped:
/// reopens the file after an I/O failure (at once, for reads), lets writes
/// be tried again once space looks sufficient and the backoff has passed,
/// and bumps `writes_back` whenever writes work again. Runs on the tokio
/// runtime; the blocking reopen runs on the blocking pool.
pub async fn watch(store: Weak<Store>) {
    let mut was_writable = store.upgrade().is_some_and(|s| s.writable());
    // When the current failure was latched (for the backoff), and whether
    // the handle was swapped since.
    let mut failed_at: Option<(std::time::Instant, bool)> = None;
    loop {
        let Some(s) = store.upgrade() else { return };
        let step = match (s.failure(), failed_at) {
            (None, _) => {
                failed_at = None;
                Step::Idle
            }
            (Some(_), None) => {
                failed_at = Some((std::time::Instant::now(), false));
                Step::Reopen
            }
            (Some(_), Some((at, swapped))) => {
                let enough = s.free_bytes().is_none_or(|f| f >= s.min_free_disk().saturating_add(RESUME_FREE_BYTES));
                let waited = at.elapsed() >= retry_after(s.failures.load(Ordering::Relaxed));
                if !swapped || (!s.handle_writable() && enough && waited) {
                    // Once at once (for reads); a read-only handle again
                    // only when a writable open may succeed.
                    Step::Reopen
                } else if !s.handle_writable() {
                    Step::Idle
                } else {
                    if enough && waited {
                        tracing::info!("space is back on the data file's disk: writes resume");
                        s.clear_failure();
                        failed_at = None;
                    }
                    Step::Idle
                }
            }
        };
        if let Step::Reopen = step {
            let st = s.clone();
            match tokio::task::spawn_blocking(move || st.reopen()).await {
                Ok(Ok(())) => {
                    if let Some((at, _)) = failed_at {
                        failed_at = Some((at, true));
                    }
                    tracing::info!("data file reopened after an I/O error: reads are served, writes wait for space");
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "could not reopen the data file yet"),
                Err(e) => tracing::warn!(error = %e, "reopen task failed"),
            }
        }
        let now_writable = s.writable();
        if now_writable && !was_writable {
            s.writes_back.send_modify(|n| *n += 1);
        }
        was_writable = now_writable;
        // Not held across the wait: a shutdown takes the store back.
        let failed = s.failed.clone();
        drop(s);
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = failed.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The wait never shrinks as failures pile up, is at least 1 s and
        /// at most 60 s, over any run of failures.
        #[test]
        fn retry_after_grows_and_is_bounded(n in 0u64..10_000) {
            let a = retry_after(n);
            let b = retry_after(n + 1);
            prop_assert!(a <= b);
            prop_assert!(a >= Duration::from_secs(1));
            prop_assert!(b <= Duration::from_secs(60));
        }
    }

    #[test]
    fn retry_after_first_steps() {
        assert_eq!(retry_after(1), Duration::from_secs(1));
        assert_eq!(retry_after(2), Duration::from_secs(2));
        assert_eq!(retry_after(100), Duration::from_secs(60));
    }
}
