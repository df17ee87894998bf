//! `/api/v1/admin/sessions` and `/api/v1/admin/backup`: platform oversight,
//! for a super_admin login JWT only.

use std::sync::Arc;

use serde_json::json;

use super::cursor::{CursorScope, ListKind};
use super::sessions::{insert, list_page, new_session, parse_status, CreateSession, SCAN_FACTOR};
use super::valid_org_id;
use crate::app::App;
use crate::http::response::{self, Resp};
use crate::http::{ApiError, Req};
use crate::store::records::{SessionRef, SessionStatus};
use crate::store::sessions::{scan_all, scan_org};
use crate::store::{backup, now_ms};

/// `GET /api/v1/admin/sessions` (the seed): every organization's sessions in
/// one flat, id-ordered list. Filters `organizationId`, `status`, `gatewayId`.
/// Walks the global index; with `organizationId`, that organization's index.
pub async fn list_sessions(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    app.admin(&req).await?;
    let mut q = req.query()?;
    let (limit, cursor) = q.page()?;
    let org = q.take("organizationId");
    if let Some(o) = &org {
        if !valid_org_id(o) {
            return Err(ApiError::invalid("organizationId", "not a valid organization id"));
        }
    }
    let status = parse_status(q.take("status"))?;
    let gateway = q.take("gatewayId");
    q.finish()?;
    let scope = CursorScope {
        meta: app.store.meta(),
        list: ListKind::AdminSessions,
        filters: format!(
            "org={}&status={}&gateway={}",
            org.as_deref().unwrap_or(""),
            status.map_or("", SessionStatus::as_str),
            gateway.as_deref().unwrap_or("")
        ),
    };
    let after = cursor.map(|c| scope.decode_u128(&c)).transpose()?;
    let keep = move |s: &SessionRef| {
        status.is_none_or(|st| s.status == st) && gateway.as_deref().is_none_or(|g| s.gateway_id == g.as_bytes())
    };
    let budget = limit * SCAN_FACTOR;
    list_page(&app, &scope, after, limit, keep, move |txn, visit| match &org {
        Some(o) => scan_org(txn, o, after, limit, budget, visit),
        None => scan_all(txn, after, limit, budget, visit),
    })
    .await
}

/// `POST /api/v1/admin/sessions`: creates a session in any organization
/// (created on first sight), marked `isAdminSession: true`.
pub async fn create_session(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let user = app.admin(&req).await?;
    let mut body: CreateSession = req.json()?;
    let org = match body.organization_id.take() {
        Some(o) if valid_org_id(&o) => o,
        Some(_) => return Err(ApiError::invalid("organizationId", "not a valid organization id")),
        None => return Err(ApiError::invalid("organizationId", "organizationId is required")),
    };
    let start = body.start.unwrap_or(true);
    let session = new_session(body, org, user, app.config.gateway_id.clone(), true)?;
    insert(&app, session, start).await
}

/// `POST /api/v1/admin/backup`: a consistent snapshot into `data/backups/`,
/// taken from one read transaction while the gateway keeps serving.
pub async fn backup(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    app.admin(&req).await?;
    let dir = app.config.data_dir.join("backups");
    let created_at = now_ms();
    let name = format!("gateway-{}.redb", crate::new_id());
    let out = dir.join(&name);
    let report = app.blocking(move |s| backup::snapshot(&s.read()?, &out)).await?;
    Ok(response::json(
        201,
        &json!({
            "file": name,
            "path": report.path.display().to_string(),
            "sizeBytes": report.size_bytes,
            "sessions": report.sessions,
            "createdAt": created_at,
        }),
    ))
}
