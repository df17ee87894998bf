//! Where the verification keys come from, and how they are kept fresh.
//!
//! A remote source fetches the JWKS over HTTPS (or plain HTTP to loopback
//! only), refreshes it in the background, refetches on an unknown `kid` at
//! most once per cooldown with a single request in flight, and keeps serving
//! the last good set for a bounded time when the endpoint is down. A fixed
//! source (the embedded issuer) never fetches and never goes stale.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{ACCEPT, CONTENT_LENGTH, USER_AGENT};
use hyper::{Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::{JwksError, KeySet};

/// Timing and size limits for a remote JWKS source.
#[derive(Clone, Debug)]
pub struct JwksConfig {
    /// Background refresh period (default 10 min).
    pub refresh_every: Duration,
    /// Minimum time between refetches triggered by an unknown `kid` (default 30 s).
    pub unknown_kid_cooldown: Duration,
    /// How long the last good set stays usable after the last success (default 24 h).
    pub max_stale: Duration,
    /// Total time allowed for one fetch, body included (default 5 s).
    pub fetch_timeout: Duration,
    /// Largest accepted body in bytes (default 256 KiB).
    pub max_body: usize,
}

impl Default for JwksConfig {
    fn default() -> Self {
        JwksConfig {
            refresh_every: Duration::from_secs(600),
            unknown_kid_cooldown: Duration::from_secs(30),
            max_stale: Duration::from_secs(24 * 3600),
            fetch_timeout: Duration::from_secs(5),
            max_body: 256 * 1024,
        }
    }
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// The mutable part of a remote source, swapped as a whole.
#[derive(Default)]
struct Loaded {
    keys: Option<Arc<KeySet>>,
    last_success: Option<Instant>,
}

struct Remote {
    url: Uri,
    config: JwksConfig,
    client: HttpClient,
    loaded: RwLock<Loaded>,
    /// Held for the whole of every fetch: at most one request in flight.
    fetch_lock: tokio::sync::Mutex<()>,
    /// When the last unknown-`kid` refetch started.
    last_kid_fetch: Mutex<Option<Instant>>,
}

enum Kind {
    Fixed(Arc<KeySet>),
    Remote(Box<Remote>),
}

/// A source of verification keys: a remote JWKS endpoint or a fixed set.
pub struct JwksSource {
    kind: Kind,
    generation: AtomicU64,
    fetches: AtomicU64,
}

impl JwksSource {
    /// A source fetching `url`. Checks the URL (https, or http to a loopback
    /// host only) and builds the client; performs no I/O.
    pub fn remote(url: &str, config: JwksConfig) -> Result<JwksSource, JwksError> {
        let uri = check_url(url)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| JwksError::Http(format!("TLS setup: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(JwksSource {
            kind: Kind::Remote(Box::new(Remote {
                url: uri,
                config,
                client,
                loaded: RwLock::new(Loaded::default()),
                fetch_lock: tokio::sync::Mutex::new(()),
                last_kid_fetch: Mutex::new(None),
            })),
            generation: AtomicU64::new(0),
            fetches: AtomicU64::new(0),
        })
    }

    /// A fixed key set (the embedded issuer): never fetched, never stale.
    pub fn fixed(keys: KeySet) -> JwksSource {
        JwksSource {
            kind: Kind::Fixed(Arc::new(keys)),
            generation: AtomicU64::new(1),
            fetches: AtomicU64::new(0),
        }
    }

    /// Whether this source fetches from a URL.
    pub fn is_remote(&self) -> bool {
        matches!(self.kind, Kind::Remote(_))
    }

    /// Fetches now (waiting for any fetch in flight first). On success the key
    /// set is replaced atomically and the generation bumped; on failure the old
    /// set is kept. Returns the number of usable keys.
    pub async fn refresh(&self) -> Result<usize, JwksError> {
        match &self.kind {
            Kind::Fixed(keys) => Ok(keys.len()),
            Kind::Remote(remote) => {
                let _one_at_a_time = remote.fetch_lock.lock().await;
                self.fetch_and_replace(remote).await
            }
        }
    }

    /// The current keys; `None` if never loaded or the last successful fetch
    /// is older than `max_stale`.
    pub fn current(&self) -> Option<Arc<KeySet>> {
        match &self.kind {
            Kind::Fixed(keys) => Some(keys.clone()),
            Kind::Remote(remote) => {
                let loaded = remote.loaded.read().unwrap_or_else(|e| e.into_inner());
                let fresh = loaded
                    .last_success
                    .is_some_and(|t| t.elapsed() <= remote.config.max_stale);
                if fresh {
                    loaded.keys.clone()
                } else {
                    None
                }
            }
        }
    }

    /// Bumped on every successful replacement of the key set.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Number of HTTP fetch attempts made so far.
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Refetches because a token named an unknown `kid`: at most once per
    /// cooldown, one request in flight. Callers arriving while a fetch runs
    /// wait for it. True if fresh keys were loaded (by this call or by the
    /// fetch it waited for), so the caller should look again.
    pub async fn refetch_for_unknown_kid(&self) -> bool {
        let Kind::Remote(remote) = &self.kind else {
            return false;
        };
        let seen = self.generation();
        let _one_at_a_time = remote.fetch_lock.lock().await;
        if self.generation() != seen {
            // Someone else's fetch finished while we waited.
            return true;
        }
        {
            let mut last = remote
                .last_kid_fetch
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| t.elapsed() < remote.config.unknown_kid_cooldown) {
                return false;
            }
            *last = Some(Instant::now());
        }
        self.fetch_and_replace(remote).await.is_ok()
    }

    /// Refreshes every `refresh_every` (sooner after a failure) until `shutdown`
    /// turns true or its sender is dropped. Loads immediately if never loaded.
    /// A fixed source returns at once.
    pub fn spawn_refresher(
        self: &Arc<Self>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let Kind::Remote(remote) = &this.kind else {
                return;
            };
            let every = remote.config.refresh_every;
            let retry = every.min(
                remote
                    .config
                    .unknown_kid_cooldown
                    .max(Duration::from_secs(1)),
            );
            let mut wait = if this.generation() == 0 {
                Duration::ZERO
            } else {
                every
            };
            loop {
                if *shutdown.borrow() {
                    return;
                }
                tokio::select! {
                    changed = shutdown.changed() => {
                        if changed.is_err() { return; }
                        continue;
                    }
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = match this.refresh().await {
                    Ok(_) => every,
                    Err(_) => retry,
                };
            }
        })
    }

    /// One fetch; the caller holds `fetch_lock`.
    async fn fetch_and_replace(&self, remote: &Remote) -> Result<usize, JwksError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let result = match tokio::time::timeout(remote.config.fetch_timeout, fetch(remote)).await {
            Ok(Ok(body)) => KeySet::parse(&body),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(JwksError::Timeout),
        };
        let keys = match result {
            Ok(keys) if keys.is_empty() => Err(JwksError::Empty),
            other => other,
        };
        match keys {
            Ok(keys) => {
                let count = keys.len();
                let mut loaded = remote.loaded.write().unwrap_or_else(|e| e.into_inner());
                loaded.keys = Some(Arc::new(keys));
                loaded.last_success = Some(Instant::now());
                self.generation.fetch_add(1, Ordering::SeqCst);
                drop(loaded);
                tracing::debug!(url = %remote.url, keys = count, "JWKS loaded");
                Ok(count)
            }
            Err(e) => {
                tracing::warn!(url = %remote.url, error = %e, "JWKS fetch failed; keeping the previous keys");
                Err(e)
            }
        }
    }
}

/// GET the JWKS body: no redirects, 2xx only, body capped while streaming.
async fn fetch(remote: &Remote) -> Result<Vec<u8>, JwksError> {
    let request = Request::get(remote.url.clone())
        .header(ACCEPT, "application/json")
        .header(
            USER_AGENT,
            concat!("wa-gateway/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::<Bytes>::new())
        .map_err(|e| JwksError::Http(e.to_string()))?;
    let response = remote
        .client
        .request(request)
        .await
        .map_err(|e| JwksError::Http(chain(&e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(JwksError::Status(status.as_u16()));
    }
    let max = remote.config.max_body;
    let declared = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(JwksError::TooLarge);
    }
    let mut body = response.into_body();
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| JwksError::Http(chain(&e)))?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > max {
                return Err(JwksError::TooLarge);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// An error and its sources, joined (hyper's top-level messages are terse).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

/// Accepts `https://host/...`, or `http://` to 127.0.0.0/8, ::1 or `localhost`.
fn check_url(url: &str) -> Result<Uri, JwksError> {
    let uri: Uri = url
        .parse()
        .map_err(|_| JwksError::InvalidUrl("not a URL".into()))?;
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| JwksError::InvalidUrl("no host".into()))?;
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(JwksError::InvalidUrl("credentials in the URL".into()));
    }
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if is_loopback(host) => Ok(uri),
        Some("http") => Err(JwksError::InvalidUrl(
            "http:// is only allowed to loopback hosts".into(),
        )),
        _ => Err(JwksError::InvalidUrl("scheme must be https".into())),
    }
}

fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => v6.is_loopback(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_rules() {
        for ok in [
            "https://idp.example.com/.well-known/jwks.json",
            "http://127.0.0.1:8080/jwks",
            "http://127.9.9.9/jwks",
            "http://[::1]:9000/jwks",
            "http://LOCALHOST/jwks",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.com/jwks",
            "http://10.0.0.1/jwks",
            "http://127.0.0.1.evil.com/jwks",
            "http://[::2]/jwks",
            "ftp://127.0.0.1/jwks",
            "https://user:pw@idp.example.com/jwks",
            "/jwks",
            "not a url",
        ] {
            assert!(
                matches!(check_url(bad), Err(JwksError::InvalidUrl(_))),
                "{bad}"
            );
        }
    }
}
