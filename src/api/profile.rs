//! The number's own presence and profile (CONTRACT §12), and presence subscriptions.

use std::sync::Arc;

use crate::app::App;
use crate::http::response::Resp;
use crate::http::{ApiError, ErrorCode, Req};

fn todo() -> Result<Resp, ApiError> {
    Err(ApiError::new(ErrorCode::NotFound, "not built yet"))
}

/// `PUT /api/v1/sessions/{id}/presence` [messages:send].
pub async fn set_presence(_app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    todo()
}

/// `POST /api/v1/sessions/{id}/presence/subscribe` [contacts:read].
pub async fn subscribe_presence(_app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    todo()
}

/// `GET /api/v1/sessions/{id}/profile` [sessions:read].
pub async fn get(_app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    todo()
}

/// `PATCH /api/v1/sessions/{id}/profile` [sessions:write].
pub async fn update(_app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    todo()
}

/// `PUT /api/v1/sessions/{id}/profile/picture` [sessions:write].
pub async fn set_picture(_app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    todo()
}

/// `DELETE /api/v1/sessions/{id}/profile/picture` [sessions:write].
pub async fn delete_picture(_app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    todo()
}
