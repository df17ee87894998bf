//! `check` of the directory's tables (CONTRACT §12): every contact decodes,
//! sits under the key its addresses make, belongs to an existing session
//! and is indexed by each of its addresses; every address entry names a
//! contact that has it; number checks, lookup windows and profiles decode
//! and belong to existing sessions. A file from before schema 5 lacks the
//! tables: nothing to check; a schema-5 file without one is a problem.

use std::collections::HashSet;

use redb::{ReadTransaction, TableHandle};
use ulid::Ulid;

use super::{each, open_optional, CheckReport};
use crate::store::contact_records::{Contact, LookupWindow, NumberCheckRecord, Profile};
use crate::store::records::Record;
use crate::store::tables::{CONTACTS, CONTACT_ADDRESSES, LOOKUP_BUDGET, NUMBER_CHECKS, PRESENCE_EVENTS, PROFILES, SESSIONS};

/// Checks the directory's tables into `r`.
pub(super) fn check_contacts(txn: &ReadTransaction, r: &mut CheckReport) {
    if r.schema_version >= 5 {
        // A schema-5 file has every table of the directory (a backup that
        // left one out would lose it silently).
        let have: HashSet<String> = txn.list_tables().map(|t| t.map(|h| h.name().to_string()).collect()).unwrap_or_default();
        for name in [CONTACTS.name(), CONTACT_ADDRESSES.name(), NUMBER_CHECKS.name(), LOOKUP_BUDGET.name(), PROFILES.name(), PRESENCE_EVENTS.name()] {
            if !have.contains(name) {
                r.problem(format!("table {name} is missing"));
            }
        }
    }
    let mut sessions = HashSet::new();
    if let Some(t) = open_optional(txn, SESSIONS, r) {
        each(&t, SESSIONS.name(), r, |_, k, _| {
            sessions.insert(k);
        });
    }
    let missing = |r: &mut CheckReport, table: &str, s: u128| {
        r.problem(format!("{table} holds a row of session {}, which does not exist", Ulid::from(s)));
    };
    let mut addresses: HashSet<(u128, String, String, String)> = HashSet::new();
    if let Some(t) = open_optional(txn, CONTACTS, r) {
        each(&t, CONTACTS.name(), r, |r, (s, jid, lid), v| {
            if !sessions.contains(&s) {
                missing(r, CONTACTS.name(), s);
            }
            let Some(c) = r.read("contact", Contact::decode(v)) else { return };
            if c.jid.as_deref().unwrap_or("") != jid || c.lid.as_deref().unwrap_or("") != lid || (jid.is_empty() && lid.is_empty()) {
                r.problem(format!("contact ({jid}, {lid}) of session {} is stored under the wrong key", Ulid::from(s)));
            }
            for a in [&c.jid, &c.lid].into_iter().flatten() {
                addresses.insert((s, a.clone(), jid.to_string(), lid.to_string()));
            }
        });
    }
    if let Some(t) = open_optional(txn, CONTACT_ADDRESSES, r) {
        let mut seen = HashSet::new();
        each(&t, CONTACT_ADDRESSES.name(), r, |r, (s, a), (jid, lid)| {
            let row = (s, a.to_string(), jid.to_string(), lid.to_string());
            if !addresses.contains(&row) {
                r.problem(format!("contact_addresses maps {a} of session {} to a contact that does not have it", Ulid::from(s)));
            }
            seen.insert(row);
        });
        for (s, a, _, _) in addresses.difference(&seen) {
            r.problem(format!("contact {a} of session {} is missing from contact_addresses", Ulid::from(*s)));
        }
    }
    if let Some(t) = open_optional(txn, NUMBER_CHECKS, r) {
        each(&t, NUMBER_CHECKS.name(), r, |r, (s, _), v| {
            if !sessions.contains(&s) {
                missing(r, NUMBER_CHECKS.name(), s);
            }
            r.read("number check", NumberCheckRecord::decode(v));
        });
    }
    if let Some(t) = open_optional(txn, LOOKUP_BUDGET, r) {
        each(&t, LOOKUP_BUDGET.name(), r, |r, s, v| {
            if !sessions.contains(&s) {
                missing(r, LOOKUP_BUDGET.name(), s);
            }
            r.read("lookup budget", LookupWindow::decode(v));
        });
    }
    if let Some(t) = open_optional(txn, PROFILES, r) {
        each(&t, PROFILES.name(), r, |r, s, v| {
            if !sessions.contains(&s) {
                missing(r, PROFILES.name(), s);
            }
            r.read("profile", Profile::decode(v));
        });
    }
}
