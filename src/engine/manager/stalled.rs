//! Sessions whose lifecycle writes were refused (disk below the floor, or
//! the data file reopening after an I/O error), started again by themselves
//! once writes work.
//!
//! While writes are refused, a session may connect but not record it (it
//! stays `starting` in the file, its queue never sends), or not start at
//! all (resume at boot fails to write `starting`). Each such session is
//! noted here; when the store says writes are back (its `writes_back`
//! counter, bumped by `store::recovery::watch`, which polls free space
//! while writes are refused), every noted session still meant to run is
//! launched afresh in its turn: `starting` is written, it connects, and its
//! `working` is recorded, which wakes its send queue. A periodic pass also
//! retries them while writes work, so a session noted just after the
//! counter moved is not left behind.

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use ulid::Ulid;

use super::{Manager, ManagerError};
use crate::store::StoreError;

/// How often noted sessions are retried while writes work, besides each
/// time writes come back.
const RETRY_EVERY: Duration = Duration::from_secs(5);

impl Manager {
    /// Notes that a lifecycle write of session `id` was refused, if `e`
    /// says so (a refusal for lack of space or after an I/O error).
    pub(super) fn stall_if_refused(&self, id: Ulid, e: &StoreError) {
        if e.is_refusal() {
            self.stall(id);
        }
    }

    /// Notes session `id` to be started again once writes work.
    pub(super) fn stall(&self, id: Ulid) {
        let mut set = match self.stalled.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        if set.insert(id) {
            tracing::info!(session = %id, "session waits for writes to work again; it starts by itself then");
        }
    }

    /// Disconnects session `id` until writes work (too many of its events
    /// are held in memory): WhatsApp keeps and redelivers what it has not
    /// delivered; the session is started again with the others.
    pub async fn pause_for_writes(&self, id: Ulid) {
        let _turn = self.turn(id).await;
        self.close(id).await;
        self.stall(id);
    }

    /// Takes the noted sessions.
    fn take_stalled(&self) -> HashSet<Ulid> {
        match self.stalled.lock() {
            Ok(mut s) => std::mem::take(&mut *s),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        }
    }

    /// Sessions waiting for writes (for tests and diagnostics).
    pub fn stalled_count(&self) -> usize {
        match self.stalled.lock() {
            Ok(s) => s.len(),
            Err(p) => p.into_inner().len(),
        }
    }

    /// Starts each noted session again that is still meant to run; a
    /// refused write notes it again.
    async fn retry_stalled(self: &Arc<Self>) {
        let ids = self.take_stalled();
        if ids.is_empty() {
            return;
        }
        let mut ids: Vec<Ulid> = ids.into_iter().collect();
        ids.sort();
        let mut started = 0usize;
        for id in ids {
            match self.relaunch(id).await {
                Ok(true) => started += 1,
                Ok(false) => {}
                Err(ManagerError::Store(e)) if e.is_refusal() => self.stall(id),
                Err(e) => tracing::warn!(session = %id, error = %e, "could not start session again"),
            }
        }
        if started > 0 {
            tracing::info!(sessions = started, "writes work again: started the sessions that were waiting");
        }
    }

    /// Launches session `id` afresh, in its turn, if it is still meant to
    /// run and its organization is not suspended.
    async fn relaunch(self: &Arc<Self>, id: Ulid) -> Result<bool, ManagerError> {
        if self.closing.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(false);
        }
        let _turn = self.turn(id).await;
        let session = match self.read(id, None).await {
            Ok(s) => s,
            Err(StoreError::NotFound(_)) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        if !session.desired_running || self.org_suspended(&session.organization_id)? {
            return Ok(false);
        }
        self.launch(id, true).await?;
        Ok(true)
    }

    /// Retries the noted sessions each time writes come back, and every
    /// [`RETRY_EVERY`] while writes work; ends with the manager.
    pub(super) async fn watch_writes(me: Weak<Manager>) {
        let Some(m) = me.upgrade() else { return };
        let mut back = m.store.subscribe_writes_back();
        drop(m);
        loop {
            let changed = tokio::select! {
                r = back.changed() => r.is_ok(),
                _ = tokio::time::sleep(RETRY_EVERY) => true,
            };
            if !changed {
                return;
            }
            let Some(m) = me.upgrade() else { return };
            if m.store.writable() {
                m.retry_stalled().await;
            }
        }
    }
}
