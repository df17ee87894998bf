//! Contacts, presence, profile and blocking (CONTRACT §12) through the
//! default `whatsapp` engine, offline: the real whatsapp-rust client in the
//! gateway asks the fake WhatsApp server of `tests/support/fake_wa`, whose
//! `directory` rules answer and record each stanza (issue 21).
//!
//! The directory's HTTP routes are built elsewhere: these tests call the
//! engine through the gateway's live connection, each call in one small
//! helper below (to be swapped for the route). Presence events are read off
//! a `WhatsappEngine` started directly with the test's own event sink.

mod common;
#[path = "support/fake_wa/mod.rs"]
mod fake_wa;
#[path = "support/fake_wa/flow.rs"]
mod flow;

use std::sync::Arc;
use std::time::Duration;

use common::TestGateway;
use fake_wa::FakeWa;
use flow::{gateway_on, linked};
use tokio::sync::mpsc;
use ulid::Ulid;
use wa_gateway::engine::directory::{NumberCheck, PersonIds, PresenceStatus};
use wa_gateway::engine::wa_client::{WaOptions, WhatsappEngine};
use wa_gateway::engine::{Connection, Engine, EngineError, EngineEvent, EventSink, PresenceUpdate, StartInfo};
use wa_gateway::store::Store;

const PHONE: &str = "6281234567890";
const CONTACT: &str = "6289876543210";
const OTHER: &str = "6285550001111";
/// A number nobody on the fake network has.
const STRANGER: &str = "6287770002222";
/// Not a real JPEG: the engine passes the bytes through as they are served.
const JPEG: &[u8] = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00fake-profile-picture\xff\xd9";

fn pn(phone: &str) -> String {
    format!("{phone}@s.whatsapp.net")
}

// The engine calls, one helper each (the lead swaps these for the routes).

fn conn(gw: &TestGateway, sid: &str) -> Arc<dyn Connection> {
    let id = Ulid::from_string(sid).expect("ulid");
    gw.app().engine.connection(id).expect("a live connection")
}

async fn check_numbers(gw: &TestGateway, sid: &str, phones: &[&str]) -> Result<Vec<NumberCheck>, EngineError> {
    let phones: Vec<String> = phones.iter().map(|p| p.to_string()).collect();
    conn(gw, sid).check_numbers(&phones).await
}

async fn picture(gw: &TestGateway, sid: &str, jid: &str, full: bool) -> Result<Option<Vec<u8>>, EngineError> {
    conn(gw, sid).picture(jid, full).await
}

async fn about(gw: &TestGateway, sid: &str, jid: &str) -> Result<Option<String>, EngineError> {
    conn(gw, sid).contact_about(jid).await
}

async fn set_blocked(gw: &TestGateway, sid: &str, jid: &str, blocked: bool) -> Result<(), EngineError> {
    conn(gw, sid).set_blocked(jid, blocked).await
}

async fn set_presence(gw: &TestGateway, sid: &str, available: bool) -> Result<(), EngineError> {
    conn(gw, sid).set_presence(available).await
}

async fn set_push_name(gw: &TestGateway, sid: &str, name: &str) -> Result<(), EngineError> {
    conn(gw, sid).set_push_name(name).await
}

async fn set_about(gw: &TestGateway, sid: &str, text: &str) -> Result<(), EngineError> {
    conn(gw, sid).set_about(text).await
}

async fn set_picture(gw: &TestGateway, sid: &str, group: Option<&str>, jpeg: Option<&[u8]>) -> Result<(), EngineError> {
    conn(gw, sid).set_picture(group, jpeg.map(<[u8]>::to_vec)).await
}

fn assert_nothing_unexpected(fake: &FakeWa) {
    assert!(fake.unexpected().is_empty(), "stanzas the fake had no rule for: {:?}", fake.unexpected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_check_is_answered_by_usync_with_jid_and_lid() {
    let fake = FakeWa::start().await;
    let gw = gateway_on(&fake, None).await;
    let token = gw.owner("org_dir_check");
    let (sid, _) = linked(&gw, &fake, &token, PHONE).await;
    let lid = fake.contact(CONTACT);
    let before = fake.lookups().len();

    let got = check_numbers(&gw, &sid, &[STRANGER, CONTACT]).await.expect("checked");
    assert_eq!(
        got,
        vec![
            NumberCheck { phone: STRANGER.into(), on_whatsapp: false, jid: None, lid: None, is_business: false },
            NumberCheck {
                phone: CONTACT.into(),
                on_whatsapp: true,
                jid: Some(pn(CONTACT)),
                lid: Some(format!("{lid}@lid")),
                is_business: false,
            },
        ]
    );
    let asked = fake.lookups()[before..].to_vec();
    assert!(asked.contains(&CONTACT.to_string()) && asked.contains(&STRANGER.to_string()), "{asked:?}");
    // Bad input never reaches the network.
    let asked_so_far = fake.lookups().len();
    assert!(matches!(check_numbers(&gw, &sid, &["62 81"]).await, Err(EngineError::Invalid(_))));
    assert_eq!(check_numbers(&gw, &sid, &[]).await, Ok(vec![]));
    assert_eq!(fake.lookups().len(), asked_so_far);
    assert_nothing_unexpected(&fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_s_picture_is_fetched_and_one_without_is_none() {
    let fake = FakeWa::start().await;
    let gw = gateway_on(&fake, None).await;
    let token = gw.owner("org_dir_pic");
    let (sid, _) = linked(&gw, &fake, &token, PHONE).await;
    fake.contact(CONTACT);
    fake.contact(OTHER);
    fake.set_picture(CONTACT, Some(JPEG));

    let got = picture(&gw, &sid, &pn(CONTACT), false).await.expect("fetched");
    assert_eq!(got.as_deref(), Some(JPEG), "the bytes the fake serves");
    let full = picture(&gw, &sid, &pn(CONTACT), true).await.expect("fetched");
    assert_eq!(full.as_deref(), Some(JPEG));
    assert!(
        fake.media_requests().iter().filter(|r| r.starts_with("GET /v/t62.fake-picture/") && r.ends_with(" 200")).count() == 2,
        "{:?}",
        fake.media_requests()
    );
    assert_eq!(picture(&gw, &sid, &pn(OTHER), false).await, Ok(None), "no picture: WhatsApp answers 404");
    assert_eq!(picture(&gw, &sid, &pn(STRANGER), true).await, Ok(None));
    assert!(matches!(picture(&gw, &sid, "not-an-address", false).await, Err(EngineError::Invalid(_))));
    assert_nothing_unexpected(&fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_and_unblocking_are_recorded_by_the_fake() {
    let fake = FakeWa::start().await;
    let gw = gateway_on(&fake, None).await;
    let token = gw.owner("org_dir_block");
    let (sid, _) = linked(&gw, &fake, &token, PHONE).await;
    let lid = format!("{}@lid", fake.contact(CONTACT));

    set_blocked(&gw, &sid, &pn(CONTACT), true).await.expect("blocked");
    assert_eq!(fake.blocked(), vec![(lid.clone(), Some(pn(CONTACT)))], "blocked by LID with the phone beside it");
    set_blocked(&gw, &sid, &pn(CONTACT), false).await.expect("unblocked");
    assert_eq!(fake.blocked(), vec![]);
    assert_eq!(fake.block_log(), vec![format!("block {lid} {}", pn(CONTACT)), format!("unblock {lid}")]);

    // Someone not on WhatsApp cannot be blocked; nothing reaches the blocklist.
    let r = set_blocked(&gw, &sid, &pn(STRANGER), true).await;
    assert!(matches!(r, Err(EngineError::NotFound(_))), "{r:?}");
    assert!(matches!(set_blocked(&gw, &sid, "120363000@g.us", true).await, Err(EngineError::Invalid(_))));
    assert_eq!(fake.block_log().len(), 2);
    assert_nothing_unexpected(&fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_name_about_picture_and_own_presence_reach_the_fake() {
    let fake = FakeWa::start().await;
    let gw = gateway_on(&fake, None).await;
    let token = gw.owner("org_dir_profile");
    let (sid, _) = linked(&gw, &fake, &token, PHONE).await;
    fake.contact(CONTACT);
    fake.contact(OTHER);
    fake.set_about(CONTACT, "Sibuk, chat saja");

    set_push_name(&gw, &sid, "Toko Budi").await.expect("name set");
    assert!(fake.until(Duration::from_secs(5), |f| f.push_names() == ["Toko Budi"]).await, "{:?}", fake.push_names());
    set_about(&gw, &sid, "Buka 24 jam").await.expect("about set");
    assert_eq!(fake.about_sets(), ["Buka 24 jam"]);

    // Own presence carries the new name.
    let n = fake.own_presences().len();
    set_presence(&gw, &sid, false).await.expect("unavailable");
    set_presence(&gw, &sid, true).await.expect("available");
    assert!(
        fake.until(Duration::from_secs(5), |f| f.own_presences()[n..] == ["unavailable Toko Budi", "available Toko Budi"]).await,
        "{:?}",
        fake.own_presences()
    );

    set_picture(&gw, &sid, None, Some(JPEG)).await.expect("picture set");
    set_picture(&gw, &sid, None, None).await.expect("picture removed");
    let group = "120363000111@g.us";
    set_picture(&gw, &sid, Some(group), Some(JPEG)).await.expect("group picture set");
    set_picture(&gw, &sid, Some(group), None).await.expect("group picture removed");
    let n = JPEG.len();
    assert_eq!(
        fake.picture_sets(),
        [format!("own {n} bytes"), "own removed".into(), format!("{group} {n} bytes"), format!("{group} removed")]
    );
    // A person is not a group; an empty picture is not a picture: nothing is sent.
    assert!(matches!(set_picture(&gw, &sid, Some(&pn(CONTACT)), Some(JPEG)).await, Err(EngineError::Invalid(_))));
    assert!(matches!(set_picture(&gw, &sid, None, Some(b"")).await, Err(EngineError::Invalid(_))));
    assert_eq!(fake.picture_sets().len(), 4);

    // Contacts' about texts: set, and not set.
    assert_eq!(about(&gw, &sid, &pn(CONTACT)).await, Ok(Some("Sibuk, chat saja".into())));
    assert_eq!(about(&gw, &sid, &pn(OTHER)).await, Ok(None));
    assert!(matches!(set_push_name(&gw, &sid, " ").await, Err(EngineError::Invalid(_))));
    assert_eq!(fake.push_names().len(), 1);
    assert_nothing_unexpected(&fake);
}

// Presence events, read off an engine started with the test's own sink.

type Events = mpsc::UnboundedReceiver<(Ulid, u64, EngineEvent)>;

/// The next event `pick` accepts (others skipped), within `within`.
async fn next_event<T>(rx: &mut Events, within: Duration, mut pick: impl FnMut(EngineEvent) -> Option<T>) -> Option<T> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((_, _, ev))) => {
                if let Some(t) = pick(ev) {
                    return Some(t);
                }
            }
            _ => return None,
        }
    }
}

fn presence(ev: EngineEvent) -> Option<PresenceUpdate> {
    match ev {
        EngineEvent::Presence(p) => Some(*p),
        _ => None,
    }
}

/// A `WhatsappEngine` on its own data file, dialing `fake`, linked as
/// `phone`: its connection, its events and the device jid.
async fn engine_linked(fake: &FakeWa, phone: &str) -> (tempfile::TempDir, Box<dyn Connection>, Events, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(&dir.path().join("data.redb"), 1 << 20).expect("open store"));
    let engine = WhatsappEngine::new(
        store,
        WaOptions {
            connect_timeout: Duration::from_secs(10),
            ws_url: Some(fake.url.clone()),
            version: Some((2, 3000, 1_000_000_000)),
            plain_http_media_hosts: vec![fake.media_host()],
            ..WaOptions::default()
        },
    );
    let session = Ulid::from(0xD1_u128);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let info = StartInfo { session, linked_jid: None, linked_lid: None };
    let conn = engine.start(info, EventSink::new(session, 1, tx)).await.expect("started");
    let qr = next_event(&mut rx, Duration::from_secs(10), |e| match e {
        EngineEvent::Qr { value, .. } => Some(value),
        _ => None,
    })
    .await
    .expect("a QR code");
    fake.scan(phone, &qr).await.expect("the phone scans the QR");
    let connected = next_event(&mut rx, Duration::from_secs(20), |e| match e {
        EngineEvent::Connected { jid, .. } => Some(jid),
        _ => None,
    })
    .await;
    assert_eq!(connected, Some(pn(phone)));
    let device = format!("{phone}:1@s.whatsapp.net");
    assert!(fake.until(Duration::from_secs(10), |f| f.has_keys(&device)).await, "no prekeys; seen: {:?}", fake.seen());
    (dir, conn, rx, device)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribed_contact_coming_online_is_a_presence_event_with_jid_and_lid() {
    let fake = FakeWa::start().await;
    let (_dir, conn, mut rx, device) = engine_linked(&fake, PHONE).await;
    let lid = format!("{}@lid", fake.contact(CONTACT));
    // A number check teaches the client the contact's LID.
    let checked = conn.check_numbers(&[CONTACT.to_string()]).await.expect("checked");
    assert!(checked[0].on_whatsapp, "{checked:?}");

    conn.subscribe_presence(&pn(CONTACT)).await.expect("subscribed");
    assert!(
        fake.until(Duration::from_secs(5), |f| f.subscriptions().contains(&pn(CONTACT))).await,
        "{:?}",
        fake.subscriptions()
    );
    let both = PersonIds { jid: Some(pn(CONTACT)), lid: Some(lid) };

    fake.push_presence(&device, CONTACT, true, None).expect("pushed");
    let p = next_event(&mut rx, Duration::from_secs(5), presence).await.expect("a presence event");
    assert_eq!(p, PresenceUpdate { person: both.clone(), status: PresenceStatus::Available, chat: None, last_seen: None });

    fake.push_presence(&device, CONTACT, false, Some(1_700_000_123)).expect("pushed");
    let p = next_event(&mut rx, Duration::from_secs(5), presence).await.expect("a presence event");
    assert_eq!(
        p,
        PresenceUpdate { person: both, status: PresenceStatus::Unavailable, chat: None, last_seen: Some(1_700_000_123_000) }
    );
    assert!(matches!(conn.subscribe_presence("120363000@g.us").await, Err(EngineError::Invalid(_))));
    conn.stop().await;
    assert_nothing_unexpected(&fake);
}
