//! The sim engine's group hook (CONTRACT §15): a change made by someone
//! else in a group (`sim/group-event`).

use std::sync::Arc;

use crate::app::App;
use crate::http::response::Resp;
use crate::http::{ApiError, ErrorCode, Req};

/// `POST /api/v1/sessions/{id}/sim/group-event`.
pub async fn group_event(_app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    Err(ApiError::new(ErrorCode::NotFound, "not built yet"))
}
