//! The event log (CONTRACT §10): every change a client may want to hear of
//! is appended here in the same write transaction as the change itself, so
//! there is never a change without its event nor an event without its change.
//!
//! Event ids are ULIDs made inside the write transaction. redb has one writer
//! at a time and [`crate::new_id`] is monotonic, so ids sort in commit order:
//! walking `events` from a cursor never misses an event committed later.

use std::cell::Cell;
use std::ops::Bound;

use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use ulid::Ulid;

use super::message_records::{Event, EventData, Message};
use super::records::{Record, Session};
use super::tables::{EVENTS, ORG_EVENTS};
use super::{Store, StoreError, StoreResult};

/// Appends a directory event (`contact.updated`, `presence.update`,
/// `group.*`) of session `session` in the caller's transaction; `data` is
/// the event's `data` JSON. Returns its id.
pub fn directory_event(
    txn: &WriteTransaction,
    kind: &str,
    org: &str,
    session: u128,
    timestamp: i64,
    data: &serde_json::Value,
) -> StoreResult<u128> {
    let text = data.to_string();
    append_ref(txn, kind, org, Some(session), timestamp, EventDataRef::Directory(&text))
}

/// Appends one event in the caller's transaction; returns its id.
pub fn append(
    txn: &WriteTransaction,
    kind: &str,
    org: &str,
    session: Option<u128>,
    timestamp: i64,
    data: EventData,
) -> StoreResult<u128> {
    let data = match &data {
        EventData::Session(id, s) => EventDataRef::Session(*id, s),
        EventData::Message(id, m) => EventDataRef::Message(*id, m),
        EventData::SendingPaused { until, reason } => EventDataRef::SendingPaused { until: *until, reason },
        EventData::WebhookTest(w) => EventDataRef::WebhookTest(*w),
        EventData::Directory(j) => EventDataRef::Directory(j),
    };
    append_ref(txn, kind, org, session, timestamp, data)
}

/// [`EventData`] borrowed: serializes to the very same bytes (serde writes
/// `&T` as `T`), so the hot paths encode an event without copying the
/// message or session it carries.
#[derive(serde::Serialize)]
enum EventDataRef<'a> {
    Session(u128, &'a Session),
    Message(u128, &'a Message),
    SendingPaused { until: i64, reason: &'a str },
    WebhookTest(u128),
    Directory(&'a str),
}

/// [`Event`] borrowed, inside the same V1 envelope.
#[derive(serde::Serialize)]
enum EventEnvelopeRef<'a> {
    V1 { kind: &'a str, timestamp: i64, organization_id: &'a str, session_id: Option<u128>, data: EventDataRef<'a> },
}

fn append_ref(
    txn: &WriteTransaction,
    kind: &str,
    org: &str,
    session: Option<u128>,
    timestamp: i64,
    data: EventDataRef<'_>,
) -> StoreResult<u128> {
    let id = u128::from(crate::new_id());
    let event = EventEnvelopeRef::V1 { kind, timestamp, organization_id: org, session_id: session, data };
    let bytes = postcard::to_stdvec(&event).map_err(|e| StoreError::Corrupt(format!("event record: {e}")))?;
    txn.open_table(EVENTS)?.insert(id, bytes.as_slice())?;
    txn.open_table(ORG_EVENTS)?.insert((org, id), ())?;
    APPENDED.with(|c| c.set(c.get().max(id)));
    Ok(id)
}

thread_local! {
    /// The newest event appended on this thread since the last commit. A
    /// write transaction lives on one thread from `Store::write` to
    /// `Store::commit` (the store's API is synchronous; the group committer
    /// runs and commits its batch on its own thread), so the commit that
    /// follows an append finds it here without any change to the
    /// transaction-taking functions.
    static APPENDED: Cell<u128> = const { Cell::new(0) };
}

/// Tells listeners (the live event streams) that events were committed.
/// Exists so that a stream wakes within moments of a commit instead of
/// polling the log; the log stays the one source of truth: the value is only
/// the newest committed event id, and a listener reads the events themselves
/// from the data file after the last one it delivered.
pub struct EventSignal {
    tx: tokio::sync::watch::Sender<u128>,
}

impl EventSignal {
    /// A signal whose value starts at `last` (the newest id in the file).
    pub fn new(last: u128) -> EventSignal {
        EventSignal { tx: tokio::sync::watch::Sender::new(last) }
    }

    /// A receiver that sees every later commit of events.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u128> {
        self.tx.subscribe()
    }

    /// Called by the store after each commit on this thread: publishes the
    /// newest event the transaction appended, if any. An id left behind by a
    /// transaction that was dropped rather than committed is published by
    /// the thread's next commit: a wake-up with nothing new, never a miss.
    pub(super) fn after_commit(&self, committed: bool) {
        let id = APPENDED.with(|c| c.replace(0));
        if committed && id != 0 {
            self.tx.send_if_modified(|v| {
                let newer = id > *v;
                if newer {
                    *v = id;
                }
                newer
            });
        }
    }
}

/// The newest event id in the log, if any.
pub fn last_id(txn: &ReadTransaction) -> StoreResult<Option<u128>> {
    newest(&txn.open_table(EVENTS)?)
}

/// The newest event id of the events table, opened in a read or a write transaction.
pub fn newest(table: &impl ReadableTable<u128, &'static [u8]>) -> StoreResult<Option<u128>> {
    Ok(table.last()?.map(|(k, _)| k.value()))
}

/// A stretch of the log read by [`scan`].
pub struct Scan {
    /// The events `keep` accepted, in id order.
    pub events: Vec<(u128, Event)>,
    /// The last id read (kept or not): the next scan starts after it.
    pub scanned_to: Option<u128>,
    /// Whether the scan stopped at `limit` or `budget` before the log's end.
    pub more: bool,
}

/// Reads events after `after` in id order (one organization's, or all with
/// `org` `None`), keeping up to `limit` that `keep` accepts and reading at
/// most `budget` rows. It also says how far it read when it reached the end
/// (unlike a [`page`]), so a filtered reader never reads the same rows twice.
pub fn scan(
    txn: &ReadTransaction,
    org: Option<&str>,
    after: Option<u128>,
    limit: usize,
    budget: usize,
    keep: impl Fn(&Event) -> bool,
) -> StoreResult<Scan> {
    let events = txn.open_table(EVENTS)?;
    let mut out = Scan { events: Vec::new(), scanned_to: after, more: false };
    let visit = |id: u128, e: Event, out: &mut Scan| {
        out.scanned_to = Some(id);
        if keep(&e) {
            out.events.push((id, e));
        }
    };
    match org {
        None => {
            let start = after.map_or(Bound::Unbounded, Bound::Excluded);
            for (read, row) in events.range::<u128>((start, Bound::Unbounded))?.enumerate() {
                if read >= budget || out.events.len() >= limit {
                    out.more = true;
                    break;
                }
                let (k, v) = row?;
                visit(k.value(), Event::decode(v.value())?, &mut out);
            }
        }
        Some(org) => {
            let index = txn.open_table(ORG_EVENTS)?;
            let start = after.map_or(Bound::Included((org, 0u128)), |a| Bound::Excluded((org, a)));
            for (read, row) in index.range::<(&str, u128)>((start, Bound::Included((org, u128::MAX))))?.enumerate() {
                if read >= budget || out.events.len() >= limit {
                    out.more = true;
                    break;
                }
                let id = row?.0.value().1;
                let v = events
                    .get(id)?
                    .ok_or_else(|| StoreError::Corrupt(format!("org_events names missing event {}", Ulid::from(id))))?;
                visit(id, Event::decode(v.value())?, &mut out);
            }
        }
    }
    Ok(out)
}

/// `session.status` for a session whose status just changed.
pub fn session_status(txn: &WriteTransaction, id: u128, session: &Session) -> StoreResult<u128> {
    append_ref(txn, "session.status", &session.organization_id, Some(id), session.updated_at, EventDataRef::Session(id, session))
}

/// A `message.*` event carrying the message as it now is.
pub fn message_event(txn: &WriteTransaction, kind: &str, id: u128, m: &Message) -> StoreResult<u128> {
    append_ref(txn, kind, &m.organization_id, Some(m.session_id), m.updated_at, EventDataRef::Message(id, m))
}

/// Reads one page of events after `after`, in id order: across all
/// organizations (`org` `None`, the admin view) or one organization's. Rows
/// that `keep` refuses still count against `budget`, so a filtered page
/// costs O(budget). Returns the events and where the next page starts: a
/// [`scan`] whose next page starts after the last row read, if it stopped
/// early having read any.
pub fn page(
    txn: &ReadTransaction,
    org: Option<&str>,
    after: Option<u128>,
    limit: usize,
    budget: usize,
    keep: impl Fn(&Event) -> bool,
) -> StoreResult<super::Rows<Event>> {
    let s = scan(txn, org, after, limit, budget, keep)?;
    let next = if s.more && s.scanned_to != after { s.scanned_to } else { None };
    Ok((s.events, next))
}

impl Store {
    /// Deletes events older than `cutoff` (Unix ms), oldest first, at most
    /// `max` in this transaction; returns how many went (call again while it
    /// returns `max`). Bounded so the writer is never held for long.
    pub fn prune_events(&self, cutoff: i64, max: usize) -> StoreResult<usize> {
        let txn = self.write()?;
        let mut n = 0;
        {
            let mut events = txn.open_table(EVENTS)?;
            let mut index = txn.open_table(ORG_EVENTS)?;
            let mut doomed = Vec::new();
            for row in events.iter()? {
                let (k, v) = row?;
                // Ids are time-ordered: the first young event ends the walk.
                if Ulid::from(k.value()).timestamp_ms() as i64 >= cutoff || doomed.len() >= max {
                    break;
                }
                let e = Event::decode(v.value())?;
                doomed.push((k.value(), e.organization_id));
            }
            for (id, org) in doomed {
                events.remove(id)?;
                index.remove((org.as_str(), id))?;
                n += 1;
            }
        }
        if n > 0 {
            self.commit(txn)?;
        } else {
            txn.abort()?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The borrowed encoding the hot paths write is byte for byte the
    /// record's own (so `Event::decode` reads it, and the golden bytes of
    /// `message_records` pin it).
    #[test]
    fn borrowed_events_encode_as_the_record_does() {
        let mut m = crate::store::message_records::tests::message();
        m.chat_lid = Some("1@lid".into());
        m.mentions = vec!["x@lid".into()];
        let owned = Event {
            kind: "message.received".into(),
            timestamp: 2,
            organization_id: "o".into(),
            session_id: Some(1),
            data: EventData::Message(9, Box::new(m.clone())),
        };
        let borrowed = EventEnvelopeRef::V1 {
            kind: "message.received",
            timestamp: 2,
            organization_id: "o",
            session_id: Some(1),
            data: EventDataRef::Message(9, &m),
        };
        let bytes = postcard::to_stdvec(&borrowed).expect("encode");
        assert_eq!(bytes, owned.encode());
        assert_eq!(Event::decode(&bytes).ok(), Some(owned));
    }
}
