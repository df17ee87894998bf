//! One delivery attempt over HTTP: resolve the URL's host and refuse
//! non-public addresses (again at every attempt: DNS rebinding) unless
//! private URLs are allowed, connect to a checked address, POST, read at most
//! 1 KiB of the answer and drop the connection. The address checks, the TLS
//! setup and the error texts are media fetching's ([`media_fetch`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HOST, RETRY_AFTER, USER_AGENT};
use hyper::{Request, Uri};
use hyper_rustls::{DefaultServerNameResolver, FixedServerNameResolver, HttpsConnector};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::ServerName;

use crate::messaging::media_fetch::{self, MediaError};

/// Bytes of an answer kept for the delivery log.
pub const MAX_RESPONSE: usize = 1024;

/// What an attempt got.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status, when the endpoint answered.
    pub status: Option<u16>,
    /// Why there is no usable answer (refusal, network, timeout).
    pub error: Option<String>,
    /// `Retry-After` in seconds, when given.
    pub retry_after: Option<Duration>,
    /// At most [`MAX_RESPONSE`] bytes of the body.
    pub body: Vec<u8>,
    pub latency: Duration,
}

/// The signed request's headers besides the body.
pub struct Signed<'a> {
    pub webhook_id: &'a str,
    pub timestamp: i64,
    pub signature: &'a str,
}

/// POSTs `body` to `url` within `timeout` (everything included).
pub async fn post(url: &str, body: Bytes, signed: Signed<'_>, allow_private: bool, timeout: Duration) -> Answer {
    let started = Instant::now();
    let result = tokio::time::timeout(timeout, post_inner(url, body, signed, allow_private)).await;
    let latency = started.elapsed();
    match result {
        Ok(Ok((status, retry_after, body))) => Answer { status: Some(status), error: None, retry_after, body, latency },
        Ok(Err(e)) => Answer { status: None, error: Some(e), retry_after: None, body: Vec::new(), latency },
        Err(_) => Answer {
            status: None,
            error: Some(format!("timed out after {} ms", timeout.as_millis())),
            retry_after: None,
            body: Vec::new(),
            latency,
        },
    }
}

fn text(e: MediaError) -> String {
    match e {
        MediaError::PrivateAddress(why) => {
            format!("refused: {why}; private, loopback and link-local addresses need --allow-private-urls")
        }
        MediaError::Fetch(why) | MediaError::BadUrl(why) => why,
        other => other.to_string(),
    }
}

async fn post_inner(url: &str, body: Bytes, signed: Signed<'_>, allow_private: bool) -> Result<(u16, Option<Duration>, Vec<u8>), String> {
    let target = media_fetch::parse_url(url).map_err(text)?;
    let addrs = media_fetch::resolve_checked(&target, allow_private).await.map_err(text)?;
    let tls = media_fetch::tls_config().map_err(text)?;
    let path = target.uri.path_and_query().map(|pq| pq.as_str()).filter(|p| !p.is_empty()).unwrap_or("/");
    let scheme = if target.https { "https" } else { "http" };
    let server_name: Arc<dyn hyper_rustls::ResolveServerName + Send + Sync> = if target.https {
        let name = ServerName::try_from(target.host.clone()).map_err(|e| format!("host {:?} is not a TLS server name: {e}", target.host))?;
        Arc::new(FixedServerNameResolver::new(name))
    } else {
        Arc::new(DefaultServerNameResolver::default())
    };
    let mut last_error = String::from("no address to connect to");
    for addr in &addrs {
        let ip_authority = match addr {
            SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
            SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        };
        let uri: Uri = format!("{scheme}://{ip_authority}{path}").parse().map_err(|e| format!("cannot rebuild the URL: {e}"))?;
        let request = Request::post(uri)
            .header(HOST, target.authority.as_str())
            .header(USER_AGENT, concat!("wa-gateway/", env!("CARGO_PKG_VERSION")))
            .header(CONTENT_TYPE, "application/json")
            .header("webhook-id", signed.webhook_id)
            .header("webhook-timestamp", signed.timestamp.to_string())
            .header("webhook-signature", signed.signature)
            .body(Full::new(body.clone()))
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        http.set_nodelay(true);
        let connector = HttpsConnector::new(http, tls.clone(), false, server_name.clone());
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(0).build(connector);
        match client.request(request).await {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let mut body = response.into_body();
                let mut kept = Vec::new();
                while kept.len() < MAX_RESPONSE {
                    match body.frame().await {
                        Some(Ok(frame)) => {
                            if let Ok(chunk) = frame.into_data() {
                                let room = MAX_RESPONSE - kept.len();
                                kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
                            }
                        }
                        // A body cut short still leaves the status.
                        Some(Err(_)) | None => break,
                    }
                }
                // Dropping the body (and the pool-less client) closes the connection.
                return Ok((status, retry_after, kept));
            }
            Err(e) if e.is_connect() => {
                last_error = format!("connecting to {} ({addr}): {}", target.host, media_fetch::chain(&e));
            }
            Err(e) => return Err(format!("posting to {} ({addr}): {}", target.host, media_fetch::chain(&e))),
        }
    }
    Err(last_error)
}
