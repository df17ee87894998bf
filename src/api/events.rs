//! `GET /api/v1/events` [messages:read] and `GET /api/v1/admin/events`
//! (super_admin): the event log (CONTRACT §10) as cursor pages, oldest
//! first, with filters `sessionId` and `type` (and `organizationId` for the
//! admin). Event ids sort in commit order, so a walk that reaches the end
//! and later resumes from its cursor sees every event committed meanwhile.
//! With `Accept: text/event-stream` both routes answer the live stream of
//! [`super::events_stream`] instead, with the same filters.

use std::sync::Arc;

use serde_json::{json, Value};
use ulid::Ulid;

use super::cursor::{CursorScope, ListKind};
use super::events_stream;
use super::messages::message_value;
use super::sessions::session_json;
use crate::app::App;
use crate::auth::Permission;
use crate::http::response::{self, Resp};
use crate::http::{ApiError, Query, Req};
use crate::store::events;
use crate::store::message_records::{Event, EventData};

/// Every event type the log holds.
pub const EVENT_TYPES: [&str; 14] = [
    "session.status",
    "session.sending_paused",
    "message.received",
    "message.status",
    "message.reaction",
    "message.edited",
    "message.revoked",
    "contact.updated",
    "presence.update",
    "group.joined",
    "group.left",
    "group.updated",
    "group.participants",
    "group.join_request",
];

/// An event as the API (and later webhooks and the stream) shows it.
pub fn event_value(id: u128, e: &Event) -> Value {
    let data = match &e.data {
        EventData::Session(sid, s) => serde_json::from_slice(&session_json(Ulid::from(*sid), s)).unwrap_or(Value::Null),
        EventData::Message(mid, m) => message_value(*mid, m),
        EventData::SendingPaused { until, reason } => json!({"until": until, "reason": reason}),
        EventData::WebhookTest(w) => json!({"webhookId": Ulid::from(*w).to_string()}),
        EventData::Directory(text) => serde_json::from_str(text).unwrap_or(Value::Null),
    };
    json!({
        "id": format!("evt_{}", Ulid::from(id)),
        "type": e.kind,
        "timestamp": e.timestamp,
        "organizationId": e.organization_id,
        "sessionId": e.session_id.map(|s| Ulid::from(s).to_string()),
        "data": data,
    })
}

/// The filters of an event listing or stream, parsed and validated the same
/// way for both.
pub(crate) struct Filters {
    /// One organization's events; `None` is every organization (admin).
    pub org: Option<String>,
    pub session: Option<u128>,
    pub kind: Option<String>,
}

impl Filters {
    /// Takes `sessionId`, `type` (and, without a fixed `org`, the admin's
    /// `organizationId`) from `q`.
    pub(crate) fn take(q: &mut Query, org: Option<String>) -> Result<Filters, ApiError> {
        let session = match q.take("sessionId") {
            Some(s) => Some(u128::from(Ulid::from_string(&s).map_err(|_| ApiError::invalid("sessionId", "sessionId must be a session id"))?)),
            None => None,
        };
        let kind = q.take("type");
        if let Some(k) = &kind {
            if !EVENT_TYPES.contains(&k.as_str()) {
                return Err(ApiError::invalid("type", format!("type must be one of {}", EVENT_TYPES.join(", "))));
            }
        }
        let org = match org {
            Some(o) => Some(o),
            None => q.take("organizationId"),
        };
        Ok(Filters { org, session, kind })
    }

    /// Whether `e` passes the session and type filters (the organization is
    /// chosen by the index the store walks).
    pub(crate) fn keep(&self, e: &Event) -> bool {
        self.session.is_none_or(|sid| e.session_id == Some(sid)) && self.kind.as_deref().is_none_or(|k| e.kind == k)
    }
}

async fn page(app: &App, req: &Req, org: Option<String>, list: ListKind) -> Result<Resp, ApiError> {
    let mut q = req.query()?;
    let (limit, cursor) = q.page()?;
    let f = Filters::take(&mut q, org)?;
    q.finish()?;
    let filters = format!(
        "org={}&session={}&type={}",
        f.org.as_deref().unwrap_or(""),
        f.session.map(|s| Ulid::from(s).to_string()).unwrap_or_default(),
        f.kind.as_deref().unwrap_or("")
    );
    let scope = CursorScope { meta: app.store.meta(), list, filters };
    let after = cursor.map(|c| scope.decode_u128(&c)).transpose()?;
    let budget = limit * super::sessions::SCAN_FACTOR;
    let (rows, next) = app
        .blocking(move |s| events::page(&s.read()?, f.org.as_deref(), after, limit, budget, |e| f.keep(e)))
        .await?;
    let data: Vec<Value> = rows.iter().map(|(id, e)| event_value(*id, e)).collect();
    let next = next.map(|k| scope.encode(&k.to_be_bytes()));
    Ok(response::json(200, &json!({"data": data, "nextCursor": next})))
}

/// `GET /api/v1/events`: the caller's organization's events; with `Accept:
/// text/event-stream`, the live stream of them ([`events_stream`]).
pub async fn list(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let access = app.org(&req, Permission::MessagesRead).await?;
    if events_stream::wanted(&req) {
        return events_stream::open(app, &req, Some(access.org_id)).await;
    }
    page(&app, &req, Some(access.org_id), ListKind::OrgEvents).await
}

/// `GET /api/v1/admin/events`: every organization's events (super_admin);
/// with `Accept: text/event-stream`, the live stream of them.
pub async fn admin_list(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    app.admin(&req).await?;
    if events_stream::wanted(&req) {
        return events_stream::open(app, &req, None).await;
    }
    page(&app, &req, None, ListKind::AdminEvents).await
}
