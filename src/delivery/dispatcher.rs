//! The dispatcher: one task for every webhook. Each round it (1) writes, in
//! one transaction, the outcomes of the attempts that ended and the events
//! each webhook has not queued yet, (2) reads the heads of the lanes that
//! may have changed and starts an attempt for every one that is due, within
//! the caps per webhook and overall, then (3) sleeps until an event is
//! committed, a retry falls due, the API pokes it, or an attempt ends.
//!
//! The lanes' state lives in memory between rounds — which are in flight,
//! which wait for a retry and until when, which changed — so a round reads
//! only what changed, and one commit records every attempt that ended
//! meanwhile (a group commit: a busy endpoint costs one fsync per round, not
//! one per event). The file stays the truth: at start, and whenever the API
//! pokes, every lane is read again. Lanes and webhooks never wait for each
//! other: an attempt holds only its own lane and one slot.
//!
//! Slots are shared per organization ([`fair::may_start`]): each round,
//! every organization with lanes to read may start up to its fair share,
//! whatever the others hold, so one organization's hanging endpoints never
//! delay another's deliveries. The lanes read are chosen by those shares,
//! not first come first served; a rescan claims nothing itself (it only
//! learns which lanes are due and whose they are) and the next round, at
//! once, shares them out.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::task::{Id, JoinSet};
use ulid::Ulid;

use super::client::{self, Signed};
use super::fair::{self, Demand};
use super::retry::{due_at, next_delay};
use super::{sign, Delivery};
use crate::api::events::event_value;
use crate::store::deliveries::{Due, Finished, Heads, Outcome, EVENT_GONE};
use crate::store::now_ms;
use crate::store::webhook_records::{Attempt, WebhookOrdering};

/// Events read per webhook per enqueue pass.
const ENQUEUE_BUDGET: usize = 1_000;
/// The longest sleep between rounds with nothing to do.
const IDLE: Duration = Duration::from_secs(30);
/// The pause after the store failed a round.
const BACKOFF: Duration = Duration::from_secs(1);

/// A lane: (webhook, session or 0).
type Lane = (u128, u128);

/// What the dispatcher knows between rounds.
#[derive(Default)]
struct Lanes {
    /// Attempts running, by task.
    running: HashMap<Id, Lane>,
    /// Lanes with an attempt running or ended but not yet recorded.
    busy: HashSet<Lane>,
    /// Attempts per webhook among `busy`.
    per_hook: HashMap<u128, usize>,
    /// The organization of each lane in `busy`.
    busy_org: HashMap<Lane, String>,
    /// Attempts per organization among `busy`.
    per_org: HashMap<String, usize>,
    /// Each webhook's organization, as last read (a rescan reads them all;
    /// a webhook not yet known shares the slots of the unnamed one, "").
    orgs: HashMap<u128, String>,
    /// Lanes whose head may have changed, first come first read (a FIFO, so
    /// that lanes held back by a cap are served in turn, never starved).
    dirty: VecDeque<Lane>,
    /// The members of `dirty`.
    dirty_set: HashSet<Lane>,
    /// Lanes whose head falls due later, and when (Unix ms).
    later: HashMap<Lane, i64>,
    /// Read every lane next round (start, or the API changed something).
    rescan: bool,
}

impl Lanes {
    fn mark(&mut self, lane: Lane) {
        if self.dirty_set.insert(lane) {
            self.dirty.push_back(lane);
        }
    }

    /// The organization of `webhook`, as far as known.
    fn org_of(&self, webhook: u128) -> &str {
        self.orgs.get(&webhook).map_or("", String::as_str)
    }

    /// Takes from `dirty` the lanes worth reading this round: not busy, no
    /// more per webhook than it has free slots, and no more per organization
    /// than its fair share lets it start ([`fair::may_start`] over the
    /// organizations' running attempts and waiting lanes, `total_cap`).
    fn pick(&mut self, cap: usize, total_cap: usize) -> Vec<Lane> {
        // The organizations with attempts running or lanes to read, in the
        // order first met, and what each has.
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut demand: Vec<Demand> = Vec::new();
        let mut slot = |org: &str, demand: &mut Vec<Demand>| -> usize {
            if let Some(&i) = index.get(org) {
                return i;
            }
            index.insert(org.to_string(), demand.len());
            demand.push(Demand::default());
            demand.len() - 1
        };
        for (org, n) in &self.per_org {
            let i = slot(org, &mut demand);
            demand[i].busy = *n;
        }
        let mut lane_org = Vec::with_capacity(self.dirty.len());
        for lane in &self.dirty {
            let i = slot(self.org_of(lane.0), &mut demand);
            if !self.busy.contains(lane) {
                demand[i].waiting += 1;
            }
            lane_org.push(i);
        }
        let mut allowed = fair::may_start(&demand, total_cap);
        let mut picked = Vec::new();
        let mut per: HashMap<u128, usize> = HashMap::new();
        let mut kept = VecDeque::with_capacity(self.dirty.len());
        for (lane, i) in std::mem::take(&mut self.dirty).into_iter().zip(lane_org) {
            if self.busy.contains(&lane) {
                // Marked again when its attempt is recorded.
                self.dirty_set.remove(&lane);
                continue;
            }
            let n = per.entry(lane.0).or_insert_with(|| self.per_hook.get(&lane.0).copied().unwrap_or(0));
            if *n < cap && allowed[i] > 0 {
                *n += 1;
                allowed[i] -= 1;
                self.dirty_set.remove(&lane);
                picked.push(lane);
            } else {
                kept.push_back(lane);
            }
        }
        self.dirty = kept;
        picked
    }

    /// Counts an attempt of `lane` (of organization `org`) as running.
    fn hold(&mut self, lane: Lane, org: &str) {
        self.busy.insert(lane);
        *self.per_hook.entry(lane.0).or_insert(0) += 1;
        *self.per_org.entry(org.to_string()).or_insert(0) += 1;
        self.busy_org.insert(lane, org.to_string());
    }

    fn release(&mut self, lane: Lane) {
        if self.busy.remove(&lane) {
            if let Some(n) = self.per_hook.get_mut(&lane.0) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.per_hook.remove(&lane.0);
                }
            }
            if let Some(org) = self.busy_org.remove(&lane) {
                if let Some(n) = self.per_org.get_mut(&org) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.per_org.remove(&org);
                    }
                }
            }
        }
        self.mark(lane);
    }

    /// Moves the lanes whose retry is due into `dirty`; returns the earliest
    /// time one still waits for.
    fn wake_due(&mut self, now: i64) -> Option<i64> {
        let due: Vec<Lane> = self.later.iter().filter(|(_, t)| **t <= now).map(|(l, _)| *l).collect();
        for l in due {
            self.later.remove(&l);
            self.mark(l);
        }
        self.later.values().copied().min()
    }
}

/// Runs until [`Delivery::shutdown`].
pub async fn run(d: Arc<Delivery>) {
    let mut events = d.store.subscribe_events();
    let mut inflight: JoinSet<Finished> = JoinSet::new();
    let mut finished: Vec<Finished> = Vec::new();
    let mut st = Lanes { rescan: true, ..Lanes::default() };

    let (cap, total_cap) = (d.config.max_in_flight_per_webhook.max(1), d.config.max_in_flight.max(1));
    loop {
        if d.closing() {
            break;
        }
        // (1) One write: what ended, and what is new.
        let store = d.store.clone();
        let ended = std::mem::take(&mut finished);
        let lanes_ended: Vec<Lane> = ended.iter().map(|f| (f.webhook, f.lane)).collect();
        let wrote = tokio::task::spawn_blocking(move || {
            let written = store.plan_enqueue(ENQUEUE_BUDGET).and_then(|plan| {
                let more = plan.more;
                store.delivery_round(&ended, plan).map(|r| (r, more))
            });
            (ended, written)
        })
        .await;
        let mut more = false;
        let mut failed = false;
        match wrote {
            Ok((_, Ok((round, m)))) => {
                more = m;
                for outcome in round.outcomes.iter().flatten() {
                    count(&d, outcome);
                }
                st.orgs.extend(round.orgs);
                for lane in round.queued {
                    st.mark(lane);
                }
                for lane in lanes_ended {
                    st.release(lane);
                }
            }
            Ok((ended, Err(e))) => {
                // Nothing was written (a full disk, say): the ended attempts
                // are written again next round, their lanes held meanwhile,
                // rather than sent again.
                tracing::error!(error = %e, "webhook delivery: could not write a round");
                finished = ended;
                failed = true;
            }
            Err(_) => {
                // The writer died: those outcomes are lost, the heads go again
                // (same webhook-id, at least once).
                for lane in lanes_ended {
                    st.release(lane);
                }
                failed = true;
            }
        }
        // (2) The heads of the lanes that may have changed.
        let now = now_ms();
        let mut earliest = st.wake_due(now);
        let mut again = false;
        let total = st.busy.len();
        // Up to twice the cap in all: the fair shares' overdraft (fair.rs).
        let hard_cap = total_cap.saturating_mul(2);
        if !failed && (st.rescan || !st.dirty.is_empty()) && total < hard_cap {
            let lanes: Option<Vec<Lane>> = if st.rescan {
                st.later.clear();
                st.dirty.clear();
                st.dirty_set.clear();
                None
            } else {
                Some(st.pick(cap, total_cap))
            };
            let (busy, mut counts) = (st.busy.clone(), st.per_hook.clone());
            let store = d.store.clone();
            let nothing = lanes.as_ref().is_some_and(|l| l.is_empty());
            let rescan = lanes.is_none();
            let found = tokio::task::spawn_blocking(move || {
                if nothing {
                    return Ok((Heads::default(), lanes));
                }
                let mut total = total;
                // A rescan claims nothing: the next round shares the due
                // lanes out fairly. Otherwise `pick` chose the lanes by the
                // shares; the caps per webhook and in all still hold here.
                let mut take = |w: u128, _org: &str| {
                    let n = counts.entry(w).or_insert(0);
                    if rescan || total >= hard_cap || *n >= cap {
                        return false;
                    }
                    *n += 1;
                    total += 1;
                    true
                };
                let heads = store.lane_heads(lanes.as_deref(), now, &|w, l| busy.contains(&(w, l)), &mut take);
                heads.map(|h| (h, lanes))
            })
            .await;
            match found {
                Ok(Ok((heads, lanes))) => {
                    let Heads { due, later, blocked, orgs } = heads;
                    if lanes.is_none() {
                        st.rescan = false;
                        st.orgs = orgs.into_iter().collect();
                        again = !blocked.is_empty();
                    } else {
                        st.orgs.extend(orgs);
                    }
                    for lane in blocked {
                        st.mark(lane);
                    }
                    for (lane, at) in later {
                        earliest = Some(earliest.map_or(at, |e: i64| e.min(at)));
                        st.later.insert(lane, at);
                    }
                    for item in due {
                        let lane = (item.webhook, item.lane);
                        st.hold(lane, &item.hook.organization_id);
                        let handle = inflight.spawn(attempt(d.clone(), item));
                        st.running.insert(handle.id(), lane);
                    }
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "webhook delivery: could not read the queue");
                    st.rescan = true;
                    failed = true;
                }
                Err(_) => {
                    st.rescan = true;
                    failed = true;
                }
            }
        }
        // (3) Sleep until something happens.
        let wait = if failed {
            BACKOFF
        } else if more || again {
            Duration::ZERO
        } else {
            earliest.map_or(IDLE, |t| Duration::from_millis(t.saturating_sub(now_ms()).max(0) as u64).min(IDLE))
        };
        tokio::select! {
            _ = d.wake.notified() => st.rescan = true,
            changed = events.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            Some(done) = inflight.join_next_with_id(), if !inflight.is_empty() => {
                collect(done, &mut st, &mut finished);
                // Every other attempt that ended meanwhile joins this round.
                while let Some(done) = inflight.try_join_next_with_id() {
                    collect(done, &mut st, &mut finished);
                }
            }
            _ = tokio::time::sleep(wait) => {}
        }
    }
    inflight.abort_all();
}

/// Takes an ended attempt: its outcome is recorded next round; a task that
/// died frees its lane at once (the head goes again).
fn collect(done: Result<(Id, Finished), tokio::task::JoinError>, st: &mut Lanes, finished: &mut Vec<Finished>) {
    match done {
        Ok((id, f)) => {
            st.running.remove(&id);
            finished.push(f);
        }
        Err(e) => {
            if let Some(lane) = st.running.remove(&e.id()) {
                st.release(lane);
            }
        }
    }
}

fn count(d: &Delivery, outcome: &Outcome) {
    match outcome {
        Outcome::Delivered => d.counters.count("delivered"),
        Outcome::Retry { .. } => d.counters.count("retry"),
        Outcome::Failed | Outcome::Disable { .. } => d.counters.count("failed"),
    };
    if let Outcome::Disable { reason, .. } = outcome {
        tracing::warn!(reason = %reason, "webhook disabled");
    }
}

/// One attempt of a due delivery; its outcome is judged when recorded.
async fn attempt(d: Arc<Delivery>, due: Due) -> Finished {
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
            let ans = client::post(&d.clients, due.webhook, &due.hook.url, Bytes::from(body), signed, d.allow_private, d.config.timeout).await;
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
    let unordered = due.hook.ordering == WebhookOrdering::None;
    let schedule = d.config.retry_schedule.clone();
    let seed = (due.event_id as u64) ^ (started as u64).rotate_left(17);
    let decide = move |n: u32| {
        let now = now_ms();
        match status {
            Some(s) if (200..300).contains(&s) => Outcome::Delivered,
            Some(410) => Outcome::Disable { reason: "the endpoint answered 410 Gone".into(), next_at: now },
            _ if gone => Outcome::Failed,
            _ => match next_delay(&schedule, n, retry_after, seed) {
                Some(wait) => Outcome::Retry { next_at: due_at(now, wait) },
                None => Outcome::Failed,
            },
        }
    };
    Finished { webhook: due.webhook, lane: due.lane, event: due.event_id, attempt: record, decide: Box::new(decide), unordered }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A holds every slot and has 100 more lanes queued ahead of B's one:
    /// B's lane is read this round, none of A's; with A idle, A's lanes go
    /// up to the cap and its per-webhook cap.
    #[test]
    fn pick_serves_the_organization_under_its_share_first() {
        let mut st = Lanes::default();
        let (a, b) = (1u128, 2u128);
        st.orgs.insert(a, "a".into());
        st.orgs.insert(b, "b".into());
        for s in 0..256u128 {
            st.hold((a, 10_000 + s), "a");
        }
        for s in 0..100u128 {
            st.mark((a, s));
        }
        st.mark((b, 1));
        let picked = st.pick(1_000, 256);
        assert_eq!(picked, vec![(b, 1)]);
        assert_eq!(st.dirty.len(), 100, "A's lanes wait their turn");
        for s in 0..256u128 {
            st.release((a, 10_000 + s));
        }
        st.dirty.retain(|l| l.0 == a);
        st.dirty_set.retain(|l| l.0 == a);
        st.hold((b, 1), "b");
        let picked = st.pick(40, 256);
        assert_eq!(picked.len(), 40, "A alone but for B's one: up to its webhook's cap");
        assert!(picked.iter().all(|l| l.0 == a && l.1 < 100));
    }
}
