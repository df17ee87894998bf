//! Session lifecycle over HTTP \[sessions:control\]: start, stop, restart,
//! logout, the QR code (JSON, or PNG with `Accept: image/png`), pairing codes;
//! the sim engine's phone controls; and the super_admin's start/stop of any
//! session. A request that does not fit the session's state is 409
//! `conflict` with the current status in `details`.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;
use ulid::Ulid;

use super::sessions::session_json;
use crate::app::App;
use crate::auth::Permission;
use crate::engine::manager::ManagerError;
use crate::engine::EngineError;
use crate::http::response::{self, Resp};
use crate::http::{ApiError, ErrorCode, Req};
use crate::store::records::Session;

impl From<ManagerError> for ApiError {
    fn from(e: ManagerError) -> Self {
        match e {
            ManagerError::Conflict(m, status) => ApiError::new(ErrorCode::Conflict, m).detail("status", status.as_str()),
            ManagerError::Engine(EngineError::Invalid(m)) => ApiError::new(ErrorCode::InvalidRequest, m),
            ManagerError::Engine(EngineError::State(m)) => ApiError::new(ErrorCode::Conflict, m),
            ManagerError::Engine(e) => ApiError::new(ErrorCode::Unavailable, format!("engine: {e}")),
            ManagerError::Store(e) => e.into(),
            ManagerError::ShuttingDown => ApiError::new(ErrorCode::Unavailable, "the gateway is shutting down"),
        }
    }
}

/// Clears the caller for `sessions:control` on a session of its organization.
async fn controlled(app: &App, req: &Req) -> Result<Ulid, ApiError> {
    let access = app.org(req, Permission::SessionsControl).await?;
    let id = req.ulid("session")?;
    super::sessions::read_session(app, id, &access.org_id).await?;
    Ok(id)
}

fn session(id: Ulid, s: &Session) -> Resp {
    response::bytes(200, "application/json", session_json(id, s))
}

/// `POST /api/v1/sessions/{id}/start`.
pub async fn start(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let id = controlled(&app, &req).await?;
    Ok(session(id, &app.engine.start(id).await?))
}

/// `POST /api/v1/sessions/{id}/stop`.
pub async fn stop(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let id = controlled(&app, &req).await?;
    Ok(session(id, &app.engine.stop(id).await?))
}

/// `POST /api/v1/sessions/{id}/restart`.
pub async fn restart(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let id = controlled(&app, &req).await?;
    Ok(session(id, &app.engine.restart(id).await?))
}

/// `POST /api/v1/sessions/{id}/logout`: unlinks the phone, wipes credentials.
pub async fn logout(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let id = controlled(&app, &req).await?;
    Ok(session(id, &app.engine.logout(id).await?))
}

/// Renders `value` as a QR code PNG (4-module quiet zone, 8 px modules).
pub fn qr_png(value: &str) -> Result<Vec<u8>, ApiError> {
    const SCALE: usize = 8;
    const QUIET: usize = 4;
    let code = qrcode::QrCode::new(value.as_bytes()).map_err(ApiError::internal)?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, c) in colors.iter().enumerate() {
        if *c == qrcode::Color::Dark {
            let (mx, my) = (i % modules + QUIET, i / modules + QUIET);
            for y in my * SCALE..(my + 1) * SCALE {
                pixels[y * side + mx * SCALE..y * side + (mx + 1) * SCALE].fill(0);
            }
        }
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, side as u32, side as u32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(ApiError::internal)?;
    writer.write_image_data(&pixels).map_err(ApiError::internal)?;
    writer.finish().map_err(ApiError::internal)?;
    Ok(out)
}

/// `GET /api/v1/sessions/{id}/qr`: `{"value", "expiresAt"}`, or a PNG.
pub async fn qr(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let id = controlled(&app, &req).await?;
    let (value, expires_at) = app.engine.qr(id).await?;
    let wants_png = req
        .headers
        .get(hyper::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.split(',').any(|t| t.trim().starts_with("image/png")));
    if wants_png {
        return Ok(response::bytes(200, "image/png", qr_png(&value)?));
    }
    Ok(response::json(200, &json!({"value": value, "expiresAt": expires_at})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PhoneBody {
    phone_number: String,
}

fn phone(req: &Req) -> Result<String, ApiError> {
    let body: PhoneBody = req.json()?;
    let p = body.phone_number;
    if !(6..=20).contains(&p.len()) || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid("phoneNumber", "phoneNumber must be 6 to 20 digits"));
    }
    Ok(p)
}

/// `POST /api/v1/sessions/{id}/pair-code` `{"phoneNumber"}` → `{"code": "ABCD-EFGH"}`.
pub async fn pair_code(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let id = controlled(&app, &req).await?;
    let phone = phone(&req)?;
    let code = app.engine.pair_code(id, &phone).await?;
    Ok(response::json(200, &json!({"code": code})))
}

/// The sim engine, or 404 when another engine runs.
pub(super) async fn sim(app: &App, req: &Req) -> Result<(crate::engine::sim::SimEngine, Ulid), ApiError> {
    let id = controlled(app, req).await?;
    let sim = app.sim.clone().ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such route (sim engine only)"))?;
    Ok((sim, id))
}

pub(super) fn sim_error(e: EngineError) -> ApiError {
    ApiError::new(ErrorCode::Conflict, e.to_string())
}

/// `POST /api/v1/sessions/{id}/sim/pair` `{"phoneNumber"}`: the phone scans the QR.
pub async fn sim_pair(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let (sim, id) = sim(&app, &req).await?;
    let (jid, lid) = sim.pair(id, &phone(&req)?).map_err(sim_error)?;
    Ok(response::json(200, &json!({"waJid": jid, "waLid": lid})))
}

/// `POST /api/v1/sessions/{id}/sim/disconnect`: the network drops.
pub async fn sim_disconnect(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let (sim, id) = sim(&app, &req).await?;
    sim.disconnect(id).map_err(sim_error)?;
    Ok(response::empty(204))
}

/// `POST /api/v1/sessions/{id}/sim/logout`: the phone unlinks the device.
pub async fn sim_logout(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let (sim, id) = sim(&app, &req).await?;
    sim.logout(id).map_err(sim_error)?;
    Ok(response::empty(204))
}

/// `POST /api/v1/admin/sessions/{id}/start` (super_admin): any organization's session.
pub async fn admin_start(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    app.admin(&req).await?;
    let id = req.ulid("session")?;
    Ok(session(id, &app.engine.start(id).await?))
}

/// `POST /api/v1/admin/sessions/{id}/stop` (super_admin).
pub async fn admin_stop(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    app.admin(&req).await?;
    let id = req.ulid("session")?;
    Ok(session(id, &app.engine.stop(id).await?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn qr_png_is_a_png_of_the_right_size() {
        let png = super::qr_png("sim://01ARZ3NDEKTSV4RRFFQ69G5FAV/1").expect("png");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let (w, h) = (u32::from_be_bytes([png[16], png[17], png[18], png[19]]), u32::from_be_bytes([png[20], png[21], png[22], png[23]]));
        assert_eq!(w, h);
        assert_eq!(w % 8, 0);
    }
}
