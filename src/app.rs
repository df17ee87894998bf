//! The application: the open store, the authenticator and the metrics that
//! every handler shares, and the `serve` lifecycle (start, signal, drain, close).

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{HeaderValue, ORIGIN};
use hyper::HeaderMap;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::page_cache::PageCache;
use crate::engine::manager::Manager;
use crate::engine::sim::SimEngine;
use crate::engine::wa_client::WhatsappEngine;
use crate::engine::{Engine, EngineKind};
use crate::auth::issuer::{Issuer, IssuerError, DEFAULT_ISSUER};
use crate::auth::jwks::{JwksError, JwksSource};
use crate::auth::jwt::{VerifyOptions, Verifier, DEFAULT_LEEWAY_SECS};
use crate::auth::{Authenticator, OrgAccess, Permission, Principal};
use crate::config::ServeConfig;
use crate::http::server::{self, RunningServer};
use crate::http::limits::Limits;
use crate::http::rate_limit::{self, retry_after_secs};
use crate::http::{ApiError, ErrorCode, Req};
use crate::ops::metrics::Metrics;
use crate::messaging::Messaging;
use crate::store::committer::Committer;
use crate::store::{data_file, Store, StoreError, StoreResult};

/// Why the gateway could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    Store(StoreError),
    Issuer(IssuerError),
    Jwks(JwksError),
    Io(std::io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Store(e) => write!(f, "{e}"),
            StartError::Issuer(e) => write!(f, "{e}"),
            StartError::Jwks(e) => write!(f, "--jwks-url: {e}"),
            StartError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// State shared by every request.
pub struct App {
    pub store: Arc<Store>,
    pub auth: Authenticator,
    pub config: ServeConfig,
    pub metrics: Metrics,
    /// Present when the gateway is its own issuer.
    pub issuer: Option<Issuer>,
    /// Rendered session-list pages, valid while the store version holds.
    pub pages: PageCache,
    /// Runs sessions on the configured engine.
    pub engine: Arc<Manager>,
    /// The sim engine's phone controls, when `--engine sim`.
    pub sim: Option<SimEngine>,
    /// Fixed responses mounted by benchmarks (never by `serve`).
    pub extra_static: Vec<(String, Bytes)>,
    /// Per-principal and failed-auth rate limits.
    pub limits: Limits,
    /// Group commit of message writes.
    pub committer: Arc<Committer>,
    /// Send queues and inbound messages.
    pub messaging: Arc<Messaging>,
    /// Webhook delivery.
    pub delivery: Arc<crate::delivery::Delivery>,
    /// The bytes of media read, fetched or decoded at once (`--media-fetch-budget`).
    pub media_budget: crate::messaging::media_budget::MediaBudget,
    /// Contacts' about texts and pictures, kept an hour (CONTRACT §12).
    pub directory: crate::directory::cache::DirectoryCache,
}

impl App {
    /// Opens the data file and sets up auth. Does no network I/O.
    pub fn build(config: ServeConfig) -> Result<App, StartError> {
        let store = Arc::new(Store::open(&data_file(&config.data_dir), config.cache_bytes).map_err(StartError::Store)?);
        // Nothing is connected yet: sessions meant to run say `starting` until
        // the engine brings them back (see `Gateway::start`). On a full disk
        // this write is refused: the gateway still serves reads, and the
        // sessions are started once writes work (the manager retries them).
        match store.mark_resuming() {
            Ok(_) => {}
            Err(e) if e.is_refusal() => tracing::warn!(error = %e, "could not mark sessions resuming (disk full?): they start once writes work"),
            Err(e) => return Err(StartError::Store(e)),
        }
        store.set_min_free_disk(config.min_free_disk);
        // Keeps the store serving through a full disk: reopens the file after
        // an I/O error, and says when writes work again.
        tokio::spawn(crate::store::recovery::watch(Arc::downgrade(&store)));
        // Media staged by requests a crash cut short: no request is in
        // flight yet, so every staged blob is an orphan. (Below the disk
        // floor this waits for the janitor's sweep.)
        match crate::store::media::sweep_staged(&store, i64::MAX) {
            Ok(0) => {}
            Ok(n) => tracing::info!(blobs = n, "removed media staged by unfinished requests"),
            Err(e) => tracing::warn!(error = %e, "could not sweep staged media"),
        }
        // The file remembers who issues its tokens, so that `wa-gateway
        // token` can refuse to mint for a gateway that would not accept them.
        // Written again at the next start if the disk is full now.
        match store.set_issuer_mode(if config.jwks_url.is_some() { "jwks" } else { "embedded" }) {
            Ok(()) => {}
            Err(e) if e.is_refusal() => tracing::warn!(error = %e, "could not record the issuer mode (disk full?)"),
            Err(e) => return Err(StartError::Store(e)),
        }
        let (source, issuer) = match &config.jwks_url {
            Some(url) => (JwksSource::remote(url, config.jwks.clone()).map_err(StartError::Jwks)?, None),
            None => {
                let issuer = Issuer::load_or_create(&config.data_dir).map_err(StartError::Issuer)?;
                (JwksSource::fixed(issuer.key_set()), Some(issuer))
            }
        };
        let opts = VerifyOptions {
            issuer: config
                .jwt_issuer
                .clone()
                .or_else(|| issuer.as_ref().map(|_| DEFAULT_ISSUER.to_string())),
            audience: config.jwt_audience.clone(),
            leeway_secs: DEFAULT_LEEWAY_SECS,
        };
        let verifier = Verifier::new(Arc::new(source), opts);
        let auth = Authenticator::new(verifier, config.claims.clone(), store.clone(), config.token_cache);
        let pages = PageCache::new(config.page_cache);
        let (engine, sim): (Arc<dyn Engine>, _) = match config.engine {
            EngineKind::Sim => {
                let sim = SimEngine::with_log(config.sim_log.clone()).map_err(StartError::Io)?;
                (Arc::new(sim.clone()), Some(sim))
            }
            EngineKind::Whatsapp => (Arc::new(WhatsappEngine::new(store.clone(), config.whatsapp.clone())), None),
        };
        let engine = Manager::new(engine, store.clone(), config.retry.clone());
        let limits = Limits::new(config.rate_limit, config.auth_failure_limit);
        let committer = Arc::new(Committer::start(store.clone()).map_err(StartError::Io)?);
        let messaging = Messaging::start(store.clone(), committer.clone(), engine.clone(), config.messaging.clone());
        crate::directory::tasks::start(&store, &committer, &engine, config.directory.presence_retention);
        let delivery = crate::delivery::Delivery::start(store.clone(), config.delivery.clone(), config.messaging.allow_private_urls);
        let metrics = Metrics::new(&engine.counters, &messaging.counters, &delivery.counters);
        let media_budget = crate::messaging::media_budget::MediaBudget::new(config.messaging.media_fetch_budget);
        Ok(App {
            store,
            auth,
            config,
            metrics,
            issuer,
            pages,
            engine,
            sim,
            extra_static: Vec::new(),
            limits,
            committer,
            messaging,
            delivery,
            media_budget,
            directory: crate::directory::cache::DirectoryCache::default(),
        })
    }

    /// The caller the pipeline authenticated (before reading the body).
    pub async fn principal(&self, req: &Req) -> Result<Principal, ApiError> {
        match &req.principal {
            Some(p) => Ok(p.clone()),
            // Only `/api/` routes reach handlers that ask, and the pipeline
            // authenticates every one of them; this is the fallback for
            // handlers driven directly.
            None => {
                let p = self.auth.authenticate(&req.headers).await;
                if p.is_err() {
                    self.metrics.auth_failures.inc();
                }
                let p = p?;
                if let Some(org) = p.org_id() {
                    let _ = req.log_org.set(org.to_string());
                }
                Ok(p)
            }
        }
    }

    /// The client's address: the peer, or with `--trusted-proxy` the
    /// `X-Forwarded-For` hop the trusted proxies vouch for.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if self.config.trusted_proxies.is_empty() {
            return peer;
        }
        // Several X-Forwarded-For headers read as one list, in order.
        let xff: Vec<&str> = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
        let joined = xff.join(",");
        rate_limit::client_addr(peer, (!xff.is_empty()).then_some(joined.as_str()), &self.config.trusted_proxies)
    }

    /// 429 `rate_limited` with `Retry-After`, counted by `limit`.
    pub fn limited(&self, limit: &'static str, wait: std::time::Duration) -> ApiError {
        self.metrics.rate_limited(limit);
        let secs = retry_after_secs(wait);
        ApiError::new(ErrorCode::RateLimited, "too many requests: slow down")
            .detail("retryAfterSeconds", secs)
            .header("retry-after", secs.to_string())
    }

    /// Charges `bytes` to the media budget, waiting at most `wait`; past
    /// it, 429 `rate_limited` with `Retry-After` and `details.limit:
    /// "media_budget"`.
    pub async fn charge_media(
        &self,
        bytes: u64,
        wait: std::time::Duration,
    ) -> Result<crate::messaging::media_budget::Charge, ApiError> {
        self.media_budget.charge(bytes, wait).await.map_err(|e| {
            self.metrics.rate_limited("media_budget");
            let secs = e.retry_after_secs.max(1);
            ApiError::new(ErrorCode::RateLimited, "too much media is being received at once: retry shortly")
                .detail("limit", "media_budget")
                .detail("budgetBytes", self.media_budget.total())
                .detail("retryAfterSeconds", secs)
                .header("retry-after", secs.to_string())
        })
    }

    /// Authenticates and clears the caller for `perm` in its organization.
    pub async fn org(&self, req: &Req, perm: Permission) -> Result<OrgAccess, ApiError> {
        let p = self.principal(req).await?;
        Ok(self.auth.org_access(&p, perm)?)
    }

    /// Authenticates and clears the caller as a platform super_admin.
    pub async fn admin(&self, req: &Req) -> Result<String, ApiError> {
        let p = self.principal(req).await?;
        Ok(self.auth.super_admin(&p)?)
    }

    /// Runs a (durable, blocking) store operation off the async workers.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> StoreResult<T> + Send + 'static,
    ) -> Result<T, ApiError> {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || f(&store)).await {
            Ok(r) => Ok(r?),
            Err(e) => Err(ApiError::internal(format!("store task failed: {e}"))),
        }
    }

    /// The `Origin` to echo, if CORS is configured for it.
    pub fn cors_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        if self.config.cors_origins.is_empty() {
            return None;
        }
        let origin = headers.get(ORIGIN)?;
        let s = origin.to_str().ok()?;
        self.config
            .cors_origins
            .iter()
            .any(|o| o == "*" || o.eq_ignore_ascii_case(s))
            .then(|| origin.clone())
    }

    /// A benchmark's fixed response for `path`, if mounted.
    pub fn extra_static(&self, path: &str) -> Option<Bytes> {
        self.extra_static.iter().find(|(p, _)| p == path).map(|(_, b)| b.clone())
    }
}

/// A started gateway: the server, the JWKS refresher, and what closes them.
pub struct Gateway {
    pub app: Arc<App>,
    server: RunningServer,
    stop_refresh: watch::Sender<bool>,
}

impl Gateway {
    /// Starts serving `app` on `listener`; fetches the JWKS in the background.
    pub fn start(app: App, listener: TcpListener) -> Result<Gateway, StartError> {
        let app = Arc::new(app);
        let (stop_refresh, rx) = watch::channel(false);
        let source = app.auth.verifier().source().clone();
        if source.is_remote() {
            source.spawn_refresher(rx);
        }
        let server = server::start(app.clone(), listener).map_err(StartError::Io)?;
        // Sessions that were meant to run start again, in the background.
        let engine = app.engine.clone();
        tokio::spawn(async move {
            match engine.resume_all().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sessions = n, "resumed sessions that were running"),
                Err(e) => tracing::error!(error = %e, "could not resume sessions"),
            }
        });
        Ok(Gateway { app, server, stop_refresh })
    }

    /// The bound address.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr()
    }

    /// Drains in-flight requests, stops background work, closes the data
    /// file, all within `--shutdown-timeout`: requests get all but the last
    /// second and a half, then open connections are cut; the engine and the
    /// file share the rest. `Ok(true)` when the file was closed here;
    /// `Ok(false)` if a background task still held it at the deadline (redb
    /// closes it on drop).
    pub async fn shutdown(self) -> Result<bool, StartError> {
        use std::time::{Duration, Instant};
        let started = Instant::now();
        let total = self.app.config.shutdown_timeout;
        let deadline = started + total;
        let drain = total.saturating_sub(Duration::from_millis(1500)).max(total / 2);
        let _ = self.stop_refresh.send(true);
        self.server.shutdown(started + drain).await;
        self.app.messaging.shutdown();
        self.app.delivery.shutdown();
        let engine_until = deadline.checked_sub(Duration::from_millis(500)).unwrap_or(deadline);
        if tokio::time::timeout_at(engine_until.into(), self.app.engine.shutdown()).await.is_err() {
            tracing::warn!("shutdown: engine connections still closing at the deadline");
        }
        let mut store = self.app.store.clone();
        drop(self.app);
        // Background writes (api-key lastUsedAt) finish within moments.
        loop {
            match Arc::try_unwrap(store) {
                Ok(s) => return s.close().map(|()| true).map_err(StartError::Store),
                Err(still_shared) if Instant::now() < deadline => {
                    store = still_shared;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(_) => return Ok(false),
            }
        }
    }
}
