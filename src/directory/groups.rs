//! Groups kept current from WhatsApp's group notifications (CONTRACT §13).
//!
//! One idempotent apply serves both ways a change reaches the file: a
//! notification from the engine, and a change the gateway itself made (the
//! API applies what WhatsApp accepted right away, as a notice of its own).
//! Each compares the notice with the stored group and writes only what
//! differs, with its `group.*` event in the same transaction; a notice that
//! changes nothing (the notification of a change already applied) writes
//! nothing and emits no event. A fresher description of a group already
//! stored (`?refresh=true`, a missed notification) is told as what it
//! changed: `group.updated` and `group.participants`, `by` unknown.

use redb::WriteTransaction;
use serde_json::{json, Value};

use super::groups_json::{changes_json, group_json, record_of};
use crate::api::directory::person_json;
use crate::engine::directory::PersonIds;
use crate::engine::{GroupChanges, GroupNotice, ParticipantAction};
use crate::store::group_records::{Group, StoredParticipant, StoredRole};
use crate::store::records::Session;
use crate::store::{events, groups, messages, StoreResult};

/// Applies a group notification to the stored group, with its `group.*`
/// event (nothing when it changes nothing).
pub fn apply_notice(txn: &WriteTransaction, key: u128, session: &Session, notice: GroupNotice, now: i64) -> StoreResult<()> {
    apply(txn, key, session, notice, now).map(|_| ())
}

/// [`apply_notice`], saying whether it changed anything.
pub fn apply(txn: &WriteTransaction, key: u128, session: &Session, notice: GroupNotice, now: i64) -> StoreResult<bool> {
    let org = session.organization_id.as_str();
    let emit = |kind: &str, data: Value| events::directory_event(txn, kind, org, key, now, &data).map(|_| true);
    match notice {
        GroupNotice::Joined { group, .. } => {
            let rec = record_of(&group, now);
            match groups::get(txn, key, &group.id)? {
                Some(old) if old.same_state(&rec) => Ok(false),
                Some(old) => {
                    // Already in it: a fresher description (a refresh, a
                    // missed notification), told as the changes it holds.
                    groups::put(txn, key, &group.id, &rec)?;
                    reconcile(txn, key, org, &group.id, &old, &rec, now)
                }
                None => {
                    groups::put(txn, key, &group.id, &rec)?;
                    let filled = fill(txn, key, rec)?;
                    emit("group.joined", group_json(&group.id, &filled))
                }
            }
        }
        GroupNotice::Left { group_id, by } => {
            if !groups::remove(txn, key, &group_id)? {
                return Ok(false);
            }
            let by = person_of(txn, key, session, by.as_deref())?;
            emit("group.left", json!({"groupId": group_id, "by": by}))
        }
        GroupNotice::Participants { group_id, action, participants, by } => {
            let Some(mut g) = groups::get(txn, key, &group_id)? else { return Ok(false) };
            let mut changed: Vec<Value> = Vec::new();
            for p in &participants {
                let p = complete(txn, key, p)?;
                if p.address().is_none() {
                    continue;
                }
                if change_one(&mut g, action, &p) {
                    changed.push(person_json(p.jid.as_deref(), p.lid.as_deref()));
                }
            }
            if changed.is_empty() {
                return Ok(false);
            }
            g.updated_at = now;
            groups::put(txn, key, &group_id, &g)?;
            let by = person_of(txn, key, session, by.as_deref())?;
            emit("group.participants", json!({"groupId": group_id, "action": action.as_str(), "participants": changed, "by": by}))
        }
        GroupNotice::Changed { group_id, changes, by } => {
            let Some(mut g) = groups::get(txn, key, &group_id)? else { return Ok(false) };
            let diff = change_settings(&mut g, &changes);
            if diff.is_empty() {
                return Ok(false);
            }
            g.updated_at = now;
            groups::put(txn, key, &group_id, &g)?;
            let by = person_of(txn, key, session, by.as_deref())?;
            emit("group.updated", json!({"groupId": group_id, "changes": changes_json(&diff), "by": by}))
        }
        GroupNotice::JoinRequest { group_id, requester } => {
            let requester = complete(txn, key, &requester)?;
            emit("group.join_request", json!({"groupId": group_id, "requester": person_json(requester.jid.as_deref(), requester.lid.as_deref())}))
        }
    }
}

/// Tells what a fresher description of a stored group changed: its
/// settings (`group.updated`) and its participants (`group.participants`,
/// one event per action), `by` unknown.
fn reconcile(txn: &WriteTransaction, key: u128, org: &str, id: &str, old: &Group, new: &Group, now: i64) -> StoreResult<bool> {
    let mut scratch = old.clone();
    let wanted = GroupChanges {
        subject: Some(new.subject.clone()),
        description: Some(new.description.clone()),
        announce: Some(new.announce),
        locked: Some(new.locked),
        ephemeral_seconds: Some(new.ephemeral_seconds),
        membership_approval: Some(new.membership_approval),
    };
    let diff = change_settings(&mut scratch, &wanted);
    let mut told = false;
    if !diff.is_empty() {
        let data = json!({"groupId": id, "changes": changes_json(&diff), "by": null});
        events::directory_event(txn, "group.updated", org, key, now, &data)?;
        told = true;
    }
    let find = |g: &Group, p: &StoredParticipant| g.participants.iter().find(|q| q.is(p.jid.as_deref(), p.lid.as_deref())).map(|q| q.role);
    let mut by_action: Vec<(ParticipantAction, Vec<Value>)> = Vec::new();
    let mut push = |a: ParticipantAction, p: &StoredParticipant| {
        let v = person_json(p.jid.as_deref(), p.lid.as_deref());
        match by_action.iter_mut().find(|(x, _)| *x == a) {
            Some((_, list)) => list.push(v),
            None => by_action.push((a, vec![v])),
        }
    };
    for p in &new.participants {
        match (find(old, p), p.role) {
            (None, _) => push(ParticipantAction::Add, p),
            (Some(StoredRole::Member), StoredRole::Admin | StoredRole::SuperAdmin) => push(ParticipantAction::Promote, p),
            (Some(StoredRole::Admin | StoredRole::SuperAdmin), StoredRole::Member) => push(ParticipantAction::Demote, p),
            _ => {}
        }
    }
    for p in old.participants.iter().filter(|p| find(new, p).is_none()) {
        push(ParticipantAction::Remove, p);
    }
    for (action, participants) in by_action {
        let data = json!({"groupId": id, "action": action.as_str(), "participants": participants, "by": null});
        events::directory_event(txn, "group.participants", org, key, now, &data)?;
        told = true;
    }
    Ok(told)
}

/// Applies one participant change; whether it changed the group.
fn change_one(g: &mut Group, action: ParticipantAction, p: &PersonIds) -> bool {
    let (jid, lid) = (p.jid.as_deref(), p.lid.as_deref());
    let at = g.participants.iter().position(|s| s.is(jid, lid));
    match (action, at) {
        (ParticipantAction::Add, None) => {
            g.participants.push(StoredParticipant { jid: p.jid.clone(), lid: p.lid.clone(), role: StoredRole::Member });
            true
        }
        (ParticipantAction::Remove, Some(i)) => {
            g.participants.remove(i);
            true
        }
        (ParticipantAction::Promote, Some(i)) if g.participants[i].role == StoredRole::Member => {
            g.participants[i].role = StoredRole::Admin;
            true
        }
        (ParticipantAction::Demote, Some(i)) if g.participants[i].role != StoredRole::Member => {
            g.participants[i].role = StoredRole::Member;
            true
        }
        _ => false,
    }
}

/// Applies the settings that differ from the stored ones; returns those.
fn change_settings(g: &mut Group, c: &GroupChanges) -> GroupChanges {
    let mut diff = GroupChanges::default();
    if let Some(s) = c.subject.as_ref().filter(|s| **s != g.subject) {
        g.subject = s.clone();
        diff.subject = Some(s.clone());
    }
    if let Some(d) = c.description.as_ref().filter(|d| **d != g.description) {
        g.description = d.clone();
        diff.description = Some(d.clone());
    }
    if let Some(a) = c.announce.filter(|a| *a != g.announce) {
        g.announce = a;
        diff.announce = Some(a);
    }
    if let Some(l) = c.locked.filter(|l| *l != g.locked) {
        g.locked = l;
        diff.locked = Some(l);
    }
    if let Some(e) = c.ephemeral_seconds.filter(|e| *e != g.ephemeral_seconds) {
        g.ephemeral_seconds = e;
        diff.ephemeral_seconds = Some(e);
    }
    if let Some(m) = c.membership_approval.filter(|m| *m != g.membership_approval) {
        g.membership_approval = m;
        diff.membership_approval = Some(m);
    }
    diff
}

/// A person with the missing half of their address filled from the
/// session's LID map, when known.
fn complete(txn: &WriteTransaction, key: u128, p: &PersonIds) -> StoreResult<PersonIds> {
    let mut p = p.clone();
    match (&p.jid, &p.lid) {
        (Some(j), None) => p.lid = messages::other_form(txn, key, j)?,
        (None, Some(l)) => p.jid = messages::other_form(txn, key, l)?,
        _ => {}
    }
    Ok(p)
}

/// The Person who did something (`by`): the session's own number with
/// both its addresses, else the address given, completed from the LID map.
fn person_of(txn: &WriteTransaction, key: u128, session: &Session, by: Option<&str>) -> StoreResult<Value> {
    let Some(by) = by else { return Ok(Value::Null) };
    if session.wa_jid.as_deref() == Some(by) || session.wa_lid.as_deref() == Some(by) {
        return Ok(person_json(session.wa_jid.as_deref(), session.wa_lid.as_deref()));
    }
    let p = complete(txn, key, &PersonIds::from_address(by))?;
    Ok(person_json(p.jid.as_deref(), p.lid.as_deref()))
}

/// A stored group with its participants' addresses completed.
fn fill(txn: &WriteTransaction, key: u128, mut g: Group) -> StoreResult<Group> {
    for p in &mut g.participants {
        let done = complete(txn, key, &PersonIds { jid: p.jid.clone(), lid: p.lid.clone() })?;
        p.jid = done.jid;
        p.lid = done.lid;
    }
    Ok(g)
}
