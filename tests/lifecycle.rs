//! The session lifecycle over real HTTP with the sim engine: every
//! transition, conflicts, QR (JSON and PNG), pairing codes, reconnects,
//! logout, gateway restarts in the middle, permissions and tenancy on every
//! lifecycle route, the admin's start/stop, the `start` default of creates,
//! and the real `whatsapp` engine, with nowhere to connect to, ending
//! `failed` with a clear `lastError`.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Http, TestGateway};
use hyper::Method;
use serde_json::{json, Value};
use wa_gateway::config::ServeConfig;
use wa_gateway::engine::manager::ManagerConfig;
use wa_gateway::engine::EngineKind;

fn sim(c: &mut ServeConfig) {
    c.engine = EngineKind::Sim;
    c.retry = ManagerConfig { max_attempts: 3, backoff_base: Duration::from_millis(20), backoff_max: Duration::from_millis(80), ..ManagerConfig::default() };
}

async fn create(http: &Http, token: &str, start: bool) -> String {
    let r = http.post("/api/v1/sessions", Some(token), json!({"label": "L", "start": start})).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    r.json["id"].as_str().expect("id").to_string()
}

async fn status_of(http: &Http, token: &str, id: &str) -> Value {
    http.get(&format!("/api/v1/sessions/{id}"), Some(token)).await.json
}

/// Polls until the session reaches `want` (5 s at most).
async fn wait_for(http: &Http, token: &str, id: &str, want: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..250 {
        last = status_of(http, token, id).await;
        if last["status"] == want {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("session {id} never reached {want}; last: {last}");
}

async fn post(http: &Http, token: &str, id: &str, action: &str, body: Option<Value>) -> common::Res {
    let body = body.map(|b| Bytes::from(b.to_string()));
    http.send(Method::POST, &format!("/api/v1/sessions/{id}/{action}"), Some(token), body, &[]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn every_transition_with_the_sim_engine() {
    let gw = TestGateway::start_with(sim).await;
    let (h, t) = (&gw.http, gw.owner("org_a"));
    let id = create(h, &t, false).await;
    assert_eq!(status_of(h, &t, &id).await["status"], "stopped");

    // stopped → starting → scan_qr_code
    let r = post(h, &t, &id, "start", None).await;
    assert_eq!(r.status, 200);
    assert!(matches!(r.json["status"].as_str(), Some("starting" | "scan_qr_code")));
    let s = wait_for(h, &t, &id, "scan_qr_code").await;
    assert!(s["updatedAt"].as_i64() >= s["createdAt"].as_i64());
    let qr = h.get(&format!("/api/v1/sessions/{id}/qr"), Some(&t)).await;
    assert_eq!(qr.status, 200);
    assert!(qr.json["value"].as_str().unwrap_or("").starts_with("sim://"));
    assert!(qr.json["expiresAt"].as_i64() > s["updatedAt"].as_i64());
    let png = h.send(Method::GET, &format!("/api/v1/sessions/{id}/qr"), Some(&t), None, &[("accept", "image/png")]).await;
    assert_eq!(png.status, 200);
    assert_eq!(png.headers["content-type"], "image/png");
    assert_eq!(&png.body[..8], b"\x89PNG\r\n\x1a\n");
    let code = post(h, &t, &id, "pair-code", Some(json!({"phoneNumber": "6281234567890"}))).await;
    assert_eq!(code.status, 200);
    let code = code.json["code"].as_str().unwrap_or("").to_string();
    assert!(code.len() == 9 && code.as_bytes()[4] == b'-', "{code}");
    let bad = post(h, &t, &id, "pair-code", Some(json!({"phoneNumber": "+62"}))).await;
    assert_eq!(bad.status, 400);

    // The phone scans: working, with jid, lid and lastConnectedAt.
    let p = post(h, &t, &id, "sim/pair", Some(json!({"phoneNumber": "6281234567890"}))).await;
    assert_eq!(p.status, 200, "{:?}", p.json);
    let s = wait_for(h, &t, &id, "working").await;
    assert_eq!(s["waJid"], "6281234567890@s.whatsapp.net");
    assert_eq!(s["phoneNumber"], "6281234567890", "filled from the linked phone");
    assert!(s["waLid"].as_str().unwrap_or("").ends_with("@lid"));
    assert!(s["lastConnectedAt"].is_i64());
    let first_connected = s["lastConnectedAt"].as_i64();

    // Network loss: reconnects by itself (linked: straight back to working).
    assert_eq!(post(h, &t, &id, "sim/disconnect", None).await.status, 204);
    let mut saw_reconnect = false;
    for _ in 0..250 {
        let s = status_of(h, &t, &id).await;
        if s["status"] == "working" && s["lastConnectedAt"].as_i64() > first_connected {
            saw_reconnect = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(saw_reconnect, "reconnected after the drop");

    // stop → stopped; start → working again without a QR (credentials kept).
    assert_eq!(post(h, &t, &id, "stop", None).await.json["status"], "stopped");
    assert_eq!(post(h, &t, &id, "start", None).await.status, 200);
    wait_for(h, &t, &id, "working").await;
    // restart keeps it linked.
    assert_eq!(post(h, &t, &id, "restart", None).await.status, 200);
    wait_for(h, &t, &id, "working").await;

    // The phone unlinks: logged_out, never restarted by itself.
    assert_eq!(post(h, &t, &id, "sim/logout", None).await.status, 204);
    wait_for(h, &t, &id, "logged_out").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(status_of(h, &t, &id).await["status"], "logged_out");
    // Starting again means linking again: a fresh QR.
    assert_eq!(post(h, &t, &id, "start", None).await.status, 200);
    wait_for(h, &t, &id, "scan_qr_code").await;
    // logout from the API while waiting for a scan.
    assert_eq!(post(h, &t, &id, "logout", None).await.json["status"], "logged_out");
    let again = post(h, &t, &id, "logout", None).await;
    assert_eq!(again.status, 409);
    assert_eq!(again.json["error"]["details"]["status"], "logged_out");
}

#[tokio::test(flavor = "multi_thread")]
async fn conflicts_name_the_current_status() {
    let gw = TestGateway::start_with(sim).await;
    let (h, t) = (&gw.http, gw.owner("org_a"));
    let id = create(h, &t, false).await;
    // pair-code and QR on a stopped session; stop of a stopped one.
    for (method, action, body) in [
        (Method::POST, "pair-code", Some(json!({"phoneNumber": "628123456"}))),
        (Method::GET, "qr", None),
        (Method::POST, "stop", None),
    ] {
        let body = body.map(|b| Bytes::from(b.to_string()));
        let r = h.send(method, &format!("/api/v1/sessions/{id}/{action}"), Some(&t), body, &[]).await;
        assert_eq!(r.status, 409, "{action}");
        assert_eq!(r.code(), "conflict");
        assert_eq!(r.json["error"]["details"]["status"], "stopped", "{action}");
    }
    post(h, &t, &id, "start", None).await;
    wait_for(h, &t, &id, "scan_qr_code").await;
    post(h, &t, &id, "sim/pair", Some(json!({"phoneNumber": "628123456"}))).await;
    wait_for(h, &t, &id, "working").await;
    for (method, action) in [(Method::POST, "start"), (Method::GET, "qr")] {
        let r = h.send(method, &format!("/api/v1/sessions/{id}/{action}"), Some(&t), None, &[]).await;
        assert_eq!(r.status, 409, "{action}");
        assert_eq!(r.json["error"]["details"]["status"], "working");
    }
    // Created with start: true, it is on its way at once.
    let started = h.post("/api/v1/sessions", Some(&t), json!({"start": true})).await;
    assert!(matches!(started.json["status"].as_str(), Some("starting" | "scan_qr_code")), "{:?}", started.json);
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_restart_keeps_each_session_where_it_was() {
    let gw = TestGateway::start_with(sim).await;
    let (h, t) = (gw.http.clone(), gw.owner("org_a"));
    let working = create(&h, &t, true).await;
    wait_for(&h, &t, &working, "scan_qr_code").await;
    post(&h, &t, &working, "sim/pair", Some(json!({"phoneNumber": "628111111"}))).await;
    wait_for(&h, &t, &working, "working").await;
    let stopped = create(&h, &t, false).await;
    let logged_out = create(&h, &t, true).await;
    wait_for(&h, &t, &logged_out, "scan_qr_code").await;
    post(&h, &t, &logged_out, "logout", None).await;
    let waiting = create(&h, &t, true).await;
    wait_for(&h, &t, &waiting, "scan_qr_code").await;

    let dir = gw.stop().await;
    // Before the engine is back, nothing claims to be connected.
    {
        let store = wa_gateway::store::Store::open(&wa_gateway::store::data_file(dir.path()), 1 << 20).expect("open");
        store.mark_resuming().expect("mark");
        let ulid = ulid::Ulid::from_string(&working).expect("ulid");
        assert_eq!(store.get_session(ulid, None).expect("s").status, wa_gateway::store::records::SessionStatus::Starting);
        store.close().expect("close");
    }
    let gw = TestGateway::start_in(dir, sim).await;
    let (h, t) = (gw.http.clone(), gw.owner("org_a"));
    let w = wait_for(&h, &t, &working, "working").await;
    assert_eq!(w["waJid"], "628111111@s.whatsapp.net");
    wait_for(&h, &t, &waiting, "scan_qr_code").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(status_of(&h, &t, &stopped).await["status"], "stopped");
    assert_eq!(status_of(&h, &t, &logged_out).await["status"], "logged_out");
}

#[tokio::test(flavor = "multi_thread")]
async fn permissions_and_tenancy_on_every_lifecycle_route() {
    let gw = TestGateway::start_with(sim).await;
    let (h, owner) = (&gw.http, gw.owner("org_a"));
    let id = create(h, &owner, false).await;
    let key = h.post("/api/v1/api-keys", Some(&owner), json!({"name": "k", "permissions": ["sessions:read", "sessions:write"]})).await;
    let key = key.json["key"].as_str().expect("key").to_string();
    let member = gw.token("m", Some("org_a"), Some("member"), false);
    let other = gw.owner("org_b");
    let routes: Vec<(Method, &str, Option<Value>)> = vec![
        (Method::POST, "start", None),
        (Method::POST, "stop", None),
        (Method::POST, "restart", None),
        (Method::POST, "logout", None),
        (Method::GET, "qr", None),
        (Method::POST, "pair-code", Some(json!({"phoneNumber": "628123456"}))),
        (Method::POST, "sim/pair", Some(json!({"phoneNumber": "628123456"}))),
        (Method::POST, "sim/disconnect", None),
        (Method::POST, "sim/logout", None),
        (Method::POST, "sim/incoming", Some(json!({"from": "628", "text": "hi"}))),
    ];
    for (method, action, body) in &routes {
        let path = format!("/api/v1/sessions/{id}/{action}");
        let b = || body.as_ref().map(|b| Bytes::from(b.to_string()));
        let r = h.send(method.clone(), &path, Some(&key), b(), &[]).await;
        assert_eq!(r.status, 403, "api-key without sessions:control on {action}");
        let r = h.send(method.clone(), &path, Some(&member), b(), &[]).await;
        assert_eq!(r.status, 403, "member on {action}");
        let r = h.send(method.clone(), &path, Some(&other), b(), &[]).await;
        assert_eq!(r.status, 404, "another org on {action}");
        let r = h.send(method.clone(), &path, None, b(), &[]).await;
        assert_eq!(r.status, 401, "no token on {action}");
    }
    // Nothing moved.
    assert_eq!(status_of(h, &owner, &id).await["status"], "stopped");

    // The super_admin starts and stops any organization's session; org roles may not.
    let sa = gw.super_admin();
    let r = h.send(Method::POST, &format!("/api/v1/admin/sessions/{id}/start"), Some(&owner), None, &[]).await;
    assert_eq!(r.status, 403);
    let r = h.send(Method::POST, &format!("/api/v1/admin/sessions/{id}/start"), Some(&sa), None, &[]).await;
    assert_eq!(r.status, 200);
    let listed = h.get("/api/v1/admin/sessions?status=scan_qr_code", Some(&sa)).await;
    let mut live = false;
    for _ in 0..100 {
        let l = h.get("/api/v1/admin/sessions", Some(&sa)).await;
        if l.json["data"][0]["status"] == "scan_qr_code" {
            live = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(live, "the admin listing shows live statuses ({:?})", listed.json);
    let r = h.send(Method::POST, &format!("/api/v1/admin/sessions/{id}/stop"), Some(&sa), None, &[]).await;
    assert_eq!(r.json["status"], "stopped");
    let missing = h.send(Method::POST, "/api/v1/admin/sessions/01ARZ3NDEKTSV4RRFFQ69G5FAV/start", Some(&sa), None, &[]).await;
    assert_eq!(missing.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_whatsapp_engine_without_a_connection_fails_cleanly_and_stops_at_any_moment() {
    // The harness points the whatsapp engine at a closed loopback port.
    let gw = TestGateway::start_with(|c| {
        assert_eq!(c.engine, EngineKind::Whatsapp, "the default engine");
        c.retry = ManagerConfig { max_attempts: 3, backoff_base: Duration::from_millis(20), backoff_max: Duration::from_millis(60), ..ManagerConfig::default() };
    })
    .await;
    let (h, t) = (&gw.http, gw.owner("org_a"));
    // Sim controls do not exist on this engine.
    let id = create(h, &t, false).await;
    let r = post(h, &t, &id, "sim/pair", Some(json!({"phoneNumber": "628123456"}))).await;
    assert_eq!(r.status, 404);
    // Started, it backs off and ends failed with the reason.
    post(h, &t, &id, "start", None).await;
    let failed = wait_for(h, &t, &id, "failed").await;
    let err = failed["lastError"].as_str().unwrap_or_default();
    assert!(err.contains("could not connect to WhatsApp") && err.contains("WebSocket connect failed"), "a clear lastError: {failed}");
    let metrics = String::from_utf8_lossy(&h.get("/metrics", None).await.body).into_owned();
    assert!(metrics.contains("wa_gateway_engine_errors_total 3"), "three failed attempts counted: {metrics}");
    // Started again, it is retrying and shows the seed's fields only.
    let again = post(h, &t, &id, "start", None).await;
    assert_eq!(again.status, 200);
    assert!(again.json.get("lastError").is_none(), "{:?}", again.json);
    // Stop works during the backoff, and from failed.
    let id2 = create(h, &t, true).await;
    let r = post(h, &t, &id2, "stop", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["status"], "stopped");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(status_of(h, &t, &id2).await["status"], "stopped", "a stopped session stays stopped");
    assert_eq!(post(h, &t, &id, "stop", None).await.json["status"], "stopped");
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_statuses_and_the_event_stream_is_ordered() {
    let gw = TestGateway::start_with(sim).await;
    let mut events = gw.app().engine.subscribe();
    let (h, t) = (&gw.http, gw.owner("org_a"));
    let a = create(h, &t, true).await;
    create(h, &t, false).await;
    wait_for(h, &t, &a, "scan_qr_code").await;
    post(h, &t, &a, "sim/pair", Some(json!({"phoneNumber": "628123456"}))).await;
    wait_for(h, &t, &a, "working").await;
    let r = post(h, &t, &a, "sim/incoming", Some(json!({"from": "62899000", "text": "hello"}))).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let text = String::from_utf8_lossy(&h.get("/metrics", None).await.body).into_owned();
    assert!(text.contains("wa_gateway_sessions_by_status{status=\"working\"} 1"), "{text}");
    assert!(text.contains("wa_gateway_sessions_by_status{status=\"stopped\"} 1"), "{text}");
    assert!(text.contains("wa_gateway_engine_live_connections 1"), "{text}");
    // Applied lifecycle events, numbered in order: qr, connected (message
    // events go to the messaging layer, which stores them in the event log).
    let mut kinds = Vec::new();
    let mut last_seq = 0;
    while kinds.len() < 2 {
        let e = tokio::time::timeout(Duration::from_secs(5), events.recv()).await.expect("event").expect("open");
        assert!(e.seq > last_seq, "increasing sequence");
        last_seq = e.seq;
        assert_eq!(e.session.to_string(), a);
        kinds.push(e.event.kind());
    }
    assert_eq!(kinds, ["qr", "connected"]);
    let mut logged = Value::Null;
    for _ in 0..250 {
        logged = h.get("/api/v1/events?type=message.received", Some(&t)).await.json;
        if logged["data"].as_array().is_some_and(|d| !d.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(logged["data"][0]["data"]["text"], "hello", "{logged}");
    assert_eq!(logged["data"][0]["sessionId"], a.as_str());
    // check agrees with the counts.
    let report = wa_gateway::store::check::check(&gw.app().store.read().expect("read")).expect("check");
    assert!(report.ok(), "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn creates_start_by_default_when_the_caller_may_control_sessions() {
    let gw = TestGateway::start_with(sim).await;
    let (h, owner) = (&gw.http, gw.owner("org_a"));
    // An owner holds sessions:control: a create without `start` starts.
    let r = h.post("/api/v1/sessions", Some(&owner), json!({"label": "default"})).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json["status"], "starting");
    wait_for(h, &owner, r.json["id"].as_str().expect("id"), "scan_qr_code").await;
    // A key with sessions:write but not sessions:control creates stopped
    // sessions, and may not ask for a start.
    let key = h.post("/api/v1/api-keys", Some(&owner), json!({"name": "w", "permissions": ["sessions:write"]})).await;
    let key = key.json["key"].as_str().expect("key").to_string();
    let r = h.post("/api/v1/sessions", Some(&key), json!({"label": "k"})).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json["status"], "stopped");
    let r = h.post("/api/v1/sessions", Some(&key), json!({"label": "k", "start": true})).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.code(), "forbidden");
    // `"start": false` is honoured for anyone; the admin API starts by default too.
    let r = h.post("/api/v1/sessions", Some(&owner), json!({"start": false})).await;
    assert_eq!(r.json["status"], "stopped");
    let r = h.post("/api/v1/admin/sessions", Some(&gw.super_admin()), json!({"organizationId": "org_b"})).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json["status"], "starting");
    assert_eq!(r.json["isAdminSession"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_and_delete_wipe_the_protocol_state_and_backups_keep_the_rest() {
    use wa_gateway::store::wa_state::count_session_rows;
    use wa_gateway::engine::wa_state::RedbBackend;
    use whatsapp_rust::wacore::store::traits::SignalStore;

    let gw = TestGateway::start_with(sim).await;
    let (h, t) = (&gw.http, gw.owner("org_a"));
    let store = gw.app().store.clone();
    let rows = |id: &str| {
        let id = ulid::Ulid::from_string(id).expect("ulid");
        count_session_rows(&store.read().expect("read"), id.0).expect("count")
    };
    let ids = [create(h, &t, false).await, create(h, &t, false).await, create(h, &t, false).await];
    // Protocol state as the whatsapp engine writes it, through the crate's traits.
    for id in &ids {
        let b = RedbBackend::new(store.clone(), ulid::Ulid::from_string(id).expect("ulid"));
        b.put_identity("1@lid", [7; 32]).await.expect("identity");
        b.put_session("1@lid", b"signal session").await.expect("session");
        b.store_prekey(1, b"prekey", false).await.expect("prekey");
        assert_eq!(rows(id), 3);
    }
    let r = post(h, &t, &ids[0], "logout", None).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["status"], "logged_out");
    assert_eq!(rows(&ids[0]), 0, "logout wipes the credentials");
    // A late write of the closed client (a background task finishing after
    // the wipe) is refused: the logged-out session keeps no credentials.
    let late = RedbBackend::new(store.clone(), ulid::Ulid::from_string(&ids[0]).expect("ulid"));
    assert!(late.put_identity("2@lid", [9; 32]).await.is_err(), "a logged-out session's state is not written");
    assert_eq!(rows(&ids[0]), 0, "still wiped");
    let r = h.delete(&format!("/api/v1/sessions/{}", ids[1]), Some(&t)).await;
    assert_eq!(r.status, 204);
    assert_eq!(rows(&ids[1]), 0, "delete wipes the credentials");
    assert_eq!(rows(&ids[2]), 3, "another session's state is untouched");

    // A backup holds the survivor's state, and check agrees with it.
    let r = h.post("/api/v1/admin/backup", Some(&gw.super_admin()), json!({})).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let path = r.json["path"].as_str().expect("path").to_string();
    let snap = wa_gateway::store::open_read_only(std::path::Path::new(&path)).expect("open backup");
    let report = wa_gateway::store::check::check(&snap.begin_read().expect("read")).expect("check");
    assert!(report.ok(), "{report}");
    assert_eq!(report.whatsapp_state_rows, 3);
    let live = wa_gateway::store::check::check(&store.read().expect("read")).expect("check");
    assert!(live.ok(), "{live}");
}
