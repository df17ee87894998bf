//! `/api/v1/webhooks`: an organization's webhook endpoints (CONTRACT §10)
//! [webhooks:write]. The signing secret (`whsec_` + base64 of 32 random
//! bytes, as Standard Webhooks has it) is shown once: at creation and at each
//! rotation, when the previous secret keeps signing beside the new one for 24 h.
//!
//! A URL is `https://`, or `http://` only with `--allow-private-urls`.
//! Without that flag, what delivery would refuse is refused here already: the
//! host is normalized as delivery normalizes it (`2130706433`, `0x7f.0.0.1`,
//! `127.1` and `localhost.` are loopback), an address literal or a
//! `localhost` name that is not public is refused, and a name is resolved
//! (for at most [`CREATE_LOOKUP`]) and refused when it points at a non-public
//! address. A name that does not resolve yet is accepted; every delivery
//! checks again after DNS (rebinding).

use std::sync::Arc;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::json;
use ulid::Ulid;

use super::cursor::{CursorScope, ListKind};
use super::events::EVENT_TYPES;
use super::ListPage;
use crate::app::App;
use crate::auth::Permission;
use crate::http::response::{self, Resp};
use crate::http::{ApiError, Req};
use crate::messaging::media_fetch::{self, MediaError};
use crate::store::now_ms;
use crate::store::webhook_records::{Webhook, WebhookOrdering};

/// How long a rotated-out secret keeps signing.
pub const ROTATION_OVERLAP_MS: i64 = 24 * 3600 * 1000;
/// Endpoints per organization.
pub const MAX_WEBHOOKS: usize = 100;
const MAX_URL: usize = 2048;
const MAX_DESCRIPTION: usize = 500;
/// How long a create or PATCH waits for DNS before accepting the URL
/// unresolved (delivery checks it again).
pub const CREATE_LOOKUP: std::time::Duration = std::time::Duration::from_secs(2);

/// A webhook as the API shows it (never its secret).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView<'a> {
    id: String,
    organization_id: &'a str,
    url: &'a str,
    events: &'a [String],
    session_ids: &'a [String],
    description: Option<&'a str>,
    enabled: bool,
    disabled_reason: Option<&'a str>,
    ordering: &'static str,
    created_at: i64,
    updated_at: i64,
}

impl<'a> WebhookView<'a> {
    pub fn new(id: Ulid, h: &'a Webhook) -> WebhookView<'a> {
        WebhookView {
            id: id.to_string(),
            organization_id: &h.organization_id,
            url: &h.url,
            events: &h.events,
            session_ids: &h.session_ids,
            description: h.description.as_deref(),
            enabled: h.enabled,
            disabled_reason: h.disabled_reason.as_deref(),
            ordering: h.ordering.as_str(),
            created_at: h.created_at,
            updated_at: h.updated_at,
        }
    }
}

/// `whsec_` + standard base64 of the secret bytes (what receivers configure).
pub fn secret_text(secret: &[u8; 32]) -> String {
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(secret))
}

fn new_secret() -> Result<[u8; 32], ApiError> {
    crate::store::tables::random_bytes::<32>().map_err(|_| ApiError::internal("no OS randomness"))
}

/// Checks a webhook URL (see the module doc).
async fn check_url(url: &str, allow_private: bool) -> Result<String, ApiError> {
    let url = url.trim();
    if url.len() > MAX_URL {
        return Err(ApiError::invalid("url", format!("url must be at most {MAX_URL} characters")));
    }
    let target = media_fetch::parse_url(url).map_err(|e| ApiError::invalid("url", e.to_string().replace("bad media URL", "bad URL")))?;
    if !allow_private {
        if !target.https {
            return Err(ApiError::invalid("url", "url must be https:// (http:// only with --allow-private-urls)"));
        }
        // The same normalization and check as every delivery's.
        let refused = match tokio::time::timeout(CREATE_LOOKUP, media_fetch::resolve_checked(&target, false)).await {
            Ok(Err(MediaError::PrivateAddress(why))) => Some(why),
            // Resolved and public, or not resolvable now: delivery decides.
            Ok(_) | Err(_) => None,
        };
        if let Some(why) = refused {
            return Err(ApiError::invalid(
                "url",
                format!("url refused: {why}; private, loopback and link-local addresses are allowed only with --allow-private-urls"),
            ));
        }
    }
    Ok(url.to_string())
}

/// Checks an event filter: known types, or `["*"]`.
fn check_events(events: Vec<String>) -> Result<Vec<String>, ApiError> {
    if events.is_empty() {
        return Err(ApiError::invalid("events", "events must name at least one event type, or [\"*\"]"));
    }
    for e in &events {
        if e != "*" && !EVENT_TYPES.contains(&e.as_str()) {
            return Err(ApiError::invalid("events", format!("unknown event type {e:?}")).detail("allowed", EVENT_TYPES.to_vec()));
        }
    }
    let mut events = events;
    events.sort();
    events.dedup();
    Ok(events)
}

/// Checks a session filter: sessions of this organization (another's is unknown).
async fn check_sessions(app: &App, org: &str, ids: Vec<String>) -> Result<Vec<String>, ApiError> {
    let mut out = Vec::with_capacity(ids.len());
    for raw in ids {
        let id = Ulid::from_string(&raw).map_err(|_| ApiError::invalid("sessionIds", format!("{raw:?} is not a session id")))?;
        let o = org.to_string();
        if app.blocking(move |s| s.get_session(id, Some(&o))).await.is_err() {
            return Err(ApiError::invalid("sessionIds", format!("no session {raw} in this organization")));
        }
        out.push(id.to_string());
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Checks `ordering`: `"session"` or `"none"` (not null: there is no
/// "unset" to go back to).
fn check_ordering(o: Option<String>) -> Result<WebhookOrdering, ApiError> {
    let o = o.ok_or_else(|| ApiError::invalid("ordering", "ordering must be \"session\" or \"none\", not null"))?;
    WebhookOrdering::parse(&o).ok_or_else(|| ApiError::invalid("ordering", format!("ordering must be \"session\" or \"none\", not {o:?}")))
}

fn check_description(d: Option<String>) -> Result<Option<String>, ApiError> {
    match d {
        Some(d) if d.chars().count() > MAX_DESCRIPTION => {
            Err(ApiError::invalid("description", format!("description must be at most {MAX_DESCRIPTION} characters")))
        }
        d => Ok(d),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateBody {
    url: String,
    events: Vec<String>,
    session_ids: Option<Vec<String>>,
    description: Option<String>,
    #[serde(default, deserialize_with = "crate::api::nullable")]
    ordering: Option<Option<String>>,
}

/// `POST /api/v1/webhooks` → 201 `{"webhook", "secret"}`.
pub async fn create(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let access = app.org(&req, Permission::WebhooksWrite).await?;
    let body: CreateBody = req.json()?;
    let url = check_url(&body.url, app.config.messaging.allow_private_urls).await?;
    let events = check_events(body.events)?;
    let session_ids = check_sessions(&app, &access.org_id, body.session_ids.unwrap_or_default()).await?;
    let description = check_description(body.description)?;
    let ordering = body.ordering.map(check_ordering).transpose()?.unwrap_or_default();
    let org = access.org_id.clone();
    if app.blocking(move |s| s.count_webhooks(&org)).await? >= MAX_WEBHOOKS {
        return Err(ApiError::new(crate::http::ErrorCode::Conflict, format!("an organization has at most {MAX_WEBHOOKS} webhooks")));
    }
    let now = now_ms();
    let hook = Webhook {
        organization_id: access.org_id,
        url,
        events,
        session_ids,
        description,
        enabled: true,
        disabled_reason: None,
        secret: new_secret()?,
        previous: None,
        created_at: now,
        updated_at: now,
        ordering,
    };
    let id = crate::new_id();
    let stored = hook.clone();
    app.blocking(move |s| s.create_webhook(id, &stored)).await?;
    app.delivery.poke();
    Ok(response::json(201, &json!({"webhook": WebhookView::new(id, &hook), "secret": secret_text(&hook.secret)})))
}

/// `GET /api/v1/webhooks`: cursor pages in id order.
pub async fn list(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let access = app.org(&req, Permission::WebhooksWrite).await?;
    let mut q = req.query()?;
    let (limit, cursor) = q.page()?;
    q.finish()?;
    let scope = CursorScope { meta: app.store.meta(), list: ListKind::Webhooks, filters: format!("org={}", access.org_id) };
    let after = cursor.map(|c| scope.decode_u128(&c)).transpose()?;
    let org = access.org_id.clone();
    let page = app.blocking(move |s| s.list_webhooks(&org, after, limit)).await?;
    let body = ListPage {
        data: page.items.iter().map(|(id, h)| WebhookView::new(Ulid::from(*id), h)).collect(),
        next_cursor: page.next_after.map(|k| scope.encode(&k.to_be_bytes())),
    };
    Ok(response::json(200, &body))
}

/// `GET /api/v1/webhooks/{id}`.
pub async fn get(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let access = app.org(&req, Permission::WebhooksWrite).await?;
    let id = req.ulid("webhook")?;
    let hook = app.blocking(move |s| s.webhook(id, Some(&access.org_id))).await?;
    Ok(response::json(200, &WebhookView::new(id, &hook)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PatchBody {
    url: Option<String>,
    events: Option<Vec<String>>,
    session_ids: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::api::nullable")]
    description: Option<Option<String>>,
    enabled: Option<bool>,
    #[serde(default, deserialize_with = "crate::api::nullable")]
    ordering: Option<Option<String>>,
}

/// `PATCH /api/v1/webhooks/{id}`: `url`, `events`, `sessionIds`,
/// `description`, `enabled` (enabling clears `disabledReason`), `ordering`
/// (deliveries already retrying in a lane of their own finish there).
pub async fn patch(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let access = app.org(&req, Permission::WebhooksWrite).await?;
    let id = req.ulid("webhook")?;
    let body: PatchBody = req.json()?;
    let url = match body.url {
        Some(u) => Some(check_url(&u, app.config.messaging.allow_private_urls).await?),
        None => None,
    };
    let events = body.events.map(check_events).transpose()?;
    let session_ids = match body.session_ids {
        Some(ids) => Some(check_sessions(&app, &access.org_id, ids).await?),
        None => None,
    };
    let description = body.description.map(check_description).transpose()?;
    let enabled = body.enabled;
    let ordering = body.ordering.map(check_ordering).transpose()?;
    let org = access.org_id.clone();
    let hook = app
        .blocking(move |s| {
            s.update_webhook(id, &org, |h| {
                if let Some(u) = url {
                    h.url = u;
                }
                if let Some(e) = events {
                    h.events = e;
                }
                if let Some(ids) = session_ids {
                    h.session_ids = ids;
                }
                if let Some(d) = description {
                    h.description = d;
                }
                if let Some(o) = ordering {
                    h.ordering = o;
                }
                if let Some(on) = enabled {
                    h.enabled = on;
                    if on {
                        h.disabled_reason = None;
                    }
                }
                h.updated_at = now_ms();
                Ok(())
            })
        })
        .await?;
    app.delivery.poke();
    Ok(response::json(200, &WebhookView::new(id, &hook)))
}

/// `DELETE /api/v1/webhooks/{id}` → 204.
pub async fn delete(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let access = app.org(&req, Permission::WebhooksWrite).await?;
    let id = req.ulid("webhook")?;
    app.blocking(move |s| s.delete_webhook(id, &access.org_id)).await?;
    app.delivery.poke();
    Ok(response::empty(204))
}

/// `POST /api/v1/webhooks/{id}/rotate-secret` → 200 `{"webhook", "secret"}`.
pub async fn rotate_secret(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let access = app.org(&req, Permission::WebhooksWrite).await?;
    let id = req.ulid("webhook")?;
    let fresh = new_secret()?;
    let hook = app
        .blocking(move |s| {
            s.update_webhook(id, &access.org_id, |h| {
                let now = now_ms();
                h.previous = Some((h.secret, now + ROTATION_OVERLAP_MS));
                h.secret = fresh;
                h.updated_at = now;
                Ok(())
            })
        })
        .await?;
    Ok(response::json(200, &json!({"webhook": WebhookView::new(id, &hook), "secret": secret_text(&hook.secret)})))
}

/// One delivery attempt as `GET .../deliveries` shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AttemptView {
    event_id: String,
    attempt: u32,
    at: i64,
    status: Option<u16>,
    error: Option<String>,
    latency_ms: u32,
    /// At most 1 KiB of the answer, as text (lossy UTF-8).
    response: String,
}

/// `GET /api/v1/webhooks/{id}/deliveries`: every attempt, cursor pages in
/// the order they were made, newest last.
pub async fn deliveries(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let access = app.org(&req, Permission::WebhooksWrite).await?;
    let id = req.ulid("webhook")?;
    let mut q = req.query()?;
    let (limit, cursor) = q.page()?;
    q.finish()?;
    let scope = CursorScope { meta: app.store.meta(), list: ListKind::WebhookDeliveries, filters: format!("org={}&webhook={id}", access.org_id) };
    let after = cursor.map(|c| scope.decode_u128(&c)).transpose()?;
    let org = access.org_id.clone();
    let page = app.blocking(move |s| s.delivery_attempts(u128::from(id), &org, after, limit)).await?;
    let data: Vec<AttemptView> = page
        .items
        .into_iter()
        .map(|(_, l)| AttemptView {
            event_id: format!("evt_{}", Ulid::from(l.event)),
            attempt: l.number,
            at: l.attempt.at,
            status: l.attempt.status,
            error: l.attempt.error,
            latency_ms: l.attempt.latency_ms,
            response: String::from_utf8_lossy(&l.attempt.response).into_owned(),
        })
        .collect();
    let next = page.next_after.map(|e| scope.encode(&e.to_be_bytes()));
    Ok(response::json(200, &ListPage { data, next_cursor: next }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ReplayBody {
    since: i64,
    until: Option<i64>,
    only_failed: Option<bool>,
}

/// `POST /api/v1/webhooks/{id}/replay` `{"since", "until"?, "onlyFailed"?}`
/// → 202 `{"queued"}`: those events again, with the same ids.
pub async fn replay(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let access = app.org(&req, Permission::WebhooksWrite).await?;
    let id = req.ulid("webhook")?;
    let body: ReplayBody = req.json()?;
    if body.since < 0 {
        return Err(ApiError::invalid("since", "since must be a Unix time in milliseconds"));
    }
    if body.until.is_some_and(|u| u < body.since) {
        return Err(ApiError::invalid("until", "until must not be before since"));
    }
    let org = access.org_id.clone();
    let only_failed = body.only_failed.unwrap_or(false);
    let perms = access.permissions;
    let may_read = move |kind: &str| replay_may_read(perms, kind);
    let n = app
        .blocking(move |s| s.replay_deliveries(u128::from(id), &org, body.since, body.until, only_failed, &may_read))
        .await?;
    app.delivery.poke();
    Ok(response::json(202, &json!({"queued": n})))
}

/// Whether a caller with `perms` may have an event of `kind` replayed to
/// its webhook (CONTRACT §11 continued): `message.*` needs `messages:read`,
/// `session.*` `sessions:read`, the directory's (`contact.*`,
/// `presence.*`, `group.*`) `contacts:read`; a `webhook.test` always goes;
/// any other type needs both messages:read and sessions:read.
fn replay_may_read(perms: crate::auth::Permissions, kind: &str) -> bool {
    if kind == crate::store::webhook_records::WEBHOOK_TEST {
        true
    } else if kind.starts_with("message.") {
        perms.contains(Permission::MessagesRead)
    } else if kind.starts_with("session.") {
        perms.contains(Permission::SessionsRead)
    } else if kind.starts_with("contact.") || kind.starts_with("presence.") || kind.starts_with("group.") {
        perms.contains(Permission::ContactsRead)
    } else {
        perms.contains(Permission::MessagesRead) && perms.contains(Permission::SessionsRead)
    }
}

/// `POST /api/v1/webhooks/{id}/test` → 202 `{"eventId"}`: a `webhook.test`
/// event, delivered to this webhook only.
pub async fn test(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let access = app.org(&req, Permission::WebhooksWrite).await?;
    let id = req.ulid("webhook")?;
    let org = access.org_id.clone();
    let event = app.blocking(move |s| s.test_webhook(u128::from(id), &org, now_ms())).await?;
    app.delivery.poke();
    Ok(response::json(202, &json!({"eventId": format!("evt_{}", Ulid::from(event))})))
}
