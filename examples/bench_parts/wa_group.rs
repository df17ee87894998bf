//! K2 of the bench: one text to a 256-member group through the real
//! whatsapp-rust client in the gateway, against the fake WhatsApp server of
//! `tests/support/fake_wa` (each member one device and a Signal party that
//! decrypts what it gets).
//!
//! Times from the 202 to `sent` (read from the data file by polling the
//! message, every 2 ms) for the first text (the sender key is distributed to
//! all 256 devices: a device-list query, 256 prekey bundles, 256 `pkmsg`s
//! beside the `skmsg`) and for the next four (the `skmsg` alone), and the
//! process's VmRSS before the first and after the fifth (the fake's own
//! memory for 256 parties is already in the baseline; what it allocates to
//! decrypt is in the difference too, so this is an upper bound of what the
//! gateway adds).

use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use super::fake_wa::FakeWa;
use super::wa_fake::{config, link_one, rss_kib};
use super::{start, wait_working, Conn, Summary};

const PHONE: &str = "6281200000777";

async fn sent_in(c: &mut Conn, token: &str, sid: &str, group: &str, text: &str) -> (Duration, String) {
    let body = Bytes::from(json!({"to": group, "text": text}).to_string());
    let t = Instant::now();
    let (st, b) = c.send(Method::POST, &format!("/api/v1/sessions/{sid}/messages"), Some(token), Some(body)).await.expect("send");
    assert_eq!(st, StatusCode::ACCEPTED, "{}", String::from_utf8_lossy(&b));
    let v: Value = serde_json::from_slice(&b).expect("json");
    let (mid, wa) = (v["id"].as_str().expect("id").to_string(), v["waMessageId"].as_str().expect("wa").to_string());
    loop {
        let (_, b) = c.get(&format!("/api/v1/sessions/{sid}/messages/{mid}"), Some(token)).await;
        let m: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
        if m["status"] == "sent" {
            return (t.elapsed(), wa);
        }
        assert!(m["status"] != "failed", "the group text failed: {m}");
        assert!(t.elapsed() < Duration::from_secs(60), "not sent in 60 s: {m}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

pub async fn run(summary: &mut Summary) {
    println!("\n--- K2. One text to a 256-member group (real whatsapp-rust client, fake WhatsApp server) ---");
    let fake = FakeWa::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path(), &fake);
    cfg.messaging.max_queued = 1_000;
    let gw = start(cfg, None).await;
    let token = super::owner(&gw, "org_k2");
    let mut c = Conn::open(gw.addr()).await.expect("connect");
    let body = Bytes::from(json!({"label": "k2", "start": true, "presenceTyping": false, "ratePerMin": 100000, "ratePerHour": 100000}).to_string());
    let (st, b) = c.send(Method::POST, "/api/v1/sessions", Some(&token), Some(body)).await.expect("create");
    assert_eq!(st, StatusCode::CREATED, "{}", String::from_utf8_lossy(&b));
    let sid = serde_json::from_slice::<Value>(&b).expect("json")["id"].as_str().expect("id").to_string();
    link_one(&mut c, &fake, &token, &sid, PHONE).await;
    assert!(wait_working(&mut c, 1, Duration::from_secs(60)).await.is_some(), "the session did not reach working");
    let (group, members) = fake.big_group(PHONE, "62877", 256);

    super::trim();
    let rss0 = rss_kib();
    let (first, wa) = sent_in(&mut c, &token, &sid, &group, "K2 first").await;
    let all = fake.until(Duration::from_secs(30), |f| members.iter().all(|m| f.received(m).iter().any(|r| r.id == wa))).await;
    let mut next = Vec::new();
    for i in 0..4 {
        next.push(sent_in(&mut c, &token, &sid, &group, &format!("K2 next {i}")).await.0);
    }
    let rss1 = rss_kib();
    let mean_next = next.iter().map(Duration::as_secs_f64).sum::<f64>() / next.len() as f64;
    println!(
        "K2 256-member group: first text 202 → sent {:.0} ms (sender key to 256 devices; every member decrypted it: {all}); next texts {:.0} ms mean; VmRSS {:.1} → {:.1} MiB (+{:.1} MiB, fake included)",
        first.as_secs_f64() * 1e3,
        mean_next * 1e3,
        rss0 / 1024.0,
        rss1 / 1024.0,
        (rss1 - rss0) / 1024.0
    );
    summary.add("K2 256-member group: first text 202 → sent", format!("{:.0} ms", first.as_secs_f64() * 1e3), "");
    summary.add("K2 256-member group: next texts 202 → sent", format!("{:.0} ms", mean_next * 1e3), "");
    summary.add("K2 VmRSS added by 5 texts to 256 members (fake included)", format!("{:.1} MiB", (rss1 - rss0) / 1024.0), "");
    gw.shutdown().await.expect("shutdown");
}
