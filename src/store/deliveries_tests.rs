//! Tests of the delivery tables ([`super`]): queue, outcomes, retention,
//! the enqueue budget and the schema-1 upgrade, on real redb files.

use super::*;
use crate::store::webhook_records::AttemptV1;

fn hook() -> Webhook {
    crate::store::webhook_records::sample_webhook()
}

/// Every lane's due heads and the earliest later one.
fn heads(store: &Store, now: i64, busy: bool) -> (Vec<Due>, Option<i64>) {
    let heads = store.lane_heads(None, now, &|_, _| busy, &mut |_, _| true).expect("heads");
    (heads.due, heads.later.iter().map(|(_, t)| *t).min())
}

fn attempt(status: u16) -> AttemptV1 {
    AttemptV1 { at: 5, status: Some(status), error: None, latency_ms: 1, response: vec![] }
}

/// Test events are queued for their webhook alone; a lane's head is due
/// once; outcomes move it (a retry keeps a row, a success leaves none, a
/// failure keeps one for replay); the log is in recording order;
/// retention takes the log and finished deliveries only; deleting the
/// webhook takes every row.
#[test]
fn queue_outcomes_retention_and_delete() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&dir.path().join("d.redb"), 1 << 20).expect("open");
    let (w, other) = (u128::from(crate::new_id()), u128::from(crate::new_id()));
    store.create_webhook(w.into(), &hook()).expect("create");
    store.create_webhook(other.into(), &hook()).expect("create");
    let e1 = store.test_webhook(w, "o", 10).expect("test");
    let e2 = store.test_webhook(w, "o", 10).expect("test");
    let e3 = store.test_webhook(w, "o", 10).expect("test");
    assert!(matches!(store.test_webhook(w, "p", 10), Err(StoreError::NotFound(_))));
    assert!(!store.enqueue_deliveries(100).expect("enqueue"), "nothing more to read");
    assert_eq!(store.delivery(w, e1).expect("read").map(|d| (d.attempts, d.status)), Some((0, DeliveryStatus::Pending)), "queued: fresh");
    let (due, _) = heads(&store, 10, false);
    assert_eq!(due.iter().map(|d| (d.webhook, d.event_id)).collect::<Vec<_>>(), vec![(w, e1)], "one head per lane, other webhook nothing");
    let (due, _) = heads(&store, 10, true);
    assert!(due.is_empty(), "busy lanes are skipped");
    let out = store.record_attempt(w, e1, &attempt(500), |n| Outcome::Retry { next_at: 100 + i64::from(n) }).expect("record");
    assert!(matches!(out, Some(Outcome::Retry { next_at: 101 })));
    assert_eq!(store.delivery(w, e1).expect("read").map(|d| (d.attempts, d.next_at)), Some((1, 101)), "a retry keeps a row");
    let (due, earliest) = heads(&store, 50, false);
    assert!(due.is_empty() && earliest == Some(101), "the head waits; the next event waits behind it");
    store.record_attempt(w, e1, &attempt(200), |_| Outcome::Delivered).expect("record");
    assert!(store.delivery(w, e1).expect("read").is_none(), "delivered: no row");
    let (due, _) = heads(&store, 50, false);
    assert_eq!(due.iter().map(|d| d.event_id).collect::<Vec<_>>(), vec![e2]);
    store.record_attempt(w, e2, &attempt(400), |_| Outcome::Failed).expect("record");
    assert_eq!(store.delivery(w, e2).expect("read").map(|d| d.status), Some(DeliveryStatus::Failed));
    let log = store.delivery_attempts(w, "o", None, 10).expect("log");
    let seen: Vec<_> = log.items.iter().map(|(_, l)| (l.event, l.number, l.attempt.status)).collect();
    assert_eq!(seen, vec![(e1, 1, Some(500)), (e1, 2, Some(200)), (e2, 1, Some(400))]);
    let page = store.delivery_attempts(w, "o", None, 2).expect("log");
    let rest = store.delivery_attempts(w, "o", page.next_after, 2).expect("log");
    assert_eq!((page.items.len(), rest.items.len(), rest.next_after), (2, 1, None), "cursor pages");
    // Only failed: e2 alone, attempts reset, its row gone.
    assert_eq!(store.replay_deliveries(w, "o", 0, None, true, &|_| true).expect("replay"), 1);
    assert_eq!(store.delivery(w, e2).expect("read").map(|d| (d.attempts, d.status)), Some((0, DeliveryStatus::Pending)));
    // Retention: the log goes; e3 and e2 (pending) stay.
    assert_eq!(store.prune_deliveries(i64::MAX >> 20, 100).expect("prune"), 3);
    assert!(store.delivery(w, e3).expect("read").is_some() && store.delivery(w, e2).expect("read").is_some());
    assert!(store.delivery_attempts(w, "o", None, 10).expect("log").items.is_empty());
    // Replay re-queues every one (its own tests) with attempts reset.
    assert_eq!(store.replay_deliveries(w, "o", 0, None, false, &|_| true).expect("replay"), 3);
    assert_eq!(store.delivery(w, e1).expect("read").map(|d| (d.attempts, d.status)), Some((0, DeliveryStatus::Pending)));
    store.delete_webhook(w.into(), "o").expect("delete");
    assert!(store.delivery(w, e2).expect("read").is_none());
    let (due, _) = heads(&store, i64::MAX, false);
    assert!(due.is_empty());
}

/// An organization with many webhooks reads no more than the pass's
/// budget over all of them (at least MIN_ENQUEUE_READ each), so its
/// share of the round's write stays bounded; another organization's
/// webhook reads its own budget.
#[test]
fn the_enqueue_budget_is_per_organization() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&dir.path().join("d.redb"), 1 << 20).expect("open");
    let mut a_hooks = Vec::new();
    for _ in 0..100 {
        let id = crate::new_id();
        store.create_webhook(id, &Webhook { organization_id: "a".into(), ..hook() }).expect("create");
        a_hooks.push(u128::from(id));
    }
    let b = crate::new_id();
    store.create_webhook(b, &Webhook { organization_id: "b".into(), ..hook() }).expect("create");
    let (w0, b) = (a_hooks[0], u128::from(b));
    for _ in 0..40 {
        store.test_webhook(w0, "a", 10).expect("event of a");
        store.test_webhook(b, "b", 10).expect("event of b");
    }
    let plan = store.plan_enqueue(1_000).expect("plan");
    assert!(plan.more, "a has more than its budget");
    let read = |w: u128| plan.plans.iter().find(|p| p.webhook == w).map(|p| p.to);
    let org_events = |org: &str| -> Vec<u128> {
        let txn = store.read().expect("read");
        let t = txn.open_table(ORG_EVENTS).expect("t");
        t.range((org, 0u128)..=(org, u128::MAX)).expect("range").map(|r| r.expect("row").0.value().1).collect()
    };
    let (a_events, b_events) = (org_events("a"), org_events("b"));
    assert!(a_hooks.iter().all(|w| read(*w) == Some(a_events[MIN_ENQUEUE_READ - 1])), "each of a's reads 16 of 40");
    assert_eq!(read(b), b_events.last().copied(), "b's one webhook reads all of its 40");
}

/// A schema-1 file opens upgraded: its delivery log moves to the new
/// table in time order with event and attempt number, the old table is
/// gone, delivered rows go, others stay, and the file says version 2.
#[test]
fn a_schema_1_delivery_log_is_upgraded_at_open() {
    use crate::store::tables::{META, META_SCHEMA_VERSION, V1_DELIVERY_ATTEMPTS};
    use redb::TableHandle;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("d.redb");
    let w = u128::from(crate::new_id());
    {
        let store = Store::open(&path, 1 << 20).expect("open");
        let txn = store.write().expect("write");
        txn.open_table(META).expect("meta").insert(META_SCHEMA_VERSION, 1u32.to_be_bytes().as_slice()).expect("v1");
        let mut old = txn.open_table(V1_DELIVERY_ATTEMPTS).expect("old");
        let at = |t: i64| AttemptV1 { at: t, ..attempt(500) }.encode();
        old.insert((w, 7u128, 1u32), at(2_000).as_slice()).expect("ins");
        old.insert((w, 7u128, 2u32), at(3_000).as_slice()).expect("ins");
        old.insert((w, 5u128, 1u32), at(2_500).as_slice()).expect("ins");
        // Two attempts of one millisecond whose old keys an id made of
        // (event ^ attempt n) would have merged: both are kept.
        old.insert((w, 8u128, 2u32), at(4_000).as_slice()).expect("ins");
        old.insert((w, 9u128, 3u32), at(4_000).as_slice()).expect("ins");
        drop(old);
        let mut rows = txn.open_table(DELIVERIES).expect("deliveries");
        let d = |status| Delivery { status, ..fresh(None) }.encode();
        rows.insert((w, 7u128), d(DeliveryStatus::Delivered).as_slice()).expect("ins");
        rows.insert((w, 5u128), d(DeliveryStatus::Failed).as_slice()).expect("ins");
        drop(rows);
        store.commit(txn).expect("commit");
    }
    let store = Store::open(&path, 1 << 20).expect("reopen");
    assert_eq!(store.meta().schema_version, super::super::SCHEMA_VERSION);
    let txn = store.read().expect("read");
    assert!(!txn.list_tables().expect("tables").any(|t| t.name() == V1_DELIVERY_ATTEMPTS.name()), "the old table is gone");
    let log: Vec<(u128, u32, i64)> = txn
        .open_table(DELIVERY_LOG)
        .expect("log")
        .iter()
        .expect("iter")
        .map(|r| r.map(|(_, v)| LoggedAttempt::decode(v.value()).map(|l| (l.event, l.number, l.attempt.at))).expect("row").expect("decode"))
        .collect();
    assert_eq!(log, vec![(7, 1, 2_000), (5, 1, 2_500), (7, 2, 3_000), (8, 2, 4_000), (9, 3, 4_000)]);
    let rows = txn.open_table(DELIVERIES).expect("deliveries");
    assert!(rows.get((w, 7u128)).expect("get").is_none() && rows.get((w, 5u128)).expect("get").is_some());
}
