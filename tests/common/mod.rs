//! Test harness: starts the real gateway in-process on 127.0.0.1:0 with a data
//! directory in a temp dir, and speaks real HTTP to it.
#![allow(dead_code)]

pub mod rng;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use tempfile::TempDir;
use wa_gateway::app::{App, Gateway};
use wa_gateway::config::ServeConfig;

/// A response, fully read.
#[derive(Debug)]
pub struct Res {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub json: Value,
}

impl Res {
    /// The `error.code` of an error envelope.
    pub fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }
}

/// A plain HTTP/1.1 client.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    pub base: String,
}

impl Http {
    pub fn new(base: String) -> Http {
        Http { client: Client::builder(TokioExecutor::new()).build_http(), base }
    }

    /// Sends a request with optional bearer token, JSON body and extra headers.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Bytes>,
        headers: &[(&str, &str)],
    ) -> Res {
        let mut b = Request::builder().method(method).uri(format!("{}{}", self.base, path));
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let has_ct = headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        if body.is_some() && !has_ct {
            b = b.header("content-type", "application/json");
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(Full::new(body.unwrap_or_default())).expect("request");
        let resp = tokio::time::timeout(Duration::from_secs(30), self.client.request(req))
            .await
            .expect("request timed out")
            .expect("request failed");
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        Res { status, headers, body, json }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Res {
        self.send(Method::GET, path, token, None, &[]).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Res {
        self.send(Method::POST, path, token, Some(Bytes::from(body.to_string())), &[]).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Res {
        self.send(Method::PATCH, path, token, Some(Bytes::from(body.to_string())), &[]).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Res {
        self.send(Method::DELETE, path, token, None, &[]).await
    }
}

/// A gateway running in this process.
pub struct TestGateway {
    pub dir: TempDir,
    pub http: Http,
    gateway: Option<Gateway>,
}

impl TestGateway {
    /// Starts with the embedded issuer.
    pub async fn start() -> TestGateway {
        TestGateway::start_with(|_| {}).await
    }

    /// Starts with a config adjusted by `f`.
    pub async fn start_with(f: impl FnOnce(&mut ServeConfig)) -> TestGateway {
        let dir = tempfile::tempdir().expect("tempdir");
        TestGateway::start_in(dir, f).await
    }

    /// Starts on an existing data directory.
    pub async fn start_in(dir: TempDir, f: impl FnOnce(&mut ServeConfig)) -> TestGateway {
        let mut config = ServeConfig::new(dir.path());
        // Hermetic: the whatsapp engine dials a closed loopback port with a
        // pinned version (nothing leaves the machine; connects fail fast).
        config.whatsapp.ws_url = Some(closed_loopback_ws());
        config.whatsapp.version = Some((2, 3000, 1_000_000_000));
        // Rate limits off unless a test turns them on (tests/abuse.rs does):
        // suites fire requests far faster than any principal's budget.
        config.rate_limit = None;
        config.auth_failure_limit = None;
        f(&mut config);
        let app = App::build(config).expect("build app");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let gateway = Gateway::start(app, listener).expect("start");
        let http = Http::new(format!("http://{}", gateway.addr()));
        TestGateway { dir, http, gateway: Some(gateway) }
    }

    pub fn app(&self) -> &App {
        &self.gateway.as_ref().expect("running").app
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.gateway.as_ref().expect("running").addr()
    }

    /// Mints an embedded-issuer login JWT.
    pub fn token(&self, sub: &str, org: Option<&str>, role: Option<&str>, super_admin: bool) -> String {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
        let mut claims = json!({"sub": sub, "iss": "wa-gateway", "iat": now, "exp": now + 3600});
        if let Some(o) = org {
            claims["org_id"] = json!(o);
        }
        if let Some(r) = role {
            claims["org_role"] = json!(r);
        }
        if super_admin {
            claims["platform_role"] = json!("super_admin");
        }
        self.app().issuer.as_ref().expect("embedded issuer").mint(&claims)
    }

    pub fn super_admin(&self) -> String {
        self.token("root", None, None, true)
    }

    pub fn owner(&self, org: &str) -> String {
        self.token(&format!("owner-of-{org}"), Some(org), Some("owner"), false)
    }

    /// Stops the server and closes the data file; returns the data dir.
    pub async fn stop(mut self) -> TempDir {
        if let Some(g) = self.gateway.take() {
            g.shutdown().await.expect("clean shutdown");
        }
        self.dir
    }
}

/// The sim engine with quick reconnects (3 attempts, backoff from `base_ms`
/// up to `max_ms`), for lifecycle tests that must settle fast.
pub fn sim_engine(c: &mut ServeConfig, base_ms: u64, max_ms: u64) {
    c.engine = wa_gateway::engine::EngineKind::Sim;
    c.retry = wa_gateway::engine::manager::ManagerConfig {
        max_attempts: 3,
        backoff_base: Duration::from_millis(base_ms),
        backoff_max: Duration::from_millis(max_ms),
        ..Default::default()
    };
}

/// A `ws://` URL on a loopback port nothing listens on.
pub fn closed_loopback_ws() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    format!("ws://{addr}/ws/chat")
}

/// Creates a stopped session through the org API and returns its JSON
/// (`"start": false`: tests of the appliance keep the engine out of it).
pub async fn create_session(http: &Http, token: &str, label: &str) -> Value {
    let r = http.post("/api/v1/sessions", Some(token), json!({"label": label, "start": false})).await;
    assert_eq!(r.status, 201, "create session: {:?}", r.json);
    r.json
}

/// Walks every page of a list and returns all items.
pub async fn walk(http: &Http, path: &str, token: &str, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    let sep = if path.contains('?') { '&' } else { '?' };
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
            None => format!("{path}{sep}limit={limit}"),
        };
        let r = http.get(&url, Some(token)).await;
        assert_eq!(r.status, 200, "{url}: {:?}", r.json);
        out.extend(r.json["data"].as_array().expect("data").iter().cloned());
        match r.json["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

/// Waits (up to 5 s) until session `id` is in status `want`.
pub async fn wait_status(h: &Http, t: &str, id: &str, want: &str) {
    for _ in 0..500 {
        if h.get(&format!("/api/v1/sessions/{id}"), Some(t)).await.json["status"] == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("session never reached {want}");
}

/// On the sim engine: creates a session with `settings` (merged into the
/// create body), starts it and links a phone; returns its id once `working`.
pub async fn sim_working_session(h: &Http, t: &str, settings: Value) -> String {
    let mut body = json!({"label": "sim", "start": true});
    for (k, v) in settings.as_object().cloned().unwrap_or_default() {
        body[k] = v;
    }
    let r = h.post("/api/v1/sessions", Some(t), body).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let id = r.json["id"].as_str().expect("id").to_string();
    wait_status(h, t, &id, "scan_qr_code").await;
    let r = h.post(&format!("/api/v1/sessions/{id}/sim/pair"), Some(t), json!({"phoneNumber": "6281100000001"})).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    wait_status(h, t, &id, "working").await;
    id
}
