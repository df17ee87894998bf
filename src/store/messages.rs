//! Messages and each session's send queue, in the caller's write
//! transaction (the messaging layer batches many of these into one commit).
//!
//! Invariants `check` verifies: a message is in `send_queue` exactly while
//! its status is pending (`scheduled`, `queued`, `sending`), under the key
//! (session, due, id) with due = `sendAt` or `createdAt`; `send_queue_counts`
//! equals the rows per session; every message is in `session_messages`; its
//! WhatsApp id is in `wa_message_ids` from the moment it can be on the wire:
//! an inbound message when stored, an outbound one when claimed for sending
//! ([`index_wa_id`]; receipts, acks and replies can only name a message that
//! left, and a queued send then costs one index page fewer). Every status
//! change appends its event ([`super::events`]).

use std::ops::Bound;

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::events;
use super::message_records::{Message, MessageStatus};
use super::records::Record;
use super::tables::{
    LID_MAP, MEDIA, MESSAGES, QUEUE_COUNTS, SEND_PAUSES, SEND_QUEUE, SEND_TIMES, SESSION_MESSAGES, WA_IDS,
};
use super::{StoreError, StoreResult};

/// Whether a message belongs in its session's send queue: while pending, and
/// while a revoke of it waits to be sent.
pub fn queued(m: &Message) -> bool {
    m.status.is_pending() || (m.revoke_requested && m.status != MessageStatus::Revoked && m.status != MessageStatus::Failed)
}

/// Where a message waits in its session's queue.
pub fn due(m: &Message) -> i64 {
    m.send_at.unwrap_or(m.created_at)
}

/// Reads a message (from any snapshot kind that can open tables).
pub fn get(table: &impl ReadableTable<u128, &'static [u8]>, id: u128) -> StoreResult<Option<Message>> {
    match table.get(id)? {
        Some(v) => Ok(Some(Message::decode(v.value())?)),
        None => Ok(None),
    }
}

/// Reads a message in a read transaction.
pub fn read(txn: &ReadTransaction, id: u128) -> StoreResult<Option<Message>> {
    get(&txn.open_table(MESSAGES)?, id)
}

/// Messages waiting in a session's queue.
pub fn queue_len(txn: &WriteTransaction, session: u128) -> StoreResult<u64> {
    Ok(txn.open_table(QUEUE_COUNTS)?.get(session)?.map_or(0, |v| v.value()))
}

fn bump_queue(txn: &WriteTransaction, session: u128, delta: i64) -> StoreResult<()> {
    let mut counts = txn.open_table(QUEUE_COUNTS)?;
    let n = counts.get(session)?.map_or(0, |v| v.value()).saturating_add_signed(delta);
    if n == 0 {
        counts.remove(session)?;
    } else {
        counts.insert(session, n)?;
    }
    Ok(())
}

/// Stores a new message: outbound ones enter the queue (with their media
/// bytes; their WhatsApp id is indexed when claimed), inbound ones get their
/// WhatsApp id indexed; both get an event of `kind`.
pub fn insert(txn: &WriteTransaction, id: u128, m: &Message, media: Option<&[u8]>, kind: &str) -> StoreResult<()> {
    txn.open_table(MESSAGES)?.insert(id, m.encode().as_slice())?;
    txn.open_table(SESSION_MESSAGES)?.insert((m.session_id, id), ())?;
    if queued(m) {
        txn.open_table(SEND_QUEUE)?.insert((m.session_id, due(m), id), ())?;
        bump_queue(txn, m.session_id, 1)?;
    } else {
        index_wa_id(txn, id, m)?;
    }
    if let Some(bytes) = media {
        txn.open_table(MEDIA)?.insert(id, bytes)?;
    }
    events::message_event(txn, kind, id, m)?;
    Ok(())
}

/// Indexes a message's WhatsApp id (for receipts, acks, replies and
/// repeats): at insert for inbound messages, at the claim for outbound ones.
pub fn index_wa_id(txn: &WriteTransaction, id: u128, m: &Message) -> StoreResult<()> {
    txn.open_table(WA_IDS)?.insert((m.session_id, m.wa_message_id.as_str()), id)?;
    Ok(())
}

/// Whether `check` must find a message's WhatsApp id indexed: once it may
/// have left (inbound, or outbound from `sending` on). A message failed,
/// canceled or expired may have left or not.
pub fn wa_id_indexed(m: &Message) -> bool {
    m.direction == super::message_records::Direction::In
        || matches!(
            m.status,
            MessageStatus::Sending | MessageStatus::Sent | MessageStatus::Delivered | MessageStatus::Read | MessageStatus::Revoked
        )
}

/// Our id of a session's message by WhatsApp's id.
pub fn by_wa_id(txn: &WriteTransaction, session: u128, wa_id: &str) -> StoreResult<Option<u128>> {
    Ok(txn.open_table(WA_IDS)?.get((session, wa_id))?.map(|v| v.value()))
}

/// Read-modify-write of one message. `change` returns the event type to
/// append (`None`: nothing changed, nothing written). Leaving a pending
/// status takes the message out of the queue and drops its media bytes.
pub fn update(
    txn: &WriteTransaction,
    id: u128,
    change: impl FnOnce(&mut Message) -> Option<&'static str>,
) -> StoreResult<Option<Message>> {
    let mut table = txn.open_table(MESSAGES)?;
    let Some(mut m) = get(&table, id)? else { return Ok(None) };
    let (was_queued, due_before) = (queued(&m), due(&m));
    let Some(kind) = change(&mut m) else { return Ok(None) };
    table.insert(id, m.encode().as_slice())?;
    drop(table);
    let is_queued = queued(&m);
    if was_queued && !is_queued {
        txn.open_table(SEND_QUEUE)?.remove((m.session_id, due_before, id))?;
        bump_queue(txn, m.session_id, -1)?;
    } else if is_queued && due(&m) != due_before {
        let mut q = txn.open_table(SEND_QUEUE)?;
        q.remove((m.session_id, due_before, id))?;
        q.insert((m.session_id, due(&m), id), ())?;
    } else if !was_queued && is_queued {
        // A revoke enters the queue (queued like a send).
        txn.open_table(SEND_QUEUE)?.insert((m.session_id, due(&m), id), ())?;
        bump_queue(txn, m.session_id, 1)?;
    }
    if was_queued && !m.status.is_pending() && m.media.is_some() && m.direction == super::message_records::Direction::Out {
        // The media has left (or never will): it is not kept.
        txn.open_table(MEDIA)?.remove(id)?;
    }
    events::message_event(txn, kind, id, &m)?;
    Ok(Some(m))
}

/// The queue's first entry (oldest due) of a session: (due, message id).
pub fn head(txn: &ReadTransaction, session: u128) -> StoreResult<Option<(i64, u128)>> {
    head_of(&txn.open_table(SEND_QUEUE)?, session)
}

/// [`head`] in the send queue opened by either kind of transaction.
pub fn head_of(q: &impl ReadableTable<(u128, i64, u128), ()>, session: u128) -> StoreResult<Option<(i64, u128)>> {
    let mut rows = q.range::<(u128, i64, u128)>((session, i64::MIN, 0)..=(session, i64::MAX, u128::MAX))?;
    match rows.next() {
        Some(row) => {
            let (k, _) = row?;
            let (_, due, id) = k.value();
            Ok(Some((due, id)))
        }
        None => Ok(None),
    }
}

/// An outbound message's media bytes, while kept.
pub fn media(txn: &ReadTransaction, id: u128) -> StoreResult<Option<Vec<u8>>> {
    media_of(&txn.open_table(MEDIA)?, id)
}

/// [`media`] in the media table opened by either kind of transaction.
pub fn media_of(table: &impl ReadableTable<u128, &'static [u8]>, id: u128) -> StoreResult<Option<Vec<u8>>> {
    Ok(table.get(id)?.map(|v| v.value().to_vec()))
}

/// Fails everything in a session's queue with `code` (logout).
pub fn fail_queue(txn: &WriteTransaction, session: u128, code: &str, message: &str, now: i64) -> StoreResult<u64> {
    let ids = queued_ids(txn, session)?;
    let n = ids.len() as u64;
    for id in ids {
        update(txn, id, |m| {
            m.status = MessageStatus::Failed;
            m.error = Some(super::message_records::MessageError { code: code.into(), message: message.into() });
            m.updated_at = now;
            Some("message.status")
        })?;
    }
    Ok(n)
}

fn queued_ids(txn: &WriteTransaction, session: u128) -> StoreResult<Vec<u128>> {
    let q = txn.open_table(SEND_QUEUE)?;
    let mut ids = Vec::new();
    for row in q.range::<(u128, i64, u128)>((session, i64::MIN, 0)..=(session, i64::MAX, u128::MAX))? {
        ids.push(row?.0.value().2);
    }
    Ok(ids)
}

/// Deletes everything of a deleted session's messaging: its messages, queue,
/// media, WhatsApp ids, send times, pause and LID map.
pub fn drop_session(txn: &WriteTransaction, session: u128) -> StoreResult<()> {
    let mut ids = Vec::new();
    {
        let index = txn.open_table(SESSION_MESSAGES)?;
        for row in index.range::<(u128, u128)>((session, 0)..=(session, u128::MAX))? {
            ids.push(row?.0.value().1);
        }
    }
    let mut messages = txn.open_table(MESSAGES)?;
    let mut index = txn.open_table(SESSION_MESSAGES)?;
    let mut wa = txn.open_table(WA_IDS)?;
    let mut media = txn.open_table(MEDIA)?;
    let mut queue = txn.open_table(SEND_QUEUE)?;
    for id in ids {
        if let Some(m) = get(&messages, id)? {
            wa.remove((session, m.wa_message_id.as_str()))?;
            queue.remove((session, due(&m), id))?;
        }
        messages.remove(id)?;
        index.remove((session, id))?;
        media.remove(id)?;
    }
    txn.open_table(QUEUE_COUNTS)?.remove(session)?;
    txn.open_table(SEND_PAUSES)?.remove(session)?;
    let mut times = txn.open_table(SEND_TIMES)?;
    times.retain_in::<(u128, i64, u128), _>((session, i64::MIN, 0)..=(session, i64::MAX, u128::MAX), |_, _| false)?;
    let mut lids = txn.open_table(LID_MAP)?;
    lids.retain_in::<(u128, &str), _>((session, "")..(session + 1, ""), |_, _| false)?;
    Ok(())
}

/// Records a send at `at` (pacing history), forgetting sends older than an hour.
pub fn note_send(txn: &WriteTransaction, session: u128, at: i64, id: u128) -> StoreResult<()> {
    let mut times = txn.open_table(SEND_TIMES)?;
    times.insert((session, at, id), ())?;
    // Forgetting is amortized: one send in 32 (by the id's random bits)
    // drops what is older than the hour, so each send costs one insert.
    if id.is_multiple_of(32) {
        let old = at - 3_600_000;
        times.retain_in::<(u128, i64, u128), _>((session, i64::MIN, 0)..(session, old, 0), |_, _| false)?;
    }
    Ok(())
}

/// Send times of the last hour before `now`, oldest first.
pub fn recent_sends(txn: &ReadTransaction, session: u128, now: i64) -> StoreResult<Vec<i64>> {
    let times = txn.open_table(SEND_TIMES)?;
    let mut out = Vec::new();
    let from = now - 3_600_000;
    for row in times.range::<(u128, i64, u128)>((session, from, 0)..=(session, i64::MAX, u128::MAX))? {
        out.push(row?.0.value().1);
    }
    Ok(out)
}

/// Pauses (or, with `None`, resumes) a session's queue.
pub fn set_pause(txn: &WriteTransaction, session: u128, until: Option<i64>) -> StoreResult<()> {
    let mut t = txn.open_table(SEND_PAUSES)?;
    match until {
        Some(u) => t.insert(session, u)?,
        None => t.remove(session)?,
    };
    Ok(())
}

/// Until when a session's queue is paused, if it is.
pub fn pause(txn: &ReadTransaction, session: u128) -> StoreResult<Option<i64>> {
    Ok(txn.open_table(SEND_PAUSES)?.get(session)?.map(|v| v.value()))
}

/// [`pause`] in a write transaction.
pub fn paused_until_in(txn: &WriteTransaction, session: u128) -> StoreResult<Option<i64>> {
    Ok(txn.open_table(SEND_PAUSES)?.get(session)?.map(|v| v.value()))
}

/// Remembers that `a` and `b` are one contact (`@lid` ↔ phone JID).
pub fn map_lid(txn: &WriteTransaction, session: u128, lid: &str, pn: &str) -> StoreResult<()> {
    let mut t = txn.open_table(LID_MAP)?;
    t.insert((session, lid), pn)?;
    t.insert((session, pn), lid)?;
    Ok(())
}

/// The other form of a JID, when known.
pub fn other_form(txn: &WriteTransaction, session: u128, jid: &str) -> StoreResult<Option<String>> {
    Ok(txn.open_table(LID_MAP)?.get((session, jid))?.map(|v| v.value().to_string()))
}

/// A page of a session's messages after `after`, in id order; rows `keep`
/// refuses count against `budget`. Returns the rows and the next start.
pub fn page(
    txn: &ReadTransaction,
    session: u128,
    after: Option<u128>,
    limit: usize,
    budget: usize,
    keep: impl Fn(&Message) -> bool,
) -> StoreResult<super::Rows<Message>> {
    let index = txn.open_table(SESSION_MESSAGES)?;
    let messages = txn.open_table(MESSAGES)?;
    let start = after.map_or(Bound::Included((session, 0u128)), |a| Bound::Excluded((session, a)));
    let rows = index.range::<(u128, u128)>((start, Bound::Included((session, u128::MAX))))?.map(|row| {
        let id = row?.0.value().1;
        let m = get(&messages, id)?.ok_or_else(|| StoreError::Corrupt("session_messages names a missing message".into()))?;
        Ok((id, m))
    });
    let page = super::sessions::collect_page(rows, limit, budget, |m: &Message| keep(m))?;
    Ok((page.items, page.next_after))
}

/// Sessions with something in their send queue (workers to start at boot).
pub fn sessions_with_queue(txn: &ReadTransaction) -> StoreResult<Vec<u128>> {
    let mut out = Vec::new();
    for row in txn.open_table(QUEUE_COUNTS)?.iter()? {
        out.push(row?.0.value());
    }
    Ok(out)
}

impl super::Store {
    /// Deletes finished messages created before `cutoff` (Unix ms), oldest
    /// first, at most `max` rows read in this transaction; returns how many
    /// rows were read (call again while that is `max`) and how many deleted.
    /// Pending messages are kept whatever their age (their TTL ends them).
    pub fn prune_messages(&self, cutoff: i64, max: usize) -> StoreResult<(usize, usize)> {
        let txn = self.write()?;
        let mut doomed = Vec::new();
        let mut read = 0;
        {
            let messages = txn.open_table(MESSAGES)?;
            for row in messages.iter()? {
                let (k, v) = row?;
                if ulid::Ulid::from(k.value()).timestamp_ms() as i64 >= cutoff || read >= max {
                    break;
                }
                read += 1;
                let m = Message::decode(v.value())?;
                if !queued(&m) {
                    doomed.push((k.value(), m));
                }
            }
        }
        if doomed.is_empty() {
            txn.abort()?;
            return Ok((read, 0));
        }
        {
            let mut messages = txn.open_table(MESSAGES)?;
            let mut index = txn.open_table(SESSION_MESSAGES)?;
            let mut wa = txn.open_table(WA_IDS)?;
            let mut media = txn.open_table(MEDIA)?;
            for (id, m) in &doomed {
                messages.remove(*id)?;
                index.remove((m.session_id, *id))?;
                wa.remove((m.session_id, m.wa_message_id.as_str()))?;
                media.remove(*id)?;
            }
        }
        self.commit(txn)?;
        Ok((read, doomed.len()))
    }
}
