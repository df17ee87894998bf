//! Prometheus metrics (text format via `prometheus-client`).

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::app::App;
use crate::http::response::{self, Resp};
use crate::http::{ApiError, Req};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.5, 12))
}

/// The gateway's metrics registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// Requests refused by authentication.
    pub auth_failures: Counter,
    sessions: Gauge,
    by_status: Family<StatusLabels, Gauge>,
    live: Gauge,
    reconnects: Gauge,
    engine_errors: Gauge,
    jwks_keys: Gauge,
    jwks_fetches: Gauge,
}

fn method_label(m: &str) -> &'static str {
    match m {
        "GET" => "GET",
        "POST" => "POST",
        "PATCH" => "PATCH",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "HEAD" => "HEAD",
        _ => "OTHER",
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("wa_gateway");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        let auth_failures = Counter::default();
        let sessions = Gauge::default();
        let jwks_keys = Gauge::default();
        let jwks_fetches = Gauge::default();
        let by_status = Family::<StatusLabels, Gauge>::default();
        let (live, reconnects, engine_errors) = (Gauge::default(), Gauge::default(), Gauge::default());
        registry.register("http_requests", "HTTP requests by route and status", requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency", latency.clone());
        registry.register("auth_failures", "Requests refused by authentication", auth_failures.clone());
        registry.register("sessions", "Sessions in the data file", sessions.clone());
        registry.register("sessions_by_status", "Sessions by status", by_status.clone());
        registry.register("engine_live_connections", "Engine connections open in this process", live.clone());
        registry.register("engine_reconnects", "Reconnect attempts since start", reconnects.clone());
        registry.register("engine_errors", "Failed engine connects since start", engine_errors.clone());
        registry.register("jwks_keys", "Usable keys in the current JWKS", jwks_keys.clone());
        registry.register("jwks_fetch_attempts", "JWKS fetch attempts since start", jwks_fetches.clone());
        Metrics {
            registry,
            requests,
            latency,
            auth_failures,
            sessions,
            by_status,
            live,
            reconnects,
            engine_errors,
            jwks_keys,
            jwks_fetches,
        }
    }

    /// Counts one request.
    pub fn observe_request(&self, method: &str, route: &'static str, status: u16, latency: Duration) {
        self.requests
            .get_or_create(&RequestLabels { method: method_label(method), route, status })
            .inc();
        self.latency.get_or_create(&RouteLabels { route }).observe(latency.as_secs_f64());
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn render(app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    let m = &app.metrics;
    m.sessions.set(app.store.session_count().map(|n| n as i64).unwrap_or(-1));
    for (status, n) in app.store.status_counts().unwrap_or_default() {
        m.by_status.get_or_create(&StatusLabels { status: status.as_str() }).set(n as i64);
    }
    let counters = &app.engine.counters;
    m.live.set(app.engine.live_count() as i64);
    m.reconnects.set(counters.reconnects.load(std::sync::atomic::Ordering::Relaxed) as i64);
    m.engine_errors.set(counters.errors.load(std::sync::atomic::Ordering::Relaxed) as i64);
    let source = app.auth.verifier().source();
    m.jwks_keys.set(source.current().map_or(0, |k| k.len() as i64));
    m.jwks_fetches.set(source.fetch_count() as i64);
    let mut out = String::new();
    encode(&mut out, &m.registry).map_err(ApiError::internal)?;
    Ok(response::bytes(200, "text/plain; version=0.0.4; charset=utf-8", out))
}
