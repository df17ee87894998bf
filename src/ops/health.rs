//! Liveness, readiness and the embedded issuer's JWKS.

use std::sync::Arc;

use serde_json::json;

use crate::app::App;
use crate::http::response::{self, Resp};
use crate::http::{ApiError, ErrorCode, Req};

/// `GET /healthz`: the process answers, and says whether the data file can
/// be written (`store.writable`): `ok`, or `degraded` (200) while writes are
/// refused — below `--min-free-disk`, or after a write met an I/O error
/// (`store.error` says which) until the store has reopened the file and
/// space is back. Reads keep working meanwhile, and writes resume by
/// themselves: the process never exits over a full disk.
pub async fn healthz(app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    let store = &app.store;
    let writable = store.writable();
    let failure = store.failure();
    let status = if writable { "ok" } else { "degraded" };
    let body = json!({
        "status": status,
        "store": {
            "writable": writable,
            "freeBytes": store.free_bytes(),
            "minFreeBytes": store.min_free_disk(),
            "error": failure,
        },
    });
    Ok(response::json(200, &body))
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
