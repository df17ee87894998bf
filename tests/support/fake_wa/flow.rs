//! Test flows on the gateway's HTTP API against the fake: start a gateway
//! whose whatsapp engine dials the fake, wait for a session state, link a
//! session by its QR. Shared by the `wa_fake*` tests, each of which
//! includes it beside `common` and `fake_wa`:
//! `#[path = "support/fake_wa/flow.rs"] mod flow;`
//! (Each test uses some of these; the rest is dead code there.)
#![allow(dead_code)]

use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::{json, Value};

use crate::common::TestGateway;
use crate::fake_wa::FakeWa;

/// A gateway (fresh, or on `dir`) whose whatsapp engine dials `fake` (and
/// reaches its media host over plain HTTP).
pub async fn gateway_on(fake: &FakeWa, dir: Option<tempfile::TempDir>) -> TestGateway {
    gateway_with(fake, dir, |_| {}).await
}

/// [`gateway_on`] with the config adjusted by `f`.
pub async fn gateway_with(
    fake: &FakeWa,
    dir: Option<tempfile::TempDir>,
    f: impl FnOnce(&mut wa_gateway::config::ServeConfig),
) -> TestGateway {
    let (url, media_host) = (fake.url.clone(), fake.media_host());
    let f = move |c: &mut wa_gateway::config::ServeConfig| {
        c.whatsapp.ws_url = Some(url);
        c.whatsapp.plain_http_media_hosts = vec![media_host];
        f(c);
    };
    match dir {
        Some(d) => TestGateway::start_in(d, f).await,
        None => TestGateway::start_with(f).await,
    }
}

/// Polls `GET path` until `check` holds on its JSON (up to `within`); returns it.
pub async fn get_until(gw: &TestGateway, token: &str, path: &str, within: Duration, check: impl Fn(&Value) -> bool) -> Value {
    let t = Instant::now();
    loop {
        let r = gw.http.get(path, Some(token)).await;
        assert_eq!(r.status, 200, "{path}: {:?}", r.json);
        if check(&r.json) {
            return r.json;
        }
        assert!(t.elapsed() < within, "{path} never got there: {}", r.json);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls the session until `check` holds (up to `within`); returns it.
pub async fn session_until(gw: &TestGateway, token: &str, id: &str, within: Duration, check: impl Fn(&Value) -> bool) -> Value {
    get_until(gw, token, &format!("/api/v1/sessions/{id}"), within, check).await
}

/// Polls one message until `check` holds (up to `within`); returns it.
pub async fn message_until(gw: &TestGateway, token: &str, sid: &str, mid: &str, within: Duration, check: impl Fn(&Value) -> bool) -> Value {
    get_until(gw, token, &format!("/api/v1/sessions/{sid}/messages/{mid}"), within, check).await
}

/// Waits (up to 15 s) for the inbound message with WhatsApp id `wa`; returns it.
pub async fn inbound(gw: &TestGateway, token: &str, sid: &str, wa: &str) -> Value {
    let found = |page: &Value| page["data"].as_array().and_then(|d| d.iter().find(|m| m["waMessageId"] == json!(wa)).cloned());
    let path = format!("/api/v1/sessions/{sid}/messages?direction=in");
    let page = get_until(gw, token, &path, Duration::from_secs(15), |p| found(p).is_some()).await;
    found(&page).expect("found")
}

/// Links a session of `phone` with its queue fast and without typing
/// presence; waits until its device uploaded its prekeys. Returns the
/// session id and the device jid.
pub async fn linked(gw: &TestGateway, fake: &FakeWa, token: &str, phone: &str) -> (String, String) {
    let s = link(gw, fake, token, phone).await;
    let id = s["id"].as_str().expect("id").to_string();
    let fast = json!({"presenceTyping": false, "ratePerMin": 100000, "ratePerHour": 100000});
    let r = gw.http.patch(&format!("/api/v1/sessions/{id}"), Some(token), fast).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let device = format!("{phone}:1@s.whatsapp.net");
    assert!(
        fake.until(Duration::from_secs(10), |f| f.has_keys(&device)).await,
        "the device never uploaded its prekeys; seen: {:?}",
        fake.seen()
    );
    (id, device)
}

/// Creates a started session, reads its QR from the API (JSON and PNG), and
/// lets the fake phone `phone` scan it; returns the session once `working`.
pub async fn link(gw: &TestGateway, fake: &FakeWa, token: &str, phone: &str) -> Value {
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
