//! The default `whatsapp` engine end to end, offline: the real whatsapp-rust
//! client in the gateway links to the fake WhatsApp server and phone of
//! `tests/support/fake_wa` through the gateway's HTTP API (issue 8).

mod common;
#[path = "support/fake_wa/mod.rs"]
mod fake_wa;
#[path = "support/fake_wa/flow.rs"]
mod flow;

use std::time::Duration;

use flow::{gateway_on, gateway_with, link, session_until};
use fake_wa::FakeWa;
use serde_json::json;

const PHONE: &str = "6281234567890";

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

    // A backup taken while serving, opened by another gateway after this one
    // stops, is the same linked device.
    let b = gw.http.post("/api/v1/admin/backup", Some(&gw.super_admin()), json!({})).await;
    assert_eq!(b.status, 201, "{:?}", b.json);
    let backup = std::path::PathBuf::from(b.json["path"].as_str().expect("backup path"));
    let _old = gw.stop().await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(&backup, wa_gateway::store::data_file(dir.path())).expect("restore the backup");
    let gw = gateway_on(&fake, Some(dir)).await;
    let token = gw.owner("org_link");
    session_until(&gw, &token, &id, Duration::from_secs(15), |s| s["status"] == "working").await;
    assert_eq!(fake.logins(&device), 3);
    assert!(fake.unexpected().is_empty(), "stanzas the fake had no rule for: {:?}", fake.unexpected());
}

/// Rows of the session's protocol state (keys, sessions, device) in the data file.
fn wa_state_rows(gw: &common::TestGateway, id: &str) -> u64 {
    let id = ulid::Ulid::from_string(id).expect("ulid");
    let txn = gw.app().store.read().expect("read");
    wa_gateway::store::wa_state::count_session_rows(&txn, u128::from(id)).expect("count")
}

fn quick_retries(c: &mut wa_gateway::config::ServeConfig) {
    c.retry = wa_gateway::engine::manager::ManagerConfig {
        max_attempts: 3,
        backoff_base: Duration::from_millis(200),
        backoff_max: Duration::from_millis(500),
        ..Default::default()
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_comes_back_and_a_401_logs_the_device_out_and_wipes_it() {
    let fake = FakeWa::start().await;
    let gw = gateway_with(&fake, None, quick_retries).await;
    let token = gw.owner("org_faults");
    const PHONE2: &str = "6281200000002";
    let s = link(&gw, &fake, &token, PHONE2).await;
    let id = s["id"].as_str().expect("id").to_string();
    let device = format!("{PHONE2}:1@s.whatsapp.net");
    assert!(wa_state_rows(&gw, &id) > 0, "a linked device has protocol state");

    // The server drops the connection: the session reconnects by itself.
    assert!(fake.kick(&device, None), "a live connection to drop");
    assert!(fake.until(Duration::from_secs(10), |f| f.logins(&device) == 2).await, "logged in again: {:?}", fake.handshakes());
    session_until(&gw, &token, &id, Duration::from_secs(10), |s| s["status"] == "working").await;

    // 401: WhatsApp says this device is no longer linked.
    assert!(fake.kick(&device, Some(fake_wa::stanzas::stream_error("401"))));
    let s = session_until(&gw, &token, &id, Duration::from_secs(10), |s| s["status"] == "logged_out").await;
    assert!(s["lastError"].is_string(), "{s}");
    assert_eq!(wa_state_rows(&gw, &id), 0, "credentials wiped");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(fake.logins(&device), 2, "a logged-out device does not reconnect");
    assert!(fake.unexpected().is_empty(), "stanzas the fake had no rule for: {:?}", fake.unexpected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_connection_fails_the_session_without_retrying() {
    let fake = FakeWa::start().await;
    let gw = gateway_with(&fake, None, quick_retries).await;
    let token = gw.owner("org_replaced");
    const PHONE3: &str = "6281200000003";
    let s = link(&gw, &fake, &token, PHONE3).await;
    let id = s["id"].as_str().expect("id").to_string();
    let device = format!("{PHONE3}:1@s.whatsapp.net");
    assert!(fake.kick(&device, Some(fake_wa::stanzas::replaced())));
    let s = session_until(&gw, &token, &id, Duration::from_secs(10), |s| s["status"] == "failed").await;
    let why = s["lastError"].as_str().unwrap_or_default().to_lowercase();
    assert!(why.contains("replaced") || why.contains("another"), "a clear lastError: {s}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(fake.logins(&device), 1, "not retried");
    assert!(wa_state_rows(&gw, &id) > 0, "a replaced device keeps its credentials (it is still linked)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_through_the_api_unlinks_the_device_at_whatsapp_and_wipes_it() {
    let fake = FakeWa::start().await;
    let gw = gateway_on(&fake, None).await;
    let token = gw.owner("org_logout");
    const PHONE4: &str = "6281200000004";
    let s = link(&gw, &fake, &token, PHONE4).await;
    let id = s["id"].as_str().expect("id").to_string();
    let r = gw.http.post(&format!("/api/v1/sessions/{id}/logout"), Some(&token), json!({})).await;
    assert!(r.status.is_success(), "{:?}", r.json);
    session_until(&gw, &token, &id, Duration::from_secs(10), |s| s["status"] == "logged_out").await;
    assert_eq!(fake.removed(), vec![format!("{PHONE4}:1@s.whatsapp.net")], "remove-companion-device");
    assert_eq!(wa_state_rows(&gw, &id), 0, "credentials wiped: {:?}", wa_state_namespaces(&gw, &id));

    // The same session links again (a new device of the same phone).
    let r = gw.http.post(&format!("/api/v1/sessions/{id}/start"), Some(&token), json!({})).await;
    assert!(r.status.is_success(), "{:?}", r.json);
    session_until(&gw, &token, &id, Duration::from_secs(10), |s| s["status"] == "scan_qr_code").await;
    let qr = gw.http.get(&format!("/api/v1/sessions/{id}/qr"), Some(&token)).await;
    fake.scan(PHONE4, qr.json["value"].as_str().expect("qr")).await.expect("scan again");
    let s = session_until(&gw, &token, &id, Duration::from_secs(25), |s| s["status"] == "working").await;
    assert_eq!(s["waJid"], json!(format!("{PHONE4}@s.whatsapp.net")));
    assert_eq!(fake.logins(&format!("{PHONE4}:2@s.whatsapp.net")), 1, "device 2 of the phone");
    assert!(wa_state_rows(&gw, &id) > 0);
}

fn wa_state_namespaces(gw: &common::TestGateway, id: &str) -> Vec<String> {
    let key = u128::from(ulid::Ulid::from_string(id).expect("ulid"));
    let txn = gw.app().store.read().expect("read");
    let t = txn.open_table(wa_gateway::store::wa_state::WA_STATE).expect("table");
    t.range((key, "", &[][..])..).expect("range").filter_map(Result::ok)
        .filter(|(k, _)| k.value().0 == key)
        .map(|(k, v)| format!("{} {:?} ({} bytes)", k.value().1, &k.value().2[..k.value().2.len().min(40)], v.value().len()))
        .collect()
}
