//! Suspended organizations, over real HTTP with the sim engine: suspension
//! stops the organization's sessions (connections closed), its credentials
//! get 403, a super_admin's start is a 409, the sessions stay stopped across
//! a gateway restart, and reactivation starts again the sessions suspension
//! stopped (not the ones a user had stopped). Other organizations are
//! untouched throughout.

mod common;

use std::time::{Duration, Instant};

use common::{Http, TestGateway};
use serde_json::{json, Value};
use ulid::Ulid;
use wa_gateway::config::ServeConfig;

const ORG: &str = "org_susp";

fn sim(c: &mut ServeConfig) {
    common::sim_engine(c, 20, 80);
}

async fn create(h: &Http, t: &str, start: bool) -> String {
    let r = h.post("/api/v1/sessions", Some(t), json!({"label": "s", "start": start})).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    r.json["id"].as_str().expect("id").to_string()
}

/// A session as the super_admin sees it (works whatever the org's status).
async fn admin_view(h: &Http, sa: &str, id: &str) -> Value {
    let r = h.get("/api/v1/admin/sessions?limit=100", Some(sa)).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    r.json["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|s| s["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("session {id} not listed"))
}

/// Polls (5 s at most) until `id` is in one of `want`.
async fn wait_for(h: &Http, sa: &str, id: &str, want: &[&str]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = admin_view(h, sa, id).await;
        if want.iter().any(|w| s["status"] == *w) {
            return s;
        }
        assert!(Instant::now() < deadline, "session {id} never reached {want:?}; last: {s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn task(gw: &TestGateway, id: &str) -> bool {
    gw.app().engine.has_connection_task(Ulid::from_string(id).expect("ulid"))
}

async fn set_status(h: &Http, sa: &str, status: &str) {
    let r = h.patch(&format!("/api/v1/admin/organizations/{ORG}"), Some(sa), json!({"status": status})).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["status"], status);
}

#[tokio::test(flavor = "multi_thread")]
async fn suspension_stops_sessions_across_restarts_and_reactivation_starts_them_again() {
    let gw = TestGateway::start_with(sim).await;
    let (h, sa, owner) = (gw.http.clone(), gw.super_admin(), gw.owner(ORG));
    // Linked and working; waiting for a scan; stopped by its user.
    let working = create(&h, &owner, true).await;
    wait_for(&h, &sa, &working, &["scan_qr_code"]).await;
    let p = h.post(&format!("/api/v1/sessions/{working}/sim/pair"), Some(&owner), json!({"phoneNumber": "628111222333"})).await;
    assert_eq!(p.status, 200, "{:?}", p.json);
    wait_for(&h, &sa, &working, &["working"]).await;
    let waiting = create(&h, &owner, true).await;
    wait_for(&h, &sa, &waiting, &["scan_qr_code"]).await;
    let stopped = create(&h, &owner, false).await;
    // Another organization's session keeps running throughout.
    let other_owner = gw.owner("org_other");
    let other = create(&h, &other_owner, true).await;
    wait_for(&h, &sa, &other, &["scan_qr_code"]).await;

    // Suspend: when the PATCH answers, the sessions are stopped and closed.
    set_status(&h, &sa, "suspended").await;
    for id in [&working, &waiting, &stopped] {
        assert_eq!(admin_view(&h, &sa, id).await["status"], "stopped", "{id}");
        assert!(!task(&gw, id), "{id} has no connection task");
    }
    assert!(task(&gw, &other), "another organization is untouched");
    // The organization's own credentials are refused on session routes.
    for path in [format!("/api/v1/sessions/{working}"), "/api/v1/sessions".to_string()] {
        let r = h.get(&path, Some(&owner)).await;
        assert_eq!(r.status, 403, "{path}: {:?}", r.json);
    }
    let r = h.post(&format!("/api/v1/sessions/{working}/start"), Some(&owner), json!({})).await;
    assert_eq!(r.status, 403);
    // A super_admin may not start them either, and is told why.
    let r = h.post(&format!("/api/v1/admin/sessions/{working}/start"), Some(&sa), json!({})).await;
    assert_eq!(r.status, 409, "{:?}", r.json);
    assert_eq!(r.code(), "conflict");
    assert!(r.json["error"]["message"].as_str().unwrap_or("").contains("suspended"), "{:?}", r.json);
    // Nor create one that starts.
    let r = h.post("/api/v1/admin/sessions", Some(&sa), json!({"organizationId": ORG})).await;
    assert_eq!(r.status, 409, "{:?}", r.json);
    // No late event brings anything back.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for id in [&working, &waiting, &stopped] {
        assert_eq!(admin_view(&h, &sa, id).await["status"], "stopped", "{id}");
        assert!(!task(&gw, id));
    }

    // A gateway restart keeps them stopped and does not resume them.
    let dir = gw.stop().await;
    let gw = TestGateway::start_in(dir, sim).await;
    let h = gw.http.clone();
    wait_for(&h, &sa, &other, &["scan_qr_code"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for id in [&working, &waiting, &stopped] {
        assert_eq!(admin_view(&h, &sa, id).await["status"], "stopped", "{id} after a restart");
        assert!(!task(&gw, id), "{id} not resumed");
    }
    assert_eq!(h.get(&format!("/api/v1/sessions/{working}"), Some(&owner)).await.status, 403);

    // Reactivate: the sessions suspension stopped start again; the one its
    // user stopped stays stopped.
    set_status(&h, &sa, "active").await;
    let w = wait_for(&h, &sa, &working, &["working"]).await;
    assert_eq!(w["waJid"], "628111222333@s.whatsapp.net", "still linked");
    wait_for(&h, &sa, &waiting, &["scan_qr_code"]).await;
    assert!(task(&gw, &working) && task(&gw, &waiting));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(admin_view(&h, &sa, &stopped).await["status"], "stopped");
    assert!(!task(&gw, &stopped));
    // The organization's credentials work again.
    let r = h.post(&format!("/api/v1/sessions/{stopped}/start"), Some(&owner), json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let report = wa_gateway::store::check::check(&gw.app().store.read().expect("read")).expect("check");
    assert!(report.ok(), "{report}");
}

/// Suspension racing a super_admin's starts: whatever the order, once the
/// PATCH has answered and the starts returned, nothing of the organization
/// runs; reactivation then starts everything meant to run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suspension_wins_over_concurrent_starts() {
    let gw = TestGateway::start_with(sim).await;
    let (h, sa, owner) = (gw.http.clone(), gw.super_admin(), gw.owner(ORG));
    let ids = [create(&h, &owner, true).await, create(&h, &owner, true).await, create(&h, &owner, false).await];
    for round in 0..15 {
        let mut calls = Vec::new();
        for id in &ids {
            for action in ["stop", "start"] {
                let (h, sa, path) = (h.clone(), sa.clone(), format!("/api/v1/admin/sessions/{id}/{action}"));
                calls.push(tokio::spawn(async move { h.post(&path, Some(&sa), json!({})).await.status.as_u16() }));
            }
        }
        set_status(&h, &sa, "suspended").await;
        for c in calls {
            let code = c.await.expect("call");
            assert!(matches!(code, 200 | 409), "round {round}: {code}");
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        for id in &ids {
            let s = admin_view(&h, &sa, id).await;
            assert!(matches!(s["status"].as_str(), Some("stopped" | "logged_out" | "failed")), "round {round}: {s}");
            assert!(!task(&gw, id), "round {round}: {id} still has a connection task");
        }
        set_status(&h, &sa, "active").await;
        // Whatever is meant to run is running again; the rest is not.
        for id in &ids {
            let s = admin_view(&h, &sa, id).await;
            let st = s["status"].as_str().unwrap_or("");
            assert_eq!(matches!(st, "starting" | "scan_qr_code" | "working"), task(&gw, id), "round {round}: {s}");
        }
    }
}
