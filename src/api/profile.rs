//! The number's own presence and profile (CONTRACT §12), and presence subscriptions.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};

use super::directory::{engine_error, person_address, person_json, Target};
use crate::app::App;
use crate::auth::Permission;
use crate::http::response::{self, Resp};
use crate::http::{ApiError, ErrorCode, Req};
use crate::store::contact_records::Profile;
use crate::store::contacts as stored;
use crate::store::now_ms;

/// Longest push name WhatsApp takes.
pub const MAX_NAME_CHARS: usize = 25;
/// Longest about text WhatsApp takes.
pub const MAX_ABOUT_CHARS: usize = 139;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PresenceBody {
    status: String,
}

/// `PUT /api/v1/sessions/{id}/presence` [messages:send] `{"status":
/// "available" | "unavailable"}` → 200 `{"status"}`.
pub async fn set_presence(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let target = Target::of(&app, &req, Permission::MessagesSend).await?;
    let b: PresenceBody = req.json()?;
    let available = match b.status.as_str() {
        "available" => true,
        "unavailable" => false,
        _ => return Err(ApiError::invalid("status", "status must be available or unavailable")),
    };
    let conn = target.connection(&app)?;
    conn.set_presence(available).await.map_err(engine_error)?;
    Ok(response::json(200, &json!({"status": b.status})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscribeBody {
    contact: String,
}

/// `POST /api/v1/sessions/{id}/presence/subscribe` [contacts:read]
/// `{"contact"}` → 202 `{"contact": Person}`; the contact's updates then
/// arrive as `presence.update` events.
pub async fn subscribe_presence(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let target = Target::of(&app, &req, Permission::ContactsRead).await?;
    let b: SubscribeBody = req.json()?;
    let address = person_address(&b.contact, "contact")?;
    let conn = target.connection(&app)?;
    conn.subscribe_presence(&address).await.map_err(engine_error)?;
    let person = if address.ends_with("@lid") { person_json(None, Some(&address)) } else { person_json(Some(&address), None) };
    Ok(response::json(202, &json!({"contact": person})))
}

fn profile_json(p: &Profile) -> Value {
    json!({"name": p.name, "about": p.about})
}

async fn read_profile(app: &App, target: &Target) -> Result<Profile, ApiError> {
    let key = target.key();
    Ok(app.blocking(move |s| stored::profile(&s.read()?, key)).await?.unwrap_or_default())
}

/// Stores `f`'s change to the session's profile; returns it.
async fn change_profile(app: &App, target: &Target, f: impl FnOnce(&mut Profile) + Send + 'static) -> Result<Profile, ApiError> {
    let key = target.key();
    let p = app
        .committer
        .run(move |txn| {
            let mut p = stored::profile_for_write(txn, key)?.unwrap_or_default();
            f(&mut p);
            p.updated_at = now_ms();
            stored::put_profile(txn, key, &p)?;
            Ok(p)
        })
        .await?;
    Ok(p)
}

/// `GET /api/v1/sessions/{id}/profile` [sessions:read] → `{"name",
/// "about"}` as stored (also while the session is not working).
pub async fn get(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let target = Target::of(&app, &req, Permission::SessionsRead).await?;
    Ok(response::json(200, &profile_json(&read_profile(&app, &target).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileBody {
    name: Option<String>,
    about: Option<String>,
}

/// `PATCH /api/v1/sessions/{id}/profile` [sessions:write] `{"name"?,
/// "about"?}`: pushed to WhatsApp, then stored → 200 the profile.
pub async fn update(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let target = Target::of(&app, &req, Permission::SessionsWrite).await?;
    let b: ProfileBody = req.json()?;
    if let Some(n) = &b.name {
        if n.trim().is_empty() || n.chars().count() > MAX_NAME_CHARS {
            return Err(ApiError::invalid("name", format!("name is 1 to {MAX_NAME_CHARS} characters")));
        }
    }
    if b.about.as_ref().is_some_and(|a| a.chars().count() > MAX_ABOUT_CHARS) {
        return Err(ApiError::invalid("about", format!("about is at most {MAX_ABOUT_CHARS} characters")));
    }
    if b.name.is_none() && b.about.is_none() {
        return Err(ApiError::invalid("name", "give name, about or both"));
    }
    let conn = target.connection(&app)?;
    if let Some(n) = &b.name {
        conn.set_push_name(n).await.map_err(engine_error)?;
    }
    if let Some(a) = &b.about {
        conn.set_about(a).await.map_err(engine_error)?;
    }
    let p = change_profile(&app, &target, move |p| {
        if b.name.is_some() {
            p.name = b.name;
        }
        if b.about.is_some() {
            p.about = b.about;
        }
    })
    .await?;
    Ok(response::json(200, &profile_json(&p)))
}

/// Which image a body is, by its magic bytes (and, for PNG, its header).
fn image_ok(content_type: &str, body: &[u8]) -> bool {
    match content_type {
        "image/jpeg" => body.len() > 4 && body.starts_with(&[0xFF, 0xD8, 0xFF]),
        "image/png" => {
            body.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A])
                && png::Decoder::new(std::io::Cursor::new(body)).read_info().is_ok()
        }
        _ => false,
    }
}

/// `PUT /api/v1/sessions/{id}/profile/picture` [sessions:write]: the body
/// is the image (`image/jpeg` or `image/png`, ≤ 5 MiB) → 200 the profile.
pub async fn set_picture(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let target = Target::of(&app, &req, Permission::SessionsWrite).await?;
    let ct = req
        .headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if ct != "image/jpeg" && ct != "image/png" {
        return Err(ApiError::new(ErrorCode::UnsupportedMediaType, "the picture must be image/jpeg or image/png"));
    }
    if !image_ok(&ct, &req.body) {
        return Err(ApiError::invalid("body", format!("the body is not a {ct} image")));
    }
    let conn = target.connection(&app)?;
    conn.set_picture(None, Some(req.body.to_vec())).await.map_err(engine_error)?;
    let p = change_profile(&app, &target, |p| p.has_picture = true).await?;
    Ok(response::json(200, &profile_json(&p)))
}

/// `DELETE /api/v1/sessions/{id}/profile/picture` [sessions:write] → 200 the profile.
pub async fn delete_picture(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let target = Target::of(&app, &req, Permission::SessionsWrite).await?;
    let conn = target.connection(&app)?;
    conn.set_picture(None, None).await.map_err(engine_error)?;
    let p = change_profile(&app, &target, |p| p.has_picture = false).await?;
    Ok(response::json(200, &profile_json(&p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_by_magic() {
        assert!(image_ok("image/jpeg", crate::engine::sim::SIM_JPEG));
        assert!(!image_ok("image/jpeg", b"GIF89a..."));
        assert!(!image_ok("image/png", b"\x89PNG\r\n\x1a\nbroken"));
        assert!(!image_ok("image/gif", b"GIF89a"));
    }
}
