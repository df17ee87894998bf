//! Liveness, readiness and the embedded issuer's JWKS.

use std::sync::Arc;

use serde_json::json;

use crate::app::App;
use crate::http::response::{self, Resp};
use crate::http::{ApiError, ErrorCode, Req};

/// `GET /healthz`: the process answers.
pub async fn healthz(_app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    Ok(response::json(200, &json!({"status": "ok"})))
}

/// `GET /readyz`: the store is readable and login keys are loaded.
pub async fn readyz(app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    let store_ok = app.store.read().is_ok();
    let keys = app.auth.verifier().source().current().map_or(0, |k| k.len());
    if store_ok && keys > 0 {
        return Ok(response::json(200, &json!({"status": "ready", "store": "ok", "jwksKeys": keys})));
    }
    let why = if store_ok { "no login keys loaded (JWKS unreachable?)" } else { "data file not readable" };
    Err(ApiError::new(ErrorCode::Unavailable, why)
        .detail("store", if store_ok { "ok" } else { "error" })
        .detail("jwksKeys", keys))
}

/// `GET /.well-known/jwks.json`: the embedded issuer's public key (404 when a
/// frontend's JWKS is used instead).
pub async fn jwks(app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    match &app.issuer {
        Some(issuer) => Ok(response::json(200, &issuer.jwks_json())),
        None => Err(ApiError::new(ErrorCode::NotFound, "the embedded issuer is off (--jwks-url is set)")),
    }
}
