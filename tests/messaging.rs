//! Messaging over real HTTP with the sim engine and real data files
//! (CONTRACT §9, §10): the send queue's pacing and typing, a message's whole
//! life as statuses and ordered events, idempotency, account trouble,
//! cancel/revoke/TTL/logout, inbound messages with LID and phone, autoRead,
//! tenancy, and a corpus of bad input that must change nothing.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{sim_working_session as working_session, Http, Res, TestGateway};
use hyper::Method;
use serde_json::{json, Value};
use wa_gateway::config::ServeConfig;

/// A sim gateway, with `f` adjusting its config.
async fn gateway(f: impl FnOnce(&mut ServeConfig)) -> TestGateway {
    TestGateway::start_with(|c| {
        common::sim_engine(c, 20, 80);
        f(c);
    })
    .await
}

async fn send(h: &Http, t: &str, id: &str, body: Value) -> Res {
    h.post(&format!("/api/v1/sessions/{id}/messages"), Some(t), body).await
}

/// Polls message `mid` until `pred` holds (`secs` at most); returns it.
async fn wait_msg(h: &Http, t: &str, id: &str, mid: &str, secs: u64, pred: impl Fn(&Value) -> bool) -> Value {
    let end = Instant::now() + Duration::from_secs(secs);
    let mut last = Value::Null;
    while Instant::now() < end {
        last = h.get(&format!("/api/v1/sessions/{id}/messages/{mid}"), Some(t)).await.json;
        if pred(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("message {mid} never matched; last: {last}");
}

async fn outbox(h: &Http, t: &str, id: &str) -> Vec<Value> {
    let r = h.get(&format!("/api/v1/sessions/{id}/sim/outbox"), Some(t)).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    r.json["data"].as_array().cloned().unwrap_or_default()
}

fn sent_messages(out: &[Value]) -> Vec<&Value> {
    out.iter().filter(|r| r["kind"] == "message").collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_lives_scheduled_queued_sending_sent_delivered_read_in_order() {
    let gw = gateway(|_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_m"));
    let id = working_session(h, &t, json!({"presenceTyping": false})).await;
    let r = send(h, &t, &id, json!({"to": "6281234567890", "text": "hello", "sendAt": wa_gateway::store::now_ms() + 600})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    assert_eq!(r.json["status"], "scheduled");
    assert_eq!(r.json["chatId"], "6281234567890@s.whatsapp.net");
    assert_eq!(r.json["direction"], "out");
    assert_eq!(r.json["senderJid"], "6281100000001@s.whatsapp.net");
    let wa = r.json["waMessageId"].as_str().expect("wa id").to_string();
    let mid = r.json["id"].as_str().expect("id").to_string();
    let m = wait_msg(h, &t, &id, &mid, 5, |m| m["status"] == "sent").await;
    assert_eq!(m["waMessageId"], wa.as_str());
    assert!(m["sentAt"].as_i64().is_some());
    let out = outbox(h, &t, &id).await;
    assert_eq!(sent_messages(&out).len(), 1);
    assert_eq!(sent_messages(&out)[0]["waMessageId"], wa.as_str());
    assert_eq!(sent_messages(&out)[0]["text"], "hello");
    for st in ["delivered", "read"] {
        let r = h.post(&format!("/api/v1/sessions/{id}/sim/receipt"), Some(&t), json!({"waMessageId": wa, "status": st})).await;
        assert_eq!(r.status, 202, "{:?}", r.json);
        wait_msg(h, &t, &id, &mid, 5, |m| m["status"] == st).await;
    }
    // Statuses only move forward: a late `delivered` does not undo `read`.
    h.post(&format!("/api/v1/sessions/{id}/sim/receipt"), Some(&t), json!({"waMessageId": wa, "status": "delivered"})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let m = wait_msg(h, &t, &id, &mid, 1, |m| m["status"] == "read").await;
    assert!(m["deliveredAt"].as_i64().is_some() && m["readAt"].as_i64().is_some());

    // The events of that message, in commit order.
    let evs = common::walk(h, &format!("/api/v1/events?type=message.status&sessionId={id}"), &t, 2).await;
    let seen: Vec<&str> = evs.iter().filter(|e| e["data"]["id"] == mid.as_str()).map(|e| e["data"]["status"].as_str().unwrap_or("")).collect();
    assert_eq!(seen, ["scheduled", "queued", "sending", "sent", "delivered", "read"]);
    let ids: Vec<&str> = evs.iter().map(|e| e["id"].as_str().unwrap_or("")).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "event ids sort in commit order");
    assert!(ids.iter().all(|i| i.starts_with("evt_")));
    // The session's own status changes are events too, with the session as data.
    let st = common::walk(h, &format!("/api/v1/events?type=session.status&sessionId={id}"), &t, 50).await;
    let statuses: Vec<&str> = st.iter().map(|e| e["data"]["status"].as_str().unwrap_or("")).collect();
    assert!(statuses.ends_with(&["scan_qr_code", "working"]), "{statuses:?}");
    // Another organization sees none of it.
    let other = gw.owner("org_other");
    assert_eq!(h.get(&format!("/api/v1/sessions/{id}/messages/{mid}"), Some(&other)).await.status, 404);
    assert_eq!(h.get(&format!("/api/v1/sessions/{id}/messages"), Some(&other)).await.status, 404);
    assert_eq!(send(h, &other, &id, json!({"to": "6281234567890", "text": "x"})).await.status, 404);
    let theirs = h.get("/api/v1/events", Some(&other)).await;
    assert_eq!(theirs.json["data"].as_array().map(Vec::len), Some(0));
    let admin = h.get("/api/v1/admin/events?type=message.status", Some(&gw.super_admin())).await;
    assert_eq!(admin.status, 200);
    assert!(admin.json["data"].as_array().is_some_and(|d| !d.is_empty()));
    gw.stop().await;
}

/// Plain sends queued while the number has no link wait (their worker
/// does not even wake for each one: it waits for the link), and leave in
/// order as soon as it connects: the connection wakes the worker, well
/// before its 5 s poll would.
#[tokio::test(flavor = "multi_thread")]
async fn sends_queued_before_the_link_leave_in_order_as_soon_as_it_connects() {
    let gw = gateway(|_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_link"));
    let r = h.post("/api/v1/sessions", Some(&t), json!({"label": "later", "start": true, "presenceTyping": false, "ratePerMin": 600})).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let id = r.json["id"].as_str().expect("id").to_string();
    common::wait_status(h, &t, &id, "scan_qr_code").await;
    let mut mids = Vec::new();
    for i in 0..6 {
        let r = send(h, &t, &id, json!({"to": "6281234567890", "text": format!("early {i}")})).await;
        assert_eq!(r.status, 202, "{:?}", r.json);
        mids.push(r.json["id"].as_str().expect("id").to_string());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sent_messages(&outbox(h, &t, &id).await).is_empty(), "nothing leaves without a link");
    let r = h.post(&format!("/api/v1/sessions/{id}/sim/pair"), Some(&t), json!({"phoneNumber": "6281100000001"})).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let linked = Instant::now();
    let last = mids.last().expect("six").clone();
    wait_msg(h, &t, &id, &last, 3, |m| m["status"] == "sent").await;
    assert!(linked.elapsed() < Duration::from_secs(3), "sent {:?} after the link", linked.elapsed());
    let out = outbox(h, &t, &id).await;
    let texts: Vec<&str> = sent_messages(&out).iter().map(|r| r["text"].as_str().unwrap_or("")).collect();
    assert_eq!(texts, (0..6).map(|i| format!("early {i}")).collect::<Vec<_>>());
    let report = wa_gateway::store::check::check(&gw.app().store.read().expect("read")).expect("check");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    gw.stop().await;
}

/// Pacing survives a restart: the send log holds the last hour's sends, so
/// a message queued right after a restart still waits out the minimum gap
/// after the one sent before it (6 a minute: 5 s apart).
#[tokio::test(flavor = "multi_thread")]
async fn pacing_survives_a_restart() {
    let gw = gateway(|_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_restart"));
    let id = working_session(h, &t, json!({"presenceTyping": false, "ratePerMin": 6})).await;
    let r = send(h, &t, &id, json!({"to": "6281234567890", "text": "before"})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let first = r.json["id"].as_str().expect("id").to_string();
    let first = wait_msg(h, &t, &id, &first, 5, |m| m["status"] == "sent").await;
    let dir = gw.stop().await;
    let gw = TestGateway::start_in(dir, |c| common::sim_engine(c, 20, 80)).await;
    let h = &gw.http;
    common::wait_status(h, &t, &id, "working").await;
    let r = send(h, &t, &id, json!({"to": "6281234567890", "text": "after"})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let second = r.json["id"].as_str().expect("id").to_string();
    let second = wait_msg(h, &t, &id, &second, 8, |m| m["status"] == "sent").await;
    let gap = second["sentAt"].as_i64().expect("sentAt") - first["sentAt"].as_i64().expect("sentAt");
    assert!(gap >= 5_000, "sent {gap} ms after the one before the restart");
    gw.stop().await;
}

/// A busy queue (typing off, rates that allow it) costs one commit a
/// message: the commit that marks one `sent` also claims the next. The
/// wire order, the statuses and their events are those of any send.
#[tokio::test(flavor = "multi_thread")]
async fn a_busy_queue_marks_one_sent_and_claims_the_next_in_one_commit() {
    let gw = gateway(|_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_chain"));
    let settings = json!({"presenceTyping": false, "ratePerMin": 100000, "ratePerHour": 100000});
    let id = working_session(h, &t, settings).await;
    let batch: Vec<Value> = (0..20).map(|i| json!({"to": "6281234567890", "text": format!("m{i}")})).collect();
    let v0 = gw.app().store.version();
    let r = h.post(&format!("/api/v1/sessions/{id}/messages/batch"), Some(&t), json!({"messages": batch})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let mids: Vec<String> = r.json["data"].as_array().expect("data").iter().map(|m| m["id"].as_str().expect("id").to_string()).collect();
    assert_eq!(mids.len(), 20);
    wait_msg(h, &t, &id, &mids[19], 10, |m| m["status"] == "sent").await;
    // The batch, the first claim, then one commit per send: 22. Two per
    // send (claim, then sent) would be 41.
    let commits = gw.app().store.version() - v0;
    assert!(commits <= 30, "{commits} commits for 20 sends");
    let out = outbox(h, &t, &id).await;
    let texts: Vec<&str> = sent_messages(&out).iter().map(|r| r["text"].as_str().unwrap_or("")).collect();
    let want: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    assert_eq!(texts, want.iter().map(String::as_str).collect::<Vec<_>>(), "sent once each, in queue order");
    let at: Vec<i64> = sent_messages(&out).iter().map(|r| r["at"].as_i64().expect("at")).collect();
    assert!(at.windows(2).all(|w| w[1] - w[0] >= 1), "the pace's 1 ms gap holds on the wire: {at:?}");
    let evs = common::walk(h, &format!("/api/v1/events?type=message.status&sessionId={id}"), &t, 100).await;
    for mid in &mids {
        let seen: Vec<&str> = evs.iter().filter(|e| e["data"]["id"] == mid.as_str()).map(|e| e["data"]["status"].as_str().unwrap_or("")).collect();
        assert_eq!(seen, ["queued", "sending", "sent"], "message {mid}");
    }
    // One in flight at a time: each claim comes right after the `sent` before it.
    for k in 1..20 {
        let sent = evs.iter().position(|e| e["data"]["id"] == mids[k - 1].as_str() && e["data"]["status"] == "sent");
        let next = sent.and_then(|i| evs.get(i + 1)).expect("an event after sent");
        assert_eq!((next["data"]["id"].as_str(), next["data"]["status"].as_str()), (Some(mids[k].as_str()), Some("sending")));
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sixty_a_minute_paces_eight_messages_half_a_second_apart() {
    let gw = gateway(|_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_p"));
    // Two sessions side by side, typing off and on (the default): each is
    // paced on its own, neither waits for the other.
    let quiet = working_session(h, &t, json!({"presenceTyping": false, "ratePerMin": 60})).await;
    let typing = working_session(h, &t, json!({"ratePerMin": 60})).await;
    let started = Instant::now();
    for id in [&quiet, &typing] {
        let items: Vec<Value> = (0..8).map(|i| json!({"to": "6281234567890", "text": format!("m{i}")})).collect();
        let r = h.post(&format!("/api/v1/sessions/{id}/messages/batch"), Some(&t), json!({"messages": items})).await;
        assert_eq!(r.status, 202, "{:?}", r.json);
        assert_eq!(r.json["data"].as_array().map(Vec::len), Some(8));
    }
    let mut done = [false, false];
    while done != [true, true] {
        for (n, id) in [&quiet, &typing].into_iter().enumerate() {
            let out = outbox(h, &t, id).await;
            if done[n] || sent_messages(&out).len() < 8 {
                continue;
            }
            done[n] = true;
            let at: Vec<i64> = sent_messages(&out).iter().map(|r| r["at"].as_i64().unwrap_or(0)).collect();
            for w in at.windows(2) {
                assert!(w[1] - w[0] >= 500, "two sends {} ms apart", w[1] - w[0]);
            }
            let texts: Vec<&str> = sent_messages(&out).iter().map(|r| r["text"].as_str().unwrap_or("")).collect();
            assert_eq!(texts, ["m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7"], "FIFO");
            let presences = out.iter().filter(|r| r["kind"] == "presence").count();
            assert_eq!(presences, if id == &quiet { 0 } else { 16 }, "presence only with presenceTyping");
        }
        assert!(started.elapsed() < Duration::from_secs(10), "8 messages not out within 10 s: {done:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_patch_to_a_slower_rate_mid_queue_applies_to_the_rest() {
    let gw = gateway(|_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_slow"));
    let id = working_session(h, &t, json!({"presenceTyping": false, "ratePerMin": 120})).await;
    let items: Vec<Value> = (0..6).map(|i| json!({"to": "6281234567890", "text": format!("m{i}")})).collect();
    h.post(&format!("/api/v1/sessions/{id}/messages/batch"), Some(&t), json!({"messages": items})).await;
    // 120/min: one every 250 ms. Once two are out, slow down to 20/min (1.5 s).
    let end = Instant::now() + Duration::from_secs(5);
    while sent_messages(&outbox(h, &t, &id).await).len() < 2 {
        assert!(Instant::now() < end);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let patched = wa_gateway::store::now_ms();
    assert_eq!(h.patch(&format!("/api/v1/sessions/{id}"), Some(&t), json!({"ratePerMin": 20})).await.status, 200);
    tokio::time::sleep(Duration::from_millis(3_400)).await;
    let out = outbox(h, &t, &id).await;
    let at: Vec<i64> = sent_messages(&out).iter().map(|r| r["at"].as_i64().unwrap_or(0)).collect();
    let after: Vec<i64> = at.iter().copied().filter(|a| *a > patched + 50).collect();
    assert!(!after.is_empty() && after.len() <= 3, "{at:?}");
    for w in at.windows(2).filter(|w| w[1] > patched + 50) {
        assert!(w[1] - w[0] >= 1_500, "a send {} ms after the previous one, past the PATCH: {at:?}", w[1] - w[0]);
    }
    assert!(at.len() < 6, "the rest waits at the slower pace: {at:?}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn media_by_url_and_base64_is_kept_until_sent_and_inbound_media_downloads() {
    use std::io::{Read, Write};
    // A tiny image server on loopback (allowed only with --allow-private-urls).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let body = b"\x89PNG fake image bytes";
            let head = format!("HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(body);
        }
    });
    let url = format!("http://{addr}/pics/cat.png");
    let closed = gateway(|_| {}).await;
    let r = send(&closed.http, &closed.owner("org_u"), "01ARZ3NDEKTSV4RRFFQ69G5FAV", json!({"to": "6281234567890", "media": {"url": url}})).await;
    assert_eq!(r.status, 404, "an unknown session first");
    let (h, t) = (&closed.http, closed.owner("org_u"));
    let id = working_session(h, &t, json!({"presenceTyping": false})).await;
    let r = send(h, &t, &id, json!({"to": "6281234567890", "media": {"url": url}})).await;
    assert_eq!((r.status.as_u16(), r.json["error"]["details"]["field"].as_str()), (400, Some("media.url")), "loopback refused by default");
    closed.stop().await;

    let gw = gateway(|c| c.messaging.allow_private_urls = true).await;
    let (h, t) = (&gw.http, gw.owner("org_u"));
    let id = working_session(h, &t, json!({"presenceTyping": false})).await;
    h.post(&format!("/api/v1/sessions/{id}/stop"), Some(&t), json!({})).await;
    let r = send(h, &t, &id, json!({"to": "6281234567890", "media": {"url": url}, "text": "a cat"})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    assert_eq!(r.json["type"], "image");
    assert_eq!(r.json["media"]["mimetype"], "image/png");
    assert_eq!(r.json["media"]["fileName"], "cat.png");
    let mid = r.json["id"].as_str().expect("id").to_string();
    let m = h.get(&format!("/api/v1/sessions/{id}/messages/{mid}/media"), Some(&t)).await;
    assert_eq!((m.status.as_u16(), &m.body[..]), (200, &b"\x89PNG fake image bytes"[..]));
    assert_eq!(m.headers.get("content-type").map(|v| v.as_bytes()), Some(&b"image/png"[..]));
    let doc = send(h, &t, &id, json!({"to": "6281234567890", "type": "document", "media": {"data": "aGVsbG8=", "mimetype": "text/plain", "fileName": "a.txt"}})).await;
    assert_eq!((doc.status.as_u16(), doc.json["type"].as_str(), doc.json["media"]["sizeBytes"].as_u64()), (202, Some("document"), Some(5)));
    // Once sent, outbound media is no longer kept.
    h.post(&format!("/api/v1/sessions/{id}/start"), Some(&t), json!({})).await;
    wait_msg(h, &t, &id, &mid, 5, |m| m["status"] == "sent").await;
    assert_eq!(h.get(&format!("/api/v1/sessions/{id}/messages/{mid}/media"), Some(&t)).await.status, 404);
    let out = outbox(h, &t, &id).await;
    assert!(sent_messages(&out).iter().any(|r| r["type"] == "image" && r["text"] == "a cat"), "{out:?}");
    // Inbound media is fetched from WhatsApp (here the sim) on demand.
    let r = h.post(&format!("/api/v1/sessions/{id}/sim/incoming"), Some(&t), json!({"from": "6281299999999", "type": "document", "text": "invoice"})).await;
    assert_eq!(r.status, 202);
    let end = Instant::now() + Duration::from_secs(5);
    let inbound = loop {
        let l = h.get(&format!("/api/v1/sessions/{id}/messages?direction=in"), Some(&t)).await;
        if let Some(m) = l.json["data"].as_array().and_then(|d| d.first()).cloned() {
            break m;
        }
        assert!(Instant::now() < end);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!((inbound["type"].as_str(), inbound["text"].as_str()), (Some("document"), Some("invoice")));
    assert_eq!(inbound["media"]["mimetype"], "application/pdf");
    let m = h.get(&format!("/api/v1/sessions/{id}/messages/{}/media", inbound["id"].as_str().unwrap_or("")), Some(&t)).await;
    assert_eq!(m.status, 200);
    assert_eq!(m.body.len() as u64, inbound["media"]["sizeBytes"].as_u64().unwrap_or(0));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn typing_shows_composing_then_paused_before_each_message() {
    let gw = gateway(|_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_t"));
    let id = working_session(h, &t, json!({"ratePerMin": 600})).await;
    let long = "x".repeat(100);
    for text in ["hi", long.as_str()] {
        assert_eq!(send(h, &t, &id, json!({"to": "6281234567890", "text": text})).await.status, 202);
    }
    let end = Instant::now() + Duration::from_secs(15);
    let out = loop {
        let out = outbox(h, &t, &id).await;
        if sent_messages(&out).len() == 2 {
            break out;
        }
        assert!(Instant::now() < end, "messages not sent: {out:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let kinds: Vec<String> = out
        .iter()
        .map(|r| format!("{}{}", r["kind"].as_str().unwrap_or(""), r["presence"].as_str().map(|p| format!(":{p}")).unwrap_or_default()))
        .collect();
    assert_eq!(kinds, ["presence:composing", "presence:paused", "message", "presence:composing", "presence:paused", "message"]);
    let typed = |i: usize| out[i + 1]["at"].as_i64().unwrap_or(0) - out[i]["at"].as_i64().unwrap_or(0);
    assert!(typed(0) >= 900 && typed(0) <= 8_100, "{}", typed(0));
    assert!(typed(3) > typed(0), "a longer text is typed longer: {} vs {}", typed(3), typed(0));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotency_keys_replay_refuse_and_hold_under_a_race() {
    let gw = gateway(|_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_i"));
    let id = working_session(h, &t, json!({"presenceTyping": false, "ratePerMin": 600})).await;
    let path = format!("/api/v1/sessions/{id}/messages");
    let body = Bytes::from(json!({"to": "6281234567890", "text": "once"}).to_string());
    let a = h.send(Method::POST, &path, Some(&t), Some(body.clone()), &[("idempotency-key", "k-1")]).await;
    let b = h.send(Method::POST, &path, Some(&t), Some(body.clone()), &[("idempotency-key", "k-1")]).await;
    assert_eq!((a.status.as_u16(), b.status.as_u16()), (202, 202));
    assert_eq!(a.body, b.body, "the first answer, replayed");
    assert_eq!(b.headers.get("idempotent-replayed").map(|v| v.as_bytes()), Some(&b"true"[..]));
    let other = Bytes::from(json!({"to": "6281234567890", "text": "another"}).to_string());
    let c = h.send(Method::POST, &path, Some(&t), Some(other), &[("idempotency-key", "k-1")]).await;
    assert_eq!((c.status.as_u16(), c.code()), (409, "conflict"));
    let bad = h.send(Method::POST, &path, Some(&t), Some(body.clone()), &[("idempotency-key", "a b")]).await;
    assert_eq!(bad.status, 400);
    // A retry gets the first answer even when its body would no longer pass
    // (here: `sendAt` has passed meanwhile) — nothing is re-validated.
    let soon = Bytes::from(json!({"to": "6281234567890", "text": "soon", "sendAt": wa_gateway::store::now_ms() + 300}).to_string());
    let first = h.send(Method::POST, &path, Some(&t), Some(soon.clone()), &[("idempotency-key", "k-2")]).await;
    assert_eq!(first.status, 202);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let retry = h.send(Method::POST, &path, Some(&t), Some(soon), &[("idempotency-key", "k-2")]).await;
    assert_eq!((retry.status.as_u16(), &retry.body), (202, &first.body));
    // 16 at once with one key: exactly one message.
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (h, t, path, body) = (h.clone(), t.clone(), path.clone(), body.clone());
        tasks.push(tokio::spawn(async move { h.send(Method::POST, &path, Some(&t), Some(body), &[("idempotency-key", "race")]).await }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for task in tasks {
        let r = task.await.expect("task");
        assert_eq!(r.status, 202);
        ids.insert(r.json["id"].as_str().unwrap_or("").to_string());
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let all = common::walk(h, &path, &t, 50).await;
    assert_eq!(all.len(), 3, "k-1, k-2 and race: three messages in all");
    let out = outbox(h, &t, &id).await;
    assert_eq!(sent_messages(&out).len(), 3, "each sent once");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn account_trouble_fails_one_pauses_the_queue_and_not_on_whatsapp_fails() {
    let gw = gateway(|_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_x"));
    let id = working_session(h, &t, json!({"presenceTyping": false, "ratePerMin": 600})).await;
    let r = send(h, &t, &id, json!({"to": "9991234567", "text": "nobody"})).await;
    let nobody = r.json["id"].as_str().expect("id").to_string();
    let m = wait_msg(h, &t, &id, &nobody, 5, |m| m["status"] == "failed").await;
    assert_eq!(m["error"]["code"], "not_on_whatsapp");
    let r = h.post(&format!("/api/v1/sessions/{id}/sim/refuse"), Some(&t), json!({"code": "463", "count": 1})).await;
    assert_eq!(r.status, 202);
    let first = send(h, &t, &id, json!({"to": "6281234567890", "text": "refused"})).await.json["id"].as_str().expect("id").to_string();
    let rest = send(h, &t, &id, json!({"to": "6281234567890", "text": "waits"})).await.json["id"].as_str().expect("id").to_string();
    let m = wait_msg(h, &t, &id, &first, 5, |m| m["status"] == "failed").await;
    assert_eq!(m["error"]["code"], "463");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let m = wait_msg(h, &t, &id, &rest, 1, |_| true).await;
    assert_eq!(m["status"], "queued", "the rest stays queued while paused");
    let ev = h.get(&format!("/api/v1/events?type=session.sending_paused&sessionId={id}"), Some(&t)).await;
    let data = &ev.json["data"][0]["data"];
    assert!(data["until"].as_i64().unwrap_or(0) > wa_gateway::store::now_ms() + 3_000_000, "{data}");
    assert!(data["reason"].as_str().is_some_and(|r| r.contains("463")));
    let metrics = String::from_utf8_lossy(&h.get("/metrics", None).await.body).into_owned();
    assert!(metrics.contains("wa_gateway_messages_failed_total 2"), "{metrics}");
    assert!(metrics.contains("wa_gateway_send_queue_pauses_total 1"), "{metrics}");
    assert!(metrics.contains("wa_gateway_messages_sent_total 0"), "{metrics}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_revoke_expire_and_logout() {
    let gw = gateway(|c| c.messaging.message_ttl = Duration::from_millis(700)).await;
    let (h, t) = (&gw.http, gw.owner("org_c"));
    let id = working_session(h, &t, json!({"presenceTyping": false, "ratePerMin": 600})).await;
    // Cancel a scheduled message.
    let later = wa_gateway::store::now_ms() + 60_000;
    let r = send(h, &t, &id, json!({"to": "6281234567890", "text": "later", "sendAt": later})).await;
    let mid = r.json["id"].as_str().expect("id").to_string();
    let d = h.delete(&format!("/api/v1/sessions/{id}/messages/{mid}"), Some(&t)).await;
    assert_eq!((d.status.as_u16(), d.json["status"].as_str()), (200, Some("canceled")));
    let again = h.send(Method::DELETE, &format!("/api/v1/sessions/{id}/messages/{mid}"), Some(&t), None, &[]).await;
    assert_eq!(again.status, 409);
    // Revoke a sent one: queued like a send, then `revoked`.
    let r = send(h, &t, &id, json!({"to": "6281234567890", "text": "oops"})).await;
    let mid = r.json["id"].as_str().expect("id").to_string();
    wait_msg(h, &t, &id, &mid, 5, |m| m["status"] == "sent").await;
    let d = h.send(Method::DELETE, &format!("/api/v1/sessions/{id}/messages/{mid}"), Some(&t), None, &[]).await;
    assert_eq!(d.status, 202, "{:?}", d.json);
    wait_msg(h, &t, &id, &mid, 5, |m| m["status"] == "revoked").await;
    let wa = r.json["waMessageId"].as_str().expect("wa").to_string();
    assert!(outbox(h, &t, &id).await.iter().any(|r| r["kind"] == "revoke" && r["waMessageId"] == wa.as_str()));
    // A stopped session keeps its queue until the TTL: then `expired`.
    h.post(&format!("/api/v1/sessions/{id}/stop"), Some(&t), json!({})).await;
    let r = send(h, &t, &id, json!({"to": "6281234567890", "text": "too late"})).await;
    let mid = r.json["id"].as_str().expect("id").to_string();
    wait_msg(h, &t, &id, &mid, 5, |m| m["status"] == "expired").await;
    // Logout fails what is queued.
    let gw2 = gateway(|_| {}).await;
    let (h2, t2) = (&gw2.http, gw2.owner("org_c"));
    let id2 = working_session(h2, &t2, json!({"presenceTyping": false})).await;
    h2.post(&format!("/api/v1/sessions/{id2}/stop"), Some(&t2), json!({})).await;
    let r = send(h2, &t2, &id2, json!({"to": "6281234567890", "text": "never"})).await;
    let mid = r.json["id"].as_str().expect("id").to_string();
    assert_eq!(h2.post(&format!("/api/v1/sessions/{id2}/logout"), Some(&t2), json!({})).await.status, 200);
    let m = wait_msg(h2, &t2, &id2, &mid, 2, |m| m["status"] == "failed").await;
    assert_eq!(m["error"]["code"], "session_logged_out");
    gw.stop().await;
    gw2.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn inbound_messages_carry_lid_and_phone_and_auto_read_marks_them() {
    let gw = gateway(|_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_in"));
    let id = working_session(h, &t, json!({"autoRead": true})).await;
    let r = h
        .post(&format!("/api/v1/sessions/{id}/sim/incoming"), Some(&t), json!({"from": "6281299999999", "text": "hey", "lid": "123456789012345"}))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let wa = r.json["id"].as_str().expect("wa").to_string();
    let started = Instant::now();
    let msg = loop {
        let l = h.get(&format!("/api/v1/sessions/{id}/messages?direction=in"), Some(&t)).await;
        if let Some(m) = l.json["data"].as_array().and_then(|d| d.first()).cloned() {
            break m;
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(msg["status"], "received");
    assert_eq!(msg["text"], "hey");
    assert_eq!(msg["chatJid"], "6281299999999@s.whatsapp.net");
    assert_eq!(msg["chatLid"], "123456789012345@lid");
    assert_eq!(msg["senderJid"], "6281299999999@s.whatsapp.net");
    assert_eq!(msg["senderLid"], "123456789012345@lid");
    // autoRead: a read receipt within 5 s.
    loop {
        if outbox(h, &t, &id).await.iter().any(|r| r["kind"] == "receipt" && r["waMessageId"] == wa.as_str()) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "no read receipt within 5 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // An outbound message to the phone JID now knows its LID too.
    let r = send(h, &t, &id, json!({"to": "6281299999999", "text": "back"})).await;
    assert_eq!(r.json["chatLid"], "123456789012345@lid");
    let ev = h.get(&format!("/api/v1/events?type=message.received&sessionId={id}"), Some(&t)).await;
    assert_eq!(ev.json["data"][0]["data"]["chatLid"], "123456789012345@lid");
    // A reaction to it, and autoRead off: no receipt.
    let mid = msg["id"].as_str().expect("id");
    let r = h
        .post(&format!("/api/v1/sessions/{id}/sim/incoming"), Some(&t), json!({"from": "6281299999999", "reaction": {"messageId": mid, "emoji": "👍"}}))
        .await;
    assert_eq!(r.status, 202);
    assert_eq!(h.patch(&format!("/api/v1/sessions/{id}"), Some(&t), json!({"autoRead": false})).await.status, 200);
    let r = h.post(&format!("/api/v1/sessions/{id}/sim/incoming"), Some(&t), json!({"from": "6281288888888", "text": "unread"})).await;
    let unread = r.json["id"].as_str().expect("wa").to_string();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let out = outbox(h, &t, &id).await;
    assert!(!out.iter().any(|r| r["kind"] == "receipt" && r["waMessageId"] == unread.as_str()), "autoRead off: no receipt");
    let ev = h.get(&format!("/api/v1/events?type=message.reaction&sessionId={id}"), Some(&t)).await;
    assert_eq!(ev.json["data"][0]["data"]["reaction"]["messageId"], mid);
    assert_eq!(ev.json["data"][0]["data"]["reaction"]["emoji"], "👍");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_a_4xx_envelope_and_changes_nothing() {
    let gw = gateway(|_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_bad"));
    let id = working_session(h, &t, json!({"presenceTyping": false})).await;
    let now = wa_gateway::store::now_ms();
    let big = "A".repeat(22_500_000);
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"to": "6281234567890", "text": "x", "type": "hologram"}), 400, "type"),
        (json!({"to": "6281234567890", "text": "x", "location": {"latitude": 1.0, "longitude": 2.0}}), 400, "text"),
        (json!({"to": "6281234567890", "contact": {"name": "a", "phoneNumber": "628123456"}, "location": {"latitude": 1.0, "longitude": 2.0}}), 400, "contact"),
        (json!({"to": "not-a-number", "text": "x"}), 400, "to"),
        (json!({"to": "123@example.com", "text": "x"}), 400, "to"),
        (json!({"to": "6281234567890", "media": {"data": "!!!not base64!!!", "mimetype": "image/png"}}), 400, "media.data"),
        (json!({"to": "6281234567890", "media": {"url": "http://127.0.0.1:9/x.png"}}), 400, "media.url"),
        (json!({"to": "6281234567890", "media": {"url": "http://10.0.0.1/x.png"}}), 400, "media.url"),
        (json!({"to": "6281234567890", "text": "x", "sendAt": now - 1_000}), 400, "sendAt"),
        (json!({"to": "6281234567890", "text": "x", "sendAt": now + 31 * 86_400_000}), 400, "sendAt"),
        (json!({"to": "6281234567890", "text": "x", "replyTo": "01ARZ3NDEKTSV4RRFFQ69G5FAV"}), 400, "replyTo"),
        (json!({"to": "6281234567890", "text": "x", "surprise": 1}), 400, "surprise"),
        (json!({"to": "6281234567890"}), 400, "text"),
        (json!({"to": "6281234567890", "media": {"data": big, "mimetype": "image/png"}}), 413, "media.data"),
    ];
    for (body, status, field) in &cases {
        let r = send(h, &t, &id, body.clone()).await;
        assert_eq!(r.status.as_u16(), *status, "{body:.200}: {:?}", r.json);
        assert_eq!(r.json["error"]["details"]["field"], *field, "{:?}", r.json);
    }
    let items: Vec<Value> = (0..1001).map(|_| json!({"to": "6281234567890", "text": "x"})).collect();
    let r = h.post(&format!("/api/v1/sessions/{id}/messages/batch"), Some(&t), json!({"messages": items})).await;
    assert_eq!(r.status, 400);
    let r = h
        .post(
            &format!("/api/v1/sessions/{id}/messages/batch"),
            Some(&t),
            json!({"messages": [{"to": "6281234567890", "text": "ok"}, {"to": "x", "text": "bad"}]}),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.json["error"]["details"]["index"].as_u64()), (400, Some(1)));
    for path in ["/messages?status=nope", "/messages?direction=up", "/messages?cursor=zzz", "/messages/not-an-id"] {
        let r = h.get(&format!("/api/v1/sessions/{id}{path}"), Some(&t)).await;
        assert!(r.status.is_client_error(), "{path}: {}", r.status);
    }
    let r = h.get("/api/v1/events?type=nope", Some(&t)).await;
    assert_eq!(r.status, 400);
    // The other new routes: a bad message id, bad sim hook bodies, bad event filters.
    let r = h.delete(&format!("/api/v1/sessions/{id}/messages/not-an-id"), Some(&t)).await;
    assert_eq!((r.status.as_u16(), r.code()), (404, "not_found"));
    let r = h.get(&format!("/api/v1/sessions/{id}/messages/01ARZ3NDEKTSV4RRFFQ69G5FAV/media"), Some(&t)).await;
    assert_eq!((r.status.as_u16(), r.code()), (404, "not_found"));
    for (hook, body, field) in [
        ("sim/receipt", json!({"waMessageId": "X", "status": "seen"}), "status"),
        ("sim/refuse", json!({"code": ""}), "code"),
        ("sim/incoming", json!({"from": "abc", "text": "x"}), "from"),
        ("sim/incoming", json!({"from": "6281299999999", "type": "hologram"}), "type"),
    ] {
        let r = h.post(&format!("/api/v1/sessions/{id}/{hook}"), Some(&t), body).await;
        assert_eq!((r.status.as_u16(), r.json["error"]["details"]["field"].as_str()), (400, Some(field)), "{hook}: {:?}", r.json);
    }
    for q in ["sessionId=nope", "limit=0", "cursor=zzz", "bogus=1"] {
        let r = h.get(&format!("/api/v1/events?{q}"), Some(&t)).await;
        assert_eq!(r.status, 400, "{q}");
    }
    // Nothing was stored by any of it.
    assert_eq!(common::walk(h, &format!("/api/v1/sessions/{id}/messages"), &t, 50).await.len(), 0);
    assert!(sent_messages(&outbox(h, &t, &id).await).is_empty());
    // A member may send and read, an api-key without messages:send may not.
    let member = gw.token("m1", Some("org_bad"), Some("member"), false);
    assert_eq!(send(h, &member, &id, json!({"to": "6281234567890", "text": "hi"})).await.status, 202);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_prunes_finished_messages_and_old_events_and_keeps_the_queue() {
    let gw = gateway(|_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_r"));
    let id = working_session(h, &t, json!({"presenceTyping": false, "ratePerMin": 600})).await;
    let mut sent = Vec::new();
    for i in 0..3 {
        sent.push(send(h, &t, &id, json!({"to": "6281234567890", "text": format!("r{i}")})).await.json["id"].as_str().expect("id").to_string());
    }
    for mid in &sent {
        wait_msg(h, &t, &id, mid, 5, |m| m["status"] == "sent").await;
    }
    h.post(&format!("/api/v1/sessions/{id}/stop"), Some(&t), json!({})).await;
    let pending = send(h, &t, &id, json!({"to": "6281234567890", "text": "stays"})).await.json["id"].as_str().expect("id").to_string();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let store = gw.app().store.clone();
    let (events, messages) = tokio::task::spawn_blocking(move || wa_gateway::messaging::prune(&store, Duration::ZERO, Duration::ZERO))
        .await
        .expect("task")
        .expect("prune");
    assert_eq!(messages, 3, "the three sent messages go, the queued one stays");
    assert!(events >= 12, "every event so far is older than a zero retention: {events}");
    let left = common::walk(h, &format!("/api/v1/sessions/{id}/messages"), &t, 50).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["id"], pending.as_str());
    assert_eq!(h.get(&format!("/api/v1/sessions/{id}/messages/{}", sent[0]), Some(&t)).await.status, 404);
    let report = wa_gateway::store::check::check(&gw.app().store.read().expect("read")).expect("check");
    assert!(report.ok(), "{report}");
    gw.stop().await;
}

/// An outbound message's WhatsApp id is indexed when it is claimed for
/// sending, not when queued (nothing can name it before it leaves): a
/// receipt still finds a sent message, `check` accepts a queued message
/// without the row, and reports a sent one whose row is gone.
#[tokio::test(flavor = "multi_thread")]
async fn the_whatsapp_id_is_indexed_at_the_claim_and_check_holds_sent_messages_to_it() {
    use wa_gateway::store::tables::WA_IDS;
    let gw = gateway(|_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_waid"));
    let id = working_session(h, &t, json!({"presenceTyping": false})).await;
    let r = send(h, &t, &id, json!({"to": "6281234567890", "text": "out"})).await;
    let (mid, sent_wa) = (r.json["id"].as_str().expect("id").to_string(), r.json["waMessageId"].as_str().expect("wa").to_string());
    wait_msg(h, &t, &id, &mid, 5, |m| m["status"] == "sent").await;
    let r = h.post(&format!("/api/v1/sessions/{id}/sim/receipt"), Some(&t), json!({"waMessageId": sent_wa, "status": "delivered"})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    wait_msg(h, &t, &id, &mid, 5, |m| m["status"] == "delivered").await;
    h.post(&format!("/api/v1/sessions/{id}/stop"), Some(&t), json!({})).await;
    let queued_wa = send(h, &t, &id, json!({"to": "6281234567890", "text": "stays"})).await.json["waMessageId"]
        .as_str()
        .expect("wa")
        .to_string();
    let batch = json!({"messages": [{"to": "6281234567890", "text": "b1"}, {"to": "6281234567890", "text": "b2"}]});
    let r = h.post(&format!("/api/v1/sessions/{id}/messages/batch"), Some(&t), batch).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let batch_ids: Vec<(String, String)> = r.json["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| (m["id"].as_str().expect("id").to_string(), m["waMessageId"].as_str().expect("wa").to_string()))
        .collect();
    let store = gw.app().store.clone();
    let sid = u128::from(ulid::Ulid::from_string(&id).expect("ulid"));
    {
        let txn = store.read().expect("read");
        let wa = txn.open_table(WA_IDS).expect("table");
        assert!(wa.get((sid, queued_wa.as_str())).expect("get").is_none(), "a queued single send is not indexed yet");
        assert!(wa.get((sid, sent_wa.as_str())).expect("get").is_some(), "a sent one is");
        for (mid, wa_id) in &batch_ids {
            let ours = wa.get((sid, wa_id.as_str())).expect("get").map(|v| v.value());
            assert_eq!(ours, Some(u128::from(ulid::Ulid::from_string(mid).expect("ulid"))), "a batch's are indexed when queued");
        }
    }
    let report = wa_gateway::store::check::check(&store.read().expect("read")).expect("check");
    assert!(report.ok(), "{report}");
    let txn = store.write().expect("write");
    txn.open_table(WA_IDS).expect("table").remove((sid, sent_wa.as_str())).expect("remove");
    store.commit(txn).expect("commit");
    let report = wa_gateway::store::check::check(&store.read().expect("read")).expect("check");
    assert!(report.problems.iter().any(|p| p.contains("missing from wa_message_ids")), "{report}");
    gw.stop().await;
}
