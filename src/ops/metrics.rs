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
use crate::engine::manager::EngineCounters;
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
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: &'static str,
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
    jwks_keys: Gauge,
    jwks_fetches: Gauge,
    /// Failed `accept` calls (out of fds, say).
    pub accept_errors: Counter,
    cuts: Family<ReasonLabels, Counter>,
    limited: Family<LimitLabels, Counter>,
    writes_refused: Counter,
    disk_free: Gauge,
    /// Live event streams open now (Server-Sent Events).
    pub event_streams: Gauge,
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
    /// Registers every metric; the engine's counters are exported as they
    /// count (`wa_gateway_engine_*_total`).
    pub fn new(
        engine: &EngineCounters,
        messaging: &crate::messaging::MessagingCounters,
        delivery: &crate::delivery::DeliveryCounters,
    ) -> Metrics {
        let mut registry = Registry::with_prefix("wa_gateway");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        let auth_failures = Counter::default();
        let sessions = Gauge::default();
        let jwks_keys = Gauge::default();
        let jwks_fetches = Gauge::default();
        let by_status = Family::<StatusLabels, Gauge>::default();
        let live = Gauge::default();
        registry.register("http_requests", "HTTP requests by route and status", requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency", latency.clone());
        registry.register("auth_failures", "Requests refused by authentication", auth_failures.clone());
        registry.register("sessions", "Sessions in the data file", sessions.clone());
        registry.register("sessions_by_status", "Sessions by status", by_status.clone());
        registry.register("engine_live_connections", "Engine connections open in this process", live.clone());
        registry.register("engine_reconnects", "Reconnect attempts since start", engine.reconnects.clone());
        registry.register("engine_errors", "Failed engine connects since start", engine.errors.clone());
        registry.register("messages_sent", "Messages WhatsApp took since start", messaging.sent.clone());
        registry.register("messages_failed", "Outbound messages that failed since start", messaging.failed.clone());
        registry.register("messages_received", "Inbound messages stored since start", messaging.received.clone());
        registry.register("send_queue_pauses", "Send queues paused for account trouble since start", messaging.paused.clone());
        registry.register("jwks_keys", "Usable keys in the current JWKS", jwks_keys.clone());
        registry.register("jwks_fetch_attempts", "JWKS fetch attempts since start", jwks_fetches.clone());
        let accept_errors = Counter::default();
        let cuts = Family::<ReasonLabels, Counter>::default();
        let limited = Family::<LimitLabels, Counter>::default();
        let writes_refused = Counter::default();
        let disk_free = Gauge::default();
        registry.register("accept_errors", "Failed accepts of client connections", accept_errors.clone());
        registry.register("connections_cut", "Client connections cut by a timeout, shedding or shutdown", cuts.clone());
        registry.register("rate_limited", "Requests answered 429 by a rate limit", limited.clone());
        registry.register("writes_refused", "Writes refused with 503 because the disk is nearly full", writes_refused.clone());
        registry.register("data_disk_free_bytes", "Free bytes on the data file's filesystem", disk_free.clone());
        let event_streams = Gauge::default();
        registry.register("event_streams", "Live event streams (Server-Sent Events) open now", event_streams.clone());
        registry.register("webhook_deliveries", "Webhook delivery attempts by result since start", delivery.by_result.clone());
        registry.register(
            "webhook_oldest_undelivered_seconds",
            "Age of the oldest undelivered event per enabled webhook",
            delivery.oldest_undelivered.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            auth_failures,
            sessions,
            by_status,
            live,
            jwks_keys,
            jwks_fetches,
            accept_errors,
            cuts,
            limited,
            writes_refused,
            disk_free,
            event_streams,
        }
    }

    /// Counts one connection cut by the server.
    pub fn connections_cut(&self, cut: crate::http::conn::Cut) {
        self.cuts.get_or_create(&ReasonLabels { reason: cut.as_str() }).inc();
    }

    /// Counts one request refused by a rate limit (`principal` or `auth_failures`).
    pub fn rate_limited(&self, limit: &'static str) {
        self.limited.get_or_create(&LimitLabels { limit }).inc();
    }

    /// Counts one write refused for lack of disk space.
    pub fn write_refused(&self) {
        self.writes_refused.inc();
    }

    /// Counts one request.
    pub fn observe_request(&self, method: &str, route: &'static str, status: u16, latency: Duration) {
        self.requests
            .get_or_create(&RequestLabels { method: method_label(method), route, status })
            .inc();
        self.latency.get_or_create(&RouteLabels { route }).observe(latency.as_secs_f64());
    }
}


/// `GET /metrics`: Prometheus text format.
pub async fn render(app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    let m = &app.metrics;
    let counts = app.blocking(|s| Ok((s.session_count(), s.status_counts()))).await?;
    m.sessions.set(counts.0.map(|n| n as i64).unwrap_or(-1));
    for (status, n) in counts.1.unwrap_or_default() {
        m.by_status.get_or_create(&StatusLabels { status: status.as_str() }).set(n as i64);
    }
    m.live.set(app.engine.live_count() as i64);
    m.disk_free.set(app.store.free_bytes().map_or(-1, |b| i64::try_from(b).unwrap_or(i64::MAX)));
    let source = app.auth.verifier().source();
    m.jwks_keys.set(source.current().map_or(0, |k| k.len() as i64));
    m.jwks_fetches.set(source.fetch_count() as i64);
    let oldest = app.blocking(|s| s.oldest_undelivered()).await;
    let gauge = &app.delivery.counters.oldest_undelivered;
    gauge.clear();
    let now = crate::store::now_ms();
    for (w, at) in oldest.unwrap_or_default() {
        let age = at.map_or(0, |t| now.saturating_sub(t).max(0) / 1000);
        gauge.get_or_create(&crate::delivery::WebhookLabel { webhook: ulid::Ulid::from(w).to_string() }).set(age);
    }
    let mut out = String::new();
    encode(&mut out, &m.registry).map_err(ApiError::internal)?;
    Ok(response::bytes(200, "text/plain; version=0.0.4; charset=utf-8", out))
}
