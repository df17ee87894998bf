//! The idempotent apply of group notices: a notice that changes nothing
//! (the notification of a change the gateway already applied, a repeat)
//! writes nothing and emits no event; each real change emits exactly one.

use redb::ReadableTableMetadata;

use super::groups::apply;
use crate::engine::directory::{GroupMember, GroupRole, PersonIds};
use crate::engine::{GroupChanges, GroupInfo, GroupNotice, ParticipantAction};
use crate::store::records::{Session, SessionStatus};
use crate::store::tables::EVENTS;
use crate::store::Store;

const G: &str = "120363000000000001@g.us";

fn session() -> Session {
    Session {
        organization_id: "o".into(),
        created_by_user_id: "u".into(),
        gateway_id: "gw".into(),
        label: "L".into(),
        phone_number: Some("6281100000001".into()),
        status: SessionStatus::Working,
        auto_read: false,
        presence_typing: true,
        rate_per_min: 20,
        rate_per_hour: 600,
        is_admin_session: false,
        wa_jid: Some("6281100000001@s.whatsapp.net".into()),
        wa_lid: Some("1@lid".into()),
        last_connected_at: None,
        desired_running: true,
        last_error: None,
        created_at: 1,
        updated_at: 1,
    }
}

fn info() -> GroupInfo {
    GroupInfo {
        id: G.into(),
        subject: "S".into(),
        description: None,
        owner: Some("6281100000001@s.whatsapp.net".into()),
        created_at: Some(1),
        participants: vec![GroupMember { person: PersonIds::from_address("6281100000001@s.whatsapp.net"), role: GroupRole::SuperAdmin }],
        announce: false,
        locked: false,
        ephemeral_seconds: 0,
        membership_approval: false,
    }
}

/// Applies `n` in its own transaction; returns (changed, events in the file, last event data).
fn run(s: &Store, n: GroupNotice) -> (bool, u64) {
    let txn = s.write().expect("w");
    let changed = apply(&txn, 7, &session(), n, 10).expect("apply");
    s.commit(txn).expect("c");
    (changed, s.read().expect("r").open_table(EVENTS).expect("events").len().expect("len"))
}

fn last_event(s: &Store) -> serde_json::Value {
    let page = s.read().expect("r");
    let t = page.open_table(EVENTS).expect("events");
    let (_, v) = redb::ReadableTable::last(&t).expect("last").expect("an event");
    let e = <crate::store::message_records::Event as crate::store::records::Record>::decode(v.value()).expect("decode");
    match e.data {
        crate::store::message_records::EventData::Directory(j) => serde_json::from_str(&j).expect("json"),
        _ => serde_json::Value::Null,
    }
}

#[test]
fn each_change_emits_once_and_a_repeat_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let s = Store::open(&dir.path().join("a.redb"), 1 << 20).expect("open");
    let joined = || GroupNotice::Joined { group: info(), by: None };
    assert_eq!(run(&s, joined()), (true, 1));
    assert_eq!(run(&s, joined()), (false, 1));
    let subject = || GroupNotice::Changed {
        group_id: G.into(),
        changes: GroupChanges { subject: Some("T".into()), announce: Some(false), ..GroupChanges::default() },
        by: Some("6281100000001@s.whatsapp.net".into()),
    };
    assert_eq!(run(&s, subject()), (true, 2));
    // Only what changed is told; `by` is the session itself, both addresses.
    assert_eq!(last_event(&s)["changes"], serde_json::json!({"subject": "T"}));
    assert_eq!(last_event(&s)["by"]["lid"], "1@lid");
    assert_eq!(run(&s, subject()), (false, 2));
    // Someone known by LID only, with the LID map knowing their number.
    let txn = s.write().expect("w");
    crate::store::messages::map_lid(&txn, 7, "55@lid", "6281200000001@s.whatsapp.net").expect("map");
    s.commit(txn).expect("c");
    let add = |a| GroupNotice::Participants { group_id: G.into(), action: a, participants: vec![PersonIds::from_address("55@lid")], by: Some("55@lid".into()) };
    assert_eq!(run(&s, add(ParticipantAction::Add)), (true, 3));
    assert_eq!(last_event(&s)["participants"][0]["phoneNumber"], "6281200000001");
    assert_eq!(last_event(&s)["by"]["jid"], "6281200000001@s.whatsapp.net");
    assert_eq!(run(&s, add(ParticipantAction::Add)), (false, 3));
    assert_eq!(run(&s, add(ParticipantAction::Demote)), (false, 3));
    assert_eq!(run(&s, add(ParticipantAction::Promote)), (true, 4));
    assert_eq!(run(&s, add(ParticipantAction::Promote)), (false, 4));
    assert_eq!(run(&s, add(ParticipantAction::Remove)), (true, 5));
    assert_eq!(run(&s, add(ParticipantAction::Remove)), (false, 5));
    let left = || GroupNotice::Left { group_id: G.into(), by: None };
    assert_eq!(run(&s, left()), (true, 6));
    assert_eq!(run(&s, left()), (false, 6));
    // A notice about a group the file does not know changes nothing.
    assert_eq!(run(&s, subject()), (false, 6));
}

#[test]
fn a_fresher_description_is_told_as_its_changes() {
    let dir = tempfile::tempdir().expect("dir");
    let s = Store::open(&dir.path().join("b.redb"), 1 << 20).expect("open");
    let mut g = info();
    g.participants.push(GroupMember { person: PersonIds::from_address("6281200000001@s.whatsapp.net"), role: GroupRole::Member });
    g.participants.push(GroupMember { person: PersonIds::from_address("6281200000002@s.whatsapp.net"), role: GroupRole::Member });
    assert_eq!(run(&s, GroupNotice::Joined { group: g.clone(), by: None }), (true, 1));
    g.subject = "Fresh".into();
    g.participants[1].role = GroupRole::Admin;
    g.participants.remove(2);
    g.participants.push(GroupMember { person: PersonIds::from_address("6281200000003@s.whatsapp.net"), role: GroupRole::Member });
    // updated (subject), participants promote, add, remove.
    assert_eq!(run(&s, GroupNotice::Joined { group: g.clone(), by: None }), (true, 5));
    assert_eq!(last_event(&s)["action"], "remove");
    assert_eq!(last_event(&s)["participants"][0]["phoneNumber"], "6281200000002");
    // The same description again tells nothing.
    assert_eq!(run(&s, GroupNotice::Joined { group: g, by: None }), (false, 5));
}
