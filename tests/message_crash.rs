//! The send queue and the event log across kill -9, through the real binary
//! (`--engine sim --sim-log`): every 202'd message is sent exactly once per
//! WhatsApp id or is still queued, none is lost, and `check` passes; and a
//! kill at random moments never leaves a status change without its event.

#[path = "common/process.rs"]
mod process;
#[path = "common/rng.rs"]
mod rng;

use std::time::{Duration, Instant};

use process::Server;
use rng::XorShift;
use serde_json::{json, Value};

fn sim_log(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn start(data: &std::path::Path, log: &std::path::Path) -> Server {
    Server::start(data, &["--engine", "sim", "--sim-log", process::s(log)])
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_while_a_queue_drains_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, log) = (dir.path().join("data"), dir.path().join("sim.log"));
    let mut server = start(&data, &log);
    let t = process::owner_token(&data);
    let api = server.api();
    let (st, s) = api.post("/api/v1/sessions", Some(&t), json!({"label": "q", "presenceTyping": false, "ratePerMin": 600})).await;
    assert_eq!(st, 201, "{s}");
    let id = s["id"].as_str().expect("id").to_string();
    api.wait_status(&t, &id, "scan_qr_code").await;
    api.post(&format!("/api/v1/sessions/{id}/sim/pair"), Some(&t), json!({"phoneNumber": "6281100000009"})).await;
    api.wait_status(&t, &id, "working").await;
    let mut acked: Vec<(String, String)> = Vec::new();
    let items: Vec<Value> = (0..40).map(|i| json!({"to": "6281234567890", "text": format!("n{i}")})).collect();
    let (st, body) = api.post(&format!("/api/v1/sessions/{id}/messages/batch"), Some(&t), json!({"messages": items})).await;
    assert_eq!(st, 202, "{body}");
    for m in body["data"].as_array().expect("data") {
        acked.push((m["id"].as_str().unwrap_or("").into(), m["waMessageId"].as_str().unwrap_or("").into()));
    }
    // 40 messages at 600/min take ~4 s: kill in the middle of the drain.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    server.kill9();
    let before = sim_log(&log).iter().filter(|r| r["kind"] == "message").count();
    assert!(before > 0 && before < 40, "killed mid-drain: {before} of 40 were out");

    let server = start(&data, &log);
    let api = server.api();
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let all = api.walk(&format!("/api/v1/sessions/{id}/messages"), &t).await;
        let pending = all.iter().filter(|m| ["queued", "sending"].contains(&m["status"].as_str().unwrap_or(""))).count();
        if pending == 0 {
            assert_eq!(all.len(), 40, "no message lost");
            assert!(all.iter().all(|m| m["status"] == "sent"), "{all:?}");
            break;
        }
        assert!(Instant::now() < end, "{pending} still pending after the restart");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let records = sim_log(&log);
    for (mid, wa) in &acked {
        let n = records.iter().filter(|r| r["kind"] == "message" && r["waMessageId"] == wa.as_str()).count();
        assert_eq!(n, 1, "message {mid} ({wa}) went out {n} times");
    }
    let sent = records.iter().filter(|r| r["kind"] == "message").count();
    assert_eq!(sent, 40, "nothing but the 40 was sent");
    // A receipt for a message sent before the kill still moves it forward.
    let (mid, wa) = &acked[0];
    let (st, _) = api.post(&format!("/api/v1/sessions/{id}/sim/receipt"), Some(&t), json!({"waMessageId": wa, "status": "read"})).await;
    assert_eq!(st, 202);
    let end = Instant::now() + Duration::from_secs(5);
    while api.get(&format!("/api/v1/sessions/{id}/messages/{mid}"), Some(&t)).await.1["status"] != "read" {
        assert!(Instant::now() < end, "the receipt did not apply");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(server);
    let (code, out, err) = process::check(&["--data", process::s(&data)]);
    assert_eq!(code, Some(0), "check:\n{out}\n{err}");
    assert!(out.contains("messages: 40"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_random_moments_never_splits_a_change_from_its_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, log) = (dir.path().join("data"), dir.path().join("sim.log"));
    let mut rng = XorShift::new(0x6b69_6c6c_3965_7674);
    let mut session: Option<String> = None;
    for round in 0..4 {
        let mut server = start(&data, &log);
        let t = process::owner_token(&data);
        let api = server.api();
        let id = match &session {
            Some(id) => id.clone(),
            None => {
                let (_, s) = api.post("/api/v1/sessions", Some(&t), json!({"label": "k", "presenceTyping": false, "ratePerMin": 1000})).await;
                let id = s["id"].as_str().expect("id").to_string();
                session = Some(id.clone());
                id
            }
        };
        // Status changes and messages keep flowing while the kill comes.
        let flurry = {
            let (api, t, id) = (api.clone(), t.clone(), id.clone());
            tokio::spawn(async move {
                for i in 0.. {
                    let action = ["stop", "start", "restart"][i % 3];
                    let _ = api.try_send(hyper::Method::POST, &format!("/api/v1/sessions/{id}/{action}"), Some(&t), Some(json!({}))).await;
                    let _ = api
                        .try_send(hyper::Method::POST, &format!("/api/v1/sessions/{id}/messages"), Some(&t), Some(json!({"to": "6281234567890", "text": "x"})))
                        .await;
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(200 + rng.below(800) as u64)).await;
        server.kill9();
        flurry.abort();
        let (code, out, err) = process::check(&["--data", process::s(&data)]);
        assert_eq!(code, Some(0), "round {round}: check after kill -9:\n{out}\n{err}");
    }
}
