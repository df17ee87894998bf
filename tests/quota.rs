//! Per-organization storage quotas (CONTRACT "§11 (continued)", issue 20
//! "Quotas") over real HTTP on loopback with the sim engine and real data
//! files: `maxStoredBytes` set by a super_admin and `--org-storage-quota`
//! cap an organization's stored media and text (a send with media past the
//! cap is 429 `rate_limited` with `details.quota`, nothing stored), the
//! Organization shows `storedBytes`, canceling and deleting give the bytes
//! back, another organization is not affected, and `wa-gateway check`
//! agrees at every step (and catches a wrong counter). Also: a full queue
//! on a stopped session says it drains only once started.

mod common;
#[path = "common/process.rs"]
mod process;

use std::path::Path;

use base64::Engine;
use common::{Http, Res, TestGateway};
use serde_json::{json, Value};

const MIB: u64 = 1 << 20;

/// A 16 MiB image send, as base64 `data`.
fn media_body(data: &str) -> Value {
    json!({"to": "6281234567890", "type": "image", "media": {"data": data, "mimetype": "image/png"}})
}

fn sixteen_mib() -> String {
    base64::engine::general_purpose::STANDARD.encode(vec![0x5a_u8; (16 * MIB) as usize])
}

async fn send(h: &Http, t: &str, session: &str, body: &Value) -> Res {
    h.post(&format!("/api/v1/sessions/{session}/messages"), Some(t), body.clone()).await
}

/// The organization `id` as the admin listing shows it.
async fn org(h: &Http, sa: &str, id: &str) -> Value {
    let all = common::walk(h, "/api/v1/admin/organizations", sa, 100).await;
    all.into_iter().find(|o| o["id"] == id).unwrap_or_else(|| panic!("no organization {id}"))
}

/// `wa-gateway check --data DIR` (beside the running server) exits 0.
fn check_ok(dir: &Path) {
    let (code, out, err) = process::check(&["--data", dir.to_str().expect("utf-8")]);
    assert_eq!(code, Some(0), "check disagrees:\n{out}\n{err}");
}

/// A quota set by a super_admin: three 16 MiB sends to a stopped session
/// are kept (202), the 4th is 429 with `details.quota` and stores nothing;
/// `storedBytes` shows the bytes; a cancel gives one back (and the 4th then
/// fits); another organization sends on; deleting the session gives all
/// back. `check` agrees at each step.
#[tokio::test(flavor = "multi_thread")]
async fn a_quota_caps_media_and_deletes_give_the_bytes_back() {
    let gw = TestGateway::start_with(|c| common::sim_engine(c, 20, 80)).await;
    let (h, sa, t, other) = (&gw.http, gw.super_admin(), gw.owner("org_q"), gw.owner("org_r"));
    let session = common::create_session(h, &t, "quota").await["id"].as_str().expect("id").to_string();
    let r = h.patch("/api/v1/admin/organizations/org_q", Some(&sa), json!({"maxStoredBytes": 50 * MIB})).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!((r.json["maxStoredBytes"].as_u64(), r.json["storedBytes"].as_u64()), (Some(50 * MIB), Some(0)), "{:?}", r.json);
    let before = org(h, &sa, "org_q").await["storedBytes"].as_u64().expect("storedBytes");
    let body = media_body(&sixteen_mib());
    let mut ids = Vec::new();
    for i in 0..3 {
        let r = send(h, &t, &session, &body).await;
        assert_eq!(r.status, 202, "send {i}: {:?}", r.json);
        ids.push(r.json["id"].as_str().expect("id").to_string());
    }
    assert_eq!(org(h, &sa, "org_q").await["storedBytes"].as_u64(), Some(before + 48 * MIB));
    check_ok(gw.dir.path());
    let r = send(h, &t, &session, &body).await;
    assert_eq!((r.status.as_u16(), r.code()), (429, "rate_limited"), "{:?}", r.json);
    let retry: u64 = r.headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).expect("Retry-After");
    assert!(retry >= 1);
    assert_eq!(
        r.json["error"]["details"]["quota"],
        json!({"maxStoredBytes": 50 * MIB, "storedBytes": before + 48 * MIB, "requestBytes": 16 * MIB})
    );
    let listed = h.get(&format!("/api/v1/sessions/{session}/messages"), Some(&t)).await;
    assert_eq!(listed.json["data"].as_array().map(Vec::len), Some(3), "the refused send stored nothing");
    assert_eq!(org(h, &sa, "org_q").await["storedBytes"].as_u64(), Some(before + 48 * MIB));
    // Another organization (no quota of its own, gateway default unlimited) is not affected.
    let theirs = common::create_session(h, &other, "other").await["id"].as_str().expect("id").to_string();
    let small = media_body(&base64::engine::general_purpose::STANDARD.encode(vec![1u8; MIB as usize]));
    let r = send(h, &other, &theirs, &small).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    assert_eq!(org(h, &sa, "org_r").await["storedBytes"].as_u64(), Some(MIB));
    // Canceling a queued media message gives its bytes back; the 4th then fits.
    let r = h.delete(&format!("/api/v1/sessions/{session}/messages/{}", ids[0]), Some(&t)).await;
    assert_eq!((r.status.as_u16(), r.json["status"].as_str()), (200, Some("canceled")), "{:?}", r.json);
    assert_eq!(org(h, &sa, "org_q").await["storedBytes"].as_u64(), Some(before + 32 * MIB));
    check_ok(gw.dir.path());
    let r = send(h, &t, &session, &body).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    // Deleting the session gives every byte back.
    let r = h.delete(&format!("/api/v1/sessions/{session}"), Some(&t)).await;
    assert!(r.status.is_success(), "{:?}", r.json);
    assert_eq!(org(h, &sa, "org_q").await["storedBytes"].as_u64(), Some(before));
    assert_eq!(org(h, &sa, "org_r").await["storedBytes"].as_u64(), Some(MIB));
    check_ok(gw.dir.path());
}

/// `--org-storage-quota` (the real binary) caps an organization whose
/// `maxStoredBytes` is null; its own `maxStoredBytes` overrides it.
#[test]
fn the_gateway_quota_applies_when_the_organization_sets_none() {
    let dir = tempfile::tempdir().expect("dir");
    let server = process::Server::start(dir.path(), &["--engine", "sim", "--org-storage-quota", "50MiB"]);
    let (api, t, sa) = (server.api(), process::owner_token(dir.path()), process::super_token(dir.path()));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        let (st, s) = api.post("/api/v1/sessions", Some(&t), json!({"label": "q", "start": false})).await;
        assert_eq!(st, 201, "{s}");
        let path = format!("/api/v1/sessions/{}/messages", s["id"].as_str().expect("id"));
        let body = media_body(&sixteen_mib());
        for i in 0..3 {
            let (st, m) = api.post(&path, Some(&t), body.clone()).await;
            assert_eq!(st, 202, "send {i}: {m}");
        }
        let (st, e) = api.post(&path, Some(&t), body.clone()).await;
        assert_eq!((st, &e["error"]["code"]), (429, &json!("rate_limited")), "{e}");
        assert_eq!(e["error"]["details"]["quota"]["maxStoredBytes"], json!(50 * MIB), "{e}");
        assert_eq!(e["error"]["details"]["quota"]["storedBytes"], json!(48 * MIB), "{e}");
        let orgs = api.walk("/api/v1/admin/organizations", &sa).await;
        let o = orgs.iter().find(|o| o["id"] == "org_a").expect("org_a");
        assert_eq!((&o["maxStoredBytes"], o["storedBytes"].as_u64()), (&Value::Null, Some(48 * MIB)), "{o}");
        let (st, o) = api
            .try_send(hyper::Method::PATCH, "/api/v1/admin/organizations/org_a", Some(&sa), Some(json!({"maxStoredBytes": 100 * MIB})))
            .await
            .expect("patch");
        assert_eq!((st, o["storedBytes"].as_u64()), (200, Some(48 * MIB)), "{o}");
        let (st, m) = api.post(&path, Some(&t), body.clone()).await;
        assert_eq!(st, 202, "the organization's own cap overrides the gateway's: {m}");
    });
    check_ok(dir.path());
}

/// `check` finds an organization's counter that disagrees with its
/// messages in a file damaged behind the gateway's back (exit 1).
#[test]
fn check_finds_a_wrong_counter() {
    let dir = tempfile::tempdir().expect("dir");
    let mut server = process::Server::start(dir.path(), &["--engine", "sim"]);
    let (api, t) = (server.api(), process::owner_token(dir.path()));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        let (st, s) = api.post("/api/v1/sessions", Some(&t), json!({"label": "q", "start": false})).await;
        assert_eq!(st, 201, "{s}");
        let (st, m) = api.post(&format!("/api/v1/sessions/{}/messages", s["id"].as_str().expect("id")), Some(&t), json!({"to": "6281234567890", "text": "hello"})).await;
        assert_eq!(st, 202, "{m}");
    });
    server.stop(std::time::Duration::from_secs(10));
    check_ok(dir.path());
    {
        let store = wa_gateway::store::Store::open(&wa_gateway::store::data_file(dir.path()), 1 << 20).expect("open");
        let txn = store.write().expect("write");
        txn.open_table(wa_gateway::store::tables::ORG_USAGE).expect("counters").insert("org_a", 999u64).expect("damage");
        store.commit(txn).expect("commit");
    }
    let (code, out, err) = process::check(&["--data", dir.path().to_str().expect("utf-8")]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(out.contains("org_stored_bytes says organization org_a stores 999 bytes, its messages and media add up to 5"), "{out}\n{err}");
}

/// A full queue on a stopped session stays 429 `rate_limited`, but says the
/// queue drains only once the session is started (`details.sessionStatus`),
/// and its Retry-After is the time until the oldest queued message expires
/// (`--message-ttl`), not a few seconds it cannot keep.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_queue_on_a_stopped_session_says_it_will_not_drain() {
    let gw = TestGateway::start_with(|c| {
        common::sim_engine(c, 20, 80);
        c.messaging.max_queued = 2;
        c.messaging.message_ttl = std::time::Duration::from_secs(3600);
    })
    .await;
    let (h, t) = (&gw.http, gw.owner("org_s"));
    let session = common::create_session(h, &t, "stopped").await["id"].as_str().expect("id").to_string();
    let text = json!({"to": "6281234567890", "text": "hi"});
    for _ in 0..2 {
        assert_eq!(send(h, &t, &session, &text).await.status, 202);
    }
    let r = send(h, &t, &session, &text).await;
    assert_eq!((r.status.as_u16(), r.code()), (429, "rate_limited"), "{:?}", r.json);
    assert_eq!(r.json["error"]["details"]["sessionStatus"], "stopped", "{:?}", r.json);
    assert!(r.json["error"]["message"].as_str().is_some_and(|m| m.contains("only once the session is started")), "{:?}", r.json);
    let retry: u64 = r.headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).expect("Retry-After");
    assert!((3590..=3600).contains(&retry), "Retry-After {retry}: the oldest message expires in an hour");
}

/// A batch is held to the quota as a whole, media and text: it fits or
/// nothing of it is stored.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_past_the_quota_stores_nothing() {
    let gw = TestGateway::start_with(|c| common::sim_engine(c, 20, 80)).await;
    let (h, sa, t) = (&gw.http, gw.super_admin(), gw.owner("org_b"));
    let session = common::create_session(h, &t, "batch").await["id"].as_str().expect("id").to_string();
    let r = h.patch("/api/v1/admin/organizations/org_b", Some(&sa), json!({"maxStoredBytes": 3 * MIB})).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let one = media_body(&base64::engine::general_purpose::STANDARD.encode(vec![3u8; MIB as usize]));
    let path = format!("/api/v1/sessions/{session}/messages/batch");
    let r = h.post(&path, Some(&t), json!({"messages": [one, one]})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let text = json!({"to": "6281234567890", "text": "hi"});
    let r = h.post(&path, Some(&t), json!({"messages": [text.clone(), one, one]})).await;
    assert_eq!((r.status.as_u16(), r.code()), (429, "rate_limited"), "{:?}", r.json);
    assert_eq!(
        r.json["error"]["details"]["quota"],
        json!({"maxStoredBytes": 3 * MIB, "storedBytes": 2 * MIB, "requestBytes": 2 * MIB + 2})
    );
    let listed = h.get(&format!("/api/v1/sessions/{session}/messages"), Some(&t)).await;
    assert_eq!(listed.json["data"].as_array().map(Vec::len), Some(2), "nothing of the refused batch is stored");
    assert_eq!(org(h, &sa, "org_b").await["storedBytes"].as_u64(), Some(2 * MIB));
    // Text alone is not held to the quota (a tenant at its cap can still
    // talk), though its bytes count.
    let r = h.patch("/api/v1/admin/organizations/org_b", Some(&sa), json!({"maxStoredBytes": 2 * MIB})).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let r = h.post(&format!("/api/v1/sessions/{session}/messages"), Some(&t), text).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    assert_eq!(org(h, &sa, "org_b").await["storedBytes"].as_u64(), Some(2 * MIB + 2));
    check_ok(gw.dir.path());
}
