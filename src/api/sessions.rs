//! `/api/v1/sessions`: an organization's WhatsApp sessions.

use std::sync::Arc;

use bytes::Bytes;
use redb::ReadTransaction;
use serde::Deserialize;
use ulid::Ulid;

use super::cursor::{CursorScope, ListKind};
use super::page_cache::PageKey;
use super::{non_null, nullable};
use crate::app::App;
use crate::auth::{OrgAccess, Permission};
use crate::http::response::{self, Resp};
use crate::http::{json, ApiError, ErrorCode, Req};
use crate::store::records::{Session, SessionRef, SessionStatus};
use crate::store::sessions::scan_org;
use crate::store::{now_ms, StoreResult};

/// Rows a filtered page may read before it returns (with a cursor) anyway.
pub const SCAN_FACTOR: usize = 20;

/// Appends a session as the API shows it: exactly the seed's fields, in the
/// seed's (alphabetical) order. The one renderer of sessions, for single
/// objects and list pages alike.
pub fn write_session(out: &mut Vec<u8>, id: u128, s: &SessionRef) {
    let mut ulid = [0u8; ulid::ULID_LEN];
    out.extend_from_slice(b"{\"autoRead\":");
    json::bool(out, s.auto_read);
    out.extend_from_slice(b",\"createdAt\":");
    json::int(out, s.created_at);
    out.extend_from_slice(b",\"createdByUserId\":");
    json::bytes_as_string(out, s.created_by_user_id);
    out.extend_from_slice(b",\"gatewayId\":");
    json::bytes_as_string(out, s.gateway_id);
    out.extend_from_slice(b",\"id\":");
    json::string(out, Ulid::from(id).array_to_str(&mut ulid));
    out.extend_from_slice(b",\"isAdminSession\":");
    json::bool(out, s.is_admin_session);
    out.extend_from_slice(b",\"label\":");
    json::bytes_as_string(out, s.label);
    out.extend_from_slice(b",\"lastConnectedAt\":");
    json::opt_int(out, s.last_connected_at);
    // Only on a `failed` or `logged_out` session, saying why: the seed pins
    // the other fields exactly, so this one is never `null`, and a session
    // still retrying keeps the seed's shape (the log has each attempt).
    if let (Some(e), SessionStatus::Failed | SessionStatus::LoggedOut) = (s.last_error, s.status) {
        out.extend_from_slice(b",\"lastError\":");
        json::bytes_as_string(out, e);
    }
    out.extend_from_slice(b",\"organizationId\":");
    json::bytes_as_string(out, s.organization_id);
    out.extend_from_slice(b",\"phoneNumber\":");
    json::opt_bytes_as_string(out, s.phone_number);
    out.extend_from_slice(b",\"presenceTyping\":");
    json::bool(out, s.presence_typing);
    out.extend_from_slice(b",\"ratePerHour\":");
    json::int(out, s.rate_per_hour);
    out.extend_from_slice(b",\"ratePerMin\":");
    json::int(out, s.rate_per_min);
    out.extend_from_slice(b",\"status\":");
    json::string(out, s.status.as_str());
    out.extend_from_slice(b",\"updatedAt\":");
    json::int(out, s.updated_at);
    out.extend_from_slice(b",\"waJid\":");
    json::opt_bytes_as_string(out, s.wa_jid);
    out.extend_from_slice(b",\"waLid\":");
    json::opt_bytes_as_string(out, s.wa_lid);
    out.push(b'}');
}

/// One session as a JSON document.
pub fn session_json(id: Ulid, s: &Session) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    write_session(&mut out, u128::from(id), &s.as_ref());
    out
}

/// Reads one session of `org` (404 for another organization's). Inline,
/// not on the blocking pool: one row from redb's cached pages costs less
/// than the two thread switches of `spawn_blocking` (bench part M1).
pub async fn read_session(app: &App, id: Ulid, org: &str) -> Result<Session, ApiError> {
    Ok(app.store.get_session(id, Some(org))?)
}

/// A session response.
fn session_response(status: u16, id: Ulid, s: &Session) -> Resp {
    response::bytes(status, "application/json", session_json(id, s))
}

/// Answers a session-list page: from the page cache if nothing was written
/// since it was rendered, else rendered straight from the store into one
/// buffer, `{"data":[...],"nextCursor":...}`. `walk` feeds rows (from the
/// snapshot it is given) to the visitor and returns where the next page starts.
pub async fn list_page(
    app: &App,
    scope: &CursorScope<'_>,
    after: Option<u128>,
    limit: usize,
    keep: impl Fn(&SessionRef) -> bool + Send + 'static,
    walk: impl FnOnce(&ReadTransaction, &mut dyn FnMut(u128, &SessionRef) -> bool) -> StoreResult<Option<u128>>
        + Send
        + 'static,
) -> Result<Resp, ApiError> {
    let version = app.store.version();
    let key = PageKey { list: scope.list, filters: scope.filters.clone(), after, limit };
    if let Some(body) = app.pages.get(&key, version) {
        return Ok(response::bytes(200, "application/json", body));
    }
    // Rendered inline: a page is CPU work on redb's cached pages, and moving
    // it to the blocking pool (or block_in_place) measured 40% fewer
    // uncached pages per second (bench part A, page cache off: 0.50 vs 0.29).
    let txn = app.store.read()?;
    let mut out = Vec::with_capacity(64 + limit * 480);
    out.extend_from_slice(b"{\"data\":[");
    let mut first = true;
    let next = walk(&txn, &mut |id, s| {
        if !keep(s) {
            return false;
        }
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        write_session(&mut out, id, s);
        true
    })?;
    out.extend_from_slice(b"],\"nextCursor\":");
    match next {
        Some(k) => json::string(&mut out, &scope.encode(&k.to_be_bytes())),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
    let body = Bytes::from(out);
    app.pages.put(key, version, body.clone());
    Ok(response::bytes(200, "application/json", body))
}

/// Body of `POST /api/v1/sessions` and `POST /api/v1/admin/sessions`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateSession {
    pub organization_id: Option<String>,
    #[serde(default, deserialize_with = "non_null")]
    pub label: Option<String>,
    pub phone_number: Option<String>,
    #[serde(default, deserialize_with = "non_null")]
    pub auto_read: Option<bool>,
    #[serde(default, deserialize_with = "non_null")]
    pub presence_typing: Option<bool>,
    #[serde(default, deserialize_with = "non_null")]
    pub rate_per_min: Option<u32>,
    #[serde(default, deserialize_with = "non_null")]
    pub rate_per_hour: Option<u32>,
    /// Start the session right away (default false for now; true once the
    /// whatsapp engine ships).
    #[serde(default, deserialize_with = "non_null")]
    pub start: Option<bool>,
}

/// Body of `PATCH /api/v1/sessions/{id}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PatchSession {
    #[serde(default, deserialize_with = "non_null")]
    label: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    phone_number: Option<Option<String>>,
    #[serde(default, deserialize_with = "non_null")]
    auto_read: Option<bool>,
    #[serde(default, deserialize_with = "non_null")]
    presence_typing: Option<bool>,
    #[serde(default, deserialize_with = "non_null")]
    rate_per_min: Option<u32>,
    #[serde(default, deserialize_with = "non_null")]
    rate_per_hour: Option<u32>,
}

fn check_label(label: &str) -> Result<(), ApiError> {
    if label.chars().count() > 128 {
        return Err(ApiError::invalid("label", "label must be at most 128 characters"));
    }
    Ok(())
}

fn check_phone(phone: &str) -> Result<(), ApiError> {
    if !(6..=20).contains(&phone.len()) || !phone.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid("phoneNumber", "phoneNumber must be 6 to 20 digits"));
    }
    Ok(())
}

fn check_rate(field: &str, v: u32) -> Result<u32, ApiError> {
    if !(1..=100_000).contains(&v) {
        return Err(ApiError::invalid(field, format!("{field} must be between 1 and 100000")));
    }
    Ok(v)
}

/// Validates a create body into a new, stopped session.
pub fn new_session(
    body: CreateSession,
    organization_id: String,
    created_by_user_id: String,
    gateway_id: String,
    is_admin_session: bool,
) -> Result<Session, ApiError> {
    let label = body.label.unwrap_or_default();
    check_label(&label)?;
    if let Some(p) = &body.phone_number {
        check_phone(p)?;
    }
    let now = now_ms();
    Ok(Session {
        organization_id,
        created_by_user_id,
        gateway_id,
        label,
        phone_number: body.phone_number,
        status: SessionStatus::Stopped,
        auto_read: body.auto_read.unwrap_or(false),
        presence_typing: body.presence_typing.unwrap_or(true),
        rate_per_min: check_rate("ratePerMin", body.rate_per_min.unwrap_or(20))?,
        rate_per_hour: check_rate("ratePerHour", body.rate_per_hour.unwrap_or(600))?,
        is_admin_session,
        wa_jid: None,
        wa_lid: None,
        last_connected_at: None,
        desired_running: false,
        last_error: None,
        created_at: now,
        updated_at: now,
    })
}

/// Stores a new session (and starts it when asked) and answers 201 with it.
/// A start is refused (409, nothing created) in a suspended organization.
pub async fn insert(app: &App, session: Session, start: bool) -> Result<Resp, ApiError> {
    if start && app.store.is_suspended(&session.organization_id) {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the organization is suspended: create the session with \"start\": false, or reactivate the organization",
        ));
    }
    let id = crate::new_id();
    let stored = session.clone();
    app.blocking(move |s| s.create_session(id, &stored)).await?;
    let session = if start { app.engine.start(id).await? } else { session };
    let mut resp = session_response(201, id, &session);
    if let Ok(v) = format!("/api/v1/sessions/{id}").parse() {
        resp.headers_mut().insert("location", v);
    }
    Ok(resp)
}

/// Parses a `status` filter value.
pub fn parse_status(v: Option<String>) -> Result<Option<SessionStatus>, ApiError> {
    v.map(|s| {
        SessionStatus::parse(&s).ok_or_else(|| {
            ApiError::invalid("status", format!("unknown status {s:?}"))
                .detail("allowed", SessionStatus::ALL.map(SessionStatus::as_str).to_vec())
        })
    })
    .transpose()
}

/// `GET /api/v1/sessions` \[sessions:read\]: this organization's sessions, `status` filter.
pub async fn list(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let access = app.org(&req, Permission::SessionsRead).await?;
    let mut q = req.query()?;
    let (limit, cursor) = q.page()?;
    let status = parse_status(q.take("status"))?;
    q.finish()?;
    let scope = CursorScope {
        meta: app.store.meta(),
        list: ListKind::OrgSessions,
        filters: format!("org={}&status={}", access.org_id, status.map_or("", SessionStatus::as_str)),
    };
    let after = cursor.map(|c| scope.decode_u128(&c)).transpose()?;
    let org = access.org_id.clone();
    list_page(&app, &scope, after, limit, move |s| status.is_none_or(|st| s.status == st), move |txn, visit| {
        scan_org(txn, &org, after, limit, limit * SCAN_FACTOR, visit)
    })
    .await
}

/// `POST /api/v1/sessions` \[sessions:write\]: creates a session and starts it
/// (`start` defaults to true when the caller also holds `sessions:control`;
/// `"start": true` without it is 403; without it and without `start`, the
/// session is created stopped).
pub async fn create(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let access = app.org(&req, Permission::SessionsWrite).await?;
    let body: CreateSession = req.json()?;
    if body.organization_id.is_some() {
        return Err(ApiError::invalid(
            "organizationId",
            "organizationId comes from your credentials; only the admin API takes it",
        ));
    }
    let may_control = access.permissions.contains(Permission::SessionsControl);
    let start = match body.start {
        Some(true) if !may_control => {
            return Err(ApiError::new(ErrorCode::Forbidden, "missing permission sessions:control (needed for \"start\": true)"))
        }
        Some(s) => s,
        None => may_control,
    };
    let session = new_session(body, access.org_id, access.user_id, app.config.gateway_id.clone(), false)?;
    insert(&app, session, start).await
}

/// `GET /api/v1/sessions/{id}` \[sessions:read\].
pub async fn get(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let access = app.org(&req, Permission::SessionsRead).await?;
    let id = req.ulid("session")?;
    let session = read_session(&app, id, &access.org_id).await?;
    Ok(session_response(200, id, &session))
}

/// Refuses changes to an admin-created session unless the caller is a super_admin.
fn guard_admin_session(access: &OrgAccess, session: &Session) -> Result<(), ApiError> {
    if session.is_admin_session && !access.super_admin {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "this session was created by a platform admin; only a super_admin may change it",
        ));
    }
    Ok(())
}

/// `PATCH /api/v1/sessions/{id}` \[sessions:write\].
pub async fn update(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let access = app.org(&req, Permission::SessionsWrite).await?;
    let id = req.ulid("session")?;
    let patch: PatchSession = req.json()?;
    if let Some(l) = &patch.label {
        check_label(l)?;
    }
    if let Some(Some(p)) = &patch.phone_number {
        check_phone(p)?;
    }
    let rate_per_min = patch.rate_per_min.map(|v| check_rate("ratePerMin", v)).transpose()?;
    let rate_per_hour = patch.rate_per_hour.map(|v| check_rate("ratePerHour", v)).transpose()?;
    guard_admin_session(&access, &read_session(&app, id, &access.org_id).await?)?;
    let org = access.org_id.clone();
    let session = app
        .blocking(move |s| {
            s.update_session(id, Some(&org), |sess| {
                if let Some(l) = patch.label {
                    sess.label = l;
                }
                if let Some(p) = patch.phone_number {
                    sess.phone_number = p;
                }
                if let Some(v) = patch.auto_read {
                    sess.auto_read = v;
                }
                if let Some(v) = patch.presence_typing {
                    sess.presence_typing = v;
                }
                if let Some(v) = rate_per_min {
                    sess.rate_per_min = v;
                }
                if let Some(v) = rate_per_hour {
                    sess.rate_per_hour = v;
                }
                sess.updated_at = now_ms();
                Ok(())
            })
        })
        .await?;
    // New rates (or typing) apply to what is still queued: from the next send.
    app.messaging.wake(id);
    Ok(session_response(200, id, &session))
}

/// `DELETE /api/v1/sessions/{id}` \[sessions:write\] → 204.
pub async fn delete(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let access = app.org(&req, Permission::SessionsWrite).await?;
    let id = req.ulid("session")?;
    guard_admin_session(&access, &read_session(&app, id, &access.org_id).await?)?;
    // In the session's turn: closes the connection, then deletes the record.
    app.engine.delete(id, Some(access.org_id.clone())).await?;
    Ok(response::empty(204))
}
