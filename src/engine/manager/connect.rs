//! Opening connections: a launch per start, the connect task, failed
//! attempts with exponential backoff and jitter, `failed` once retries are
//! exhausted. Everything here runs for one generation and writes only while
//! that generation is current (checked inside the write transaction).

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};
use ulid::Ulid;

use super::{end_task, is_current, with_slots, Manager, ManagerError, Slot};
use crate::engine::{BoxFuture, Connection, EventSink, StartInfo};
use crate::store::records::{Session, SessionStatus};

impl Manager {
    /// Opens a fresh connection, in the caller's turn; `mark` persists
    /// `starting` first (resume at boot skips it when `Store::mark_resuming`
    /// already did, in one transaction).
    pub(super) async fn launch(self: &Arc<Self>, id: Ulid, mark: bool) -> Result<Session, ManagerError> {
        if self.closing.load(Ordering::SeqCst) {
            return Err(ManagerError::ShuttingDown);
        }
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
            self.read(id, None).await?
        };
        self.spawn_for(id, generation, self.clone().connect(id, generation));
        Ok(session)
    }

    /// Runs `work` for `generation` of session `id` as its one pending task
    /// (or not at all if that generation is already over, or the gateway is
    /// shutting down); a task it replaces is aborted.
    pub(super) fn spawn_for(&self, id: Ulid, generation: u64, work: impl Future<Output = ()> + Send + 'static) {
        let task = tokio::spawn(work);
        let handle = task.abort_handle();
        let closing = &self.closing;
        if !self.if_current(id, generation, |s| {
            if closing.load(Ordering::SeqCst) {
                return false;
            }
            if let Some(old) = s.task.replace(handle) {
                end_task(old);
            }
            true
        }) {
            task.abort();
        }
    }

    /// Runs `f` on the slot of `id` if `generation` is still its current one;
    /// says whether it was and `f` agreed.
    pub(super) fn if_current(&self, id: Ulid, generation: u64, f: impl FnOnce(&mut Slot) -> bool) -> bool {
        with_slots(&self.slots, |m| match m.get_mut(&id) {
            Some(s) if s.generation == generation => f(s),
            _ => false,
        })
    }

    /// Whether `generation` is session `id`'s current one.
    pub(super) fn current(&self, id: Ulid, generation: u64) -> bool {
        is_current(&self.slots, id, generation)
    }

    /// Opens the connection for `generation` (boxed: retries recurse).
    fn connect(self: Arc<Self>, id: Ulid, generation: u64) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let session = match self.read(id, None).await {
                Ok(s) => s,
                // Deleted meanwhile: nothing to connect.
                Err(crate::store::StoreError::NotFound(_)) => return,
                // Counts as a failed attempt, so the session never sits
                // `starting` with nothing behind it.
                Err(e) => return self.failed_attempt(id, generation, e.to_string()).await,
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
                    if !self.if_current(id, generation, |s| {
                        s.conn = Some(conn.clone());
                        true
                    }) {
                        // Stale already: closed in a task of its own, which
                        // no later stop aborts halfway.
                        tokio::spawn(async move { conn.stop().await });
                    }
                }
                Err(e) => self.failed_attempt(id, generation, e.to_string()).await,
            }
        })
    }

    /// One connect failed: back off and retry, or give up as `failed`.
    pub(super) async fn failed_attempt(self: &Arc<Self>, id: Ulid, generation: u64, error: String) {
        self.counters.errors.inc();
        let mut attempts = 0;
        if !self.if_current(id, generation, |s| {
            s.attempts += 1;
            s.conn = None;
            attempts = s.attempts;
            true
        }) {
            return;
        }
        let err = error.clone();
        if attempts >= self.config.max_attempts {
            tracing::warn!(session = %id, attempts, error = %error, "session failed: retries exhausted");
            // The generation ends here (nothing of it runs any more), and
            // `failed` is written only if no operation came in between.
            let Some((ended, _)) = self.end_generation(id, generation) else { return };
            if let Err(e) = self
                .persist_if(id, ended, move |s| {
                    s.status = SessionStatus::Failed;
                    s.last_error = Some(err);
                    true
                })
                .await
            {
                self.stall_if_refused(id, &e);
            }
            return;
        }
        // A session already `starting` stays so: retrying costs no write (the
        // API shows no lastError while starting; each attempt's error is logged).
        if let Err(e) = self
            .persist_if(id, generation, move |s| {
                if s.status == SessionStatus::Starting {
                    return false;
                }
                s.status = SessionStatus::Starting;
                s.last_error = Some(err);
                true
            })
            .await
        {
            self.stall_if_refused(id, &e);
        }
        let delay = self.backoff(attempts);
        tracing::info!(session = %id, attempts, delay_ms = delay.as_millis() as u64, error = %error, "reconnecting");
        let me = self.clone();
        self.spawn_for(id, generation, async move {
            tokio::time::sleep(delay).await;
            if me.current(id, generation) {
                me.counters.reconnects.inc();
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
}
