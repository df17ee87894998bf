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
