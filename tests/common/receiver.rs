//! Loopback webhook receivers for the delivery tests: each records what the
//! gateway sends it and answers as a script says (statuses, delays, hangs,
//! `Retry-After`), plus the small API steps those tests share.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{HeaderMap, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use wa_gateway::config::ServeConfig;

use crate::common::{self, Http, TestGateway};

/// What a receiver got.
#[derive(Clone, Debug)]
pub struct Got {
    pub method: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When it arrived.
    pub at: Instant,
}

impl Got {
    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
    }
    pub fn id(&self) -> String {
        self.header("webhook-id")
    }
}

/// How a receiver answers its n-th request (0-based).
#[derive(Clone, Copy)]
pub enum Reply {
    Status(u16),
    /// 200 after this long.
    After(Duration),
    Hang,
    /// This status with this `Retry-After`.
    RetryAfter(u16, &'static str),
    /// 200 once [`GATE`] opens (the kill -9 test holds deliveries back
    /// while it writes its events).
    Gated,
}

/// Opened by the kill -9 test once its events are written.
pub static GATE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub struct Receiver {
    pub addr: SocketAddr,
    pub got: Arc<Mutex<Vec<Got>>>,
}

impl Receiver {
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }
    pub fn got(&self) -> Vec<Got> {
        self.got.lock().expect("lock").clone()
    }
    /// Waits until `n` requests arrived (within `secs`).
    pub async fn wait(&self, n: usize, secs: u64) -> Vec<Got> {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let g = self.got();
            if g.len() >= n {
                return g;
            }
            assert!(Instant::now() < end, "receiver got {} of {n} requests", g.len());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A loopback HTTP receiver answering as `script` says.
pub async fn receiver(script: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Receiver {
    receiver_by(move |n, _| script(n)).await
}

/// A loopback HTTP receiver answering as `script` says from the request's
/// number and body.
pub async fn receiver_by(script: impl Fn(usize, &Bytes) -> Reply + Send + Sync + 'static) -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let got: Arc<Mutex<Vec<Got>>> = Arc::default();
    let script = Arc::new(script);
    let shared = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let (got, script) = (shared.clone(), script.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (got, script) = (got.clone(), script.clone());
                    async move {
                        let method = req.method().to_string();
                        let headers = req.headers().clone();
                        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let n = {
                            let mut g = got.lock().expect("lock");
                            g.push(Got { method, headers, body: body.clone(), at: Instant::now() });
                            g.len() - 1
                        };
                        match script(n, &body) {
                            Reply::Status(s) => {
                                Ok::<_, std::convert::Infallible>(Response::builder().status(s).body(Full::new(Bytes::from(format!("answer {n}")))).expect("resp"))
                            }
                            Reply::Gated => {
                                while !GATE.load(std::sync::atomic::Ordering::SeqCst) {
                                    tokio::time::sleep(Duration::from_millis(5)).await;
                                }
                                Ok(Response::new(Full::new(Bytes::new())))
                            }
                            Reply::After(wait) => {
                                tokio::time::sleep(wait).await;
                                Ok(Response::new(Full::new(Bytes::new())))
                            }
                            Reply::RetryAfter(s, value) => Ok(Response::builder()
                                .status(s)
                                .header("retry-after", value)
                                .body(Full::new(Bytes::new()))
                                .expect("resp")),
                            Reply::Hang => {
                                tokio::time::sleep(Duration::from_secs(3600)).await;
                                Ok(Response::new(Full::new(Bytes::new())))
                            }
                        }
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    Receiver { addr, got }
}

/// A sim gateway that may deliver to loopback, with retry `schedule`.
pub async fn gateway(schedule: &[u64], f: impl FnOnce(&mut ServeConfig)) -> TestGateway {
    let schedule: Vec<Duration> = schedule.iter().map(|ms| Duration::from_millis(*ms)).collect();
    TestGateway::start_with(move |c| {
        common::sim_engine(c, 20, 80);
        c.messaging.allow_private_urls = true;
        c.delivery.retry_schedule = schedule;
        f(c);
    })
    .await
}

pub async fn incoming(h: &Http, t: &str, session: &str, text: &str) {
    let r = h.post(&format!("/api/v1/sessions/{session}/sim/incoming"), Some(t), json!({"from": "6281299999999", "text": text})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
}

/// Creates a webhook; returns (id, secret).
pub async fn webhook(h: &Http, t: &str, url: &str, events: Value) -> (String, String) {
    let r = h.post("/api/v1/webhooks", Some(t), json!({"url": url, "events": events})).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    (r.json["webhook"]["id"].as_str().expect("id").to_string(), r.json["secret"].as_str().expect("secret").to_string())
}

/// An independent Standard Webhooks check: does one of the header's `v1,`
/// signatures match HMAC-SHA256(secret bytes, "id.timestamp.body")?
/// Whether `got` carries a valid Standard Webhooks signature by `secret`,
/// as the spec's own Rust library (`standardwebhooks`) checks it.
pub fn verifies(secret: &str, got: &Got) -> bool {
    standardwebhooks::Webhook::new(secret).expect("a whsec_ secret").verify(&got.body, &got.headers).is_ok()
}

pub async fn attempts(h: &Http, t: &str, hook: &str) -> Vec<Value> {
    common::walk(h, &format!("/api/v1/webhooks/{hook}/deliveries"), t, 2).await
}

