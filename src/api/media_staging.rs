//! Staging a send's media before the commit that queues it (CONTRACT §11
//! continued): each item's bytes go to the data file in their own small
//! commit ([`crate::store::media::stage`]) and leave memory, together with
//! the media budget charged for them; the queueing commit attaches the
//! blobs. A request that does not commit discards what it staged.

use std::sync::Arc;

use super::message_input::Outgoing;
use crate::app::App;
use crate::http::ApiError;
use crate::messaging::media_fetch::FetchPolicy;
use crate::store::{media, now_ms};

/// How long an item of a batch waits for room in the media budget: longer
/// than a single send (the batch has already fetched and staged the items
/// before it), still bounded.
pub const BATCH_ITEM_BUDGET_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The fetch rules of a send: the gateway's private-URL flag, and the media
/// budget with `wait` for room.
pub fn fetch_policy(app: &App, wait: std::time::Duration) -> FetchPolicy {
    FetchPolicy {
        allow_private: app.config.messaging.allow_private_urls,
        budget: Some((app.media_budget.clone(), wait)),
        ..FetchPolicy::default()
    }
}

/// The blobs a request has staged; exists so that a request that ends any
/// other way than committed (refused, failed, panicked) discards them: the
/// drop hands the discard to the writer.
pub struct Staged {
    app: Arc<App>,
    pub blobs: Vec<u128>,
}

impl Staged {
    /// Nothing staged yet.
    pub fn new(app: &Arc<App>) -> Staged {
        Staged { app: app.clone(), blobs: Vec::new() }
    }

    /// Stages `item`'s media (if any) in its own commit, drops the bytes and
    /// the budget charged for them, and remembers the blob.
    pub async fn stage(&mut self, org: &str, item: &mut Outgoing) -> Result<(), ApiError> {
        let Some((bytes, _, _)) = item.media.as_mut() else { return Ok(()) };
        let bytes = std::mem::take(bytes);
        let (org, size) = (org.to_string(), bytes.len() as u64);
        let blob = self.app.committer.run(move |txn| media::stage(txn, &org, &bytes, now_ms())).await?;
        self.blobs.push(blob);
        item.staged = Some((blob, size));
        item.charge = None;
        Ok(())
    }

    /// The request committed: the blobs are attached, not to be discarded.
    pub fn keep(mut self) {
        self.blobs.clear();
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.blobs.is_empty() {
            return;
        }
        let (app, blobs) = (self.app.clone(), std::mem::take(&mut self.blobs));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                // Left staged on failure: the janitor's sweep removes it.
                if let Err(e) = app.committer.run(move |txn| media::discard(txn, &blobs)).await {
                    tracing::warn!(error = %e, "could not discard staged media");
                }
            });
        }
    }
}
