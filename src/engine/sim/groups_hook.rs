//! `sim/group-event` (CONTRACT §15): the simulated network changes a group
//! as someone else did, and tells the session as WhatsApp would (an
//! [`EngineEvent::Group`] notification).

use super::groups::{person, SimGroup};
use super::SimEngine;
use crate::engine::directory::{GroupMember, GroupRole, PersonIds};
use crate::engine::{EngineError, EngineEvent, GroupChanges, GroupInfo, GroupNotice, ParticipantAction};
use crate::store::now_ms;

/// What someone else did in a group (`sim/group-event`).
#[derive(Clone, Debug)]
pub enum SimGroupAction {
    /// The session's number was put in a new group.
    Created,
    Participants(ParticipantAction),
    Subject(String),
}

impl SimEngine {
    /// Someone (`by`, phone digits) changes group `group` (a new one is
    /// made for `Created` when `group` is `None`); `participants` are phone
    /// digits. Returns the group id. Adding or removing the session's own
    /// number tells it `Joined`/`Left`.
    pub fn group_event(
        &self,
        id: ulid::Ulid,
        group: Option<&str>,
        action: SimGroupAction,
        participants: &[String],
        by: &str,
    ) -> Result<String, EngineError> {
        let by_person = person(&format!("{by}@s.whatsapp.net"));
        let by_jid = by_person.jid.clone();
        let people: Vec<PersonIds> = participants.iter().map(|p| person(&format!("{p}@s.whatsapp.net"))).collect();
        let (sink, notices, group_id) = self.with(id, |l| {
            if !l.linked {
                return Err(EngineError::State("the session is not linked".into()));
            }
            let me = l.groups.me.clone().ok_or_else(|| EngineError::State("the session is not linked".into()))?;
            let sink = l.sink.clone().ok_or_else(|| EngineError::State("not running".into()))?;
            let is_me = |p: &PersonIds| p.jid.is_some() && p.jid == me.jid;
            let mut notices = Vec::new();
            if let SimGroupAction::Created = action {
                let (fresh, invite) = l.groups.fresh(&format!("{id}:by:{by}"));
                let gid = group.map_or(fresh, str::to_string);
                let mut members = vec![GroupMember { person: by_person.clone(), role: GroupRole::SuperAdmin }, GroupMember { person: me.clone(), role: GroupRole::Member }];
                for p in &people {
                    if is_me(p) || members.iter().any(|m| m.person.jid == p.jid) {
                        continue;
                    }
                    members.push(GroupMember { person: p.clone(), role: GroupRole::Member });
                }
                let info = GroupInfo {
                    id: gid.clone(),
                    subject: "Group".into(),
                    description: None,
                    owner: by_jid.clone(),
                    created_at: Some(now_ms()),
                    participants: members,
                    announce: false,
                    locked: false,
                    ephemeral_seconds: 0,
                    membership_approval: false,
                };
                l.groups.groups.insert(gid.clone(), SimGroup { info: info.clone(), invite, member: true, requests: Vec::new() });
                notices.push(GroupNotice::Joined { group: info, by: by_jid.clone() });
                return Ok((sink, notices, gid));
            }
            let gid = group.ok_or_else(|| EngineError::Invalid("groupId is required".into()))?.to_string();
            let g = l.groups.groups.get_mut(&gid).ok_or_else(|| EngineError::NotFound(format!("group {gid} not found")))?;
            match action {
                SimGroupAction::Created => {}
                SimGroupAction::Subject(s) => {
                    g.info.subject = s.clone();
                    let changes = GroupChanges { subject: Some(s), ..GroupChanges::default() };
                    notices.push(GroupNotice::Changed { group_id: gid.clone(), changes, by: by_jid.clone() });
                }
                SimGroupAction::Participants(a) => {
                    let mut others = Vec::new();
                    for p in &people {
                        let at = g.index(p);
                        match (a, at) {
                            (ParticipantAction::Add, None) => g.info.participants.push(GroupMember { person: p.clone(), role: GroupRole::Member }),
                            (ParticipantAction::Remove, Some(i)) => {
                                g.info.participants.remove(i);
                            }
                            (ParticipantAction::Promote, Some(i)) => g.info.participants[i].role = GroupRole::Admin,
                            (ParticipantAction::Demote, Some(i)) => g.info.participants[i].role = GroupRole::Member,
                            _ => continue,
                        }
                        if is_me(p) && a == ParticipantAction::Add {
                            g.member = true;
                            notices.push(GroupNotice::Joined { group: g.info.clone(), by: by_jid.clone() });
                        } else if is_me(p) && a == ParticipantAction::Remove {
                            g.member = false;
                            notices.push(GroupNotice::Left { group_id: gid.clone(), by: by_jid.clone() });
                        } else {
                            others.push(p.clone());
                        }
                    }
                    if !others.is_empty() {
                        notices.push(GroupNotice::Participants { group_id: gid.clone(), action: a, participants: others, by: by_jid.clone() });
                    }
                }
            }
            Ok((sink, notices, gid))
        })?;
        for n in notices {
            sink.emit(EngineEvent::Group(Box::new(n)));
        }
        Ok(group_id)
    }
}
