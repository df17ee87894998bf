//! Keeps `/openapi.json` true (CONTRACT §6): the document is served, its
//! (method, path) set is exactly the route table's, every route is really
//! served and answers only what its operation documents, unknown paths and
//! wrong methods get the router's 404/405, every `$ref` resolves, and real
//! objects match their schemas key for key.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use hyper::Method;
use serde_json::{json, Value};
use wa_gateway::http::router::routes;

/// HTTP methods an OpenAPI path item may hold, as its keys.
const METHOD_KEYS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
/// Routes that need no token.
const PUBLIC: [&str; 8] = [
    "/healthz", "/readyz", "/metrics", "/openapi.json", "/.well-known/jwks.json", "/console", "/console/{id}", "/docs",
];

type Ops = BTreeSet<(String, String)>;

async fn fetch_doc(gw: &common::TestGateway) -> Value {
    let r = gw.http.get("/openapi.json", None).await;
    assert_eq!(r.status, 200, "GET /openapi.json: {}", preview(&r.body));
    r.json
}

/// (METHOD, path) of every operation in the document.
fn doc_ops(doc: &Value) -> Ops {
    let paths = doc["paths"].as_object().expect("paths is an object");
    let mut out = Ops::new();
    for (path, item) in paths {
        for key in item.as_object().expect("path item is an object").keys() {
            if METHOD_KEYS.contains(&key.as_str()) {
                out.insert((key.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// (METHOD, path) of every route the router serves.
fn route_ops() -> Ops {
    routes().iter().map(|r| (r.method.as_str().to_string(), r.pattern.to_string())).collect()
}

/// The document's methods for one path, uppercase.
fn doc_methods(doc: &Value, path: &str) -> BTreeSet<String> {
    doc_ops(doc).into_iter().filter(|(_, p)| p == path).map(|(m, _)| m).collect()
}

fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    &doc["paths"][path][method.to_lowercase()]
}

/// Follows a local `$ref` (or returns the value itself).
fn deref<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => doc.pointer(r.trim_start_matches('#')).unwrap_or(&Value::Null),
        None => v,
    }
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        _ => false,
    }
}

/// A small JSON Schema check: `$ref`, `type`, `enum`, `required`,
/// `additionalProperties: false`, `properties`, `items`.
fn validate(doc: &Value, schema: &Value, v: &Value, at: &str, errs: &mut Vec<String>) {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        match doc.pointer(r.trim_start_matches('#')) {
            Some(s) => validate(doc, s, v, at, errs),
            None => errs.push(format!("{at}: unresolved $ref {r}")),
        }
        return;
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !types.iter().any(|t| type_matches(t, v)) {
            errs.push(format!("{at}: {v} is not of type {t}"));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(v) {
            errs.push(format!("{at}: {v} is not one of {allowed:?}"));
        }
    }
    if let Value::Object(obj) = v {
        let props = schema.get("properties").and_then(Value::as_object);
        for name in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            let name = name.as_str().unwrap_or("");
            if !obj.contains_key(name) {
                errs.push(format!("{at}: missing required {name:?}"));
            }
        }
        if schema.get("additionalProperties") == Some(&Value::Bool(false)) {
            for k in obj.keys() {
                if !props.is_some_and(|p| p.contains_key(k)) {
                    errs.push(format!("{at}: {k:?} is not in the schema"));
                }
            }
        }
        for (k, s) in props.into_iter().flatten() {
            if let Some(x) = obj.get(k) {
                validate(doc, s, x, &format!("{at}.{k}"), errs);
            }
        }
    }
    if let (Value::Array(items), Some(s)) = (v, schema.get("items")) {
        for (i, x) in items.iter().enumerate() {
            validate(doc, s, x, &format!("{at}[{i}]"), errs);
        }
    }
}

fn assert_valid(doc: &Value, schema_name: &str, v: &Value) {
    let mut errs = Vec::new();
    validate(doc, &json!({"$ref": format!("#/components/schemas/{schema_name}")}), v, schema_name, &mut errs);
    assert!(errs.is_empty(), "{schema_name} does not match {v}:\n{}", errs.join("\n"));
}

/// The start of a body, for failure messages.
fn preview(body: &Bytes) -> String {
    String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned()
}

/// A concrete path for a pattern: `{id}` becomes a fresh ULID.
fn concrete(pattern: &str) -> String {
    pattern
        .replace("{id}", &ulid::Ulid::generate().to_string())
        .replace("{contact}", "6281234567890")
        .replace("{groupId}", "120363025246125486%40g.us")
        .replace("{code}", "AbCdEfGh")
}

fn diff(name: &str, a: &Ops, b: &Ops) -> String {
    let missing: Vec<_> = a.difference(b).map(|(m, p)| format!("{m} {p}")).collect();
    if missing.is_empty() {
        String::new()
    } else {
        format!("\n  {name}: {}", missing.join(", "))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_json_is_served() {
    let gw = common::TestGateway::start().await;
    let r = gw.http.get("/openapi.json", None).await;
    assert_eq!(r.status, 200);
    let ct = r.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(ct.starts_with("application/json"), "content-type {ct:?}");
    let doc = &r.json;
    let version = doc["openapi"].as_str().unwrap_or("");
    assert!(version.starts_with("3.1"), "openapi {version:?}");
    assert_eq!(doc["info"]["title"], "wa-gateway");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc, &wa_gateway::ops::openapi::document(), "served document differs from document()");
    let scheme = &doc["components"]["securitySchemes"]["bearerAuth"];
    assert_eq!((&scheme["type"], &scheme["scheme"], &scheme["bearerFormat"]), (&json!("http"), &json!("bearer"), &json!("JWT")));
    // Served twice, byte for byte the same (built once).
    assert_eq!(gw.http.get("/openapi.json", None).await.body, r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn document_paths_equal_route_table() {
    let doc = wa_gateway::ops::openapi::document();
    let (documented, served) = (doc_ops(&doc), route_ops());
    assert!(!served.is_empty(), "the route table is empty");
    assert!(
        documented == served,
        "/openapi.json and routes() disagree:{}{}",
        diff("in routes() but not documented", &served, &documented),
        diff("documented but not in routes()", &documented, &served),
    );
    assert_eq!(routes().len(), served.len(), "routes() lists a (method, path) twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_operation_is_complete() {
    let doc = wa_gateway::ops::openapi::document();
    let tags = ["admin", "sessions", "webhooks", "api-keys", "me", "ops"];
    let declared: Vec<&str> = doc["tags"].as_array().expect("tags").iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(declared, tags, "the document declares exactly these tags");
    let mut ids = BTreeSet::new();
    for (method, path) in doc_ops(&doc) {
        let op = operation(&doc, &method, &path);
        let id = op["operationId"].as_str().unwrap_or("");
        assert!(!id.is_empty() && ids.insert(id.to_string()), "{method} {path}: missing or repeated operationId {id:?}");
        assert!(op["summary"].as_str().is_some_and(|s| !s.is_empty()), "{method} {path}: no summary");
        let tag = op["tags"][0].as_str().unwrap_or("");
        assert!(tags.contains(&tag), "{method} {path}: tag {tag:?}");
        let responses = op["responses"].as_object().expect("responses");
        assert!(responses.keys().any(|s| s.starts_with('2')), "{method} {path}: no success response");
        let security = op["security"].as_array().expect("security is explicit on every operation");
        if PUBLIC.contains(&path.as_str()) {
            assert!(security.is_empty(), "{method} {path} is public but documents security");
        } else {
            assert_eq!(security, &vec![json!({"bearerAuth": []})], "{method} {path}");
            let unauthorized = deref(&doc, &responses["401"]);
            assert!(unauthorized["headers"]["WWW-Authenticate"].is_object(), "{method} {path}: 401 without WWW-Authenticate");
        }
        let path_params: Vec<String> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| deref(&doc, p))
            .filter(|p| p["in"] == "path")
            .map(|p| p["name"].as_str().unwrap_or("").to_string())
            .collect();
        let expected: Vec<String> =
            ["id", "msgId", "contact", "groupId", "code"].into_iter().filter(|p| path.contains(&format!("{{{p}}}"))).map(String::from).collect();
        assert_eq!(path_params, expected, "{method} {path}: path parameters");
    }
}

/// The response's status is documented for the operation, with its content
/// type, and a JSON body matches the documented schema.
fn assert_documented(doc: &Value, method: &str, pattern: &str, r: &common::Res, what: &str) {
    let documented = &operation(doc, method, pattern)["responses"][r.status.as_str()];
    assert!(documented.is_object(), "status not documented: {what}");
    let documented = deref(doc, documented);
    let ct = r.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    match documented.get("content").and_then(Value::as_object) {
        Some(content) => {
            let media = content.get(mime).unwrap_or_else(|| panic!("content-type {ct:?} not documented: {what}"));
            if mime == "application/json" {
                let mut errs = Vec::new();
                validate(doc, &media["schema"], &r.json, &format!("{method} {pattern}"), &mut errs);
                assert!(errs.is_empty(), "{what}:\n{}", errs.join("\n"));
            }
        }
        None => assert!(r.body.is_empty(), "body not documented: {what}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_is_served_and_answers_as_documented() {
    let gw = common::TestGateway::start().await;
    let doc = fetch_doc(&gw).await;
    for route in routes() {
        let (method, pattern) = (route.method.as_str(), route.pattern);
        let path = concrete(pattern);
        let r = gw.http.send(route.method.clone(), &path, None, None, &[]).await;
        let what = format!("{method} {path} (no token) → {} {}", r.status, preview(&r.body));
        assert!(!(r.status == 404 && r.json["error"]["message"] == "no such route"), "not routed: {what}");
        assert_ne!(r.status, 405, "method refused: {what}");
        assert_documented(&doc, method, pattern, &r, &what);
        if r.status == 401 {
            assert!(r.headers.contains_key("www-authenticate"), "401 without WWW-Authenticate: {what}");
        }
        assert_eq!(r.status == 401, !PUBLIC.contains(&pattern), "auth differs from the document: {what}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_paths_are_404_no_such_route() {
    let gw = common::TestGateway::start().await;
    let doc = fetch_doc(&gw).await;
    let id = ulid::Ulid::generate().to_string();
    let unknown = [
        "/api/v1/nope".to_string(),
        "/api/v1/sessions/".to_string(),
        "/api/v1/admin/organizations/".to_string(),
        format!("/api/v1/sessions/{id}/extra"),
        "/API/v1/sessions".to_string(),
        "/healthz/".to_string(),
        "/".to_string(),
    ];
    for path in &unknown {
        assert!(doc["paths"].get(path.as_str()).is_none(), "{path} is documented");
        let r = gw.http.get(path, None).await;
        assert_eq!(r.status, 404, "GET {path}: {}", preview(&r.body));
        assert_eq!(r.code(), "not_found", "GET {path}");
        assert_eq!(r.json["error"]["message"], "no such route", "GET {path}");
        assert_valid(&doc, "Error", &r.json);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_method_is_405_with_allow_from_document() {
    let gw = common::TestGateway::start().await;
    let doc = fetch_doc(&gw).await;
    let paths: BTreeMap<String, BTreeSet<String>> =
        doc_ops(&doc).into_iter().map(|(_, p)| (p.clone(), doc_methods(&doc, &p))).collect();
    let candidates = [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE, Method::OPTIONS];
    let mut checked = 0;
    for (pattern, methods) in &paths {
        for m in candidates.iter().filter(|m| !methods.contains(m.as_str())) {
            let path = concrete(pattern);
            let body = (*m == Method::POST || *m == Method::PATCH).then(|| Bytes::from_static(b"{}"));
            let r = gw.http.send(m.clone(), &path, None, body, &[]).await;
            let what = format!("{m} {path} → {} {}", r.status, preview(&r.body));
            assert_eq!(r.status, 405, "{what}");
            assert_eq!(r.code(), "method_not_allowed", "{what}");
            assert_valid(&doc, "Error", &r.json);
            let allow: BTreeSet<String> = r
                .headers
                .get("allow")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("no Allow header: {what}"))
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                // HEAD is served wherever GET is (RFC 9110), without its own operation.
                .filter(|s| !(s == "HEAD" && methods.contains("GET")))
                .collect();
            assert_eq!(&allow, methods, "Allow header vs the document: {what}");
            checked += 1;
        }
    }
    assert!(checked >= paths.len(), "only {checked} wrong-method requests sent");
}

/// Every `$ref` string in `v`, with where it was found.
fn refs(v: &Value, at: String, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => out.push((at.clone(), r.clone())),
                    _ => refs(x, format!("{at}/{k}"), out),
                }
            }
        }
        Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| refs(x, format!("{at}/{i}"), out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_ref_resolves_and_every_component_is_used() {
    let doc = wa_gateway::ops::openapi::document();
    let mut found = Vec::new();
    refs(&doc, String::new(), &mut found);
    assert!(!found.is_empty(), "the document uses no $ref at all");
    let mut used = BTreeSet::new();
    for (at, r) in &found {
        assert!(r.starts_with("#/components/"), "{at}: non-local $ref {r}");
        assert!(doc.pointer(&r[1..]).is_some_and(|t| !t.is_null()), "{at}: $ref {r} does not resolve");
        used.insert(r[1..].to_string());
    }
    for kind in ["schemas", "responses", "parameters"] {
        for name in doc["components"][kind].as_object().expect("component kind").keys() {
            let pointer = format!("/components/{kind}/{name}");
            assert!(used.contains(&pointer), "{pointer} is defined but never referenced");
        }
    }
    let codes = &doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"];
    for code in ["unauthorized", "forbidden", "not_found", "invalid_request", "invalid_cursor", "conflict",
        "method_not_allowed", "payload_too_large", "unsupported_media_type", "rate_limited", "internal", "unavailable"]
    {
        assert!(codes.as_array().is_some_and(|c| c.contains(&json!(code))), "Error.code lacks {code}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schema_check_itself_catches_mismatches() {
    let doc = wa_gateway::ops::openapi::document();
    let good = json!({"error": {"code": "not_found", "message": "x", "details": {}}});
    assert_valid(&doc, "Error", &good);
    let bad = [
        json!({"error": {"code": "not_found", "message": "x"}}),
        json!({"error": {"code": "not_found", "message": "x", "details": {}, "extra": 1}}),
        json!({"error": {"code": "nope", "message": "x", "details": {}}}),
        json!({"error": {"code": "not_found", "message": 1, "details": {}}}),
    ];
    let schema = json!({"$ref": "#/components/schemas/Error"});
    for b in &bad {
        let mut errs = Vec::new();
        validate(&doc, &schema, b, "Error", &mut errs);
        assert!(!errs.is_empty(), "accepted {b}");
    }
    let mut errs = Vec::new();
    validate(&doc, &json!({"$ref": "#/components/schemas/Nope"}), &good, "x", &mut errs);
    assert!(!errs.is_empty(), "accepted an unresolved $ref");
}

/// `v` has exactly the Session schema's keys, all required, and matches it.
fn assert_session_exact(doc: &Value, v: &Value) {
    let schema = &doc["components"]["schemas"]["Session"];
    let required: BTreeSet<&str> =
        schema["required"].as_array().expect("required").iter().filter_map(Value::as_str).collect();
    let properties: BTreeSet<&str> =
        schema["properties"].as_object().expect("properties").keys().map(String::as_str).collect();
    let actual: BTreeSet<&str> = v.as_object().expect("session object").keys().map(String::as_str).collect();
    assert_eq!(required.len(), 17, "the seed's Session has 17 fields");
    let optional: BTreeSet<&str> = properties.difference(&required).copied().collect();
    assert_eq!(optional, BTreeSet::from(["lastError"]), "Session: the one optional field beyond the seed's");
    let expected = if v.get("lastError").is_some() { &properties } else { &required };
    assert_eq!(&actual, expected, "real Session keys vs the schema");
    assert_eq!(schema["additionalProperties"], false, "Session must refuse extra keys");
    assert_valid(doc, "Session", v);
}

#[tokio::test(flavor = "multi_thread")]
async fn session_renderer_writes_the_session_schema_exactly() {
    use wa_gateway::api::sessions::{new_session, session_json, CreateSession};
    let doc = wa_gateway::ops::openapi::document();
    let body: CreateSession = serde_json::from_value(json!({"label": "x"})).expect("create body");
    let session = new_session(body, "org_a".into(), "user_1".into(), "gw-local-1".into(), true).expect("valid");
    let v: Value = serde_json::from_slice(&session_json(ulid::Ulid::generate(), &session)).expect("valid JSON");
    assert_session_exact(&doc, &v);
    assert!(v["phoneNumber"].is_null() && v["lastConnectedAt"].is_null(), "a fresh session: {v}");
}

/// The example on the seed page (`seed-admin-list-sessions.txt`), verbatim.
const SEED_PAGE: &str = r#"{"data": [{"autoRead": false, "createdAt": 1719662400000, "createdByUserId": "user_01J9DEF...",
    "gatewayId": "gw-sg-1", "id": "01J9ZX8K2QHV0M3T6R7P4N5W8C", "isAdminSession": false, "label": "Support line",
    "lastConnectedAt": 1719662400000, "organizationId": "org_01J9ABC...", "phoneNumber": "6281234567890",
    "presenceTyping": true, "ratePerHour": 600, "ratePerMin": 20, "status": "working", "updatedAt": 1719662400000,
    "waJid": "6281234567890@s.whatsapp.net", "waLid": "205227043110953@lid"}], "nextCursor": "string"}"#;

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_page_example_matches_the_schemas() {
    let doc = wa_gateway::ops::openapi::document();
    let page: Value = serde_json::from_str(SEED_PAGE).expect("seed JSON");
    assert_valid(&doc, "SessionList", &page);
    let session = &page["data"][0];
    let seed_keys: BTreeSet<&str> = session.as_object().expect("object").keys().map(String::as_str).collect();
    let schema = &doc["components"]["schemas"]["Session"];
    let props: BTreeSet<&str> = schema["properties"].as_object().expect("properties").keys().map(String::as_str).collect();
    let required: BTreeSet<&str> = schema["required"].as_array().expect("required").iter().filter_map(Value::as_str).collect();
    assert_eq!(seed_keys, required, "Session required properties vs the seed's fields");
    let extra: Vec<&str> = props.difference(&seed_keys).copied().collect();
    assert_eq!(extra, ["lastError"], "beyond the seed, only the failed session's lastError");
    // The nullable fields really accept null (a fresh session has them null).
    let mut fresh = session.clone();
    for k in ["phoneNumber", "waJid", "waLid", "lastConnectedAt"] {
        fresh[k] = Value::Null;
    }
    assert_valid(&doc, "Session", &fresh);
    assert_valid(&doc, "SessionList", &json!({"data": [], "nextCursor": null}));
    // And the others do not.
    for k in ["id", "label", "status", "createdAt", "autoRead", "ratePerMin"] {
        let mut bad = session.clone();
        bad[k] = Value::Null;
        let mut errs = Vec::new();
        validate(&doc, &schema.clone(), &bad, "Session", &mut errs);
        assert!(!errs.is_empty(), "Session accepted {k}: null");
    }
    let seed_error = json!({"error": {"code": "not_found", "details": {"property1": null, "property2": null}, "message": "session not found"}});
    assert_valid(&doc, "Error", &seed_error);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_session_matches_the_session_schema_exactly() {
    let gw = common::TestGateway::start().await;
    let doc = fetch_doc(&gw).await;
    let admin = gw.super_admin();
    let r = gw.http.post("/api/v1/admin/sessions", Some(&admin), json!({"organizationId": "org_a", "label": "x"})).await;
    assert_eq!(r.status, 201, "create admin session (needs login-JWT verification): {:?}", r.json);

    assert_session_exact(&doc, &r.json);
    assert_eq!(r.json["isAdminSession"], true);

    let list = gw.http.get("/api/v1/admin/sessions?organizationId=org_a", Some(&admin)).await;
    assert_eq!(list.status, 200, "{:?}", list.json);
    assert_valid(&doc, "SessionList", &list.json);
    assert_eq!(list.json["data"][0], r.json);

    let me = gw.http.get("/api/v1/me", Some(&admin)).await;
    assert_eq!(me.status, 200, "{:?}", me.json);
    assert_valid(&doc, "Me", &me.json);
}

/// (method, pattern, path, token, body, extra headers, expected status).
type Case<'a> = (Method, &'static str, String, &'a str, Option<Bytes>, Vec<(&'static str, &'static str)>, u16);

#[tokio::test(flavor = "multi_thread")]
async fn real_answers_match_their_documented_responses() {
    let gw = common::TestGateway::start().await;
    let doc = fetch_doc(&gw).await;
    let (admin, owner, member) = (gw.super_admin(), gw.owner("org_b"), gw.token("m", Some("org_b"), Some("member"), false));
    let sid = ulid::Ulid::generate().to_string();
    let json_body = |v: Value| Some(Bytes::from(v.to_string()));
    let cases: Vec<Case> = vec![
        (Method::POST, "/api/v1/admin/organizations", "/api/v1/admin/organizations".into(), &admin,
            json_body(json!({"id": "org_c", "name": "C", "maxSessions": 1})), vec![], 201),
        (Method::POST, "/api/v1/admin/organizations", "/api/v1/admin/organizations".into(), &admin,
            json_body(json!({"id": "org_c"})), vec![], 409),
        (Method::GET, "/api/v1/admin/organizations", "/api/v1/admin/organizations?limit=1".into(), &admin, None, vec![], 200),
        (Method::GET, "/api/v1/admin/organizations", "/api/v1/admin/organizations".into(), &owner, None, vec![], 403),
        (Method::PATCH, "/api/v1/admin/organizations/{id}", "/api/v1/admin/organizations/org_c".into(), &admin,
            json_body(json!({"maxSessions": null})), vec![], 200),
        (Method::PATCH, "/api/v1/admin/organizations/{id}", "/api/v1/admin/organizations/org_zz".into(), &admin,
            json_body(json!({"name": "Z"})), vec![], 404),
        (Method::POST, "/api/v1/admin/backup", "/api/v1/admin/backup".into(), &admin, None, vec![], 201),
        (Method::GET, "/api/v1/admin/sessions", "/api/v1/admin/sessions?limit=0".into(), &admin, None, vec![], 400),
        (Method::GET, "/api/v1/admin/sessions", "/api/v1/admin/sessions?cursor=abc".into(), &admin, None, vec![], 400),
        (Method::POST, "/api/v1/sessions", "/api/v1/sessions".into(), &owner, json_body(json!({"label": "a"})), vec![], 201),
        (Method::POST, "/api/v1/sessions", "/api/v1/sessions".into(), &owner, json_body(json!({"nope": 1})), vec![], 400),
        (Method::POST, "/api/v1/sessions", "/api/v1/sessions".into(), &owner, Some(Bytes::from_static(b"label=a")),
            vec![("content-type", "text/plain")], 415),
        (Method::POST, "/api/v1/sessions", "/api/v1/sessions".into(), &owner,
            Some(Bytes::from(vec![b' '; 1024 * 1024 + 1])), vec![], 413),
        (Method::POST, "/api/v1/sessions", "/api/v1/sessions".into(), &member, json_body(json!({})), vec![], 403),
        (Method::GET, "/api/v1/sessions", "/api/v1/sessions?status=working".into(), &member, None, vec![], 200),
        (Method::GET, "/api/v1/sessions/{id}", format!("/api/v1/sessions/{sid}"), &owner, None, vec![], 404),
        (Method::PATCH, "/api/v1/sessions/{id}", format!("/api/v1/sessions/{sid}"), &owner,
            json_body(json!({"label": "b"})), vec![], 404),
        (Method::DELETE, "/api/v1/sessions/{id}", format!("/api/v1/sessions/{sid}"), &owner, None, vec![], 404),
        (Method::POST, "/api/v1/api-keys", "/api/v1/api-keys".into(), &owner, json_body(json!({"name": "ci"})), vec![], 201),
        (Method::GET, "/api/v1/api-keys", "/api/v1/api-keys".into(), &owner, None, vec![], 200),
        (Method::DELETE, "/api/v1/api-keys/{id}", format!("/api/v1/api-keys/{sid}"), &owner, None, vec![], 404),
        (Method::GET, "/api/v1/me", "/api/v1/me".into(), &member, None, vec![], 200),
    ];
    let mut key = String::new();
    for (method, pattern, path, token, body, headers, expected) in cases {
        let r = gw.http.send(method.clone(), &path, Some(token), body, &headers).await;
        let what = format!("{method} {path} → {} {}", r.status, preview(&r.body));
        assert_eq!(r.status, expected, "{what}");
        assert_documented(&doc, method.as_str(), pattern, &r, &what);
        if let Some(k) = r.json["key"].as_str() {
            key = k.to_string();
        }
    }
    // The api-key kind of caller, and objects the store filled in.
    let me = gw.http.get("/api/v1/me", Some(&key)).await;
    assert_eq!(me.status, 200, "{:?}", me.json);
    assert_documented(&doc, "GET", "/api/v1/me", &me, "GET /api/v1/me (api-key)");
    let created = gw.http.post("/api/v1/sessions", Some(&key), json!({"label": "k", "phoneNumber": "6281234567890"})).await;
    assert_eq!(created.status, 201, "{:?}", created.json);
    assert_session_exact(&doc, &created.json);
    let id = created.json["id"].as_str().unwrap_or("");
    let del = gw.http.delete(&format!("/api/v1/sessions/{id}"), Some(&key)).await;
    assert_eq!(del.status, 204, "{:?}", del.json);
    assert_documented(&doc, "DELETE", "/api/v1/sessions/{id}", &del, "DELETE session");
}
