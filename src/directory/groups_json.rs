//! How a stored group reads over the API and in `group.*` events (CONTRACT
//! §13), and how an engine's [`GroupInfo`] becomes a stored record.

use serde_json::{json, Value};

use crate::api::directory::person_json;
use crate::engine::directory::{GroupMember, GroupRole, PersonIds};
use crate::engine::{GroupChanges, GroupInfo};
use crate::store::group_records::{Group, StoredParticipant, StoredRole};

/// The stored role of an engine role.
pub fn stored_role(r: GroupRole) -> StoredRole {
    match r {
        GroupRole::Member => StoredRole::Member,
        GroupRole::Admin => StoredRole::Admin,
        GroupRole::SuperAdmin => StoredRole::SuperAdmin,
    }
}

/// The wire name of a stored role.
pub fn role_name(r: StoredRole) -> &'static str {
    match r {
        StoredRole::Member => "member",
        StoredRole::Admin => "admin",
        StoredRole::SuperAdmin => "superadmin",
    }
}

/// A stored participant of an engine's member.
pub fn participant(m: &GroupMember) -> StoredParticipant {
    StoredParticipant { jid: m.person.jid.clone(), lid: m.person.lid.clone(), role: stored_role(m.role) }
}

/// The record of a group as WhatsApp describes it (each person once).
pub fn record_of(info: &GroupInfo, now: i64) -> Group {
    let mut participants: Vec<StoredParticipant> = Vec::with_capacity(info.participants.len());
    for m in &info.participants {
        if m.person.address().is_none() || participants.iter().any(|p| p.is(m.person.jid.as_deref(), m.person.lid.as_deref())) {
            continue;
        }
        participants.push(participant(m));
    }
    Group {
        subject: info.subject.clone(),
        description: info.description.clone(),
        owner: info.owner.clone(),
        created_at: info.created_at,
        participants,
        announce: info.announce,
        locked: info.locked,
        ephemeral_seconds: info.ephemeral_seconds,
        membership_approval: info.membership_approval,
        updated_at: now,
    }
}

/// The Group object (CONTRACT §13).
pub fn group_json(id: &str, g: &Group) -> Value {
    let participants: Vec<Value> = g
        .participants
        .iter()
        .map(|p| {
            let mut v = person_json(p.jid.as_deref(), p.lid.as_deref());
            v["role"] = json!(role_name(p.role));
            v
        })
        .collect();
    json!({
        "id": id,
        "subject": g.subject,
        "description": g.description,
        "owner": g.owner,
        "createdAt": g.created_at,
        "participants": participants,
        "size": g.participants.len(),
        "announce": g.announce,
        "locked": g.locked,
        "ephemeralSeconds": g.ephemeral_seconds,
        "membershipApproval": g.membership_approval,
    })
}

/// A Person from the engine's ids.
pub fn person_ids_json(p: &PersonIds) -> Value {
    person_json(p.jid.as_deref(), p.lid.as_deref())
}

/// The `changes` of a `group.updated` event: each changed field with its
/// new value, API names.
pub fn changes_json(c: &GroupChanges) -> Value {
    let mut m = serde_json::Map::new();
    if let Some(s) = &c.subject {
        m.insert("subject".into(), json!(s));
    }
    if let Some(d) = &c.description {
        m.insert("description".into(), json!(d));
    }
    if let Some(a) = c.announce {
        m.insert("announce".into(), json!(a));
    }
    if let Some(l) = c.locked {
        m.insert("locked".into(), json!(l));
    }
    if let Some(e) = c.ephemeral_seconds {
        m.insert("ephemeralSeconds".into(), json!(e));
    }
    if let Some(a) = c.membership_approval {
        m.insert("membershipApproval".into(), json!(a));
    }
    Value::Object(m)
}
