//! A session's contacts (CONTRACT §12) in the data file: one row per
//! person keyed (session, jid, lid) so that a page is a seek in `jid` order
//! (then `lid`; a contact known only by its `@lid` has the empty jid and
//! comes first), and an index from each of its addresses to that key. A
//! contact known by one address is merged with the one known by the other
//! when the lid ↔ phone mapping becomes known.
//!
//! Also here: the number-check cache, the lookup budget's window, the
//! session's own profile, and the index of `presence.update` events (kept
//! only `--presence-retention`).

use std::ops::Bound;

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::contact_records::{Contact, LookupWindow, NumberCheckRecord, Profile};
use super::records::Record;
use super::tables::{CONTACTS, CONTACT_ADDRESSES, EVENTS, LID_MAP, LOOKUP_BUDGET, NUMBER_CHECKS, ORG_EVENTS, PRESENCE_EVENTS, PROFILES};
use super::{Store, StoreResult};

/// A contact's place in the list: (jid or "", lid or "").
pub type ContactKey = (String, String);

/// What is learned about a person, to merge into their contact (`None`:
/// not told). The store's own shape of the engine's contact update.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContactChange {
    pub jid: Option<String>,
    pub lid: Option<String>,
    pub name: Option<String>,
    pub push_name: Option<String>,
    pub business_name: Option<String>,
    pub is_business: Option<bool>,
    pub blocked: Option<bool>,
    /// The picture changed: an update even if nothing stored did.
    pub picture_changed: bool,
}

/// The key a contact is stored under.
pub fn key_of(c: &Contact) -> ContactKey {
    (c.jid.clone().unwrap_or_default(), c.lid.clone().unwrap_or_default())
}

fn phone_of(jid: &str) -> Option<String> {
    let (user, server) = jid.split_once('@')?;
    let user = user.split(':').next().unwrap_or(user);
    (server == "s.whatsapp.net" && !user.is_empty() && user.bytes().all(|b| b.is_ascii_digit())).then(|| user.to_string())
}

/// The contact known by `address` (a phone JID or a `@lid`).
pub fn find(txn: &ReadTransaction, session: u128, address: &str) -> StoreResult<Option<Contact>> {
    find_in(&txn.open_table(CONTACT_ADDRESSES)?, &txn.open_table(CONTACTS)?, session, address)
}

fn find_w(txn: &WriteTransaction, session: u128, address: &str) -> StoreResult<Option<Contact>> {
    find_in(&txn.open_table(CONTACT_ADDRESSES)?, &txn.open_table(CONTACTS)?, session, address)
}

/// [`find`] over the two tables, of either kind of transaction.
fn find_in(
    index: &impl ReadableTable<(u128, &'static str), (&'static str, &'static str)>,
    rows: &impl ReadableTable<(u128, &'static str, &'static str), &'static [u8]>,
    session: u128,
    address: &str,
) -> StoreResult<Option<Contact>> {
    let Some(k) = index.get((session, address))? else { return Ok(None) };
    let (jid, lid) = k.value();
    let got = rows.get((session, jid, lid))?;
    got.map(|v| Contact::decode(v.value())).transpose()
}

/// The contact known by `address`, in a write transaction.
pub fn find_for_write(txn: &WriteTransaction, session: u128, address: &str) -> StoreResult<Option<Contact>> {
    find_w(txn, session, address)
}

fn remove(txn: &WriteTransaction, session: u128, c: &Contact) -> StoreResult<()> {
    let (jid, lid) = key_of(c);
    txn.open_table(CONTACTS)?.remove((session, jid.as_str(), lid.as_str()))?;
    let mut index = txn.open_table(CONTACT_ADDRESSES)?;
    for a in [&c.jid, &c.lid].into_iter().flatten() {
        index.remove((session, a.as_str()))?;
    }
    Ok(())
}

fn put(txn: &WriteTransaction, session: u128, c: &Contact) -> StoreResult<()> {
    let (jid, lid) = key_of(c);
    txn.open_table(CONTACTS)?.insert((session, jid.as_str(), lid.as_str()), c.encode().as_slice())?;
    let mut index = txn.open_table(CONTACT_ADDRESSES)?;
    for a in [&c.jid, &c.lid].into_iter().flatten() {
        index.insert((session, a.as_str()), (jid.as_str(), lid.as_str()))?;
    }
    Ok(())
}

/// Fills what `into` lacks from `from` (two rows of one person).
fn absorb(into: &mut Contact, from: Contact) {
    into.jid = into.jid.take().or(from.jid);
    into.lid = into.lid.take().or(from.lid);
    into.name = into.name.take().or(from.name);
    into.push_name = into.push_name.take().or(from.push_name);
    into.business_name = into.business_name.take().or(from.business_name);
    into.is_business |= from.is_business;
    into.is_blocked |= from.is_blocked;
    into.updated_at = into.updated_at.max(from.updated_at);
}

/// Merges `change` into the person's contact (created if new; the rows of
/// its phone JID and its `@lid` merged into one when both exist, also
/// through the session's lid map). Returns the contact and whether its
/// names, business state, picture or blocked state changed (what a
/// `contact.updated` event reports); a new contact with nothing but its
/// addresses is no change.
pub fn upsert(txn: &WriteTransaction, session: u128, change: &ContactChange, now: i64) -> StoreResult<(Contact, bool)> {
    let mut jid = change.jid.clone();
    let mut lid = change.lid.clone();
    {
        let map = txn.open_table(LID_MAP)?;
        if let (Some(j), None) = (&jid, &lid) {
            lid = map.get((session, j.as_str()))?.map(|v| v.value().to_string()).filter(|l| l.ends_with("@lid"));
        } else if let (None, Some(l)) = (&jid, &lid) {
            jid = map.get((session, l.as_str()))?.map(|v| v.value().to_string()).filter(|j| phone_of(j).is_some());
        }
    }
    let by_jid = jid.as_deref().map(|j| find_w(txn, session, j)).transpose()?.flatten();
    let by_lid = lid.as_deref().map(|l| find_w(txn, session, l)).transpose()?.flatten();
    let mut olds = Vec::new();
    let mut c = match (by_jid, by_lid) {
        (Some(a), Some(b)) if key_of(&a) != key_of(&b) => {
            olds.push(a.clone());
            olds.push(b.clone());
            let mut a = a;
            absorb(&mut a, b);
            a
        }
        (Some(a), _) | (None, Some(a)) => {
            olds.push(a.clone());
            a
        }
        (None, None) => Contact { updated_at: now, ..Contact::default() },
    };
    let before = c.clone();
    let existed = !olds.is_empty();
    if c.jid.is_none() {
        c.jid = jid;
    }
    if c.lid.is_none() {
        c.lid = lid;
    }
    c.phone_number = c.jid.as_deref().and_then(phone_of);
    if change.name.is_some() {
        c.name = change.name.clone();
    }
    if change.push_name.is_some() {
        c.push_name = change.push_name.clone();
    }
    if change.business_name.is_some() {
        c.business_name = change.business_name.clone();
    }
    if let Some(b) = change.is_business {
        c.is_business = b;
    }
    if let Some(b) = change.blocked {
        c.is_blocked = b;
    }
    let visible = |x: &Contact| (x.name.clone(), x.push_name.clone(), x.business_name.clone(), x.is_business, x.is_blocked);
    let changed = change.picture_changed
        || if existed { visible(&before) != visible(&c) } else { visible(&c) != visible(&Contact::default()) };
    let moved = !existed || olds.len() > 1 || before.jid != c.jid || before.lid != c.lid;
    if !changed && !moved {
        return Ok((c, false));
    }
    if changed || !existed {
        c.updated_at = now;
    }
    for o in &olds {
        remove(txn, session, o)?;
    }
    put(txn, session, &c)?;
    Ok((c, changed))
}

/// A page of the session's contacts after `after`, in key order; rows
/// `keep` refuses count against `budget`. Returns the rows and where the
/// next page starts (`None`: done).
pub fn page(
    txn: &ReadTransaction,
    session: u128,
    after: Option<ContactKey>,
    limit: usize,
    budget: usize,
    keep: impl Fn(&Contact) -> bool,
) -> StoreResult<(Vec<Contact>, Option<ContactKey>)> {
    let rows = txn.open_table(CONTACTS)?;
    let start = match &after {
        Some((j, l)) => Bound::Excluded((session, j.as_str(), l.as_str())),
        None => Bound::Included((session, "", "")),
    };
    let mut out = Vec::new();
    let mut last: Option<ContactKey> = None;
    for (scanned, row) in rows.range::<(u128, &str, &str)>((start, Bound::Excluded((session + 1, "", ""))))?.enumerate() {
        let (k, v) = row?;
        let (_, j, l) = k.value();
        if out.len() >= limit || scanned >= budget {
            return Ok((out, last));
        }
        last = Some((j.to_string(), l.to_string()));
        let c = Contact::decode(v.value())?;
        if keep(&c) {
            out.push(c);
        }
    }
    Ok((out, None))
}

/// The cached answer about `phone`, whatever its age.
pub fn number_check(txn: &ReadTransaction, session: u128, phone: &str) -> StoreResult<Option<NumberCheckRecord>> {
    let t = txn.open_table(NUMBER_CHECKS)?;
    let got = t.get((session, phone))?;
    got.map(|v| NumberCheckRecord::decode(v.value())).transpose()
}

/// Stores the network's answer about `phone`.
pub fn put_number_check(txn: &WriteTransaction, session: u128, phone: &str, n: &NumberCheckRecord) -> StoreResult<()> {
    txn.open_table(NUMBER_CHECKS)?.insert((session, phone), n.encode().as_slice())?;
    Ok(())
}

/// The session's lookup budget window (empty when none is stored).
pub fn lookup_window(txn: &WriteTransaction, session: u128) -> StoreResult<LookupWindow> {
    let t = txn.open_table(LOOKUP_BUDGET)?;
    let got = t.get(session)?;
    Ok(got.map(|v| LookupWindow::decode(v.value())).transpose()?.unwrap_or_default())
}

/// Stores the session's lookup budget window.
pub fn put_lookup_window(txn: &WriteTransaction, session: u128, w: &LookupWindow) -> StoreResult<()> {
    txn.open_table(LOOKUP_BUDGET)?.insert(session, w.encode().as_slice())?;
    Ok(())
}

/// The session's stored profile.
pub fn profile(txn: &ReadTransaction, session: u128) -> StoreResult<Option<Profile>> {
    let t = txn.open_table(PROFILES)?;
    let got = t.get(session)?;
    got.map(|v| Profile::decode(v.value())).transpose()
}

/// The session's stored profile, in a write transaction.
pub fn profile_for_write(txn: &WriteTransaction, session: u128) -> StoreResult<Option<Profile>> {
    let t = txn.open_table(PROFILES)?;
    let got = t.get(session)?;
    got.map(|v| Profile::decode(v.value())).transpose()
}

/// Stores the session's profile.
pub fn put_profile(txn: &WriteTransaction, session: u128, p: &Profile) -> StoreResult<()> {
    txn.open_table(PROFILES)?.insert(session, p.encode().as_slice())?;
    Ok(())
}

/// Notes a `presence.update` event (of `org`), for its shorter retention.
pub fn note_presence_event(txn: &WriteTransaction, event: u128, org: &str) -> StoreResult<()> {
    txn.open_table(PRESENCE_EVENTS)?.insert(event, org)?;
    Ok(())
}

/// Deletes everything of a deleted session's directory: contacts and
/// their index, number checks, the lookup budget, the profile.
pub fn drop_session(txn: &WriteTransaction, session: u128) -> StoreResult<()> {
    txn.open_table(CONTACTS)?.retain_in::<(u128, &str, &str), _>((session, "", "")..(session + 1, "", ""), |_, _| false)?;
    txn.open_table(CONTACT_ADDRESSES)?.retain_in::<(u128, &str), _>((session, "")..(session + 1, ""), |_, _| false)?;
    txn.open_table(NUMBER_CHECKS)?.retain_in::<(u128, &str), _>((session, "")..(session + 1, ""), |_, _| false)?;
    txn.open_table(LOOKUP_BUDGET)?.remove(session)?;
    txn.open_table(PROFILES)?.remove(session)?;
    Ok(())
}

impl Store {
    /// Deletes `presence.update` events made before `cutoff` (Unix ms),
    /// oldest first, at most `max` in this transaction; returns how many
    /// went (call again while it returns `max`).
    pub fn prune_presence(&self, cutoff: i64, max: usize) -> StoreResult<usize> {
        let below = (cutoff.max(0) as u128) << 80;
        let txn = self.write()?;
        let mut n = 0;
        {
            let mut index = txn.open_table(PRESENCE_EVENTS)?;
            let mut events = txn.open_table(EVENTS)?;
            let mut org_events = txn.open_table(ORG_EVENTS)?;
            let doomed: Vec<(u128, String)> = index
                .range(0..below)?
                .take(max)
                .map(|r| r.map(|(k, v)| (k.value(), v.value().to_string())))
                .collect::<Result<_, _>>()?;
            for (id, org) in doomed {
                index.remove(id)?;
                events.remove(id)?;
                org_events.remove((org.as_str(), id))?;
                n += 1;
            }
        }
        if n > 0 {
            self.commit(txn)?;
        } else {
            txn.abort()?;
        }
        Ok(n)
    }
}

#[cfg(test)]
#[path = "contacts_tests.rs"]
mod tests;
