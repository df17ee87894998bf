//! Lists and cursors (CONTRACT §5) over real HTTP: exactly-once walks, also
//! under concurrent creates and deletes; cursors bound to list, filters and
//! data file; bounded filtered pages; limit validation.

mod common;

use std::collections::HashSet;

use common::{create_session, walk, TestGateway};
use serde_json::json;

fn ids(items: &[serde_json::Value]) -> Vec<String> {
    items.iter().map(|s| s["id"].as_str().unwrap_or("").to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_returns_every_item_once_in_id_order() {
    let gw = TestGateway::start().await;
    let mut created = Vec::new();
    for i in 0..23 {
        let org = if i % 3 == 0 { "org_a" } else { "org_b" };
        created.push(create_session(&gw.http, &gw.owner(org), &format!("s{i}")).await["id"].as_str().unwrap_or("").to_string());
    }
    let sa = gw.super_admin();
    for limit in [1, 2, 7, 23, 50, 200] {
        let all = ids(&walk(&gw.http, "/api/v1/admin/sessions", &sa, limit).await);
        assert_eq!(all, created, "admin walk, limit {limit}");
    }
    let a: Vec<String> = created.iter().enumerate().filter(|(i, _)| i % 3 == 0).map(|(_, s)| s.clone()).collect();
    assert_eq!(ids(&walk(&gw.http, "/api/v1/sessions", &gw.owner("org_a"), 2).await), a);
    assert_eq!(ids(&walk(&gw.http, "/api/v1/admin/sessions?organizationId=org_a", &sa, 3).await), a);
    // An exact multiple of the limit ends without an empty trailing page.
    let r = gw.http.get("/api/v1/admin/sessions?limit=23", Some(&sa)).await;
    assert!(r.json["nextCursor"].is_null());
}

#[tokio::test(flavor = "multi_thread")]
async fn walks_are_exactly_once_while_others_create_and_delete() {
    let gw = TestGateway::start().await;
    let owner = gw.owner("org_a");
    let mut stable = HashSet::new();
    let mut doomed = Vec::new();
    for i in 0..60 {
        let id = create_session(&gw.http, &owner, &format!("s{i}")).await["id"].as_str().unwrap_or("").to_string();
        if i % 2 == 0 {
            stable.insert(id);
        } else {
            doomed.push(id);
        }
    }
    // Churn: delete the odd ones and create new ones while a walk runs.
    let http = gw.http.clone();
    let churn_owner = owner.clone();
    let churn = tokio::spawn(async move {
        for (i, id) in doomed.into_iter().enumerate() {
            let r = http.delete(&format!("/api/v1/sessions/{id}"), Some(&churn_owner)).await;
            assert_eq!(r.status, 204);
            create_session(&http, &churn_owner, &format!("new{i}")).await;
        }
    });
    let sa = gw.super_admin();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("/api/v1/admin/sessions?limit=3&cursor={c}"),
            None => "/api/v1/admin/sessions?limit=3".to_string(),
        };
        let r = gw.http.get(&url, Some(&sa)).await;
        assert_eq!(r.status, 200);
        seen.extend(ids(r.json["data"].as_array().expect("data")));
        tokio::task::yield_now().await;
        match r.json["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    churn.await.expect("churn");
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no item repeated");
    for id in &stable {
        assert!(seen.contains(id), "{id} was present during the whole walk but skipped");
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(sorted, seen, "id order");
}

#[tokio::test(flavor = "multi_thread")]
async fn cursors_are_bound_to_list_filters_and_data_file() {
    let gw = TestGateway::start().await;
    let other = TestGateway::start().await;
    let owner = gw.owner("org_a");
    for i in 0..5 {
        create_session(&gw.http, &owner, &format!("s{i}")).await;
        create_session(&other.http, &other.owner("org_a"), &format!("s{i}")).await;
    }
    let sa = gw.super_admin();
    let page = gw.http.get("/api/v1/admin/sessions?limit=2", Some(&sa)).await;
    let cursor = page.json["nextCursor"].as_str().expect("cursor").to_string();
    let org_page = gw.http.get("/api/v1/sessions?limit=2", Some(&owner)).await;
    let org_cursor = org_page.json["nextCursor"].as_str().expect("cursor").to_string();
    let foreign = other.http.get("/api/v1/admin/sessions?limit=2", Some(&other.super_admin())).await;
    let foreign_cursor = foreign.json["nextCursor"].as_str().expect("cursor").to_string();

    // Works where it belongs.
    assert_eq!(gw.http.get(&format!("/api/v1/admin/sessions?limit=2&cursor={cursor}"), Some(&sa)).await.status, 200);

    let mut flipped = cursor.clone().into_bytes();
    let i = flipped.len() / 2;
    flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).expect("ascii");
    let cases = [
        (format!("/api/v1/admin/sessions?cursor={flipped}"), "tampered"),
        (format!("/api/v1/admin/sessions?cursor={cursor}x"), "extended"),
        ("/api/v1/admin/sessions?cursor=not*base64".to_string(), "garbage"),
        ("/api/v1/admin/sessions?cursor=AAAA".to_string(), "short"),
        (format!("/api/v1/admin/sessions?cursor={org_cursor}"), "another list"),
        (format!("/api/v1/admin/sessions?status=stopped&cursor={cursor}"), "other filters"),
        (format!("/api/v1/admin/sessions?organizationId=org_a&cursor={cursor}"), "other filters"),
        (format!("/api/v1/admin/sessions?cursor={foreign_cursor}"), "another data file"),
        (format!("/api/v1/admin/organizations?cursor={cursor}"), "another list"),
    ];
    for (url, why) in cases {
        let r = gw.http.get(&url, Some(&sa)).await;
        assert_eq!(r.status, 400, "{why}: {url}");
        assert_eq!(r.code(), "invalid_cursor", "{why}");
    }
    // An org cursor is bound to the org too.
    let r = gw.http.get(&format!("/api/v1/sessions?cursor={org_cursor}"), Some(&gw.owner("org_b"))).await;
    assert_eq!(r.code(), "invalid_cursor");
}

#[tokio::test(flavor = "multi_thread")]
async fn filtered_pages_are_bounded_and_limits_validated() {
    let gw = TestGateway::start().await;
    let owner = gw.owner("org_a");
    for i in 0..45 {
        create_session(&gw.http, &owner, &format!("s{i}")).await;
    }
    let sa = gw.super_admin();
    // No session is working: a limit=1 page reads at most 20 rows, so the
    // first page is empty but not the end.
    let r = gw.http.get("/api/v1/admin/sessions?status=working&limit=1", Some(&sa)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["data"].as_array().map(Vec::len), Some(0));
    assert!(r.json["nextCursor"].is_string(), "bounded scan hands back a cursor");
    assert!(walk(&gw.http, "/api/v1/admin/sessions?status=working", &sa, 1).await.is_empty());
    assert_eq!(walk(&gw.http, "/api/v1/sessions?status=stopped", &owner, 4).await.len(), 45);

    for bad in ["limit=0", "limit=201", "limit=-1", "limit=abc", "limit=1.5", "limit=", "status=bogus", "foo=1", "limit=1&limit=2"] {
        let r = gw.http.get(&format!("/api/v1/admin/sessions?{bad}"), Some(&sa)).await;
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.code(), "invalid_request", "{bad}");
        assert!(r.json["error"]["details"]["field"].is_string(), "{bad}: {:?}", r.json);
    }
    let r = gw.http.get("/api/v1/admin/sessions?limit=200", Some(&sa)).await;
    assert_eq!(r.json["data"].as_array().map(Vec::len), Some(45));
    let r = gw.http.get("/api/v1/admin/sessions", Some(&sa)).await;
    assert_eq!(r.json["data"].as_array().map(Vec::len), Some(45), "default limit 50");
    let _ = json!({});
}

#[tokio::test(flavor = "multi_thread")]
async fn cached_pages_never_outlive_a_write() {
    let gw = TestGateway::start().await;
    let owner = gw.owner("org_a");
    let sa = gw.super_admin();
    let first = create_session(&gw.http, &owner, "one").await;
    let id = first["id"].as_str().expect("id").to_string();
    let page = |http: common::Http, t: String, path: &'static str| async move { http.get(path, Some(&t)).await.json };
    // Same page twice: identical (the second is served from the cache).
    let a = page(gw.http.clone(), sa.clone(), "/api/v1/admin/sessions").await;
    assert_eq!(a, page(gw.http.clone(), sa.clone(), "/api/v1/admin/sessions").await);
    assert_eq!(a["data"].as_array().map(Vec::len), Some(1));
    // Every kind of write shows up on the very next read, on both lists.
    create_session(&gw.http, &owner, "two").await;
    for (t, path) in [(&sa, "/api/v1/admin/sessions"), (&owner, "/api/v1/sessions")] {
        assert_eq!(page(gw.http.clone(), t.clone(), path).await["data"].as_array().map(Vec::len), Some(2));
    }
    let r = gw.http.patch(&format!("/api/v1/sessions/{id}"), Some(&owner), json!({"label": "renamed"})).await;
    assert_eq!(r.status, 200);
    for (t, path) in [(&sa, "/api/v1/admin/sessions"), (&owner, "/api/v1/sessions")] {
        assert_eq!(page(gw.http.clone(), t.clone(), path).await["data"][0]["label"], "renamed");
    }
    assert_eq!(gw.http.delete(&format!("/api/v1/sessions/{id}"), Some(&owner)).await.status, 204);
    for (t, path) in [(&sa, "/api/v1/admin/sessions"), (&owner, "/api/v1/sessions")] {
        let d = page(gw.http.clone(), t.clone(), path).await;
        assert_eq!(d["data"].as_array().map(Vec::len), Some(1));
        assert_ne!(d["data"][0]["id"], id.as_str());
    }
    // Another organization's cached page is never served to this one.
    let other = page(gw.http.clone(), gw.owner("org_b"), "/api/v1/sessions").await;
    assert_eq!(other["data"].as_array().map(Vec::len), Some(0));
}
