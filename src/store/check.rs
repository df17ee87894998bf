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

use redb::{Key, ReadOnlyTable, ReadTransaction, ReadableTable, TableDefinition, TableHandle, Value};
use ulid::Ulid;

use super::records::{ApiKey, Organization, Record, Session};
use super::tables::{API_KEYS, API_KEY_HASHES, ORGS, ORG_API_KEYS, ORG_SESSIONS, RUNNING, SESSIONS, STATUS_COUNTS};
use super::{read_meta, StoreResult, SCHEMA_VERSION};

mod groups;
mod contacts;
mod media;
mod messaging;
mod run;
mod usage;
mod webhooks;
pub use run::{guarded, quiet_panics, run, CheckError, CheckMode, CheckRun, CopyError, PrivateCopy};

/// At most this many problems are listed; the rest are only counted.
const MAX_PROBLEMS: usize = 50;

/// Counts and problems found by [`check`] (and by [`run`]).
#[derive(Debug, Default)]
pub struct CheckReport {
    pub schema_version: u32,
    pub organizations: u64,
    pub sessions: u64,
    pub api_keys: u64,
    pub messages: u64,
    pub events: u64,
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
            writeln!(f, "messages: {}", self.messages)?;
            writeln!(f, "events: {}", self.events)?;
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

/// Opens a table that a file from before it was added lacks: missing is
/// simply empty (not a problem); any other failure is recorded.
fn open_optional<K: Key + 'static, V: Value + 'static>(
    txn: &ReadTransaction,
    def: TableDefinition<K, V>,
    r: &mut CheckReport,
) -> Option<ReadOnlyTable<K, V>> {
    match txn.open_table(def) {
        Err(redb::TableError::TableDoesNotExist(_)) => None,
        _ => open(txn, def, r),
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
    match crate::store::wa_state::rows_per_session(txn) {
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
    messaging::check_messaging(txn, r);
    usage::check_usage(txn, r);
    contacts::check_contacts(txn, r);
    media::check_media(txn, r);
    webhooks::check_webhooks(txn, r);
    groups::check_groups(txn, r);
}

