//! The engine-event loop: events are applied in order, each only if its
//! generation is still current, and that check is repeated inside the write
//! transaction that applies it, so an operation that ended the generation
//! meanwhile (and wrote its own status) is never overwritten.

use std::sync::Arc;

use tokio::sync::mpsc;
use ulid::Ulid;

use super::{is_current, Manager};
use crate::engine::EngineEvent;
use crate::store::now_ms;
use crate::store::records::{Session, SessionStatus};
use crate::store::sessions::{GuardedChange, SessionChange};

/// An event accepted for the current batch, with the index of its store
/// change in the batch's pending changes (`None`: it changes nothing stored).
type Accepted = (Ulid, EngineEvent, Option<usize>);

impl Manager {
    /// Receives every connection's events, in order, and applies them in
    /// batches; ends when the manager is dropped.
    pub(super) async fn event_loop(
        me: std::sync::Weak<Manager>,
        mut rx: mpsc::UnboundedReceiver<(Ulid, u64, EngineEvent)>,
    ) {
        while let Some(first) = rx.recv().await {
            let Some(m) = me.upgrade() else { return };
            // Drain what is queued: a burst (e.g. every session reconnecting
            // at start) is persisted in a few transactions, not one each.
            m.apply_batch(crate::drain(first, &mut rx, 512)).await;
        }
    }

    /// Applies events in order: consecutive simple status changes are
    /// committed together; disconnects and logouts are handled one by one.
    async fn apply_batch(self: &Arc<Self>, events: Vec<(Ulid, u64, EngineEvent)>) {
        let mut pending: Vec<(Ulid, GuardedChange)> = Vec::new();
        let mut accepted: Vec<Accepted> = Vec::new();
        for (id, generation, event) in events {
            if !self.current(id, generation) {
                continue;
            }
            if event.is_messaging() {
                if let Some(tx) = self.message_sink.get() {
                    let _ = tx.send((id, event));
                }
                continue;
            }
            match self.simple_change(id, generation, &event) {
                Some(change) => {
                    let index = change.map(|c| {
                        pending.push((id, self.guarded(id, generation, c)));
                        pending.len() - 1
                    });
                    accepted.push((id, event, index));
                }
                None => {
                    self.flush(&mut pending, &mut accepted).await;
                    match self.apply_one(id, generation, &event).await {
                        Ok(true) => self.publish(id, event),
                        Ok(false) => {}
                        Err(e) => {
                            if let super::ManagerError::Store(e) = &e {
                                self.stall_if_refused(id, e);
                            }
                            tracing::warn!(session = %id, event = event.kind(), error = %e, "could not apply engine event")
                        }
                    }
                }
            }
        }
        self.flush(&mut pending, &mut accepted).await;
    }

    /// Wraps an event's change so that it applies only if `generation` is
    /// still current inside the write transaction.
    fn guarded(&self, id: Ulid, generation: u64, change: SessionChange) -> GuardedChange {
        let slots = self.slots.clone();
        Box::new(move |s: &mut Session| {
            if !is_current(&slots, id, generation) {
                return false;
            }
            change(s);
            true
        })
    }

    /// Commits the pending changes in one transaction, then publishes the
    /// events that were applied (a change dropped as stale is not published).
    async fn flush(&self, pending: &mut Vec<(Ulid, GuardedChange)>, accepted: &mut Vec<Accepted>) {
        let mut written = Vec::new();
        if !pending.is_empty() {
            let changes = std::mem::take(pending);
            let ids: Vec<Ulid> = changes.iter().map(|(id, _)| *id).collect();
            let store = self.store.clone();
            match tokio::task::spawn_blocking(move || store.update_sessions_if(changes)).await {
                Ok(Ok(w)) => written = w,
                Ok(Err(e)) => {
                    // Refused (disk full): these sessions are started
                    // afresh once writes work, which records them again.
                    ids.iter().for_each(|id| self.stall_if_refused(*id, &e));
                    tracing::warn!(error = %e, "could not persist engine events")
                }
                Err(e) => tracing::warn!(error = %e, "store task failed"),
            }
        }
        for (id, event, index) in accepted.drain(..) {
            if index.is_none_or(|i| written.get(i).copied().unwrap_or(false)) {
                self.publish(id, event);
            }
        }
    }

    /// The store change of an event that needs nothing else (`Some(None)`:
    /// no change at all), or `None` for events handled one by one.
    fn simple_change(&self, id: Ulid, generation: u64, event: &EngineEvent) -> Option<Option<SessionChange>> {
        match event.clone() {
            EngineEvent::Qr { value, expires_at } => {
                self.if_current(id, generation, |s| {
                    s.qr = Some((value, expires_at));
                    true
                });
                Some(Some(Box::new(|s: &mut Session| {
                    s.status = SessionStatus::ScanQrCode;
                    s.updated_at = now_ms();
                })))
            }
            EngineEvent::Connected { jid, lid, .. } => {
                self.if_current(id, generation, |s| {
                    s.attempts = 0;
                    s.qr = None;
                    true
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
            EngineEvent::Disconnected { .. } | EngineEvent::LoggedOut { .. } => None,
            _ => Some(None),
        }
    }

    /// Applies a disconnect or logout; says whether it took effect (it does
    /// not if an operation ended the generation first).
    async fn apply_one(self: &Arc<Self>, id: Ulid, generation: u64, event: &EngineEvent) -> Result<bool, super::ManagerError> {
        match event.clone() {
            EngineEvent::Disconnected { reason, retry: true } => {
                self.counters.reconnects.inc();
                // Counts as a failed attempt: backs off, may end `failed`.
                self.failed_attempt(id, generation, reason).await;
                Ok(true)
            }
            EngineEvent::Disconnected { reason, retry: false } => {
                let Some((ended, conn)) = self.end_generation(id, generation) else { return Ok(false) };
                if let Some(c) = conn {
                    tokio::spawn(async move { c.stop().await });
                }
                let written = self
                    .persist_if(id, ended, move |s| {
                        s.status = SessionStatus::Failed;
                        s.last_error = Some(reason);
                        true
                    })
                    .await?;
                Ok(written.is_some())
            }
            EngineEvent::LoggedOut { reason } => {
                let Some((ended, conn)) = self.end_generation(id, generation) else { return Ok(false) };
                if let Some(c) = conn {
                    tokio::spawn(async move { c.stop().await });
                }
                Ok(self.logged_out_if(id, Some(ended), Some(reason)).await?.is_some())
            }
            _ => Ok(true),
        }
    }
}
