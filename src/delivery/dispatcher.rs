//! The dispatcher: one task for every webhook. Each round it (1) queues the
//! events each webhook has not seen yet, (2) starts an attempt for every
//! lane head that is due and not in flight, within the caps per webhook and
//! overall, then (3) sleeps until an event is committed, a retry falls due,
//! the API pokes it, or an attempt ends. Lanes and webhooks never wait for
//! each other: an attempt holds only its own lane and one slot.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::task::{Id, JoinSet};
use ulid::Ulid;

use super::client::{self, Signed};
use super::retry::next_delay;
use super::{sign, Delivery};
use crate::api::events::event_value;
use crate::store::deliveries::{Due, Outcome, EVENT_GONE};
use crate::store::now_ms;
use crate::store::webhook_records::Attempt;

/// Events read per webhook per enqueue pass.
const ENQUEUE_BUDGET: usize = 1_000;
/// The longest sleep between rounds with nothing to do.
const IDLE: Duration = Duration::from_secs(30);

/// Runs until [`Delivery::shutdown`].
pub async fn run(d: Arc<Delivery>) {
    let mut events = d.store.subscribe_events();
    let mut inflight: JoinSet<()> = JoinSet::new();
    let mut lanes: HashMap<Id, (u128, u128)> = HashMap::new();
    let mut per_hook: HashMap<u128, usize> = HashMap::new();
    loop {
        if d.closing() {
            break;
        }
        let now = now_ms();
        let store = d.store.clone();
        let more = match tokio::task::spawn_blocking(move || store.enqueue_deliveries(ENQUEUE_BUDGET, now)).await {
            Ok(Ok(more)) => more,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "webhook delivery: could not queue events");
                false
            }
            Err(_) => false,
        };
        let busy: HashSet<(u128, u128)> = lanes.values().copied().collect();
        let mut counts = per_hook.clone();
        let (cap, total_cap) = (d.config.max_in_flight_per_webhook.max(1), d.config.max_in_flight.max(1));
        let mut total = lanes.len();
        let store = d.store.clone();
        let found = tokio::task::spawn_blocking(move || {
            let mut take = |w: u128| {
                let n = counts.entry(w).or_insert(0);
                if total >= total_cap || *n >= cap {
                    return false;
                }
                *n += 1;
                total += 1;
                true
            };
            store.due_deliveries(now, &|w, l| busy.contains(&(w, l)), &mut take)
        })
        .await;
        let earliest = match found {
            Ok(Ok((due, earliest))) => {
                for item in due {
                    let key = (item.webhook, item.lane);
                    *per_hook.entry(item.webhook).or_insert(0) += 1;
                    let handle = inflight.spawn(attempt(d.clone(), item));
                    lanes.insert(handle.id(), key);
                }
                earliest
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "webhook delivery: could not read the queue");
                Some(now + 1_000)
            }
            Err(_) => Some(now + 1_000),
        };
        let wait = if more {
            Duration::ZERO
        } else {
            earliest.map_or(IDLE, |t| Duration::from_millis(t.saturating_sub(now_ms()).max(0) as u64).min(IDLE))
        };
        tokio::select! {
            _ = d.wake.notified() => {}
            changed = events.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            Some(done) = inflight.join_next_with_id(), if !inflight.is_empty() => {
                let id = match done {
                    Ok((id, ())) => id,
                    Err(e) => e.id(),
                };
                if let Some((w, _)) = lanes.remove(&id) {
                    if let Some(n) = per_hook.get_mut(&w) {
                        *n = n.saturating_sub(1);
                        if *n == 0 {
                            per_hook.remove(&w);
                        }
                    }
                }
            }
            _ = tokio::time::sleep(wait) => {}
        }
    }
    inflight.abort_all();
}

/// One attempt of a due delivery, recorded with its outcome.
async fn attempt(d: Arc<Delivery>, due: Due) {
    let started = now_ms();
    let webhook_id = format!("evt_{}", Ulid::from(due.event_id));
    let (record, status, retry_after) = match &due.event {
        None => (
            Attempt {
                at: started,
                status: None,
                error: Some(EVENT_GONE.into()),
                latency_ms: 0,
                response: Vec::new(),
            },
            None,
            None,
        ),
        Some(e) => {
            let body = serde_json::to_vec(&event_value(due.event_id, e)).unwrap_or_default();
            let ts = started.div_euclid(1000);
            let signature = sign::signature_header(&due.hook.signing_secrets(started), &webhook_id, ts, &body);
            let signed = Signed { webhook_id: &webhook_id, timestamp: ts, signature: &signature };
            let ans = client::post(&due.hook.url, Bytes::from(body), signed, d.allow_private, d.config.timeout).await;
            (
                Attempt {
                    at: started,
                    status: ans.status,
                    error: ans.error,
                    latency_ms: u32::try_from(ans.latency.as_millis()).unwrap_or(u32::MAX),
                    response: ans.body,
                },
                ans.status,
                ans.retry_after,
            )
        }
    };
    let gone = due.event.is_none();
    let schedule = d.config.retry_schedule.clone();
    let seed = (due.event_id as u64) ^ (started as u64).rotate_left(17);
    let decide = move |n: u32| {
        let now = now_ms();
        match status {
            Some(s) if (200..300).contains(&s) => Outcome::Delivered,
            Some(410) => Outcome::Disable { reason: "the endpoint answered 410 Gone".into(), next_at: now },
            _ if gone => Outcome::Failed,
            _ => match next_delay(&schedule, n, retry_after, seed) {
                Some(wait) => Outcome::Retry { next_at: now.saturating_add(wait.as_millis() as i64) },
                None => Outcome::Failed,
            },
        }
    };
    let store = d.store.clone();
    let (webhook, event) = (due.webhook, due.event_id);
    let recorded = tokio::task::spawn_blocking(move || store.record_attempt(webhook, event, &record, decide)).await;
    match recorded {
        Ok(Ok(Some(outcome))) => {
            match outcome {
                Outcome::Delivered => d.counters.count("delivered"),
                Outcome::Retry { .. } => d.counters.count("retry"),
                Outcome::Failed | Outcome::Disable { .. } => d.counters.count("failed"),
            };
            if let Outcome::Disable { reason, .. } = &outcome {
                tracing::warn!(webhook = %Ulid::from(webhook), reason = %reason, "webhook disabled");
            }
        }
        Ok(Ok(None)) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "webhook delivery: could not record an attempt"),
        Err(_) => {}
    }
}
