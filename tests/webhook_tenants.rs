//! One tenant never takes the others down, for webhooks (CONTRACT §11
//! continued): fair in-flight shares per organization, `ordering: "none"`,
//! `Retry-After` clamped to the schedule's longest step, and replay limited
//! to events after the webhook's creation that the caller may read. Real
//! receivers on loopback, the gateway in-process on 127.0.0.1:0.

mod common;
#[path = "common/receiver.rs"]
mod receiver;

use std::time::{Duration, Instant};

use common::sim_working_session;
use receiver::*;
use serde_json::json;

/// A receiver answering `Retry-After: 18446744073709551615` (u64::MAX
/// seconds) and another `9223372036854775` (i64::MAX ms in seconds), then
/// 200: each retry waits the schedule's longest step (2 s here) — not 0
/// (the old wrap to a negative wait) and not forever (the old parked lane).
#[tokio::test(flavor = "multi_thread")]
async fn an_overflowing_retry_after_waits_the_longest_step() {
    let gw = gateway(&[1000, 2000], |_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_ra"));
    let session = sim_working_session(h, &t, json!({"label": "ra"})).await;
    let max = receiver(|n| if n == 0 { Reply::RetryAfter(503, "18446744073709551615") } else { Reply::Status(200) }).await;
    let big = receiver(|n| if n == 0 { Reply::RetryAfter(429, "9223372036854775") } else { Reply::Status(200) }).await;
    webhook(h, &t, &max.url(), json!(["message.received"])).await;
    webhook(h, &t, &big.url(), json!(["message.received"])).await;
    incoming(h, &t, &session, "later please").await;
    for rx in [&max, &big] {
        let got = rx.wait(2, 6).await;
        assert_eq!(got[0].id(), got[1].id(), "the same delivery again");
        let gap = got[1].at - got[0].at;
        assert!(gap >= Duration::from_millis(1_800) && gap <= Duration::from_millis(3_500), "retried after {gap:?}, want ~2 s");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!((max.got().len(), big.got().len()), (2, 2), "delivered: no more attempts");
    gw.stop().await;
}

/// An api-key with only `webhooks:write` points a webhook at itself and
/// replays from 0: nothing from before the webhook's creation arrives, and
/// no `message.*` event is replayed to it (no `messages:read`); the owner's
/// replay from 0 re-sends only the events after the creation.
#[tokio::test(flavor = "multi_thread")]
async fn replay_sends_only_events_after_creation_that_the_caller_may_read() {
    let gw = gateway(&[100], |_| {}).await;
    let (h, owner) = (&gw.http, gw.owner("org_rp"));
    let session = sim_working_session(h, &owner, json!({"label": "rp"})).await;
    for i in 0..3 {
        incoming(h, &owner, &session, &format!("before {i}")).await;
    }
    let r = h.post("/api/v1/api-keys", Some(&owner), json!({"name": "hooks only", "permissions": ["webhooks:write"]})).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let key = r.json["key"].as_str().expect("key").to_string();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let rx = receiver(|_| Reply::Status(200)).await;
    let (hook, _) = webhook(h, &key, &rx.url(), json!(["*"])).await;
    for i in 0..2 {
        incoming(h, &owner, &session, &format!("after {i}")).await;
    }
    let live: Vec<String> = rx.wait(2, 5).await.iter().map(Got::id).collect();
    let events = common::walk(h, "/api/v1/events?type=message.received", &owner, 100).await;
    let ids: Vec<String> = events.iter().map(|e| e["id"].as_str().expect("id").to_string()).collect();
    assert_eq!(ids.len(), 5);
    assert_eq!(live, ids[3..].to_vec(), "the live deliveries: after creation only");
    // Let every live attempt be recorded before replaying.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = h.post(&format!("/api/v1/webhooks/{hook}/replay"), Some(&key), json!({"since": 0})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    assert_eq!(r.json["queued"], 0, "no message event for a caller without messages:read");
    let r = h.post(&format!("/api/v1/webhooks/{hook}/replay"), Some(&owner), json!({"since": 0})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    assert_eq!(r.json["queued"], 2, "only the events after the webhook's creation");
    let got: Vec<String> = rx.wait(4, 5).await.iter().map(Got::id).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.got().len(), 4);
    assert_eq!(got[2..].to_vec(), ids[3..].to_vec(), "the same ids again");
    assert!(got.iter().all(|id| !ids[..3].contains(id)), "nothing from before the creation");
    gw.stop().await;
}

/// `ordering` is `"session"` unless set, accepted at create and PATCH,
/// shown in every rendering, and anything else is a 400 naming the field.
#[tokio::test(flavor = "multi_thread")]
async fn ordering_is_validated_stored_and_shown() {
    let gw = gateway(&[100], |_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_ord"));
    let url = "http://127.0.0.1:9/hook";
    let r = h.post("/api/v1/webhooks", Some(&t), json!({"url": url, "events": ["*"]})).await;
    assert_eq!((r.status.as_u16(), r.json["webhook"]["ordering"].clone()), (201, json!("session")), "{:?}", r.json);
    let id = r.json["webhook"]["id"].as_str().expect("id").to_string();
    for bad in [json!("random"), json!(1), json!(null), json!("None")] {
        let r = h.post("/api/v1/webhooks", Some(&t), json!({"url": url, "events": ["*"], "ordering": bad})).await;
        assert_eq!((r.status.as_u16(), r.code()), (400, "invalid_request"), "{bad}: {:?}", r.json);
        assert_eq!(r.json["error"]["details"]["field"], json!("ordering"), "{bad}: {:?}", r.json);
        let r = h.patch(&format!("/api/v1/webhooks/{id}"), Some(&t), json!({"ordering": bad})).await;
        assert_eq!((r.status.as_u16(), r.json["error"]["details"]["field"].clone()), (400, json!("ordering")), "{bad}: {:?}", r.json);
    }
    let r = h.post("/api/v1/webhooks", Some(&t), json!({"url": url, "events": ["*"], "ordering": "none"})).await;
    assert_eq!((r.status.as_u16(), r.json["webhook"]["ordering"].clone()), (201, json!("none")), "{:?}", r.json);
    let r = h.patch(&format!("/api/v1/webhooks/{id}"), Some(&t), json!({"ordering": "none"})).await;
    assert_eq!((r.status.as_u16(), r.json["ordering"].clone()), (200, json!("none")), "{:?}", r.json);
    assert_eq!(h.get(&format!("/api/v1/webhooks/{id}"), Some(&t)).await.json["ordering"], "none");
    let listed = common::walk(h, "/api/v1/webhooks", &t, 10).await;
    assert!(listed.iter().all(|w| w["ordering"] == "none"), "{listed:?}");
    let r = h.patch(&format!("/api/v1/webhooks/{id}"), Some(&t), json!({"ordering": "session"})).await;
    assert_eq!(r.json["ordering"], "session");
    gw.stop().await;
}

/// When `n` distinct ids were answered 2xx by `rx` (a request the script
/// failed does not count), and the ids in the order they were answered.
async fn delivered(rx: &Receiver, fails: fn(usize) -> bool, n: usize, secs: u64) -> (Instant, Vec<String>) {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        let got = rx.got();
        let ok: Vec<String> = got.iter().enumerate().filter(|(i, _)| !fails(*i)).map(|(_, g)| g.id()).collect();
        let mut distinct = ok.clone();
        distinct.sort();
        distinct.dedup();
        if distinct.len() >= n {
            let last = got.iter().enumerate().filter(|(i, _)| !fails(*i)).map(|(_, g)| g.at).max().expect("some");
            return (last, ok);
        }
        assert!(Instant::now() < end, "only {} of {n} delivered", distinct.len());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn every_tenth(n: usize) -> bool {
    n % 10 == 9
}

/// One session's 300 events to three webhooks: a receiver that never
/// fails; one failing every 10th request with `ordering: "none"`, whose
/// throughput stays within 2× of the first (its failures are retried
/// beside the session's later events); and one failing the same way with
/// `"session"`, which still gets them in id order (a failed one is retried
/// before the next goes).
#[tokio::test(flavor = "multi_thread")]
async fn ordering_none_keeps_throughput_through_failures_and_session_keeps_order() {
    let gw = gateway(&[100, 100, 100, 100, 100], |_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_flaky"));
    let session = sim_working_session(h, &t, json!({"label": "flaky"})).await;
    let clean = receiver(|_| Reply::Status(200)).await;
    let none = receiver(|n| Reply::Status(if every_tenth(n) { 500 } else { 200 })).await;
    let ordered = receiver(|n| Reply::Status(if every_tenth(n) { 500 } else { 200 })).await;
    webhook(h, &t, &clean.url(), json!(["message.received"])).await;
    let r = h.post("/api/v1/webhooks", Some(&t), json!({"url": none.url(), "events": ["message.received"], "ordering": "none"})).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let r = h.post("/api/v1/webhooks", Some(&t), json!({"url": ordered.url(), "events": ["message.received"], "ordering": "session"})).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    const N: usize = 300;
    let start = Instant::now();
    for i in 0..N {
        incoming(h, &t, &session, &format!("m{i}")).await;
    }
    let sent = start.elapsed();
    let (clean_done, _) = delivered(&clean, |_| false, N, 20).await;
    let (none_done, _) = delivered(&none, every_tenth, N, 20).await;
    let (clean_took, none_took) = (clean_done - start, none_done - start);
    println!("sent {N} in {sent:?}; clean receiver done after {clean_took:?}, ordering none (10% failing) after {none_took:?}");
    assert!(none_took <= clean_took * 2, "ordering none took {none_took:?}, the clean receiver {clean_took:?}");
    assert!(none.got().iter().enumerate().any(|(i, _)| every_tenth(i)), "some did fail");
    let (ordered_done, ok) = delivered(&ordered, every_tenth, N, 30).await;
    println!("ordering session (10% failing) done after {:?}", ordered_done - start);
    assert!(ok.windows(2).all(|w| w[0] < w[1]), "session: delivered in id order, each once");
    let all = ordered.got();
    assert!(all.windows(2).all(|w| w[0].id() <= w[1].id()), "session: a failed one is retried before the next goes");
    gw.stop().await;
}

/// Org A: 100 webhooks on endpoints that accept the connection and never
/// answer, three sessions each with an event (300 hanging attempts, more
/// than the 256 slots). Org B: one healthy endpoint. B's 50 events reach it
/// within 1 s of their commit (p99, here the slowest) while A's hang, with
/// the default 15 s attempt timeout (nothing of A's ends meanwhile).
#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_organization_does_not_delay_another_s_deliveries() {
    let gw = gateway(&[1000], |_| {}).await;
    let h = &gw.http;
    let (ta, tb) = (gw.owner("org_hang_a"), gw.owner("org_fair_b"));
    let mut a_sessions = Vec::new();
    for i in 0..3 {
        a_sessions.push(sim_working_session(h, &ta, json!({"label": format!("a{i}")})).await);
    }
    let b_session = sim_working_session(h, &tb, json!({"label": "b"})).await;
    let hang = receiver(|_| Reply::Hang).await;
    for i in 0..100 {
        let url = format!("http://{}/a{i}", hang.addr);
        let r = h.post("/api/v1/webhooks", Some(&ta), json!({"url": url, "events": ["message.received"]})).await;
        assert_eq!(r.status, 201, "{:?}", r.json);
    }
    let ok = receiver(|_| Reply::Status(200)).await;
    webhook(h, &tb, &ok.url(), json!(["message.received"])).await;
    for s in &a_sessions {
        incoming(h, &ta, s, "hang").await;
    }
    // A fills every slot (256 of its 300 attempts hang).
    hang.wait(256, 10).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    const N: usize = 50;
    let mut sent = Vec::with_capacity(N);
    for i in 0..N {
        incoming(h, &tb, &b_session, &format!("b{i}")).await;
        sent.push(Instant::now());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = ok.wait(N, 5).await;
    let mut lat: Vec<Duration> = got.iter().zip(&sent).map(|(g, s)| g.at.saturating_duration_since(*s)).collect();
    lat.sort();
    let p99 = lat[(N * 99).div_ceil(100) - 1];
    println!("B: p50 {:?}, p99 {p99:?} (commit -> receiver); A hanging: {}", lat[N / 2], hang.got().len());
    assert!(p99 < Duration::from_secs(1), "B's p99 {p99:?}");
    assert!(hang.got().len() <= 300, "A's attempts still hang, none retried yet");
    gw.stop().await;
}

/// Ordering none and a restart: the first event fails and leaves its lane;
/// the session's next two arrive meanwhile; the gateway stops before the
/// retry is due and, restarted, retries it with the same `webhook-id`.
#[tokio::test(flavor = "multi_thread")]
async fn ordering_none_retries_survive_a_restart_with_the_same_id() {
    let gw = gateway(&[1500], |_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_none_restart"));
    let session = sim_working_session(h, &t, json!({"label": "nr"})).await;
    let rx = receiver(|n| Reply::Status(if n == 0 { 503 } else { 200 })).await;
    let r = h.post("/api/v1/webhooks", Some(&t), json!({"url": rx.url(), "events": ["message.received"], "ordering": "none"})).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    for i in 0..3 {
        incoming(h, &t, &session, &format!("n{i}")).await;
    }
    let got = rx.wait(3, 5).await;
    let ids: Vec<String> = got.iter().map(Got::id).collect();
    assert!(ids[0] < ids[1] && ids[1] < ids[2], "the later two went on while the first waits for its retry: {ids:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let dir = gw.stop().await;
    assert_eq!(rx.got().len(), 3, "the retry was not due before the stop");
    let gw = common::TestGateway::start_in(dir, |c| {
        common::sim_engine(c, 20, 80);
        c.messaging.allow_private_urls = true;
        c.delivery.retry_schedule = vec![Duration::from_millis(1500)];
    })
    .await;
    let got = rx.wait(4, 5).await;
    assert_eq!(got[3].id(), ids[0], "the failed one again, same webhook-id");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.got().len(), 4, "nothing else sent again");
    gw.stop().await;
}

/// The directory's events (CONTRACT §12, §13) reach webhooks like every
/// other event: signed, in commit order, with the data the event log shows;
/// and a webhook that asks for one type gets only that type.
#[tokio::test(flavor = "multi_thread")]
async fn directory_events_reach_webhooks_signed_and_in_order() {
    let gw = gateway(&[100], |_| {}).await;
    let (h, owner) = (&gw.http, gw.owner("org_dir_hooks"));
    let session = sim_working_session(h, &owner, json!({"label": "dir"})).await;
    let all = receiver(|_| Reply::Status(200)).await;
    let (_, secret) = webhook(h, &owner, &all.url(), json!(["*"])).await;
    let only = receiver(|_| Reply::Status(200)).await;
    webhook(h, &owner, &only.url(), json!(["group.participants"])).await;

    let r = h.post(&format!("/api/v1/sessions/{session}/sim/contacts"), Some(&owner),
        json!({"contacts": [{"phoneNumber": "6281211110001", "name": "Ana"}]})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let r = h.post(&format!("/api/v1/sessions/{session}/groups"), Some(&owner),
        json!({"subject": "Ops", "participants": ["6281211110001"]})).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let group = r.json["group"]["id"].as_str().expect("group id").to_string();
    let r = h.post(&format!("/api/v1/sessions/{session}/groups/{group}/participants"), Some(&owner),
        json!({"action": "add", "participants": ["6281211110002"]})).await;
    assert_eq!(r.status, 200, "{:?}", r.json);

    let got = all.wait(3, 10).await;
    let kinds: Vec<String> = got.iter().map(|g| {
        let v: serde_json::Value = serde_json::from_slice(&g.body).expect("json");
        v["type"].as_str().unwrap_or("").to_string()
    }).collect();
    assert_eq!(kinds, ["contact.updated", "group.joined", "group.participants"], "in commit order");
    assert!(got.iter().all(|g| verifies(&secret, g)), "every delivery is signed");
    let events = common::walk(h, &format!("/api/v1/events?sessionId={session}"), &owner, 100).await;
    let logged: Vec<&serde_json::Value> = events.iter().filter(|e| e["type"].as_str().is_some_and(|t| !t.starts_with("session."))).collect();
    for (g, e) in got.iter().zip(logged) {
        let v: serde_json::Value = serde_json::from_slice(&g.body).expect("json");
        assert_eq!(&v, e, "the delivery is the logged event");
    }
    let one = only.wait(1, 10).await;
    let v: serde_json::Value = serde_json::from_slice(&one[0].body).expect("json");
    assert_eq!(v["type"], "group.participants");
    assert_eq!(v["data"]["action"], "add");
    assert_eq!(v["data"]["participants"][0]["phoneNumber"], "6281211110002");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(only.got().len(), 1, "only the type it asked for");
    gw.stop().await;
}
