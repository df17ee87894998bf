//! `/api/v1/api-keys`: keys for scripts, managed by people (login JWT with
//! `api_keys:write`). The secret is returned once, at creation.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use ulid::Ulid;

use super::cursor::{CursorScope, ListKind};
use super::ListPage;
use crate::app::App;
use crate::auth::{api_key, Permission, Permissions};
use crate::http::response::{self, Resp};
use crate::http::{ApiError, ErrorCode, Req};
use crate::store::now_ms;
use crate::store::records::ApiKey;

/// An api-key as the API shows it (never the secret, never the hash).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyView<'a> {
    id: String,
    organization_id: &'a str,
    name: &'a str,
    prefix: &'a str,
    permissions: Vec<&'static str>,
    created_by_user_id: &'a str,
    created_at: i64,
    last_used_at: Option<i64>,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl<'a> ApiKeyView<'a> {
    fn new(id: Ulid, k: &'a ApiKey) -> ApiKeyView<'a> {
        ApiKeyView {
            id: id.to_string(),
            organization_id: &k.organization_id,
            name: &k.name,
            prefix: &k.prefix,
            permissions: Permissions::from_bits(k.permissions).names(),
            created_by_user_id: &k.created_by_user_id,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            expires_at: k.expires_at,
            revoked_at: k.revoked_at,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateKey {
    name: String,
    /// Defaults to every permission an api-key may carry.
    permissions: Option<Vec<String>>,
    /// Unix milliseconds; must be in the future.
    expires_at: Option<i64>,
}

/// `POST /api/v1/api-keys` [api_keys:write, login JWT only] → 201 `{"apiKey", "key"}`.
pub async fn create(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let access = app.org(&req, Permission::ApiKeysWrite).await?;
    if access.via_api_key {
        return Err(ApiError::new(ErrorCode::Forbidden, "api-keys can only be created with a login token"));
    }
    let body: CreateKey = req.json()?;
    if body.name.trim().is_empty() || body.name.chars().count() > 128 {
        return Err(ApiError::invalid("name", "name must be 1 to 128 characters"));
    }
    let permissions = match body.permissions {
        None => Permissions::api_key_max(),
        Some(list) => {
            let mut set = Vec::new();
            for name in &list {
                match Permission::parse(name) {
                    Some(Permission::ApiKeysWrite) => {
                        return Err(ApiError::invalid("permissions", "an api-key cannot carry api_keys:write"))
                    }
                    Some(p) => set.push(p),
                    None => {
                        return Err(ApiError::invalid("permissions", format!("unknown permission {name:?}"))
                            .detail("allowed", Permissions::api_key_max().names()))
                    }
                }
            }
            set.into_iter().collect()
        }
    };
    let now = now_ms();
    if body.expires_at.is_some_and(|t| t <= now) {
        return Err(ApiError::invalid("expiresAt", "expiresAt must be in the future (Unix milliseconds)"));
    }
    let secret = api_key::generate().map_err(|_| ApiError::internal("no OS randomness"))?;
    let record = ApiKey {
        organization_id: access.org_id,
        name: body.name,
        prefix: secret.prefix.clone(),
        permissions: permissions.bits(),
        hash: secret.hash,
        created_by_user_id: access.user_id,
        created_at: now,
        last_used_at: None,
        expires_at: body.expires_at,
        revoked_at: None,
    };
    let id = crate::new_id();
    let stored = record.clone();
    app.blocking(move |s| s.create_api_key(id, &stored)).await?;
    Ok(response::json(201, &json!({"apiKey": ApiKeyView::new(id, &record), "key": secret.key})))
}

/// `GET /api/v1/api-keys` \[api_keys:write\]: this organization's keys, revoked ones included.
pub async fn list(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let access = app.org(&req, Permission::ApiKeysWrite).await?;
    let mut q = req.query()?;
    let (limit, cursor) = q.page()?;
    q.finish()?;
    let scope = CursorScope {
        meta: app.store.meta(),
        list: ListKind::ApiKeys,
        filters: format!("org={}", access.org_id),
    };
    let after = cursor.map(|c| scope.decode_u128(&c)).transpose()?;
    let org = access.org_id.clone();
    let page = app.blocking(move |s| s.list_api_keys(&org, after, limit)).await?;
    let body = ListPage {
        data: page.items.iter().map(|(id, k)| ApiKeyView::new(Ulid::from(*id), k)).collect(),
        next_cursor: page.next_after.map(|k| scope.encode(&k.to_be_bytes())),
    };
    Ok(response::json(200, &body))
}

/// `DELETE /api/v1/api-keys/{id}` \[api_keys:write\]: revokes; idempotent → 204.
pub async fn revoke(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let access = app.org(&req, Permission::ApiKeysWrite).await?;
    let id = req.ulid("api-key")?;
    let org = access.org_id.clone();
    app.blocking(move |s| {
        s.update_api_key(id, &org, |k| {
            if k.revoked_at.is_none() {
                k.revoked_at = Some(now_ms());
            }
        })
    })
    .await?;
    Ok(response::empty(204))
}
