//! The directory's background work: `presence.update` events are pruned
//! after `--presence-retention` (every minute, in bounded transactions),
//! and the push name a session connects with becomes its profile's name
//! until one is set through the API.

use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::engine::manager::Manager;
use crate::engine::EngineEvent;
use crate::store::committer::Committer;
use crate::store::contacts as stored;
use crate::store::{now_ms, Store, StoreResult};

/// Rows deleted per pruning transaction.
const PRUNE_BATCH: usize = 1_000;

/// One round of presence pruning: every `presence.update` event older than
/// `retention`. Returns how many went.
pub fn prune_presence(store: &Store, retention: Duration) -> StoreResult<usize> {
    let cutoff = now_ms() - retention.as_millis() as i64;
    let mut n = 0;
    loop {
        let k = store.prune_presence(cutoff, PRUNE_BATCH)?;
        n += k;
        if k < PRUNE_BATCH {
            return Ok(n);
        }
    }
}

/// Starts the directory's tasks (they end with the store).
pub fn start(store: &Arc<Store>, committer: &Arc<Committer>, manager: &Arc<Manager>, retention: Duration) {
    tokio::spawn(janitor(Arc::downgrade(store), retention));
    tokio::spawn(push_names(Arc::downgrade(committer), manager.subscribe()));
}

async fn janitor(store: Weak<Store>, retention: Duration) {
    loop {
        tokio::time::sleep(Duration::from_secs(60)).await;
        let Some(s) = store.upgrade() else { return };
        let _ = tokio::task::spawn_blocking(move || prune_presence(&s, retention)).await;
    }
}

/// On `Connected` with a push name: the profile's name, if it has none.
async fn push_names(committer: Weak<Committer>, mut rx: tokio::sync::broadcast::Receiver<crate::engine::manager::SessionEvent>) {
    loop {
        let ev = match rx.recv().await {
            Ok(ev) => ev,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => return,
        };
        let EngineEvent::Connected { push_name: Some(name), .. } = ev.event else { continue };
        let Some(c) = committer.upgrade() else { return };
        let key = u128::from(ev.session);
        let result = c
            .run(move |txn| {
                let exists = crate::store::sessions::get_in(txn, key)?.is_some();
                let mut p = stored::profile_for_write(txn, key)?.unwrap_or_default();
                if exists && p.name.is_none() {
                    p.name = Some(name);
                    p.updated_at = now_ms();
                    stored::put_profile(txn, key, &p)?;
                }
                Ok(())
            })
            .await;
        if let Err(e) = result {
            tracing::debug!(error = %e, "profile name from the connection not stored");
        }
    }
}
