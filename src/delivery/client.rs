//! One delivery attempt over HTTP: resolve the URL's host and refuse
//! non-public addresses (again at every attempt: DNS rebinding) unless
//! private URLs are allowed, POST to a checked address, read at most 1 KiB of
//! the answer and drop the rest. The address checks, the TLS setup and the
//! error texts are media fetching's ([`media_fetch`]); no text names an
//! address the host resolved to (the deliveries log keeps these texts).
//!
//! Connections are kept open between attempts, per webhook ([`Clients`]):
//! a busy endpoint is not paid a TCP and TLS handshake per event. Reuse is
//! safe against rebinding because requests go to the checked IP (the pool
//! is keyed by it), and each webhook's TLS name is its own host. An answer
//! longer than 1 KiB closes its connection.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HOST, RETRY_AFTER, USER_AGENT};
use hyper::{Request, Uri};
use hyper_rustls::{DefaultServerNameResolver, FixedServerNameResolver, HttpsConnector};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
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

/// `Retry-After`: seconds, or an HTTP date (RFC 9110 §10.2.3); a date in
/// the past is no wait.
fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(std::time::SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// An HTTP(S) client of one endpoint.
type Endpoint = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Clients kept past most webhooks' lifetimes at most (then all start afresh).
const MAX_CLIENTS: usize = 1024;
/// How long an unused connection stays open.
const IDLE: Duration = Duration::from_secs(30);

/// One client per (webhook, scheme and host of its URL): its idle
/// connections are that endpoint's alone.
#[derive(Default)]
pub struct Clients {
    by_endpoint: Mutex<HashMap<(u128, String), Endpoint>>,
}

impl Clients {
    fn get(&self, webhook: u128, target: &media_fetch::Target, tls: &Arc<rustls::ClientConfig>) -> Result<Endpoint, String> {
        let key = (webhook, format!("{}://{}", if target.https { "https" } else { "http" }, target.authority));
        let mut map = self.by_endpoint.lock().map_err(|_| "the client pool is poisoned".to_string())?;
        if let Some(c) = map.get(&key) {
            return Ok(c.clone());
        }
        let server_name: Arc<dyn hyper_rustls::ResolveServerName + Send + Sync> = if target.https {
            let name = ServerName::try_from(target.host.clone()).map_err(|e| format!("host {:?} is not a TLS server name: {e}", target.host))?;
            Arc::new(FixedServerNameResolver::new(name))
        } else {
            Arc::new(DefaultServerNameResolver::default())
        };
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        http.set_nodelay(true);
        let connector = HttpsConnector::new(http, tls.clone(), false, server_name);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(IDLE)
            .build(connector);
        if map.len() >= MAX_CLIENTS {
            map.clear();
        }
        map.insert(key, client.clone());
        Ok(client)
    }
}

/// POSTs `body` to `webhook`'s `url` within `timeout` (everything included).
pub async fn post(clients: &Clients, webhook: u128, url: &str, body: Bytes, signed: Signed<'_>, allow_private: bool, timeout: Duration) -> Answer {
    let started = Instant::now();
    let result = tokio::time::timeout(timeout, post_inner(clients, webhook, url, body, signed, allow_private)).await;
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

async fn post_inner(
    clients: &Clients,
    webhook: u128,
    url: &str,
    body: Bytes,
    signed: Signed<'_>,
    allow_private: bool,
) -> Result<(u16, Option<Duration>, Vec<u8>), String> {
    let target = media_fetch::parse_url(url).map_err(text)?;
    let addrs = media_fetch::resolve_checked(&target, allow_private).await.map_err(text)?;
    let tls = media_fetch::tls_config().map_err(text)?;
    let path = target.uri.path_and_query().map(|pq| pq.as_str()).filter(|p| !p.is_empty()).unwrap_or("/");
    let scheme = if target.https { "https" } else { "http" };
    let client = clients.get(webhook, &target, &tls)?;
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
        match client.request(request).await {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(retry_after);
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
                // A body read to its end frees the connection for the next
                // attempt; one cut at 1 KiB closes it.
                return Ok((status, retry_after, kept));
            }
            Err(e) if e.is_connect() => {
                last_error = format!("connecting to {}: {}", target.host, media_fetch::chain(&e));
            }
            Err(e) => return Err(format!("posting to {}: {}", target.host, media_fetch::chain(&e))),
        }
    }
    Err(last_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        assert_eq!(retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO), "in the past");
        let later = std::time::SystemTime::now() + Duration::from_secs(3600);
        let wait = retry_after(&httpdate::fmt_http_date(later)).expect("a date");
        assert!(wait > Duration::from_secs(3590) && wait <= Duration::from_secs(3600), "{wait:?}");
        assert_eq!(retry_after("soon"), None);
        assert_eq!(retry_after("-5"), None);
        assert_eq!(retry_after("18446744073709551615"), Some(Duration::from_secs(u64::MAX)));
    }

    proptest::proptest! {
        /// Whatever a receiver says — any u64 of seconds, any HTTP date —
        /// the wait it gets is at most the schedule's longest step (with its jitter), and its
        /// due time is not before now.
        #[test]
        fn any_retry_after_waits_at_most_the_longest_step(secs: u64, date_secs in 0u64..253_402_300_799, attempt in 1u32..=3, seed: u64) {
            let schedule = vec![Duration::from_secs(1), Duration::from_secs(2), Duration::from_secs(4)];
            let date = httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_secs(date_secs));
            for header in [secs.to_string(), date] {
                let ra = retry_after(&header);
                proptest::prop_assert!(ra.is_some(), "{}", header);
                let wait = crate::delivery::retry::next_delay(&schedule, attempt, ra, seed).expect("in schedule");
                proptest::prop_assert!(wait <= Duration::from_millis(4_400), "{} -> {:?}", header, wait);
                proptest::prop_assert!(wait >= Duration::from_millis(900), "{} -> {:?}", header, wait);
                let now = 1_800_000_000_000i64;
                let at = crate::delivery::retry::due_at(now, wait);
                proptest::prop_assert!(at >= now + 900 && at <= now + 4_400);
            }
        }
    }
}
