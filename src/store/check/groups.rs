//! `check` of the groups table (CONTRACT §13): every group decodes, belongs
//! to a session that exists, is keyed by a group id (`…@g.us`), and names
//! each participant by a phone JID or a `@lid`, once. A file from before
//! schema 5 has no groups table: nothing to check.

use std::collections::HashSet;

use redb::{ReadTransaction, TableHandle};
use ulid::Ulid;

use super::{each, open_optional, CheckReport};
use crate::store::group_records::Group;
use crate::store::records::Record;
use crate::store::tables::{GROUPS, SESSIONS};

/// Checks the groups table into `r`.
pub(super) fn check_groups(txn: &ReadTransaction, r: &mut CheckReport) {
    let Some(groups) = open_optional(txn, GROUPS, r) else {
        if r.schema_version >= 5 {
            r.problem(format!("table {} is missing", GROUPS.name()));
        }
        return;
    };
    let sessions = open_optional(txn, SESSIONS, r);
    each(&groups, GROUPS.name(), r, |r, (session, id), v| {
        let what = format!("group {id} of session {}", Ulid::from(session));
        if !id.ends_with("@g.us") {
            r.problem(format!("{what}: the key is not a group id"));
        }
        if let Some(s) = &sessions {
            if r.read(SESSIONS.name(), s.get(session)).is_some_and(|g| g.is_none()) {
                r.problem(format!("{what}: the session does not exist"));
            }
        }
        let g = match Group::decode(v) {
            Ok(g) => g,
            Err(e) => return r.problem(format!("{what}: {e}")),
        };
        let mut seen = HashSet::new();
        for p in &g.participants {
            match p.jid.as_deref().or(p.lid.as_deref()) {
                None => r.problem(format!("{what}: a participant with neither a JID nor a LID")),
                Some(a) if !seen.insert(a.to_string()) => r.problem(format!("{what}: participant {a} is listed twice")),
                Some(_) => {}
            }
        }
    });
}
