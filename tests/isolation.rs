//! Tenant isolation as a property: random organizations, sessions, api-keys
//! and roles; no request made as organization A ever returns, changes or
//! reveals organization B's data (404, not 403).

mod common;

use common::{walk, TestGateway};
use proptest::prelude::*;
use serde_json::{json, Value};

#[derive(Debug, Clone)]
struct World {
    /// Per organization: sessions to create and (role, api-key permission set) callers.
    orgs: Vec<(usize, Vec<Caller>)>,
}

#[derive(Debug, Clone)]
enum Caller {
    Role(&'static str),
    Key(Vec<&'static str>),
}

fn caller() -> impl Strategy<Value = Caller> {
    let perms = proptest::sample::subsequence(
        vec!["sessions:read", "sessions:write", "sessions:control", "messages:send", "messages:read", "webhooks:write"],
        0..=6,
    );
    prop_oneof![
        prop::sample::select(vec!["owner", "admin", "member"]).prop_map(Caller::Role),
        perms.prop_map(Caller::Key),
    ]
}

fn world() -> impl Strategy<Value = World> {
    prop::collection::vec((0usize..5, prop::collection::vec(caller(), 1..4)), 2..4).prop_map(|orgs| World { orgs })
}

async fn run(world: World) {
    let gw = TestGateway::start().await;
    let sa = gw.super_admin();
    // Build the world.
    let mut tokens: Vec<Vec<String>> = Vec::new();
    let mut sessions: Vec<Vec<String>> = Vec::new();
    let mut keys: Vec<Vec<String>> = Vec::new();
    for (i, (n, callers)) in world.orgs.iter().enumerate() {
        let org = format!("org_{i}");
        let owner = gw.owner(&org);
        let mut ids = Vec::new();
        for j in 0..*n {
            let r = gw.http.post("/api/v1/sessions", Some(&owner), json!({"label": format!("{org}-{j}"), "start": false})).await;
            assert_eq!(r.status, 201);
            ids.push(r.json["id"].as_str().unwrap_or("").to_string());
        }
        let mut toks = Vec::new();
        let mut key_ids = Vec::new();
        for c in callers {
            match c {
                Caller::Role(role) => toks.push(gw.token(&format!("u-{org}-{role}"), Some(&org), Some(role), false)),
                Caller::Key(perms) => {
                    let r = gw.http.post("/api/v1/api-keys", Some(&owner), json!({"name": "k", "permissions": perms})).await;
                    assert_eq!(r.status, 201);
                    toks.push(r.json["key"].as_str().unwrap_or("").to_string());
                    key_ids.push(r.json["apiKey"]["id"].as_str().unwrap_or("").to_string());
                }
            }
        }
        toks.push(owner);
        tokens.push(toks);
        sessions.push(ids);
        keys.push(key_ids);
    }
    let before = walk(&gw.http, "/api/v1/admin/sessions", &sa, 200).await;

    for (a, toks) in tokens.iter().enumerate() {
        let org_a = format!("org_{a}");
        for t in toks {
            // Lists only ever hold the caller's own organization.
            let list = gw.http.get("/api/v1/sessions?limit=200", Some(t)).await;
            if list.status == 200 {
                for s in list.json["data"].as_array().into_iter().flatten() {
                    assert_eq!(s["organizationId"], org_a.as_str());
                }
            } else {
                assert_eq!(list.status, 403);
            }
            let me = gw.http.get("/api/v1/me", Some(t)).await;
            assert_eq!(me.json["organizationId"], org_a.as_str());
            for (b, ids) in sessions.iter().enumerate() {
                if a == b {
                    continue;
                }
                for id in ids {
                    let path = format!("/api/v1/sessions/{id}");
                    for r in [
                        gw.http.get(&path, Some(t)).await,
                        gw.http.patch(&path, Some(t), json!({"label": "pwned"})).await,
                        gw.http.delete(&path, Some(t)).await,
                    ] {
                        // Either refused for lack of permission in its own org,
                        // or not found: never the other org's object.
                        assert!(r.status == 404 || r.status == 403, "{}: {:?}", r.status, r.json);
                        assert!(!r.body.windows(id.len()).any(|w| w == id.as_bytes()), "leaked id");
                        if r.status == 403 {
                            assert!(!r.json["error"]["message"].as_str().unwrap_or("").contains("exists"));
                        }
                    }
                }
                for key_id in &keys[b] {
                    let r = gw.http.delete(&format!("/api/v1/api-keys/{key_id}"), Some(t)).await;
                    assert!(r.status == 404 || r.status == 403);
                }
            }
            // Keys listed are the caller's own organization's.
            let list = gw.http.get("/api/v1/api-keys", Some(t)).await;
            for k in list.json["data"].as_array().into_iter().flatten() {
                assert_eq!(k["organizationId"], org_a.as_str());
            }
        }
    }
    // Nothing changed anywhere, and every key still works.
    let after = walk(&gw.http, "/api/v1/admin/sessions", &sa, 200).await;
    assert_eq!(before, after);
    for toks in &tokens {
        for t in toks {
            assert_eq!(gw.http.get("/api/v1/me", Some(t)).await.status, 200);
        }
    }
    let _: Value = json!(null);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn no_request_crosses_tenants(w in world()) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        rt.block_on(run(w));
    }
}
