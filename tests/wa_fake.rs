//! The default `whatsapp` engine end to end, offline: the real whatsapp-rust
//! client in the gateway links to the fake WhatsApp server and phone of
//! `tests/support/fake_wa` through the gateway's HTTP API (issue 8).

mod common;
#[path = "support/fake_wa/mod.rs"]
mod fake_wa;

use std::time::{Duration, Instant};

use common::TestGateway;
use fake_wa::FakeWa;
use hyper::Method;
use serde_json::{json, Value};

const PHONE: &str = "6281234567890";

async fn gateway_on(fake: &FakeWa, dir: Option<tempfile::TempDir>) -> TestGateway {
    let url = fake.url.clone();
    let f = move |c: &mut wa_gateway::config::ServeConfig| {
        c.whatsapp.ws_url = Some(url);
    };
    match dir {
        Some(d) => TestGateway::start_in(d, f).await,
        None => TestGateway::start_with(f).await,
    }
}

/// Polls the session until `check` holds (up to `within`); returns it.
async fn session_until(gw: &TestGateway, token: &str, id: &str, within: Duration, check: impl Fn(&Value) -> bool) -> Value {
    let t = Instant::now();
    loop {
        let r = gw.http.get(&format!("/api/v1/sessions/{id}"), Some(token)).await;
        assert_eq!(r.status, 200, "{:?}", r.json);
        if check(&r.json) {
            return r.json;
        }
        assert!(t.elapsed() < within, "session never got there: {}", r.json);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates a started session, reads its QR from the API (JSON and PNG), and
/// lets the fake phone `phone` scan it; returns the session once `working`.
async fn link(gw: &TestGateway, fake: &FakeWa, token: &str, phone: &str) -> Value {
    let r = gw.http.post("/api/v1/sessions", Some(token), json!({"label": "linked", "start": true})).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let id = r.json["id"].as_str().expect("id").to_string();
    session_until(gw, token, &id, Duration::from_secs(10), |s| s["status"] == "scan_qr_code").await;
    let qr = gw.http.get(&format!("/api/v1/sessions/{id}/qr"), Some(token)).await;
    assert_eq!(qr.status, 200, "{:?}", qr.json);
    let value = qr.json["value"].as_str().expect("qr value").to_string();
    let png = gw.http.send(Method::GET, &format!("/api/v1/sessions/{id}/qr"), Some(token), None, &[("accept", "image/png")]).await;
    assert_eq!(png.status, 200);
    assert!(png.body.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    let linked = fake.scan(phone, &value).await.expect("the phone scans the QR");
    let s = session_until(gw, token, &id, Duration::from_secs(25), |s| s["status"] == "working").await;
    assert_eq!(s["waJid"], json!(format!("{phone}@s.whatsapp.net")), "{s}");
    assert_eq!(s["waLid"], json!(format!("{}@lid", linked.lid)), "{s}");
    assert!(s["lastConnectedAt"].is_i64(), "{s}");
    assert!(fake.unexpected().is_empty(), "stanzas the fake had no rule for: {:?}", fake.unexpected());
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_links_by_qr_and_the_device_resumes_after_a_restart() {
    let fake = FakeWa::start().await;
    let gw = gateway_on(&fake, None).await;
    let token = gw.owner("org_link");
    let s = link(&gw, &fake, &token, PHONE).await;
    let id = s["id"].as_str().expect("id").to_string();
    let device = format!("{PHONE}:1@s.whatsapp.net");
    assert_eq!(fake.logins(&device), 1, "handshakes: {:?} seen: {:?}", fake.handshakes(), fake.seen());
    // A first connect is XX (registration), the reconnect after 515 is a login.
    assert_eq!(fake.handshakes()[0], "XX registration", "{:?}", fake.handshakes());

    // The same data file, a new gateway: the redb backend carried the
    // credentials, so the device logs in (IK) without a new QR.
    let dir = gw.stop().await;
    let gw = gateway_on(&fake, Some(dir)).await;
    let token = gw.owner("org_link");
    let s = session_until(&gw, &token, &id, Duration::from_secs(15), |s| s["status"] == "working").await;
    assert_eq!(s["waJid"], json!(format!("{PHONE}@s.whatsapp.net")));
    assert_eq!(fake.logins(&device), 2);
    assert_eq!(fake.handshakes().last().map(String::as_str), Some("IK login"), "{:?}", fake.handshakes());
    assert!(fake.unexpected().is_empty(), "stanzas the fake had no rule for: {:?}", fake.unexpected());
}
