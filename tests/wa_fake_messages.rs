//! Messages end to end through the default `whatsapp` engine, offline: the
//! real whatsapp-rust client in the gateway sends Signal-encrypted messages
//! to fake contacts of `tests/support/fake_wa`, which decrypt them, and
//! receives theirs (issue 8).

mod common;
#[path = "support/fake_wa/mod.rs"]
mod fake_wa;
#[path = "support/fake_wa/flow.rs"]
mod flow;

use std::time::{Duration, Instant};

use common::TestGateway;
use fake_wa::FakeWa;
use flow::{gateway_on, link};
use serde_json::{json, Value};

const PHONE: &str = "6281234567890";
const CONTACT: &str = "6289876543210";

/// Links a session of `PHONE` with its queue fast and without typing
/// presence; waits until its device uploaded its prekeys. Returns the
/// session id and the device jid.
async fn linked(gw: &TestGateway, fake: &FakeWa, token: &str) -> (String, String) {
    let s = link(gw, fake, token, PHONE).await;
    let id = s["id"].as_str().expect("id").to_string();
    let r = gw
        .http
        .patch(
            &format!("/api/v1/sessions/{id}"),
            Some(token),
            json!({"presenceTyping": false, "ratePerMin": 100000, "ratePerHour": 100000}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let device = format!("{PHONE}:1@s.whatsapp.net");
    assert!(
        fake.until(Duration::from_secs(10), |f| f.has_keys(&device)).await,
        "the device never uploaded its prekeys; seen: {:?}",
        fake.seen()
    );
    (id, device)
}

/// Polls one message until `check` holds (up to `within`); returns it.
async fn message_until(gw: &TestGateway, token: &str, sid: &str, mid: &str, within: Duration, check: impl Fn(&Value) -> bool) -> Value {
    let t = Instant::now();
    loop {
        let r = gw.http.get(&format!("/api/v1/sessions/{sid}/messages/{mid}"), Some(token)).await;
        assert_eq!(r.status, 200, "{:?}", r.json);
        if check(&r.json) {
            return r.json;
        }
        assert!(t.elapsed() < within, "the message never got there: {}", r.json);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn send_text(gw: &TestGateway, token: &str, sid: &str, to: &str, text: &str) -> (String, String) {
    let r = gw.http.post(&format!("/api/v1/sessions/{sid}/messages"), Some(token), json!({"to": to, "text": text})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let mid = r.json["id"].as_str().expect("id").to_string();
    let wa = r.json["waMessageId"].as_str().expect("waMessageId").to_string();
    (mid, wa)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_reaches_a_contact_encrypted_and_its_receipts_move_the_status() {
    let fake = FakeWa::start().await;
    let gw = gateway_on(&fake, None).await;
    let token = gw.owner("org_msg_out");
    let (sid, device) = linked(&gw, &fake, &token).await;
    fake.contact(CONTACT);

    let text = "Halo dari gateway ✓";
    let (mid, wa) = send_text(&gw, &token, &sid, CONTACT, text).await;
    assert!(
        fake.until(Duration::from_secs(15), |f| !f.received(CONTACT).is_empty()).await,
        "the contact got nothing; seen: {:?} unexpected: {:?}",
        fake.seen(),
        fake.unexpected()
    );
    let got = fake.received(CONTACT);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].text.as_deref(), Some(text), "{got:?}");
    assert_eq!(got[0].kind, "text");
    assert_eq!(got[0].id, wa, "the stanza id is the message's waMessageId");
    assert_eq!(got[0].enc, "pkmsg", "a first message starts the session");
    assert_eq!(got[0].from, device);
    assert_eq!(got[0].to, format!("{CONTACT}@s.whatsapp.net"));
    // The account's own phone got its copy too (the client fans out to own devices).
    let mine = fake.received(PHONE);
    assert!(mine.iter().any(|m| m.id == wa && m.text.as_deref() == Some(text)), "{mine:?}");

    let m = message_until(&gw, &token, &sid, &mid, Duration::from_secs(10), |m| m["status"] == "sent").await;
    assert_eq!(m["waMessageId"], json!(wa));
    assert!(m["sentAt"].is_i64(), "{m}");

    fake.receipt(CONTACT, &device, &wa, "delivered").expect("a delivery receipt");
    let m = message_until(&gw, &token, &sid, &mid, Duration::from_secs(10), |m| m["status"] == "delivered").await;
    assert!(m["deliveredAt"].is_i64(), "{m}");
    fake.receipt(CONTACT, &device, &wa, "read").expect("a read receipt");
    let m = message_until(&gw, &token, &sid, &mid, Duration::from_secs(10), |m| m["status"] == "read").await;
    assert!(m["readAt"].is_i64(), "{m}");

    // The session goes on (still a `pkmsg` until the contact answers: the
    // sender keeps the prekey header while nothing came back on the session).
    let (_, wa2) = send_text(&gw, &token, &sid, CONTACT, "second").await;
    assert!(fake.until(Duration::from_secs(15), |f| f.received(CONTACT).len() == 2).await, "{:?}", fake.unexpected());
    let got = fake.received(CONTACT);
    assert_eq!((got[1].id.as_str(), got[1].text.as_deref()), (wa2.as_str(), Some("second")), "{got:?}");
    assert!(fake.unexpected().is_empty(), "stanzas the fake had no rule for: {:?}", fake.unexpected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_s_text_is_stored_as_an_inbound_message_and_the_reply_reaches_it() {
    let fake = FakeWa::start().await;
    let gw = gateway_on(&fake, None).await;
    let token = gw.owner("org_msg_in");
    let (sid, device) = linked(&gw, &fake, &token).await;
    let lid = fake.contact(CONTACT);

    let wa = fake.deliver_text(CONTACT, &device, "Halo, ada yang bisa dibantu?").expect("delivered");
    let t = Instant::now();
    let m = loop {
        let r = gw.http.get(&format!("/api/v1/sessions/{sid}/messages?direction=in"), Some(&token)).await;
        assert_eq!(r.status, 200, "{:?}", r.json);
        let found = r.json["data"].as_array().and_then(|d| d.iter().find(|m| m["waMessageId"] == json!(wa)).cloned());
        if let Some(m) = found {
            break m;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "no inbound message: {} seen: {:?} unexpected: {:?}",
            r.json,
            fake.seen(),
            fake.unexpected()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(m["direction"], "in", "{m}");
    assert_eq!(m["type"], "text", "{m}");
    assert_eq!(m["text"], "Halo, ada yang bisa dibantu?", "{m}");
    assert_eq!(m["chatJid"], json!(format!("{CONTACT}@s.whatsapp.net")), "{m}");
    assert_eq!(m["status"], "received", "{m}");
    // The client told the contact it got it.
    assert!(
        fake.until(Duration::from_secs(10), |f| f.device_receipts().iter().any(|r| r.id == wa)).await,
        "no receipt for {wa}: {:?}",
        fake.device_receipts()
    );

    // A reply goes over the session the contact started.
    let (_, wa2) = send_text(&gw, &token, &sid, CONTACT, "Tentu!").await;
    assert!(fake.until(Duration::from_secs(15), |f| !f.received(CONTACT).is_empty()).await, "{:?}", fake.unexpected());
    let got = fake.received(CONTACT);
    assert_eq!((got[0].id.as_str(), got[0].text.as_deref()), (wa2.as_str(), Some("Tentu!")), "{got:?}");
    assert_eq!(got[0].enc, "msg", "the reply rides the contact's session, no new prekey: {got:?}");
    assert_eq!(m["chatLid"], json!(format!("{lid}@lid")), "{m}");
    assert!(fake.unexpected().is_empty(), "stanzas the fake had no rule for: {:?}", fake.unexpected());
}
