//! The session lifecycle around an engine: start, stop, restart, logout,
//! QR and pairing; every status change persisted with `updatedAt`;
//! reconnects with exponential backoff and jitter, `failed` once retries are
//! exhausted; sessions meant to run are started again when the gateway starts.
//!
//! Each start bumps the session's generation; events and scheduled retries
//! of an older generation are dropped, so `stop` wins at any moment. Applied
//! events are published, numbered, on [`Manager::subscribe`].
//!
//! One lifecycle operation at a time per session: start, stop, restart,
//! logout, delete, resume and suspension each hold the session's *turn* (a
//! per-session async mutex) for their whole run, so two of them never
//! interleave on one session, and sessions never wait for each other. What a
//! connection writes on its own (engine events, the connect and backoff
//! tasks) is not serialized that way; instead each such write re-checks,
//! inside its write transaction, that its generation is still current. redb
//! has one writer at a time and an operation ends the generation before it
//! writes, so a stale event can never overwrite what an operation wrote.
//!
//! The invariant this buys, once calls have returned and events are applied:
//! a session's stored status is `starting`, `scan_qr_code` or `working` only
//! while it has a connection task (a live connection, or a pending connect or
//! backoff), and any other status only while it has none
//! ([`Manager::has_connection_task`]).
//!
//! Split by responsibility: `connect` (connects, retries, backoff), `events`
//! (the engine-event loop), `suspension` (resume at boot, organizations
//! suspended and reactivated).

mod connect;
mod events;
mod stalled;
mod suspension;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, OwnedMutexGuard};
use ulid::Ulid;

use super::{Connection, Engine, EngineError, EngineEvent};
use crate::store::records::{Session, SessionStatus};
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
    /// The gateway is shutting down: no new connection is opened, so that
    /// none outlives [`Manager::shutdown`].
    ShuttingDown,
}

impl fmt::Display for ManagerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManagerError::Conflict(m, st) => write!(f, "{m} (status {})", st.as_str()),
            ManagerError::Engine(e) => write!(f, "{e}"),
            ManagerError::Store(e) => write!(f, "{e}"),
            ManagerError::ShuttingDown => write!(f, "the gateway is shutting down"),
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

/// The per-session runtime state, shared with store closures (which check a
/// generation inside their write transaction).
type Slots = Arc<Mutex<HashMap<Ulid, Slot>>>;

/// Runs `f` on the slot map, poisoned or not (a panic elsewhere must not
/// wedge every session).
fn with_slots<T>(slots: &Mutex<HashMap<Ulid, Slot>>, f: impl FnOnce(&mut HashMap<Ulid, Slot>) -> T) -> T {
    match slots.lock() {
        Ok(mut map) => f(&mut map),
        Err(poisoned) => f(&mut poisoned.into_inner()),
    }
}

/// Whether `generation` is the current one of session `id` (a session with no
/// slot has no current generation).
fn is_current(slots: &Mutex<HashMap<Ulid, Slot>>, id: Ulid, generation: u64) -> bool {
    with_slots(slots, |m| m.get(&id).is_some_and(|s| s.generation == generation))
}

/// Aborts a pending task, unless it is the task calling (a connect task that
/// ends its own generation must still finish its write).
fn end_task(task: tokio::task::AbortHandle) {
    if tokio::task::try_id() != Some(task.id()) {
        task.abort();
    }
}

/// Counters for `/metrics`.
#[derive(Default)]
pub struct EngineCounters {
    /// Reconnect attempts (a Prometheus counter; `/metrics` shows it).
    pub reconnects: prometheus_client::metrics::counter::Counter,
    /// Failed connects.
    pub errors: prometheus_client::metrics::counter::Counter,
}

/// Runs sessions on an engine.
pub struct Manager {
    engine: Arc<dyn Engine>,
    store: Arc<Store>,
    config: ManagerConfig,
    slots: Slots,
    /// Each session's turn: held across a whole lifecycle operation.
    turns: Mutex<HashMap<Ulid, Arc<tokio::sync::Mutex<()>>>>,
    /// Set by [`Manager::shutdown`] (under the slot lock): no task is spawned after it.
    closing: AtomicBool,
    tx: mpsc::UnboundedSender<(Ulid, u64, EngineEvent)>,
    stream: broadcast::Sender<SessionEvent>,
    seq: AtomicU64,
    /// Permits for [`ManagerConfig::max_concurrent_connects`].
    connecting: tokio::sync::Semaphore,
    /// Where message events go (the messaging layer), once it is set.
    message_sink: std::sync::OnceLock<mpsc::UnboundedSender<(Ulid, EngineEvent)>>,
    /// Sessions whose lifecycle writes were refused (disk full): started
    /// again once writes work (see `stalled`).
    stalled: Mutex<HashSet<Ulid>>,
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
            slots: Arc::new(Mutex::new(HashMap::new())),
            turns: Mutex::new(HashMap::new()),
            closing: AtomicBool::new(false),
            tx,
            stream,
            seq: AtomicU64::new(0),
            connecting: tokio::sync::Semaphore::new(config_connects),
            message_sink: std::sync::OnceLock::new(),
            stalled: Mutex::new(HashSet::new()),
            counters: EngineCounters::default(),
        });
        tokio::spawn(Manager::event_loop(Arc::downgrade(&m), rx));
        tokio::spawn(Manager::watch_writes(Arc::downgrade(&m)));
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

    /// Sends message events ([`EngineEvent::is_messaging`]) of current
    /// connections to `tx`, in the order they arrived (set once).
    pub fn set_message_sink(&self, tx: mpsc::UnboundedSender<(Ulid, EngineEvent)>) {
        let _ = self.message_sink.set(tx);
    }

    /// The live connection of session `id`, if it has one.
    pub fn connection(&self, id: Ulid) -> Option<Arc<dyn Connection>> {
        with_slots(&self.slots, |m| m.get(&id).and_then(|s| s.conn.clone()))
    }

    /// Sessions this process is running, by live status (for metrics).
    pub fn live_count(&self) -> usize {
        with_slots(&self.slots, |m| m.values().filter(|x| x.conn.is_some()).count())
    }

    /// Whether session `id` has a connection task in this process: a live
    /// connection, or a pending connect or backoff. Exists so tests (and
    /// diagnostics) can check the lifecycle invariant: once things settle, a
    /// session is `starting`, `scan_qr_code` or `working` exactly when this
    /// holds.
    pub fn has_connection_task(&self, id: Ulid) -> bool {
        with_slots(&self.slots, |m| {
            m.get(&id)
                .is_some_and(|s| s.conn.is_some() || s.task.as_ref().is_some_and(|t| !t.is_finished()))
        })
    }

    /// Runs `f` on the slot of `id`, creating it if new.
    fn slot<T>(&self, id: Ulid, f: impl FnOnce(&mut Slot) -> T) -> T {
        with_slots(&self.slots, |m| f(m.entry(id).or_default()))
    }

    /// Waits for session `id`'s turn; the guard ends it. Every lifecycle
    /// operation takes it first, so operations on one session run one after
    /// another (an operation holds at most one turn, except suspension,
    /// which takes its sessions' turns in id order: no cycle can form).
    async fn turn(&self, id: Ulid) -> OwnedMutexGuard<()> {
        let lock = match self.turns.lock() {
            Ok(mut m) => m.entry(id).or_default().clone(),
            Err(poisoned) => poisoned.into_inner().entry(id).or_default().clone(),
        };
        lock.lock_owned().await
    }

    /// Forgets a deleted session's turn (an operation still waiting on it
    /// finds the session gone).
    fn drop_turn(&self, id: Ulid) {
        match self.turns.lock() {
            Ok(mut m) => m.remove(&id),
            Err(poisoned) => poisoned.into_inner().remove(&id),
        };
    }

    /// Bumps the generation (cancelling retries and silencing the old
    /// connection) and takes the connection out; creates the slot if new.
    fn detach(&self, id: Ulid) -> (u64, Option<Arc<dyn Connection>>) {
        self.slot(id, |s| {
            s.generation += 1;
            s.qr = None;
            if let Some(t) = s.task.take() {
                end_task(t);
            }
            (s.generation, s.conn.take())
        })
    }

    /// Ends whatever runs for session `id` (as [`Manager::detach`]) and closes
    /// its connection; a session never started here has nothing to end.
    async fn close(&self, id: Ulid) {
        let has_slot = with_slots(&self.slots, |m| m.contains_key(&id));
        if has_slot {
            if let (_, Some(c)) = self.detach(id) {
                c.stop().await;
            }
        }
    }

    /// Ends generation `generation` of session `id` if it is still the
    /// current one (an engine event saying the connection is over): returns
    /// the new generation and the connection, or `None` if it was stale.
    fn end_generation(&self, id: Ulid, generation: u64) -> Option<(u64, Option<Arc<dyn Connection>>)> {
        with_slots(&self.slots, |m| {
            let s = m.get_mut(&id).filter(|s| s.generation == generation)?;
            s.generation += 1;
            s.qr = None;
            if let Some(t) = s.task.take() {
                end_task(t);
            }
            Some((s.generation, s.conn.take()))
        })
    }

    /// Writes `change` (and `updatedAt`) unconditionally: for operations,
    /// which hold the session's turn.
    /// Reads a session (within `org`, if given) on the blocking pool.
    async fn read(&self, id: Ulid, org: Option<String>) -> Result<Session, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.get_session(id, org.as_deref()))
            .await
            .map_err(|e| StoreError::Corrupt(format!("store task: {e}")))?
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

    /// Writes `change` (and `updatedAt`) only if `generation` is still the
    /// session's current one when the write transaction runs, and `change`
    /// agrees (returns `true`): for writes a connection makes on its own.
    /// `None` when nothing was written.
    async fn persist_if(
        &self,
        id: Ulid,
        generation: u64,
        change: impl FnOnce(&mut Session) -> bool + Send + 'static,
    ) -> Result<Option<Session>, StoreError> {
        let (store, slots) = (self.store.clone(), self.slots.clone());
        tokio::task::spawn_blocking(move || {
            store.update_session_if(id, move |s| {
                if !is_current(&slots, id, generation) || !change(s) {
                    return false;
                }
                s.updated_at = now_ms();
                true
            })
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("store task: {e}")))?
    }

    /// Refuses to start a session of a suspended organization.
    fn refuse_suspended(&self, session: &Session) -> Result<(), ManagerError> {
        if self.org_suspended(&session.organization_id)? {
            return Err(ManagerError::Conflict(
                "the organization is suspended: reactivate it to start its sessions",
                session.status,
            ));
        }
        Ok(())
    }

    /// Starts a stopped, failed or logged-out session (or one that says it is
    /// running but has no connection here, e.g. not yet resumed at boot).
    pub async fn start(self: &Arc<Self>, id: Ulid) -> Result<Session, ManagerError> {
        let _turn = self.turn(id).await;
        let current = self.read(id, None).await?;
        if running(current.status) && self.has_connection_task(id) {
            return Err(ManagerError::Conflict("the session is already running", current.status));
        }
        self.refuse_suspended(&current)?;
        self.launch(id, true).await
    }

    /// Stops a session (at any moment, retries included); credentials stay.
    pub async fn stop(&self, id: Ulid) -> Result<Session, ManagerError> {
        let _turn = self.turn(id).await;
        let current = self.read(id, None).await?;
        if matches!(current.status, SessionStatus::Stopped | SessionStatus::LoggedOut)
            && !current.desired_running
            && !self.has_connection_task(id)
        {
            return Err(ManagerError::Conflict("the session is not running", current.status));
        }
        self.close(id).await;
        Ok(self
            .persist(id, |s| {
                s.status = SessionStatus::Stopped;
                s.desired_running = false;
            })
            .await?)
    }

    /// Stops (if running) and starts again.
    pub async fn restart(self: &Arc<Self>, id: Ulid) -> Result<Session, ManagerError> {
        let _turn = self.turn(id).await;
        let current = self.read(id, None).await?;
        self.refuse_suspended(&current)?;
        self.launch(id, true).await
    }

    /// Unlinks the device: closes the connection, wipes the protocol state and
    /// marks the session `logged_out` in one transaction; it is not restarted.
    pub async fn logout(&self, id: Ulid) -> Result<Session, ManagerError> {
        let _turn = self.turn(id).await;
        let current = self.read(id, None).await?;
        if current.status == SessionStatus::LoggedOut && !self.has_connection_task(id) {
            return Err(ManagerError::Conflict("the session is already logged out", current.status));
        }
        let (_, conn) = self.detach(id);
        if let Some(c) = conn {
            if let Err(e) = c.logout().await {
                tracing::warn!(session = %id, error = %e, "logout on the phone failed; wiping local credentials anyway");
            }
        }
        self.logged_out_if(id, None, None)
            .await?
            .ok_or(ManagerError::Store(StoreError::NotFound("session")))
    }

    /// Marks the session `logged_out` and wipes its protocol state, in one
    /// transaction; with `generation`, only if it is still current then.
    /// The engine forgets the session only once that is written.
    async fn logged_out_if(
        &self,
        id: Ulid,
        generation: Option<u64>,
        reason: Option<String>,
    ) -> Result<Option<Session>, ManagerError> {
        let (store, slots) = (self.store.clone(), self.slots.clone());
        let session = tokio::task::spawn_blocking(move || {
            store.logout_session_if(id, |s| {
                if generation.is_some_and(|g| !is_current(&slots, id, g)) {
                    return false;
                }
                s.status = SessionStatus::LoggedOut;
                s.desired_running = false;
                // Unlinked: the next start links a phone afresh.
                s.wa_jid = None;
                s.wa_lid = None;
                s.last_error = reason;
                s.updated_at = now_ms();
                true
            })
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("store task: {e}")))??;
        if session.is_some() {
            self.engine.forget(id);
        }
        Ok(session)
    }

    /// The current QR code, while the session waits for a scan.
    pub async fn qr(&self, id: Ulid) -> Result<(String, i64), ManagerError> {
        let current = self.read(id, None).await?;
        let qr = with_slots(&self.slots, |m| m.get(&id).and_then(|s| s.qr.clone()));
        match qr {
            Some((v, exp)) if current.status == SessionStatus::ScanQrCode && exp > now_ms() => Ok((v, exp)),
            _ => Err(ManagerError::Conflict("no QR code: the session is not waiting for a scan", current.status)),
        }
    }

    /// Requests a pairing code for `phone`, while the session waits to be linked.
    pub async fn pair_code(&self, id: Ulid, phone: &str) -> Result<String, ManagerError> {
        let current = self.read(id, None).await?;
        let conn = with_slots(&self.slots, |m| m.get(&id).and_then(|s| s.conn.clone()));
        match conn {
            Some(c) if matches!(current.status, SessionStatus::Starting | SessionStatus::ScanQrCode) => {
                c.pair_code(phone).await.map_err(ManagerError::Engine)
            }
            _ => Err(ManagerError::Conflict("the session is not waiting to be linked", current.status)),
        }
    }

    /// Deletes a session (within `org`, if given) in its turn: closes its
    /// connection first (so nothing writes protocol state after the wipe),
    /// then removes the record, its indexes and its protocol state.
    pub async fn delete(&self, id: Ulid, org: Option<String>) -> Result<(), ManagerError> {
        let _turn = self.turn(id).await;
        self.read(id, org.clone()).await?;
        self.close(id).await;
        let store = self.store.clone();
        let deleted = tokio::task::spawn_blocking(move || store.delete_session(id, org.as_deref(), |_| Ok(())))
            .await
            .map_err(|e| StoreError::Corrupt(format!("store task: {e}")))?;
        if let Err(e) = deleted {
            // Kept, but no longer connected: say so.
            let _ = self
                .persist(id, |s| {
                    if running(s.status) {
                        s.status = SessionStatus::Stopped;
                    }
                })
                .await;
            return Err(e.into());
        }
        self.forget_locked(id);
        Ok(())
    }

    /// Closes the connection of a session being deleted (by a caller that
    /// deletes the record itself; [`Manager::delete`] does both in one turn).
    pub async fn forget(&self, id: Ulid) {
        let _turn = self.turn(id).await;
        self.close(id).await;
        self.forget_locked(id);
    }

    /// Drops everything kept for a deleted session; in its turn.
    fn forget_locked(&self, id: Ulid) {
        with_slots(&self.slots, |m| m.remove(&id));
        self.engine.forget(id);
        self.drop_turn(id);
    }

    /// Closes every connection (gateway shutdown); statuses and the intent
    /// to run stay, so the sessions resume on the next start.
    pub async fn shutdown(&self) {
        let conns: Vec<Arc<dyn Connection>> = with_slots(&self.slots, |m| {
            self.closing.store(true, Ordering::SeqCst);
            m.values_mut()
                .filter_map(|s| {
                    s.generation += 1;
                    if let Some(t) = s.task.take() {
                        t.abort();
                    }
                    s.conn.take()
                })
                .collect()
        });
        for c in conns {
            c.stop().await;
        }
    }

    /// Numbers an applied event and sends it to subscribers.
    fn publish(&self, session: Ulid, event: EngineEvent) {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        let _ = self.stream.send(SessionEvent { seq, session, at: now_ms(), event });
    }
}
