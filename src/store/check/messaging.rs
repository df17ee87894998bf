//! `check` of the messaging tables: every message decodes and is indexed
//! (per session with its lane flag, by WhatsApp id); it is queued exactly
//! while it is pending (or a revoke of it waits): in the in-order lane or
//! else in `send_queue` under its due time; and `send_queue_heads` agrees
//! (each session's count, lane count and the lane's low-water id);
//! every event decodes and is indexed per organization; and each session's
//! latest `session.status` event names the status the session has — a
//! status change and its event are committed together, so a crash at any
//! moment never leaves one without the other.

use std::collections::HashMap;

use redb::{ReadTransaction, TableHandle};
use ulid::Ulid;


use super::{each, open_optional as open, open as open_required, CheckReport};

use crate::store::message_records::{Event, EventData, Message};
use crate::store::messages::{due, in_lane, in_order, queued};
use crate::store::records::{Record, Session};
use crate::store::tables::{EVENTS, MESSAGES, ORG_EVENTS, QUEUE_HEADS, SEND_QUEUE, SESSIONS, SESSION_MESSAGES, WA_IDS};

/// Checks the messaging tables into `r`.
pub(super) fn check_messaging(txn: &ReadTransaction, r: &mut CheckReport) {
    let (Some(messages), Some(index), Some(wa), Some(queue), Some(counts), Some(sessions)) = (
        open(txn, MESSAGES, r),
        open(txn, SESSION_MESSAGES, r),
        open(txn, WA_IDS, r),
        open(txn, SEND_QUEUE, r),
        open(txn, QUEUE_HEADS, r),
        open_required(txn, SESSIONS, r),
    ) else {
        return;
    };
    // Per session: (queued in all, in the lane, the lane's first id).
    let mut queued_per_session: HashMap<u128, (u64, u64, u128)> = HashMap::new();
    let mut side_per_session: HashMap<u128, u64> = HashMap::new();
    each(&messages, MESSAGES.name(), r, |r, id, v| {
        r.messages += 1;
        let m = match Message::decode(v) {
            Ok(m) => m,
            Err(e) => return r.problem(format!("message {}: {e}", Ulid::from(id))),
        };
        let name = Ulid::from(id);
        if r.read(SESSIONS.name(), sessions.get(m.session_id)).is_some_and(|g| g.is_none()) {
            r.problem(format!("message {name} belongs to no session"));
        }
        match r.read(SESSION_MESSAGES.name(), index.get((m.session_id, id))) {
            Some(None) => r.problem(format!("message {name} missing from session_message_index")),
            Some(Some(flag)) if flag.value() != u8::from(in_order(&m)) => {
                r.problem(format!("message {name} has the wrong lane flag in session_message_index"))
            }
            _ => {}
        }
        let by_wa = r.read(WA_IDS.name(), wa.get((m.session_id, m.wa_message_id.as_str()))).map(|g| g.map(|v| v.value()));
        match by_wa {
            Some(None) if crate::store::messages::wa_id_indexed(&m) => {
                r.problem(format!("message {name} missing from wa_message_ids"))
            }
            Some(Some(other)) if other != id => r.problem(format!(
                "wa_message_ids names message {} for the WhatsApp id of message {name}",
                Ulid::from(other)
            )),
            _ => {}
        }
        let side = queued(&m) && !in_lane(&m);
        let in_queue = r.read(SEND_QUEUE.name(), queue.get((m.session_id, due(&m), id))).is_some_and(|g| g.is_some());
        if in_queue != side {
            r.problem(format!("message {name} is {} but {} send_queue", m.status.as_str(), if in_queue { "in" } else { "not in" }));
        }
        if queued(&m) {
            let q = queued_per_session.entry(m.session_id).or_insert((0, 0, 0));
            q.0 += 1;
            if in_lane(&m) {
                q.2 = if q.1 == 0 { id } else { q.2.min(id) };
                q.1 += 1;
            }
        }
        if side {
            *side_per_session.entry(m.session_id).or_default() += 1;
        }
    });
    let mut queue_rows: HashMap<u128, u64> = HashMap::new();
    each(&queue, SEND_QUEUE.name(), r, |_, (session, _, _), ()| *queue_rows.entry(session).or_default() += 1);
    if queue_rows != side_per_session {
        r.problem("send_queue holds entries with no scheduled message or revoke waiting".into());
    }
    // The low-water id may trail the lane's head (by what left the lane
    // since the head was last claimed), never pass it.
    let mut stored: HashMap<u128, (u64, u64, u128)> = HashMap::new();
    each(&counts, QUEUE_HEADS.name(), r, |_, s, h| {
        stored.insert(s, h);
    });
    let agree = stored.len() == queued_per_session.len()
        && stored.iter().all(|(s, &(total, lane, low))| {
            queued_per_session.get(s).is_some_and(|&(t, l, first)| t == total && l == lane && (lane == 0 || low <= first))
        });
    if !agree {
        r.problem("send_queue_heads disagree with the queued messages (count, lane count, or a low-water id above the lane's head)".into());
    }
    let mut indexed = 0u64;
    each(&index, SESSION_MESSAGES.name(), r, |_, _, _| indexed += 1);
    if indexed != r.messages {
        r.problem(format!("session_message_index has {indexed} entries for {} messages", r.messages));
    }

    let (Some(events), Some(org_events)) = (open(txn, EVENTS, r), open(txn, ORG_EVENTS, r)) else { return };
    let mut last_status: HashMap<u128, Session> = HashMap::new();
    each(&events, EVENTS.name(), r, |r, id, v| {
        r.events += 1;
        let e = match Event::decode(v) {
            Ok(e) => e,
            Err(err) => return r.problem(format!("event evt_{}: {err}", Ulid::from(id))),
        };
        if r.read(ORG_EVENTS.name(), org_events.get((e.organization_id.as_str(), id))).is_some_and(|g| g.is_none()) {
            r.problem(format!("event evt_{} missing from org_events", Ulid::from(id)));
        }
        if let EventData::Session(sid, s) = e.data {
            last_status.insert(sid, *s);
        }
    });
    let mut n = 0u64;
    each(&org_events, ORG_EVENTS.name(), r, |_, _, ()| n += 1);
    if n != r.events {
        r.problem(format!("org_events has {n} entries for {} events", r.events));
    }
    for (sid, from_event) in last_status {
        let now = r.read(SESSIONS.name(), sessions.get(sid)).flatten().and_then(|v| Session::decode(v.value()).ok());
        if let Some(s) = now {
            if s.status != from_event.status {
                r.problem(format!(
                    "session {} is {} but its last session.status event says {}",
                    Ulid::from(sid),
                    s.status.as_str(),
                    from_event.status.as_str()
                ));
            }
        }
    }
}
