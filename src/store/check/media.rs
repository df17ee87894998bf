//! `check` of where outbound media lives (see [`crate::store::media`]):
//! every blob in `message_media` is either staged (a request in flight, or
//! an orphan a sweep will remove) or attached to exactly one message; every
//! reference names an existing blob and a message that has media; a staged
//! blob is never also attached; and an outbound message still waiting to be
//! sent with media has its blob.

use std::collections::{HashMap, HashSet};

use redb::TableHandle;
use ulid::Ulid;

use super::{each, open_optional as open, CheckReport};
use crate::store::message_records::{Direction, Message, MessageStatus};
use crate::store::records::Record;
use crate::store::tables::{MEDIA, MEDIA_REFS, MEDIA_STAGED, MESSAGES};

/// Checks the media tables into `r`.
pub(super) fn check_media(txn: &redb::ReadTransaction, r: &mut CheckReport) {
    let Some(blobs) = open(txn, MEDIA, r) else { return };
    let refs = open(txn, MEDIA_REFS, r);
    let staged = open(txn, MEDIA_STAGED, r);
    let Some(messages) = open(txn, MESSAGES, r) else { return };
    let mut stored: HashSet<u128> = HashSet::new();
    each(&blobs, MEDIA.name(), r, |_, k, _| {
        stored.insert(k);
    });
    let mut staged_ids: HashSet<u128> = HashSet::new();
    if let Some(staged) = &staged {
        each(staged, MEDIA_STAGED.name(), r, |r, blob, _| {
            if !stored.contains(&blob) {
                r.problem(format!("staged media blob {} has no bytes", Ulid::from(blob)));
            }
            staged_ids.insert(blob);
        });
    }
    let mut owner: HashMap<u128, u128> = HashMap::new();
    let mut with_media: HashSet<u128> = HashSet::new();
    if let Some(refs) = &refs {
        each(refs, MEDIA_REFS.name(), r, |r, msg, blob| {
            let (m_name, b_name) = (Ulid::from(msg), Ulid::from(blob));
            if !stored.contains(&blob) {
                r.problem(format!("message {m_name} references media blob {b_name}, which is missing"));
            }
            if staged_ids.contains(&blob) {
                r.problem(format!("media blob {b_name} is both staged and attached to message {m_name}"));
            }
            if let Some(other) = owner.insert(blob, msg) {
                r.problem(format!("media blob {b_name} is attached to messages {} and {m_name}", Ulid::from(other)));
            }
            let m = r.read(MESSAGES.name(), messages.get(msg)).flatten().map(|v| Message::decode(v.value()));
            match m {
                Some(Ok(m)) if m.media.is_some() => {
                    with_media.insert(msg);
                }
                Some(_) => r.problem(format!("message {m_name} keeps media but has none")),
                None => r.problem(format!("media blob {b_name} is attached to message {m_name}, which does not exist")),
            }
        });
    }
    for blob in &stored {
        if !staged_ids.contains(blob) && !owner.contains_key(blob) {
            r.problem(format!("media blob {} is neither staged nor attached to a message", Ulid::from(*blob)));
        }
    }
    each(&messages, MESSAGES.name(), r, |r, id, v| {
        let Ok(m) = Message::decode(v) else { return };
        let waiting = matches!(m.status, MessageStatus::Queued | MessageStatus::Scheduled);
        if waiting && m.direction == Direction::Out && m.media.is_some() && !with_media.contains(&id) {
            r.problem(format!("message {} waits to be sent with media it does not have", Ulid::from(id)));
        }
    });
}
