//! `/api/v1/admin/organizations`: tenants, as a super_admin sees them.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::cursor::{CursorScope, ListKind};
use super::{non_null, nullable, valid_org_id, ListPage};
use crate::app::App;
use crate::http::response::{self, Resp};
use crate::http::{ApiError, Req};
use crate::store::now_ms;
use crate::store::records::{OrgStatus, Organization};

/// An organization as the API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgView<'a> {
    id: &'a str,
    name: &'a str,
    status: &'static str,
    max_sessions: Option<u32>,
    /// Cap on stored media and message bodies; null = `--org-storage-quota`.
    max_stored_bytes: Option<u64>,
    /// What it stores now (see `crate::store::usage`).
    stored_bytes: u64,
    created_at: i64,
    updated_at: i64,
}

impl<'a> OrgView<'a> {
    fn new(id: &'a str, o: &'a Organization, stored_bytes: u64) -> OrgView<'a> {
        OrgView {
            id,
            name: &o.name,
            status: o.status.as_str(),
            max_sessions: o.max_sessions,
            max_stored_bytes: o.max_stored_bytes,
            stored_bytes,
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateOrg {
    id: Option<String>,
    #[serde(default, deserialize_with = "non_null")]
    name: Option<String>,
    #[serde(default, deserialize_with = "non_null")]
    status: Option<String>,
    max_sessions: Option<u32>,
    max_stored_bytes: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PatchOrg {
    #[serde(default, deserialize_with = "non_null")]
    name: Option<String>,
    #[serde(default, deserialize_with = "non_null")]
    status: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    max_sessions: Option<Option<u32>>,
    #[serde(default, deserialize_with = "nullable")]
    max_stored_bytes: Option<Option<u64>>,
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() || name.chars().count() > 128 {
        return Err(ApiError::invalid("name", "name must be 1 to 128 characters"));
    }
    Ok(())
}

fn parse_status(s: Option<String>) -> Result<Option<OrgStatus>, ApiError> {
    s.map(|s| {
        OrgStatus::parse(&s)
            .ok_or_else(|| ApiError::invalid("status", "status must be active or suspended"))
    })
    .transpose()
}

/// `GET /api/v1/admin/organizations`.
pub async fn list(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    app.admin(&req).await?;
    let mut q = req.query()?;
    let (limit, cursor) = q.page()?;
    q.finish()?;
    let scope = CursorScope { meta: app.store.meta(), list: ListKind::AdminOrganizations, filters: String::new() };
    let after = cursor
        .map(|c| scope.decode(&c).map(|p| String::from_utf8_lossy(&p).into_owned()))
        .transpose()?;
    let page = app.blocking(move |s| s.list_orgs_with_usage(after.as_deref(), limit)).await?;
    let body = ListPage {
        data: page.items.iter().map(|(id, (o, n))| OrgView::new(id, o, *n)).collect(),
        next_cursor: page.next_after.map(|k| scope.encode(k.as_bytes())),
    };
    Ok(response::json(200, &body))
}

/// `POST /api/v1/admin/organizations`: `id` (optional, generated as
/// `org_<ULID>`), `name`, `status`, `maxSessions`, `maxStoredBytes`.
pub async fn create(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    app.admin(&req).await?;
    let body: CreateOrg = req.json()?;
    let id = match body.id {
        Some(id) if valid_org_id(&id) => id,
        Some(_) => return Err(ApiError::invalid("id", "id must be 1 to 128 characters of A-Z a-z 0-9 _ . : -")),
        None => format!("org_{}", crate::new_id()),
    };
    let name = body.name.unwrap_or_else(|| id.clone());
    check_name(&name)?;
    let now = now_ms();
    let org = Organization {
        name,
        status: parse_status(body.status)?.unwrap_or(OrgStatus::Active),
        max_sessions: body.max_sessions,
        created_at: now,
        updated_at: now,
        max_stored_bytes: body.max_stored_bytes,
    };
    let (stored, key) = (org.clone(), id.clone());
    app.blocking(move |s| s.create_org(&key, &stored)).await?;
    Ok(response::json(201, &OrgView::new(&id, &org, 0)))
}

/// `PATCH /api/v1/admin/organizations/{id}`: `name`, `status`, `maxSessions`
/// (null = unlimited), `maxStoredBytes` (null = `--org-storage-quota`).
///
/// `"status": "suspended"` also stops the organization's running sessions
/// (connections closed, `stopped`, still meant to run) before answering;
/// they stay stopped across gateway restarts. `"status": "active"` on a
/// suspended organization starts again its sessions meant to run (see
/// `engine::manager::suspension`).
pub async fn update(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    app.admin(&req).await?;
    let id = req.id.clone().filter(|i| valid_org_id(i)).ok_or_else(|| ApiError::not_found("organization"))?;
    let patch: PatchOrg = req.json()?;
    if let Some(n) = &patch.name {
        check_name(n)?;
    }
    let status = parse_status(patch.status)?;
    let key = id.clone();
    let ((org, stored), before) = app
        .blocking(move |s| {
            let mut before = None;
            let org = s.update_org(&key, |o| {
                before = Some(o.status);
                if let Some(n) = patch.name {
                    o.name = n;
                }
                if let Some(st) = status {
                    o.status = st;
                }
                if let Some(m) = patch.max_sessions {
                    o.max_sessions = m;
                }
                if let Some(m) = patch.max_stored_bytes {
                    o.max_stored_bytes = m;
                }
                o.updated_at = now_ms();
            })?;
            let stored = s.org_stored_bytes(&key)?;
            Ok(((org, stored), before))
        })
        .await?;
    match (before, status) {
        // Also when it already was: stops anything still running (idempotent).
        (_, Some(OrgStatus::Suspended)) => {
            let stopped = app.engine.suspend_org(&id).await?;
            tracing::info!(organization = %id, sessions = stopped, "organization suspended: sessions stopped");
        }
        (Some(OrgStatus::Suspended), Some(OrgStatus::Active)) => {
            let started = app.engine.resume_org(&id).await?;
            tracing::info!(organization = %id, sessions = started, "organization reactivated: sessions started");
        }
        _ => {}
    }
    Ok(response::json(200, &OrgView::new(&id, &org, stored)))
}
