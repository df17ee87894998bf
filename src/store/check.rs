//! `wa-gateway check`: verifies that a data file's tables and indexes agree.

use std::fmt;

use redb::{ReadTransaction, ReadableTable};
use ulid::Ulid;

use super::records::{ApiKey, Organization, Record, Session};
use super::tables::{API_KEYS, API_KEY_HASHES, ORGS, ORG_API_KEYS, ORG_SESSIONS, RUNNING, SESSIONS, STATUS_COUNTS};
use super::{read_meta, StoreResult, SCHEMA_VERSION};

/// Counts and problems found by [`check`].
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
}

impl CheckReport {
    /// Whether no problem was found.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, p: String) {
        if self.problems.len() < 50 {
            self.problems.push(p);
        }
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "schema_version: {}", self.schema_version)?;
        writeln!(f, "organizations: {}", self.organizations)?;
        writeln!(f, "sessions: {}", self.sessions)?;
        writeln!(f, "api_keys: {}", self.api_keys)?;
        writeln!(f, "whatsapp_state_rows: {}", self.whatsapp_state_rows)?;
        for p in &self.problems {
            writeln!(f, "problem: {p}")?;
        }
        write!(f, "{}", if self.ok() { "ok" } else { "FAILED" })
    }
}

/// Checks every record decodes and every index entry matches its record.
pub fn check(txn: &ReadTransaction) -> StoreResult<CheckReport> {
    let mut r = CheckReport::default();
    match read_meta(txn) {
        Ok(meta) => {
            r.schema_version = meta.schema_version;
            if meta.schema_version > SCHEMA_VERSION {
                r.problem(format!("schema version {} is newer than this build", meta.schema_version));
            }
        }
        Err(e) => r.problem(format!("meta: {e}")),
    }

    let orgs = txn.open_table(ORGS)?;
    for row in orgs.iter()? {
        let (k, v) = row?;
        r.organizations += 1;
        if let Err(e) = Organization::decode(v.value()) {
            r.problem(format!("organization {}: {e}", k.value()));
        }
    }

    let sessions = txn.open_table(SESSIONS)?;
    let org_sessions = txn.open_table(ORG_SESSIONS)?;
    for row in sessions.iter()? {
        let (k, v) = row?;
        r.sessions += 1;
        let id = k.value();
        match Session::decode(v.value()) {
            Ok(s) => {
                let org = s.organization_id.as_str();
                if org_sessions.get((org, id))?.is_none() {
                    r.problem(format!("session {} missing from org_sessions", Ulid::from(id)));
                }
                if orgs.get(org)?.is_none() {
                    r.problem(format!("session {} names unknown organization {org}", Ulid::from(id)));
                }
            }
            Err(e) => r.problem(format!("session {}: {e}", Ulid::from(id))),
        }
    }
    let running = txn.open_table(RUNNING)?;
    let counts = txn.open_table(STATUS_COUNTS)?;
    let mut want_running = 0u64;
    let mut tally = std::collections::HashMap::new();
    for row in sessions.iter()? {
        let (k, v) = row?;
        if let Ok(s) = Session::decode(v.value()) {
            *tally.entry(s.status.as_str()).or_insert(0u64) += 1;
            if s.desired_running {
                want_running += 1;
                if running.get(k.value())?.is_none() {
                    r.problem(format!("session {} should run but is not in running_sessions", Ulid::from(k.value())));
                }
            }
        }
    }
    if running.iter()?.count() as u64 != want_running {
        r.problem("running_sessions names sessions not meant to run".into());
    }
    for st in crate::store::records::SessionStatus::ALL {
        let stored = counts.get(st.as_str())?.map_or(0, |v| v.value());
        let real = tally.get(st.as_str()).copied().unwrap_or(0);
        if stored != real {
            r.problem(format!("session_status_counts says {stored} {} sessions, there are {real}", st.as_str()));
        }
    }
    for (session, rows) in crate::engine::whatsapp::tables::rows_per_session(txn)? {
        r.whatsapp_state_rows += rows;
        if sessions.get(session)?.is_none() {
            r.problem(format!("{rows} wa_state rows belong to no session ({})", Ulid::from(session)));
        }
    }
    let mut indexed = 0u64;
    for row in org_sessions.iter()? {
        let (k, _) = row?;
        indexed += 1;
        let (org, id) = k.value();
        let owner = sessions
            .get(id)?
            .and_then(|v| Session::decode(v.value()).ok())
            .map(|s| s.organization_id);
        if owner.as_deref() != Some(org) {
            r.problem(format!("org_sessions ({org}, {}) has no matching session", Ulid::from(id)));
        }
    }
    if indexed != r.sessions {
        r.problem(format!("org_sessions has {indexed} entries for {} sessions", r.sessions));
    }

    let keys = txn.open_table(API_KEYS)?;
    let hashes = txn.open_table(API_KEY_HASHES)?;
    let org_keys = txn.open_table(ORG_API_KEYS)?;
    for row in keys.iter()? {
        let (k, v) = row?;
        r.api_keys += 1;
        let id = k.value();
        match ApiKey::decode(v.value()) {
            Ok(key) => {
                if hashes.get(key.hash.as_slice())?.map(|v| v.value()) != Some(id) {
                    r.problem(format!("api-key {} missing from api_key_hashes", Ulid::from(id)));
                }
                if org_keys.get((key.organization_id.as_str(), id))?.is_none() {
                    r.problem(format!("api-key {} missing from org_api_keys", Ulid::from(id)));
                }
            }
            Err(e) => r.problem(format!("api-key {}: {e}", Ulid::from(id))),
        }
    }
    if hashes.iter()?.count() as u64 != r.api_keys {
        r.problem("api_key_hashes and api_keys differ in size".into());
    }
    if org_keys.iter()?.count() as u64 != r.api_keys {
        r.problem("org_api_keys and api_keys differ in size".into());
    }
    Ok(r)
}
