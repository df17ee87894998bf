//! Messages and each session's send queue, in the caller's write
//! transaction (the messaging layer batches many of these into one commit).
//!
//! The queue has two lanes. Plain sends (outbound, no `sendAt`) wait in id
//! order, which is the order of `session_message_index` itself: their index
//! row carries lane flag 1, and `send_queue_heads` holds the lane's count and
//! low-water id, so queuing one writes a single per-session row (the index
//! row every message has) and its head is the first flagged pending message
//! from the low-water id on. Scheduled messages and revokes, which do not
//! wait in id order, are keyed in `send_queue` by (session, due, id). The
//! queue's head is the earlier of the two lanes' heads, by (due, id).
//!
//! Invariants `check` verifies: a message is queued exactly while it is
//! pending (or a revoke of it waits), in the in-order lane when [`in_lane`]
//! (flag 1, id at or above the low-water id), else in `send_queue` under
//! (session, due, id) with due = `sendAt` or `createdAt`; `send_queue_heads`
//! counts both lanes per session; every message is in the index with its
//! flag; its WhatsApp id is in `wa_message_ids` from the moment it can be on
//! the wire: an inbound message when stored, an outbound one when claimed for
//! sending at the latest ([`index_wa_id`]; receipts, acks and replies can
//! only name a message that left, and a single queued send then costs one
//! index page fewer; a batch's are indexed at insert, sharing the page).
//! Every status change appends its event ([`super::events`]).

use std::ops::Bound;

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::events;
use super::usage;
use super::message_records::{Message, MessageStatus};
use super::records::Record;
use super::tables::{
    LID_MAP, MESSAGES, QUEUE_HEADS, SEND_LOG, SEND_PAUSES, SEND_QUEUE, SESSION_MESSAGES, WA_IDS,
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

/// Whether a message belongs to the in-order lane whenever it is pending
/// (its index row's flag): an outbound message with no `sendAt`.
pub fn in_order(m: &Message) -> bool {
    m.direction == super::message_records::Direction::Out && m.send_at.is_none()
}

/// Whether a message waits in the in-order lane now (else, when
/// [`queued`], in `send_queue`).
pub fn in_lane(m: &Message) -> bool {
    in_order(m) && m.status.is_pending()
}

/// A session's row of `send_queue_heads`: (queued in all, in the in-order
/// lane, the lane's low-water id).
type Heads = (u64, u64, u128);

fn heads_of(t: &impl ReadableTable<u128, Heads>, session: u128) -> StoreResult<Heads> {
    Ok(t.get(session)?.map_or((0, 0, 0), |v| v.value()))
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
    Ok(heads_of(&txn.open_table(QUEUE_HEADS)?, session)?.0)
}

/// Puts message `id` in its session's queue, in the lane it belongs to.
fn enter(txn: &WriteTransaction, id: u128, m: &Message) -> StoreResult<()> {
    let mut heads = txn.open_table(QUEUE_HEADS)?;
    let (total, mut lane, mut low) = heads_of(&heads, m.session_id)?;
    if in_lane(m) {
        if lane == 0 || id < low {
            low = id;
        }
        lane += 1;
    } else {
        txn.open_table(SEND_QUEUE)?.insert((m.session_id, due(m), id), ())?;
    }
    heads.insert(m.session_id, (total + 1, lane, low))?;
    Ok(())
}

/// Takes message `id` out of its session's queue; `lane_was` and `due_was`
/// say where it waited. When the lane's head leaves (the usual case), the
/// low-water id moves past it; the claim of the next head moves it there
/// ([`mark_head`]), so a head read passes over at most what left the lane
/// out of order since.
fn leave(txn: &WriteTransaction, session: u128, id: u128, lane_was: bool, due_was: i64) -> StoreResult<()> {
    let mut heads = txn.open_table(QUEUE_HEADS)?;
    let (total, mut lane, mut low) = heads_of(&heads, session)?;
    if lane_was {
        lane = lane.saturating_sub(1);
        if lane == 0 {
            low = 0;
        } else if id == low {
            low = id.saturating_add(1);
        }
    } else {
        txn.open_table(SEND_QUEUE)?.remove((session, due_was, id))?;
    }
    if total <= 1 {
        heads.remove(session)?;
    } else {
        heads.insert(session, (total - 1, lane, low))?;
    }
    Ok(())
}

/// Moves the in-order lane's low-water id up to `id` if `id` is the lane's
/// first pending message (checked in this transaction: a claim's head may
/// have been read in an earlier snapshot). Called at each claim, so the
/// low-water id never trails the head by more than what left the lane out
/// of order since the last claim, and a head read stays one row or so.
pub fn mark_head(txn: &WriteTransaction, session: u128, id: u128) -> StoreResult<()> {
    let (_, lane, low) = heads_of(&txn.open_table(QUEUE_HEADS)?, session)?;
    if lane == 0 || low >= id {
        return Ok(());
    }
    let first = {
        let (index, messages) = (txn.open_table(SESSION_MESSAGES)?, txn.open_table(MESSAGES)?);
        lane_from(&index, &messages, session, (lane, low), 1)?.first().map(|(_, first, _)| *first)
    };
    if first == Some(id) {
        mark_read_head(txn, session, id)?;
    }
    Ok(())
}

/// [`mark_head`] of an `id` known to be the lane's first pending message:
/// verified there, or read as the lane's head in this very transaction (the
/// claim chained to a `sent` commit), which need not walk the lane again.
pub fn mark_read_head(txn: &WriteTransaction, session: u128, id: u128) -> StoreResult<()> {
    let mut heads = txn.open_table(QUEUE_HEADS)?;
    let (total, lane, low) = heads_of(&heads, session)?;
    if lane > 0 && low < id {
        heads.insert(session, (total, lane, id))?;
    }
    Ok(())
}

/// Stores a new message: outbound ones enter the queue (with their staged
/// media blob attached, see [`super::media`]; their WhatsApp id is indexed
/// when claimed), inbound ones get their WhatsApp id indexed; both get an
/// event of `kind`. Its organization's stored bytes grow by its text and
/// media ([`usage`]). A blob that is no longer staged is an error (validate
/// with [`super::media::all_staged`] first).
pub fn insert(txn: &WriteTransaction, id: u128, m: &Message, media: Option<u128>, kind: &str) -> StoreResult<()> {
    insert_all(txn, [(id, m, media)], kind)
}

/// [`insert`] of several messages, their stored bytes counted with one
/// counter update per organization.
pub fn insert_all<'a>(
    txn: &WriteTransaction,
    rows: impl IntoIterator<Item = (u128, &'a Message, Option<u128>)>,
    kind: &str,
) -> StoreResult<()> {
    let mut deltas = usage::Deltas::default();
    for (id, m, media) in rows {
        let mut bytes = usage::message_bytes(m);
        if let Some(blob) = media {
            match super::media::attach(txn, id, blob)? {
                Some(size) => bytes += size,
                None => return Err(super::media::gone()),
            }
        }
        txn.open_table(MESSAGES)?.insert(id, m.encode().as_slice())?;
        txn.open_table(SESSION_MESSAGES)?.insert((m.session_id, id), u8::from(in_order(m)))?;
        if queued(m) {
            enter(txn, id, m)?;
        } else {
            index_wa_id(txn, id, m)?;
        }
        deltas.note(&m.organization_id, bytes as i64);
        events::message_event(txn, kind, id, m)?;
    }
    deltas.apply(txn)
}

/// Indexes a message's WhatsApp id (for receipts, acks, replies and
/// repeats): at insert for inbound messages, at the claim for outbound ones
/// (or at insert for a batch's, see [`index_wa_id_once`]).
pub fn index_wa_id(txn: &WriteTransaction, id: u128, m: &Message) -> StoreResult<()> {
    txn.open_table(WA_IDS)?.insert((m.session_id, m.wa_message_id.as_str()), id)?;
    Ok(())
}

/// [`index_wa_id`] unless it is indexed already: the claim's, for an
/// outbound message a batch indexed at insert. A batch's ids share the
/// session's index page in that one commit; indexed one claim at a time,
/// each send would dirty that page again. (A single send is indexed at its
/// claim: at insert it would cost its commit a page.)
pub fn index_wa_id_once(txn: &WriteTransaction, id: u128, m: &Message) -> StoreResult<()> {
    let mut t = txn.open_table(WA_IDS)?;
    let key = (m.session_id, m.wa_message_id.as_str());
    if t.get(key)?.is_none() {
        t.insert(key, id)?;
    }
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
    let Some(m) = get(&txn.open_table(MESSAGES)?, id)? else { return Ok(None) };
    rewrite(txn, id, m, change)
}

/// [`update`] of message `id` as `m`, read in this transaction.
pub fn rewrite(
    txn: &WriteTransaction,
    id: u128,
    mut m: Message,
    change: impl FnOnce(&mut Message) -> Option<&'static str>,
) -> StoreResult<Option<Message>> {
    let before = (queued(&m), in_lane(&m), due(&m));
    let text_before = usage::message_bytes(&m) as i64;
    let Some(kind) = change(&mut m) else { return Ok(None) };
    let mut delta = usage::message_bytes(&m) as i64 - text_before;
    txn.open_table(MESSAGES)?.insert(id, m.encode().as_slice())?;
    let (was_queued, lane_was, due_was) = before;
    if before != (queued(&m), in_lane(&m), due(&m)) {
        if was_queued {
            leave(txn, m.session_id, id, lane_was, due_was)?;
        }
        if queued(&m) {
            // A revoke of a sent message enters (queued like a send).
            enter(txn, id, &m)?;
        }
    }
    if was_queued && !m.status.is_pending() && m.media.is_some() && m.direction == super::message_records::Direction::Out {
        // The media has left (or never will): it is not kept.
        delta -= super::media::remove(txn, &[id])?.iter().map(|(_, n)| *n as i64).sum::<i64>();
    }
    usage::add(txn, &m.organization_id, delta)?;
    events::message_event(txn, kind, id, &m)?;
    Ok(Some(m))
}

/// The queue's head of a session: the earlier, by (due, id), of the
/// in-order lane's first pending message and `send_queue`'s first entry.
pub fn head(txn: &ReadTransaction, session: u128) -> StoreResult<Option<(i64, u128, Message)>> {
    let (index, queue, heads, messages) = (
        txn.open_table(SESSION_MESSAGES)?,
        txn.open_table(SEND_QUEUE)?,
        txn.open_table(QUEUE_HEADS)?,
        txn.open_table(MESSAGES)?,
    );
    head_of(&index, &queue, &heads, &messages, session)
}

/// [`head`] in a write transaction.
pub fn head_in(txn: &WriteTransaction, session: u128) -> StoreResult<Option<(i64, u128, Message)>> {
    let (index, queue, heads, messages) = (
        txn.open_table(SESSION_MESSAGES)?,
        txn.open_table(SEND_QUEUE)?,
        txn.open_table(QUEUE_HEADS)?,
        txn.open_table(MESSAGES)?,
    );
    head_of(&index, &queue, &heads, &messages, session)
}

fn head_of(
    index: &impl ReadableTable<(u128, u128), u8>,
    queue: &impl ReadableTable<(u128, i64, u128), ()>,
    heads: &impl ReadableTable<u128, Heads>,
    messages: &impl ReadableTable<u128, &'static [u8]>,
    session: u128,
) -> StoreResult<Option<(i64, u128, Message)>> {
    let (_, lane, low) = heads_of(heads, session)?;
    let lane = lane_from(index, messages, session, (lane, low), 1)?.pop();
    let side = match queue.range::<(u128, i64, u128)>((session, i64::MIN, 0)..=(session, i64::MAX, u128::MAX))?.next() {
        Some(row) => {
            let (_, due, id) = row?.0.value();
            let m = get(messages, id)?.ok_or_else(|| StoreError::Corrupt("send_queue names a missing message".into()))?;
            Some((due, id, m))
        }
        None => None,
    };
    Ok(match (lane, side) {
        (Some(a), Some(b)) => Some(if (b.0, b.1) < (a.0, a.1) { b } else { a }),
        (a, b) => a.or(b),
    })
}

/// Up to `max` of the in-order lane's pending messages, first first, given
/// the lane's (count, low-water id): the flagged index rows from the
/// low-water id on whose message is pending (rows of messages that left
/// the lane are passed over).
fn lane_from(
    index: &impl ReadableTable<(u128, u128), u8>,
    messages: &impl ReadableTable<u128, &'static [u8]>,
    session: u128,
    (lane, low): (u64, u128),
    max: usize,
) -> StoreResult<Vec<(i64, u128, Message)>> {
    let want = max.min(lane as usize);
    let mut out = Vec::new();
    if want == 0 {
        return Ok(out);
    }
    for row in index.range::<(u128, u128)>((session, low)..=(session, u128::MAX))? {
        let (k, flag) = row?;
        if flag.value() == 0 {
            continue;
        }
        let id = k.value().1;
        let m = get(messages, id)?.ok_or_else(|| StoreError::Corrupt("session_message_index names a missing message".into()))?;
        if in_lane(&m) {
            out.push((due(&m), id, m));
            if out.len() == want {
                break;
            }
        }
    }
    Ok(out)
}

/// An outbound message's media bytes, while kept.
pub fn media(txn: &ReadTransaction, id: u128) -> StoreResult<Option<Vec<u8>>> {
    super::media::read(txn, id)
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
    let mut ids: Vec<u128> = {
        let (index, heads, messages) =
            (txn.open_table(SESSION_MESSAGES)?, txn.open_table(QUEUE_HEADS)?, txn.open_table(MESSAGES)?);
        let (_, lane, low) = heads_of(&heads, session)?;
        lane_from(&index, &messages, session, (lane, low), usize::MAX)?.into_iter().map(|(_, id, _)| id).collect()
    };
    let q = txn.open_table(SEND_QUEUE)?;
    for row in q.range::<(u128, i64, u128)>((session, i64::MIN, 0)..=(session, i64::MAX, u128::MAX))? {
        ids.push(row?.0.value().2);
    }
    Ok(ids)
}

/// Deletes everything of a deleted session's messaging: its messages, queue,
/// media, WhatsApp ids, pause and LID map (its send times of the last hour
/// age out of the time-keyed send log).
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
    let mut queue = txn.open_table(SEND_QUEUE)?;
    let mut deltas = usage::Deltas::default();
    let mut org: Option<String> = None;
    for id in &ids {
        let id = *id;
        let m = get(&messages, id)?;
        if let Some(m) = &m {
            wa.remove((session, m.wa_message_id.as_str()))?;
            queue.remove((session, due(m), id))?;
        }
        messages.remove(id)?;
        index.remove((session, id))?;
        if let Some(m) = &m {
            deltas.note(&m.organization_id, -(usage::message_bytes(m) as i64));
            org = Some(m.organization_id.clone());
        }
    }
    drop((messages, index, wa, queue));
    let freed: i64 = super::media::remove(txn, &ids)?.iter().map(|(_, n)| *n as i64).sum();
    if let Some(org) = &org {
        deltas.note(org, -freed);
    }
    deltas.apply(txn)?;
    txn.open_table(QUEUE_HEADS)?.remove(session)?;
    txn.open_table(SEND_PAUSES)?.remove(session)?;
    let mut lids = txn.open_table(LID_MAP)?;
    lids.retain_in::<(u128, &str), _>((session, "")..(session + 1, ""), |_, _| false)?;
    Ok(())
}

/// Records a send at `at` (pacing history), forgetting sends older than an hour.
pub fn note_send(txn: &WriteTransaction, session: u128, at: i64, id: u128) -> StoreResult<()> {
    let mut log = txn.open_table(SEND_LOG)?;
    log.insert((at, id), session)?;
    // Forgetting is amortized: one send in 32 (by the id's random bits)
    // drops what is older than the hour, from the log's old edge.
    if id.is_multiple_of(32) {
        log.retain_in::<(i64, u128), _>((i64::MIN, 0)..(at - 3_600_000, 0), |_, _| false)?;
    }
    Ok(())
}

/// Every session's send times of the last hour before `now`, oldest first:
/// read once when messaging starts; each session's worker takes its own.
/// (A deleted session's rows are left to age out within the hour.)
pub fn recent_sends(txn: &ReadTransaction, now: i64) -> StoreResult<std::collections::HashMap<u128, Vec<i64>>> {
    let mut out: std::collections::HashMap<u128, Vec<i64>> = std::collections::HashMap::new();
    for row in txn.open_table(SEND_LOG)?.range::<(i64, u128)>((now - 3_600_000, 0)..)? {
        let (k, session) = row?;
        out.entry(session.value()).or_default().push(k.value().0);
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
        let m = get(&messages, id)?.ok_or_else(|| StoreError::Corrupt("session_message_index names a missing message".into()))?;
        Ok((id, m))
    });
    let page = super::sessions::collect_page(rows, limit, budget, |m: &Message| keep(m))?;
    Ok((page.items, page.next_after))
}

/// Sessions with something in their send queue (workers to start at boot).
pub fn sessions_with_queue(txn: &ReadTransaction) -> StoreResult<Vec<u128>> {
    let mut out = Vec::new();
    for row in txn.open_table(QUEUE_HEADS)?.iter()? {
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
            let mut deltas = usage::Deltas::default();
            for (id, m) in &doomed {
                messages.remove(*id)?;
                index.remove((m.session_id, *id))?;
                wa.remove((m.session_id, m.wa_message_id.as_str()))?;
                deltas.note(&m.organization_id, -(usage::message_bytes(m) as i64));
            }
            drop((messages, index, wa));
            let ids: Vec<u128> = doomed.iter().map(|(id, _)| *id).collect();
            let org_of: std::collections::HashMap<u128, &str> = doomed.iter().map(|(id, m)| (*id, m.organization_id.as_str())).collect();
            for (id, freed) in super::media::remove(&txn, &ids)? {
                if let Some(org) = org_of.get(&id) {
                    deltas.note(org, -(freed as i64));
                }
            }
            deltas.apply(&txn)?;
        }
        self.commit(txn)?;
        Ok((read, doomed.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::message_records::tests::message;
    use crate::store::message_records::Direction;
    use crate::store::Store;

    const S: u128 = 7;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(&dir.path().join("m.redb"), 1 << 20).expect("open");
        (dir, store)
    }

    fn msg(created_at: i64, send_at: Option<i64>, direction: Direction) -> Message {
        let status = match (direction, send_at) {
            (Direction::In, _) => MessageStatus::Delivered,
            (_, Some(_)) => MessageStatus::Scheduled,
            _ => MessageStatus::Queued,
        };
        Message { session_id: S, direction, created_at, send_at, status, wa_message_id: format!("W{created_at}"), ..message() }
    }

    fn set(store: &Store, id: u128, status: MessageStatus, revoke: bool) {
        let txn = store.write().expect("write");
        let m = update(&txn, id, |m| {
            m.status = status;
            m.revoke_requested = revoke;
            Some("message.status")
        })
        .expect("update")
        .expect("found");
        if wa_id_indexed(&m) {
            index_wa_id(&txn, id, &m).expect("wa id");
        }
        store.commit(txn).expect("commit");
    }

    fn head_id(store: &Store) -> Option<u128> {
        head(&store.read().expect("read"), S).expect("head").map(|(_, id, _)| id)
    }

    fn heads_row(store: &Store) -> Option<(u64, u64, u128)> {
        store.read().expect("read").open_table(QUEUE_HEADS).expect("heads").get(S).expect("get").map(|v| v.value())
    }

    /// `check`'s findings about messages and the queue (the fixtures have
    /// no session rows, so "belongs to no session" is expected).
    fn queue_problems(store: &Store) -> Vec<String> {
        let report = crate::store::check::check(&store.read().expect("read")).expect("check");
        report.problems.into_iter().filter(|p| !p.contains("belongs to no session")).collect()
    }

    /// The in-order lane serves plain sends first in, first out, passes
    /// over one canceled out of order, keeps its low-water id on the head,
    /// and merges with the other lane (scheduled, revokes) by due time.
    #[test]
    fn the_two_lanes_serve_one_queue_in_due_order() {
        let (_dir, store) = store();
        let ids: Vec<u128> = (0..7).map(|_| u128::from(crate::new_id())).collect();
        let (a, b, inbound, c, d, scheduled, e) = (ids[0], ids[1], ids[2], ids[3], ids[4], ids[5], ids[6]);
        let txn = store.write().expect("write");
        for (id, m) in [
            (a, msg(100, None, Direction::Out)),
            (b, msg(101, None, Direction::Out)),
            (inbound, msg(102, None, Direction::In)),
            (c, msg(103, None, Direction::Out)),
            (d, msg(104, None, Direction::Out)),
            (scheduled, msg(105, Some(10_000), Direction::Out)),
            (e, msg(106, None, Direction::Out)),
        ] {
            insert(&txn, id, &m, None, "message.queued").expect("insert");
        }
        store.commit(txn).expect("commit");
        assert_eq!(heads_row(&store), Some((6, 5, a)));
        assert_eq!(head_id(&store), Some(a));
        let txn = store.write().expect("write");
        mark_head(&txn, S, b).expect("mark");
        store.commit(txn).expect("commit");
        assert_eq!(heads_row(&store), Some((6, 5, a)), "a claim read in a stale snapshot never moves the low-water id past a pending message");
        set(&store, c, MessageStatus::Canceled, false);
        assert_eq!(heads_row(&store), Some((5, 4, a)), "a cancel behind the head leaves the low-water id");
        set(&store, a, MessageStatus::Sending, false);
        assert_eq!(head_id(&store), Some(a), "sending stays at the head");
        set(&store, a, MessageStatus::Sent, false);
        let claim = |id: u128| {
            let txn = store.write().expect("write");
            mark_head(&txn, S, id).expect("mark");
            store.commit(txn).expect("commit");
        };
        let row = heads_row(&store).expect("row");
        assert_eq!((head_id(&store), row.0, row.1), (Some(b), 4, 3));
        assert!(a < row.2 && row.2 <= b, "the head's leaving moved the low-water id past it");
        claim(b);
        assert_eq!(heads_row(&store), Some((4, 3, b)), "a claim marks the head");
        set(&store, b, MessageStatus::Sent, false);
        assert_eq!(head_id(&store), Some(d), "the canceled one is passed over");
        // A claim chained to a commit that read d as the head marks it unwalked.
        let txn = store.write().expect("write");
        mark_read_head(&txn, S, d).expect("mark");
        mark_read_head(&txn, S, b).expect("an older id");
        store.commit(txn).expect("commit");
        assert_eq!(heads_row(&store), Some((3, 2, d)), "the low-water id only moves up");
        // A revoke of a sent message waits in the other lane, due when it was.
        set(&store, a, MessageStatus::Sent, true);
        assert_eq!((head_id(&store), heads_row(&store)), (Some(a), Some((4, 2, d))));
        assert_eq!(queue_problems(&store), Vec::<String>::new());
        set(&store, a, MessageStatus::Revoked, true);
        set(&store, d, MessageStatus::Sent, false);
        set(&store, e, MessageStatus::Sent, false);
        assert_eq!((head_id(&store), heads_row(&store)), (Some(scheduled), Some((1, 0, 0))), "only the scheduled one is left");
        let txn = store.write().expect("write");
        assert_eq!(fail_queue(&txn, S, "logged_out", "bye", 7).expect("fail"), 1);
        store.commit(txn).expect("commit");
        assert_eq!((head_id(&store), heads_row(&store)), (None, None));
        assert_eq!(queue_problems(&store), Vec::<String>::new());
    }

    /// The send log gives each session its sends of the last hour, oldest
    /// first, and forgets older ones from its old edge.
    #[test]
    fn the_send_log_keeps_each_sessions_last_hour() {
        let (_dir, store) = store();
        let now = 10_000_000;
        let txn = store.write().expect("write");
        note_send(&txn, S, now - 3_700_000, 1).expect("old");
        note_send(&txn, S, now - 2_000, 3).expect("send");
        note_send(&txn, 8, now - 1_500, 5).expect("send");
        note_send(&txn, S, now - 1_000, 7).expect("send");
        store.commit(txn).expect("commit");
        let sends = recent_sends(&store.read().expect("read"), now).expect("sends");
        assert_eq!(sends.get(&S), Some(&vec![now - 2_000, now - 1_000]));
        assert_eq!(sends.get(&8), Some(&vec![now - 1_500]));
        let rows = |store: &Store| store.read().expect("read").open_table(SEND_LOG).expect("log").len().expect("len");
        use redb::ReadableTableMetadata;
        assert_eq!(rows(&store), 4);
        // Id 64 is one of the 1 in 32 that prune: the old row goes.
        let txn = store.write().expect("write");
        note_send(&txn, S, now, 64).expect("send");
        store.commit(txn).expect("commit");
        assert_eq!(rows(&store), 4);
        assert_eq!(recent_sends(&store.read().expect("read"), now).expect("sends").get(&S).map(Vec::len), Some(3));
    }

    /// `check` sees a lane whose low-water id is off, and a wrong flag.
    #[test]
    fn check_finds_a_broken_lane() {
        let (_dir, store) = store();
        let (a, b) = (u128::from(crate::new_id()), u128::from(crate::new_id()));
        let txn = store.write().expect("write");
        insert(&txn, a, &msg(100, None, Direction::Out), None, "message.queued").expect("insert");
        insert(&txn, b, &msg(101, None, Direction::Out), None, "message.queued").expect("insert");
        store.commit(txn).expect("commit");
        assert_eq!(queue_problems(&store), Vec::<String>::new());
        let txn = store.write().expect("write");
        txn.open_table(QUEUE_HEADS).expect("heads").insert(S, (2, 2, b)).expect("low above the head");
        txn.open_table(SESSION_MESSAGES).expect("index").insert((S, a), 0).expect("flag");
        store.commit(txn).expect("commit");
        let problems = queue_problems(&store);
        assert!(problems.iter().any(|p| p.contains("send_queue_heads")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("lane flag")), "{problems:?}");
    }

    /// A schema-2 file opens upgraded: plain sends leave `send_queue` for the
    /// lane (flagged in the new index), scheduled ones stay, the counts
    /// become heads with the lane's low-water id, the old tables are gone.
    #[test]
    fn a_schema_2_queue_is_upgraded_at_open() {
        use crate::store::tables::{META, META_SCHEMA_VERSION, V2_QUEUE_COUNTS, V2_SESSION_MESSAGES};
        use redb::TableHandle;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("m.redb");
        let ids: Vec<u128> = (0..4).map(|_| u128::from(crate::new_id())).collect();
        let rows = [
            (ids[0], Message { status: MessageStatus::Sent, ..msg(100, None, Direction::Out) }),
            (ids[1], msg(101, None, Direction::Out)),
            (ids[2], msg(102, Some(50), Direction::Out)),
            (ids[3], msg(103, None, Direction::In)),
        ];
        {
            let store = Store::open(&path, 1 << 20).expect("open");
            let txn = store.write().expect("write");
            txn.open_table(META).expect("meta").insert(META_SCHEMA_VERSION, 2u32.to_be_bytes().as_slice()).expect("v2");
            let mut messages = txn.open_table(MESSAGES).expect("messages");
            let mut index = txn.open_table(V2_SESSION_MESSAGES).expect("old index");
            let mut queue = txn.open_table(SEND_QUEUE).expect("queue");
            for (id, m) in &rows {
                messages.insert(*id, m.encode().as_slice()).expect("ins");
                index.insert((S, *id), ()).expect("ins");
                if queued(m) {
                    queue.insert((S, due(m), *id), ()).expect("ins");
                }
                if wa_id_indexed(m) {
                    txn.open_table(WA_IDS).expect("wa").insert((S, m.wa_message_id.as_str()), *id).expect("ins");
                }
            }
            txn.open_table(V2_QUEUE_COUNTS).expect("old counts").insert(S, 2).expect("ins");
            let mut times = txn.open_table(crate::store::tables::V2_SEND_TIMES).expect("old send times");
            times.insert((S, crate::store::now_ms() - 1_000, ids[0]), ()).expect("ins");
            drop(times);
            drop((messages, index, queue));
            store.commit(txn).expect("commit");
        }
        let store = Store::open(&path, 1 << 20).expect("reopen");
        assert_eq!(store.meta().schema_version, crate::store::SCHEMA_VERSION);
        let txn = store.read().expect("read");
        let names: Vec<String> = txn.list_tables().expect("tables").map(|t| t.name().to_string()).collect();
        assert!(!names.iter().any(|n| n == V2_SESSION_MESSAGES.name() || n == V2_QUEUE_COUNTS.name() || n == "send_times"), "{names:?}");
        let sends = recent_sends(&txn, crate::store::now_ms()).expect("sends");
        assert_eq!(sends.get(&S).map(Vec::len), Some(1), "the send time moved to the send log");
        let flags: Vec<u8> = txn.open_table(SESSION_MESSAGES).expect("index").iter().expect("iter").map(|r| r.expect("row").1.value()).collect();
        assert_eq!(flags, vec![1, 1, 0, 0]);
        let side: Vec<u128> = txn.open_table(SEND_QUEUE).expect("queue").iter().expect("iter").map(|r| r.expect("row").0.value().2).collect();
        assert_eq!(side, vec![ids[2]]);
        drop(txn);
        assert_eq!(heads_row(&store), Some((2, 1, ids[1])));
        assert_eq!(head_id(&store), Some(ids[2]), "the scheduled one is due first (50 < 101)");
        assert_eq!(queue_problems(&store), Vec::<String>::new());
    }
}
