//! Webhook endpoints over real HTTP (CONTRACT §10): create with a secret shown
//! once, list, get, update, delete, rotate; URL, event and session checks;
//! permissions and tenant isolation.

mod common;

use base64::Engine as _;
use common::TestGateway;
use serde_json::json;

fn secret_bytes(s: &str) -> Vec<u8> {
    let b64 = s.strip_prefix("whsec_").unwrap_or_else(|| panic!("a whsec_ secret: {s}"));
    base64::engine::general_purpose::STANDARD.decode(b64).expect("base64")
}

#[tokio::test]
async fn webhooks_are_created_with_a_secret_shown_once_and_managed() {
    let gw = TestGateway::start().await;
    let (h, t) = (&gw.http, gw.owner("org_hooks"));
    let s = common::create_session(h, &t, "one").await;
    let sid = s["id"].as_str().expect("id");
    let r = h
        .post(
            "/api/v1/webhooks",
            Some(&t),
            json!({"url": "https://hooks.example.com/wa", "events": ["message.received", "message.status", "message.received"],
                   "sessionIds": [sid], "description": "CRM"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let secret = r.json["secret"].as_str().expect("secret").to_string();
    assert_eq!(secret_bytes(&secret).len(), 32);
    let hook = &r.json["webhook"];
    let id = hook["id"].as_str().expect("id").to_string();
    assert_eq!(hook["organizationId"], "org_hooks");
    assert_eq!(hook["events"], json!(["message.received", "message.status"]), "sorted, no repeats");
    assert_eq!(hook["sessionIds"], json!([sid]));
    assert_eq!((hook["enabled"].clone(), hook["disabledReason"].clone()), (json!(true), json!(null)));
    assert!(!r.body.is_empty() && !h.get(&format!("/api/v1/webhooks/{id}"), Some(&t)).await.body.windows(6).any(|w| w == b"whsec_"));

    // Update, then list in pages.
    let r = h.patch(&format!("/api/v1/webhooks/{id}"), Some(&t), json!({"events": ["*"], "description": null, "enabled": false})).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!((r.json["events"].clone(), r.json["description"].clone(), r.json["enabled"].clone()), (json!(["*"]), json!(null), json!(false)));
    for url in ["https://a.example.com", "https://b.example.com"] {
        let r = h.post("/api/v1/webhooks", Some(&t), json!({"url": url, "events": ["*"]})).await;
        assert_eq!(r.status, 201, "{:?}", r.json);
    }
    let all = common::walk(h, "/api/v1/webhooks", &t, 2).await;
    assert_eq!(all.len(), 3);
    assert_eq!(all[0]["id"], json!(id), "id order");

    // Rotation: a new secret, shown once; the webhook is otherwise the same.
    let r = h.post(&format!("/api/v1/webhooks/{id}/rotate-secret"), Some(&t), json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let rotated = r.json["secret"].as_str().expect("secret");
    assert_ne!(rotated, secret);
    assert_eq!(secret_bytes(rotated).len(), 32);
    assert_eq!(r.json["webhook"]["id"], json!(id));

    let r = h.delete(&format!("/api/v1/webhooks/{id}"), Some(&t)).await;
    assert_eq!(r.status, 204);
    assert_eq!(h.get(&format!("/api/v1/webhooks/{id}"), Some(&t)).await.status, 404);
    assert_eq!(h.delete(&format!("/api/v1/webhooks/{id}"), Some(&t)).await.status, 404);
}

#[tokio::test]
async fn urls_events_and_sessions_are_checked() {
    let gw = TestGateway::start().await;
    let (h, t) = (&gw.http, gw.owner("org_check"));
    let other = gw.owner("org_other");
    let foreign = common::create_session(h, &other, "theirs").await;
    let bad = [
        (json!({"url": "http://hooks.example.com", "events": ["*"]}), "url"),
        (json!({"url": "https://127.0.0.1/hook", "events": ["*"]}), "url"),
        (json!({"url": "https://10.1.2.3/hook", "events": ["*"]}), "url"),
        (json!({"url": "https://169.254.169.254/latest", "events": ["*"]}), "url"),
        (json!({"url": "https://[::1]:8443/", "events": ["*"]}), "url"),
        (json!({"url": "https://localhost/hook", "events": ["*"]}), "url"),
        (json!({"url": "ftp://hooks.example.com", "events": ["*"]}), "url"),
        (json!({"url": "https://user:pw@hooks.example.com", "events": ["*"]}), "url"),
        (json!({"url": "https://hooks.example.com", "events": ["message.sent"]}), "events"),
        (json!({"url": "https://hooks.example.com", "events": []}), "events"),
        (json!({"url": "https://hooks.example.com", "events": ["*"], "sessionIds": [foreign["id"]]}), "sessionIds"),
        (json!({"url": "https://hooks.example.com", "events": ["*"], "sessionIds": ["nope"]}), "sessionIds"),
        (json!({"url": "https://hooks.example.com", "events": ["*"], "secret": "mine"}), "secret"),
    ];
    for (body, field) in bad {
        let r = h.post("/api/v1/webhooks", Some(&t), body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {:?}", r.json);
        assert_eq!(r.code(), "invalid_request", "{body}");
        assert_eq!(r.json["error"]["details"]["field"], json!(field), "{body}: {:?}", r.json);
    }
    assert!(common::walk(h, "/api/v1/webhooks", &t, 50).await.is_empty(), "nothing stored");

    // With --allow-private-urls, a loopback http receiver is fine (local development).
    let gw = TestGateway::start_with(|c| c.messaging.allow_private_urls = true).await;
    let t = gw.owner("org_dev");
    let r = gw.http.post("/api/v1/webhooks", Some(&t), json!({"url": "http://127.0.0.1:9/hook", "events": ["*"]})).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
}

#[tokio::test]
async fn another_organization_s_webhook_is_not_found_and_members_may_not_manage_them() {
    let gw = TestGateway::start().await;
    let h = &gw.http;
    let (a, b) = (gw.owner("org_a"), gw.owner("org_b"));
    let r = h.post("/api/v1/webhooks", Some(&a), json!({"url": "https://a.example.com", "events": ["*"]})).await;
    assert_eq!(r.status, 201);
    let id = r.json["webhook"]["id"].as_str().expect("id").to_string();
    let path = format!("/api/v1/webhooks/{id}");
    assert_eq!(h.get(&path, Some(&b)).await.status, 404);
    assert_eq!(h.patch(&path, Some(&b), json!({"enabled": false})).await.status, 404);
    assert_eq!(h.post(&format!("{path}/rotate-secret"), Some(&b), json!({})).await.status, 404);
    assert_eq!(h.delete(&path, Some(&b)).await.status, 404);
    assert!(common::walk(h, "/api/v1/webhooks", &b, 50).await.is_empty());
    assert_eq!(h.get(&path, Some(&a)).await.json["enabled"], true, "untouched");

    let member = gw.token("m", Some("org_a"), Some("member"), false);
    assert_eq!(h.get("/api/v1/webhooks", Some(&member)).await.status, 403);
    assert_eq!(h.post("/api/v1/webhooks", Some(&member), json!({"url": "https://x.example.com", "events": ["*"]})).await.status, 403);
    assert_eq!(h.get(&path, None).await.status, 401);
}
