//! Contacts, presence and the profile (CONTRACT §12): who may call what
//! (roles, api-key permissions), tenancy (another organization's session
//! is 404), and bad input on every route — a 4xx envelope, and nothing
//! stored or sent changes.

mod common;

use bytes::Bytes;
use common::{sim_working_session as working_session, Http, Res, TestGateway};
use hyper::Method;
use serde_json::{json, Value};

async fn gateway() -> TestGateway {
    TestGateway::start_with(|c| common::sim_engine(c, 20, 80)).await
}

async fn call(h: &Http, t: &str, method: &str, path: &str, body: Option<(&str, Bytes)>) -> Res {
    let m = Method::from_bytes(method.as_bytes()).expect("method");
    match body {
        Some((ct, b)) => h.send(m, path, Some(t), Some(b), &[("content-type", ct)]).await,
        None => h.send(m, path, Some(t), None, &[]).await,
    }
}

fn j(v: Value) -> Option<(&'static str, Bytes)> {
    Some(("application/json", Bytes::from(v.to_string())))
}

/// Every route of §12 with a body that would succeed.
fn routes(id: &str) -> Vec<(&'static str, String, Option<(&'static str, Bytes)>, &'static str)> {
    let s = format!("/api/v1/sessions/{id}");
    vec![
        ("POST", format!("{s}/contacts/check"), j(json!({"phoneNumbers": ["6281800000001"]})), "contacts:read"),
        ("GET", format!("{s}/contacts"), None, "contacts:read"),
        ("GET", format!("{s}/contacts/6281800000009"), None, "contacts:read"),
        ("GET", format!("{s}/contacts/6281800000009/picture"), None, "contacts:read"),
        ("PUT", format!("{s}/contacts/6281800000009/block"), None, "chats:write"),
        ("DELETE", format!("{s}/contacts/6281800000009/block"), None, "chats:write"),
        ("PUT", format!("{s}/presence"), j(json!({"status": "available"})), "messages:send"),
        ("POST", format!("{s}/presence/subscribe"), j(json!({"contact": "6281800000009"})), "contacts:read"),
        ("GET", format!("{s}/profile"), None, "sessions:read"),
        ("PATCH", format!("{s}/profile"), j(json!({"about": "x"})), "sessions:write"),
        ("PUT", format!("{s}/profile/picture"), Some(("image/jpeg", Bytes::from_static(wa_gateway::engine::sim::SIM_JPEG))), "sessions:write"),
        ("DELETE", format!("{s}/profile/picture"), None, "sessions:write"),
    ]
}

async fn setup(h: &Http, t: &str) -> String {
    let id = working_session(h, t, json!({})).await;
    let book = json!({"contacts": [{"phoneNumber": "6281800000009", "name": "Known", "picture": true}]});
    let r = h.post(&format!("/api/v1/sessions/{id}/sim/contacts"), Some(t), book).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    id
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_and_api_keys_get_exactly_their_permissions() {
    let gw = gateway().await;
    let (h, owner) = (&gw.http, gw.owner("org_a"));
    let id = setup(h, &owner).await;
    let member = gw.token("m1", Some("org_a"), Some("member"), false);
    for (method, path, body, perm) in routes(&id) {
        let r = call(h, &member, method, &path, body.clone()).await;
        let member_has = matches!(perm, "contacts:read" | "sessions:read" | "messages:send");
        if member_has {
            assert!(r.status.is_success(), "member {method} {path}: {} {:?}", r.status, r.json);
        } else {
            assert_eq!((r.status.as_u16(), r.code()), (403, "forbidden"), "member {method} {path}");
        }
        // An api-key with only the route's permission may; with every other, not.
        let only = h.post("/api/v1/api-keys", Some(&owner), json!({"name": "k", "permissions": [perm]})).await;
        assert_eq!(only.status, 201, "{:?}", only.json);
        let key = only.json["key"].as_str().expect("key").to_string();
        let r = call(h, &key, method, &path, body.clone()).await;
        assert!(r.status.is_success(), "key [{perm}] {method} {path}: {} {:?}", r.status, r.json);
        let others: Vec<&str> = ["sessions:read", "sessions:write", "sessions:control", "messages:send", "messages:read", "webhooks:write", "contacts:read", "groups:write", "chats:write"]
            .into_iter()
            .filter(|p| *p != perm)
            .collect();
        let rest = h.post("/api/v1/api-keys", Some(&owner), json!({"name": "k2", "permissions": others})).await;
        assert_eq!(rest.status, 201, "{:?}", rest.json);
        let key = rest.json["key"].as_str().expect("key").to_string();
        let r = call(h, &key, method, &path, body).await;
        assert_eq!((r.status.as_u16(), r.code()), (403, "forbidden"), "key without {perm}: {method} {path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn another_organizations_session_is_not_found() {
    let gw = gateway().await;
    let (h, owner) = (&gw.http, gw.owner("org_a"));
    let id = setup(h, &owner).await;
    let other = gw.owner("org_b");
    let before = h.get(&format!("/api/v1/sessions/{id}/sim/outbox"), Some(&owner)).await.json;
    for (method, path, body, _) in routes(&id) {
        let r = call(h, &other, method, &path, body).await;
        assert_eq!((r.status.as_u16(), r.code()), (404, "not_found"), "{method} {path}: {:?}", r.json);
    }
    for hook in ["sim/contacts", "sim/presence"] {
        let r = h.post(&format!("/api/v1/sessions/{id}/{hook}"), Some(&other), json!({})).await;
        assert_eq!(r.status, 404, "{hook}");
    }
    assert_eq!(h.get(&format!("/api/v1/sessions/{id}/sim/outbox"), Some(&owner)).await.json, before);
}

/// What a route could change: the contacts, events, profile and outbox.
async fn state(h: &Http, t: &str, id: &str) -> Value {
    let contacts = common::walk(h, &format!("/api/v1/sessions/{id}/contacts"), t, 200).await;
    let events = common::walk(h, &format!("/api/v1/events?sessionId={id}"), t, 200).await;
    let profile = h.get(&format!("/api/v1/sessions/{id}/profile"), Some(t)).await.json;
    let outbox = h.get(&format!("/api/v1/sessions/{id}/sim/outbox"), Some(t)).await.json;
    json!({"contacts": contacts, "events": events.len(), "profile": profile, "outbox": outbox})
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_a_4xx_envelope_and_changes_nothing() {
    let gw = gateway().await;
    let (h, t) = (&gw.http, gw.owner("org_a"));
    let id = setup(h, &t).await;
    let s = format!("/api/v1/sessions/{id}");
    let many: Vec<String> = (0..501).map(|i| format!("62819{i:08}")).collect();
    let png_magic_only = Bytes::from_static(b"\x89PNG\r\n\x1a\nnot really a png");
    let big = Bytes::from(vec![0xFFu8; 5 * 1024 * 1024 + 1]);
    let cases: Vec<(&str, String, Option<(&str, Bytes)>, u16)> = vec![
        ("POST", format!("{s}/contacts/check"), j(json!({})), 400),
        ("POST", format!("{s}/contacts/check"), j(json!({"phoneNumbers": []})), 400),
        ("POST", format!("{s}/contacts/check"), j(json!({"phoneNumbers": many})), 400),
        ("POST", format!("{s}/contacts/check"), j(json!({"phoneNumbers": ["12345"]})), 400),
        ("POST", format!("{s}/contacts/check"), j(json!({"phoneNumbers": ["6281800000001", "62818x0000001"]})), 400),
        ("POST", format!("{s}/contacts/check"), j(json!({"phoneNumbers": [6281800000001u64]})), 400),
        ("POST", format!("{s}/contacts/check"), j(json!({"phoneNumbers": ["6281800000001"], "force": true})), 400),
        ("POST", format!("{s}/contacts/check"), Some(("text/plain", Bytes::from_static(b"6281800000001"))), 415),
        ("POST", format!("{s}/contacts/check"), Some(("application/json", Bytes::from_static(b"{\"phoneNumbers\": ["))), 400),
        ("GET", format!("{s}/contacts?blocked=maybe"), None, 400),
        ("GET", format!("{s}/contacts?limit=0"), None, 400),
        ("GET", format!("{s}/contacts?limit=201"), None, 400),
        ("GET", format!("{s}/contacts?cursor=AAAA"), None, 400),
        ("GET", format!("{s}/contacts?sort=name"), None, 400),
        ("GET", format!("{s}/contacts/120363025246125486%40g.us"), None, 400),
        ("GET", format!("{s}/contacts/12"), None, 400),
        ("GET", format!("{s}/contacts/abc%40s.whatsapp.net"), None, 400),
        ("GET", format!("{s}/contacts/6281800000009/picture?size=huge"), None, 400),
        ("GET", format!("{s}/contacts/120363025246125486%40g.us/picture"), None, 400),
        ("PUT", format!("{s}/contacts/120363025246125486%40g.us/block"), None, 400),
        ("DELETE", format!("{s}/contacts/6281800000009-1612345678%40g.us/block"), None, 400),
        ("PUT", format!("{s}/contacts/6281899999999/block"), None, 404),
        ("DELETE", format!("{s}/contacts/6281899999999%40s.whatsapp.net/block"), None, 404),
        ("GET", format!("{s}/contacts/6281899999999"), None, 404),
        ("GET", format!("{s}/contacts/1234567%40lid/picture"), None, 404),
        ("PUT", format!("{s}/presence"), j(json!({"status": "away"})), 400),
        ("PUT", format!("{s}/presence"), j(json!({"status": "available", "for": 5})), 400),
        ("PUT", format!("{s}/presence"), j(json!({})), 400),
        ("POST", format!("{s}/presence/subscribe"), j(json!({"contact": "120363025246125486@g.us"})), 400),
        ("POST", format!("{s}/presence/subscribe"), j(json!({"contact": "x"})), 400),
        ("POST", format!("{s}/presence/subscribe"), j(json!({"contact": "6281800000009", "x": 1})), 400),
        ("PATCH", format!("{s}/profile"), j(json!({})), 400),
        ("PATCH", format!("{s}/profile"), j(json!({"name": ""})), 400),
        ("PATCH", format!("{s}/profile"), j(json!({"name": "x".repeat(26)})), 400),
        ("PATCH", format!("{s}/profile"), j(json!({"about": "x".repeat(140)})), 400),
        ("PATCH", format!("{s}/profile"), j(json!({"nick": "x"})), 400),
        ("PATCH", format!("{s}/profile"), j(json!({"name": 5})), 400),
        ("PUT", format!("{s}/profile/picture"), Some(("text/plain", Bytes::from_static(b"hello"))), 415),
        ("PUT", format!("{s}/profile/picture"), Some(("image/gif", Bytes::from_static(b"GIF89a"))), 415),
        ("PUT", format!("{s}/profile/picture"), Some(("image/jpeg", Bytes::from_static(b"not a jpeg"))), 400),
        ("PUT", format!("{s}/profile/picture"), Some(("image/png", png_magic_only)), 400),
        ("PUT", format!("{s}/profile/picture"), Some(("image/png", Bytes::from_static(wa_gateway::engine::sim::SIM_JPEG))), 400),
        ("PUT", format!("{s}/profile/picture"), Some(("image/jpeg", Bytes::new())), 400),
        ("PUT", format!("{s}/profile/picture"), Some(("image/jpeg", big)), 413),
        ("POST", format!("{s}/sim/contacts"), j(json!({"contacts": [{"phoneNumber": "12"}]})), 400),
        ("POST", format!("{s}/sim/contacts"), j(json!({"contacts": [{"phoneNumber": "6281800000001", "nick": "x"}]})), 400),
        ("POST", format!("{s}/sim/contacts"), j(json!({"contacts": [{"phoneNumber": "6281800000001", "lid": "abc"}]})), 400),
        ("POST", format!("{s}/sim/presence"), j(json!({"from": "6281800000009", "status": "away"})), 400),
        ("POST", format!("{s}/sim/presence"), j(json!({"from": "628@lid", "status": "available"})), 400),
    ];
    let before = state(h, &t, &id).await;
    for (method, path, body, want) in cases {
        let r = call(h, &t, method, &path, body).await;
        assert_eq!(r.status.as_u16(), want, "{method} {path}: {:?}", r.json);
        let code = r.json["error"]["code"].as_str().unwrap_or("");
        assert!(!code.is_empty() && r.json["error"]["message"].is_string(), "{method} {path}: no envelope: {:?}", r.body);
    }
    assert_eq!(state(h, &t, &id).await, before);
}
