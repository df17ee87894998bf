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
use flow::{gateway_on, inbound, linked, message_until};
use serde_json::{json, Value};

const PHONE: &str = "6281234567890";
const CONTACT: &str = "6289876543210";

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
    let (sid, device) = linked(&gw, &fake, &token, PHONE).await;
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
    let (sid, device) = linked(&gw, &fake, &token, PHONE).await;
    let lid = fake.contact(CONTACT);

    let wa = fake.deliver_text(CONTACT, &device, "Halo, ada yang bisa dibantu?").expect("delivered");
    let m = inbound(&gw, &token, &sid, &wa).await;
    assert_eq!(m["direction"], "in", "{m}");
    assert_eq!(m["type"], "text", "{m}");
    assert_eq!(m["text"], "Halo, ada yang bisa dibantu?", "{m}");
    assert_eq!(m["chatJid"], json!(format!("{CONTACT}@s.whatsapp.net")), "{m}");
    assert_eq!(m["status"], "received", "{m}");
    // … and an event naming both the phone and the @lid.
    let received = events_of(&gw, &token, "message.received").await;
    let event = received.iter().find(|e| e.to_string().contains(&wa)).unwrap_or_else(|| panic!("no message.received for {wa}: {received:?}"));
    let text = event.to_string();
    assert!(text.contains(&format!("{CONTACT}@s.whatsapp.net")) && text.contains(&format!("{lid}@lid")), "{event}");
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

/// The session's events of `kind` (newest last).
async fn events_of(gw: &TestGateway, token: &str, kind: &str) -> Vec<Value> {
    let r = gw.http.get("/api/v1/events?limit=200", Some(token)).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    r.json["data"].as_array().cloned().unwrap_or_default().into_iter().filter(|e| e["type"] == kind).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_auto_read_replies_reactions_revokes_and_a_463_through_the_real_client() {
    let fake = FakeWa::start().await;
    let gw = gateway_on(&fake, None).await;
    let token = gw.owner("org_msg_more");
    let (sid, device) = linked(&gw, &fake, &token, PHONE).await;
    fake.contact(CONTACT);
    let patch = |body: Value| {
        let (gw, token, sid) = (&gw, &token, &sid);
        async move {
            let r = gw.http.patch(&format!("/api/v1/sessions/{sid}"), Some(token), body).await;
            assert_eq!(r.status, 200, "{:?}", r.json);
        }
    };

    // autoRead: the contact's message is marked read within 5 s.
    patch(json!({"autoRead": true})).await;
    let inbound_wa = fake.deliver_text(CONTACT, &device, "apa kabar?").expect("delivered");
    assert!(
        fake.until(Duration::from_secs(5), |f| f.device_receipts().iter().any(|r| r.id == inbound_wa && r.kind == "read")).await,
        "no read receipt within 5 s: {:?}",
        fake.device_receipts()
    );
    let stored = inbound(&gw, &token, &sid, &inbound_wa).await;
    let inbound_id = stored["id"].as_str().expect("id").to_string();

    // Typing presence: composing, then paused, then the message.
    patch(json!({"presenceTyping": true})).await;
    let (typed_mid, typed_wa) = send_text(&gw, &token, &sid, CONTACT, "baik").await;
    assert!(fake.until(Duration::from_secs(15), |f| f.received(CONTACT).iter().any(|m| m.id == typed_wa)).await);
    let timeline = fake.timeline(CONTACT);
    let tail: Vec<&str> = timeline.iter().rev().take(3).rev().map(String::as_str).collect();
    assert_eq!(tail, vec!["composing", "paused", &format!("message {typed_wa}")], "{timeline:?}");
    patch(json!({"presenceTyping": false})).await;

    // A reply quotes the contact's message; a reaction names it.
    let r = gw
        .http
        .post(&format!("/api/v1/sessions/{sid}/messages"), Some(&token), json!({"to": CONTACT, "text": "ini balasan", "replyTo": inbound_id}))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let reply_wa = r.json["waMessageId"].as_str().expect("wa").to_string();
    let r = gw
        .http
        .post(&format!("/api/v1/sessions/{sid}/messages"), Some(&token), json!({"to": CONTACT, "reaction": {"messageId": inbound_id, "emoji": "👍"}}))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let reaction_wa = r.json["waMessageId"].as_str().expect("wa").to_string();
    assert!(fake.until(Duration::from_secs(15), |f| f.received(CONTACT).iter().any(|m| m.id == reaction_wa)).await);
    let got = fake.received(CONTACT);
    let reply = got.iter().find(|m| m.id == reply_wa).expect("the reply arrived");
    assert_eq!(reply.text.as_deref(), Some("ini balasan"));
    let quoted = reply.message.extended_text_message.as_option().and_then(|e| e.context_info.as_option()).and_then(|c| c.stanza_id.clone());
    assert_eq!(quoted.as_deref(), Some(inbound_wa.as_str()), "the reply quotes the contact's message: {reply:?}");
    let reaction = got.iter().find(|m| m.id == reaction_wa).expect("the reaction arrived");
    let r = reaction.message.reaction_message.as_option().expect("a reaction");
    assert_eq!(r.text.as_deref(), Some("👍"));
    assert_eq!(r.key.as_option().and_then(|k| k.id.clone()).as_deref(), Some(inbound_wa.as_str()));

    // A revoke of the sent message reaches the contact, and the message is `revoked`.
    message_until(&gw, &token, &sid, &typed_mid, Duration::from_secs(10), |m| m["status"] == "sent").await;
    let r = gw.http.delete(&format!("/api/v1/sessions/{sid}/messages/{typed_mid}"), Some(&token)).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    message_until(&gw, &token, &sid, &typed_mid, Duration::from_secs(10), |m| m["status"] == "revoked").await;
    let revoked = fake.received(CONTACT).into_iter().any(|m| {
        m.message.protocol_message.as_option().and_then(|p| p.key.as_option()).and_then(|k| k.id.clone()).as_deref() == Some(typed_wa.as_str())
    });
    assert!(revoked, "the contact got the revoke: {:?}", fake.received(CONTACT));

    // WhatsApp refuses a send with 463: that message fails with the code and the queue pauses.
    fake.refuse_next("463");
    let (refused_mid, _) = send_text(&gw, &token, &sid, CONTACT, "ditolak").await;
    let m = message_until(&gw, &token, &sid, &refused_mid, Duration::from_secs(10), |m| m["status"] == "failed").await;
    assert_eq!(m["error"]["code"], "463", "{m}");
    let t = Instant::now();
    while events_of(&gw, &token, "session.sending_paused").await.is_empty() {
        assert!(t.elapsed() < Duration::from_secs(5), "no session.sending_paused event");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (held_mid, _) = send_text(&gw, &token, &sid, CONTACT, "menunggu").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let m = message_until(&gw, &token, &sid, &held_mid, Duration::from_secs(1), |_| true).await;
    assert_eq!(m["status"], "queued", "the paused queue holds it: {m}");
    assert!(fake.unexpected().is_empty(), "stanzas the fake had no rule for: {:?}", fake.unexpected());
}
