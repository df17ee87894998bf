//! Groups (CONTRACT §13).

use std::sync::Arc;

use crate::app::App;
use crate::http::response::Resp;
use crate::http::{ApiError, ErrorCode, Req};

fn todo() -> Result<Resp, ApiError> {
    Err(ApiError::new(ErrorCode::NotFound, "not built yet"))
}

/// `GET /api/v1/sessions/{id}/groups` [contacts:read].
pub async fn list(_app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    todo()
}

/// `POST /api/v1/sessions/{id}/groups` [groups:write].
pub async fn create(_app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    todo()
}

/// `POST /api/v1/sessions/{id}/groups/join` [groups:write].
pub async fn join(_app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    todo()
}

/// `GET /api/v1/sessions/{id}/groups/invite/{code}` [contacts:read].
pub async fn invite_preview(_app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    todo()
}

/// `GET /api/v1/sessions/{id}/groups/{groupId}` [contacts:read].
pub async fn get(_app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    todo()
}

/// `PATCH /api/v1/sessions/{id}/groups/{groupId}` [groups:write].
pub async fn update(_app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    todo()
}

/// `DELETE /api/v1/sessions/{id}/groups/{groupId}` [groups:write].
pub async fn leave(_app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    todo()
}

/// `POST /api/v1/sessions/{id}/groups/{groupId}/participants` [groups:write].
pub async fn participants(_app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    todo()
}

/// `GET /api/v1/sessions/{id}/groups/{groupId}/invite` [groups:write].
pub async fn invite(_app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    todo()
}

/// `POST /api/v1/sessions/{id}/groups/{groupId}/invite/revoke` [groups:write].
pub async fn revoke_invite(_app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    todo()
}

/// `GET /api/v1/sessions/{id}/groups/{groupId}/requests` [groups:write].
pub async fn requests(_app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    todo()
}

/// `POST /api/v1/sessions/{id}/groups/{groupId}/requests` [groups:write].
pub async fn answer_requests(_app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    todo()
}

/// `PUT /api/v1/sessions/{id}/groups/{groupId}/picture` [groups:write].
pub async fn set_picture(_app: Arc<App>, _req: Req) -> Result<Resp, ApiError> {
    todo()
}
