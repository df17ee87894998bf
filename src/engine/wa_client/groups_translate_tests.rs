//! The pure rules of group notifications, on constructed updates.

use whatsapp_rust::chrono::{DateTime, Utc};
use whatsapp_rust::Jid;

use super::*;

const GROUP: &str = "120363000000000001@g.us";
const ME: &str = "62800";
const ADMIN: &str = "62811@s.whatsapp.net";

fn jid(s: &str) -> Jid {
    s.parse().expect("a jid")
}

fn update(action: A) -> GroupUpdate {
    GroupUpdate::builder()
        .group_jid(jid(GROUP))
        .timestamp(DateTime::<Utc>::UNIX_EPOCH)
        .is_lid_addressing_mode(false)
        .participant(jid(ADMIN))
        .action(action)
        .build()
}

fn member(j: &str, lid: Option<&str>) -> GroupParticipantInfo {
    GroupParticipantInfo {
        jid: jid(j),
        phone_number: None,
        display_name: None,
        r#type: None,
        lid: lid.map(jid),
        username: None,
        join_time: None,
        group_history_sent_state: None,
    }
}

fn own() -> Vec<String> {
    vec![ME.to_string(), "999".to_string()]
}

#[test]
fn others_added_are_participants_with_both_addresses_and_who_did_it() {
    let u = update(A::Add { participants: vec![member("62822@s.whatsapp.net", Some("777@lid"))], reason: None });
    assert!(!needs_metadata(&u, &own()));
    let n = notices(&u, &own(), None);
    assert_eq!(
        n,
        vec![GroupNotice::Participants {
            group_id: GROUP.into(),
            action: ParticipantAction::Add,
            participants: vec![PersonIds { jid: Some("62822@s.whatsapp.net".into()), lid: Some("777@lid".into()) }],
            by: Some(ADMIN.into()),
        }]
    );
}

#[test]
fn the_number_added_joins_with_the_fetched_group_and_the_rest_are_participants() {
    let u = update(A::Add { participants: vec![member("999@lid", None), member("62822@s.whatsapp.net", None)], reason: None });
    assert!(needs_metadata(&u, &own()));
    let mut g = bare_group(GROUP);
    g.subject = "Tim".into();
    let n = notices(&u, &own(), Some(g.clone()));
    assert_eq!(n[0], GroupNotice::Joined { group: g, by: Some(ADMIN.into()) });
    assert!(matches!(&n[1], GroupNotice::Participants { participants, .. } if participants.len() == 1));
    assert_eq!(n.len(), 2);
}

#[test]
fn the_number_removed_left_and_others_removed_promoted_demoted() {
    let u = update(A::Remove { participants: vec![member(&format!("{ME}@s.whatsapp.net"), None)], reason: None });
    assert_eq!(notices(&u, &own(), None), vec![GroupNotice::Left { group_id: GROUP.into(), by: Some(ADMIN.into()) }]);
    for (action, want) in [
        (A::Promote { participants: vec![member("62822@s.whatsapp.net", None)] }, ParticipantAction::Promote),
        (A::Demote { participants: vec![member("62822@s.whatsapp.net", None)] }, ParticipantAction::Demote),
        (A::Remove { participants: vec![member("62822@s.whatsapp.net", None)], reason: None }, ParticipantAction::Remove),
    ] {
        let n = notices(&update(action), &own(), None);
        assert!(matches!(&n[..], [GroupNotice::Participants { action, .. }] if *action == want), "{n:?}");
    }
}

#[test]
fn settings_become_changes() {
    let cases = [
        (A::Subject { subject: "Baru".into(), subject_owner: None, subject_time: None }, GroupChanges { subject: Some("Baru".into()), ..Default::default() }),
        (A::Description { id: "1".into(), description: None }, GroupChanges { description: Some(None), ..Default::default() }),
        (A::Announce, GroupChanges { announce: Some(true), ..Default::default() }),
        (A::NotAnnounce, GroupChanges { announce: Some(false), ..Default::default() }),
        (A::Locked { threshold: None }, GroupChanges { locked: Some(true), ..Default::default() }),
        (A::Unlocked, GroupChanges { locked: Some(false), ..Default::default() }),
        (A::Ephemeral { expiration: 86400, trigger: None }, GroupChanges { ephemeral_seconds: Some(86400), ..Default::default() }),
        (A::MembershipApprovalMode { enabled: true }, GroupChanges { membership_approval: Some(true), ..Default::default() }),
    ];
    for (action, want) in cases {
        let n = notices(&update(action), &own(), None);
        assert_eq!(n, vec![GroupNotice::Changed { group_id: GROUP.into(), changes: want, by: Some(ADMIN.into()) }]);
    }
}

#[test]
fn join_requests_name_the_requester() {
    let u = update(A::CreatedMembershipRequests {
        request_method: Default::default(),
        parent_group_jid: None,
        requests: vec![member("555@lid", None)],
    });
    assert_eq!(
        notices(&u, &own(), None),
        vec![GroupNotice::JoinRequest { group_id: GROUP.into(), requester: PersonIds { jid: None, lid: Some("555@lid".into()) } }]
    );
    assert!(notices(&update(A::RevokeInvite), &own(), None).is_empty());
}
