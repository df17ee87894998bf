//! Contacts and presence from the engine (CONTRACT §12): each change to a
//! stored contact is written with its `contact.updated` event in the
//! messaging batch's transaction; a subscribed contact's presence becomes a
//! `presence.update` event (pruned after `--presence-retention`).

use redb::WriteTransaction;
use serde_json::{json, Value};

use crate::engine::{ContactUpdate, PresenceUpdate};
use crate::store::contact_records::Contact;
use crate::store::contacts::{self as stored, ContactChange};
use crate::store::events::directory_event;
use crate::store::records::Session;
use crate::store::StoreResult;

/// The `contact.updated` event type.
pub const CONTACT_UPDATED: &str = "contact.updated";
/// The `presence.update` event type.
pub const PRESENCE_UPDATE: &str = "presence.update";

/// The API's Contact object (CONTRACT §12).
pub fn contact_json(c: &Contact) -> Value {
    json!({
        "jid": c.jid,
        "lid": c.lid,
        "phoneNumber": c.phone_number,
        "name": c.name,
        "pushName": c.push_name,
        "businessName": c.business_name,
        "isBusiness": c.is_business,
        "isBlocked": c.is_blocked,
        "updatedAt": c.updated_at,
    })
}

/// Whether `jid` names a person (a phone JID or a `@lid`), not a group,
/// a broadcast list or a newsletter.
pub fn is_person(jid: &str) -> bool {
    jid.ends_with("@s.whatsapp.net") || jid.ends_with("@lid")
}

/// A person's two addresses, sorted by kind: (phone JID, `@lid`).
fn split(a: Option<&str>, b: Option<&str>) -> (Option<String>, Option<String>) {
    let mut jid = None;
    let mut lid = None;
    for x in [a, b].into_iter().flatten() {
        let bare = match x.split_once('@') {
            Some((user, server)) => format!("{}@{server}", user.split(':').next().unwrap_or(user)),
            None => continue,
        };
        if bare.ends_with("@lid") {
            lid.get_or_insert(bare);
        } else if bare.ends_with("@s.whatsapp.net") {
            jid.get_or_insert(bare);
        }
    }
    (jid, lid)
}

/// Merges `change` into the contact and, when something visible changed,
/// appends `contact.updated` in the same transaction. Returns the contact.
pub fn record_change(txn: &WriteTransaction, key: u128, session: &Session, change: &ContactChange, now: i64) -> StoreResult<Contact> {
    let (c, changed) = stored::upsert(txn, key, change, now)?;
    if changed {
        directory_event(txn, CONTACT_UPDATED, &session.organization_id, key, now, &contact_json(&c))?;
    }
    Ok(c)
}

/// Stores what the engine learned about a contact; `contact.updated` when
/// its names, picture or blocked state changed.
pub fn apply_contact(txn: &WriteTransaction, key: u128, session: &Session, update: ContactUpdate, now: i64) -> StoreResult<()> {
    let (jid, lid) = split(update.person.jid.as_deref(), update.person.lid.as_deref());
    if jid.is_none() && lid.is_none() {
        return Ok(());
    }
    let change = ContactChange {
        jid,
        lid,
        name: update.name,
        push_name: update.push_name,
        business_name: update.business_name,
        is_business: update.is_business,
        blocked: update.blocked,
        picture_changed: update.picture_changed,
    };
    record_change(txn, key, session, &change, now).map(|_| ())
}

/// A message's sender and push name: the contact is learned (created, or
/// its push name updated) — an event only when something changed.
pub fn learn_from_message(
    txn: &WriteTransaction,
    key: u128,
    session: &Session,
    sender: &str,
    sender_alt: Option<&str>,
    push_name: Option<&str>,
    now: i64,
) -> StoreResult<()> {
    if !is_person(sender) {
        return Ok(());
    }
    let (jid, lid) = split(Some(sender), sender_alt);
    let push_name = push_name.map(str::trim).filter(|n| !n.is_empty()).map(str::to_string);
    let change = ContactChange { jid, lid, push_name, ..ContactChange::default() };
    record_change(txn, key, session, &change, now).map(|_| ())
}

/// The session learned that `lid` and `pn` are one person: their contacts
/// (if any) become one. No event (names did not change).
pub fn link(txn: &WriteTransaction, key: u128, lid: &str, pn: &str, now: i64) -> StoreResult<()> {
    let (jid, lid) = split(Some(pn), Some(lid));
    let (Some(j), Some(l)) = (&jid, &lid) else { return Ok(()) };
    if stored::find_for_write(txn, key, j)?.is_none() && stored::find_for_write(txn, key, l)?.is_none() {
        return Ok(());
    }
    stored::upsert(txn, key, &ContactChange { jid, lid, ..ContactChange::default() }, now).map(|_| ())
}

/// A Person (CONTRACT §12) from what is known: the addresses given, and
/// the other one from the stored contact when there is one.
pub fn person_of(txn: &WriteTransaction, key: u128, jid: Option<&str>, lid: Option<&str>) -> StoreResult<Value> {
    let (mut jid, mut lid) = split(jid, lid);
    if let Some(a) = jid.clone().or(lid.clone()) {
        if let Some(c) = stored::find_for_write(txn, key, &a)? {
            jid = jid.or(c.jid);
            lid = lid.or(c.lid);
        }
    }
    let phone = jid.as_deref().and_then(|j| j.split('@').next()).map(str::to_string);
    Ok(json!({"jid": jid, "lid": lid, "phoneNumber": phone}))
}

/// A subscribed contact's presence: a `presence.update` event.
pub fn apply_presence(txn: &WriteTransaction, key: u128, session: &Session, update: PresenceUpdate, now: i64) -> StoreResult<()> {
    if update.person.jid.is_none() && update.person.lid.is_none() {
        return Ok(());
    }
    let person = person_of(txn, key, update.person.jid.as_deref(), update.person.lid.as_deref())?;
    let data = json!({
        "contact": person,
        "status": update.status.as_str(),
        "chatId": update.chat,
        "lastSeen": update.last_seen,
    });
    let id = directory_event(txn, PRESENCE_UPDATE, &session.organization_id, key, now, &data)?;
    stored::note_presence_event(txn, id, &session.organization_id)
}
