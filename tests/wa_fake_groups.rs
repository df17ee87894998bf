//! Groups through the default `whatsapp` engine, offline (CONTRACT §13,
//! issue 21): the real whatsapp-rust client in the gateway creates and
//! runs groups on the fake WhatsApp server (`tests/support/fake_wa/groups.rs`),
//! sends group texts with sender keys that each fake member decrypts, and
//! receives theirs. The groups API routes are another part's, so the group
//! calls go to the gateway's live connection (one helper, [`conn`]); sending
//! and reading messages use the HTTP API.

mod common;
#[path = "support/fake_wa/mod.rs"]
mod fake_wa;
#[path = "support/fake_wa/flow.rs"]
mod flow;

use std::sync::Arc;
use std::time::Duration;

use common::TestGateway;
use fake_wa::groups::Role;
use fake_wa::FakeWa;
use flow::{gateway_on, get_until, linked, message_until};
use serde_json::{json, Value};
use ulid::Ulid;
use wa_gateway::engine::directory::{GroupRole, ParticipantStatus, PersonIds};
use wa_gateway::engine::{Connection, GroupChanges, JoinOutcome};

const PHONE: &str = "6281234567890";
const ALICE: &str = "6281111111111";
const BOB: &str = "6282222222222";
const CAROL: &str = "6283333333333";

fn pn(p: &str) -> String {
    format!("{p}@s.whatsapp.net")
}

/// The session's live engine connection: where the group calls go until
/// the groups routes exist (swap for `POST /api/v1/sessions/{id}/groups`…).
fn conn(gw: &TestGateway, sid: &str) -> Arc<dyn Connection> {
    let id: Ulid = sid.parse().expect("a session id");
    gw.app().engine.connection(id).expect("a live connection")
}

fn no_surprises(fake: &FakeWa) {
    assert!(fake.unexpected().is_empty(), "stanzas the fake had no rule for: {:?}", fake.unexpected());
}

async fn send_text(gw: &TestGateway, token: &str, sid: &str, to: &str, text: &str) -> (String, String) {
    let r = gw.http.post(&format!("/api/v1/sessions/{sid}/messages"), Some(token), json!({"to": to, "text": text})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    (r.json["id"].as_str().expect("id").to_string(), r.json["waMessageId"].as_str().expect("wa").to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_created_with_two_contacts_is_described_right_and_held_by_the_fake() {
    let fake = FakeWa::start().await;
    let gw = gateway_on(&fake, None).await;
    let token = gw.owner("org_grp_create");
    let (sid, _) = linked(&gw, &fake, &token, PHONE).await;
    let alice_lid = fake.contact(ALICE);
    fake.contact(BOB);
    let c = conn(&gw, &sid);

    fake.contact(CAROL);
    fake.refuse_group_adds(CAROL);
    let asked = vec![pn(ALICE), pn(BOB), pn("6289999999999"), pn(CAROL)];
    let (group, outcomes) = c.group_create("Tim Gudang", &asked, Some("Stok harian")).await.expect("created");
    assert!(group.id.ends_with("@g.us"), "{group:?}");
    assert_eq!(group.subject, "Tim Gudang");
    assert_eq!(group.description.as_deref(), Some("Stok harian"));
    assert_eq!(group.owner.as_deref(), Some(pn(PHONE).as_str()));
    assert!(group.created_at.is_some_and(|t| t > 1_600_000_000_000), "{group:?}");
    let roles: Vec<(Option<String>, GroupRole)> = group.participants.iter().map(|m| (m.person.jid.clone(), m.role)).collect();
    assert_eq!(roles, vec![(Some(pn(ALICE)), GroupRole::Member), (Some(pn(PHONE)), GroupRole::SuperAdmin), (Some(pn(BOB)), GroupRole::Member)]);
    // Refused people are not members; each has WhatsApp's code.
    let statuses: Vec<(ParticipantStatus, Option<&str>)> = outcomes.iter().map(|o| (o.status, o.code.as_deref())).collect();
    assert_eq!(
        statuses,
        vec![
            (ParticipantStatus::Ok, None),
            (ParticipantStatus::Ok, None),
            (ParticipantStatus::NotOnWhatsapp, Some("404")),
            (ParticipantStatus::NeedsInvite, Some("403")),
        ],
        "{outcomes:?}"
    );

    let held = fake.group(&group.id).expect("the fake holds the group");
    assert_eq!(held.subject, "Tim Gudang");
    assert_eq!(held.members.get(PHONE), Some(&Role::SuperAdmin));
    assert_eq!(held.members.len(), 3, "{held:?}");

    // Reading it back, alone and in the list of the number's groups.
    let info = c.group_info(&group.id).await.expect("info");
    assert_eq!(info, group);
    let all = c.groups_joined().await.expect("joined");
    assert_eq!(all.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(), vec![group.id.as_str()]);
    // A group that does not exist is NotFound; a person where a group is meant is refused.
    assert!(matches!(c.group_info("120363999999999999@g.us").await, Err(wa_gateway::engine::EngineError::NotFound(_))));
    assert!(c.group_info(&pn(ALICE)).await.is_err());
    let _ = alice_lid;
    no_surprises(&fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_to_a_group_reaches_each_member_with_sender_keys_and_becomes_sent() {
    let fake = FakeWa::start().await;
    let gw = gateway_on(&fake, None).await;
    let token = gw.owner("org_grp_send");
    let (sid, device) = linked(&gw, &fake, &token, PHONE).await;
    fake.contact(ALICE);
    fake.contact(BOB);
    let (group, _) = conn(&gw, &sid).group_create("Kirim", &[pn(ALICE), pn(BOB)], None).await.expect("created");

    let (mid, wa) = send_text(&gw, &token, &sid, &group.id, "Halo semua").await;
    assert!(
        fake.until(Duration::from_secs(15), |f| !f.received(ALICE).is_empty() && !f.received(BOB).is_empty()).await,
        "the members got nothing; unexpected: {:?}",
        fake.unexpected()
    );
    for member in [ALICE, BOB] {
        let got = fake.received(member);
        assert_eq!(got.len(), 1, "{member}: {got:?}");
        assert_eq!((got[0].id.as_str(), got[0].text.as_deref()), (wa.as_str(), Some("Halo semua")));
        assert_eq!(got[0].enc, "skmsg", "the text rides the sender key");
        assert_eq!(got[0].to, group.id);
        assert_eq!(got[0].from, device);
    }
    let m = message_until(&gw, &token, &sid, &mid, Duration::from_secs(10), |m| m["status"] == "sent").await;
    assert_eq!(m["chatId"], json!(group.id), "{m}");

    // The second text needs no new distribution: the members already hold the key.
    let (_, wa2) = send_text(&gw, &token, &sid, &group.id, "Kedua").await;
    assert!(fake.until(Duration::from_secs(15), |f| f.received(ALICE).len() == 2 && f.received(BOB).len() == 2).await, "{:?}", fake.unexpected());
    assert_eq!(fake.received(BOB)[1].id, wa2);
    no_surprises(&fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_s_text_in_a_group_arrives_as_an_inbound_message_of_the_group() {
    let fake = FakeWa::start().await;
    let gw = gateway_on(&fake, None).await;
    let token = gw.owner("org_grp_in");
    let (sid, device) = linked(&gw, &fake, &token, PHONE).await;
    let alice_lid = fake.contact(ALICE);
    let group = fake.make_group(ALICE, "Dari Alice", &[PHONE.to_string(), BOB.to_string()]);

    let wa = fake.deliver_group_text(ALICE, &group, &device, "Rapat jam 3").expect("delivered");
    let path = format!("/api/v1/sessions/{sid}/messages?direction=in");
    let found = |p: &Value| p["data"].as_array().and_then(|d| d.iter().find(|m| m["waMessageId"] == json!(wa)).cloned());
    let page = get_until(&gw, &token, &path, Duration::from_secs(15), |p| found(p).is_some()).await;
    let m = found(&page).expect("found");
    assert_eq!(m["text"], "Rapat jam 3", "{m}");
    assert_eq!(m["chatId"], json!(group), "{m}");
    assert_eq!(m["senderJid"], json!(pn(ALICE)), "{m}");
    assert_eq!(m["senderLid"], json!(format!("{alice_lid}@lid")), "{m}");
    no_surprises(&fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subject_settings_participants_invites_requests_and_leaving_reach_the_fake() {
    let fake = FakeWa::start().await;
    let gw = gateway_on(&fake, None).await;
    let token = gw.owner("org_grp_admin");
    let (sid, _) = linked(&gw, &fake, &token, PHONE).await;
    for p in [ALICE, BOB, CAROL] {
        fake.contact(p);
    }
    let c = conn(&gw, &sid);
    let (group, _) = c.group_create("Lama", &[pn(ALICE)], None).await.expect("created");
    let id = group.id.clone();

    let changes = GroupChanges {
        subject: Some("Baru".into()),
        description: Some(Some("Keterangan".into())),
        announce: Some(true),
        locked: Some(true),
        ephemeral_seconds: Some(604800),
        membership_approval: Some(true),
    };
    c.group_update(&id, &changes).await.expect("updated");
    let g = fake.group(&id).expect("held");
    assert_eq!((g.subject.as_str(), g.description.as_deref()), ("Baru", Some("Keterangan")));
    assert!(g.announce && g.locked && g.approval && g.ephemeral == 604800, "{g:?}");
    let info = c.group_info(&id).await.expect("info");
    assert!(info.announce && info.locked && info.membership_approval && info.ephemeral_seconds == 604800, "{info:?}");
    c.group_update(&id, &GroupChanges { description: Some(None), ..Default::default() }).await.expect("cleared");
    // A field WhatsApp would not take (a 101-character subject, a 2049-character
    // description) is refused before anything is sent: nothing changes.
    let too_long = GroupChanges { subject: Some("Sah".into()), description: Some(Some("d".repeat(2049))), ..Default::default() };
    let refused = c.group_update(&id, &too_long).await;
    assert!(matches!(&refused, Err(wa_gateway::engine::EngineError::Refused { code, .. }) if code == "400"), "{refused:?}");
    let refused = c.group_create(&"s".repeat(101), &[pn(ALICE)], None).await;
    assert!(matches!(&refused, Err(wa_gateway::engine::EngineError::Refused { code, .. }) if code == "400"), "{refused:?}");
    assert_eq!(fake.group(&id).expect("held").subject, "Baru");
    assert_eq!(fake.group_log().iter().filter(|l| l.starts_with("create")).count(), 1);
    assert_eq!(fake.group(&id).and_then(|g| g.description), None);

    // Participants: per-person outcomes.
    fake.refuse_group_adds(CAROL);
    let out = c.group_participants(&id, wa_gateway::engine::ParticipantAction::Add, &[pn(BOB), pn(ALICE), pn(CAROL), pn("6280000000001")], true).await.expect("add");
    let st: Vec<(String, ParticipantStatus, Option<String>)> = out.iter().map(|o| (o.asked.clone(), o.status, o.code.clone())).collect();
    assert_eq!(
        st,
        vec![
            (pn(BOB), ParticipantStatus::Ok, None),
            (pn(ALICE), ParticipantStatus::Ok, None),
            (pn(CAROL), ParticipantStatus::NeedsInvite, Some("403".into())),
            (pn("6280000000001"), ParticipantStatus::NotOnWhatsapp, Some("404".into())),
        ]
    );
    assert_eq!(out[0].person, Some(PersonIds { jid: Some(pn(BOB)), lid: None }));
    // With `invite`, the refused person got WhatsApp's group invite as a message.
    assert!(fake.until(Duration::from_secs(15), |f| !f.received(CAROL).is_empty()).await, "{:?}", fake.unexpected());
    let invite = fake.received(CAROL)[0].message.group_invite_message.as_option().cloned().expect("a group invite");
    assert_eq!(invite.group_jid.as_deref(), Some(id.as_str()));
    assert_eq!(invite.invite_code.as_deref(), Some(format!("V4{CAROL}").as_str()));
    let out = c.group_participants(&id, wa_gateway::engine::ParticipantAction::Promote, &[pn(BOB)], false).await.expect("promote");
    assert_eq!(out[0].status, ParticipantStatus::Ok);
    assert_eq!(fake.group(&id).and_then(|g| g.members.get(BOB).copied()), Some(Role::Admin));
    let out = c.group_participants(&id, wa_gateway::engine::ParticipantAction::Remove, &[pn(ALICE), pn(CAROL)], false).await.expect("remove");
    assert_eq!(out.iter().map(|o| o.status).collect::<Vec<_>>(), vec![ParticipantStatus::Ok, ParticipantStatus::NotInGroup]);

    // Invite codes: read, revoke (a new one), preview, join (approval on: a request).
    let code = c.group_invite(&id, false).await.expect("code");
    assert_eq!(code, fake.group(&id).expect("held").invite);
    assert!(!code.contains('/'), "the code, not the link: {code}");
    let fresh = c.group_invite(&id, true).await.expect("revoked");
    assert_ne!(fresh, code);
    assert_eq!(fresh, fake.group(&id).expect("held").invite);
    let other = fake.make_group(CAROL, "Undangan", &[ALICE.to_string()]);
    let other_code = fake.group(&other).expect("held").invite;
    let preview = c.group_invite_preview(&other_code).await.expect("preview");
    assert_eq!((preview.id.as_str(), preview.subject.as_str()), (other.as_str(), "Undangan"));
    match c.group_join(&other_code).await.expect("joined") {
        JoinOutcome::Joined(g) => assert_eq!(g.id, other),
        JoinOutcome::Requested { .. } => panic!("the group does not approve members"),
    }
    assert!(fake.group(&other).expect("held").members.contains_key(PHONE));
    assert!(matches!(c.group_invite_preview("NOSUCHCODE").await, Err(wa_gateway::engine::EngineError::NotFound(_))));

    // Join requests: the fake's pending request, listed and approved.
    fake.with_request(&id, CAROL);
    let reqs = c.group_requests(&id).await.expect("requests");
    assert_eq!(reqs.iter().map(|r| r.person.jid.clone()).collect::<Vec<_>>(), vec![Some(pn(CAROL))]);
    let out = c.group_requests_action(&id, true, &[pn(CAROL)]).await.expect("approved");
    assert_eq!(out[0].status, ParticipantStatus::Ok);
    assert!(fake.group(&id).expect("held").members.contains_key(CAROL));

    // Where the number is a plain member, WhatsApp refuses admin calls (403).
    let theirs = fake.make_group(ALICE, "Punya Alice", &[PHONE.to_string()]);
    let refused = c.group_participants(&theirs, wa_gateway::engine::ParticipantAction::Add, &[pn(BOB)], false).await;
    assert!(matches!(&refused, Err(wa_gateway::engine::EngineError::Refused { code, .. }) if code == "403"), "{refused:?}");
    assert!(!fake.group(&theirs).expect("held").members.contains_key(BOB), "nothing changed");
    // A group that approves members: joining is a request.
    let approving = fake.make_group(ALICE, "Tertutup", &[]);
    fake.set_approval(&approving, true);
    let code = fake.group(&approving).expect("held").invite;
    assert_eq!(c.group_join(&code).await.expect("asked"), JoinOutcome::Requested { group_id: approving.clone() });
    assert_eq!(fake.group(&approving).expect("held").requests.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), vec![PHONE]);

    // Leaving.
    c.group_leave(&other).await.expect("left");
    assert!(!fake.group(&other).expect("held").members.contains_key(PHONE));
    let log = fake.group_log();
    for want in ["create g.us", "subject", "description", "announcement", "locked", "ephemeral", "membership_approval_mode", "invite", "leave g.us"] {
        assert!(log.iter().any(|l| l.starts_with(want)), "no {want} in {log:?}");
    }
    no_surprises(&fake);
}

/// The next engine event `pick` accepts (others are skipped), within `within`.
async fn next_event<T>(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<(Ulid, u64, wa_gateway::engine::EngineEvent)>,
    within: Duration,
    mut pick: impl FnMut(&wa_gateway::engine::EngineEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((_, _, ev))) => {
                if let Some(t) = pick(&ev) {
                    return t;
                }
            }
            other => panic!("no such engine event within {within:?}: {other:?}"),
        }
    }
}

/// Observed on the engine itself (started here with this test's own
/// `EventSink`, as tests/wa_engine.rs does): the gateway's manager hands
/// directory events to the messaging layer and publishes none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_notifications_from_another_admin_become_group_notices() {
    use wa_gateway::engine::wa_client::{WaOptions, WhatsappEngine};
    use wa_gateway::engine::{Engine, EngineEvent, EventSink, GroupNotice, ParticipantAction, StartInfo};

    let fake = FakeWa::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(wa_gateway::store::Store::open(&dir.path().join("data.redb"), 1 << 20).expect("store"));
    let options = WaOptions {
        ws_url: Some(fake.url.clone()),
        version: Some((2, 3000, 1_000_000_000)),
        connect_timeout: Duration::from_secs(10),
        ..WaOptions::default()
    };
    let engine = WhatsappEngine::new(store, options);
    let session = Ulid::generate();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let info = StartInfo { session, linked_jid: None, linked_lid: None };
    let c = engine.start(info, EventSink::new(session, 1, tx)).await.expect("started");
    let qr = next_event(&mut rx, Duration::from_secs(10), |e| match e {
        EngineEvent::Qr { value, .. } => Some(value.clone()),
        _ => None,
    })
    .await;
    fake.scan(PHONE, &qr).await.expect("scanned");
    next_event(&mut rx, Duration::from_secs(15), |e| matches!(e, EngineEvent::Connected { .. }).then_some(())).await;
    let alice_lid = fake.contact(ALICE);
    let bob_lid = fake.contact(BOB);
    let group = fake.make_group(ALICE, "Milik Alice", &[PHONE.to_string()]);
    let notice = |e: &EngineEvent| match e {
        EngineEvent::Group(n) => Some((**n).clone()),
        _ => None,
    };

    // Alice adds Bob: people added, by Alice, with phone and LID.
    fake.admin_add(ALICE, &group, &[BOB.to_string()]).expect("notified");
    let n = next_event(&mut rx, Duration::from_secs(10), notice).await;
    assert_eq!(
        n,
        GroupNotice::Participants {
            group_id: group.clone(),
            action: ParticipantAction::Add,
            participants: vec![PersonIds { jid: Some(pn(BOB)), lid: Some(format!("{bob_lid}@lid")) }],
            by: Some(pn(ALICE)),
        }
    );

    // Alice renames it.
    fake.admin_subject(ALICE, &group, "Nama Baru").expect("notified");
    let n = next_event(&mut rx, Duration::from_secs(10), notice).await;
    assert_eq!(n, GroupNotice::Changed { group_id: group.clone(), changes: GroupChanges { subject: Some("Nama Baru".into()), ..Default::default() }, by: Some(pn(ALICE)) });

    // Alice adds the number to another group: it joined, with the group's metadata.
    let other = fake.make_group(ALICE, "Kedua", &[]);
    fake.admin_add(ALICE, &other, &[PHONE.to_string()]).expect("notified");
    let n = next_event(&mut rx, Duration::from_secs(10), notice).await;
    match n {
        GroupNotice::Joined { group, by } => {
            assert_eq!((group.id.as_str(), group.subject.as_str()), (other.as_str(), "Kedua"));
            assert_eq!(group.participants.len(), 2, "{group:?}");
            assert_eq!(by, Some(pn(ALICE)));
        }
        other => panic!("expected Joined: {other:?}"),
    }

    // A person the notification names by phone alone gets the LID the
    // client learned (here from Alice's own message, with its sender_lid).
    let device = format!("{PHONE}:1@s.whatsapp.net");
    assert!(fake.until(Duration::from_secs(10), |f| f.has_keys(&device)).await, "no prekeys uploaded");
    fake.deliver_text(ALICE, &device, "hai").expect("delivered");
    next_event(&mut rx, Duration::from_secs(10), |e| matches!(e, EngineEvent::Message(_)).then_some(())).await;
    fake.admin_change(BOB, &group, "promote", &[ALICE.to_string()], false).expect("notified");
    let n = next_event(&mut rx, Duration::from_secs(10), notice).await;
    assert_eq!(
        n,
        GroupNotice::Participants {
            group_id: group.clone(),
            action: ParticipantAction::Promote,
            participants: vec![PersonIds { jid: Some(pn(ALICE)), lid: Some(format!("{alice_lid}@lid")) }],
            by: Some(pn(BOB)),
        }
    );

    // Someone asks to join (the admin-side notification).
    let ask = whatsapp_rust::NodeBuilder::new("created_membership_requests")
        .attr("request_method", "invite_link")
        .children([whatsapp_rust::NodeBuilder::new("requested_user").attr("jid", pn(CAROL)).build()])
        .build();
    fake.contact(CAROL);
    fake.notify_group(BOB, &group, ask).expect("notified");
    let n = next_event(&mut rx, Duration::from_secs(10), notice).await;
    assert!(matches!(&n, GroupNotice::JoinRequest { group_id, requester } if *group_id == group && requester.jid.as_deref() == Some(pn(CAROL).as_str())), "{n:?}");

    // Bob removes the number: it left.
    fake.admin_change(BOB, &group, "remove", &[PHONE.to_string()], false).expect("notified");
    let n = next_event(&mut rx, Duration::from_secs(10), notice).await;
    assert_eq!(n, GroupNotice::Left { group_id: group.clone(), by: Some(pn(BOB)) });
    c.stop().await;
    no_surprises(&fake);
}

/// The bench's big group (`FakeWa::big_group`): one text to 256 members,
/// each with one device, reaches every one of them and becomes `sent`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_to_a_group_of_256_reaches_every_member() {
    let fake = FakeWa::start().await;
    let gw = gateway_on(&fake, None).await;
    let token = gw.owner("org_grp_big");
    let (sid, _) = linked(&gw, &fake, &token, PHONE).await;
    let (group, members) = fake.big_group(PHONE, "62877", 256);
    assert_eq!(fake.group(&group).expect("held").members.len(), 257);

    let t = std::time::Instant::now();
    let (mid, wa) = send_text(&gw, &token, &sid, &group, "Pengumuman").await;
    message_until(&gw, &token, &sid, &mid, Duration::from_secs(30), |m| m["status"] == "sent").await;
    let took = t.elapsed();
    assert!(
        fake.until(Duration::from_secs(10), |f| members.iter().all(|m| f.received(m).iter().any(|r| r.id == wa))).await,
        "not every member got it; unexpected: {:?}",
        fake.unexpected()
    );
    eprintln!("a group text to 256 members: 202 → sent in {took:?}");
    no_surprises(&fake);
}

/// WhatsApp's groups are LID-addressed now: participants come as `@lid`
/// with their phone beside them. Both are kept, and texts go both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lid_addressed_group_names_people_by_phone_and_lid_and_carries_texts_both_ways() {
    let fake = FakeWa::start().await;
    let gw = gateway_on(&fake, None).await;
    let token = gw.owner("org_grp_lid");
    let (sid, device) = linked(&gw, &fake, &token, PHONE).await;
    let alice_lid = fake.contact(ALICE);
    let bob_lid = fake.contact(BOB);
    let phone_lid = fake.phone(PHONE);
    let group = fake.make_group_addressed(ALICE, "LID", &[PHONE.to_string(), BOB.to_string()], true);

    let info = conn(&gw, &sid).group_info(&group).await.expect("info");
    assert_eq!(info.owner.as_deref(), Some(pn(ALICE).as_str()), "the creator by phone");
    let people: Vec<(PersonIds, GroupRole)> = info.participants.iter().map(|m| (m.person.clone(), m.role)).collect();
    assert_eq!(
        people,
        vec![
            (PersonIds { jid: Some(pn(ALICE)), lid: Some(format!("{alice_lid}@lid")) }, GroupRole::SuperAdmin),
            (PersonIds { jid: Some(pn(PHONE)), lid: Some(format!("{phone_lid}@lid")) }, GroupRole::Member),
            (PersonIds { jid: Some(pn(BOB)), lid: Some(format!("{bob_lid}@lid")) }, GroupRole::Member),
        ]
    );

    let (mid, wa) = send_text(&gw, &token, &sid, &group, "Halo LID").await;
    assert!(
        fake.until(Duration::from_secs(15), |f| [ALICE, BOB].iter().all(|m| f.received(m).iter().any(|r| r.id == wa))).await,
        "the members got nothing; unexpected: {:?}",
        fake.unexpected()
    );
    message_until(&gw, &token, &sid, &mid, Duration::from_secs(10), |m| m["status"] == "sent").await;

    let wa_in = fake.deliver_group_text(BOB, &group, &device, "Balasan").expect("delivered");
    let path = format!("/api/v1/sessions/{sid}/messages?direction=in");
    let found = |p: &Value| p["data"].as_array().and_then(|d| d.iter().find(|m| m["waMessageId"] == json!(wa_in)).cloned());
    let page = get_until(&gw, &token, &path, Duration::from_secs(15), |p| found(p).is_some()).await;
    let m = found(&page).expect("found");
    assert_eq!((m["chatId"].clone(), m["text"].clone()), (json!(group), json!("Balasan")), "{m}");
    assert_eq!(m["senderJid"], json!(pn(BOB)), "{m}");
    assert_eq!(m["senderLid"], json!(format!("{bob_lid}@lid")), "{m}");
    no_surprises(&fake);
}
