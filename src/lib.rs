//! wa-gateway: a self-hosted, multi-tenant WhatsApp gateway in one binary and
//! one redb data file.
//!
//! A map of the crate:
//!
//! - [`cli`] — `serve | token | backup | check | console` (clap; every flag also `WAG_*`).
//! - [`config`] — what `serve` runs with, however it was given.
//! - [`app`] — shared state (store, auth, metrics) and the serve lifecycle.
//! - [`http`] — hyper 1 server loop ([`http::server`]: accept, shedding,
//!   shutdown; [`http::conn`]: per-connection progress and timeouts), the
//!   request pipeline ([`http::pipeline`]: auth and rate limits before the
//!   body), the route table ([`http::router`]: every endpoint in one hop),
//!   rate limits, request/response helpers, the error envelope.
//! - [`api`] — one file per resource: sessions, admin, orgs, api-keys, me; and
//!   the HMAC-protected list cursors.
//! - [`auth`] — api-keys, login JWTs (ring, JWKS fetch/cache), the embedded
//!   issuer, principals and permissions.
//! - [`store`] — the redb data file: tables, versioned postcard records,
//!   migrations, backup and consistency check.
//! - [`ops`] — health, readiness, Prometheus metrics, the OpenAPI document.
//! - [`engine`] — WhatsApp connections: the engine boundary, the session
//!   [`engine::manager`] (lifecycle, backoff, connect cap, the ordered event
//!   stream), the `whatsapp` engine ([`engine::wa_client`], one `whatsapp-rust`
//!   client per session) with its protocol state in the data file
//!   ([`engine::wa_state`], the crate's storage traits on the
//!   [`store::wa_state`] table), and the in-process [`engine::sim`].
//! - [`messaging`] — per-session durable send queues (pacing, typing,
//!   pauses), inbound messages, receipts, media fetching, retention.
//! - [`directory`] — contacts, presence, profile and groups (CONTRACT §12,
//!   §13): the engine's directory events stored with their events.
//! - [`delivery`] — webhooks: the dispatcher over the durable outbox
//!   (ordered per session, retried, signed), one HTTP attempt at a time.
//! - [`console`] — the web console (`/console`) and API reference (`/docs`):
//!   HTML, CSS and ES modules embedded in the binary, served under a strict
//!   Content-Security-Policy; they speak the public API from the browser.

pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod http;
pub mod ops;
pub mod engine;
pub mod store;
pub mod messaging;
pub mod delivery;
pub mod directory;
pub mod console;

use std::sync::Mutex;

/// `first` and whatever is already waiting behind it in `rx`, up to `max`
/// in all: a burst of events is handled (and committed) together.
pub fn drain<T>(first: T, rx: &mut tokio::sync::mpsc::UnboundedReceiver<T>, max: usize) -> Vec<T> {
    let mut batch = vec![first];
    while batch.len() < max {
        match rx.try_recv() {
            Ok(e) => batch.push(e),
            Err(_) => break,
        }
    }
    batch
}

/// A new ULID, monotonic within this process (ids made in the same
/// millisecond still sort in creation order).
pub fn new_id() -> ulid::Ulid {
    static GEN: Mutex<ulid::Generator> = Mutex::new(ulid::Generator::new());
    match GEN.lock() {
        Ok(mut g) => g.generate().unwrap_or_else(|_| ulid::Ulid::generate()),
        Err(_) => ulid::Ulid::generate(),
    }
}
