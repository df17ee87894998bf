//! The sim engine's group hook (CONTRACT §15): a change made by someone
//! else in a group (`sim/group-event`). The notification it makes is
//! applied like any of WhatsApp's, after the answer: poll for its effect.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use super::directory::group_address;
use super::lifecycle::{sim, sim_error};
use crate::app::App;
use crate::engine::sim::SimGroupAction;
use crate::engine::{EngineError, ParticipantAction};
use crate::http::response::{self, Resp};
use crate::http::{ApiError, ErrorCode, Req};

/// The body of `sim/group-event`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GroupEventBody {
    group_id: Option<String>,
    action: String,
    #[serde(default)]
    participants: Vec<String>,
    subject: Option<String>,
    by: String,
}

fn phone(s: &str, field: &str) -> Result<(), ApiError> {
    if (6..=20).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(ApiError::invalid(field, format!("{field} must be phone digits (6 to 20)")))
    }
}

/// `POST /api/v1/sessions/{id}/sim/group-event` `{"groupId", "action":
/// "add" | "remove" | "promote" | "demote" | "subject" | "created",
/// "participants"? (digits), "subject"?, "by"}` → 202 `{"groupId"}`.
pub async fn group_event(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let (sim, id) = sim(&app, &req).await?;
    let b: GroupEventBody = req.json()?;
    phone(&b.by, "by")?;
    for p in &b.participants {
        phone(p, "participants")?;
    }
    let group = b.group_id.as_deref().map(|g| group_address(g, "groupId")).transpose()?;
    let action = match (b.action.as_str(), b.subject) {
        ("created", _) => SimGroupAction::Created,
        ("subject", Some(s)) if !s.is_empty() && s.chars().count() <= 100 => SimGroupAction::Subject(s),
        ("subject", _) => return Err(ApiError::invalid("subject", "subject must be 1 to 100 characters")),
        (a, _) => match ParticipantAction::parse(a) {
            Some(p) if !b.participants.is_empty() => SimGroupAction::Participants(p),
            Some(_) => return Err(ApiError::invalid("participants", "participants must name someone")),
            None => return Err(ApiError::invalid("action", "action must be add, remove, promote, demote, subject or created")),
        },
    };
    if group.is_none() && !matches!(action, SimGroupAction::Created) {
        return Err(ApiError::invalid("groupId", "groupId is required"));
    }
    match sim.group_event(id, group.as_deref(), action, &b.participants, &b.by) {
        Ok(gid) => Ok(response::json(202, &json!({"groupId": gid}))),
        Err(EngineError::NotFound(m)) => Err(ApiError::new(ErrorCode::NotFound, m)),
        Err(e) => Err(sim_error(e)),
    }
}
