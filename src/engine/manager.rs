//! The session lifecycle around an engine: start, stop, restart, logout,
//! QR and pairing; every status change persisted with `updatedAt`;
//! reconnects with exponential backoff and jitter, `failed` once retries are
//! exhausted; sessions meant to run are started again when the gateway starts.
//!
//! Each start bumps the session's generation; events and scheduled retries
//! of an older generation are dropped, so `stop` wins at any moment. Applied
//! events are published, numbered, on [`Manager::subscribe`].

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::{broadcast, mpsc};
use ulid::Ulid;

use super::{Connection, Engine, EngineError, EngineEvent, EventSink, StartInfo};
use crate::store::records::{Session, SessionStatus};
use crate::store::sessions::SessionChange;
use crate::store::{now_ms, Store, StoreError};

/// Retry policy.
#[derive(Clone, Debug)]
pub struct ManagerConfig {
    /// Failed connects in a row before the session is `failed`.
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Connects in flight at once (the rest queue, in the order they came):
    /// a restart with many sessions, or a burst of creates, reaches DNS and
    /// WhatsApp as a steady stream instead of a stampede.
    pub max_concurrent_connects: usize,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            max_attempts: 6,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            max_concurrent_connects: 16,
        }
    }
}

/// Why a lifecycle operation was refused.
#[derive(Debug)]
#[non_exhaustive]
pub enum ManagerError {
    /// The session is in the wrong state for this; its current status.
    Conflict(&'static str, SessionStatus),
    Engine(EngineError),
    Store(StoreError),
}

impl fmt::Display for ManagerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManagerError::Conflict(m, st) => write!(f, "{m} (status {})", st.as_str()),
            ManagerError::Engine(e) => write!(f, "{e}"),
            ManagerError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ManagerError {}

impl From<StoreError> for ManagerError {
    fn from(e: StoreError) -> Self {
        ManagerError::Store(e)
    }
}

/// An applied event, numbered in the order the manager applied it.
#[derive(Clone, Debug)]
pub struct SessionEvent {
    pub seq: u64,
    pub session: Ulid,
    pub at: i64,
    pub event: EngineEvent,
}

#[derive(Default)]
struct Slot {
    generation: u64,
    conn: Option<Arc<dyn Connection>>,
    /// The pending connect or backoff task of this generation: aborted when
    /// the generation ends (stop, restart, shutdown), so nothing outlives it.
    task: Option<tokio::task::AbortHandle>,
    qr: Option<(String, i64)>,
    attempts: u32,
}

/// Counters for `/metrics`.
#[derive(Default)]
pub struct EngineCounters {
    pub reconnects: AtomicU64,
    pub errors: AtomicU64,
}

/// Runs sessions on an engine.
pub struct Manager {
    engine: Arc<dyn Engine>,
    store: Arc<Store>,
    config: ManagerConfig,
    slots: Mutex<HashMap<Ulid, Slot>>,
    tx: mpsc::UnboundedSender<(Ulid, u64, EngineEvent)>,
    stream: broadcast::Sender<SessionEvent>,
    seq: AtomicU64,
    /// Permits for [`ManagerConfig::max_concurrent_connects`].
    connecting: tokio::sync::Semaphore,
    pub counters: EngineCounters,
}

fn running(st: SessionStatus) -> bool {
    matches!(st, SessionStatus::Starting | SessionStatus::ScanQrCode | SessionStatus::Working)
}

impl Manager {
    /// A manager on `engine`; spawns its event loop.
    pub fn new(engine: Arc<dyn Engine>, store: Arc<Store>, config: ManagerConfig) -> Arc<Manager> {
        let (tx, rx) = mpsc::unbounded_channel();
        let (stream, _) = broadcast::channel(1024);
        let config_connects = config.max_concurrent_connects.max(1);
        let m = Arc::new(Manager {
            engine,
            store,
            config,
            slots: Mutex::new(HashMap::new()),
            tx,
            stream,
            seq: AtomicU64::new(0),
            connecting: tokio::sync::Semaphore::new(config_connects),
            counters: EngineCounters::default(),
        });
        tokio::spawn(Manager::event_loop(Arc::downgrade(&m), rx));
        m
    }

    /// The engine's name.
    pub fn engine_name(&self) -> &'static str {
        self.engine.name()
    }

    /// Applied events, in order (a lagging receiver loses the oldest).
    pub fn subscribe(&self) -> broadcast::Receiver<SessionEvent> {
        self.stream.subscribe()
    }

    /// Sessions this process is running, by live status (for metrics).
    pub fn live_count(&self) -> usize {
        self.slots.lock().map(|s| s.values().filter(|x| x.conn.is_some()).count()).unwrap_or(0)
    }

    fn slot<T>(&self, id: Ulid, f: impl FnOnce(&mut Slot) -> T) -> T {
        match self.slots.lock() {
            Ok(mut slots) => f(slots.entry(id).or_default()),
            Err(poisoned) => f(poisoned.into_inner().entry(id).or_default()),
        }
    }

    /// Bumps the generation (cancelling retries and silencing the old
    /// connection) and takes the connection out.
    fn detach(&self, id: Ulid) -> (u64, Option<Arc<dyn Connection>>) {
        self.slot(id, |s| {
            s.generation += 1;
            s.qr = None;
            if let Some(t) = s.task.take() {
                t.abort();
            }
            (s.generation, s.conn.take())
        })
    }

    /// Runs `work` for `generation` of session `id` as its one pending task
    /// (or not at all if that generation is already over).
    fn spawn_for(&self, id: Ulid, generation: u64, work: impl Future<Output = ()> + Send + 'static) {
        let task = tokio::spawn(work);
        if !self.if_current(id, generation, |s| s.task = Some(task.abort_handle())) {
            task.abort();
        }
    }

    /// Runs `f` on the slot of `id` if `generation` is still its current one;
    /// says whether it was.
    fn if_current(&self, id: Ulid, generation: u64, f: impl FnOnce(&mut Slot)) -> bool {
        self.slot(id, |s| {
            let current = s.generation == generation;
            if current {
                f(s);
            }
            current
        })
    }

    async fn persist(
        &self,
        id: Ulid,
        change: impl FnOnce(&mut Session) + Send + 'static,
    ) -> Result<Session, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            store.update_session(id, None, |s| {
                change(s);
                s.updated_at = now_ms();
                Ok(())
            })
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("store task: {e}")))?
    }

    /// Starts a stopped, failed or logged-out session.
    pub async fn start(self: &Arc<Self>, id: Ulid) -> Result<Session, ManagerError> {
        let current = self.store.get_session(id, None)?;
        if running(current.status) {
            return Err(ManagerError::Conflict("the session is already running", current.status));
        }
        self.launch(id, true).await
    }

    /// Opens a fresh connection; `mark` persists `starting` first (resume at
    /// boot skips it: `Store::mark_resuming` already did, in one transaction).
    async fn launch(self: &Arc<Self>, id: Ulid, mark: bool) -> Result<Session, ManagerError> {
        let (generation, old) = self.detach(id);
        if let Some(c) = old {
            c.stop().await;
        }
        self.slot(id, |s| s.attempts = 0);
        let session = if mark {
            self.persist(id, |s| {
                s.status = SessionStatus::Starting;
                s.desired_running = true;
                s.last_error = None;
            })
            .await?
        } else {
            self.store.get_session(id, None)?
        };
        self.spawn_for(id, generation, self.clone().connect(id, generation));
        Ok(session)
    }

    /// Opens the connection for `generation` (boxed: retries recurse).
    fn connect(self: Arc<Self>, id: Ulid, generation: u64) -> super::BoxFuture<'static, ()> {
        Box::pin(async move {
            let session = match self.store.get_session(id, None) {
                Ok(s) => s,
                Err(_) => return,
            };
            let info = StartInfo {
                session: id,
                linked_jid: session.wa_jid.clone(),
                linked_lid: session.wa_lid.clone(),
            };
            let sink = EventSink::new(id, generation, self.tx.clone());
            // Held while connecting only; a stop aborts this task, waiting or not.
            let Ok(permit) = self.connecting.acquire().await else { return };
            let started = self.engine.start(info, sink).await;
            drop(permit);
            match started {
                Ok(conn) => {
                    let conn: Arc<dyn Connection> = Arc::from(conn);
                    if !self.if_current(id, generation, |s| s.conn = Some(conn.clone())) {
                        conn.stop().await;
                    }
                }
                Err(e) => self.failed_attempt(id, generation, e.to_string()).await,
            }
        })
    }

    /// One connect failed: back off and retry, or give up as `failed`.
    async fn failed_attempt(self: &Arc<Self>, id: Ulid, generation: u64, error: String) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
        let attempts = self.slot(id, |s| {
            if s.generation != generation {
                return None;
            }
            s.attempts += 1;
            s.conn = None;
            Some(s.attempts)
        });
        let Some(attempts) = attempts else { return };
        let err = error.clone();
        if attempts >= self.config.max_attempts {
            tracing::warn!(session = %id, attempts, error = %error, "session failed: retries exhausted");
            let _ = self
                .persist(id, move |s| {
                    s.status = SessionStatus::Failed;
                    s.last_error = Some(err);
                })
                .await;
            return;
        }
        // A session already `starting` stays so: retrying costs no write (the
        // API shows no lastError while starting; each attempt's error is logged).
        let already_starting = matches!(self.store.get_session(id, None), Ok(s) if s.status == SessionStatus::Starting);
        if !already_starting {
            let _ = self
                .persist(id, move |s| {
                    s.status = SessionStatus::Starting;
                    s.last_error = Some(err);
                })
                .await;
        }
        let delay = self.backoff(attempts);
        tracing::info!(session = %id, attempts, delay_ms = delay.as_millis() as u64, error = %error, "reconnecting");
        let me = self.clone();
        self.spawn_for(id, generation, async move {
            tokio::time::sleep(delay).await;
            if me.slot(id, |s| s.generation == generation) {
                me.counters.reconnects.fetch_add(1, Ordering::Relaxed);
                me.connect(id, generation).await;
            }
        });
    }

    /// Exponential backoff with full jitter in [base/2, min(max, base·2ⁿ)].
    fn backoff(&self, attempt: u32) -> Duration {
        let cap = self.config.backoff_base.saturating_mul(1u32 << attempt.min(16)).min(self.config.backoff_max);
        let mut r = [0u8; 4];
        let _ = SystemRandom::new().fill(&mut r);
        let frac = f64::from(u32::from_be_bytes(r)) / f64::from(u32::MAX);
        let low = self.config.backoff_base.as_secs_f64() / 2.0;
        Duration::from_secs_f64(low + (cap.as_secs_f64() - low).max(0.0) * frac)
    }

    /// Stops a session (at any moment, retries included); credentials stay.
    pub async fn stop(&self, id: Ulid) -> Result<Session, ManagerError> {
        let current = self.store.get_session(id, None)?;
        if matches!(current.status, SessionStatus::Stopped | SessionStatus::LoggedOut) && !current.desired_running {
            return Err(ManagerError::Conflict("the session is not running", current.status));
        }
        let (_, conn) = self.detach(id);
        if let Some(c) = conn {
            c.stop().await;
        }
        Ok(self
            .persist(id, |s| {
                s.status = SessionStatus::Stopped;
                s.desired_running = false;
            })
            .await?)
    }

    /// Stops (if running) and starts again.
    pub async fn restart(self: &Arc<Self>, id: Ulid) -> Result<Session, ManagerError> {
        self.store.get_session(id, None)?;
        self.launch(id, true).await
    }

    /// Unlinks the device: closes the connection, wipes the protocol state and
    /// marks the session `logged_out` in one transaction; it is not restarted.
    pub async fn logout(&self, id: Ulid) -> Result<Session, ManagerError> {
        let current = self.store.get_session(id, None)?;
        if current.status == SessionStatus::LoggedOut {
            return Err(ManagerError::Conflict("the session is already logged out", current.status));
        }
        let (_, conn) = self.detach(id);
        if let Some(c) = conn {
            if let Err(e) = c.logout().await {
                tracing::warn!(session = %id, error = %e, "logout on the phone failed; wiping local credentials anyway");
            }
        }
        self.logged_out(id, None).await
    }

    async fn logged_out(&self, id: Ulid, reason: Option<String>) -> Result<Session, ManagerError> {
        self.engine.forget(id);
        let store = self.store.clone();
        let session = tokio::task::spawn_blocking(move || {
            store.logout_session(id, |s| {
                s.status = SessionStatus::LoggedOut;
                s.desired_running = false;
                // Unlinked: the next start links a phone afresh.
                s.wa_jid = None;
                s.wa_lid = None;
                s.last_error = reason;
                s.updated_at = now_ms();
            })
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("store task: {e}")))??;
        Ok(session)
    }

    /// The current QR code, while the session waits for a scan.
    pub fn qr(&self, id: Ulid) -> Result<(String, i64), ManagerError> {
        let current = self.store.get_session(id, None)?;
        let qr = self.slot(id, |s| s.qr.clone());
        match qr {
            Some((v, exp)) if current.status == SessionStatus::ScanQrCode && exp > now_ms() => Ok((v, exp)),
            _ => Err(ManagerError::Conflict("no QR code: the session is not waiting for a scan", current.status)),
        }
    }

    /// Requests a pairing code for `phone`, while the session waits to be linked.
    pub async fn pair_code(&self, id: Ulid, phone: &str) -> Result<String, ManagerError> {
        let current = self.store.get_session(id, None)?;
        let conn = self.slot(id, |s| s.conn.clone());
        match conn {
            Some(c) if matches!(current.status, SessionStatus::Starting | SessionStatus::ScanQrCode) => {
                c.pair_code(phone).await.map_err(ManagerError::Engine)
            }
            _ => Err(ManagerError::Conflict("the session is not waiting to be linked", current.status)),
        }
    }

    /// Closes the connection of a session being deleted.
    pub async fn forget(&self, id: Ulid) {
        let (_, conn) = self.detach(id);
        if let Some(c) = conn {
            c.stop().await;
        }
        if let Ok(mut slots) = self.slots.lock() {
            slots.remove(&id);
        }
        self.engine.forget(id);
    }

    /// Starts every session that was meant to be running (at gateway start).
    pub async fn resume_all(self: &Arc<Self>) -> Result<usize, ManagerError> {
        let ids = {
            let store = self.store.clone();
            tokio::task::spawn_blocking(move || store.running_sessions())
                .await
                .map_err(|e| StoreError::Corrupt(format!("store task: {e}")))??
        };
        for id in &ids {
            if let Err(e) = self.launch(*id, false).await {
                tracing::warn!(session = %id, error = %e, "could not resume session");
            }
        }
        Ok(ids.len())
    }

    /// Closes every connection (gateway shutdown); statuses and the intent
    /// to run stay, so the sessions resume on the next start.
    pub async fn shutdown(&self) {
        let conns: Vec<Arc<dyn Connection>> = match self.slots.lock() {
            Ok(mut slots) => slots
                .values_mut()
                .filter_map(|s| {
                    s.generation += 1;
                    if let Some(t) = s.task.take() {
                        t.abort();
                    }
                    s.conn.take()
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        for c in conns {
            c.stop().await;
        }
    }

    async fn event_loop(me: std::sync::Weak<Manager>, mut rx: mpsc::UnboundedReceiver<(Ulid, u64, EngineEvent)>) {
        while let Some(first) = rx.recv().await {
            let Some(m) = me.upgrade() else { return };
            // Drain what is queued: a burst (e.g. every session reconnecting
            // at start) is persisted in a few transactions, not one each.
            let mut batch = vec![first];
            while batch.len() < 512 {
                match rx.try_recv() {
                    Ok(e) => batch.push(e),
                    Err(_) => break,
                }
            }
            m.apply_batch(batch).await;
        }
    }

    /// Applies events in order: consecutive simple status changes are
    /// committed together; disconnects and logouts are handled one by one.
    async fn apply_batch(self: &Arc<Self>, events: Vec<(Ulid, u64, EngineEvent)>) {
        let mut pending: Vec<(Ulid, SessionChange)> = Vec::new();
        let mut applied: Vec<(Ulid, EngineEvent)> = Vec::new();
        for (id, generation, event) in events {
            if !self.slot(id, |s| s.generation == generation) {
                continue;
            }
            match self.simple_change(id, &event) {
                Some(change) => {
                    pending.extend(change.map(|c| (id, c)));
                    applied.push((id, event));
                }
                None => {
                    self.flush(&mut pending, &mut applied).await;
                    match self.apply_one(id, generation, &event).await {
                        Ok(()) => self.publish(id, event),
                        Err(e) => tracing::warn!(session = %id, event = event.kind(), error = %e, "could not apply engine event"),
                    }
                }
            }
        }
        self.flush(&mut pending, &mut applied).await;
    }

    /// Commits the pending changes in one transaction, then publishes their events.
    async fn flush(&self, pending: &mut Vec<(Ulid, SessionChange)>, applied: &mut Vec<(Ulid, EngineEvent)>) {
        if !pending.is_empty() {
            let changes = std::mem::take(pending);
            let store = self.store.clone();
            match tokio::task::spawn_blocking(move || store.update_sessions(changes)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "could not persist engine events"),
                Err(e) => tracing::warn!(error = %e, "store task failed"),
            }
        }
        for (id, event) in applied.drain(..) {
            self.publish(id, event);
        }
    }

    fn publish(&self, session: Ulid, event: EngineEvent) {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        let _ = self.stream.send(SessionEvent { seq, session, at: now_ms(), event });
    }

    /// The store change of an event that needs nothing else (`Some(None)`:
    /// no change at all), or `None` for events handled one by one.
    fn simple_change(&self, id: Ulid, event: &EngineEvent) -> Option<Option<SessionChange>> {
        match event.clone() {
            EngineEvent::Qr { value, expires_at } => {
                self.slot(id, |s| s.qr = Some((value, expires_at)));
                Some(Some(Box::new(|s: &mut Session| {
                    s.status = SessionStatus::ScanQrCode;
                    s.updated_at = now_ms();
                })))
            }
            EngineEvent::Connected { jid, lid, .. } => {
                self.slot(id, |s| {
                    s.attempts = 0;
                    s.qr = None;
                });
                Some(Some(Box::new(move |s: &mut Session| {
                    let now = now_ms();
                    s.status = SessionStatus::Working;
                    if s.phone_number.is_none() {
                        // The linked phone's number, from its JID.
                        s.phone_number = jid
                            .split(['@', ':'])
                            .next()
                            .filter(|n| (6..=20).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()))
                            .map(str::to_string);
                    }
                    s.wa_jid = Some(jid);
                    s.wa_lid = lid.or(s.wa_lid.take());
                    s.last_connected_at = Some(now);
                    s.last_error = None;
                    s.updated_at = now;
                })))
            }
            EngineEvent::PairCode { .. } | EngineEvent::MessageReceived { .. } | EngineEvent::MessageStatus { .. } => {
                Some(None)
            }
            EngineEvent::Disconnected { .. } | EngineEvent::LoggedOut { .. } => None,
        }
    }

    async fn apply_one(self: &Arc<Self>, id: Ulid, generation: u64, event: &EngineEvent) -> Result<(), ManagerError> {
        match event.clone() {
            EngineEvent::Disconnected { reason, retry: true } => {
                self.counters.reconnects.fetch_add(1, Ordering::Relaxed);
                // Counts as a failed attempt: backs off, may end `failed`.
                self.failed_attempt(id, generation, reason).await;
            }
            EngineEvent::Disconnected { reason, retry: false } => {
                self.detach(id);
                self.persist(id, move |s| {
                    s.status = SessionStatus::Failed;
                    s.last_error = Some(reason);
                })
                .await?;
            }
            EngineEvent::LoggedOut { reason } => {
                self.detach(id);
                self.logged_out(id, Some(reason)).await?;
            }
            _ => {}
        }
        Ok(())
    }
}
