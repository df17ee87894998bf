//! `wa-gateway check`: verifies a data file — redb's page checksums, then that
//! the gateway's tables and indexes agree — without writing to it.
//!
//! How the file is read depends on who else has it (see [`run`]):
//!
//! * No server holds it: its bytes are copied to a private file under the
//!   temp dir, and the COPY is opened for writing with redb's integrity check
//!   on open (every page checksum of the committed trees is verified, and a
//!   crashed file is recovered — in the copy). The original is only ever
//!   opened read-only; while it is copied a read-only redb handle keeps a
//!   server from opening it, so the copy cannot be torn.
//! * A server holds it: a byte copy could catch a half-written commit, so the
//!   tables are checked in one read transaction beside the server instead (a
//!   consistent snapshot), and a note says page checksums were not verified.
//! * `check --repair`: the only mode that writes. The file itself is opened for
//!   writing with the integrity check on open, which repairs what redb can.
//!
//! Nothing in here may bring the process down on a damaged file: whatever the
//! storage layer panics on is caught and reported as damage.

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use redb::{
    ConcurrencyMode, Database, DatabaseError, Key, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable,
    RepairSession, StorageError, TableDefinition, TableHandle, Value,
};
use ulid::Ulid;

use super::backup::TempPath;
use super::records::{ApiKey, Organization, Record, Session};
use super::tables::{API_KEYS, API_KEY_HASHES, ORGS, ORG_API_KEYS, ORG_SESSIONS, RUNNING, SESSIONS, STATUS_COUNTS};
use super::{read_meta, StoreError, StoreResult, DEFAULT_CACHE_BYTES, SCHEMA_VERSION};

/// At most this many problems are listed; the rest are only counted.
const MAX_PROBLEMS: usize = 50;

/// Counts and problems found by [`check`] (and by [`run`]).
#[derive(Debug, Default)]
pub struct CheckReport {
    pub schema_version: u32,
    pub organizations: u64,
    pub sessions: u64,
    pub api_keys: u64,
    /// Rows of WhatsApp protocol state (credentials, Signal keys), all sessions.
    pub whatsapp_state_rows: u64,
    /// Human-readable problems; empty means the file is consistent.
    pub problems: Vec<String>,
    /// Problems found beyond the first [`MAX_PROBLEMS`], not listed.
    pub more_problems: u64,
    /// Whether the tables were read at all: not when the file failed its
    /// page checksums (walking a damaged tree is not safe), so the counts
    /// above are then meaningless and not printed.
    pub tables_checked: bool,
}

impl CheckReport {
    /// Whether no problem was found.
    pub fn ok(&self) -> bool {
        self.problems.is_empty() && self.more_problems == 0
    }

    /// Number of problems found, listed or not.
    pub fn problem_count(&self) -> u64 {
        self.problems.len() as u64 + self.more_problems
    }

    fn problem(&mut self, p: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        } else {
            self.more_problems += 1;
        }
    }

    /// `Some(value)` for `Ok`, or `None` after recording the error as a problem:
    /// an error reading the file is something found in it, not a reason to stop.
    fn read<T, E: fmt::Display>(&mut self, what: &str, res: Result<T, E>) -> Option<T> {
        match res {
            Ok(v) => Some(v),
            Err(e) => {
                self.problem(format!("reading {what}: {e}"));
                None
            }
        }
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.tables_checked {
            writeln!(f, "schema_version: {}", self.schema_version)?;
            writeln!(f, "organizations: {}", self.organizations)?;
            writeln!(f, "sessions: {}", self.sessions)?;
            writeln!(f, "api_keys: {}", self.api_keys)?;
            writeln!(f, "whatsapp_state_rows: {}", self.whatsapp_state_rows)?;
        } else {
            writeln!(f, "tables: not read (the file failed the checks below)")?;
        }
        for p in &self.problems {
            writeln!(f, "problem: {p}")?;
        }
        if self.more_problems > 0 {
            writeln!(f, "problem: ... and {} more", self.more_problems)?;
        }
        write!(f, "{}", if self.ok() { "ok" } else { "FAILED" })
    }
}

/// Opens a table, or records why it cannot be opened.
fn open<K: Key + 'static, V: Value + 'static>(
    txn: &ReadTransaction,
    def: TableDefinition<K, V>,
    r: &mut CheckReport,
) -> Option<ReadOnlyTable<K, V>> {
    match txn.open_table(def) {
        Ok(t) => Some(t),
        Err(e) => {
            r.problem(format!("table {}: {e}", def.name()));
            None
        }
    }
}

/// Calls `f` on every row of `table`; a read error is recorded and ends the walk.
fn each<K: Key + 'static, V: Value + 'static>(
    table: &ReadOnlyTable<K, V>,
    name: &str,
    r: &mut CheckReport,
    mut f: impl FnMut(&mut CheckReport, K::SelfType<'_>, V::SelfType<'_>),
) {
    let Some(rows) = r.read(name, table.iter()) else { return };
    for row in rows {
        match row {
            Ok((k, v)) => f(r, k.value(), v.value()),
            Err(e) => {
                r.problem(format!("reading {name}: {e}"));
                return;
            }
        }
    }
}

/// Checks every record decodes and every index entry matches its record.
///
/// Never fails: a table that does not open, a row that does not read and a
/// record that does not decode are all problems in the report. (The `Result`
/// is kept for callers that already handle one.)
pub fn check(txn: &ReadTransaction) -> StoreResult<CheckReport> {
    let mut r = CheckReport::default();
    check_into(txn, &mut r);
    Ok(r)
}

/// [`check`], adding to a report that may already hold problems.
fn check_into(txn: &ReadTransaction, r: &mut CheckReport) {
    r.tables_checked = true;
    match read_meta(txn) {
        Ok(meta) => {
            r.schema_version = meta.schema_version;
            if meta.schema_version > SCHEMA_VERSION {
                r.problem(format!(
                    "schema version {} is newer than this build",
                    meta.schema_version
                ));
            }
        }
        Err(e) => r.problem(format!("meta: {e}")),
    }

    let orgs = open(txn, ORGS, r);
    if let Some(orgs) = &orgs {
        each(orgs, ORGS.name(), r, |r, k, v| {
            r.organizations += 1;
            if let Err(e) = Organization::decode(v) {
                r.problem(format!("organization {k}: {e}"));
            }
        });
    }

    let sessions = open(txn, SESSIONS, r);
    let org_sessions = open(txn, ORG_SESSIONS, r);
    let running = open(txn, RUNNING, r);
    let counts = open(txn, STATUS_COUNTS, r);
    let mut want_running = 0u64;
    let mut tally = std::collections::HashMap::new();
    if let Some(sessions) = &sessions {
        each(sessions, SESSIONS.name(), r, |r, id, v| {
            r.sessions += 1;
            let s = match Session::decode(v) {
                Ok(s) => s,
                Err(e) => return r.problem(format!("session {}: {e}", Ulid::from(id))),
            };
            let org = s.organization_id.as_str();
            if let Some(t) = &org_sessions {
                if r.read(ORG_SESSIONS.name(), t.get((org, id)))
                    .is_some_and(|g| g.is_none())
                {
                    r.problem(format!("session {} missing from org_sessions", Ulid::from(id)));
                }
            }
            if let Some(t) = &orgs {
                if r.read(ORGS.name(), t.get(org)).is_some_and(|g| g.is_none()) {
                    r.problem(format!("session {} names unknown organization {org}", Ulid::from(id)));
                }
            }
            *tally.entry(s.status.as_str()).or_insert(0u64) += 1;
            if s.desired_running {
                want_running += 1;
                if let Some(t) = &running {
                    if r.read(RUNNING.name(), t.get(id)).is_some_and(|g| g.is_none()) {
                        r.problem(format!(
                            "session {} should run but is not in running_sessions",
                            Ulid::from(id)
                        ));
                    }
                }
            }
        });
    }
    if let (Some(running), Some(_)) = (&running, &sessions) {
        let mut listed = 0u64;
        each(running, RUNNING.name(), r, |_, _, _| listed += 1);
        if listed != want_running {
            r.problem("running_sessions names sessions not meant to run".into());
        }
    }
    if let (Some(counts), Some(_)) = (&counts, &sessions) {
        for st in crate::store::records::SessionStatus::ALL {
            let Some(stored) = r.read(STATUS_COUNTS.name(), counts.get(st.as_str())) else {
                continue;
            };
            let stored = stored.map_or(0, |v| v.value());
            let real = tally.get(st.as_str()).copied().unwrap_or(0);
            if stored != real {
                r.problem(format!(
                    "session_status_counts says {stored} {} sessions, there are {real}",
                    st.as_str()
                ));
            }
        }
    }
    match crate::engine::whatsapp::tables::rows_per_session(txn) {
        Ok(per_session) => {
            for (session, rows) in per_session {
                r.whatsapp_state_rows += rows;
                if let Some(t) = &sessions {
                    if r.read(SESSIONS.name(), t.get(session)).is_some_and(|g| g.is_none()) {
                        r.problem(format!(
                            "{rows} wa_state rows belong to no session ({})",
                            Ulid::from(session)
                        ));
                    }
                }
            }
        }
        Err(e) => r.problem(format!("wa_state: {e}")),
    }
    if let (Some(org_sessions), Some(sessions)) = (&org_sessions, &sessions) {
        let mut indexed = 0u64;
        each(org_sessions, ORG_SESSIONS.name(), r, |r, (org, id), ()| {
            indexed += 1;
            let owner = r
                .read(SESSIONS.name(), sessions.get(id))
                .flatten()
                .and_then(|v| Session::decode(v.value()).ok())
                .map(|s| s.organization_id);
            if owner.as_deref() != Some(org) {
                r.problem(format!(
                    "org_sessions ({org}, {}) has no matching session",
                    Ulid::from(id)
                ));
            }
        });
        if indexed != r.sessions {
            r.problem(format!(
                "org_sessions has {indexed} entries for {} sessions",
                r.sessions
            ));
        }
    }

    let keys = open(txn, API_KEYS, r);
    let hashes = open(txn, API_KEY_HASHES, r);
    let org_keys = open(txn, ORG_API_KEYS, r);
    if let Some(keys) = &keys {
        each(keys, API_KEYS.name(), r, |r, id, v| {
            r.api_keys += 1;
            let key = match ApiKey::decode(v) {
                Ok(key) => key,
                Err(e) => return r.problem(format!("api-key {}: {e}", Ulid::from(id))),
            };
            if let Some(t) = &hashes {
                let found = r.read(API_KEY_HASHES.name(), t.get(key.hash.as_slice()));
                if found.is_some_and(|g| g.map(|v| v.value()) != Some(id)) {
                    r.problem(format!("api-key {} missing from api_key_hashes", Ulid::from(id)));
                }
            }
            if let Some(t) = &org_keys {
                let found = r.read(ORG_API_KEYS.name(), t.get((key.organization_id.as_str(), id)));
                if found.is_some_and(|g| g.is_none()) {
                    r.problem(format!("api-key {} missing from org_api_keys", Ulid::from(id)));
                }
            }
        });
    }
    if let (Some(hashes), Some(_)) = (&hashes, &keys) {
        let mut n = 0u64;
        each(hashes, API_KEY_HASHES.name(), r, |_, _, _| n += 1);
        if n != r.api_keys {
            r.problem(format!("api_key_hashes has {n} entries for {} api-keys", r.api_keys));
        }
    }
    if let (Some(org_keys), Some(_)) = (&org_keys, &keys) {
        let mut n = 0u64;
        each(org_keys, ORG_API_KEYS.name(), r, |_, _, _| n += 1);
        if n != r.api_keys {
            r.problem(format!("org_api_keys has {n} entries for {} api-keys", r.api_keys));
        }
    }
}

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
