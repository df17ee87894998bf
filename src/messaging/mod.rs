//! Messaging (CONTRACT §9): each session's durable send queue, paced and
//! typed; inbound messages, receipts and refusals stored with their events;
//! media fetched at queue time; retention.
//!
//! Map:
//! - [`pacing`] — the pacing and typing rules, pure functions of a clock.
//! - [`worker`] — one task per session with work: waits for the queue head,
//!   the pace and the connection, types, sends, records the outcome.
//! - [`inbound`] — the engine's message events, committed in order (held in
//!   memory, bounded, while writes are refused; stored when they work).
//! - [`acks`] — answers for whoever waits until an event is stored or held
//!   (`sim/incoming`, `sim/receipt`).
//! - [`media_fetch`] — media by URL or base64, fetched at queue time.
//! - [`addr`] — which addresses an outbound request may reach.
//! - [`host`] — the one normalizer of a URL's host (WHATWG IPv4 spellings).
//!
//! Every write goes through the store's group [`Committer`]: a burst of
//! sends across sessions shares one durable commit. Sessions never wait for
//! each other: each has its own worker, and a worker waits only on its own
//! queue's pace.

pub mod acks;
pub mod inbound;
pub mod addr;
pub mod host;
pub mod media_budget;
pub mod media_fetch;
pub mod pacing;
pub mod worker;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, Notify};
use ulid::Ulid;

use crate::engine::manager::Manager;
use crate::engine::EngineEvent;
use crate::store::committer::Committer;
use crate::store::{now_ms, Store};

/// Limits and retention of messaging (`serve` flags).
#[derive(Clone, Debug)]
pub struct MessagingConfig {
    /// A pending message this long past its due time is `expired`.
    pub message_ttl: Duration,
    /// Messages queued per session at most.
    pub max_queued: u64,
    /// Pause after account trouble when WhatsApp names no time.
    pub send_pause: Duration,
    pub message_retention: Duration,
    pub event_retention: Duration,
    /// Media URLs may name private addresses.
    pub allow_private_urls: bool,
    /// Bytes of media read, fetched or decoded at once across all
    /// requests (`--media-fetch-budget`; 0 = unlimited).
    pub media_fetch_budget: u64,
    /// How long a request waits for room in the media budget before 429.
    pub media_budget_wait: Duration,
}

/// Default `--media-fetch-budget`: 256 MiB.
pub const DEFAULT_MEDIA_FETCH_BUDGET: u64 = 256 * 1024 * 1024;

impl Default for MessagingConfig {
    fn default() -> Self {
        MessagingConfig {
            message_ttl: Duration::from_secs(24 * 3600),
            max_queued: 10_000,
            send_pause: Duration::from_secs(3600),
            message_retention: Duration::from_secs(30 * 86_400),
            event_retention: Duration::from_secs(7 * 86_400),
            allow_private_urls: false,
            media_fetch_budget: DEFAULT_MEDIA_FETCH_BUDGET,
            media_budget_wait: Duration::from_secs(5),
        }
    }
}

/// Counters for `/metrics` (`wa_gateway_messages_*_total`).
#[derive(Default)]
pub struct MessagingCounters {
    /// Messages WhatsApp took.
    pub sent: prometheus_client::metrics::counter::Counter,
    /// Outbound messages that failed (refused, not on WhatsApp, ...).
    pub failed: prometheus_client::metrics::counter::Counter,
    /// Inbound messages stored (reactions, edits and revokes included).
    pub received: prometheus_client::metrics::counter::Counter,
    /// Times a session's queue was paused for account trouble.
    pub paused: prometheus_client::metrics::counter::Counter,
}

/// What the rest of messaging holds of a session's worker.
pub struct WorkerHandle {
    /// Wakes the worker for another round.
    pub notify: Notify,
    /// The worker's last round ended waiting for the session's WhatsApp
    /// link (nothing queued can leave before it connects, which wakes it):
    /// a message queued behind the head changes nothing it decides.
    pub offline: AtomicBool,
}

/// The messaging service: shared by the API (which queues) and the workers
/// (which send).
pub struct Messaging {
    pub store: Arc<Store>,
    pub committer: Arc<Committer>,
    pub manager: Arc<Manager>,
    pub config: MessagingConfig,
    /// Each session's worker: its wake-up, and whether it waits for the link.
    workers: Mutex<HashMap<Ulid, Arc<WorkerHandle>>>,
    pub counters: MessagingCounters,
    /// Who waits until an engine event is committed or held.
    pub acks: acks::Acks,
    /// Each session's send times of the hour before start, read once from
    /// the send log; its worker takes them when it starts (a worker then
    /// lives as long as the process, and is the only one to send for its
    /// session, so nothing it needs is missing).
    histories: Mutex<HashMap<u128, Vec<i64>>>,
    closing: AtomicBool,
    stop: Notify,
}

impl Messaging {
    /// Starts messaging: takes the manager's message events, wakes a
    /// session's worker whenever the session (re)connects, and starts a
    /// worker for every session with a non-empty queue.
    pub fn start(store: Arc<Store>, committer: Arc<Committer>, manager: Arc<Manager>, config: MessagingConfig) -> Arc<Messaging> {
        let (tx, rx) = mpsc::unbounded_channel();
        manager.set_message_sink(tx);
        let histories = store.read().and_then(|t| crate::store::messages::recent_sends(&t, now_ms())).unwrap_or_else(|e| {
            tracing::error!(error = %e, "could not read the send log: pacing starts without the last hour's sends");
            HashMap::new()
        });
        let m = Arc::new(Messaging {
            store,
            committer,
            manager,
            config,
            workers: Mutex::new(HashMap::new()),
            counters: MessagingCounters::default(),
            acks: acks::Acks::default(),
            histories: Mutex::new(histories),
            closing: AtomicBool::new(false),
            stop: Notify::new(),
        });
        tokio::spawn(inbound::run(Arc::downgrade(&m), rx));
        tokio::spawn(Messaging::watch_sessions(Arc::downgrade(&m)));
        tokio::spawn(Messaging::janitor(Arc::downgrade(&m)));
        let me = m.clone();
        tokio::spawn(async move {
            let store = me.store.clone();
            let sessions = tokio::task::spawn_blocking(move || crate::store::messages::sessions_with_queue(&store.read()?))
                .await
                .unwrap_or_else(|e| Err(crate::store::StoreError::Corrupt(e.to_string())));
            match sessions {
                Ok(ids) => ids.into_iter().for_each(|id| me.wake(Ulid::from(id))),
                Err(e) => tracing::error!(error = %e, "could not read the send queues"),
            }
        });
        m
    }

    /// Wakes session `id`'s worker (starting it if it has none): something
    /// changed in its queue, its rates or its connection.
    pub fn wake(self: &Arc<Self>, id: Ulid) {
        if self.closing.load(Ordering::SeqCst) {
            return;
        }
        let mut map = match self.workers.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if let Some(w) = map.get(&id) {
            w.notify.notify_one();
            return;
        }
        let handle = Arc::new(WorkerHandle { notify: Notify::new(), offline: AtomicBool::new(false) });
        map.insert(id, handle.clone());
        tokio::spawn(worker::run(self.clone(), id, handle));
    }

    /// Says plain sends (no `sendAt`) were queued for session `id`: wakes
    /// its worker unless it waits for a link the session still lacks. They
    /// join the in-order lane behind the head, so that round would read the
    /// same head and wait again; bulk queuing to a disconnected number then
    /// costs no worker round per request. (Scheduled messages, cancels and
    /// rate changes always wake: they can move the head or its times.)
    pub fn queued_plain(self: &Arc<Self>, id: Ulid) {
        let offline = match self.workers.lock() {
            Ok(m) => m.get(&id).map(|w| w.offline.load(Ordering::SeqCst)),
            Err(p) => p.into_inner().get(&id).map(|w| w.offline.load(Ordering::SeqCst)),
        };
        if offline == Some(true) && self.manager.connection(id).is_none() {
            return;
        }
        self.wake(id);
    }

    /// Forgets a worker that ended (its session is gone or idle for long).
    fn worker_done(&self, id: Ulid) {
        match self.workers.lock() {
            Ok(mut m) => m.remove(&id),
            Err(p) => p.into_inner().remove(&id),
        };
    }

    /// Stops every worker (gateway shutdown). A message caught `sending`
    /// is sent again after the restart with the same WhatsApp id.
    pub fn shutdown(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.stop.notify_waiters();
        let handles: Vec<Arc<WorkerHandle>> = match self.workers.lock() {
            Ok(mut m) => m.drain().map(|(_, n)| n).collect(),
            Err(p) => p.into_inner().drain().map(|(_, n)| n).collect(),
        };
        handles.iter().for_each(|w| w.notify.notify_one());
    }

    /// Session `id`'s send times from before start (once; then its worker
    /// keeps them).
    fn take_history(&self, id: u128) -> Vec<i64> {
        match self.histories.lock() {
            Ok(mut m) => m.remove(&id),
            Err(p) => p.into_inner().remove(&id),
        }
        .unwrap_or_default()
    }

    fn closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// Wakes a session's worker when it connects.
    async fn watch_sessions(me: std::sync::Weak<Messaging>) {
        let Some(m) = me.upgrade() else { return };
        let mut rx = m.manager.subscribe();
        drop(m);
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    let Some(m) = me.upgrade() else { return };
                    if matches!(ev.event, EngineEvent::Connected { .. }) {
                        m.wake(ev.session);
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            }
        }
    }

    /// Retention: prunes old events and finished messages, in bounded
    /// transactions, every minute.
    async fn janitor(me: std::sync::Weak<Messaging>) {
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
            let Some(m) = me.upgrade() else { return };
            if m.closing() {
                return;
            }
            let store = m.store.clone();
            let (events, messages) = (m.config.event_retention, m.config.message_retention);
            drop(m);
            let _ = tokio::task::spawn_blocking(move || prune(&store, events, messages)).await;
        }
    }
}

/// One round of retention pruning, 1,000 rows a transaction: events older
/// than `events` (and the webhook delivery state of those events), finished
/// messages older than `messages`, idempotent answers older than 24 h. Returns (events, messages) deleted.
pub fn prune(store: &Store, events: Duration, messages: Duration) -> crate::store::StoreResult<(usize, usize)> {
    let now = now_ms();
    let (mut e, mut m) = (0, 0);
    loop {
        let n = store.prune_events(now - events.as_millis() as i64, 1_000)?;
        e += n;
        if n < 1_000 {
            break;
        }
    }
    loop {
        let (read, deleted) = store.prune_messages(now - messages.as_millis() as i64, 1_000)?;
        m += deleted;
        if read < 1_000 {
            break;
        }
    }
    // Webhook delivery state lives as long as the events it delivered.
    while store.prune_deliveries(now - events.as_millis() as i64, 1_000)? == 1_000 {}
    // Media staged by a request that never finished (its blobs are orphans).
    crate::store::media::sweep_staged(store, now - crate::store::media::STAGED_MAX_AGE_MS)?;
    let cutoff = now - crate::store::idempotency::TTL_MS;
    while store.prune_idempotency(cutoff, 1_000)? == 1_000 {}
    Ok((e, m))
}
