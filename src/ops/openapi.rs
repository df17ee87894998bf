//! STUB
use std::sync::Arc;
use crate::app::App;
use crate::http::response::{self, Resp};
use crate::http::{ApiError, Req};
pub fn document() -> serde_json::Value { serde_json::json!({}) }
pub async fn serve(_app: Arc<App>, _req: Req) -> Result<Resp, ApiError> { Ok(response::json(200, &document())) }
