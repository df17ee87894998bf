//! Webhook delivery over real HTTP (CONTRACT §10): real receivers on
//! loopback record what the gateway (sim engine, `allow_private_urls`) sends
//! them and answer scripted statuses. Signatures are checked with an
//! independent HMAC computation; retries, 410, per-session order, isolation
//! between webhooks, replay and the address check at delivery time.

mod common;
#[path = "common/process.rs"]
mod process;
#[path = "common/receiver.rs"]
mod receiver;

use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{sim_working_session, TestGateway};
use receiver::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn an_inbound_message_arrives_signed_with_the_event_as_body() {
    let gw = gateway(&[200], |_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_sig"));
    let session = sim_working_session(h, &t, json!({"label": "hooks"})).await;
    let rx = receiver(|_| Reply::Status(204)).await;
    let (hook, secret) = webhook(h, &t, &rx.url(), json!(["message.received"])).await;
    incoming(h, &t, &session, "hello").await;
    let got = rx.wait(1, 5).await;
    let first = &got[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.header("content-type"), "application/json");
    let listed = h.get("/api/v1/events?type=message.received", Some(&t)).await;
    let event = &listed.json["data"][0];
    assert_eq!(first.id(), event["id"].as_str().expect("id"), "webhook-id is the event id");
    let body: Value = serde_json::from_slice(&first.body).expect("json body");
    assert_eq!(&body, event, "the body is the event as the API shows it");
    let ts: i64 = first.header("webhook-timestamp").parse().expect("seconds");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    assert!((now - ts).abs() < 60, "timestamp in seconds");
    assert_eq!(first.header("webhook-signature").split(' ').count(), 1);
    assert!(verifies(&secret, first), "signature verifies: {}", first.header("webhook-signature"));
    let wrong = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode([7u8; 32]));
    assert!(!verifies(&wrong, first), "a wrong secret does not verify");

    // After a rotation both secrets sign, each its own signature.
    let r = h.post(&format!("/api/v1/webhooks/{hook}/rotate-secret"), Some(&t), json!({})).await;
    assert_eq!(r.status, 200);
    let rotated = r.json["secret"].as_str().expect("secret").to_string();
    incoming(h, &t, &session, "again").await;
    let got = rx.wait(2, 5).await;
    let second = &got[1];
    let sigs: Vec<String> = second.header("webhook-signature").split(' ').map(str::to_string).collect();
    assert_eq!(sigs.len(), 2, "{sigs:?}");
    assert!(verifies(&secret, second) && verifies(&rotated, second));
    assert!(!verifies(&wrong, second));
    let one = |s: &str| {
        let mut g = second.clone();
        g.headers.insert("webhook-signature", s.parse().expect("hv"));
        g
    };
    assert!(verifies(&rotated, &one(&sigs[0])) != verifies(&rotated, &one(&sigs[1])), "each secret signs one of them");
    assert!(verifies(&secret, &one(&sigs[0])) != verifies(&secret, &one(&sigs[1])));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_receiver_gets_the_same_id_until_it_answers_and_the_log_shows_each_attempt() {
    let gw = gateway(&[200, 400], |_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_retry"));
    let rx = receiver(|n| Reply::Status(if n < 2 { 500 } else { 200 })).await;
    let (hook, _) = webhook(h, &t, &rx.url(), json!(["*"])).await;
    let r = h.post(&format!("/api/v1/webhooks/{hook}/test"), Some(&t), json!({})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let got = rx.wait(3, 5).await;
    let ids: Vec<String> = got.iter().map(Got::id).collect();
    assert!(ids.iter().all(|i| i == &ids[0]) && ids[0].starts_with("evt_"), "{ids:?}");
    assert_eq!(ids[0], r.json["eventId"].as_str().expect("eventId"));
    let body: Value = serde_json::from_slice(&got[0].body).expect("json");
    assert_eq!(body["type"], "webhook.test");
    // The log is written just after the answer.
    let end = Instant::now() + Duration::from_secs(3);
    let log = loop {
        let log = attempts(h, &t, &hook).await;
        if log.len() >= 3 || Instant::now() > end {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let statuses: Vec<Value> = log.iter().map(|a| a["status"].clone()).collect();
    assert_eq!(statuses, vec![json!(500), json!(500), json!(200)], "{log:?}");
    assert_eq!(log.iter().map(|a| a["attempt"].as_u64().unwrap_or(0)).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert!(log.iter().all(|a| a["eventId"] == ids[0].as_str()));
    assert_eq!(log[0]["response"], "answer 0");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(rx.got().len(), 3, "nothing after the 200");
    let m = h.get("/metrics", None).await;
    let text = String::from_utf8_lossy(&m.body);
    assert!(text.contains("wa_gateway_webhook_deliveries_total{result=\"retry\"} 2"), "{text}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn gone_disables_the_webhook() {
    let gw = gateway(&[100], |_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_gone"));
    let rx = receiver(|_| Reply::Status(410)).await;
    let (hook, _) = webhook(h, &t, &rx.url(), json!(["*"])).await;
    assert_eq!(h.post(&format!("/api/v1/webhooks/{hook}/test"), Some(&t), json!({})).await.status, 202);
    rx.wait(1, 5).await;
    let end = Instant::now() + Duration::from_secs(3);
    let w = loop {
        let w = h.get(&format!("/api/v1/webhooks/{hook}"), Some(&t)).await.json;
        if w["enabled"] == false || Instant::now() > end {
            break w;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(w["enabled"], false, "{w:?}");
    assert!(w["disabledReason"].as_str().is_some_and(|r| r.contains("410")), "{w:?}");
    assert_eq!(h.post(&format!("/api/v1/webhooks/{hook}/test"), Some(&t), json!({})).await.status, 202);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.got().len(), 1, "a disabled webhook sends nothing");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_session_s_events_arrive_in_id_order_through_failures() {
    let gw = gateway(&[30, 30, 30], |_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_order"));
    const N: usize = 200;
    let session = sim_working_session(h, &t, json!({"label": "hooks"})).await;
    // Every 7th request fails (once: the retry is another request).
    let rx = receiver(|n| Reply::Status(if n % 7 == 6 { 500 } else { 200 })).await;
    webhook(h, &t, &rx.url(), json!(["message.received"])).await;
    for i in 0..N {
        incoming(h, &t, &session, &format!("m{i}")).await;
    }
    let end = Instant::now() + Duration::from_secs(10);
    let delivered = loop {
        let got = rx.got();
        // The answered ones: every request but those the script failed.
        let ok: Vec<String> = got.iter().enumerate().filter(|(n, _)| n % 7 != 6).map(|(_, g)| g.id()).collect();
        if ok.len() >= N {
            break (got, ok);
        }
        assert!(Instant::now() < end, "only {} of {N} delivered", ok.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (all, ok) = delivered;
    assert_eq!(ok.len(), N);
    assert!(ok.windows(2).all(|w| w[0] < w[1]), "delivered in id order, each once: {ok:?}");
    assert!(all.windows(2).all(|w| w[0].id() <= w[1].id()), "a failed one is retried before the next goes");
    let listed = common::walk(h, "/api/v1/events?type=message.received", &t, 100).await;
    let want: Vec<String> = listed.iter().map(|e| e["id"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(ok, want);
    gw.stop().await;
}

/// A round that cannot be written (the disk below `--min-free-disk`) keeps
/// the attempt's outcome and writes it once writes resume: meanwhile the
/// event is not sent again.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_holds_an_outcome_instead_of_sending_the_event_again() {
    let gw = gateway(&[100, 100, 100], |_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_full"));
    let session = sim_working_session(h, &t, json!({"label": "hooks"})).await;
    let rx = receiver(|_| Reply::After(Duration::from_millis(400))).await;
    let (id, _) = webhook(h, &t, &rx.url(), json!(["message.received"])).await;
    incoming(h, &t, &session, "while the disk fills").await;
    // The attempt is in flight; its 200 comes after the disk is "full".
    rx.wait(1, 5).await;
    gw.app().store.set_min_free_disk(u64::MAX);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(rx.got().len(), 1, "sent once while its outcome could not be written");
    gw.app().store.set_min_free_disk(0);
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let r = h.get(&format!("/api/v1/webhooks/{id}/deliveries"), Some(&t)).await;
        let items = r.json["data"].as_array().cloned().unwrap_or_default();
        if items.len() == 1 && items[0]["status"] == 200 {
            break;
        }
        assert!(Instant::now() < end, "the outcome is written once writes resume: {:?}", r.json);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.got().len(), 1, "and the event is not sent again");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_receiver_does_not_delay_another_webhook() {
    let gw = gateway(&[100], |_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_hang"));
    let session = sim_working_session(h, &t, json!({"label": "hooks"})).await;
    let hang = receiver(|_| Reply::Hang).await;
    let ok = receiver(|_| Reply::Status(200)).await;
    webhook(h, &t, &hang.url(), json!(["message.received"])).await;
    webhook(h, &t, &ok.url(), json!(["message.received"])).await;
    for i in 0..3 {
        incoming(h, &t, &session, &format!("x{i}")).await;
    }
    let started = Instant::now();
    ok.wait(3, 3).await;
    assert!(started.elapsed() < Duration::from_secs(2), "B is not held up by A");
    hang.wait(1, 3).await;
    assert_eq!(hang.got().len(), 1, "A's lane waits for its hanging head");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_since_a_time_sends_the_same_ids_again() {
    let gw = gateway(&[100], |_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_replay"));
    let session = sim_working_session(h, &t, json!({"label": "hooks"})).await;
    let rx = receiver(|_| Reply::Status(200)).await;
    let (hook, _) = webhook(h, &t, &rx.url(), json!(["message.received"])).await;
    let before = h.get("/api/v1/events?type=message.received", Some(&t)).await;
    assert!(before.json["data"].as_array().is_some_and(|d| d.is_empty()));
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64;
    for i in 0..3 {
        incoming(h, &t, &session, &format!("r{i}")).await;
    }
    let first: Vec<String> = rx.wait(3, 5).await.iter().map(Got::id).collect();
    // Wait for the log to show them delivered before replaying.
    let end = Instant::now() + Duration::from_secs(3);
    while attempts(h, &t, &hook).await.len() < 3 {
        assert!(Instant::now() < end);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = h.post(&format!("/api/v1/webhooks/{hook}/replay"), Some(&t), json!({"since": since, "onlyFailed": true})).await;
    assert_eq!((r.status.as_u16(), r.json["queued"].clone()), (202, json!(0)), "none failed");
    let r = h.post(&format!("/api/v1/webhooks/{hook}/replay"), Some(&t), json!({"since": since})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    assert_eq!(r.json["queued"], 3);
    let again: Vec<String> = rx.wait(6, 5).await[3..].iter().map(Got::id).collect();
    assert_eq!(again, first, "the same ids, in order");
    let r = h.post(&format!("/api/v1/webhooks/{hook}/replay"), Some(&t), json!({"since": since + 3_600_000})).await;
    assert_eq!(r.json["queued"], 0, "nothing in a later range");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_loopback_target_is_refused_at_delivery_without_the_flag() {
    let gw = gateway(&[100], |_| {}).await;
    let t = gw.owner("org_ssrf");
    let rx = receiver(|_| Reply::Status(200)).await;
    // A name, so the refusal comes after DNS (it resolves to loopback).
    let url = format!("http://localhost:{}/hook", rx.addr.port());
    let (hook, _) = webhook(&gw.http, &t, &url, json!(["*"])).await;
    let dir = gw.stop().await;
    let gw = TestGateway::start_in(dir, |c| {
        common::sim_engine(c, 20, 80);
        c.delivery.retry_schedule = vec![Duration::from_secs(60)];
    })
    .await;
    let h = &gw.http;
    assert_eq!(h.post(&format!("/api/v1/webhooks/{hook}/test"), Some(&t), json!({})).await.status, 202);
    let end = Instant::now() + Duration::from_secs(3);
    let log = loop {
        let log = attempts(h, &t, &hook).await;
        if !log.is_empty() || Instant::now() > end {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["status"], Value::Null);
    assert!(log[0]["error"].as_str().is_some_and(|e| e.contains("refused")), "{log:?}");
    assert!(rx.got().is_empty(), "nothing reached the loopback receiver");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_resumes_pending_deliveries_with_the_same_id() {
    let gw = gateway(&[800], |_| {}).await;
    let t = gw.owner("org_restart");
    let rx = receiver(|n| Reply::Status(if n == 0 { 503 } else { 200 })).await;
    let (hook, _) = webhook(&gw.http, &t, &rx.url(), json!(["*"])).await;
    let r = gw.http.post(&format!("/api/v1/webhooks/{hook}/test"), Some(&t), json!({})).await;
    assert_eq!(r.status, 202);
    rx.wait(1, 5).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let dir = gw.stop().await;
    assert_eq!(rx.got().len(), 1, "the retry was not due before the stop");
    let gw = TestGateway::start_in(dir, |c| {
        common::sim_engine(c, 20, 80);
        c.messaging.allow_private_urls = true;
        c.delivery.retry_schedule = vec![Duration::from_millis(800)];
    })
    .await;
    let got = rx.wait(2, 5).await;
    assert_eq!(got[0].id(), got[1].id(), "a redelivery carries the same webhook-id");
    assert_eq!(got[1].id(), r.json["eventId"].as_str().expect("id"));
    // The test event is in the organization's log, rendered like any other.
    let events = common::walk(&gw.http, "/api/v1/events", &t, 50).await;
    let test = events.iter().find(|e| e["type"] == "webhook.test").expect("webhook.test listed");
    assert_eq!(test["data"]["webhookId"], hook.as_str());
    // Deleting the webhook deletes its delivery log.
    assert_eq!(gw.http.delete(&format!("/api/v1/webhooks/{hook}"), Some(&t)).await.status, 204);
    assert_eq!(gw.http.get(&format!("/api/v1/webhooks/{hook}/deliveries"), Some(&t)).await.status, 404);
    gw.stop().await;
}

/// A receiver that hangs on session A's events only: session B's events to
/// the same webhook still arrive at once (lanes never wait for each other),
/// while A's lane waits for its hanging head.
#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_session_does_not_delay_another_session_s_deliveries() {
    let gw = gateway(&[100], |_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_lanes"));
    let a = sim_working_session(h, &t, json!({"label": "a"})).await;
    let b = sim_working_session(h, &t, json!({"label": "b"})).await;
    let hang_on = a.clone();
    let rx = receiver_by(move |_, body| {
        let v: Value = serde_json::from_slice(body).unwrap_or_default();
        if v["sessionId"].as_str() == Some(hang_on.as_str()) {
            Reply::Hang
        } else {
            Reply::Status(200)
        }
    })
    .await;
    webhook(h, &t, &rx.url(), json!(["message.received"])).await;
    for i in 0..3 {
        incoming(h, &t, &a, &format!("a{i}")).await;
    }
    let from_a = |g: &[Got]| g.iter().filter(|g| String::from_utf8_lossy(&g.body).contains(a.as_str())).count();
    let end = Instant::now() + Duration::from_secs(3);
    while from_a(&rx.got()) == 0 {
        assert!(Instant::now() < end, "A's head never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    for i in 0..3 {
        incoming(h, &t, &b, &format!("b{i}")).await;
    }
    let from_b = |g: &[Got]| g.iter().filter(|g| String::from_utf8_lossy(&g.body).contains(b.as_str())).count();
    loop {
        let got = rx.got();
        if from_b(&got) >= 3 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(2), "B got {} of 3 within 2 s", from_b(&got));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(started.elapsed() < Duration::from_secs(2), "B is not held up by A");
    assert_eq!(from_a(&rx.got()), 1, "A's lane waits for its hanging head");
    gw.stop().await;
}

/// With the receiver down, the endpoint's backlog age shows per webhook and
/// the failed attempt is counted as a retry.
#[tokio::test(flavor = "multi_thread")]
async fn the_oldest_undelivered_age_shows_while_the_receiver_is_down() {
    let gw = gateway(&[60_000], |_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_down"));
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let (hook, _) = webhook(h, &t, &format!("http://127.0.0.1:{port}/hook"), json!(["*"])).await;
    let r = h.post(&format!("/api/v1/webhooks/{hook}/test"), Some(&t), json!({})).await;
    assert_eq!(r.status, 202);
    let gauge = format!("wa_gateway_webhook_oldest_undelivered_seconds{{webhook=\"{hook}\"}} ");
    let end = Instant::now() + Duration::from_secs(8);
    loop {
        let m = String::from_utf8_lossy(&h.get("/metrics", None).await.body).into_owned();
        let age = m.lines().find_map(|l| l.strip_prefix(gauge.as_str())).and_then(|v| v.trim().parse::<i64>().ok());
        let retried = m.lines().any(|l| l.starts_with("wa_gateway_webhook_deliveries_total{result=\"retry\"} ") && !l.ends_with(" 0"));
        if age.is_some_and(|a| a >= 1) && retried {
            break;
        }
        assert!(Instant::now() < end, "no age or retry count for {hook}:\n{m}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Disabled, the endpoint is no longer reported.
    let r = h.patch(&format!("/api/v1/webhooks/{hook}"), Some(&t), json!({"enabled": false})).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let m = String::from_utf8_lossy(&h.get("/metrics", None).await.body).into_owned();
    assert!(!m.contains(gauge.as_str()), "{m}");
    gw.stop().await;
}

/// The real binary is killed with SIGKILL while 1,000 events (4 sessions)
/// are being delivered: after a restart every event reaches the receiver at
/// least once, each session's events arrive in id order (a redelivery only
/// repeats the one last sent), and a duplicate carries its original
/// `webhook-id` (the event id, also the body's `id`).
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_while_1000_events_are_delivered_loses_none_and_keeps_order() {
    const SESSIONS: usize = 4;
    const PER: usize = 250;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let args = ["--engine", "sim", "--allow-private-urls"];
    let mut server = process::Server::start(&data, &args);
    let t = process::owner_token(&data);
    let api = server.api();
    let rx = receiver(|_| Reply::Gated).await;
    let (st, hook) = api.post("/api/v1/webhooks", Some(&t), json!({"url": rx.url(), "events": ["message.received"]})).await;
    assert_eq!(st, 201, "{hook}");
    let mut sessions = Vec::new();
    for i in 0..SESSIONS {
        let (st, s) = api.post("/api/v1/sessions", Some(&t), json!({"label": format!("k{i}"), "start": true})).await;
        assert_eq!(st, 201, "{s}");
        let id = s["id"].as_str().expect("id").to_string();
        api.wait_status(&t, &id, "scan_qr_code").await;
        let phone = format!("62811000001{i:02}");
        let (st, b) = api.post(&format!("/api/v1/sessions/{id}/sim/pair"), Some(&t), json!({"phoneNumber": phone})).await;
        assert_eq!(st, 200, "{b}");
        sessions.push(id);
    }
    for id in &sessions {
        api.wait_status(&t, id, "working").await;
    }
    let mut writers = Vec::new();
    for id in sessions.clone() {
        let (api, t) = (process::Api::new(server.base()), t.clone());
        writers.push(tokio::spawn(async move {
            for n in 0..PER {
                let (st, b) = api.post(&format!("/api/v1/sessions/{id}/sim/incoming"), Some(&t), json!({"from": "6281299999999", "text": format!("k{n}")})).await;
                assert_eq!(st, 202, "{b}");
            }
        }));
    }
    for w in writers {
        w.await.expect("writer");
    }
    GATE.store(true, std::sync::atomic::Ordering::SeqCst);
    let end = Instant::now() + Duration::from_secs(15);
    while rx.got().len() < 250 {
        assert!(Instant::now() < end, "only {} delivered before the kill", rx.got().len());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    server.kill9();
    let before = rx.got().len();
    assert!(before < SESSIONS * PER, "killed mid-delivery: {before} were out");

    let server = process::Server::start(&data, &args);
    let api = server.api();
    let events: Vec<Value> =
        api.walk("/api/v1/events", &t).await.into_iter().filter(|e| e["type"] == "message.received").collect();
    assert_eq!(events.len(), SESSIONS * PER);
    let want: std::collections::BTreeSet<String> = events.iter().map(|e| e["id"].as_str().unwrap_or("").to_string()).collect();
    let end = Instant::now() + Duration::from_secs(20);
    let got = loop {
        let got = rx.got();
        let seen: std::collections::BTreeSet<String> = got.iter().map(Got::id).collect();
        if want.is_subset(&seen) {
            break got;
        }
        assert!(Instant::now() < end, "{} of {} events arrived after the restart", want.intersection(&seen).count(), want.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut lanes: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    for g in &got {
        let body: Value = serde_json::from_slice(&g.body).expect("json body");
        assert_eq!(body["id"].as_str(), Some(g.id().as_str()), "webhook-id is the event id, on every copy");
        lanes.entry(body["sessionId"].as_str().unwrap_or("").to_string()).or_default().push(g.id());
    }
    assert_eq!(lanes.len(), SESSIONS);
    for (session, ids) in &lanes {
        assert!(ids.windows(2).all(|w| w[0] <= w[1]), "session {session}: out of order");
    }
    assert!(got.len() >= want.len() && got.len() <= want.len() + 2 * SESSIONS, "{} requests for {} events", got.len(), want.len());
    eprintln!("kill -9 after {before} requests; {} requests for {} events in all", got.len(), want.len());
    drop(server);
}

