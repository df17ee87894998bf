//! Contacts (CONTRACT §12): number checks, the stored directory, pictures, blocking.

use std::sync::Arc;

use crate::app::App;
use crate::http::response::Resp;
use crate::http::{ApiError, ErrorCode, Req};

fn todo() -> Result<Resp, ApiError> {
    Err(ApiError::new(ErrorCode::NotFound, "not built yet"))
}

/// `POST /api/v1/sessions/{id}/contacts/check` [contacts:read].
pub async fn check(_app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    todo()
}

/// `GET /api/v1/sessions/{id}/contacts` [contacts:read].
pub async fn list(_app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    todo()
}

/// `GET /api/v1/sessions/{id}/contacts/{contact}` [contacts:read].
pub async fn get(_app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    todo()
}

/// `GET /api/v1/sessions/{id}/contacts/{contact}/picture` [contacts:read].
pub async fn picture(_app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    todo()
}

/// `PUT /api/v1/sessions/{id}/contacts/{contact}/block` [chats:write].
pub async fn block(_app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    todo()
}

/// `DELETE /api/v1/sessions/{id}/contacts/{contact}/block` [chats:write].
pub async fn unblock(_app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    todo()
}
