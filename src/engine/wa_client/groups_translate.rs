//! Group notifications (`<notification type="w:gp2">`, reported by the
//! client as one `Event::GroupUpdate` per action) → the engine's
//! [`GroupNotice`]s. The rules are the pure [`notices`]; [`translate`] adds
//! what only the client knows: who the session is, and the group's
//! metadata when the number itself joined.

use tokio::time::timeout;
use whatsapp_rust::types::events::{Event, GroupUpdate};
use whatsapp_rust::wacore::stanza::groups::{GroupNotificationAction as A, GroupParticipantInfo};
use whatsapp_rust::{Client, Jid};

/// How long one LID↔phone lookup may take before the person goes without it.
const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// How long reading a group the number joined may hold up the session's
/// ordered event queue before the notice goes out with the id alone.
const METADATA_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

use super::groups_convert::{group_info_of, person_of};
use crate::engine::directory::PersonIds;
use crate::engine::{EngineEvent, GroupChanges, GroupInfo, GroupNotice, ParticipantAction};

/// The group notices for one client event (none for other events).
pub(super) async fn translate(client: Option<&Client>, event: &Event) -> Vec<EngineEvent> {
    let Event::GroupUpdate(update) = event else { return Vec::new() };
    let own: Vec<String> = client.map(|c| [c.pn(), c.lid()].into_iter().flatten().map(|j| j.user.to_string()).collect()).unwrap_or_default();
    let mut group = None;
    if needs_metadata(update, &own) {
        if let Some(c) = client {
            match timeout(METADATA_TIMEOUT, c.groups().get_metadata(&update.group_jid)).await {
                Ok(Ok(meta)) => group = Some(group_info_of(&meta)),
                Ok(Err(e)) => tracing::warn!(error = %e, "whatsapp: could not read a group the number joined"),
                Err(_) => tracing::warn!("whatsapp: reading a group the number joined timed out"),
            }
        }
    }
    let mut out = notices(update, &own, group);
    if let Some(c) = client {
        for n in &mut out {
            for p in people_of(n) {
                fill(c, p).await;
            }
        }
    }
    out.into_iter().map(|n| EngineEvent::Group(Box::new(n))).collect()
}

/// The persons a notice names.
fn people_of(n: &mut GroupNotice) -> Vec<&mut PersonIds> {
    match n {
        GroupNotice::Joined { group, .. } => group.participants.iter_mut().map(|m| &mut m.person).collect(),
        GroupNotice::Participants { participants, .. } => participants.iter_mut().collect(),
        GroupNotice::JoinRequest { requester, .. } => vec![requester],
        GroupNotice::Left { .. } | GroupNotice::Changed { .. } => Vec::new(),
    }
}

/// Fills the address a person lacks (phone or LID) from the client's
/// LID↔phone cache, when it knows it.
async fn fill(client: &Client, p: &mut PersonIds) {
    let known = match (&p.jid, &p.lid) {
        (Some(_), Some(_)) | (None, None) => return,
        (Some(j), None) | (None, Some(j)) => j.clone(),
    };
    let Ok(jid) = known.parse::<Jid>() else { return };
    let Ok(Ok(Some(entry))) = timeout(LOOKUP_TIMEOUT, client.get_lid_pn_entry(&jid)).await else { return };
    if jid.is_lid() {
        p.jid = Some(Jid::pn(&*entry.phone_number).to_string());
    } else {
        p.lid = Some(Jid::lid(&*entry.lid).to_string());
    }
}

fn is_own(p: &GroupParticipantInfo, own: &[String]) -> bool {
    [Some(&p.jid), p.phone_number.as_ref(), p.lid.as_ref()].into_iter().flatten().any(|j| own.iter().any(|o| *o == j.user.as_str()))
}

fn person(p: &GroupParticipantInfo) -> PersonIds {
    let other = if p.jid.is_lid() { p.phone_number.as_ref() } else { p.lid.as_ref() };
    person_of(&p.jid, other)
}

/// Whether the update makes the number a member (its notice then carries the group).
pub(super) fn needs_metadata(update: &GroupUpdate, own: &[String]) -> bool {
    match &update.action {
        A::Add { participants, .. } => participants.iter().any(|p| is_own(p, own)),
        A::Create { .. } => true,
        _ => false,
    }
}

/// The notices for one update. `own`: the number's user parts (phone and
/// LID); `group`: the group's metadata, when the number joined (without
/// it, a `Joined` carries the id alone).
pub(super) fn notices(update: &GroupUpdate, own: &[String], group: Option<GroupInfo>) -> Vec<GroupNotice> {
    let group_id = update.group_jid.to_string();
    let by = update.participant_pn.as_ref().or(update.participant.as_ref()).map(|j| j.to_non_ad().to_string());
    let joined = |group: Option<GroupInfo>| GroupNotice::Joined {
        group: group.unwrap_or_else(|| bare_group(&group_id)),
        by: by.clone(),
    };
    let people = |action: ParticipantAction, ps: &[GroupParticipantInfo]| -> Option<GroupNotice> {
        let others: Vec<PersonIds> = ps.iter().filter(|p| !is_own(p, own)).map(person).collect();
        (!others.is_empty()).then(|| GroupNotice::Participants { group_id: group_id.clone(), action, participants: others, by: by.clone() })
    };
    let changed = |changes: GroupChanges| vec![GroupNotice::Changed { group_id: group_id.clone(), changes, by: by.clone() }];
    match &update.action {
        A::Add { participants, .. } => {
            let mut out = Vec::new();
            if participants.iter().any(|p| is_own(p, own)) {
                out.push(joined(group));
            }
            out.extend(people(ParticipantAction::Add, participants));
            out
        }
        A::Remove { participants, .. } => {
            let mut out = Vec::new();
            if participants.iter().any(|p| is_own(p, own)) {
                out.push(GroupNotice::Left { group_id: group_id.clone(), by: by.clone() });
            }
            out.extend(people(ParticipantAction::Remove, participants));
            out
        }
        A::Promote { participants } => people(ParticipantAction::Promote, participants).into_iter().collect(),
        A::Demote { participants } => people(ParticipantAction::Demote, participants).into_iter().collect(),
        A::Create { .. } => vec![joined(group)],
        A::Delete { .. } => vec![GroupNotice::Left { group_id, by }],
        A::Subject { subject, .. } => changed(GroupChanges { subject: Some(subject.clone()), ..Default::default() }),
        A::Description { description, .. } => changed(GroupChanges { description: Some(description.clone()), ..Default::default() }),
        A::Locked { .. } => changed(GroupChanges { locked: Some(true), ..Default::default() }),
        A::Unlocked => changed(GroupChanges { locked: Some(false), ..Default::default() }),
        A::Announce => changed(GroupChanges { announce: Some(true), ..Default::default() }),
        A::NotAnnounce => changed(GroupChanges { announce: Some(false), ..Default::default() }),
        A::Ephemeral { expiration, .. } => changed(GroupChanges { ephemeral_seconds: Some(*expiration), ..Default::default() }),
        A::MembershipApprovalMode { enabled } => changed(GroupChanges { membership_approval: Some(*enabled), ..Default::default() }),
        A::MembershipApprovalRequest { .. } => match (&update.participant, &update.participant_pn) {
            (Some(p), pn) => vec![GroupNotice::JoinRequest { group_id, requester: person_of(p, pn.as_ref()) }],
            (None, Some(pn)) => vec![GroupNotice::JoinRequest { group_id, requester: person_of(pn, None) }],
            (None, None) => Vec::new(),
        },
        A::CreatedMembershipRequests { requests, .. } => requests
            .iter()
            .map(|r| GroupNotice::JoinRequest { group_id: group_id.clone(), requester: person(r) })
            .collect(),
        _ => Vec::new(),
    }
}

/// A group known by its id alone.
fn bare_group(id: &str) -> GroupInfo {
    GroupInfo {
        id: id.to_string(),
        subject: String::new(),
        description: None,
        owner: None,
        created_at: None,
        participants: Vec::new(),
        announce: false,
        locked: false,
        ephemeral_seconds: 0,
        membership_approval: false,
    }
}

#[cfg(test)]
#[path = "groups_translate_tests.rs"]
mod tests;
