//! The `whatsapp` engine's groups (CONTRACT §13) on whatsapp-rust 0.7:
//! `client.groups()` (`w:g2` IQs), each call bounded by [`CALL_TIMEOUT`].
//! The translation of group notifications (`Event::GroupUpdate`) into
//! [`GroupNotice`](crate::engine::GroupNotice)s is in `groups_translate`;
//! the pure conversions of the crate's answers are in `groups_convert`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use whatsapp_rust::features::{
    GroupCreateOptions, GroupDescription, GroupError, GroupMetadata, GroupParticipantOptions, GroupSubject, JoinGroupResult, MembershipApprovalMode,
    PreviousDescription,
};
use whatsapp_rust::wacore::iq::groups::{normalize_participants, GroupCreateIq, GroupInfoResponse};
use whatsapp_rust::wacore::iq::spec::IqSpec;
use whatsapp_rust::wacore::request::InfoQuery;
use whatsapp_rust::wacore_binary::NodeRef;
use whatsapp_rust::waproto::buffa::MessageField;
use whatsapp_rust::waproto::whatsapp as wa;
use whatsapp_rust::{Client, Jid};

use super::connection::WaConnection;
use super::groups_convert::{group_error, group_info_of, outcomes, parse_group, parse_people, status_of};
pub(super) use super::groups_translate::translate;
use crate::engine::{
    BoxFuture, EngineError, GroupChanges, GroupInfo, JoinOutcome, JoinRequest, ParticipantAction, ParticipantOutcome,
};
use crate::engine::directory::{ParticipantStatus, PersonIds};

/// The longest one group call may take (one or two IQ round trips).
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// Where WhatsApp's invite links point; the code is what follows.
const INVITE_PREFIX: &str = "https://chat.whatsapp.com/";

/// Runs `f` within [`CALL_TIMEOUT`].
async fn bounded<T>(what: &str, f: impl Future<Output = Result<T, EngineError>>) -> Result<T, EngineError> {
    match tokio::time::timeout(CALL_TIMEOUT, f).await {
        Ok(r) => r,
        Err(_) => Err(EngineError::Other(format!("{what}: WhatsApp did not answer within {CALL_TIMEOUT:?}"))),
    }
}

/// The `w:g2` create IQ, answered with the group *and* WhatsApp's code for
/// each participant it refused (`<participant jid error>` in the `<group>`):
/// the crate's `create_group` parses the same answer but drops the codes,
/// so a refused person would read as a member.
struct CreateIq(GroupCreateIq);

impl IqSpec for CreateIq {
    type Response = (GroupInfoResponse, Vec<(String, String)>);

    fn build_iq(&self) -> InfoQuery<'static> {
        self.0.build_iq()
    }

    fn parse_response(&self, response: &NodeRef<'_>) -> Result<Self::Response, whatsapp_rust::anyhow::Error> {
        let info = self.0.parse_response(response)?;
        let refused = response
            .get_optional_child("group")
            .map(|g| {
                g.get_children_by_tag("participant")
                    .filter_map(|p| {
                        let mut a = p.attrs();
                        let jid = a.optional_string("jid")?.to_string();
                        let error = a.optional_string("error")?.to_string();
                        Some((jid, error))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok((info, refused))
    }
}

/// [`Connection::group_create`](crate::engine::Connection::group_create).
pub(super) fn group_create<'a>(c: &'a WaConnection, subject: &str, participants: &[String], description: Option<&str>) -> BoxFuture<'a, Result<(GroupInfo, Vec<ParticipantOutcome>), EngineError>> {
    let subject = subject.to_string();
    let asked = participants.to_vec();
    let description = description.map(str::to_string);
    Box::pin(bounded("creating a group", async move {
        let bad = |e: whatsapp_rust::anyhow::Error| EngineError::Refused { code: "400".into(), message: e.to_string() };
        let subject = GroupSubject::new(subject).map_err(bad)?;
        let mut people = Vec::new();
        for jid in parse_people(&asked)? {
            // A LID goes with its phone number when the client knows it (as the crate's create_group does).
            let mut p = GroupParticipantOptions::new(jid.clone());
            if jid.is_lid() {
                if let Ok(Some(entry)) = c.client.get_lid_pn_entry(&jid).await {
                    p = p.with_phone_number(Jid::pn(&*entry.phone_number));
                }
            }
            people.push(p);
        }
        let mut options = GroupCreateOptions::new(subject.into_string()).with_participants(normalize_participants(&people));
        if let Some(d) = description {
            options.description = Some(GroupDescription::new(d).map_err(bad)?);
        }
        let (answer, refused) = c
            .client
            .execute(CreateIq(GroupCreateIq::new(options)))
            .await
            .map_err(|e| group_error("creating a group", &GroupError::Iq(e)))?;
        let refused_users: Vec<(String, String)> =
            refused.iter().map(|(j, code)| (j.split('@').next().unwrap_or(j).to_string(), code.clone())).collect();
        let mut meta = GroupMetadata::from(answer);
        meta.participants.retain(|p| !refused_users.iter().any(|(u, _)| *u == p.jid.user.as_str()));
        let info = group_info_of(&meta);
        let outcomes = asked
            .iter()
            .map(|a| {
                let user = a.split('@').next().unwrap_or(a);
                if let Some((_, code)) = refused_users.iter().find(|(u, _)| u == user) {
                    let status = status_of(ParticipantAction::Add, Some(code));
                    return ParticipantOutcome { asked: a.clone(), person: Some(PersonIds::from_address(a)), status, code: Some(code.clone()) };
                }
                match info.participants.iter().find(|m| m.person.jid.as_deref() == Some(a) || m.person.lid.as_deref() == Some(a)) {
                    Some(m) => ParticipantOutcome { asked: a.clone(), person: Some(m.person.clone()), status: ParticipantStatus::Ok, code: None },
                    // Not in the answer at all: refused without a code.
                    None => ParticipantOutcome { asked: a.clone(), person: None, status: ParticipantStatus::Failed, code: None },
                }
            })
            .collect();
        Ok((info, outcomes))
    }))
}

/// [`Connection::group_info`](crate::engine::Connection::group_info).
pub(super) fn group_info<'a>(c: &'a WaConnection, group: &str) -> BoxFuture<'a, Result<GroupInfo, EngineError>> {
    let group = group.to_string();
    Box::pin(bounded("reading a group", async move {
        let jid = parse_group(&group)?;
        let meta = c.client.groups().get_metadata(&jid).await.map_err(|e| group_error("reading a group", &e))?;
        Ok(group_info_of(&meta))
    }))
}

/// [`Connection::groups_joined`](crate::engine::Connection::groups_joined).
pub(super) fn groups_joined<'a>(c: &'a WaConnection) -> BoxFuture<'a, Result<Vec<GroupInfo>, EngineError>> {
    Box::pin(bounded("listing groups", async move {
        let all = c.client.groups().get_participating().await.map_err(|e| group_error("listing groups", &e))?;
        let mut groups: Vec<GroupInfo> = all.values().map(group_info_of).collect();
        groups.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(groups)
    }))
}

/// [`Connection::group_participants`](crate::engine::Connection::group_participants).
pub(super) fn group_participants<'a>(c: &'a WaConnection, group: &str, action: ParticipantAction, participants: &[String], invite: bool) -> BoxFuture<'a, Result<Vec<ParticipantOutcome>, EngineError>> {
    let group = group.to_string();
    let asked = participants.to_vec();
    Box::pin(bounded("changing group participants", async move {
        let jid = parse_group(&group)?;
        let people = parse_people(&asked)?;
        let groups = c.client.groups();
        let what = "changing group participants";
        let answer = match action {
            ParticipantAction::Add => groups.add_participants(jid.clone(), &people).await,
            ParticipantAction::Remove => groups.remove_participants(jid.clone(), &people).await,
            ParticipantAction::Promote => groups.promote_participants(jid.clone(), &people).await,
            ParticipantAction::Demote => groups.demote_participants(jid.clone(), &people).await,
        }
        .map_err(|e| group_error(what, &e))?;
        if invite && action == ParticipantAction::Add && answer.iter().any(|r| r.add_request.is_some()) {
            // In the background: the adds are done, and their outcomes do not wait on the invites.
            tokio::spawn(send_invites(c.client.clone(), jid.clone(), answer.clone()));
        }
        Ok(outcomes(action, &asked, &answer))
    }))
}

/// Sends WhatsApp's group invite (a `GroupInviteMessage` with the V4 code
/// the refusal carried) to each person whose privacy refused the add. Best
/// effort: a failed invite leaves the outcome `needs_invite`.
async fn send_invites(client: Arc<Client>, group: Jid, answer: Vec<whatsapp_rust::features::ParticipantChangeResponse>) {
    let refused: Vec<_> = answer.iter().filter(|r| r.error.as_deref() == Some("403")).filter_map(|r| r.add_request.as_ref().map(|a| (r, a))).collect();
    if refused.is_empty() {
        return;
    }
    let name = match tokio::time::timeout(CALL_TIMEOUT, client.groups().get_metadata(&group)).await {
        Ok(Ok(m)) => m.subject,
        _ => String::new(),
    };
    for (r, request) in refused {
        let to = r.phone_number.clone().unwrap_or_else(|| r.jid.clone());
        let message = wa::Message {
            group_invite_message: MessageField::some(wa::message::GroupInviteMessage {
                group_jid: Some(group.to_string()),
                invite_code: Some(request.code.clone()),
                invite_expiration: i64::try_from(request.expiration).ok(),
                group_name: Some(name.clone()),
                ..Default::default()
            }),
            ..Default::default()
        };
        match tokio::time::timeout(CALL_TIMEOUT, client.send_message(to, message)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "whatsapp: could not send a group invite"),
            Err(_) => tracing::warn!("whatsapp: sending a group invite timed out"),
        }
    }
}

/// [`Connection::group_update`](crate::engine::Connection::group_update).
pub(super) fn group_update<'a>(c: &'a WaConnection, group: &str, changes: &GroupChanges) -> BoxFuture<'a, Result<(), EngineError>> {
    let group = group.to_string();
    let changes = changes.clone();
    Box::pin(bounded("changing a group", async move {
        let jid = parse_group(&group)?;
        let groups = c.client.groups();
        let what = "changing a group";
        let bad = |e: whatsapp_rust::anyhow::Error| EngineError::Refused { code: "400".into(), message: e.to_string() };
        // Everything is checked before anything is sent: a bad field changes nothing.
        let subject = changes.subject.map(GroupSubject::new).transpose().map_err(bad)?;
        let description = changes.description.map(|d| d.map(GroupDescription::new).transpose()).transpose().map_err(bad)?;
        if let Some(subject) = subject {
            groups.set_subject(jid.clone(), subject).await.map_err(|e| group_error(what, &e))?;
        }
        if let Some(d) = description {
            groups.set_description(jid.clone(), d, PreviousDescription::Resolve).await.map_err(|e| group_error(what, &e))?;
        }
        if let Some(announce) = changes.announce {
            groups.set_announce(jid.clone(), announce).await.map_err(|e| group_error(what, &e))?;
        }
        if let Some(locked) = changes.locked {
            groups.set_locked(jid.clone(), locked).await.map_err(|e| group_error(what, &e))?;
        }
        if let Some(seconds) = changes.ephemeral_seconds {
            groups.set_ephemeral(jid.clone(), seconds).await.map_err(|e| group_error(what, &e))?;
        }
        if let Some(on) = changes.membership_approval {
            let mode = if on { MembershipApprovalMode::On } else { MembershipApprovalMode::Off };
            groups.set_membership_approval(jid.clone(), mode).await.map_err(|e| group_error(what, &e))?;
        }
        Ok(())
    }))
}

/// [`Connection::group_leave`](crate::engine::Connection::group_leave).
pub(super) fn group_leave<'a>(c: &'a WaConnection, group: &str) -> BoxFuture<'a, Result<(), EngineError>> {
    let group = group.to_string();
    Box::pin(bounded("leaving a group", async move {
        let jid = parse_group(&group)?;
        c.client.groups().leave(jid).await.map_err(|e| group_error("leaving a group", &e))
    }))
}

/// [`Connection::group_invite`](crate::engine::Connection::group_invite):
/// the code (WhatsApp's link without its prefix).
pub(super) fn group_invite<'a>(c: &'a WaConnection, group: &str, revoke: bool) -> BoxFuture<'a, Result<String, EngineError>> {
    let group = group.to_string();
    Box::pin(bounded("reading a group's invite", async move {
        let jid = parse_group(&group)?;
        let link = c.client.groups().get_invite_link(jid, revoke).await.map_err(|e| group_error("reading a group's invite", &e))?;
        Ok(link.strip_prefix(INVITE_PREFIX).unwrap_or(&link).to_string())
    }))
}

/// [`Connection::group_join`](crate::engine::Connection::group_join).
pub(super) fn group_join<'a>(c: &'a WaConnection, code: &str) -> BoxFuture<'a, Result<JoinOutcome, EngineError>> {
    let code = code.to_string();
    Box::pin(bounded("joining a group", async move {
        let groups = c.client.groups();
        match groups.join_with_invite_code(&code).await.map_err(|e| group_error("joining a group", &e))? {
            JoinGroupResult::Joined(jid) => {
                let meta = groups.get_metadata(&jid).await.map_err(|e| group_error("reading the joined group", &e))?;
                Ok(JoinOutcome::Joined(group_info_of(&meta)))
            }
            JoinGroupResult::PendingApproval(jid) => Ok(JoinOutcome::Requested { group_id: jid.to_string() }),
        }
    }))
}

/// [`Connection::group_invite_preview`](crate::engine::Connection::group_invite_preview).
pub(super) fn group_invite_preview<'a>(c: &'a WaConnection, code: &str) -> BoxFuture<'a, Result<GroupInfo, EngineError>> {
    let code = code.to_string();
    Box::pin(bounded("reading an invite", async move {
        let meta = c.client.groups().get_invite_info(&code).await.map_err(|e| group_error("reading an invite", &e))?;
        Ok(group_info_of(&meta))
    }))
}

/// [`Connection::group_requests`](crate::engine::Connection::group_requests).
pub(super) fn group_requests<'a>(c: &'a WaConnection, group: &str) -> BoxFuture<'a, Result<Vec<JoinRequest>, EngineError>> {
    let group = group.to_string();
    Box::pin(bounded("reading join requests", async move {
        let jid = parse_group(&group)?;
        let requests = c.client.groups().get_membership_requests(jid).await.map_err(|e| group_error("reading join requests", &e))?;
        Ok(requests
            .into_iter()
            .map(|r| JoinRequest {
                person: PersonIds::from_address(&r.jid.to_string()),
                requested_at: r.request_time.and_then(|t| i64::try_from(t).ok()).map(|t| t.saturating_mul(1000)),
            })
            .collect())
    }))
}

/// [`Connection::group_requests_action`](crate::engine::Connection::group_requests_action).
pub(super) fn group_requests_action<'a>(c: &'a WaConnection, group: &str, approve: bool, participants: &[String]) -> BoxFuture<'a, Result<Vec<ParticipantOutcome>, EngineError>> {
    let group = group.to_string();
    let asked = participants.to_vec();
    Box::pin(bounded("answering join requests", async move {
        let jid = parse_group(&group)?;
        let people = parse_people(&asked)?;
        let groups = c.client.groups();
        let answer = if approve {
            groups.approve_membership_requests(jid, &people).await
        } else {
            groups.reject_membership_requests(jid, &people).await
        }
        .map_err(|e| group_error("answering join requests", &e))?;
        // Approving adds; rejecting is closest to removing (404: no such request).
        let as_action = if approve { ParticipantAction::Add } else { ParticipantAction::Remove };
        Ok(outcomes(as_action, &asked, &answer))
    }))
}
