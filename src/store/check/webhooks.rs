//! `check` of the webhook and delivery tables (CONTRACT §10): every webhook
//! decodes and is indexed per organization; every cursor, delivery, queued
//! event, failing streak and logged attempt names a webhook that exists; a
//! delivery row that is pending sits in the delivery queue, in its session's
//! lane, and one that is finished does not (a queued delivery needs no row:
//! it has had no attempt yet); a delivery in a lane of its own (webhook,
//! event, event) — where `ordering: none` retries it — is pending with an
//! attempt made, and not also in its session's lane. The
//! enqueue pass, an attempt's outcome and a webhook's deletion each move
//! these rows in one transaction, so a crash at any moment leaves them
//! agreeing; a disagreement is damage (or a bug), and this is where it shows.

use std::collections::HashSet;

use redb::{ReadTransaction, TableHandle};
use ulid::Ulid;

use super::{each, open_optional as open, CheckReport};
use crate::store::records::Record;
use crate::store::tables::{
    DELIVERIES, DELIVERY_LOG, DELIVERY_QUEUE, ORG_WEBHOOKS, WEBHOOKS, WEBHOOK_CURSORS, WEBHOOK_HEALTH,
};
use crate::store::webhook_records::{Delivery, DeliveryStatus, LoggedAttempt, Webhook};

/// Checks the webhook and delivery tables into `r`.
pub(super) fn check_webhooks(txn: &ReadTransaction, r: &mut CheckReport) {
    let Some(hooks) = open(txn, WEBHOOKS, r) else { return };
    let mut known: HashSet<u128> = HashSet::new();
    let org_index = open(txn, ORG_WEBHOOKS, r);
    each(&hooks, WEBHOOKS.name(), r, |r, id, v| {
        known.insert(id);
        let h = match Webhook::decode(v) {
            Ok(h) => h,
            Err(e) => return r.problem(format!("webhook {}: {e}", Ulid::from(id))),
        };
        if let Some(t) = &org_index {
            if r.read(ORG_WEBHOOKS.name(), t.get((h.organization_id.as_str(), id))).is_some_and(|g| g.is_none()) {
                r.problem(format!("webhook {} missing from org_webhooks", Ulid::from(id)));
            }
        }
    });
    if let Some(t) = &org_index {
        let mut n = 0usize;
        each(t, ORG_WEBHOOKS.name(), r, |_, _, ()| n += 1);
        if n != known.len() {
            r.problem(format!("org_webhooks has {n} entries for {} webhooks", known.len()));
        }
    }
    if let Some(t) = open(txn, WEBHOOK_CURSORS, r) {
        each(&t, WEBHOOK_CURSORS.name(), r, |r, w, _| {
            if !known.contains(&w) {
                r.problem(format!("webhook_cursors names a missing webhook {}", Ulid::from(w)));
            }
        });
    }
    if let Some(t) = open(txn, WEBHOOK_HEALTH, r) {
        each(&t, WEBHOOK_HEALTH.name(), r, |r, w, _| {
            if !known.contains(&w) {
                r.problem(format!("webhook_health names a missing webhook {}", Ulid::from(w)));
            }
        });
    }
    let (Some(deliveries), Some(queue)) = (open(txn, DELIVERIES, r), open(txn, DELIVERY_QUEUE, r)) else { return };
    each(&deliveries, DELIVERIES.name(), r, |r, (w, e), v| {
        let name = format!("delivery ({}, evt_{})", Ulid::from(w), Ulid::from(e));
        if !known.contains(&w) {
            r.problem(format!("{name} names a missing webhook"));
        }
        let d = match Delivery::decode(v) {
            Ok(d) => d,
            Err(err) => return r.problem(format!("{name}: {err}")),
        };
        let is_pending = d.status == DeliveryStatus::Pending;
        let in_lane = r.read(DELIVERY_QUEUE.name(), queue.get((w, d.session.unwrap_or(0), e))).is_some_and(|g| g.is_some());
        let in_own = d.session != Some(e) && r.read(DELIVERY_QUEUE.name(), queue.get((w, e, e))).is_some_and(|g| g.is_some());
        if in_lane && in_own {
            r.problem(format!("{name} is queued twice: in its session's lane and in a lane of its own"));
        }
        if in_own && d.attempts == 0 {
            r.problem(format!("{name} is in a lane of its own without a failed attempt"));
        }
        let in_queue = in_lane || in_own;
        if in_queue != is_pending {
            r.problem(format!(
                "{name} is {} but {} the delivery queue",
                if is_pending { "pending" } else { "finished" },
                if in_queue { "in" } else { "not in" }
            ));
        }
    });
    each(&queue, DELIVERY_QUEUE.name(), r, |r, (w, lane, e), ()| {
        if !known.contains(&w) {
            r.problem(format!("delivery_queue holds evt_{} for a missing webhook {}", Ulid::from(e), Ulid::from(w)));
        }
        // A lane of its own holds a delivery that failed an attempt: its row says so.
        if lane == e && r.read(DELIVERIES.name(), deliveries.get((w, e))).is_some_and(|g| g.is_none()) {
            r.problem(format!("delivery_queue holds evt_{} of {} in a lane of its own with no delivery row", Ulid::from(e), Ulid::from(w)));
        }
    });
    if let Some(t) = open(txn, DELIVERY_LOG, r) {
        each(&t, DELIVERY_LOG.name(), r, |r, (w, id), v| {
            let name = format!("delivery log entry {} of {}", Ulid::from(id), Ulid::from(w));
            if let Err(err) = LoggedAttempt::decode(v) {
                r.problem(format!("{name}: {err}"));
            }
            if !known.contains(&w) {
                r.problem(format!("{name} names a missing webhook"));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::check::check;
    use crate::store::Store;

    fn hook() -> Webhook {
        crate::store::webhook_records::sample_webhook()
    }

    fn problems(store: &Store) -> Vec<String> {
        check(&store.read().expect("read")).expect("check").problems
    }

    /// A consistent file passes; each broken invariant of a real redb file
    /// is reported: a retrying delivery out of the queue, a failed one still
    /// in it, an orphan cursor, queue row and log entry, a log entry that
    /// does not decode, a delivery whose webhook vanished.
    #[test]
    fn check_reports_broken_delivery_tables() {
        use crate::store::deliveries::Outcome;
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(&dir.path().join("d.redb"), 1 << 20).expect("open");
        let w = u128::from(crate::new_id());
        store.create_webhook(w.into(), &hook()).expect("create");
        let e = store.test_webhook(w, "o", 10).expect("test");
        let e2 = store.test_webhook(w, "o", 10).expect("test");
        let e3 = store.test_webhook(w, "o", 10).expect("test");
        let a = crate::store::webhook_records::AttemptV1 { at: 5, status: Some(200), error: None, latency_ms: 1, response: vec![] };
        store.record_attempt(w, e, &a, |_| Outcome::Retry { next_at: 50 }).expect("record");
        store.record_attempt(w, e2, &a, |_| Outcome::Delivered).expect("record");
        assert_eq!(problems(&store), Vec::<String>::new(), "a retrying row, a delivered one (no row), a fresh one (no row)");

        let failed = Delivery { status: DeliveryStatus::Failed, ..store.delivery(w, e).expect("read").expect("row") };
        let txn = store.write().expect("write");
        txn.open_table(DELIVERY_QUEUE).expect("t").remove((w, 0u128, e)).expect("rm");
        txn.open_table(DELIVERIES).expect("t").insert((w, e3), failed.encode().as_slice()).expect("ins");
        txn.open_table(WEBHOOK_CURSORS).expect("t").insert(7u128, 1u128).expect("ins");
        txn.open_table(DELIVERY_QUEUE).expect("t").insert((7u128, 0u128, e3), ()).expect("ins");
        txn.open_table(DELIVERY_LOG).expect("t").insert((7u128, 1u128), [9u8, 9].as_slice()).expect("ins");
        store.commit(txn).expect("commit");
        let p = problems(&store);
        assert!(p.iter().any(|p| p.contains("is pending but not in the delivery queue")), "{p:?}");
        assert!(p.iter().any(|p| p.contains("is finished but in the delivery queue")), "{p:?}");
        assert!(p.iter().any(|p| p.contains("webhook_cursors names a missing webhook")), "{p:?}");
        assert!(p.iter().any(|p| p.contains("delivery_queue holds") && p.contains("missing webhook")), "{p:?}");
        assert!(p.iter().any(|p| p.starts_with("delivery log entry") && p.contains("missing webhook")), "{p:?}");
        assert!(p.iter().any(|p| p.starts_with("delivery log entry") && p.contains("record")), "an unknown version: {p:?}");

        let txn = store.write().expect("write");
        txn.open_table(WEBHOOKS).expect("t").remove(w).expect("rm");
        store.commit(txn).expect("commit");
        let p = problems(&store);
        assert!(p.iter().any(|p| p.contains("names a missing webhook") && p.starts_with("delivery (")), "{p:?}");
        assert!(p.iter().any(|p| p.contains("org_webhooks has 1 entries for 0 webhooks")), "{p:?}");
    }

    /// Ordering none: a retry moves the delivery to a lane of its own in the
    /// recording transaction (the session's next event becomes its lane's
    /// head); the file still checks clean; a replay brings it back to its
    /// session's lane; a delivery queued in both lanes, or a lane of its own
    /// with no row, is reported.
    #[test]
    fn ordering_none_moves_a_retry_to_its_own_lane_and_check_follows() {
        use crate::store::deliveries::Outcome;
        use crate::store::webhook_records::WebhookOrdering;
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(&dir.path().join("d.redb"), 1 << 20).expect("open");
        let w = u128::from(crate::new_id());
        store.create_webhook(w.into(), &Webhook { ordering: WebhookOrdering::None, ..hook() }).expect("create");
        let e = store.test_webhook(w, "o", 10).expect("test");
        let e2 = store.test_webhook(w, "o", 10).expect("test");
        let a = crate::store::webhook_records::AttemptV1 { at: 5, status: Some(500), error: None, latency_ms: 1, response: vec![] };
        store.record_attempt(w, e, &a, |_| Outcome::Retry { next_at: 50 }).expect("record");
        {
            let txn = store.read().expect("read");
            let q = txn.open_table(DELIVERY_QUEUE).expect("t");
            assert!(q.get((w, 0u128, e)).expect("get").is_none() && q.get((w, e, e)).expect("get").is_some(), "moved");
        }
        let heads = store.lane_heads(None, 10, &|_, _| false, &mut |_, _| true).expect("heads");
        assert_eq!(heads.due.iter().map(|d| d.event_id).collect::<Vec<_>>(), vec![e2], "the session goes on");
        assert_eq!(heads.later.iter().map(|(l, t)| (*l, *t)).collect::<Vec<_>>(), vec![((w, e), 50)], "the retry waits alone");
        assert_eq!(store.delivery(w, e).expect("read").map(|d| d.attempts), Some(1));
        assert_eq!(problems(&store), Vec::<String>::new());
        // A second failure keeps it where it is; success takes it out.
        store.record_attempt(w, e, &a, |_| Outcome::Retry { next_at: 60 }).expect("record");
        assert_eq!(problems(&store), Vec::<String>::new());
        store.enqueue_deliveries(100).expect("enqueue");
        assert_eq!(store.replay_deliveries(w, "o", 0, None, false, &|_| true).expect("replay"), 2);
        {
            let txn = store.read().expect("read");
            let q = txn.open_table(DELIVERY_QUEUE).expect("t");
            assert!(q.get((w, 0u128, e)).expect("get").is_some() && q.get((w, e, e)).expect("get").is_none(), "back in its lane");
        }
        assert_eq!(problems(&store), Vec::<String>::new());
        store.record_attempt(w, e, &a, |_| Outcome::Retry { next_at: 70 }).expect("record");
        let txn = store.write().expect("write");
        txn.open_table(DELIVERY_QUEUE).expect("t").insert((w, 0u128, e), ()).expect("ins");
        txn.open_table(DELIVERY_QUEUE).expect("t").insert((w, e2, e2), ()).expect("ins");
        store.commit(txn).expect("commit");
        let p = problems(&store);
        assert!(p.iter().any(|p| p.contains("is queued twice")), "{p:?}");
        assert!(p.iter().any(|p| p.contains("in a lane of its own with no delivery row")), "{p:?}");
    }
}
