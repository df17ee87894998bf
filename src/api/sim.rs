//! The sim engine's messaging hooks (CONTRACT §9; 404 on other engines):
//! a message arrives, a recipient receives or reads, the server refuses the
//! next sends, and the outbox of everything the simulated network received.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;
use ulid::Ulid;

use super::lifecycle::{sim, sim_error};
use crate::app::App;
use crate::engine::sim::{sim_media, SimEngine};
use crate::messaging::acks::{self, AckOutcome};
use crate::engine::{InboundBody, MediaKind, ReceiptStatus};
use crate::http::response::{self, Resp};
use crate::http::{ApiError, ErrorCode, Req};
use crate::store::messages;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct IncomingBody {
    from: String,
    text: Option<String>,
    lid: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    reaction: Option<ReactionBody>,
    group: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ReactionBody {
    /// Our id or the WhatsApp id of the message reacted to.
    message_id: String,
    emoji: String,
}

/// `POST /api/v1/sessions/{id}/sim/incoming` → 202 `{"id": waMessageId}`.
pub async fn incoming(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let (sim, id) = sim(&app, &req).await?;
    let b: IncomingBody = req.json()?;
    if !(6..=20).contains(&b.from.len()) || !b.from.bytes().all(|c| c.is_ascii_digit()) {
        return Err(ApiError::invalid("from", "from must be 6 to 20 digits"));
    }
    let text = b.text.clone();
    let body = match (b.kind.as_deref(), b.reaction) {
        (_, Some(r)) => {
            // Our id → the WhatsApp id the phone would name.
            let target = match Ulid::from_string(&r.message_id) {
                Ok(our) => {
                    let m = app.blocking(move |s| messages::read(&s.read()?, u128::from(our))).await?;
                    m.filter(|m| m.session_id == u128::from(id)).map(|m| m.wa_message_id).unwrap_or(r.message_id)
                }
                Err(_) => r.message_id,
            };
            InboundBody::Reaction { target, emoji: r.emoji }
        }
        (None | Some("text"), None) => InboundBody::Text { text: text.unwrap_or_default() },
        (Some("image"), None) => sim_media(MediaKind::Image, text),
        (Some("video"), None) => sim_media(MediaKind::Video, text),
        (Some("audio"), None) => sim_media(MediaKind::Audio, text),
        (Some("document"), None) => sim_media(MediaKind::Document, text),
        (Some("sticker"), None) => sim_media(MediaKind::Sticker, None),
        (Some("location"), None) => InboundBody::Location { latitude: -6.2, longitude: 106.8, name: text, address: None },
        (Some("contact"), None) => InboundBody::Contact { name: text.unwrap_or_else(|| "Sim Contact".into()), phone: Some(b.from.clone()) },
        (Some("unsupported"), None) => InboundBody::Unsupported,
        (Some(_), None) => return Err(ApiError::invalid("type", "type must be a message type")),
    };
    let wa = SimEngine::new_wa_id();
    let key = acks::message_key(&wa);
    let stored = app.messaging.acks.wait_for(id, key.clone());
    if let Err(e) = sim.incoming(id, wa.clone(), &b.from, b.lid.as_deref(), b.group.as_deref(), body) {
        app.messaging.acks.forget(id, &key);
        return Err(sim_error(e));
    }
    settled(&app, id, &key, stored).await?;
    Ok(response::json(202, &json!({"id": wa})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ReceiptBody {
    wa_message_id: String,
    status: String,
}

/// `POST /api/v1/sessions/{id}/sim/receipt` `{"waMessageId", "status"}` → 202.
pub async fn receipt(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let (sim, id) = sim(&app, &req).await?;
    let b: ReceiptBody = req.json()?;
    let status = match b.status.as_str() {
        "delivered" => ReceiptStatus::Delivered,
        "read" => ReceiptStatus::Read,
        _ => return Err(ApiError::invalid("status", "status must be delivered or read")),
    };
    let key = acks::receipt_key(&b.wa_message_id, status);
    let stored = app.messaging.acks.wait_for(id, key.clone());
    if let Err(e) = sim.receipt(id, &b.wa_message_id, status) {
        app.messaging.acks.forget(id, &key);
        return Err(sim_error(e));
    }
    settled(&app, id, &key, stored).await?;
    Ok(response::json(202, &json!({})))
}

/// How long a sim hook waits for its event to be committed or held.
const SETTLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Waits until the event is committed, or held for redelivery while writes
/// are refused (CONTRACT §11 continued): only then does the hook answer
/// 202. An event dropped on the way (the connection ended meanwhile) or
/// not settled in time is 503: the phone would send it again.
pub(super) async fn settled(app: &App, id: Ulid, key: &str, stored: tokio::sync::oneshot::Receiver<AckOutcome>) -> Result<(), ApiError> {
    match tokio::time::timeout(SETTLE_TIMEOUT, stored).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(_)) => Err(ApiError::new(ErrorCode::Unavailable, "the event could not be stored; send it again")
            .header("retry-after", "1")),
        Err(_) => {
            app.messaging.acks.forget(id, key);
            Err(ApiError::new(ErrorCode::Unavailable, "the event was not stored in time; send it again")
                .header("retry-after", "1"))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RefuseBody {
    code: String,
    #[serde(default = "one")]
    count: u32,
    retry_after_ms: Option<i64>,
}

fn one() -> u32 {
    1
}

/// `POST /api/v1/sessions/{id}/sim/refuse` `{"code", "count", "retryAfterMs"?}` → 202.
pub async fn refuse(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let (sim, id) = sim(&app, &req).await?;
    let b: RefuseBody = req.json()?;
    if b.code.is_empty() || b.code.len() > 32 {
        return Err(ApiError::invalid("code", "code is WhatsApp's error code, e.g. \"463\""));
    }
    sim.refuse(id, &b.code, b.count, b.retry_after_ms.filter(|r| *r >= 0)).map_err(sim_error)?;
    Ok(response::json(202, &json!({})))
}

/// `GET /api/v1/sessions/{id}/sim/outbox` → `{"data": [...]}`.
pub async fn outbox(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let (sim, id) = sim(&app, &req).await?;
    Ok(response::json(200, &json!({"data": sim.outbox(id)})))
}
