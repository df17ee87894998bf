//! One session's send loop. Each round reads the queue head and decides:
//! expire it, promote it from `scheduled`, wait (for its time, the pace, a
//! pause, or the connection), or send it — typing first when the session
//! shows presence. Every decision is re-read from the data file, so a
//! `PATCH` of the rates, a cancel or a logout applies to the very next round.
//!
//! A message is marked `sending` (durably, with its send time for pacing)
//! before the engine is called; a crash after that sends it again on restart
//! with the same WhatsApp id, which receivers drop as a repeat. When a send
//! succeeds and the next message is plainly due (no typing, no pause, the
//! pace allows it), the commit that marks it `sent` also claims the next
//! one ([`Chain`]): the same statuses and events, one commit a message.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use ulid::Ulid;

use super::pacing::{self, Rates};
use super::Messaging;
use crate::engine::{ChatPresence, MessageKey, OutContent, OutMessage, SendError};
use crate::store::message_records::{Message, MessageError, MessageStatus, MessageType};
use crate::store::records::{Session, SessionStatus};
use crate::store::tables::{MEDIA, MEDIA_REFS, MESSAGES};
use crate::store::{events, messages, now_ms, sessions, StoreError, StoreResult};
use redb::ReadableTable;

/// What a round decided.
enum Next {
    /// Go round again now.
    Again,
    /// Nothing to do until woken (or a while has passed).
    Idle,
    /// Wait until this Unix ms (or until woken).
    Until(i64),
    /// The session has no WhatsApp link: wait for it (it wakes the worker)
    /// or until this Unix ms (the head's expiry), if any.
    Offline(Option<i64>),
    /// The session is gone: the worker ends.
    Gone,
}

/// What one round reads, in one snapshot.
struct Head {
    session: Session,
    paused_until: Option<i64>,
    head: Option<(i64, u128, Message)>,
    /// The head's quoted (or reacted-to) message, and its media bytes.
    extra: Extra,
}

/// A message's quoted (or reacted-to) message, and its media bytes.
type Extra = (Option<Message>, Option<Vec<u8>>);

/// A message marked `sending` (committed), ready for the engine at `at`
/// (Unix ms; a chained claim may be a pace's few ms ahead of the wire).
struct Claimed {
    id: u128,
    msg: Message,
    extra: Extra,
    at: i64,
}

/// How far ahead of the pace a chained claim may be: the worker waits out
/// the rest before the send (at the highest rates the gap is 1 ms).
const CHAIN_AHEAD_MS: i64 = 20;

/// What a successful send lets its `sent` commit do as well: claim the
/// session's next message in the same transaction, if that message is due,
/// the pace allows a send at `allowed`, and the session still has these
/// `rates` and no typing (see [`chain_in`]). A busy queue then costs one
/// commit per message instead of two, and touches each of its pages once.
#[derive(Clone, Copy)]
struct Chain {
    rates: Rates,
    allowed: i64,
    ttl: i64,
}

/// How a send ended for the worker: go round, or send the next message
/// its commit claimed.
enum Step {
    Next(Next),
    Send(Box<Claimed>),
}

/// Runs session `id`'s worker until the session is gone or the gateway stops.
pub async fn run(m: Arc<Messaging>, id: Ulid, handle: Arc<super::WorkerHandle>) {
    let key = u128::from(id);
    let mut history = VecDeque::from(m.take_history(key));
    loop {
        if m.closing() {
            return;
        }
        let woken = handle.notify.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let next = match round(&m, key, &mut history).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(session = %id, error = %e, "send queue: round failed; retrying");
                Next::Until(now_ms() + 1_000)
            }
        };
        handle.offline.store(matches!(next, Next::Offline(_)), std::sync::atomic::Ordering::SeqCst);
        let wait = match next {
            Next::Again => continue,
            Next::Gone => {
                m.worker_done(id);
                return;
            }
            Next::Idle | Next::Offline(None) => Duration::from_secs(5),
            Next::Until(t) | Next::Offline(Some(t)) => Duration::from_millis((t - now_ms()).clamp(0, 5_000) as u64),
        };
        tokio::select! {
            _ = &mut woken => {}
            _ = tokio::time::sleep(wait) => {}
            _ = m.stop.notified() => return,
        }
    }
}

/// Reads the session, its pause and its queue head.
async fn read_head(m: &Messaging, key: u128) -> StoreResult<Option<Head>> {
    let store = m.store.clone();
    tokio::task::spawn_blocking(move || {
        let txn = store.read()?;
        let Some(session) = sessions::get(&txn, key.into())? else { return Ok(None) };
        let paused_until = messages::pause(&txn, key)?;
        let head = messages::head(&txn, key)?;
        let extra = match &head {
            Some((_, id, msg)) if needs_extra(msg) => extra_of(&txn.open_table(MESSAGES)?, (&txn.open_table(MEDIA_REFS)?, &txn.open_table(MEDIA)?), *id, msg)?,
            Some(_) => (None, None),
            None => (None, None),
        };
        Ok(Some(Head { session, paused_until, head, extra }))
    })
    .await
    .map_err(|e| StoreError::Corrupt(format!("store task: {e}")))?
}

/// Whether a message quotes (or reacts to) one, or carries media: whether
/// [`extra_of`] has anything to read (a plain text opens no table).
fn needs_extra(msg: &Message) -> bool {
    msg.reaction.is_some() || msg.reply_to.is_some() || msg.kind.is_media()
}

/// What the engine needs besides the message itself: the message it quotes
/// (or reacts to), and its media bytes. From either kind of transaction.
fn extra_of(
    messages_t: &impl ReadableTable<u128, &'static [u8]>,
    (refs_t, media_t): (&impl ReadableTable<u128, u128>, &impl ReadableTable<u128, &'static [u8]>),
    id: u128,
    msg: &Message,
) -> StoreResult<Extra> {
    let target = match &msg.reaction {
        Some(r) => r.message_id.as_deref(),
        None => msg.reply_to.as_deref(),
    };
    let quoted = match target.and_then(|r| Ulid::from_string(r).ok()) {
        Some(r) => messages::get(messages_t, u128::from(r))?,
        None => None,
    };
    let media = if msg.kind.is_media() { crate::store::media::read_in(refs_t, media_t, id)? } else { None };
    Ok((quoted, media))
}

/// Moves message `id` with `change` (which returns the event type, or
/// `None` to leave it alone), in the next group commit.
async fn update(
    m: &Messaging,
    id: u128,
    change: impl FnOnce(&mut Message) -> Option<&'static str> + Send + 'static,
) -> StoreResult<Option<Message>> {
    m.committer.run(move |txn| messages::update(txn, id, change)).await
}

async fn round(m: &Arc<Messaging>, key: u128, history: &mut VecDeque<i64>) -> StoreResult<Next> {
    let Some(Head { session, paused_until, head, extra }) = read_head(m, key).await? else { return Ok(Next::Gone) };
    let Some((due, id, msg)) = head else { return Ok(Next::Idle) };
    let now = now_ms();
    let ttl = m.config.message_ttl.as_millis() as i64;
    if msg.status.is_pending() && now >= due.saturating_add(ttl) {
        update(m, id, move |x| {
            x.status.is_pending().then(|| {
                x.status = MessageStatus::Expired;
                x.updated_at = now_ms();
                "message.status"
            })
        })
        .await?;
        return Ok(Next::Again);
    }
    let expires = if msg.status.is_pending() { due.saturating_add(ttl) } else { i64::MAX };
    if due > now {
        return Ok(Next::Until(due.min(expires)));
    }
    if msg.status == MessageStatus::Scheduled {
        update(m, id, |x| {
            (x.status == MessageStatus::Scheduled).then(|| {
                x.status = MessageStatus::Queued;
                x.updated_at = now_ms();
                "message.status"
            })
        })
        .await?;
        return Ok(Next::Again);
    }
    if let Some(until) = paused_until.filter(|u| *u > now) {
        return Ok(Next::Until(until.min(expires)));
    }
    let conn = match (session.status, m.manager.connection(Ulid::from(key))) {
        (SessionStatus::Working, Some(c)) => c,
        _ => return Ok(Next::Offline((expires != i64::MAX).then_some(expires))),
    };
    let rates = Rates { per_min: session.rate_per_min, per_hour: session.rate_per_hour };
    let allowed = pacing::next_allowed(history, now, rates);
    let typing = session.presence_typing && msg.status != MessageStatus::Sending && !msg.revoke_requested;
    let typing_ms = if typing { pacing::typing_ms(chars(&msg), jitter(id)) } else { 0 };
    let send_at = allowed.max(now + typing_ms);
    if send_at - typing_ms > now + 2 {
        return Ok(Next::Until((send_at - typing_ms).min(expires)));
    }
    if typing {
        let presence = if msg.kind == MessageType::Audio { ChatPresence::Recording } else { ChatPresence::Composing };
        let _ = conn.presence(&msg.chat_id, presence).await;
        tokio::time::sleep(Duration::from_millis((send_at - now_ms()).max(0) as u64)).await;
        let _ = conn.presence(&msg.chat_id, ChatPresence::Paused).await;
    }
    // Sending: durable (with its time, for pacing) before the engine is called.
    let at = now_ms();
    let claimed = m.committer.run(move |txn| claim_in(txn, key, id, at)).await?;
    let Some(msg) = claimed else { return Ok(Next::Again) };
    deliver(m, key, &*conn, Claimed { id, msg, extra, at }, history, Chain { rates, allowed: 0, ttl }).await
}

/// Marks message `id` `sending` at `at` (noting the send time for pacing),
/// in the caller's transaction. `None` if it is no longer queued; a message
/// already `sending` (a crash came between claim and `sent`) is returned as
/// it is, to go again with its WhatsApp id.
fn claim_in(txn: &redb::WriteTransaction, key: u128, id: u128, at: i64) -> StoreResult<Option<Message>> {
    let current = messages::get(&txn.open_table(MESSAGES)?, id)?;
    match current {
        Some(current) => claim_read(txn, key, id, at, current, messages::mark_head),
        None => Ok(None),
    }
}

/// How a claim moves the in-order lane's low-water id to the message it
/// claims: [`messages::mark_head`] (verifying it is the lane's first) or,
/// for a message read as the head in the claim's own transaction,
/// [`messages::mark_read_head`].
type MarkHead = fn(&redb::WriteTransaction, u128, u128) -> StoreResult<()>;

/// [`claim_in`] of message `id` as `current`, read in this transaction.
fn claim_read(
    txn: &redb::WriteTransaction,
    key: u128,
    id: u128,
    at: i64,
    current: Message,
    mark: MarkHead,
) -> StoreResult<Option<Message>> {
    if !messages::queued(&current) {
        return Ok(None);
    }
    messages::note_send(txn, key, at, id)?;
    if messages::in_lane(&current) {
        mark(txn, key, id)?;
    }
    if current.status == MessageStatus::Queued {
        messages::index_wa_id_once(txn, id, &current)?;
        return messages::rewrite(txn, id, current, |x| {
            x.status = MessageStatus::Sending;
            x.updated_at = at;
            Some("message.status")
        });
    }
    Ok(Some(current))
}

/// The claim [`Chain`] allows, in the `sent` commit of the message before:
/// the session's head if it is a plain queued message that is due, within
/// its TTL, not paused, and the session is working, without typing, at the
/// same rates. Anything else is left to the next round's full decision.
fn chain_in(txn: &redb::WriteTransaction, key: u128, chain: Chain, now: i64) -> StoreResult<Option<Claimed>> {
    let Some(s) = sessions::get_in(txn, key)? else { return Ok(None) };
    let rates = Rates { per_min: s.rate_per_min, per_hour: s.rate_per_hour };
    if s.status != SessionStatus::Working || s.presence_typing || rates != chain.rates || chain.allowed > now + CHAIN_AHEAD_MS {
        return Ok(None);
    }
    if messages::paused_until_in(txn, key)?.is_some_and(|u| u > now) {
        return Ok(None);
    }
    let (id, msg) = match messages::head_in(txn, key)? {
        Some((due, id, msg)) if due <= now && now < due.saturating_add(chain.ttl) => (id, msg),
        _ => return Ok(None),
    };
    if msg.status != MessageStatus::Queued || msg.revoke_requested {
        return Ok(None);
    }
    let extra = match needs_extra(&msg) {
        true => extra_of(&txn.open_table(MESSAGES)?, (&txn.open_table(MEDIA_REFS)?, &txn.open_table(MEDIA)?), id, &msg)?,
        false => (None, None),
    };
    let at = now.max(chain.allowed);
    Ok(claim_read(txn, key, id, at, msg, messages::mark_read_head)?.map(|msg| Claimed { id, msg, extra, at }))
}

/// Sends a claimed message and records how it went; while each `sent`
/// commit claims the next message ([`Chain`]), sends that one too.
async fn deliver(
    m: &Arc<Messaging>,
    key: u128,
    conn: &dyn crate::engine::Connection,
    mut next: Claimed,
    history: &mut VecDeque<i64>,
    mut chain: Chain,
) -> StoreResult<Next> {
    loop {
        let Claimed { id, msg, extra, at } = next;
        let early = at - now_ms();
        if early > 0 {
            tokio::time::sleep(Duration::from_millis(early as u64)).await;
        }
        if msg.revoke_requested {
            pacing::record(history, now_ms());
            return revoke(m, conn, id, &msg).await;
        }
        let result = conn.send(outgoing(&msg, extra)).await;
        // Paced by when the send ended, not when it began: the message was on
        // the wire by then, so the next one, due a minimum gap later, never
        // follows it closer than the gap (a send that began in one
        // millisecond and reached the wire in the next did, by one ms).
        let ended = now_ms();
        pacing::record(history, ended);
        chain.allowed = pacing::next_allowed(history, ended, chain.rates);
        let chain = (!m.closing()).then_some(chain);
        match finish(m, key, id, result, chain).await? {
            Step::Next(n) => return Ok(n),
            Step::Send(claimed) => next = *claimed,
        }
    }
}

/// Sends a revoke of a sent message, then marks it `revoked`.
async fn revoke(m: &Messaging, conn: &dyn crate::engine::Connection, id: u128, msg: &Message) -> StoreResult<Next> {
    match conn.revoke(&msg.chat_id, &msg.wa_message_id).await {
        Err(SendError::Unavailable(_)) => Ok(Next::Until(now_ms() + 1_000)),
        result => {
            let ok = result.is_ok();
            update(m, id, move |x| {
                if ok {
                    x.status = MessageStatus::Revoked;
                } else {
                    x.revoke_requested = false;
                }
                x.updated_at = now_ms();
                Some(if ok { "message.revoked" } else { "message.status" })
            })
            .await?;
            Ok(Next::Again)
        }
    }
}

/// Records how a send ended: `sent`, or `failed` (pausing the queue on
/// account trouble), or still `sending` when the connection was not there.
async fn finish(m: &Messaging, key: u128, id: u128, result: Result<(), SendError>, chain: Option<Chain>) -> StoreResult<Step> {
    let pause = m.config.send_pause.as_millis() as i64;
    let outcome = match result {
        Ok(()) => Ok(()),
        Err(SendError::Unavailable(_)) => return Ok(Step::Next(Next::Until(now_ms() + 1_000))),
        Err(e) => Err(e),
    };
    match &outcome {
        Ok(()) => {
            m.counters.sent.inc();
        }
        Err(e) => {
            m.counters.failed.inc();
            if matches!(e, SendError::Refused { .. }) {
                m.counters.paused.inc();
            }
        }
    }
    let claimed = m
        .committer
        .run(move |txn| {
            let now = now_ms();
            let failed = |code: &str, message: String| MessageError { code: code.to_string(), message };
            let (error, paused) = match &outcome {
                Ok(()) => (None, None),
                Err(SendError::NotOnWhatsapp) => (Some(failed("not_on_whatsapp", "the recipient is not on WhatsApp".into())), None),
                Err(SendError::Refused { code, message, retry_after_ms }) => {
                    (Some(failed(code, message.clone())), Some((now + retry_after_ms.unwrap_or(pause), code.clone())))
                }
                Err(e) => (Some(failed("send_failed", e.to_string())), None),
            };
            let sent = outcome.is_ok();
            let updated = messages::update(txn, id, move |x| {
                if x.status != MessageStatus::Sending {
                    return None;
                }
                x.updated_at = now;
                match error {
                    None => {
                        x.status = MessageStatus::Sent;
                        x.sent_at = Some(now);
                    }
                    Some(e) => {
                        x.status = MessageStatus::Failed;
                        x.error = Some(e);
                    }
                }
                Some("message.status")
            })?;
            if let Some((until, code)) = paused {
                pause_in(txn, key, until, &code, now)?;
            }
            match chain {
                Some(c) if sent && updated.is_some() => chain_in(txn, key, c, now),
                _ => Ok(None),
            }
        })
        .await?;
    Ok(match claimed {
        Some(c) => Step::Send(Box::new(c)),
        None => Step::Next(Next::Again),
    })
}

/// Pauses a session's queue until `until` and says so in the event log.
pub fn pause_in(txn: &redb::WriteTransaction, key: u128, until: i64, code: &str, now: i64) -> StoreResult<()> {
    messages::set_pause(txn, key, Some(until))?;
    let org = sessions::get_in(txn, key)?.ok_or(StoreError::NotFound("session"))?.organization_id;
    events::append(
        txn,
        "session.sending_paused",
        &org,
        Some(key),
        now,
        crate::store::message_records::EventData::SendingPaused {
            until,
            reason: format!("WhatsApp refused a message ({code}): sending is paused to protect the number"),
        },
    )?;
    Ok(())
}

/// The engine's view of a queued message, with the message it quotes (or
/// reacts to) and its media bytes, read in the round's snapshot.
fn outgoing(msg: &Message, (reply, media): (Option<Message>, Option<Vec<u8>>)) -> OutMessage {
    let key_of = |r: &Message| MessageKey {
        chat: r.chat_id.clone(),
        wa_id: r.wa_message_id.clone(),
        from_me: r.direction == crate::store::message_records::Direction::Out,
        sender: r.sender_jid.clone().or_else(|| r.sender_lid.clone()),
    };
    let content = match (&msg.kind, &msg.media, &msg.location, &msg.contact, &msg.reaction) {
        (k, Some(info), ..) if k.is_media() => OutContent::Media {
            kind: media_kind(*k),
            mimetype: info.mimetype.clone(),
            file_name: info.file_name.clone(),
            caption: msg.text.clone(),
            data: bytes::Bytes::from(media.unwrap_or_default()),
        },
        (MessageType::Location, _, Some(l), ..) => OutContent::Location {
            latitude: l.latitude,
            longitude: l.longitude,
            name: l.name.clone(),
            address: l.address.clone(),
        },
        (MessageType::Contact, _, _, Some(c), _) => {
            OutContent::Contact { name: c.name.clone(), phone: c.phone_number.clone().unwrap_or_default() }
        }
        (MessageType::Reaction, _, _, _, Some(r)) => OutContent::Reaction {
            target: reply.as_ref().map(key_of).unwrap_or(MessageKey {
                chat: msg.chat_id.clone(),
                wa_id: r.target_wa_id.clone(),
                from_me: false,
                sender: None,
            }),
            emoji: r.emoji.clone(),
        },
        _ => OutContent::Text { text: msg.text.clone().unwrap_or_default() },
    };
    let reply_to = if msg.kind == MessageType::Reaction { None } else { reply.as_ref().map(key_of) };
    OutMessage { wa_id: msg.wa_message_id.clone(), chat: msg.chat_id.clone(), content, reply_to, mentions: msg.mentions.clone() }
}

fn media_kind(t: MessageType) -> crate::engine::MediaKind {
    use crate::engine::MediaKind;
    match t {
        MessageType::Video => MediaKind::Video,
        MessageType::Audio => MediaKind::Audio,
        MessageType::Document => MediaKind::Document,
        MessageType::Sticker => MediaKind::Sticker,
        _ => MediaKind::Image,
    }
}

/// Characters "typed" for a message: its text or caption.
fn chars(m: &Message) -> usize {
    m.text.as_deref().map_or(0, |t| t.chars().count())
}

/// A stable jitter in [0, 1) for a message (the same on every round).
fn jitter(id: u128) -> f64 {
    let x = (id as u64) ^ ((id >> 64) as u64);
    let x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x >> 11) as f64 / (1u64 << 53) as f64
}
