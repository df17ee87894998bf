//! Webhook delivery (CONTRACT §10): every event an endpoint wants reaches it,
//! signed as Standard Webhooks has it, retried on a schedule, in order per
//! session, surviving restarts.
//!
//! What crosses the boundary, and why:
//! - In: the store (the event log is the outbox, and the delivery tables of
//!   [`crate::store::deliveries`] are its state, so a restart resumes from the
//!   file alone), the config ([`DeliveryConfig`], `--allow-private-urls`),
//!   and [`Delivery::poke`] from the webhook API when an endpoint changes
//!   (created, patched, deleted, replayed, tested), since those are not events.
//! - Out: HTTP POSTs to the endpoints ([`client`]), their outcomes written to
//!   the store, and the counters of `/metrics`. Nothing else of the gateway
//!   waits on delivery: a slow endpoint costs only its own slots.
//!
//! Map:
//! - [`dispatcher`] — one task: queues new events per webhook, starts the due
//!   attempts under the in-flight caps, sleeps until the next event, the
//!   next due retry, a poke or a finished attempt.
//! - [`client`] — one attempt over HTTP, with the address checks of media fetching.
//! - [`sign`] — `webhook-signature`.
//! - [`retry`] — the retry schedule with jitter, a pure function.

pub mod client;
pub mod dispatcher;
pub mod fair;
pub mod retry;
pub mod sign;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::Notify;

use crate::store::Store;

/// How webhooks are delivered (`serve` flags).
#[derive(Clone, Debug)]
pub struct DeliveryConfig {
    /// Waits between attempts; after the last, a delivery is `failed`.
    pub retry_schedule: Vec<Duration>,
    /// One attempt, everything included (CONTRACT §10: 15 s).
    pub timeout: Duration,
    /// Attempts in flight to one webhook at most.
    pub max_in_flight_per_webhook: usize,
    /// Attempts in flight overall, shared per organization
    /// ([`fair::may_start`]; past it only by an organization under its
    /// share, and never past twice it).
    pub max_in_flight: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            retry_schedule: retry::default_schedule(),
            timeout: Duration::from_secs(15),
            max_in_flight_per_webhook: 64,
            max_in_flight: 256,
        }
    }
}

/// The label of `wa_gateway_webhook_deliveries_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `delivered`, `retry` (an attempt failed, another follows) or `failed`
    /// (for good: schedule exhausted, 410, event gone).
    pub result: &'static str,
}

/// The label of `wa_gateway_webhook_oldest_undelivered_seconds`: which
/// endpoint is behind, so an alert names it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabel {
    /// The webhook's ULID.
    pub webhook: String,
}

/// Counters for `/metrics` (`wa_gateway_webhook_deliveries_total{result}`),
/// and the per-endpoint backlog age, filled at each scrape from the store.
#[derive(Default)]
pub struct DeliveryCounters {
    pub by_result: Family<ResultLabel, Counter>,
    /// Seconds since the oldest still-pending event of each enabled webhook
    /// (0 with nothing pending).
    pub oldest_undelivered: Family<WebhookLabel, Gauge>,
}

impl DeliveryCounters {
    fn count(&self, result: &'static str) {
        self.by_result.get_or_create(&ResultLabel { result }).inc();
    }
}

/// The delivery service, shared by the API (which pokes it) and its dispatcher.
pub struct Delivery {
    pub store: Arc<Store>,
    pub config: DeliveryConfig,
    /// Endpoints may resolve to private addresses (`--allow-private-urls`).
    pub allow_private: bool,
    pub counters: DeliveryCounters,
    /// Open connections to the endpoints, kept between attempts.
    clients: client::Clients,
    wake: Notify,
    closing: AtomicBool,
}

impl Delivery {
    /// Starts the dispatcher; it resumes whatever the tables hold.
    pub fn start(store: Arc<Store>, config: DeliveryConfig, allow_private: bool) -> Arc<Delivery> {
        let d = Arc::new(Delivery {
            store,
            config,
            allow_private,
            counters: DeliveryCounters::default(),
            clients: client::Clients::default(),
            wake: Notify::new(),
            closing: AtomicBool::new(false),
        });
        tokio::spawn(dispatcher::run(d.clone()));
        d
    }

    /// Something about the webhooks changed: look again now.
    pub fn poke(&self) {
        self.wake.notify_one();
    }

    /// Stops the dispatcher; attempts in flight are abandoned (they go again
    /// after a restart, with the same `webhook-id`).
    pub fn shutdown(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    fn closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }
}
