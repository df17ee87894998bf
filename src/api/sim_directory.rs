//! The sim engine's directory hooks (CONTRACT §15): the simulated network's
//! directory and address book, and presence.

use std::sync::Arc;

use crate::app::App;
use crate::http::response::Resp;
use crate::http::{ApiError, ErrorCode, Req};

fn todo() -> Result<Resp, ApiError> {
    Err(ApiError::new(ErrorCode::NotFound, "not built yet"))
}

/// `POST /api/v1/sessions/{id}/sim/contacts`.
pub async fn contacts(_app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    todo()
}

/// `POST /api/v1/sessions/{id}/sim/presence`.
pub async fn presence(_app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    todo()
}
