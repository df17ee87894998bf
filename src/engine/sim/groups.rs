//! The sim engine's groups (CONTRACT §13, §15): groups held by the
//! simulated network, changes by others (`sim/group-event`, in
//! [`super::groups_hook`]), and the outbox kind `group` (one record per
//! group operation, with `"action"` and `"groupId"`).
//!
//! Rules of the simulated network: group ids are `120363<12 digits>@g.us`,
//! invite codes 22 base62 characters; numbers starting `999` are not on
//! WhatsApp; an add of someone the directory marks not addable answers
//! `needs_invite`; only admins change participants, the invite link and
//! (when the group is `locked`) its info; joining a group that approves
//! members leaves a request.

use std::collections::BTreeMap;

use ring::digest::{digest, SHA256};
use serde_json::json;

use super::{lid_for, Live, SimConnection};
use crate::engine::directory::{GroupMember, GroupRole, ParticipantStatus, PersonIds};
use crate::engine::{BoxFuture, EngineError, GroupChanges, GroupInfo, JoinOutcome, JoinRequest, ParticipantAction, ParticipantOutcome};
use crate::store::now_ms;

/// One group as the simulated network holds it for this session.
#[derive(Clone)]
pub(super) struct SimGroup {
    pub(super) info: GroupInfo,
    /// The current invite code.
    pub(super) invite: String,
    /// Whether the session's number is in it (a group left stays known, so
    /// that its invite code still leads to it).
    pub(super) member: bool,
    /// People waiting for approval.
    pub(super) requests: Vec<JoinRequest>,
}

/// The groups a session's number is in, as the simulated network holds them.
#[derive(Default)]
pub(super) struct SimGroups {
    /// The session's own number (set when it is linked).
    pub(super) me: Option<PersonIds>,
    pub(super) groups: BTreeMap<String, SimGroup>,
    /// Groups and invite codes made so far (ids and codes derive from it).
    made: u64,
}

/// A person by JID as the sim knows them: a phone JID with its stable `@lid`.
pub(super) fn person(address: &str) -> PersonIds {
    match address.split_once('@') {
        Some((user, "s.whatsapp.net")) => PersonIds { jid: Some(address.to_string()), lid: Some(lid_for(user)) },
        _ => PersonIds::from_address(address),
    }
}

/// The phone digits of a phone JID.
fn phone(address: &str) -> Option<&str> {
    address.strip_suffix("@s.whatsapp.net")
}

fn same(a: &PersonIds, b: &PersonIds) -> bool {
    (a.jid.is_some() && a.jid == b.jid) || (a.lid.is_some() && a.lid == b.lid)
}

fn digits_of(seed: &str, n: usize) -> String {
    let d = digest(&SHA256, seed.as_bytes());
    d.as_ref().iter().take(n).map(|b| char::from(b'0' + b % 10)).collect()
}

/// An invite code: 22 characters of base62.
fn code_of(seed: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let d = digest(&SHA256, seed.as_bytes());
    d.as_ref().iter().take(22).map(|b| char::from(ALPHABET[usize::from(*b) % 62])).collect()
}

impl SimGroups {
    /// A new group id and invite code, unique to this session's sim.
    pub(super) fn fresh(&mut self, session: &str) -> (String, String) {
        self.made += 1;
        let seed = format!("{session}:{}", self.made);
        (format!("120363{}@g.us", digits_of(&seed, 12)), code_of(&format!("code:{seed}")))
    }

    /// A new invite code for a group.
    fn new_code(&mut self, session: &str) -> String {
        self.made += 1;
        code_of(&format!("code:{session}:{}", self.made))
    }

    /// A group the number is in, or `NotFound`.
    pub(super) fn member_of(&mut self, id: &str) -> Result<&mut SimGroup, EngineError> {
        match self.groups.get_mut(id) {
            Some(g) if g.member => Ok(g),
            _ => Err(EngineError::NotFound(format!("group {id} not found"))),
        }
    }
}

impl SimGroup {
    /// The position of a person among the participants.
    pub(super) fn index(&self, p: &PersonIds) -> Option<usize> {
        self.info.participants.iter().position(|m| same(&m.person, p))
    }

    /// Whether a person is an admin of the group.
    fn is_admin(&self, p: &PersonIds) -> bool {
        self.index(p).is_some_and(|i| self.info.participants[i].role != GroupRole::Member)
    }
}

/// Runs `f` on the session's live state and its own number, then records
/// `outbox` (if any) in the session's outbox.
fn op<T>(c: &SimConnection, f: impl FnOnce(&mut Live, &PersonIds, &str) -> Result<(T, Option<serde_json::Value>), EngineError>) -> Result<T, EngineError> {
    let session = c.session.to_string();
    let (out, rec) = c.engine.with(c.session, |l| {
        if !l.linked {
            return Err(EngineError::State("the session is not linked".into()));
        }
        let me = l.groups.me.clone().ok_or_else(|| EngineError::State("the session is not linked".into()))?;
        f(l, &me, &session)
    })?;
    if let Some(rec) = rec {
        c.engine.record(c.session, rec);
    }
    Ok(out)
}

fn admin_of<'g>(l: &'g mut Live, me: &PersonIds, group: &str) -> Result<&'g mut SimGroup, EngineError> {
    let g = l.groups.member_of(group)?;
    if !g.is_admin(me) {
        return Err(EngineError::Refused { code: "401".into(), message: "not an admin of the group".into() });
    }
    Ok(g)
}

/// How an add of `address` fares on the simulated network.
fn add_status(l: &Live, address: &str) -> ParticipantStatus {
    match phone(address) {
        Some(p) if !l.dir.on_whatsapp(p) => ParticipantStatus::NotOnWhatsapp,
        Some(p) if !l.dir.addable(p) => ParticipantStatus::NeedsInvite,
        _ => ParticipantStatus::Ok,
    }
}

fn outcome(asked: &str, status: ParticipantStatus) -> ParticipantOutcome {
    let code = match status {
        ParticipantStatus::NeedsInvite => Some("403".to_string()),
        ParticipantStatus::Failed => Some("409".to_string()),
        _ => None,
    };
    let person = (status != ParticipantStatus::NotOnWhatsapp).then(|| person(asked));
    ParticipantOutcome { asked: asked.to_string(), person, status, code }
}

/// [`Connection::group_create`](crate::engine::Connection::group_create).
pub(super) fn group_create<'a>(c: &'a SimConnection, subject: &str, participants: &[String], description: Option<&str>) -> BoxFuture<'a, Result<(GroupInfo, Vec<ParticipantOutcome>), EngineError>> {
    let r = op(c, |l, me, session| {
        let (id, invite) = l.groups.fresh(session);
        let mut members = vec![GroupMember { person: me.clone(), role: GroupRole::SuperAdmin }];
        let mut outcomes = Vec::with_capacity(participants.len());
        for a in participants {
            let mut status = add_status(l, a);
            if status == ParticipantStatus::Ok {
                let p = person(a);
                if members.iter().any(|m| same(&m.person, &p)) {
                    status = ParticipantStatus::Failed;
                } else {
                    members.push(GroupMember { person: p, role: GroupRole::Member });
                }
            }
            outcomes.push(outcome(a, status));
        }
        let info = GroupInfo {
            id: id.clone(),
            subject: subject.to_string(),
            description: description.map(str::to_string),
            owner: me.jid.clone(),
            created_at: Some(now_ms()),
            participants: members,
            announce: false,
            locked: false,
            ephemeral_seconds: 0,
            membership_approval: false,
        };
        l.groups.groups.insert(id.clone(), SimGroup { info: info.clone(), invite, member: true, requests: Vec::new() });
        let rec = json!({"kind": "group", "action": "create", "groupId": id, "subject": subject, "participants": participants});
        Ok(((info, outcomes), Some(rec)))
    });
    Box::pin(async move { r })
}

/// [`Connection::group_info`](crate::engine::Connection::group_info).
pub(super) fn group_info<'a>(c: &'a SimConnection, group: &str) -> BoxFuture<'a, Result<GroupInfo, EngineError>> {
    let r = op(c, |l, _, _| Ok((l.groups.member_of(group)?.info.clone(), None)));
    Box::pin(async move { r })
}

/// [`Connection::groups_joined`](crate::engine::Connection::groups_joined).
pub(super) fn groups_joined<'a>(c: &'a SimConnection) -> BoxFuture<'a, Result<Vec<GroupInfo>, EngineError>> {
    let r = op(c, |l, _, _| Ok((l.groups.groups.values().filter(|g| g.member).map(|g| g.info.clone()).collect(), None)));
    Box::pin(async move { r })
}

/// [`Connection::group_participants`](crate::engine::Connection::group_participants).
pub(super) fn group_participants<'a>(c: &'a SimConnection, group: &str, action: ParticipantAction, participants: &[String], invite: bool) -> BoxFuture<'a, Result<Vec<ParticipantOutcome>, EngineError>> {
    let mut invites: Vec<serde_json::Value> = Vec::new();
    let r = op(c, |l, me, _| {
        let statuses: Vec<ParticipantStatus> = participants.iter().map(|a| add_status(l, a)).collect();
        let g = admin_of(l, me, group)?;
        let mut outcomes = Vec::with_capacity(participants.len());
        for (a, add) in participants.iter().zip(statuses) {
            let p = person(a);
            let at = g.index(&p);
            let status = match (action, at) {
                (ParticipantAction::Add, Some(_)) => ParticipantStatus::Failed,
                (ParticipantAction::Add, None) => {
                    if add == ParticipantStatus::Ok {
                        g.info.participants.push(GroupMember { person: p, role: GroupRole::Member });
                    } else if add == ParticipantStatus::NeedsInvite && invite {
                        invites.push(json!({"kind": "message", "chatId": a, "type": "group_invite", "groupId": group, "code": g.invite}));
                    }
                    add
                }
                (_, None) => ParticipantStatus::NotInGroup,
                (ParticipantAction::Remove, Some(i)) => {
                    g.info.participants.remove(i);
                    ParticipantStatus::Ok
                }
                (ParticipantAction::Promote, Some(i)) => {
                    if g.info.participants[i].role == GroupRole::Member {
                        g.info.participants[i].role = GroupRole::Admin;
                    }
                    ParticipantStatus::Ok
                }
                (ParticipantAction::Demote, Some(i)) => {
                    g.info.participants[i].role = GroupRole::Member;
                    ParticipantStatus::Ok
                }
            };
            outcomes.push(outcome(a, status));
        }
        let rec = json!({"kind": "group", "action": action.as_str(), "groupId": group, "participants": participants});
        Ok((outcomes, Some(rec)))
    });
    for rec in invites {
        c.engine.record(c.session, rec);
    }
    Box::pin(async move { r })
}

/// [`Connection::group_update`](crate::engine::Connection::group_update).
pub(super) fn group_update<'a>(c: &'a SimConnection, group: &str, changes: &GroupChanges) -> BoxFuture<'a, Result<(), EngineError>> {
    let r = op(c, |l, me, _| {
        let g = l.groups.member_of(group)?;
        if g.info.locked && !g.is_admin(me) {
            return Err(EngineError::Refused { code: "401".into(), message: "only admins edit this group's info".into() });
        }
        let i = &mut g.info;
        if let Some(s) = &changes.subject {
            i.subject = s.clone();
        }
        if let Some(d) = &changes.description {
            i.description = d.clone();
        }
        i.announce = changes.announce.unwrap_or(i.announce);
        i.locked = changes.locked.unwrap_or(i.locked);
        i.ephemeral_seconds = changes.ephemeral_seconds.unwrap_or(i.ephemeral_seconds);
        i.membership_approval = changes.membership_approval.unwrap_or(i.membership_approval);
        Ok(((), Some(json!({"kind": "group", "action": "update", "groupId": group}))))
    });
    Box::pin(async move { r })
}

/// [`Connection::group_leave`](crate::engine::Connection::group_leave).
pub(super) fn group_leave<'a>(c: &'a SimConnection, group: &str) -> BoxFuture<'a, Result<(), EngineError>> {
    let r = op(c, |l, me, _| {
        let g = l.groups.member_of(group)?;
        if let Some(i) = g.index(me) {
            g.info.participants.remove(i);
        }
        g.member = false;
        Ok(((), Some(json!({"kind": "group", "action": "leave", "groupId": group}))))
    });
    Box::pin(async move { r })
}

/// [`Connection::group_invite`](crate::engine::Connection::group_invite).
pub(super) fn group_invite<'a>(c: &'a SimConnection, group: &str, revoke: bool) -> BoxFuture<'a, Result<String, EngineError>> {
    let r = op(c, |l, me, session| {
        admin_of(l, me, group)?;
        let fresh = revoke.then(|| l.groups.new_code(session));
        let g = l.groups.member_of(group)?;
        let Some(code) = fresh else { return Ok((g.invite.clone(), None)) };
        g.invite = code.clone();
        Ok((code, Some(json!({"kind": "group", "action": "revoke_invite", "groupId": group}))))
    });
    Box::pin(async move { r })
}

/// The group an invite code leads to: this session's groups first, then
/// the other sessions' (the simulated network is one). Returns the owning
/// session's key and the group id.
fn find_code(map: &std::collections::HashMap<ulid::Ulid, Live>, own: ulid::Ulid, code: &str) -> Option<(ulid::Ulid, String)> {
    let order = std::iter::once(own).chain(map.keys().copied().filter(|k| *k != own));
    for s in order {
        if let Some(l) = map.get(&s) {
            if let Some((id, _)) = l.groups.groups.iter().find(|(_, g)| g.invite == code) {
                return Some((s, id.clone()));
            }
        }
    }
    None
}

/// [`Connection::group_join`](crate::engine::Connection::group_join).
pub(super) fn group_join<'a>(c: &'a SimConnection, code: &str) -> BoxFuture<'a, Result<JoinOutcome, EngineError>> {
    let r = join(c, code, false);
    Box::pin(async move { r })
}

/// [`Connection::group_invite_preview`](crate::engine::Connection::group_invite_preview).
pub(super) fn group_invite_preview<'a>(c: &'a SimConnection, code: &str) -> BoxFuture<'a, Result<GroupInfo, EngineError>> {
    let r = join(c, code, true).and_then(|o| match o {
        JoinOutcome::Joined(info) => Ok(info),
        JoinOutcome::Requested { group_id } => Err(EngineError::NotFound(group_id)),
    });
    Box::pin(async move { r })
}

/// Joins by code (or, with `preview`, only describes the group).
fn join(c: &SimConnection, code: &str, preview: bool) -> Result<JoinOutcome, EngineError> {
    let mut map = c.engine.sessions.lock().map_err(|_| EngineError::Other("sim state poisoned".into()))?;
    let me = match map.get(&c.session) {
        Some(l) if l.linked && l.sink.is_some() => l.groups.me.clone().ok_or_else(|| EngineError::State("not linked".into()))?,
        _ => return Err(EngineError::State("the session is not running".into())),
    };
    let void = || EngineError::NotFound("the invite code is void".into());
    let (owner, id) = find_code(&map, c.session, code).ok_or_else(void)?;
    let source = map.get_mut(&owner).and_then(|l| l.groups.groups.get_mut(&id)).ok_or_else(void)?;
    if preview {
        return Ok(JoinOutcome::Joined(source.info.clone()));
    }
    if source.info.membership_approval {
        if !source.requests.iter().any(|r| same(&r.person, &me)) {
            source.requests.push(JoinRequest { person: me.clone(), requested_at: Some(now_ms()) });
        }
        drop(map);
        c.engine.record(c.session, json!({"kind": "group", "action": "join_request", "groupId": id}));
        return Ok(JoinOutcome::Requested { group_id: id });
    }
    if source.index(&me).is_none() {
        source.info.participants.push(GroupMember { person: me.clone(), role: GroupRole::Member });
    }
    let mut copy = source.clone();
    copy.member = true;
    let info = copy.info.clone();
    if let Some(l) = map.get_mut(&c.session) {
        l.groups.groups.insert(id.clone(), copy);
    }
    drop(map);
    c.engine.record(c.session, json!({"kind": "group", "action": "join", "groupId": id}));
    Ok(JoinOutcome::Joined(info))
}

/// [`Connection::group_requests`](crate::engine::Connection::group_requests).
pub(super) fn group_requests<'a>(c: &'a SimConnection, group: &str) -> BoxFuture<'a, Result<Vec<JoinRequest>, EngineError>> {
    let r = op(c, |l, me, _| Ok((admin_of(l, me, group)?.requests.clone(), None)));
    Box::pin(async move { r })
}

/// [`Connection::group_requests_action`](crate::engine::Connection::group_requests_action).
pub(super) fn group_requests_action<'a>(c: &'a SimConnection, group: &str, approve: bool, participants: &[String]) -> BoxFuture<'a, Result<Vec<ParticipantOutcome>, EngineError>> {
    let r = op(c, |l, me, _| {
        let g = admin_of(l, me, group)?;
        let mut outcomes = Vec::with_capacity(participants.len());
        for a in participants {
            let p = person(a);
            let status = match g.requests.iter().position(|r| same(&r.person, &p)) {
                Some(i) => {
                    let req = g.requests.remove(i);
                    if approve && g.index(&req.person).is_none() {
                        g.info.participants.push(GroupMember { person: req.person, role: GroupRole::Member });
                    }
                    ParticipantStatus::Ok
                }
                None => ParticipantStatus::NotInGroup,
            };
            outcomes.push(outcome(a, status));
        }
        let action = if approve { "approve" } else { "reject" };
        Ok((outcomes, Some(json!({"kind": "group", "action": action, "groupId": group, "participants": participants}))))
    });
    Box::pin(async move { r })
}
