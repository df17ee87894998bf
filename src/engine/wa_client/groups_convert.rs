//! Pure conversions between whatsapp-rust's group answers and the engine's
//! group values: metadata → [`GroupInfo`], per-participant answers →
//! [`ParticipantOutcome`]s, `GroupError` → [`EngineError`].

use whatsapp_rust::features::{GroupError, GroupMetadata, GroupParticipant, ParticipantChangeResponse, ParticipantType};
use whatsapp_rust::wacore_binary::JidExt as _;
use whatsapp_rust::{IqError, Jid};

use super::send::parse_jid;
use crate::engine::directory::{GroupMember, GroupRole, ParticipantStatus, PersonIds};
use crate::engine::{EngineError, GroupInfo, ParticipantAction, ParticipantOutcome};

/// A person from a JID and the other address WhatsApp gave beside it.
pub(super) fn person_of(jid: &Jid, other: Option<&Jid>) -> PersonIds {
    let (mut pn, mut lid) = (None, None);
    for j in std::iter::once(jid).chain(other) {
        let bare = j.to_non_ad().to_string();
        if j.is_lid() {
            lid.get_or_insert(bare);
        } else if j.is_pn() {
            pn.get_or_insert(bare);
        }
    }
    if pn.is_none() && lid.is_none() {
        return PersonIds::from_address(&jid.to_string());
    }
    PersonIds { jid: pn, lid }
}

fn member_of(p: &GroupParticipant) -> GroupMember {
    let other = if p.jid.is_lid() { p.phone_number.as_ref() } else { p.lid.as_ref() };
    let role = match p.participant_type {
        ParticipantType::SuperAdmin => GroupRole::SuperAdmin,
        ParticipantType::Admin => GroupRole::Admin,
        ParticipantType::Member => GroupRole::Member,
    };
    GroupMember { person: person_of(&p.jid, other), role }
}

/// The engine's view of a group's metadata.
pub(super) fn group_info_of(m: &GroupMetadata) -> GroupInfo {
    // The creator by phone number when WhatsApp gives one (a LID group names a LID).
    let owner = match (&m.creator, &m.creator_pn) {
        (Some(c), Some(pn)) if c.is_lid() => Some(pn.to_non_ad().to_string()),
        (Some(c), _) => Some(c.to_non_ad().to_string()),
        (None, pn) => pn.as_ref().map(|p| p.to_non_ad().to_string()),
    };
    GroupInfo {
        id: m.id.to_string(),
        subject: m.subject.clone(),
        description: m.description.clone(),
        owner,
        created_at: m.creation_time.and_then(|t| i64::try_from(t).ok()).map(|t| t.saturating_mul(1000)),
        participants: m.participants.iter().map(member_of).collect(),
        announce: m.is_announcement,
        locked: m.is_locked,
        ephemeral_seconds: m.ephemeral.and_then(|e| e.expiration).unwrap_or(0),
        membership_approval: m.membership_approval,
    }
}

/// How one participant fared, from WhatsApp's code for `action`.
pub(super) fn status_of(action: ParticipantAction, error: Option<&str>) -> ParticipantStatus {
    match (action, error) {
        (_, None) => ParticipantStatus::Ok,
        // Already in the group: what was asked holds.
        (ParticipantAction::Add, Some("409")) => ParticipantStatus::Ok,
        (ParticipantAction::Add, Some("403")) => ParticipantStatus::NeedsInvite,
        (ParticipantAction::Add, Some("404")) => ParticipantStatus::NotOnWhatsapp,
        (_, Some("404")) => ParticipantStatus::NotInGroup,
        (_, Some(_)) => ParticipantStatus::Failed,
    }
}

/// Per asked address, its answer (matched by phone JID, LID or user);
/// an address WhatsApp did not answer for `failed`.
pub(super) fn outcomes(action: ParticipantAction, asked: &[String], answer: &[ParticipantChangeResponse]) -> Vec<ParticipantOutcome> {
    asked
        .iter()
        .map(|a| {
            let user = a.split('@').next().unwrap_or(a);
            let found = answer.iter().find(|r| {
                r.jid.to_string() == *a
                    || r.phone_number.as_ref().is_some_and(|p| p.to_string() == *a)
                    || r.jid.user.as_str() == user
                    || r.phone_number.as_ref().is_some_and(|p| p.user.as_str() == user)
            });
            match found {
                Some(r) => {
                    let status = status_of(action, r.error.as_deref());
                    let code = if status == ParticipantStatus::Ok { None } else { r.error.clone() };
                    ParticipantOutcome { asked: a.clone(), person: Some(person_of(&r.jid, r.phone_number.as_ref())), status, code }
                }
                None => ParticipantOutcome { asked: a.clone(), person: None, status: ParticipantStatus::Failed, code: None },
            }
        })
        .collect()
}

/// A group address (`…@g.us`).
pub(super) fn parse_group(group: &str) -> Result<Jid, EngineError> {
    let jid = parse_jid(group).map_err(|m| EngineError::Refused { code: "400".into(), message: m })?;
    if jid.is_group() {
        Ok(jid)
    } else {
        Err(EngineError::Refused { code: "400".into(), message: format!("not a group: {group}") })
    }
}

/// People's addresses.
pub(super) fn parse_people(people: &[String]) -> Result<Vec<Jid>, EngineError> {
    people.iter().map(|p| parse_jid(p).map_err(|m| EngineError::Refused { code: "400".into(), message: m })).collect()
}

/// An engine error for a failed group call: 404 (item-not-found) →
/// `NotFound`; WhatsApp's other refusals (401/403 not an admin, 406, 409,
/// …) → `Refused` with the code; a lost connection → `Connect`.
pub(super) fn group_error(what: &str, e: &GroupError) -> EngineError {
    match e {
        GroupError::Iq(iq) => iq_error(what, iq),
        GroupError::InvalidRequest(m) => EngineError::Refused { code: "400".into(), message: format!("{what}: {m}") },
        GroupError::DescriptionConflict => EngineError::Refused { code: "409".into(), message: format!("{what}: {e}") },
        other => EngineError::Other(format!("{what}: {other}")),
    }
}

fn iq_error(what: &str, e: &IqError) -> EngineError {
    match e {
        IqError::ServerError { code: 404, text, .. } => EngineError::NotFound(format!("{what}: {text}")),
        IqError::ServerError { code, text, .. } if *code < 500 => EngineError::Refused { code: code.to_string(), message: text.clone() },
        IqError::NotConnected | IqError::Disconnected(_) | IqError::Socket(_) | IqError::InternalChannelClosed => {
            EngineError::Connect(format!("{what}: not connected to WhatsApp ({e})"))
        }
        IqError::Timeout => EngineError::Other(format!("{what}: WhatsApp did not answer in time")),
        other => EngineError::Other(format!("{what}: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_per_action() {
        use ParticipantAction::*;
        assert_eq!(status_of(Add, None), ParticipantStatus::Ok);
        assert_eq!(status_of(Add, Some("409")), ParticipantStatus::Ok);
        assert_eq!(status_of(Add, Some("403")), ParticipantStatus::NeedsInvite);
        assert_eq!(status_of(Add, Some("404")), ParticipantStatus::NotOnWhatsapp);
        assert_eq!(status_of(Remove, Some("404")), ParticipantStatus::NotInGroup);
        assert_eq!(status_of(Promote, Some("406")), ParticipantStatus::Failed);
    }

    #[test]
    fn a_lid_and_its_phone_make_one_person() {
        let lid: Jid = "555@lid".parse().expect("lid");
        let pn: Jid = "62811@s.whatsapp.net".parse().expect("pn");
        let p = person_of(&lid, Some(&pn));
        assert_eq!(p, PersonIds { jid: Some("62811@s.whatsapp.net".into()), lid: Some("555@lid".into()) });
        assert_eq!(person_of(&pn, None), PersonIds { jid: Some("62811@s.whatsapp.net".into()), lid: None });
    }

    #[test]
    fn a_lid_addressed_group_names_each_person_by_phone_and_lid() {
        let lid = |s: &str| -> Jid { s.parse().expect("jid") };
        let member = |jid: &str, pn: Option<&str>, t: ParticipantType| GroupParticipant {
            jid: lid(jid),
            phone_number: pn.map(lid),
            lid: None,
            username: None,
            participant_type: t,
            details: None,
        };
        let meta = GroupMetadata {
            id: lid("120363000000000009@g.us"),
            subject: "Tim".into(),
            creator: Some(lid("555@lid")),
            creator_pn: Some(lid("62811@s.whatsapp.net")),
            creation_time: Some(1_700_000_000),
            participants: vec![
                member("555@lid", Some("62811@s.whatsapp.net"), ParticipantType::SuperAdmin),
                member("556@lid", None, ParticipantType::Admin),
                member("62822@s.whatsapp.net", None, ParticipantType::Member),
            ],
            is_announcement: true,
            membership_approval: true,
            ephemeral: Some(whatsapp_rust::features::GroupEphemeralSettings { expiration: Some(86400), trigger: None }),
            ..Default::default()
        };
        let g = group_info_of(&meta);
        assert_eq!(g.id, "120363000000000009@g.us");
        assert_eq!(g.owner.as_deref(), Some("62811@s.whatsapp.net"), "the creator by phone");
        assert_eq!(g.created_at, Some(1_700_000_000_000));
        assert!(g.announce && g.membership_approval && !g.locked);
        assert_eq!(g.ephemeral_seconds, 86400);
        let people: Vec<(PersonIds, GroupRole)> = g.participants.into_iter().map(|m| (m.person, m.role)).collect();
        assert_eq!(
            people,
            vec![
                (PersonIds { jid: Some("62811@s.whatsapp.net".into()), lid: Some("555@lid".into()) }, GroupRole::SuperAdmin),
                (PersonIds { jid: None, lid: Some("556@lid".into()) }, GroupRole::Admin),
                (PersonIds { jid: Some("62822@s.whatsapp.net".into()), lid: None }, GroupRole::Member),
            ]
        );
    }

    #[test]
    fn answers_are_matched_to_what_was_asked() {
        use whatsapp_rust::wacore::protocol::ProtocolNode as _;
        let answer = |j: &str, pn: Option<&str>, error: Option<&str>| {
            let mut b = whatsapp_rust::NodeBuilder::new("participant").attr("jid", j);
            if let Some(p) = pn {
                b = b.attr("phone_number", p);
            }
            if let Some(e) = error {
                b = b.attr("error", e);
            }
            ParticipantChangeResponse::try_from_node(&b.build()).expect("a participant answer")
        };
        let asked = vec!["62811@s.whatsapp.net".to_string(), "62822@s.whatsapp.net".to_string(), "62833@s.whatsapp.net".to_string()];
        let got = outcomes(ParticipantAction::Add, &asked, &[answer("555@lid", Some("62811@s.whatsapp.net"), None), answer("62822@s.whatsapp.net", None, Some("403"))]);
        assert_eq!(got[0].status, ParticipantStatus::Ok);
        assert_eq!(got[0].person, Some(PersonIds { jid: Some("62811@s.whatsapp.net".into()), lid: Some("555@lid".into()) }));
        assert_eq!((got[1].status, got[1].code.as_deref()), (ParticipantStatus::NeedsInvite, Some("403")));
        assert_eq!((got[2].status, got[2].person.clone()), (ParticipantStatus::Failed, None), "no answer for it");
    }

    #[test]
    fn errors_map_to_engine_errors() {
        let e = GroupError::Iq(IqError::ServerError { code: 404, text: "item-not-found".into(), error_type: None, backoff: None });
        assert!(matches!(group_error("x", &e), EngineError::NotFound(_)));
        let e = GroupError::Iq(IqError::ServerError { code: 403, text: "forbidden".into(), error_type: None, backoff: None });
        assert!(matches!(group_error("x", &e), EngineError::Refused { code, .. } if code == "403"));
        assert!(matches!(group_error("x", &GroupError::Iq(IqError::NotConnected)), EngineError::Connect(_)));
    }
}
