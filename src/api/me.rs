//! `GET /api/v1/me`: who the token says the caller is.

use std::sync::Arc;

use serde_json::json;

use crate::app::App;
use crate::auth::Principal;
use crate::http::response::{self, Resp};
use crate::http::{ApiError, Req};

/// Kind, user id, organization, role or permissions, platform role.
pub async fn me(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let p = app.principal(&req).await?;
    app.auth.check_active(&p)?;
    let perms = p.permissions().names();
    let body = match &p {
        Principal::User { user_id, org_id, role, super_admin } => json!({
            "kind": "user",
            "userId": user_id,
            "organizationId": org_id,
            "role": role.map(|r| r.as_str()),
            "platformRole": super_admin.then_some("super_admin"),
            "permissions": perms,
        }),
        Principal::ApiKey { key_id, org_id, created_by, .. } => json!({
            "kind": "api_key",
            "apiKeyId": key_id.to_string(),
            "userId": created_by,
            "organizationId": org_id,
            "role": null,
            "platformRole": null,
            "permissions": perms,
        }),
    };
    Ok(response::json(200, &body))
}
