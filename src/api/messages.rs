//! `/api/v1/sessions/{id}/messages` (CONTRACT §9): queue a message (or a
//! batch, all or nothing), list and read messages, download media, cancel
//! or revoke. A 202 means the message is committed to the session's send
//! queue; the queue (`crate::messaging`) paces and sends it.
//!
//! `Idempotency-Key` works as Stripe's: the first answer of a key is kept
//! for 24 h and replayed (same status and body, `Idempotent-Replayed: true`)
//! for the same request; another request under the same key is 409. The
//! check and the write are in one group-commit job, so concurrent requests
//! with one key produce exactly one message.

use std::sync::Arc;

use ring::digest::{Context, SHA256};
use serde_json::{json, Value};
use ulid::Ulid;

use super::cursor::{CursorScope, ListKind};
use super::media_staging::{fetch_policy, Staged, BATCH_ITEM_BUDGET_WAIT};
use super::message_input::{self, Outgoing, SendBody};
use super::send_limits;
pub use super::message_view::{message_value, message_view, MessageView};
use crate::app::App;
use crate::auth::Permission;
use crate::http::response::{self, Resp};
use crate::http::{ApiError, ErrorCode, Req};
use crate::store::message_records::{
    Direction, Idempotent, MediaInfo, Message, MessageStatus, MessageType, Reaction,
};
use crate::store::records::Session;
use crate::store::tables::MESSAGES;
use crate::store::{idempotency, media, messages, now_ms, StoreError, StoreResult};

/// How long an idempotent answer is replayed.
pub const IDEMPOTENCY_TTL_MS: i64 = idempotency::TTL_MS;
/// Most messages in one batch.
pub const MAX_BATCH: usize = 1_000;

/// The body of a 202: one message, or a batch's `{"data": [...]}`.
fn render_queued(built: &[Built], is_batch: bool) -> Vec<u8> {
    let views: Vec<MessageView<'_>> = built.iter().map(|(id, m, _)| message_view(*id, m)).collect();
    let r = if is_batch {
        serde_json::to_vec(&json!({ "data": views }))
    } else {
        match views.first() {
            Some(v) => serde_json::to_vec(v),
            None => Ok(b"null".to_vec()),
        }
    };
    r.unwrap_or_default()
}

/// A new WhatsApp message id, shaped as WhatsApp Web makes them (and as
/// whatsapp-rust's own `message_id_at`): `3EB0` + 18 uppercase hex, 22 chars.
/// Any other shape would mark the number's messages as a gateway's.
pub fn new_wa_id() -> String {
    let bytes = crate::store::tables::random_bytes::<9>().unwrap_or_else(|_| {
        let u = u128::from(crate::new_id()).to_be_bytes();
        let mut b = [0u8; 9];
        b.copy_from_slice(&u[7..]);
        b
    });
    let mut s = String::from("3EB0");
    for b in bytes {
        s.push_str(&format!("{b:02X}"));
    }
    s
}

/// The caller's organization, cleared for `perm`, and the session `{id}`
/// of that organization (404 for another's).
async fn session_of(app: &App, req: &Req, perm: Permission) -> Result<(String, Ulid, Session), ApiError> {
    let access = app.org(req, perm).await?;
    let id = req.ulid("session")?;
    let s = super::sessions::read_session(app, id, &access.org_id).await?;
    Ok((access.org_id, id, s))
}

/// The `Idempotency-Key` header, checked: 1..=255 visible ASCII characters.
fn idempotency_key(req: &Req) -> Result<Option<String>, ApiError> {
    let Some(v) = req.headers.get("idempotency-key") else { return Ok(None) };
    let ok = !v.is_empty() && v.len() <= 255 && v.as_bytes().iter().all(|b| (0x21..=0x7e).contains(b));
    if !ok {
        return Err(ApiError::invalid("Idempotency-Key", "Idempotency-Key must be 1 to 255 visible ASCII characters"));
    }
    Ok(v.to_str().ok().map(str::to_string))
}

/// SHA-256 of what makes two requests "the same" for an idempotency key
/// (path, NUL, body), hashed in place: a 21 MiB body is not copied.
fn request_hash(req: &Req) -> [u8; 32] {
    let mut h = Context::new(&SHA256);
    h.update(req.path.as_bytes());
    h.update(&[0]);
    h.update(&req.body);
    h.finish().as_ref().try_into().unwrap_or([0; 32])
}

/// The remembered answer as a response: replayed, or 409 for another request.
fn replay(first: Idempotent, hash: [u8; 32]) -> Result<Resp, ApiError> {
    if first.request_hash != hash {
        return Err(ApiError::new(ErrorCode::Conflict, "this Idempotency-Key was used with another request"));
    }
    let mut r = response::bytes(first.status, "application/json", first.body);
    r.headers_mut().insert("idempotent-replayed", hyper::header::HeaderValue::from_static("true"));
    Ok(r)
}

/// Answers a repeated key before any work (parsing, fetching media): a
/// retry must get the first answer even if its media URL is gone by now.
async fn early_replay(app: &App, org: &str, key: &Option<String>, hash: [u8; 32]) -> Result<Option<Resp>, ApiError> {
    let Some(k) = key.clone() else { return Ok(None) };
    let org = org.to_string();
    let found = app.blocking(move |s| idempotency::lookup_read(&s.read()?, &org, &k)).await?;
    match found {
        Some(first) if first.created_at + IDEMPOTENCY_TTL_MS > now_ms() => replay(first, hash).map(Some),
        _ => Ok(None),
    }
}

/// What a queueing job decided.
enum Outcome {
    /// Committed; the body when the job rendered it (for an idempotency
    /// record), else the messages, rendered after the commit (off the
    /// writer thread).
    Created(Result<Vec<u8>, Vec<Built>>),
    Replay(Idempotent),
    Refused(ApiError),
}

/// `POST /api/v1/sessions/{id}/messages` → 202 Message.
pub async fn send(app: Arc<App>, mut req: Req) -> Result<Resp, ApiError> {
    let (org, id, _) = session_of(&app, &req, Permission::MessagesSend).await?;
    let key = idempotency_key(&req)?;
    let hash = request_hash(&req);
    if let Some(r) = early_replay(&app, &org, &key, hash).await? {
        return Ok(r);
    }
    let policy = fetch_policy(&app, app.config.messaging.media_budget_wait);
    let mut item = {
        let body: SendBody<'_> = req.json()?;
        message_input::parse_body(body, now_ms(), &policy).await?
    };
    // The body (base64 and all) is not needed any more: free it before the
    // decoded bytes are staged, so the two copies never coexist with a third.
    req.body = bytes::Bytes::new();
    let mut staged = Staged::new(&app);
    staged.stage(&org, &mut item).await?;
    drop(req.media_charge.take());
    queue(&app, hash, org, id, vec![item], key, false, staged).await
}

/// `POST /api/v1/sessions/{id}/messages/batch` `{"messages": [...]}` → 202
/// `{"data": [...]}`, all or nothing. Item by item: each item's media is
/// fetched (or decoded) and staged in its own commit before the next, so a
/// batch holds one item's media at a time; the final commit attaches them.
pub async fn batch(app: Arc<App>, mut req: Req) -> Result<Resp, ApiError> {
    let (org, id, _) = session_of(&app, &req, Permission::MessagesSend).await?;
    let key = idempotency_key(&req)?;
    let hash = request_hash(&req);
    if let Some(r) = early_replay(&app, &org, &key, hash).await? {
        return Ok(r);
    }
    let mut body: Value = req.json()?;
    req.body = bytes::Bytes::new();
    let items = match body.as_object_mut().map(|o| (o.remove("messages"), o.keys().next().cloned())) {
        Some((_, Some(extra))) => return Err(ApiError::invalid(&extra, format!("unknown field `{extra}`"))),
        Some((Some(Value::Array(items)), None)) => items,
        _ => return Err(ApiError::invalid("messages", "messages must be an array of messages")),
    };
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(ApiError::invalid("messages", format!("a batch holds 1 to {MAX_BATCH} messages")).detail("count", items.len()));
    }
    let (now, policy) = (now_ms(), fetch_policy(&app, BATCH_ITEM_BUDGET_WAIT));
    let mut staged = Staged::new(&app);
    let mut parsed = Vec::with_capacity(items.len());
    for (i, v) in items.into_iter().enumerate() {
        let mut item = message_input::parse(v, now, &policy).await.map_err(|e| e.detail("index", i))?;
        staged.stage(&org, &mut item).await.map_err(|e| e.detail("index", i))?;
        parsed.push(item);
    }
    drop(req.media_charge.take());
    queue(&app, hash, org, id, parsed, key, true, staged).await
}

/// Commits `items` to session `id`'s queue in one job (with the
/// idempotency check), then wakes its worker.
#[allow(clippy::too_many_arguments)]
async fn queue(
    app: &Arc<App>,
    hash: [u8; 32],
    org: String,
    id: Ulid,
    items: Vec<Outgoing>,
    key: Option<String>,
    is_batch: bool,
    staged: Staged,
) -> Result<Resp, ApiError> {
    let blobs = staged.blobs.clone();
    let max = app.config.messaging.max_queued;
    let ttl_ms = app.config.messaging.message_ttl.as_millis() as i64;
    let default_quota = app.config.org_storage_quota;
    let plain = items.iter().all(|i| i.send_at.is_none());
    let bytes = send_limits::request_bytes(&items);
    let outcome = app
        .committer
        .run(move |txn| {
            let now = now_ms();
            if let Some(k) = &key {
                if let Some(first) = idempotency::lookup(txn, &org, k)? {
                    if first.created_at + IDEMPOTENCY_TTL_MS > now {
                        return Ok(Outcome::Replay(first));
                    }
                }
            }
            let key_id = u128::from(id);
            let session = match crate::store::sessions::get_in(txn, key_id)? {
                Some(s) if s.organization_id == org => s,
                _ => return Err(StoreError::NotFound("session")),
            };
            let queued = messages::queue_len(txn, key_id)?;
            if queued + items.len() as u64 > max {
                return Ok(Outcome::Refused(send_limits::queue_full(txn, key_id, &session, (queued, max), ttl_ms, now)?));
            }
            if let Some(e) = send_limits::quota_refusal(txn, &org, bytes, default_quota)? {
                return Ok(Outcome::Refused(e));
            }
            if !blobs.is_empty() && !media::all_staged(txn, blobs.iter().copied())? {
                // Swept as an orphan: the request took longer than any should.
                return Ok(Outcome::Refused(ApiError::new(ErrorCode::Unavailable, "the request's media was not kept: send it again")));
            }
            let mut built = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                match build(txn, key_id, &session, item, now)? {
                    Ok(b) => built.push(b),
                    Err(e) => return Ok(Outcome::Refused(if is_batch { e.detail("index", i) } else { e })),
                }
            }
            // One counter update for the organization's stored bytes, however many messages.
            messages::insert_all(txn, built.iter().map(|(mid, m, blob)| (*mid, m, *blob)), "message.status")?;
            if built.len() > 1 {
                for (mid, m, _) in &built {
                    // A batch's WhatsApp ids share its session's index page
                    // now, rather than each dirtying it again at its claim.
                    messages::index_wa_id(txn, *mid, m)?;
                }
            }
            let Some(k) = &key else { return Ok(Outcome::Created(Err(built))) };
            let body = render_queued(&built, is_batch);
            let rec = Idempotent { request_hash: hash, status: 202, body: body.clone(), created_at: now };
            idempotency::remember(txn, &org, k, &rec)?;
            Ok(Outcome::Created(Ok(body)))
        })
        .await?;
    match outcome {
        Outcome::Created(body) => {
            staged.keep();
            if plain {
                app.messaging.queued_plain(id);
            } else {
                app.messaging.wake(id);
            }
            let body = body.unwrap_or_else(|built| render_queued(&built, is_batch));
            Ok(response::bytes(202, "application/json", body))
        }
        Outcome::Replay(first) => replay(first, hash),
        Outcome::Refused(e) => Err(e),
    }
}

/// A message built in the queueing commit: its id, record and staged blob.
type Built = (u128, Message, Option<u128>);

/// A message record for a checked request: targets resolved to this
/// session's messages, both forms of the chat when known.
fn build(txn: &redb::WriteTransaction, session: u128, s: &Session, item: Outgoing, now: i64) -> StoreResult<Result<Built, ApiError>> {
    let table = txn.open_table(MESSAGES)?;
    let target = |field: &str, our: &str| -> StoreResult<Result<Message, ApiError>> {
        let found = Ulid::from_string(our).ok().map(u128::from).map(|t| messages::get(&table, t)).transpose()?.flatten();
        Ok(found
            .filter(|m| m.session_id == session)
            .ok_or_else(|| ApiError::invalid(field, format!("{field}: no message {our} in this session"))))
    };
    let reply_to_wa = match &item.reply_to {
        Some(r) => match target("replyTo", r)? {
            Ok(m) => Some(m.wa_message_id),
            Err(e) => return Ok(Err(e)),
        },
        None => None,
    };
    let reaction = match &item.reaction {
        Some((our, emoji)) => match target("reaction.messageId", our)? {
            Ok(m) => Some(Reaction { message_id: Some(our.to_string()), target_wa_id: m.wa_message_id, emoji: emoji.clone() }),
            Err(e) => return Ok(Err(e)),
        },
        None => None,
    };
    drop(table);
    let other = messages::other_form(txn, session, &item.chat_id)?;
    let (chat_jid, chat_lid) = if item.chat_id.ends_with("@lid") {
        (other, Some(item.chat_id.clone()))
    } else if item.chat_id.ends_with("@s.whatsapp.net") {
        (Some(item.chat_id.clone()), other)
    } else {
        (None, None)
    };
    let blob = item.staged.map(|(b, _)| b);
    let media = item.media.as_ref().map(|(bytes, mimetype, name)| MediaInfo {
        mimetype: mimetype.clone(),
        file_name: name.clone(),
        size_bytes: item.staged.map_or(bytes.len() as u64, |(_, size)| size),
        media_ref: None,
    });
    let m = Message {
        session_id: session,
        organization_id: s.organization_id.clone(),
        direction: Direction::Out,
        chat_id: item.chat_id,
        chat_jid,
        chat_lid,
        sender_jid: s.wa_jid.clone(),
        sender_lid: s.wa_lid.clone(),
        kind: item.kind,
        text: item.text,
        media,
        location: item.location,
        contact: item.contact,
        reaction,
        reply_to: item.reply_to,
        reply_to_wa,
        mentions: item.mentions,
        status: if item.send_at.is_some() { MessageStatus::Scheduled } else { MessageStatus::Queued },
        error: None,
        wa_message_id: new_wa_id(),
        send_at: item.send_at,
        created_at: now,
        updated_at: now,
        sent_at: None,
        delivered_at: None,
        read_at: None,
        edited_at: None,
        revoke_requested: false,
    };
    Ok(Ok((u128::from(crate::new_id()), m, blob)))
}

/// Reads message `{msgId}` of session `id` (404 for any other's).
async fn read_message(app: &App, id: Ulid, req: &Req) -> Result<(u128, Message), ApiError> {
    let mid = u128::from(req.sub_ulid("message")?);
    let m = app.blocking(move |s| messages::read(&s.read()?, mid)).await?;
    match m {
        Some(m) if m.session_id == u128::from(id) => Ok((mid, m)),
        _ => Err(ApiError::not_found("message")),
    }
}

fn message_response(status: u16, id: u128, m: &Message) -> Resp {
    response::bytes(status, "application/json", serde_json::to_vec(&message_view(id, m)).unwrap_or_default())
}

/// `GET /api/v1/sessions/{id}/messages/{msgId}`.
pub async fn get(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let (_, id, _) = session_of(&app, &req, Permission::MessagesRead).await?;
    let (mid, m) = read_message(&app, id, &req).await?;
    Ok(message_response(200, mid, &m))
}

/// `GET /api/v1/sessions/{id}/messages` — filters `chatId`, `direction`, `status`.
pub async fn list(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let (org, id, _) = session_of(&app, &req, Permission::MessagesRead).await?;
    let mut q = req.query()?;
    let (limit, cursor) = q.page()?;
    let chat = q.take("chatId").map(|c| message_input::normalize_jid(&c, "chatId")).transpose()?;
    let direction = match q.take("direction") {
        Some(d) => Some(Direction::parse(&d).ok_or_else(|| ApiError::invalid("direction", "direction must be in or out"))?),
        None => None,
    };
    let status = match q.take("status") {
        Some(st) => Some(MessageStatus::parse(&st).ok_or_else(|| ApiError::invalid("status", "unknown message status"))?),
        None => None,
    };
    q.finish()?;
    let filters = format!(
        "org={org}&session={id}&chatId={}&direction={}&status={}",
        chat.as_deref().unwrap_or(""),
        direction.map_or("", |d| d.as_str()),
        status.map_or("", |s| s.as_str())
    );
    let scope = CursorScope { meta: app.store.meta(), list: ListKind::Messages, filters };
    let after = cursor.map(|c| scope.decode_u128(&c)).transpose()?;
    let budget = limit * super::sessions::SCAN_FACTOR;
    let (rows, next) = app
        .blocking(move |s| {
            messages::page(&s.read()?, u128::from(id), after, limit, budget, |m| {
                chat.as_deref().is_none_or(|c| m.chat_id == c)
                    && direction.is_none_or(|d| m.direction == d)
                    && status.is_none_or(|st| m.status == st)
            })
        })
        .await?;
    let data: Vec<MessageView<'_>> = rows.iter().map(|(mid, m)| message_view(*mid, m)).collect();
    let next = next.map(|k| scope.encode(&k.to_be_bytes()));
    Ok(response::json(200, &json!({"data": data, "nextCursor": next})))
}

/// `GET .../messages/{msgId}/media` → the bytes with their `Content-Type`
/// and the headers that keep them from running as a page
/// ([`super::media_answer::set_headers`]).
pub async fn media(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let (_, id, session) = session_of(&app, &req, Permission::MessagesRead).await?;
    let (mid, m) = read_message(&app, id, &req).await?;
    let Some(info) = m.media.clone() else { return Err(ApiError::not_found("media")) };
    let bytes = match (&m.direction, &info.media_ref) {
        (Direction::In, Some(r)) => {
            let conn = app.engine.connection(id).ok_or_else(|| {
                ApiError::new(ErrorCode::Conflict, "the session is not connected: inbound media is fetched from WhatsApp on demand")
                    .detail("status", session.status.as_str())
            })?;
            conn.download(r)
                .await
                .map_err(|e| ApiError::new(ErrorCode::Unavailable, format!("could not download the media: {e}")))?
        }
        _ => app.blocking(move |s| messages::media(&s.read()?, mid)).await?.ok_or_else(|| ApiError::not_found("media"))?,
    };
    let mut r = response::bytes(200, "application/octet-stream", bytes);
    super::media_answer::set_headers(&mut r, &info.mimetype, info.file_name.as_deref());
    Ok(r)
}

/// `DELETE .../messages/{msgId}`: cancels a `scheduled` or `queued` message
/// (200), or revokes a sent one for everyone (202: queued like a send, then
/// `revoked`); anything else is 409.
pub async fn delete(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let (_, id, _) = session_of(&app, &req, Permission::MessagesSend).await?;
    let (mid, _) = read_message(&app, id, &req).await?;
    let result = app
        .committer
        .run(move |txn| {
            let Some(cur) = messages::get(&txn.open_table(MESSAGES)?, mid)? else {
                return Err(StoreError::NotFound("message"));
            };
            let now = now_ms();
            match (cur.direction, cur.status) {
                (Direction::Out, MessageStatus::Scheduled | MessageStatus::Queued) => {
                    let m = messages::update(txn, mid, |x| {
                        x.status = MessageStatus::Canceled;
                        x.updated_at = now;
                        Some("message.status")
                    })?;
                    Ok(Ok((200, m)))
                }
                (Direction::Out, MessageStatus::Sent | MessageStatus::Delivered | MessageStatus::Read)
                    if !cur.revoke_requested && cur.kind != MessageType::Reaction =>
                {
                    let m = messages::update(txn, mid, |x| {
                        x.revoke_requested = true;
                        x.updated_at = now;
                        Some("message.status")
                    })?;
                    Ok(Ok((202, m)))
                }
                (_, st) => Ok(Err(ApiError::new(ErrorCode::Conflict, format!("a {} message can be neither canceled nor revoked", st.as_str()))
                    .detail("status", st.as_str()))),
            }
        })
        .await?;
    let (status, m) = result?;
    let m = m.ok_or_else(|| ApiError::not_found("message"))?;
    app.messaging.wake(id);
    Ok(message_response(status, mid, &m))
}

#[cfg(test)]
mod tests {
    /// The shape WhatsApp Web gives its ids (whatsapp-rust 0.7 `message_id_at`).
    #[test]
    fn wa_ids_look_like_whatsapp_webs() {
        let a = super::new_wa_id();
        assert_eq!(a.len(), 22, "{a}");
        assert!(a.starts_with("3EB0"), "{a}");
        assert!(a[4..].bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)), "{a}");
        assert_ne!(a, super::new_wa_id());
    }
}
