//! Webhook deliveries (CONTRACT §10): the durable outbox between the event
//! log and the webhook endpoints.
//!
//! - `webhook_cursors`: how far each webhook's events have been queued. The
//!   enqueue pass reads the organization's events after it and, in one write
//!   transaction, queues the wanted ones and moves the cursor: an event is
//!   queued exactly once, and a crash between passes repeats nothing.
//! - `delivery_queue`: what is still to be sent, keyed (webhook, lane, event)
//!   where the lane is the event's session (0 for none): a lane's first row
//!   is its head, and a lane's next event waits for its head (per-session
//!   order) while lanes and webhooks never wait for each other. A webhook
//!   with `ordering: none` moves a delivery whose attempt failed to a lane
//!   of its own, (webhook, event, event), in the transaction that records
//!   the failure: it is retried there, and its session's later events go on.
//! - `deliveries`: the deliveries that are not plain — pending after failed
//!   attempts (attempts, when the next is due), or failed for good (kept for
//!   replay). A queued delivery with no row has had no attempt and is due;
//!   a delivered one leaves no row.
//! - `delivery_log`: every attempt, appended in the order they are recorded,
//!   for `GET .../deliveries`.
//!
//! The layout follows the cost of a busy endpoint: the dispatcher records up
//! to one attempt per lane in each round, one lane apart from the next. A
//! first-attempt success — nearly every delivery — removes its queue row and
//! appends to the log, so a round writes one queue leaf per lane and one log
//! leaf, where keeping a state row and a log keyed per event wrote three
//! leaves per lane (measured: a 300,000-event backlog drained at ~5,000/s
//! that way, ~7,900/s without the two per-event rows).

use std::collections::HashMap;
use std::ops::Bound;

use redb::{ReadableTable, WriteTransaction};

use super::events;
use super::message_records::{Event, EventData};
use super::records::Record;
use super::sessions::Page;
use super::tables::{DELIVERIES, DELIVERY_LOG, DELIVERY_QUEUE, EVENTS, ORG_EVENTS, WEBHOOKS, WEBHOOK_CURSORS};
use super::webhook_health::{self, Health, FAILING_REASON};
use super::webhook_records::{Attempt, Delivery, DeliveryStatus, LoggedAttempt, Webhook, WebhookOrdering, WEBHOOK_TEST};
use super::{Store, StoreError, StoreResult};

/// The error of an attempt that could not be made: retention pruned the
/// event first (not the endpoint's failure).
pub const EVENT_GONE: &str = "the event is no longer in the log (retention)";

/// Events read per webhook per enqueue pass at least, however many webhooks
/// share its organization's budget.
pub const MIN_ENQUEUE_READ: usize = 16;

/// Events replayed by one call at most.
pub const MAX_REPLAY: usize = 100_000;

/// A queue head that is due: what one attempt needs.
#[derive(Debug)]
pub struct Due {
    pub webhook: u128,
    pub lane: u128,
    pub event_id: u128,
    pub hook: Webhook,
    /// The event; `None` when retention pruned it before it was delivered.
    pub event: Option<Event>,
}

/// What became of an attempt, decided by the dispatcher.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// 2xx: done.
    Delivered,
    /// Try again at this time (Unix ms).
    Retry { next_at: i64 },
    /// The schedule is exhausted: kept as `failed` for replay.
    Failed,
    /// 410: the webhook is disabled; the delivery waits (pending) for it to
    /// be enabled again.
    Disable { reason: String, next_at: i64 },
}

/// Removes every delivery row of `webhook` (it is being deleted).
pub(super) fn delete_rows(txn: &WriteTransaction, webhook: u128) -> StoreResult<()> {
    webhook_health::delete(txn, webhook)?;
    txn.open_table(WEBHOOK_CURSORS)?.remove(webhook)?;
    txn.open_table(DELIVERIES)?.retain_in::<(u128, u128), _>((webhook, 0u128)..=(webhook, u128::MAX), |_, _| false)?;
    txn.open_table(DELIVERY_QUEUE)?
        .retain_in::<(u128, u128, u128), _>((webhook, 0u128, 0u128)..=(webhook, u128::MAX, u128::MAX), |_, _| false)?;
    txn.open_table(DELIVERY_LOG)?.retain_in::<(u128, u128), _>((webhook, 0u128)..=(webhook, u128::MAX), |_, _| false)?;
    Ok(())
}

/// Queues `event` for `webhook`, fresh: no attempts, due at once. A replay
/// passes `reset` to drop the state of an earlier delivery of it.
fn queue(txn: &WriteTransaction, webhook: u128, event: u128, session: Option<u128>, reset: bool) -> StoreResult<()> {
    if reset {
        txn.open_table(DELIVERIES)?.remove((webhook, event))?;
        // Retrying in a lane of its own (ordering none): back in its session's.
        if session != Some(event) {
            txn.open_table(DELIVERY_QUEUE)?.remove((webhook, event, event))?;
        }
    }
    txn.open_table(DELIVERY_QUEUE)?.insert((webhook, session.unwrap_or(0), event), ())?;
    Ok(())
}

/// The state of a queued delivery that has no row: no attempt yet, due.
fn fresh(session: Option<u128>) -> Delivery {
    Delivery {
        session,
        status: DeliveryStatus::Pending,
        attempts: 0,
        next_at: 0,
        last_status: None,
        last_error: None,
        updated_at: 0,
    }
}

/// One webhook's share of an enqueue pass, read before the write.
struct Plan {
    webhook: u128,
    org: String,
    from: Option<u128>,
    to: u128,
    events: Vec<(u128, Option<u128>)>,
}

/// What an enqueue pass read (outside the writer lock), for
/// [`Store::delivery_round`] to write.
#[derive(Default)]
pub struct EnqueuePlan {
    plans: Vec<Plan>,
    /// Some webhook has more to read than one pass's budget.
    pub more: bool,
}

/// An attempt that ended, to be recorded: `decide` judges its outcome from
/// the attempt's number (1 = the first since the delivery was queued or
/// replayed). It may be asked again if a round fails and is written again.
pub struct Finished {
    pub webhook: u128,
    /// The lane the attempt held (its event's session, or 0).
    pub lane: u128,
    pub event: u128,
    pub attempt: Attempt,
    pub decide: Box<dyn Fn(u32) -> Outcome + Send + Sync>,
    /// The webhook's `ordering` is `none`: a retry leaves the session's lane.
    pub unordered: bool,
}

/// What one [`Store::delivery_round`] wrote.
#[derive(Debug, Default)]
pub struct Round {
    /// Per finished attempt, in order: its outcome, or `None` when the
    /// delivery is gone (its webhook was deleted meanwhile).
    pub outcomes: Vec<Option<Outcome>>,
    /// The lanes (webhook, session or 0; or an event's own lane) that got
    /// new queue rows.
    pub queued: Vec<(u128, u128)>,
    /// The organization of each webhook the enqueue pass queued for.
    pub orgs: Vec<(u128, String)>,
}

/// What [`Store::lane_heads`] found.
#[derive(Debug, Default)]
pub struct Heads {
    /// Heads due now, each claimed through `take`.
    pub due: Vec<Due>,
    /// Lanes whose head falls due later, and when (Unix ms).
    pub later: Vec<((u128, u128), i64)>,
    /// Lanes with a due head that `take` refused (their webhook, or
    /// everything, is at its cap).
    pub blocked: Vec<(u128, u128)>,
    /// The organization of every webhook whose lanes were read (the
    /// dispatcher shares its slots per organization).
    pub orgs: Vec<(u128, String)>,
}

/// Records one attempt of (webhook, lane, event) in the caller's
/// transaction (see [`Finished`]); `None` when the delivery is no longer
/// queued (its webhook was deleted meanwhile).
fn record(txn: &WriteTransaction, f: &Finished, moved: &mut Vec<(u128, u128)>) -> StoreResult<Option<Outcome>> {
    let (webhook, lane, event, attempt, decide) = (f.webhook, f.lane, f.event, &f.attempt, &f.decide);
    let mut queue = txn.open_table(DELIVERY_QUEUE)?;
    if queue.get((webhook, lane, event))?.is_none() {
        return Ok(None);
    }
    let mut deliveries = txn.open_table(DELIVERIES)?;
    let found = deliveries.get((webhook, event))?.map(|v| Delivery::decode(v.value())).transpose()?;
    let had_row = found.is_some();
    let mut d = found.unwrap_or_else(|| fresh((lane != 0).then_some(lane)));
    let number = d.attempts.saturating_add(1);
    let entry = LoggedAttempt { event, number, attempt: attempt.clone() };
    txn.open_table(DELIVERY_LOG)?.insert((webhook, u128::from(crate::new_id())), entry.encode().as_slice())?;
    d.attempts = number;
    d.last_status = attempt.status;
    d.last_error = attempt.error.clone();
    d.updated_at = attempt.at;
    let mut outcome = decide(d.attempts);
    let health = match &outcome {
        Outcome::Delivered => Health::Succeeded,
        Outcome::Disable { .. } => Health::Reset,
        // Not the endpoint's doing: its streak stays as it was.
        Outcome::Failed if attempt.status.is_none() && attempt.error.as_deref() == Some(EVENT_GONE) => Health::Reset,
        Outcome::Retry { .. } | Outcome::Failed => Health::Failed,
    };
    let keep = health == Health::Reset && !matches!(outcome, Outcome::Disable { .. });
    if !keep && webhook_health::note(txn, webhook, health, attempt.at)? {
        match &outcome {
            Outcome::Retry { next_at } => {
                outcome = Outcome::Disable { reason: FAILING_REASON.into(), next_at: *next_at };
            }
            _ => webhook_health::disable(txn, webhook, FAILING_REASON, attempt.at)?,
        }
    }
    match &outcome {
        Outcome::Delivered => d.status = DeliveryStatus::Delivered,
        Outcome::Failed => d.status = DeliveryStatus::Failed,
        Outcome::Retry { next_at } => d.next_at = *next_at,
        Outcome::Disable { reason, next_at } => {
            d.next_at = *next_at;
            webhook_health::disable(txn, webhook, reason, attempt.at)?;
        }
    }
    if matches!(outcome, Outcome::Delivered | Outcome::Failed) {
        queue.remove((webhook, lane, event))?;
    } else if matches!(outcome, Outcome::Retry { .. }) && f.unordered && lane != event {
        // Ordering none: retried in a lane of its own; the session goes on.
        queue.remove((webhook, lane, event))?;
        queue.insert((webhook, event, event), ())?;
        moved.push((webhook, event));
    }
    if matches!(outcome, Outcome::Delivered) {
        // Delivered leaves no row.
        if had_row {
            deliveries.remove((webhook, event))?;
        }
    } else {
        deliveries.insert((webhook, event), d.encode().as_slice())?;
    }
    Ok(Some(outcome))
}

impl Store {
    /// Reads an enqueue pass: for every webhook, the organization's events
    /// after its cursor and which of them it wants. Webhooks of one
    /// organization with the same cursor share one read of the log. Each
    /// organization reads at most `budget` events over all its webhooks
    /// (`budget` / its webhooks each, at least [`MIN_ENQUEUE_READ`]), so one
    /// organization's many webhooks do not swell the round's write that
    /// every organization's deliveries wait on. Nothing is written:
    /// [`Store::delivery_round`] does.
    pub fn plan_enqueue(&self, budget: usize) -> StoreResult<EnqueuePlan> {
        let mut out = EnqueuePlan::default();
        let txn = self.read()?;
        let hooks = txn.open_table(WEBHOOKS)?;
        let cursors = txn.open_table(WEBHOOK_CURSORS)?;
        let mut reads: HashMap<(String, Option<u128>), events::Scan> = HashMap::new();
        let all: Vec<(u128, Webhook)> =
            hooks.iter()?.map(|row| row.map_err(StoreError::from).and_then(|(k, v)| Ok((k.value(), Webhook::decode(v.value())?)))).collect::<Result<_, _>>()?;
        let mut per_org: HashMap<&str, usize> = HashMap::new();
        for (_, h) in &all {
            *per_org.entry(h.organization_id.as_str()).or_insert(0) += 1;
        }
        for (id, hook) in &all {
            let (id, hook) = (*id, hook);
            let budget = (budget / per_org.get(hook.organization_id.as_str()).copied().unwrap_or(1).max(1)).max(MIN_ENQUEUE_READ);
            let from = cursors.get(id)?.map(|c| c.value());
            if from.is_none() {
                // A webhook from before delivery existed: from now on.
                let to = events::last_id(&txn)?.unwrap_or(0);
                out.plans.push(Plan { webhook: id, org: hook.organization_id.clone(), from, to, events: Vec::new() });
                continue;
            }
            let key = (hook.organization_id.clone(), from);
            if !reads.contains_key(&key) {
                let scan = events::scan(&txn, Some(&hook.organization_id), from, budget, budget, |_| true)?;
                reads.insert(key.clone(), scan);
            }
            let Some(scan) = reads.get(&key) else { continue };
            out.more |= scan.more;
            match scan.scanned_to {
                Some(to) if Some(to) != from => {
                    let wanted = scan.events.iter().filter(|(_, e)| {
                        hook.enabled && hook.wants(&e.kind, e.session_id)
                    });
                    let events = wanted.map(|(id, e)| (*id, e.session_id)).collect();
                    out.plans.push(Plan { webhook: id, org: hook.organization_id.clone(), from, to, events });
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// One write transaction of the dispatcher: records the attempts that
    /// ended and queues what `plan` read, moving each webhook's cursor past
    /// it (a webhook deleted, or moved by another pass, since the read is
    /// skipped). An event is queued exactly once; a crash between rounds
    /// repeats nothing but attempts not yet recorded (at least once).
    pub fn delivery_round(&self, finished: &[Finished], plan: EnqueuePlan) -> StoreResult<Round> {
        let mut round = Round::default();
        if finished.is_empty() && plan.plans.is_empty() {
            return Ok(round);
        }
        let txn = self.write()?;
        let mut moved = Vec::new();
        for f in finished {
            round.outcomes.push(record(&txn, f, &mut moved)?);
        }
        {
            let mut cursors = txn.open_table(WEBHOOK_CURSORS)?;
            let hooks = txn.open_table(WEBHOOKS)?;
            let mut lanes = std::collections::HashSet::new();
            for p in plan.plans {
                let current = cursors.get(p.webhook)?.map(|c| c.value());
                if current != p.from || hooks.get(p.webhook)?.is_none() {
                    continue;
                }
                if !p.events.is_empty() {
                    round.orgs.push((p.webhook, p.org));
                }
                for (event, session) in p.events {
                    queue(&txn, p.webhook, event, session, false)?;
                    lanes.insert((p.webhook, session.unwrap_or(0)));
                }
                cursors.insert(p.webhook, p.to)?;
            }
            lanes.extend(moved);
            round.queued = lanes.into_iter().collect();
        }
        // No session page shows delivery state: the page cache stays.
        self.commit_unversioned(txn)?;
        Ok(round)
    }

    /// One enqueue pass alone ([`Store::plan_enqueue`] then
    /// [`Store::delivery_round`]); returns whether some webhook has more.
    pub fn enqueue_deliveries(&self, budget: usize) -> StoreResult<bool> {
        let plan = self.plan_enqueue(budget)?;
        let more = plan.more;
        self.delivery_round(&[], plan)?;
        Ok(more)
    }

    /// The heads of `lanes` (every lane when `None`, skipping those `busy`
    /// names) of enabled webhooks: due ones are claimed with
    /// `take(webhook, organization)` (false: that webhook, its organization
    /// or everything is at its cap). A lane that is empty, or whose webhook
    /// is disabled or gone, is in no list.
    pub fn lane_heads(
        &self,
        lanes: Option<&[(u128, u128)]>,
        now: i64,
        busy: &dyn Fn(u128, u128) -> bool,
        take: &mut dyn FnMut(u128, &str) -> bool,
    ) -> StoreResult<Heads> {
        let txn = self.read()?;
        let queue = txn.open_table(DELIVERY_QUEUE)?;
        let deliveries = txn.open_table(DELIVERIES)?;
        let hooks = txn.open_table(WEBHOOKS)?;
        let events = txn.open_table(EVENTS)?;
        let mut cache: HashMap<u128, Option<Webhook>> = HashMap::new();
        let mut out = Heads::default();
        let mut next = 0usize;
        let mut start: Bound<(u128, u128, u128)> = Bound::Unbounded;
        loop {
            // The next lane's head: from the list, or the table's next lane.
            let head = match lanes {
                Some(list) => {
                    let Some(&(w, l)) = list.get(next) else { break };
                    next += 1;
                    queue.range((w, l, 0u128)..=(w, l, u128::MAX))?.next().transpose()?
                }
                None => queue.range::<(u128, u128, u128)>((start, Bound::Unbounded))?.next().transpose()?,
            };
            let Some((k, _)) = head else {
                if lanes.is_some() {
                    continue;
                }
                break;
            };
            let (webhook, lane, event_id) = k.value();
            start = Bound::Excluded((webhook, lane, u128::MAX));
            if let std::collections::hash_map::Entry::Vacant(slot) = cache.entry(webhook) {
                slot.insert(hooks.get(webhook)?.map(|v| Webhook::decode(v.value())).transpose()?);
            }
            let hook = match cache.get(&webhook) {
                Some(Some(h)) if h.enabled => h,
                _ => {
                    start = Bound::Excluded((webhook, u128::MAX, u128::MAX));
                    continue;
                }
            };
            if busy(webhook, lane) {
                continue;
            }
            // No row: no attempt yet, due at once.
            let next_at = deliveries.get((webhook, event_id))?.map(|v| Delivery::decode(v.value())).transpose()?.map_or(0, |d| d.next_at);
            if next_at > now {
                out.later.push(((webhook, lane), next_at));
                continue;
            }
            if !take(webhook, &hook.organization_id) {
                out.blocked.push((webhook, lane));
                continue;
            }
            let event = events.get(event_id)?.map(|v| Event::decode(v.value())).transpose()?;
            out.due.push(Due { webhook, lane, event_id, hook: hook.clone(), event });
        }
        out.orgs = cache.into_iter().filter_map(|(w, h)| h.map(|h| (w, h.organization_id))).collect();
        Ok(out)
    }

    /// Records one attempt of (webhook, event) in a transaction of its own
    /// (see [`Finished`]; the dispatcher batches them in
    /// [`Store::delivery_round`]).
    pub fn record_attempt(
        &self,
        webhook: u128,
        event: u128,
        attempt: &Attempt,
        decide: impl Fn(u32) -> Outcome + Send + Sync + 'static,
    ) -> StoreResult<Option<Outcome>> {
        let (lane, unordered) = {
            let txn = self.read()?;
            let session = txn.open_table(EVENTS)?.get(event)?.map(|v| Event::decode(v.value())).transpose()?.and_then(|e| e.session_id);
            let own = txn.open_table(DELIVERY_QUEUE)?.get((webhook, event, event))?.is_some();
            let hook = txn.open_table(WEBHOOKS)?.get(webhook)?.map(|v| Webhook::decode(v.value())).transpose()?;
            (if own { event } else { session.unwrap_or(0) }, hook.is_some_and(|h| h.ordering == WebhookOrdering::None))
        };
        let f = Finished { webhook, lane, event, attempt: attempt.clone(), decide: Box::new(decide), unordered };
        let round = self.delivery_round(&[f], EnqueuePlan::default())?;
        Ok(round.outcomes.into_iter().next().flatten())
    }

    /// Queues again, with the same ids and attempts reset, the events of
    /// `org` between `since` and `until` (Unix ms, inclusive) that `webhook`
    /// wants now, its own test events, and any it holds a failed or retrying
    /// delivery of (only the `failed` ones with `only_failed`), up to what
    /// the enqueue pass has reached. Returns how many.
    ///
    /// Never an event from before the webhook was made (CONTRACT §11
    /// continued): the range starts after the webhook's id, a ULID taken
    /// from the same generator as event ids just before it was created; and
    /// only those the caller may read: `may_read(type)` (a `webhook.test`
    /// always).
    pub fn replay_deliveries(
        &self,
        webhook: u128,
        org: &str,
        since: i64,
        until: Option<i64>,
        only_failed: bool,
        may_read: &dyn Fn(&str) -> bool,
    ) -> StoreResult<usize> {
        let txn = self.write()?;
        let n = {
            let hook = match txn.open_table(WEBHOOKS)?.get(webhook)?.map(|v| Webhook::decode(v.value())).transpose()? {
                Some(h) if h.organization_id == org => h,
                _ => return Err(StoreError::NotFound("webhook")),
            };
            let cursor = txn.open_table(WEBHOOK_CURSORS)?.get(webhook)?.map_or(0, |c| c.value());
            let lo = ((since.max(0) as u128) << 80).max(webhook.saturating_add(1)).max((hook.created_at.max(0) as u128) << 80);
            let hi = match until {
                Some(u) if u < 0 => return Ok(0),
                Some(u) => (((u as u128) + 1) << 80).saturating_sub(1),
                None => u128::MAX,
            }
            .min(cursor);
            if lo > hi {
                txn.abort()?;
                return Ok(0);
            }
            let ids: Vec<u128> = txn
                .open_table(ORG_EVENTS)?
                .range((org, lo)..=(org, hi))?
                .take(MAX_REPLAY * 4)
                .map(|r| r.map(|(k, _)| k.value().1))
                .collect::<Result<_, _>>()?;
            let mut picked = Vec::new();
            {
                let events = txn.open_table(EVENTS)?;
                let deliveries = txn.open_table(DELIVERIES)?;
                for id in ids {
                    if picked.len() >= MAX_REPLAY {
                        break;
                    }
                    let Some(e) = events.get(id)?.map(|v| Event::decode(v.value())).transpose()? else { continue };
                    if e.kind != WEBHOOK_TEST && !may_read(&e.kind) {
                        continue;
                    }
                    let existing = deliveries.get((webhook, id))?.map(|v| Delivery::decode(v.value())).transpose()?;
                    let ok = if only_failed {
                        existing.as_ref().is_some_and(|d| d.status == DeliveryStatus::Failed)
                    } else {
                        let sent_here = existing.is_some()
                            || matches!(e.data, EventData::WebhookTest(w) if w == webhook && e.kind == WEBHOOK_TEST);
                        sent_here || hook.wants(&e.kind, e.session_id)
                    };
                    if ok {
                        picked.push((id, e.session_id));
                    }
                }
            }
            for (id, session) in &picked {
                queue(&txn, webhook, *id, *session, true)?;
            }
            picked.len()
        };
        self.commit(txn)?;
        Ok(n)
    }

    /// Appends a `webhook.test` event to `org`'s log and queues it for
    /// `webhook` only. Returns the event id.
    pub fn test_webhook(&self, webhook: u128, org: &str, now: i64) -> StoreResult<u128> {
        let txn = self.write()?;
        let id = {
            match txn.open_table(WEBHOOKS)?.get(webhook)?.map(|v| Webhook::decode(v.value())).transpose()? {
                Some(h) if h.organization_id == org => {}
                _ => return Err(StoreError::NotFound("webhook")),
            }
            let id = events::append(&txn, WEBHOOK_TEST, org, None, now, EventData::WebhookTest(webhook))?;
            queue(&txn, webhook, id, None, false)?;
            id
        };
        self.commit(txn)?;
        Ok(id)
    }

    /// One page of `webhook`'s delivery log, in the order the attempts were
    /// recorded (oldest first), after the entry `after`.
    pub fn delivery_attempts(&self, webhook: u128, org: &str, after: Option<u128>, limit: usize) -> StoreResult<Page<u128, LoggedAttempt>> {
        let txn = self.read()?;
        match txn.open_table(WEBHOOKS)?.get(webhook)?.map(|v| Webhook::decode(v.value())).transpose()? {
            Some(h) if h.organization_id == org => {}
            _ => return Err(StoreError::NotFound("webhook")),
        }
        let log = txn.open_table(DELIVERY_LOG)?;
        let start = after.map_or(Bound::Included((webhook, 0u128)), |a| Bound::Excluded((webhook, a)));
        let mut items = Vec::new();
        let mut next_after = None;
        for row in log.range::<(u128, u128)>((start, Bound::Included((webhook, u128::MAX))))? {
            let (k, v) = row?;
            if items.len() >= limit {
                next_after = items.last().map(|(k, _): &(u128, LoggedAttempt)| *k);
                break;
            }
            items.push((k.value().1, LoggedAttempt::decode(v.value())?));
        }
        Ok(Page { items, next_after })
    }

    /// Retention: deletes, at most `max` rows in this transaction, the
    /// delivery log's entries made before `cutoff` (Unix ms; the event log's
    /// own retention) and the failed deliveries of events older than it;
    /// pending ones stay (their next attempt finds the event gone and
    /// fails). Returns how many rows went.
    pub fn prune_deliveries(&self, cutoff: i64, max: usize) -> StoreResult<usize> {
        let below = (cutoff.max(0) as u128) << 80;
        let txn = self.write()?;
        let mut n = 0;
        {
            let hooks: Vec<u128> = txn.open_table(WEBHOOKS)?.iter()?.map(|r| r.map(|(k, _)| k.value())).collect::<Result<_, _>>()?;
            let mut deliveries = txn.open_table(DELIVERIES)?;
            let mut log = txn.open_table(DELIVERY_LOG)?;
            for w in hooks {
                let mut doomed = Vec::new();
                for row in deliveries.range((w, 0u128)..(w, below))? {
                    if n + doomed.len() >= max {
                        break;
                    }
                    let (k, v) = row?;
                    if Delivery::decode(v.value())?.status != DeliveryStatus::Pending {
                        doomed.push(k.value().1);
                    }
                }
                n += doomed.len();
                for e in doomed {
                    deliveries.remove((w, e))?;
                }
                let old: Vec<u128> = log
                    .range((w, 0u128)..(w, below))?
                    .take(max.saturating_sub(n))
                    .map(|r| r.map(|(k, _)| k.value().1))
                    .collect::<Result<_, _>>()?;
                n += old.len();
                for id in old {
                    log.remove((w, id))?;
                }
                if n >= max {
                    break;
                }
            }
        }
        if n > 0 {
            self.commit(txn)?;
        } else {
            txn.abort()?;
        }
        Ok(n)
    }

    /// The state of (webhook, event): its row, or a fresh pending state when
    /// it is queued with no row yet; `None` when it was delivered (or never
    /// queued, or pruned).
    pub fn delivery(&self, webhook: u128, event: u128) -> StoreResult<Option<Delivery>> {
        let txn = self.read()?;
        if let Some(d) = txn.open_table(DELIVERIES)?.get((webhook, event))?.map(|v| Delivery::decode(v.value())).transpose()? {
            return Ok(Some(d));
        }
        let session = txn.open_table(EVENTS)?.get(event)?.map(|v| Event::decode(v.value())).transpose()?.and_then(|e| e.session_id);
        let queue = txn.open_table(DELIVERY_QUEUE)?;
        let queued = queue.get((webhook, session.unwrap_or(0), event))?.is_some() || queue.get((webhook, event, event))?.is_some();
        Ok(queued.then(|| fresh(session)))
    }
}

#[cfg(test)]
#[path = "deliveries_tests.rs"]
mod tests;
