//! The engine's message events, stored in order: inbound messages,
//! reactions, edits and revokes (each with its event), receipts moving
//! outbound statuses forward, refusals that fail a message and pause the
//! queue, and LID↔phone mappings. Events that arrive together are committed
//! in one transaction. With `autoRead`, what arrived is marked read right
//! after it is stored. While writes are refused (a full disk), events are
//! held in order and stored when writes work (see [`run`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Weak};

use redb::WriteTransaction;
use tokio::sync::mpsc;
use ulid::Ulid;

use super::Messaging;
use crate::engine::{EngineEvent, Inbound, InboundBody, ReceiptStatus};
use crate::store::message_records::{
    Contact, Direction, Location, MediaInfo, Message, MessageError, MessageStatus, MessageType, Reaction,
};
use crate::store::records::Session;
use crate::store::{messages, now_ms, sessions, StoreResult};

/// Messages to mark read once committed: (session, chat, sender) → ids.
type ToRead = BTreeMap<(Ulid, String, Option<String>), Vec<String>>;

/// Events held while writes are refused, past which the sessions that
/// deliver more are disconnected (see [`run`]).
pub const HELD_MAX: usize = 10_000;

/// How often held events are retried while writes are refused, besides
/// each time the store says writes are back.
const RETRY_HELD: std::time::Duration = std::time::Duration::from_secs(1);

/// Receives the manager's message events until the manager is gone, and
/// commits them in order, in batches.
///
/// While writes are refused (disk below `--min-free-disk`, or the file
/// reopening after an I/O error), a batch that could not be committed is
/// *held* in memory, in order, with everything that arrives after it, and
/// retried when the store says writes are back (and every second): nothing
/// received is dropped, and per-session order holds. The buffer is bounded
/// by [`HELD_MAX`] events: past it, each session that delivers another
/// event is disconnected (and started again once writes work), so that
/// WhatsApp keeps and redelivers the rest instead of this process holding
/// more; what was already received stays held. Whoever waits for an event
/// ([`Messaging::expect`], e.g. `sim/incoming`) is answered once it is
/// committed or held.
pub async fn run(me: Weak<Messaging>, mut rx: mpsc::UnboundedReceiver<(Ulid, EngineEvent)>) {
    let mut back = match me.upgrade() {
        Some(m) => m.store.subscribe_writes_back(),
        None => return,
    };
    let mut held: VecDeque<(Ulid, EngineEvent)> = VecDeque::new();
    // The last held batch was committed: take the next one at once.
    let mut draining = false;
    loop {
        let batch = if held.is_empty() {
            let Some(first) = rx.recv().await else { return };
            crate::drain(first, &mut rx, 512)
        } else if draining {
            // What arrived meanwhile goes behind what is held.
            if let Ok(first) = rx.try_recv() {
                let Some(m) = me.upgrade() else { return };
                let more = crate::drain(first, &mut rx, 512);
                hold(&m, &mut held, more).await;
            }
            let n = held.len().min(512);
            held.drain(..n).collect()
        } else {
            tokio::select! {
                got = rx.recv() => {
                    let Some(first) = got else { return };
                    let Some(m) = me.upgrade() else { return };
                    let more = crate::drain(first, &mut rx, 512);
                    hold(&m, &mut held, more).await;
                    continue;
                }
                _ = back.changed() => {}
                _ = tokio::time::sleep(RETRY_HELD) => {}
            }
            let Some(m) = me.upgrade() else { return };
            if !m.store.writable() {
                continue;
            }
            let n = held.len().min(512);
            held.drain(..n).collect()
        };
        let Some(m) = me.upgrade() else { return };
        let keep = batch.clone();
        let wakes: Vec<Ulid> = batch
            .iter()
            .filter(|(_, e)| matches!(e, EngineEvent::SendRefused { .. } | EngineEvent::TemporaryBan { .. }))
            .map(|(s, _)| *s)
            .collect();
        let pause = m.config.send_pause.as_millis() as i64;
        let arrived = batch.iter().filter(|(_, e)| matches!(e, EngineEvent::Message(_))).count();
        match m.committer.run(move |txn| apply(txn, batch, pause)).await {
            Ok(to_read) => {
                draining = !held.is_empty();
                m.counters.received.inc_by(arrived as u64);
                m.acks.fire(&keep, true);
                mark_read(&m, to_read)
            }
            Err(e) if e.is_refusal() => {
                draining = false;
                if held.is_empty() {
                    tracing::warn!(error = %e, events = keep.len(), "writes are refused: holding message events until they work");
                }
                // Back in front, in order, ahead of anything newer.
                for ev in keep.iter().rev() {
                    held.push_front(ev.clone());
                }
                m.acks.fire(&keep, false);
            }
            Err(e) => {
                draining = !held.is_empty();
                m.acks.drop_all(&keep);
                tracing::warn!(error = %e, "could not store message events")
            }
        }
        wakes.into_iter().for_each(|s| m.wake(s));
    }
}

/// Holds `more` behind what is held already; past [`HELD_MAX`], pauses
/// each session that delivered one (its connection is closed and started
/// again once writes work, so WhatsApp redelivers the rest).
async fn hold(m: &Arc<Messaging>, held: &mut VecDeque<(Ulid, EngineEvent)>, more: Vec<(Ulid, EngineEvent)>) {
    let over = held.len() + more.len() > HELD_MAX;
    let sessions: std::collections::BTreeSet<Ulid> = more.iter().map(|(s, _)| *s).collect();
    m.acks.fire(&more, false);
    held.extend(more);
    if over {
        for s in sessions {
            tracing::warn!(session = %s, held = held.len(), "too many message events held while writes are refused: disconnecting the session until they work");
            m.manager.pause_for_writes(s).await;
        }
    }
}

/// Marks what arrived as read, per chat, without holding up the next batch.
fn mark_read(m: &Arc<Messaging>, to_read: ToRead) {
    for ((session, chat, sender), ids) in to_read {
        if let Some(conn) = m.manager.connection(session) {
            tokio::spawn(async move {
                if let Err(e) = conn.mark_read(&chat, sender.as_deref(), &ids).await {
                    tracing::debug!(session = %session, error = %e, "autoRead: could not mark read");
                }
            });
        }
    }
}

/// Applies a batch in order, in one transaction; returns what to mark read.
fn apply(txn: &WriteTransaction, batch: Vec<(Ulid, EngineEvent)>, pause: i64) -> StoreResult<ToRead> {
    let mut to_read = ToRead::new();
    for (sid, event) in batch {
        let Some(s) = sessions::get_in(txn, u128::from(sid))? else { continue };
        let key = u128::from(sid);
        let now = now_ms();
        match event {
            EngineEvent::Message(msg) => {
                if !msg.from_me {
                    let (sender, alt, push) = (msg.sender.clone(), msg.sender_alt.clone(), msg.push_name.clone());
                    crate::directory::contacts::learn_from_message(txn, key, &s, &sender, alt.as_deref(), push.as_deref(), now)?;
                }
                if let Some(read) = message(txn, key, &s, *msg, now)? {
                    if s.auto_read {
                        to_read.entry((sid, read.0, read.1)).or_default().push(read.2);
                    }
                }
            }
            EngineEvent::Receipt { wa_ids, status, at, .. } => {
                let to = match status {
                    ReceiptStatus::Delivered => MessageStatus::Delivered,
                    ReceiptStatus::Read => MessageStatus::Read,
                };
                for wa in wa_ids {
                    let Some(id) = messages::by_wa_id(txn, key, &wa)? else { continue };
                    messages::update(txn, id, |x| {
                        let forward = x.direction == Direction::Out
                            && matches!(x.status, MessageStatus::Sent | MessageStatus::Delivered | MessageStatus::Sending)
                            && to.rank() > x.status.rank();
                        if !forward {
                            return None;
                        }
                        x.status = to;
                        x.delivered_at = x.delivered_at.or(Some(at));
                        if to == MessageStatus::Read {
                            x.read_at = Some(at);
                        }
                        x.updated_at = now;
                        Some("message.status")
                    })?;
                }
            }
            EngineEvent::SendRefused { wa_id, code, message, retry_after_ms } => {
                if let Some(id) = messages::by_wa_id(txn, key, &wa_id)? {
                    let error = MessageError { code: code.clone(), message };
                    messages::update(txn, id, |x| {
                        (x.direction == Direction::Out && x.status != MessageStatus::Failed).then(|| {
                            x.status = MessageStatus::Failed;
                            x.error = Some(error);
                            x.updated_at = now;
                            "message.status"
                        })
                    })?;
                }
                if account_trouble(&code) {
                    super::worker::pause_in(txn, key, now + retry_after_ms.unwrap_or(pause), &code, now)?;
                }
            }
            EngineEvent::TemporaryBan { code, retry_after_ms } => {
                super::worker::pause_in(txn, key, now + retry_after_ms.unwrap_or(pause), &code, now)?;
            }
            EngineEvent::LidMapping { lid, pn } => {
                messages::map_lid(txn, key, &lid, &pn)?;
                crate::directory::contacts::link(txn, key, &lid, &pn, now)?;
            }
            e @ (EngineEvent::Contact(_) | EngineEvent::Presence(_) | EngineEvent::Group(_)) => {
                crate::directory::apply(txn, key, &s, e, now)?
            }
            _ => {}
        }
    }
    Ok(to_read)
}

/// Whether a refusal code means trouble with the account (pause the queue).
pub fn account_trouble(code: &str) -> bool {
    matches!(code, "463" | "429" | "479" | "rate-overlimit" | "temporary_ban")
}

/// Splits a JID into (phone JID, `@lid`) given its other form.
fn forms(jid: &str, alt: Option<&str>) -> (Option<String>, Option<String>) {
    let (mut pn, mut lid) = (None, None);
    for j in [Some(jid), alt].into_iter().flatten() {
        if j.ends_with("@lid") {
            lid.get_or_insert_with(|| j.to_string());
        } else if j.ends_with("@s.whatsapp.net") {
            pn.get_or_insert_with(|| j.to_string());
        }
    }
    (pn, lid)
}

/// Stores one inbound message (or applies its reaction, edit or revoke).
/// Returns (chat, sender, waId) to mark read, for a new message from others.
fn message(
    txn: &WriteTransaction,
    key: u128,
    s: &Session,
    msg: Inbound,
    now: i64,
) -> StoreResult<Option<(String, Option<String>, String)>> {
    if messages::by_wa_id(txn, key, &msg.wa_id)?.is_some() {
        return Ok(None); // a repeat: already stored
    }
    for (a, b) in [(&msg.chat, &msg.chat_alt), (&msg.sender, &msg.sender_alt)] {
        if let Some(b) = b {
            let (pn, lid) = forms(a, Some(b));
            if let (Some(pn), Some(lid)) = (pn, lid) {
                messages::map_lid(txn, key, &lid, &pn)?;
            }
        }
    }
    let alt = |jid: &str, given: &Option<String>| -> StoreResult<Option<String>> {
        match given {
            Some(g) => Ok(Some(g.clone())),
            None => messages::other_form(txn, key, jid),
        }
    };
    let chat_alt = alt(&msg.chat, &msg.chat_alt)?;
    let sender_alt = alt(&msg.sender, &msg.sender_alt)?;
    let (chat_jid, chat_lid) = if msg.chat.ends_with("@g.us") { (None, None) } else { forms(&msg.chat, chat_alt.as_deref()) };
    let (sender_jid, sender_lid) = forms(&msg.sender, sender_alt.as_deref());
    let target_of = |wa: &str| messages::by_wa_id(txn, key, wa);
    let id = u128::from(crate::new_id());
    let mut m = Message {
        session_id: key,
        organization_id: s.organization_id.clone(),
        direction: if msg.from_me { Direction::Out } else { Direction::In },
        chat_id: msg.chat.clone(),
        chat_jid,
        chat_lid,
        sender_jid,
        sender_lid,
        kind: MessageType::Text,
        text: None,
        media: None,
        location: None,
        contact: None,
        reaction: None,
        reply_to: msg.reply_to.as_deref().map(target_of).transpose()?.flatten().map(|r| Ulid::from(r).to_string()),
        reply_to_wa: msg.reply_to.clone(),
        mentions: msg.mentions.clone(),
        status: if msg.from_me { MessageStatus::Sent } else { MessageStatus::Received },
        error: None,
        wa_message_id: msg.wa_id.clone(),
        send_at: None,
        created_at: now,
        updated_at: now,
        sent_at: Some(msg.timestamp),
        delivered_at: None,
        read_at: None,
        edited_at: None,
        revoke_requested: false,
    };
    // One this account sent from another device is an outbound status.
    let mut kind = if msg.from_me { "message.status" } else { "message.received" };
    match msg.body {
        InboundBody::Text { text } => m.text = Some(text),
        InboundBody::Media { kind: k, mimetype, file_name, size, caption, media_ref } => {
            m.kind = MessageType::parse(k.as_str()).unwrap_or(MessageType::Unsupported);
            m.text = caption;
            m.media = Some(MediaInfo {
                mimetype: mimetype.unwrap_or_else(|| "application/octet-stream".into()),
                file_name,
                size_bytes: size.unwrap_or(0),
                media_ref: Some(media_ref),
            });
        }
        InboundBody::Location { latitude, longitude, name, address } => {
            m.kind = MessageType::Location;
            m.location = Some(Location { latitude, longitude, name, address });
        }
        InboundBody::Contact { name, phone } => {
            m.kind = MessageType::Contact;
            m.contact = Some(Contact { name, phone_number: phone });
        }
        InboundBody::Reaction { target, emoji } => {
            m.kind = MessageType::Reaction;
            let ours = target_of(&target)?.map(|r| Ulid::from(r).to_string());
            m.reaction = Some(Reaction { message_id: ours, target_wa_id: target, emoji });
            kind = "message.reaction";
        }
        InboundBody::Edit { target, text } => {
            if let Some(t) = target_of(&target)? {
                messages::update(txn, t, |x| {
                    x.text = Some(text);
                    x.edited_at = Some(now);
                    x.updated_at = now;
                    Some("message.edited")
                })?;
            }
            return Ok(None);
        }
        InboundBody::Revoke { target } => {
            if let Some(t) = target_of(&target)? {
                messages::update(txn, t, |x| {
                    (x.status != MessageStatus::Revoked).then(|| {
                        x.status = MessageStatus::Revoked;
                        x.text = None;
                        x.updated_at = now;
                        "message.revoked"
                    })
                })?;
            }
            return Ok(None);
        }
        InboundBody::Unsupported => m.kind = MessageType::Unsupported,
    }
    messages::insert(txn, id, &m, None, kind)?;
    let sender = msg.chat.ends_with("@g.us").then(|| msg.sender.clone());
    Ok((!msg.from_me).then_some((msg.chat, sender, msg.wa_id)))
}
