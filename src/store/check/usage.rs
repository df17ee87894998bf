//! `check` of the per-organization stored bytes (`org_stored_bytes`): each
//! organization's counter equals what its messages' text and kept media
//! add up to ([`crate::store::usage::tally`]), and no kept media belongs to
//! a missing message. A file from before schema 4 has no counters yet (the
//! gateway computes them when it opens the file): nothing to compare.

use std::collections::HashMap;

use redb::{ReadTransaction, TableHandle};
use ulid::Ulid;

use super::{each, open_optional, CheckReport};
use crate::store::tables::{MEDIA, MEDIA_REFS, MESSAGES, ORG_USAGE};
use crate::store::usage;

/// Checks the stored-bytes counters into `r`.
pub(super) fn check_usage(txn: &ReadTransaction, r: &mut CheckReport) {
    let Some(counters) = open_optional(txn, ORG_USAGE, r) else {
        if r.schema_version >= 4 {
            r.problem(format!("table {} is missing", ORG_USAGE.name()));
        }
        return;
    };
    let (Some(messages), Some(media)) = (open_optional(txn, MESSAGES, r), open_optional(txn, MEDIA, r)) else { return };
    // A file from before schema 4 keeps media under the message's own id.
    let Some(refs) = open_optional(txn, MEDIA_REFS, r) else { return };
    let Some((want, orphans)) = r.read("stored bytes", usage::tally(&messages, &refs, &media)) else { return };
    for id in orphans {
        r.problem(format!("message_media holds bytes of message {}, which does not exist", Ulid::from(id)));
    }
    let mut stored: HashMap<String, u64> = HashMap::new();
    each(&counters, ORG_USAGE.name(), r, |_, org, n| {
        stored.insert(org.to_string(), n);
    });
    let mut orgs: Vec<&String> = want.keys().chain(stored.keys()).collect();
    orgs.sort();
    orgs.dedup();
    for org in orgs {
        let (says, is) = (stored.get(org).copied().unwrap_or(0), want.get(org).copied().unwrap_or(0));
        if says != is {
            r.problem(format!("org_stored_bytes says organization {org} stores {says} bytes, its messages and media add up to {is}"));
        }
    }
}
