//! Sessions started again at gateway start, and organizations suspended and
//! reactivated.
//!
//! Suspension closes every connection of the organization and marks its
//! running sessions `stopped`, but leaves their `desired_running` set: that
//! flag is what "meant to run" has always meant, so it records exactly which
//! sessions suspension interrupted (a session someone stopped has it clear).
//! While suspended, nothing starts them: [`Manager::start`] and
//! [`Manager::restart`] answer a conflict, resume at boot skips them (and
//! `Store::mark_resuming` shows them `stopped`). Reactivation resumes the
//! organization's sessions meant to run, exactly as a gateway start would
//! (so a `failed` session still meant to run is retried, as at boot). A
//! super_admin's stop during the suspension clears `desired_running`: that
//! session stays stopped when the organization comes back.

use std::sync::Arc;

use ulid::Ulid;

use super::{running, Manager, ManagerError};
use crate::store::now_ms;
use crate::store::records::{Session, SessionStatus};
use crate::store::sessions::GuardedChange;
use crate::store::StoreError;

impl Manager {
    /// Whether organization `org` is suspended (an unknown one is not).
    pub(super) fn org_suspended(&self, org: &str) -> Result<bool, StoreError> {
        Ok(self.store.is_suspended(org))
    }

    /// Starts every session that was meant to be running (at gateway start),
    /// except those of suspended organizations; returns how many it started.
    pub async fn resume_all(self: &Arc<Self>) -> Result<usize, ManagerError> {
        let ids = {
            let store = self.store.clone();
            tokio::task::spawn_blocking(move || store.running_sessions())
                .await
                .map_err(|e| StoreError::Corrupt(format!("store task: {e}")))??
        };
        Ok(self.resume_each(&ids).await)
    }

    /// Resumes each of `ids` that is meant to run; returns how many started.
    async fn resume_each(self: &Arc<Self>, ids: &[Ulid]) -> usize {
        let mut started = 0;
        for id in ids {
            match self.resume_one(*id).await {
                Ok(true) => started += 1,
                Ok(false) => {}
                Err(e) => {
                    if let ManagerError::Store(e) = &e {
                        self.stall_if_refused(*id, e);
                    }
                    tracing::warn!(session = %id, error = %e, "could not resume session")
                }
            }
        }
        started
    }

    /// Starts session `id` again, in its turn, if it is still meant to run,
    /// its organization is not suspended and nothing runs it yet (a user's
    /// start may have come first). Returns whether it started it.
    async fn resume_one(self: &Arc<Self>, id: Ulid) -> Result<bool, ManagerError> {
        let _turn = self.turn(id).await;
        let session = match self.read(id, None).await {
            Ok(s) => s,
            Err(StoreError::NotFound(_)) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        if !session.desired_running || self.has_connection_task(id) || self.org_suspended(&session.organization_id)? {
            return Ok(false);
        }
        // `starting` already when `Store::mark_resuming` marked it; anything
        // else (stopped by a suspension, failed) says `starting` from now on.
        self.launch(id, session.status != SessionStatus::Starting).await?;
        Ok(true)
    }

    /// Stops every running session of `org`, which the caller has just
    /// marked suspended: closes their connections and writes them `stopped`
    /// in one transaction, keeping `desired_running` (reactivation starts
    /// them again). Holds all their turns meanwhile, taken in id order (every
    /// other operation holds one turn only, so this cannot deadlock). Does
    /// nothing if the organization is active again by the time it holds
    /// them (a reactivation won). Returns how many sessions it stopped.
    pub async fn suspend_org(&self, org: &str) -> Result<usize, ManagerError> {
        let ids = self.org_sessions(org).await?;
        let mut turns = Vec::with_capacity(ids.len());
        for id in &ids {
            turns.push(self.turn(*id).await);
        }
        if !self.org_suspended(org)? {
            return Ok(0);
        }
        for id in &ids {
            self.close(*id).await;
        }
        let changes: Vec<(Ulid, GuardedChange)> = ids
            .iter()
            .map(|id| {
                let change: GuardedChange = Box::new(|s: &mut Session| {
                    if !running(s.status) {
                        return false;
                    }
                    s.status = SessionStatus::Stopped;
                    s.updated_at = now_ms();
                    true
                });
                (*id, change)
            })
            .collect();
        let store = self.store.clone();
        let written = tokio::task::spawn_blocking(move || store.update_sessions_if(changes))
            .await
            .map_err(|e| StoreError::Corrupt(format!("store task: {e}")))??;
        drop(turns);
        Ok(written.into_iter().filter(|w| *w).count())
    }

    /// Starts again the sessions of `org` meant to run (those its suspension
    /// stopped, and any the gateway would resume at start), once the caller
    /// has marked it active; returns how many it started.
    pub async fn resume_org(self: &Arc<Self>, org: &str) -> Result<usize, ManagerError> {
        let ids = self.org_sessions(org).await?;
        Ok(self.resume_each(&ids).await)
    }

    /// Ids of `org`'s sessions, in id order.
    async fn org_sessions(&self, org: &str) -> Result<Vec<Ulid>, StoreError> {
        let (store, org) = (self.store.clone(), org.to_string());
        tokio::task::spawn_blocking(move || store.org_session_ids(&org))
            .await
            .map_err(|e| StoreError::Corrupt(format!("store task: {e}")))?
    }
}
