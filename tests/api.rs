//! The API over real HTTP: the seed contract (`GET /api/v1/admin/sessions`),
//! sessions, api-keys, organizations, `/api/v1/me`, request ids and CORS.

mod common;

use common::{create_session, walk, TestGateway};
use serde_json::{json, Value};

/// The seed page's example object: every field, and its JSON type.
const SEED_FIELDS: &[(&str, &str)] = &[
    ("autoRead", "bool"),
    ("createdAt", "int"),
    ("createdByUserId", "string"),
    ("gatewayId", "string"),
    ("id", "string"),
    ("isAdminSession", "bool"),
    ("label", "string"),
    ("lastConnectedAt", "int|null"),
    ("organizationId", "string"),
    ("phoneNumber", "string|null"),
    ("presenceTyping", "bool"),
    ("ratePerHour", "int"),
    ("ratePerMin", "int"),
    ("status", "string"),
    ("updatedAt", "int"),
    ("waJid", "string|null"),
    ("waLid", "string|null"),
];

fn assert_seed_shape(s: &Value) {
    let obj = s.as_object().expect("session object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let want: Vec<&str> = SEED_FIELDS.iter().map(|(k, _)| *k).collect();
    assert_eq!(keys, want, "session fields must be exactly the seed's");
    for (k, ty) in SEED_FIELDS {
        let v = &obj[*k];
        let ok = ty.split('|').any(|t| match t {
            "bool" => v.is_boolean(),
            "int" => v.is_i64() || v.is_u64(),
            "string" => v.is_string(),
            "null" => v.is_null(),
            _ => false,
        });
        assert!(ok, "{k} should be {ty}, got {v}");
    }
    let id = s["id"].as_str().expect("id");
    assert_eq!(id.len(), 26, "id is a ULID");
    assert!(ulid::Ulid::from_string(id).is_ok());
}

async fn api_key(gw: &TestGateway, org: &str, perms: Option<&[&str]>) -> String {
    let mut body = json!({"name": "script"});
    if let Some(p) = perms {
        body["permissions"] = json!(p);
    }
    let r = gw.http.post("/api/v1/api-keys", Some(&gw.owner(org)), body).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    r.json["key"].as_str().expect("key").to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_super_admin_sees_every_organization() {
    let gw = TestGateway::start().await;
    let a = create_session(&gw.http, &gw.owner("org_a"), "A1").await;
    let b = create_session(&gw.http, &gw.owner("org_b"), "B1").await;
    let admin = gw.http
        .post("/api/v1/admin/sessions", Some(&gw.super_admin()), json!({"organizationId": "org_c", "label": "C1", "start": false}))
        .await;
    assert_eq!(admin.status, 201, "{:?}", admin.json);
    assert_eq!(admin.json["isAdminSession"], true);

    let r = gw.http.get("/api/v1/admin/sessions", Some(&gw.super_admin())).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "application/json");
    let data = r.json["data"].as_array().expect("data");
    let orgs: Vec<&str> = data.iter().map(|s| s["organizationId"].as_str().unwrap_or("")).collect();
    assert_eq!(orgs, ["org_a", "org_b", "org_c"], "one flat list across tenants, id order");
    assert!(r.json["nextCursor"].is_null());
    for s in data {
        assert_seed_shape(s);
    }
    assert_eq!(data[0]["id"], a["id"]);
    assert_eq!(data[1]["id"], b["id"]);
    assert_eq!(data[0]["status"], "stopped");
    assert_eq!(data[0]["gatewayId"], "gw-local-1");
    assert_eq!(data[0]["createdByUserId"], "owner-of-org_a");
    assert_eq!(data[0]["ratePerMin"], 20);
    assert_eq!(data[0]["ratePerHour"], 600);
    assert_eq!(data[0]["presenceTyping"], true);
    assert_eq!(data[0]["autoRead"], false);
    assert_eq!(data[0]["isAdminSession"], false);

    // Filters.
    let r = gw.http.get("/api/v1/admin/sessions?organizationId=org_b", Some(&gw.super_admin())).await;
    assert_eq!(r.json["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(r.json["data"][0]["id"], b["id"]);
    let r = gw.http.get("/api/v1/admin/sessions?status=working", Some(&gw.super_admin())).await;
    assert_eq!(r.json["data"].as_array().map(Vec::len), Some(0));
    let r = gw.http.get("/api/v1/admin/sessions?gatewayId=gw-local-1&status=stopped", Some(&gw.super_admin())).await;
    assert_eq!(r.json["data"].as_array().map(Vec::len), Some(3));
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_refuses_org_roles_and_api_keys_with_403() {
    let gw = TestGateway::start().await;
    for role in ["owner", "admin", "member"] {
        let t = gw.token("u1", Some("org_a"), Some(role), false);
        let r = gw.http.get("/api/v1/admin/sessions", Some(&t)).await;
        assert_eq!(r.status, 403, "{role}");
        assert_eq!(r.code(), "forbidden");
    }
    // A login JWT with no role at all is authenticated but not a super_admin.
    let r = gw.http.get("/api/v1/admin/sessions", Some(&gw.token("u", None, None, false))).await;
    assert_eq!(r.status, 403);
    let key = api_key(&gw, "org_a", None).await;
    let r = gw.http.get("/api/v1/admin/sessions", Some(&key)).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.code(), "forbidden");
    // The same key works on its own org's routes, so it was valid.
    assert_eq!(gw.http.get("/api/v1/sessions", Some(&key)).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_refuses_missing_and_invalid_tokens_with_401() {
    let gw = TestGateway::start().await;
    let valid = gw.super_admin();
    let mut tampered = valid.clone();
    tampered.pop();
    tampered.push(if valid.ends_with('A') { 'B' } else { 'A' });
    let bad_key = format!("wa_{}", "x".repeat(49));
    for token in [None, Some("garbage"), Some(tampered.as_str()), Some(bad_key.as_str()), Some("")] {
        let r = gw.http.get("/api/v1/admin/sessions", token).await;
        assert_eq!(r.status, 401, "{token:?}");
        assert_eq!(r.code(), "unauthorized");
        let www = r.headers.get("www-authenticate").expect("WWW-Authenticate");
        assert!(www.to_str().unwrap_or("").starts_with("Bearer"));
        assert!(r.json["error"]["details"].is_object());
    }
    // Basic auth is not a bearer token.
    let r = gw.http
        .send(hyper::Method::GET, "/api/v1/admin/sessions", None, None, &[("authorization", "Basic dTpw")])
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_crud_and_validation() {
    let gw = TestGateway::start().await;
    let t = gw.owner("org_a");
    let r = gw.http
        .post(
            "/api/v1/sessions",
            Some(&t),
            json!({"label": "Support", "phoneNumber": "6281234567890", "autoRead": true, "ratePerMin": 5}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_seed_shape(&r.json);
    let id = r.json["id"].as_str().expect("id").to_string();
    assert_eq!(r.headers["location"], format!("/api/v1/sessions/{id}").as_str());
    assert_eq!(r.json["phoneNumber"], "6281234567890");
    assert_eq!(r.json["ratePerMin"], 5);

    let got = gw.http.get(&format!("/api/v1/sessions/{id}"), Some(&t)).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json, r.json);

    let p = gw.http
        .patch(&format!("/api/v1/sessions/{id}"), Some(&t), json!({"label": "New", "phoneNumber": null, "ratePerHour": 1000}))
        .await;
    assert_eq!(p.status, 200, "{:?}", p.json);
    assert_eq!(p.json["label"], "New");
    assert!(p.json["phoneNumber"].is_null());
    assert_eq!(p.json["ratePerHour"], 1000);
    assert_eq!(p.json["autoRead"], true, "untouched fields keep their values");
    assert!(p.json["updatedAt"].as_i64() >= r.json["updatedAt"].as_i64());

    for (body, field) in [
        (json!({"label": "x".repeat(129)}), "label"),
        (json!({"phoneNumber": "+62812345"}), "phoneNumber"),
        (json!({"phoneNumber": "12345"}), "phoneNumber"),
        (json!({"phoneNumber": "1".repeat(21)}), "phoneNumber"),
        (json!({"ratePerMin": 0}), "ratePerMin"),
        (json!({"ratePerHour": 100001}), "ratePerHour"),
        (json!({"ratePerMin": -1}), "ratePerMin"),
        (json!({"autoRead": "yes"}), "autoRead"),
        (json!({"bogus": 1}), "bogus"),
        (json!({"organizationId": "org_b"}), "organizationId"),
    ] {
        let r = gw.http.post("/api/v1/sessions", Some(&t), body.clone()).await;
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.code(), "invalid_request");
        assert_eq!(r.json["error"]["details"]["field"], field, "{body}: {:?}", r.json);
    }
    // Unicode label of 128 characters is fine (counted in characters).
    let r = gw.http.post("/api/v1/sessions", Some(&t), json!({"label": "é".repeat(128)})).await;
    assert_eq!(r.status, 201);

    let d = gw.http.delete(&format!("/api/v1/sessions/{id}"), Some(&t)).await;
    assert_eq!(d.status, 204);
    assert!(d.body.is_empty());
    let g = gw.http.get(&format!("/api/v1/sessions/{id}"), Some(&t)).await;
    assert_eq!(g.status, 404);
    assert_eq!(g.code(), "not_found");
    assert_eq!(gw.http.delete(&format!("/api/v1/sessions/{id}"), Some(&t)).await.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_and_admin_sessions() {
    let gw = TestGateway::start().await;
    let member = gw.token("m", Some("org_a"), Some("member"), false);
    let clerk_admin = gw.token("a", Some("org_a"), Some("org:admin"), false);
    let unknown_role = gw.token("x", Some("org_a"), Some("org:billing"), false);
    assert_eq!(gw.http.post("/api/v1/sessions", Some(&member), json!({})).await.status, 403);
    assert_eq!(gw.http.get("/api/v1/sessions", Some(&member)).await.status, 200);
    assert_eq!(gw.http.post("/api/v1/sessions", Some(&clerk_admin), json!({})).await.status, 201);
    assert_eq!(gw.http.get("/api/v1/sessions", Some(&unknown_role)).await.status, 403);

    let admin_made = gw.http
        .post("/api/v1/admin/sessions", Some(&gw.super_admin()), json!({"organizationId": "org_a"}))
        .await;
    let id = admin_made.json["id"].as_str().expect("id").to_string();
    // The org can see it, but only a super_admin may change or delete it.
    let owner = gw.owner("org_a");
    assert_eq!(gw.http.get(&format!("/api/v1/sessions/{id}"), Some(&owner)).await.status, 200);
    let r = gw.http.patch(&format!("/api/v1/sessions/{id}"), Some(&owner), json!({"label": "x"})).await;
    assert_eq!(r.status, 403);
    assert_eq!(gw.http.delete(&format!("/api/v1/sessions/{id}"), Some(&owner)).await.status, 403);
    let sa_in_org = gw.token("root", Some("org_a"), Some("owner"), true);
    assert_eq!(gw.http.delete(&format!("/api/v1/sessions/{id}"), Some(&sa_in_org)).await.status, 204);

    // Admin create needs an organizationId.
    let r = gw.http.post("/api/v1/admin/sessions", Some(&gw.super_admin()), json!({"label": "x"})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json["error"]["details"]["field"], "organizationId");
}

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_lifecycle() {
    let gw = TestGateway::start().await;
    let owner = gw.owner("org_a");
    let r = gw.http
        .post("/api/v1/api-keys", Some(&owner), json!({"name": "ci", "permissions": ["sessions:read"]}))
        .await;
    assert_eq!(r.status, 201);
    let key = r.json["key"].as_str().expect("key").to_string();
    let meta = &r.json["apiKey"];
    assert!(key.starts_with("wa_") && key.len() >= 46);
    assert_eq!(meta["prefix"], &key[..12]);
    assert_eq!(meta["permissions"], json!(["sessions:read"]));
    assert_eq!(meta["organizationId"], "org_a");
    assert_eq!(meta["createdByUserId"], "owner-of-org_a");
    assert!(meta["revokedAt"].is_null());
    assert!(!r.body.windows(4).any(|w| w == b"hash"), "no hash in responses");

    // It reads, but may not write.
    assert_eq!(gw.http.get("/api/v1/sessions", Some(&key)).await.status, 200);
    let w = gw.http.post("/api/v1/sessions", Some(&key), json!({})).await;
    assert_eq!(w.status, 403);
    // Keys never manage keys, and never carry api_keys:write.
    assert_eq!(gw.http.get("/api/v1/api-keys", Some(&key)).await.status, 403);
    let bad = gw.http
        .post("/api/v1/api-keys", Some(&owner), json!({"name": "x", "permissions": ["api_keys:write"]}))
        .await;
    assert_eq!(bad.status, 400);
    let bad = gw.http.post("/api/v1/api-keys", Some(&owner), json!({"name": "x", "permissions": ["root"]})).await;
    assert_eq!(bad.status, 400);
    let past = gw.http.post("/api/v1/api-keys", Some(&owner), json!({"name": "x", "expiresAt": 1000})).await;
    assert_eq!(past.status, 400);
    // Members cannot create keys.
    let member = gw.token("m", Some("org_a"), Some("member"), false);
    assert_eq!(gw.http.post("/api/v1/api-keys", Some(&member), json!({"name": "x"})).await.status, 403);

    // A session created by a key is attributed to the key's creator.
    let writer = api_key(&gw, "org_a", Some(&["sessions:write", "sessions:read"])).await;
    let s = gw.http.post("/api/v1/sessions", Some(&writer), json!({"label": "k"})).await;
    assert_eq!(s.status, 201);
    assert_eq!(s.json["createdByUserId"], "owner-of-org_a");

    // lastUsedAt is recorded (in the background).
    let mut used = Value::Null;
    for _ in 0..50 {
        let list = gw.http.get("/api/v1/api-keys", Some(&owner)).await;
        used = list.json["data"][0]["lastUsedAt"].clone();
        if used.is_i64() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(used.is_i64(), "lastUsedAt recorded");

    // Revoke: idempotent, and the key stops working.
    let id = meta["id"].as_str().expect("id");
    assert_eq!(gw.http.delete(&format!("/api/v1/api-keys/{id}"), Some(&owner)).await.status, 204);
    assert_eq!(gw.http.delete(&format!("/api/v1/api-keys/{id}"), Some(&owner)).await.status, 204);
    let r = gw.http.get("/api/v1/sessions", Some(&key)).await;
    assert_eq!(r.status, 401);
    let list = gw.http.get("/api/v1/api-keys", Some(&owner)).await;
    assert!(list.json["data"][0]["revokedAt"].is_i64());
    // Another org cannot revoke (or see) it.
    assert_eq!(gw.http.delete(&format!("/api/v1/api-keys/{id}"), Some(&gw.owner("org_b"))).await.status, 404);
    // A typo in a key is refused before any lookup.
    let mut typo = writer.clone().into_bytes();
    typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).expect("ascii");
    assert_eq!(gw.http.get("/api/v1/sessions", Some(&typo)).await.status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn organizations_suspend_and_limits() {
    let gw = TestGateway::start().await;
    let sa = gw.super_admin();
    let r = gw.http.post("/api/v1/admin/organizations", Some(&sa), json!({"id": "org_x", "name": "X", "maxSessions": 1})).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    assert_eq!(r.json["status"], "active");
    assert_eq!(r.json["maxSessions"], 1);
    let dup = gw.http.post("/api/v1/admin/organizations", Some(&sa), json!({"id": "org_x", "name": "X"})).await;
    assert_eq!(dup.status, 409);
    assert_eq!(dup.code(), "conflict");

    let owner = gw.owner("org_x");
    let key = api_key(&gw, "org_x", None).await;
    create_session(&gw.http, &owner, "one").await;
    let full = gw.http.post("/api/v1/sessions", Some(&owner), json!({})).await;
    assert_eq!(full.status, 409, "maxSessions enforced");

    // Suspend: members and api-keys get 403; the super_admin still sees everything.
    let s = gw.http.patch("/api/v1/admin/organizations/org_x", Some(&sa), json!({"status": "suspended"})).await;
    assert_eq!(s.status, 200);
    assert_eq!(s.json["status"], "suspended");
    assert_eq!(gw.http.get("/api/v1/sessions", Some(&owner)).await.status, 403);
    assert_eq!(gw.http.get("/api/v1/sessions", Some(&key)).await.status, 403);
    let all = gw.http.get("/api/v1/admin/sessions?organizationId=org_x", Some(&sa)).await;
    assert_eq!(all.json["data"].as_array().map(Vec::len), Some(1));
    // Unsuspend and lift the limit.
    let s = gw.http
        .patch("/api/v1/admin/organizations/org_x", Some(&sa), json!({"status": "active", "maxSessions": null}))
        .await;
    assert!(s.json["maxSessions"].is_null());
    assert_eq!(gw.http.post("/api/v1/sessions", Some(&owner), json!({})).await.status, 201);

    // Orgs seen in tokens exist; the listing is id-ordered and paged.
    gw.owner("org_a");
    create_session(&gw.http, &gw.owner("org_a"), "a").await;
    let orgs = walk(&gw.http, "/api/v1/admin/organizations", &sa, 1).await;
    let ids: Vec<&str> = orgs.iter().map(|o| o["id"].as_str().unwrap_or("")).collect();
    assert_eq!(ids, ["org_a", "org_x"]);
    assert_eq!(gw.http.patch("/api/v1/admin/organizations/nope", Some(&sa), json!({})).await.status, 404);
    assert_eq!(gw.http.patch("/api/v1/admin/organizations/org_x", Some(&owner), json!({})).await.status, 403);
    let bad = gw.http.patch("/api/v1/admin/organizations/org_x", Some(&sa), json!({"status": "deleted"})).await;
    assert_eq!(bad.status, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn me_request_id_and_cors() {
    let gw = TestGateway::start().await;
    let r = gw.http.get("/api/v1/me", Some(&gw.token("u7", Some("org_a"), Some("member"), false))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["kind"], "user");
    assert_eq!(r.json["userId"], "u7");
    assert_eq!(r.json["organizationId"], "org_a");
    assert_eq!(r.json["role"], "member");
    assert_eq!(r.json["permissions"], json!(["sessions:read", "messages:send", "messages:read", "contacts:read"]));
    let key = api_key(&gw, "org_a", Some(&["sessions:read"])).await;
    let r = gw.http.get("/api/v1/me", Some(&key)).await;
    assert_eq!(r.json["kind"], "api_key");
    assert_eq!(r.json["permissions"], json!(["sessions:read"]));
    let r = gw.http.get("/api/v1/me", Some(&gw.super_admin())).await;
    assert_eq!(r.json["platformRole"], "super_admin");

    // Request ids: echoed when sane, generated otherwise, on errors too.
    let r = gw.http.send(hyper::Method::GET, "/healthz", None, None, &[("x-request-id", "abc-123")]).await;
    assert_eq!(r.headers["x-request-id"], "abc-123");
    let r = gw.http.send(hyper::Method::GET, "/nope", None, None, &[("x-request-id", "bad id with spaces")]).await;
    let id = r.headers["x-request-id"].to_str().unwrap_or("");
    assert_eq!(id.len(), 26);
    // No CORS unless configured.
    let r = gw.http.send(hyper::Method::GET, "/healthz", None, None, &[("origin", "https://app.example")]).await;
    assert!(r.headers.get("access-control-allow-origin").is_none());
    let r = gw.http.send(hyper::Method::OPTIONS, "/api/v1/sessions", None, None, &[("origin", "https://app.example")]).await;
    assert_eq!(r.status, 405);

    let gw2 = TestGateway::start_with(|c| c.cors_origins = vec!["https://app.example".into()]).await;
    let r = gw2.http.send(hyper::Method::OPTIONS, "/api/v1/sessions", None, None, &[("origin", "https://app.example")]).await;
    assert_eq!(r.status, 204);
    assert_eq!(r.headers["access-control-allow-origin"], "https://app.example");
    let r = gw2.http.send(hyper::Method::GET, "/healthz", None, None, &[("origin", "https://evil.example")]).await;
    assert!(r.headers.get("access-control-allow-origin").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn ops_endpoints() {
    let gw = TestGateway::start().await;
    let h = gw.http.get("/healthz", None).await;
    assert_eq!(h.status, 200);
    let r = gw.http.get("/readyz", None).await;
    assert_eq!(r.status, 200);
    let jwks = gw.http.get("/.well-known/jwks.json", None).await;
    assert_eq!(jwks.json["keys"][0]["kty"], "OKP");
    assert_eq!(jwks.json["keys"][0]["crv"], "Ed25519");
    assert!(jwks.json["keys"][0].get("d").is_none(), "never the private half");
    gw.http.get("/api/v1/sessions", Some(&gw.owner("org_a"))).await;
    let m = gw.http.get("/metrics", None).await;
    let text = String::from_utf8_lossy(&m.body);
    assert!(text.contains("wa_gateway_http_requests_total{"), "{text}");
    assert!(text.contains("route=\"/api/v1/sessions\""));
    assert!(text.contains("wa_gateway_sessions "));
}
