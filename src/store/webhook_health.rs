//! Whether a webhook endpoint has been failing long enough to be disabled
//! (CONTRACT §10: "An endpoint failing for 5 days in a row is disabled").
//!
//! `webhook_health` keeps, per webhook, since when its attempts have failed
//! with no success in between. It is a table of its own, not a field of the
//! golden-pinned `Webhook` v1 record, and it is written in the same
//! transaction as the attempt that moves it, so a crash never loses or
//! invents a failing streak. The rule itself is [`disable_after_failures`],
//! a pure function of the clock.

use redb::{ReadableTable, WriteTransaction};

use super::tables::{WEBHOOKS, WEBHOOK_HEALTH};
use super::webhook_records::Webhook;
use super::records::Record;
use super::StoreResult;

/// How long an endpoint may fail with no success before it is disabled.
pub const FAILING_LIMIT_MS: i64 = 5 * 24 * 60 * 60 * 1000;

/// The reason a disabled webhook shows (`disabledReason`).
pub const FAILING_REASON: &str = "the endpoint failed every attempt for 5 days in a row";

/// Whether a failure at `now` (Unix ms) disables the endpoint, given since
/// when it has been failing (`None`: its last attempt succeeded, or it has
/// had none): only once the streak has lasted [`FAILING_LIMIT_MS`].
pub fn disable_after_failures(failing_since: Option<i64>, now: i64) -> bool {
    failing_since.is_some_and(|since| now.saturating_sub(since) >= FAILING_LIMIT_MS)
}

/// What one attempt did to an endpoint's failing streak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Health {
    /// The endpoint answered 2xx.
    Succeeded,
    /// The attempt failed (not 2xx, no answer).
    Failed,
    /// The streak no longer matters (the webhook was just disabled).
    Reset,
}

/// Moves `webhook`'s failing streak for an attempt at `at`; returns whether
/// the endpoint is now to be disabled (the streak is then cleared, so an
/// endpoint enabled again starts afresh).
pub(super) fn note(txn: &WriteTransaction, webhook: u128, health: Health, at: i64) -> StoreResult<bool> {
    let mut table = txn.open_table(WEBHOOK_HEALTH)?;
    match health {
        Health::Succeeded | Health::Reset => {
            table.remove(webhook)?;
            Ok(false)
        }
        Health::Failed => {
            let since = table.get(webhook)?.map(|v| v.value());
            if disable_after_failures(since, at) {
                table.remove(webhook)?;
                return Ok(true);
            }
            if since.is_none() {
                table.insert(webhook, at)?;
            }
            Ok(false)
        }
    }
}

/// Disables `webhook` (if it still exists) with `reason`, at `at`.
pub(super) fn disable(txn: &WriteTransaction, webhook: u128, reason: &str, at: i64) -> StoreResult<()> {
    let mut hooks = txn.open_table(WEBHOOKS)?;
    let found = hooks.get(webhook)?.map(|v| Webhook::decode(v.value())).transpose()?;
    if let Some(mut h) = found {
        h.enabled = false;
        h.disabled_reason = Some(reason.to_string());
        h.updated_at = at;
        hooks.insert(webhook, h.encode().as_slice())?;
    }
    Ok(())
}

/// Removes `webhook`'s row (it is being deleted).
pub(super) fn delete(txn: &WriteTransaction, webhook: u128) -> StoreResult<()> {
    txn.open_table(WEBHOOK_HEALTH)?.remove(webhook)?;
    Ok(())
}

impl super::Store {
    /// Since when `webhook` has been failing (`None`: healthy).
    pub fn webhook_failing_since(&self, webhook: u128) -> StoreResult<Option<i64>> {
        let txn = self.read()?;
        let found = match txn.open_table(WEBHOOK_HEALTH) {
            Ok(t) => t.get(webhook)?.map(|v| v.value()),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(e.into()),
        };
        Ok(found)
    }
}

/// Lane heads read by one [`Store::oldest_undelivered`] call at most: a
/// scrape stays cheap however long the queues are.
pub const OLDEST_SCAN_BUDGET: usize = 10_000;

impl super::Store {
    /// Per enabled webhook, the time (Unix ms, from the event id) of its
    /// oldest undelivered event, or `None` when nothing is pending. Only lane
    /// heads are read (a lane's head is its oldest event), at most
    /// [`OLDEST_SCAN_BUDGET`] in all; webhooks past the budget are left out.
    pub fn oldest_undelivered(&self) -> StoreResult<Vec<(u128, Option<i64>)>> {
        use std::ops::Bound;
        let txn = self.read()?;
        let (hooks, queue) = match (txn.open_table(WEBHOOKS), txn.open_table(super::tables::DELIVERY_QUEUE)) {
            (Ok(h), Ok(q)) => (h, q),
            (Err(redb::TableError::TableDoesNotExist(_)), _) | (_, Err(redb::TableError::TableDoesNotExist(_))) => {
                return Ok(Vec::new())
            }
            (Err(e), _) | (_, Err(e)) => return Err(e.into()),
        };
        let mut out = Vec::new();
        let mut budget = OLDEST_SCAN_BUDGET;
        for row in hooks.iter()? {
            let (k, v) = row?;
            let w = k.value();
            if !Webhook::decode(v.value())?.enabled {
                continue;
            }
            let mut oldest: Option<u128> = None;
            let mut start: Bound<(u128, u128, u128)> = Bound::Included((w, 0, 0));
            loop {
                if budget == 0 {
                    return Ok(out);
                }
                let head = queue.range::<(u128, u128, u128)>((start, Bound::Included((w, u128::MAX, u128::MAX))))?.next().transpose()?;
                let Some((k, _)) = head else { break };
                budget -= 1;
                let (_, lane, event) = k.value();
                oldest = Some(oldest.map_or(event, |o| o.min(event)));
                if lane == u128::MAX {
                    break;
                }
                start = Bound::Excluded((w, lane, u128::MAX));
            }
            out.push((w, oldest.map(|e| i64::try_from(e >> 80).unwrap_or(i64::MAX))));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_limit_is_five_days_to_the_millisecond() {
        assert!(!disable_after_failures(None, i64::MAX));
        assert!(!disable_after_failures(Some(0), FAILING_LIMIT_MS - 1));
        assert!(disable_after_failures(Some(0), FAILING_LIMIT_MS));
        assert!(!disable_after_failures(Some(i64::MAX), i64::MIN), "no overflow");
    }

    /// The streak walks virtual time through the store: failures start it,
    /// a success clears it, and the failure 5 days into a fresh streak
    /// disables the webhook (not the one a millisecond earlier).
    #[test]
    fn five_days_of_failures_disable_the_webhook() {
        use crate::store::deliveries::Outcome;
        use crate::store::webhook_records::AttemptV1;
        use crate::store::Store;
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(&dir.path().join("d.redb"), 1 << 20).expect("open");
        let w = u128::from(crate::new_id());
        let hook = crate::store::webhook_records::sample_webhook();
        store.create_webhook(w.into(), &hook).expect("create");
        let e = store.test_webhook(w, "o", 10).expect("test");
        let e2 = store.test_webhook(w, "o", 10).expect("test");
        let day = 24 * 60 * 60 * 1000;
        let t0 = 1_000_000;
        let at = |at: i64, status: u16| AttemptV1 { at, status: Some(status), error: None, latency_ms: 1, response: vec![] };
        let retry = |at: i64| move |_| Outcome::Retry { next_at: at + 1 };
        let enabled = |s: &Store| s.webhook(w.into(), None).expect("hook").enabled;

        store.record_attempt(w, e, &at(t0, 500), retry(t0)).expect("record");
        assert_eq!(store.webhook_failing_since(w).expect("health"), Some(t0));
        store.record_attempt(w, e, &at(t0 + 4 * day, 500), retry(t0 + 4 * day)).expect("record");
        assert_eq!(store.webhook_failing_since(w).expect("health"), Some(t0), "the streak keeps its start");
        store.record_attempt(w, e, &at(t0 + 4 * day + 1, 200), |_| Outcome::Delivered).expect("record");
        assert_eq!(store.webhook_failing_since(w).expect("health"), None, "a success clears it");
        let t1 = t0 + 6 * day;
        store.record_attempt(w, e2, &at(t1, 503), retry(t1)).expect("record");
        let out = store.record_attempt(w, e2, &at(t1 + FAILING_LIMIT_MS - 1, 500), retry(t1)).expect("record");
        assert!(matches!(out, Some(Outcome::Retry { .. })) && enabled(&store), "not a millisecond early");
        let out = store.record_attempt(w, e2, &at(t1 + FAILING_LIMIT_MS, 500), retry(t1)).expect("record");
        assert!(matches!(out, Some(Outcome::Disable { .. })), "{out:?}");
        let h = store.webhook(w.into(), None).expect("hook");
        assert!(!h.enabled);
        assert_eq!(h.disabled_reason.as_deref(), Some(FAILING_REASON));
        assert_eq!(store.webhook_failing_since(w).expect("health"), None, "enabled again, it starts afresh");
        store.record_attempt(w, e2, &at(t1 + FAILING_LIMIT_MS + 1, 500), retry(t1)).expect("record");
        store.delete_webhook(w.into(), "o").expect("delete");
        assert_eq!(store.webhook_failing_since(w).expect("health"), None, "deleted with the webhook");
    }

    proptest! {
        /// Disabled exactly when the streak has lasted 5 days; a healthy
        /// endpoint is never disabled, however late the failure.
        #[test]
        fn disables_exactly_after_five_days(since in -1i64 << 50..1i64 << 50, dt in -1i64 << 40..1i64 << 40) {
            prop_assert_eq!(disable_after_failures(Some(since), since + dt), dt >= FAILING_LIMIT_MS);
            prop_assert!(!disable_after_failures(None, since + dt));
        }
    }
}
