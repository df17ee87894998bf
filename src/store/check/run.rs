//! How `check` reads a file without writing to it: who holds it, the private
//! copy, redb's integrity check on open, `--repair`, and the guard that turns
//! a storage-layer panic into reported damage (see [`super`] for the map).

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use redb::{ConcurrencyMode, Database, DatabaseError, ReadableDatabase, RepairSession, StorageError};
use ulid::Ulid;

use super::super::backup::TempPath;
use super::super::{StoreError, DEFAULT_CACHE_BYTES};
use super::{check_into, CheckReport};

// ---------------------------------------------------------------- panics

/// The last panic's message and location, recorded by the hook
/// [`quiet_panics`] installs, for [`guarded`] to report.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Replaces the panic hook with one that prints nothing and only records the
/// message: `check` reports what the storage layer panics on as damage, and a
/// backtrace on stderr would read as a crash of the check itself.
pub fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!(" (at {}:{})", l.file(), l.line()))
            .unwrap_or_default();
        let msg = format!("{}{at}", payload_text(info.payload()));
        if let Ok(mut slot) = LAST_PANIC.lock() {
            *slot = Some(msg);
        }
    }));
}

/// The text of a panic payload (`panic!` passes a `&str` or a `String`).
fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

/// Runs `f`, returning what it panicked with instead of unwinding further:
/// redb documents that opening a file corrupted outside redb may panic.
pub fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        LAST_PANIC
            .lock()
            .ok()
            .and_then(|mut slot| slot.take())
            .unwrap_or_else(|| payload_text(payload.as_ref()))
    })
}

// ---------------------------------------------------------------- private copies

/// Why [`PrivateCopy::of`] made no copy.
#[derive(Debug)]
pub enum CopyError {
    /// The file changed while it was being copied (a server opened it): the
    /// copy could be torn, so it was thrown away. Retrying is safe.
    Changed,
    /// Reading the file or writing the copy failed.
    Io(std::io::Error),
}

impl From<CopyError> for StoreError {
    fn from(e: CopyError) -> Self {
        match e {
            CopyError::Changed => StoreError::Conflict("the data file changed while it was being copied".into()),
            CopyError::Io(e) => StoreError::Io(e),
        }
    }
}

/// A byte-for-byte copy of a data file in the temp dir (owner-only), deleted
/// when dropped. It exists so that redb can repair and verify a file — which
/// needs a writable open — without the original ever being written.
pub struct PrivateCopy {
    tmp: TempPath,
}

/// What a file looked like, to tell whether it changed during a copy.
fn stamp(f: &File) -> std::io::Result<(u64, Option<SystemTime>)> {
    let m = f.metadata()?;
    Ok((m.len(), m.modified().ok()))
}

impl PrivateCopy {
    /// Copies `src` into a new private file under [`std::env::temp_dir`].
    /// `src` is opened read-only. Fails with [`CopyError::Changed`] if its
    /// length or modification time changed during the copy.
    pub fn of(src: &Path) -> Result<PrivateCopy, CopyError> {
        let io = |what: String| {
            move |e: std::io::Error| CopyError::Io(std::io::Error::new(e.kind(), format!("{what}: {e}")))
        };
        let mut from = File::open(src).map_err(io(format!("cannot read {}", src.display())))?;
        let before = stamp(&from).map_err(io(format!("cannot read {}", src.display())))?;
        let name = format!("wa-gateway-check-{}.redb", Ulid::generate());
        let dest = std::env::temp_dir().join(name);
        let hint = format!(
            "cannot copy {} to {} (set TMPDIR to a roomier place)",
            src.display(),
            dest.display()
        );
        let (tmp, mut to) = TempPath::create_new(dest).map_err(io(hint.clone()))?;
        let copied = std::io::copy(&mut from, &mut to).map_err(io(hint.clone()))?;
        to.flush().map_err(io(hint))?;
        let after = stamp(&from).map_err(io(format!("cannot read {}", src.display())))?;
        if before != after || copied != before.0 {
            return Err(CopyError::Changed);
        }
        Ok(PrivateCopy { tmp })
    }

    /// Where the copy is.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }
}

// ---------------------------------------------------------------- the command

/// How [`run`] treats the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckMode {
    /// Never writes the file (the default).
    ReadOnly,
    /// `check --repair`: opens the file for writing, so redb recovers it after
    /// a crash and repairs what its integrity check can, in place.
    Repair,
}

/// Why [`run`] gave no verdict on the file.
#[derive(Debug)]
pub enum CheckError {
    /// The file cannot be read as a data file at all: missing, empty, not a
    /// redb file, an I/O error. `check` exits 1.
    Unreadable(StoreError),
    /// The check could not run as asked: a server holds the file that
    /// `--repair` would write, or the file kept changing. `check` exits 2.
    Refused(String),
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::Unreadable(e) => write!(f, "{e}"),
            CheckError::Refused(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for CheckError {}

/// What [`run`] found.
#[derive(Debug, Default)]
pub struct CheckRun {
    /// Remarks that are not failures (a server holds the file, it was not
    /// closed cleanly, it was repaired), for stderr.
    pub notes: Vec<String>,
    pub report: CheckReport,
}

/// Redb's repair callback reports progress 0.3 only after it found that the
/// newest commit fails its checksums and before it falls back to the previous
/// one (redb db.rs `do_repair`); this records whether that happened.
fn fallback_detector() -> (Arc<AtomicBool>, impl Fn(&mut RepairSession) + 'static) {
    let fell_back = Arc::new(AtomicBool::new(false));
    let flag = fell_back.clone();
    (fell_back, move |s: &mut RepairSession| {
        if s.progress() > 0.0 && s.progress() < 0.5 {
            flag.store(true, Ordering::SeqCst);
        }
    })
}

/// A read-only open in redb's default `ExclusiveWriter` mode. It fails with
/// `DatabaseAlreadyOpen` while a (`SingleWriter`) server holds the file, and
/// while it is open no server can open the file: that is what tells `check`
/// whether a byte copy is safe, and keeps it safe during the copy.
fn probe(path: &Path) -> Result<redb::ReadOnlyDatabase, DatabaseError> {
    redb::Builder::new()
        .set_cache_size(DEFAULT_CACHE_BYTES)
        .open_read_only(path)
}

/// Whether a probe's error says the file is not a redb file (or cannot be
/// read at all), rather than a damaged one.
fn unreadable(e: &DatabaseError) -> bool {
    matches!(
        e,
        DatabaseError::Storage(StorageError::Io(_)) | DatabaseError::UpgradeRequired(_)
    )
}

/// The file `check` is about: it must exist, be a file and not be empty.
fn require_data_file(path: &Path) -> Result<(), CheckError> {
    let not_found =
        |m: String| CheckError::Unreadable(StoreError::Io(std::io::Error::new(std::io::ErrorKind::NotFound, m)));
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => Err(not_found(format!("{} is not a file", path.display()))),
        Ok(m) if m.len() == 0 => Err(CheckError::Unreadable(StoreError::Corrupt(format!(
            "{} is empty: not a gateway data file",
            path.display()
        )))),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(not_found(format!("no data file at {}", path.display())))
        }
        Err(e) => Err(CheckError::Unreadable(StoreError::Io(e))),
    }
}

/// Reads the tables of `db` in one read transaction into `r`, catching panics.
fn check_tables(db: &impl ReadableDatabase, r: &mut CheckReport) {
    match guarded(|| db.begin_read().map(|txn| check_into(&txn, r))) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => r.problem(format!("cannot start a read transaction: {e}")),
        Err(panic) => r.problem(format!("reading the tables panicked in the storage layer: {panic}")),
    }
}

/// Verifies a private copy: redb's integrity check on open (page checksums of
/// every committed tree, recovery of a crashed file), then the table checks.
/// `unclean` says the original was not closed cleanly, where a rolled-back
/// last commit is crash recovery rather than damage.
fn verify_copy(copy: &PrivateCopy, unclean: bool, run: &mut CheckRun) {
    let (fell_back, callback) = fallback_detector();
    let opened = guarded(|| {
        redb::Builder::new()
            .set_cache_size(DEFAULT_CACHE_BYTES)
            .set_check_integrity_on_open(true)
            .set_repair_callback(callback)
            .open(copy.path())
    });
    let r = &mut run.report;
    let db = match opened {
        Ok(Ok(db)) => db,
        Ok(Err(e)) => return r.problem(format!("integrity check failed: {e}")),
        Err(panic) => return r.problem(format!("integrity check panicked in the storage layer: {panic}")),
    };
    if fell_back.load(Ordering::SeqCst) {
        if unclean {
            run.notes
                .push("the last commit was incomplete (interrupted by the crash); recovery rolls it back".into());
        } else {
            r.problem(
                "the newest commit fails its page checksums: redb would roll the file back to the commit before it"
                    .into(),
            );
        }
    }
    check_tables(&db, r);
    // Closing writes to the copy only; a failure there says nothing new.
    let _ = guarded(move || db.close());
}

/// Checks the tables beside the server that holds the file, in one read
/// transaction. `Ok(false)` if the file could not be opened that way after
/// all (the server went away meanwhile): the caller starts over.
fn check_live(path: &Path, run: &mut CheckRun) -> Result<bool, CheckError> {
    let opened = guarded(|| {
        redb::Builder::new()
            .set_concurrency_mode(ConcurrencyMode::SingleWriter)
            .set_cache_size(DEFAULT_CACHE_BYTES)
            .open_read_only(path)
    });
    match opened {
        Ok(Ok(db)) => {
            check_tables(&db, &mut run.report);
            run.notes.push(format!(
                "{} is open in a running server: checked one consistent read snapshot of its tables; \
                 page checksums are verified only when no server holds the file (stop it, or check a backup)",
                path.display()
            ));
            Ok(true)
        }
        Ok(Err(DatabaseError::RepairAborted)) => Ok(false),
        // Held by a writer that shares the file with nobody: not a gateway server.
        Ok(Err(DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch)) => {
            Err(CheckError::Refused(format!(
                "{} is open for writing in another process that does not share it (not a wa-gateway server): stop it first",
                path.display()
            )))
        }
        Ok(Err(e)) if unreadable(&e) => Err(CheckError::Unreadable(e.into())),
        Ok(Err(e)) => {
            run.report
                .problem(format!("the file does not open beside the server: {e}"));
            Ok(true)
        }
        Err(panic) => {
            run.report
                .problem(format!("opening the file panicked in the storage layer: {panic}"));
            Ok(true)
        }
    }
}

/// The note for a file a crash left unclean.
fn unclean_note(path: &Path) -> String {
    format!(
        "{} was not closed cleanly (crash or kill -9): checked a recovered private copy, the file itself is unchanged; \
         the server recovers it when it next starts (or run `wa-gateway check --repair` with the server stopped)",
        path.display()
    )
}

/// `wa-gateway check`: checks the data file at `path` as `mode` says.
pub fn run(path: &Path, mode: CheckMode) -> Result<CheckRun, CheckError> {
    require_data_file(path)?;
    match mode {
        CheckMode::ReadOnly => run_read_only(path),
        CheckMode::Repair => run_repair(path),
    }
}

/// `check` without `--repair`: the file is only ever opened read-only.
fn run_read_only(path: &Path) -> Result<CheckRun, CheckError> {
    // Each pass either reaches a verdict or finds that the file changed under
    // it (a server started or stopped), and then starts over.
    for _ in 0..4 {
        let mut run = CheckRun::default();
        let (copied, unclean) = match guarded(|| probe(path)) {
            Ok(Ok(held)) => {
                // Cleanly closed, and no server can open it while `held` lives.
                let copied = PrivateCopy::of(path);
                drop(held);
                (copied, false)
            }
            Ok(Err(DatabaseError::DatabaseAlreadyOpen)) => {
                if check_live(path, &mut run)? {
                    return Ok(run);
                } else {
                    continue;
                }
            }
            Ok(Err(DatabaseError::LockProtocolMismatch)) => {
                return Err(CheckError::Refused(format!(
                    "{} is open in a process using another version of the storage layer",
                    path.display()
                )))
            }
            Ok(Err(DatabaseError::RepairAborted)) => {
                run.notes.push(unclean_note(path));
                (PrivateCopy::of(path), true)
            }
            Ok(Err(e)) if unreadable(&e) => {
                return Err(CheckError::Unreadable(StoreError::Corrupt(format!(
                    "{} is not a gateway data file: {e}",
                    path.display()
                ))))
            }
            Ok(Err(e)) => {
                // The server's own open would fail the same way.
                run.report.problem(format!("the file does not open: {e}"));
                (PrivateCopy::of(path), false)
            }
            Err(panic) => {
                run.report
                    .problem(format!("opening the file panicked in the storage layer: {panic}"));
                (PrivateCopy::of(path), false)
            }
        };
        let copy = match copied {
            Ok(copy) => copy,
            Err(CopyError::Changed) => continue,
            Err(CopyError::Io(e)) => return Err(CheckError::Unreadable(StoreError::Io(e))),
        };
        verify_copy(&copy, unclean, &mut run);
        return Ok(run);
    }
    Err(CheckError::Refused(format!(
        "{} kept changing while it was checked: is a server starting or stopping?",
        path.display()
    )))
}

/// `check --repair`: opens the file itself for writing, with redb's
/// integrity check on open, refusing while a server holds it.
fn run_repair(path: &Path) -> Result<CheckRun, CheckError> {
    let mut run = CheckRun::default();
    let held_elsewhere = || {
        CheckError::Refused(format!(
            "{} is open in a running server: stop it before `check --repair` (a plain `check` works beside it)",
            path.display()
        ))
    };
    let unclean = match guarded(|| probe(path)) {
        Ok(Ok(db)) => {
            drop(db);
            false
        }
        Ok(Err(DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch)) => {
            return Err(held_elsewhere())
        }
        Ok(Err(DatabaseError::RepairAborted)) => true,
        Ok(Err(e)) if unreadable(&e) => {
            return Err(CheckError::Unreadable(StoreError::Corrupt(format!(
                "{} is not a gateway data file: {e}",
                path.display()
            ))))
        }
        Ok(Err(e)) => {
            run.notes.push(format!("a plain open fails ({e}); repairing"));
            false
        }
        Err(panic) => {
            run.notes
                .push(format!("a plain open panics in the storage layer ({panic}); repairing"));
            false
        }
    };
    let (fell_back, callback) = fallback_detector();
    let opened = guarded(|| {
        redb::Builder::new()
            .set_concurrency_mode(ConcurrencyMode::SingleWriter)
            .set_cache_size(DEFAULT_CACHE_BYTES)
            .set_check_integrity_on_open(true)
            .set_repair_callback(callback)
            .open(path)
    });
    let db: Database = match opened {
        Ok(Ok(db)) => db,
        Ok(Err(DatabaseError::DatabaseAlreadyOpen)) => return Err(held_elsewhere()),
        Ok(Err(e)) => {
            run.report
                .problem(format!("cannot repair the file: {e} (restore a backup)"));
            return Ok(run);
        }
        Err(panic) => {
            run.report.problem(format!(
                "repairing panicked in the storage layer: {panic} (restore a backup)"
            ));
            return Ok(run);
        }
    };
    if unclean {
        run.notes.push(format!(
            "{} was not closed cleanly (crash or kill -9): recovered it in place",
            path.display()
        ));
    }
    if fell_back.load(Ordering::SeqCst) {
        run.notes
            .push("the newest commit failed its page checksums and was rolled back to the commit before it".into());
    }
    run.notes.push(format!(
        "verified the page checksums of {} and rewrote its allocator state",
        path.display()
    ));
    check_tables(&db, &mut run.report);
    match guarded(move || db.close()) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => run.report.problem(format!("closing the repaired file: {e}")),
        Err(panic) => run
            .report
            .problem(format!("closing the repaired file panicked: {panic}")),
    }
    Ok(run)
}
