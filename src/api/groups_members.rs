//! Groups (CONTRACT §13), continued: participants, the invite link, joining
//! by code, membership requests, the group's picture.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};

use super::directory::{engine_error, group_param, path_segment, person_json, spend_lookups, Target};
use super::groups::{commit_notice, me, outcomes_json, people, stored};
use crate::app::App;
use crate::auth::Permission;
use crate::directory::groups_json::{group_json, record_of};
use crate::engine::directory::{ParticipantStatus, PersonIds};
use crate::engine::{GroupNotice, JoinOutcome, ParticipantAction, ParticipantOutcome};
use crate::http::response::{self, Resp};
use crate::http::{ApiError, ErrorCode, Req};
use crate::store::now_ms;

/// Where WhatsApp's invite links point.
pub const INVITE_PREFIX: &str = "https://chat.whatsapp.com/";

/// The body of `POST groups/{groupId}/participants`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ParticipantsBody {
    action: String,
    participants: Vec<String>,
    #[serde(default)]
    invite: bool,
}

/// The people an answer says were changed (`ok`), for the stored group.
fn changed(outcomes: &[ParticipantOutcome]) -> Vec<PersonIds> {
    outcomes
        .iter()
        .filter(|o| o.status == ParticipantStatus::Ok)
        .map(|o| o.person.clone().unwrap_or_else(|| PersonIds::from_address(&o.asked)))
        .collect()
}

/// `POST .../groups/{groupId}/participants` [groups:write] → 200 `{"data"}`.
pub async fn participants(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let target = Target::of(&app, &req, Permission::GroupsWrite).await?;
    let gid = group_param(&req)?;
    let b: ParticipantsBody = req.json()?;
    let action = ParticipantAction::parse(&b.action)
        .ok_or_else(|| ApiError::invalid("action", "action must be add, remove, promote or demote"))?;
    let jids = people(&b.participants)?;
    stored(&app, &target, &gid).await?;
    let conn = target.connection(&app)?;
    if action == ParticipantAction::Add {
        spend_lookups(&app, &target, jids.len() as u32).await?;
    }
    let outcomes = conn.group_participants(&gid, action, &jids, b.invite).await.map_err(engine_error)?;
    let done = changed(&outcomes);
    if !done.is_empty() {
        let notice = GroupNotice::Participants { group_id: gid.clone(), action, participants: done, by: me(&target) };
        commit_notice(&app, &target, notice).await?;
    }
    Ok(response::json(200, &json!({"data": outcomes_json(&b.participants, &jids, &outcomes)})))
}

fn invite_json(code: &str) -> Value {
    json!({"code": code, "link": format!("{INVITE_PREFIX}{code}")})
}

/// `GET .../groups/{groupId}/invite` [groups:write] → `{"code", "link"}`.
pub async fn invite(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    invite_code(app, req, false).await
}

/// `POST .../groups/{groupId}/invite/revoke` [groups:write] → a new `{"code", "link"}`.
pub async fn revoke_invite(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    invite_code(app, req, true).await
}

async fn invite_code(app: Arc<App>, req: Req, revoke: bool) -> Result<Resp, ApiError> {
    let target = Target::of(&app, &req, Permission::GroupsWrite).await?;
    let gid = group_param(&req)?;
    stored(&app, &target, &gid).await?;
    let conn = target.connection(&app)?;
    let code = conn.group_invite(&gid, revoke).await.map_err(engine_error)?;
    Ok(response::json(200, &invite_json(&code)))
}

/// An invite code as the API takes one: 16 to 32 letters and digits.
fn check_code(code: &str, field: &str) -> Result<String, ApiError> {
    if (16..=32).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(code.to_string())
    } else {
        Err(ApiError::invalid(field, format!("{field} is not a WhatsApp invite code (16 to 32 letters and digits)")))
    }
}

/// The body of `POST groups/join`: exactly one of the two.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct JoinBody {
    code: Option<String>,
    link: Option<String>,
}

/// `POST /api/v1/sessions/{id}/groups/join` [groups:write] `{"code"}` or
/// `{"link"}` → 200 Group, or 202 `{"status": "requested"}`.
pub async fn join(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let target = Target::of(&app, &req, Permission::GroupsWrite).await?;
    let b: JoinBody = req.json()?;
    let code = match (b.code, b.link) {
        (Some(c), None) => check_code(&c, "code")?,
        (None, Some(l)) => {
            let c = l.strip_prefix(INVITE_PREFIX).ok_or_else(|| ApiError::invalid("link", format!("link must be {INVITE_PREFIX}<code>")))?;
            check_code(c, "link")?
        }
        _ => return Err(ApiError::invalid("code", "give exactly one of code and link")),
    };
    let conn = target.connection(&app)?;
    match conn.group_join(&code).await.map_err(engine_error)? {
        JoinOutcome::Joined(info) => {
            let gid = info.id.clone();
            commit_notice(&app, &target, GroupNotice::Joined { group: info, by: me(&target) }).await?;
            Ok(response::json(200, &stored(&app, &target, &gid).await?))
        }
        JoinOutcome::Requested { .. } => Ok(response::json(202, &json!({"status": "requested"}))),
    }
}

/// `GET .../groups/invite/{code}` [contacts:read] → the group's preview
/// (Group-shaped, as far as WhatsApp tells before joining).
pub async fn invite_preview(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let target = Target::of(&app, &req, Permission::ContactsRead).await?;
    let raw = req.sub_id.as_deref().and_then(path_segment).ok_or_else(|| ApiError::invalid("code", "code is not a valid path segment"))?;
    let code = check_code(&raw, "code")?;
    let conn = target.connection(&app)?;
    let info = conn.group_invite_preview(&code).await.map_err(engine_error)?;
    Ok(response::json(200, &group_json(&info.id, &record_of(&info, now_ms()))))
}

/// `GET .../groups/{groupId}/requests` [groups:write] → `{"data": [{"person", "requestedAt"}]}`.
pub async fn requests(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let target = Target::of(&app, &req, Permission::GroupsWrite).await?;
    let gid = group_param(&req)?;
    stored(&app, &target, &gid).await?;
    let conn = target.connection(&app)?;
    let list = conn.group_requests(&gid).await.map_err(engine_error)?;
    let data: Vec<Value> = list
        .iter()
        .map(|r| json!({"person": person_json(r.person.jid.as_deref(), r.person.lid.as_deref()), "requestedAt": r.requested_at}))
        .collect();
    Ok(response::json(200, &json!({"data": data})))
}

/// The body of `POST groups/{groupId}/requests`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RequestsBody {
    action: String,
    participants: Vec<String>,
}

/// `POST .../groups/{groupId}/requests` [groups:write] `{"action":
/// "approve" | "reject", "participants"}` → 200 `{"data"}` (as participants).
pub async fn answer_requests(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let target = Target::of(&app, &req, Permission::GroupsWrite).await?;
    let gid = group_param(&req)?;
    let b: RequestsBody = req.json()?;
    let approve = match b.action.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return Err(ApiError::invalid("action", "action must be approve or reject")),
    };
    let jids = people(&b.participants)?;
    stored(&app, &target, &gid).await?;
    let conn = target.connection(&app)?;
    let outcomes = conn.group_requests_action(&gid, approve, &jids).await.map_err(engine_error)?;
    let done = changed(&outcomes);
    if approve && !done.is_empty() {
        let notice = GroupNotice::Participants { group_id: gid.clone(), action: ParticipantAction::Add, participants: done, by: me(&target) };
        commit_notice(&app, &target, notice).await?;
    }
    Ok(response::json(200, &json!({"data": outcomes_json(&b.participants, &jids, &outcomes)})))
}

/// Whether `body` is the image its content type says (JPEG or PNG magic).
fn image_matches(content_type: &str, body: &[u8]) -> bool {
    match content_type {
        "image/jpeg" => body.starts_with(&[0xFF, 0xD8, 0xFF]),
        "image/png" => body.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]),
        _ => false,
    }
}

/// `PUT .../groups/{groupId}/picture` [groups:write]: the raw image
/// (`image/jpeg` or `image/png`, ≤ 5 MiB) → 200 Group.
pub async fn set_picture(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let target = Target::of(&app, &req, Permission::GroupsWrite).await?;
    let gid = group_param(&req)?;
    let ct = req
        .headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default();
    if ct != "image/jpeg" && ct != "image/png" {
        return Err(ApiError::new(ErrorCode::UnsupportedMediaType, "the picture must be image/jpeg or image/png"));
    }
    if req.body.is_empty() {
        return Err(ApiError::invalid("body", "the picture is empty"));
    }
    if !image_matches(&ct, &req.body) {
        return Err(ApiError::invalid("body", format!("the body is not a {ct} image")));
    }
    let group = stored(&app, &target, &gid).await?;
    let conn = target.connection(&app)?;
    conn.set_picture(Some(&gid), Some(req.body.to_vec())).await.map_err(engine_error)?;
    Ok(response::json(200, &group))
}
