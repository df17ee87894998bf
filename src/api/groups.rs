//! Groups (CONTRACT §13): the stored groups (list, read; `?refresh=true`
//! asks WhatsApp), creating one, its settings, leaving. Participants,
//! invites, joining, requests and the picture are in [`super::groups_members`].
//!
//! Every change is asked of WhatsApp first; what it accepted is applied to
//! the stored group at once, with its `group.*` event, through the same
//! idempotent apply as WhatsApp's notifications
//! ([`crate::directory::groups::apply`]), so the notification of the same
//! change, when it comes, writes nothing twice. Operations on a group act on
//! groups the file knows: an unknown group is 404 before the network is
//! asked (`?refresh=true` on a read learns one).

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};

use super::cursor::{CursorScope, ListKind};
use super::directory::{engine_error, group_param, person_address, person_json, spend_lookups, Target};
use crate::app::App;
use crate::auth::Permission;
use crate::directory::groups_json::group_json;
use crate::engine::directory::ParticipantOutcome;
use crate::engine::{GroupChanges, GroupNotice};
use crate::http::response::{self, Resp};
use crate::http::{ApiError, Req};
use crate::store::now_ms;

pub use super::groups_members::{answer_requests, invite, invite_preview, join, participants, requests, revoke_invite, set_picture};

/// At most this many participants in one request (CONTRACT §13).
pub const MAX_PARTICIPANTS: usize = 256;

/// Applies a change WhatsApp accepted (or told) to the stored group, with
/// its event, in one transaction.
pub(super) async fn commit_notice(app: &App, target: &Target, notice: GroupNotice) -> Result<(), ApiError> {
    let (key, session) = (target.key(), target.session.clone());
    app.blocking(move |s| {
        let txn = s.write()?;
        crate::directory::groups::apply(&txn, key, &session, notice, now_ms())?;
        s.commit(txn)
    })
    .await
}

/// The stored group as the API shows it (404 when the file does not know it).
pub(super) async fn stored(app: &App, target: &Target, gid: &str) -> Result<Value, ApiError> {
    let (key, id) = (target.key(), gid.to_string());
    let g = app.blocking(move |s| s.group(key, &id)).await?;
    Ok(group_json(gid, &g))
}

/// The session's own JID (the `by` of its own changes).
pub(super) fn me(target: &Target) -> Option<String> {
    target.session.wa_jid.clone().or_else(|| target.session.wa_lid.clone())
}

/// `participants` of a body: 1..=256 people, each a person's address.
pub(super) fn people(list: &[String]) -> Result<Vec<String>, ApiError> {
    if list.is_empty() || list.len() > MAX_PARTICIPANTS {
        return Err(ApiError::invalid("participants", format!("participants must hold 1 to {MAX_PARTICIPANTS} contacts")));
    }
    list.iter().map(|c| person_address(c, "participants")).collect()
}

/// One participant's result (`{"contact", "person", "status", "code"?}`),
/// for each contact as given, in the order given.
pub(super) fn outcomes_json(given: &[String], jids: &[String], outcomes: &[ParticipantOutcome]) -> Vec<Value> {
    given
        .iter()
        .zip(jids)
        .enumerate()
        .map(|(i, (contact, jid))| {
            let o = outcomes.iter().find(|o| &o.asked == jid).or_else(|| outcomes.get(i));
            let mut v = json!({"contact": contact, "person": Value::Null, "status": "failed"});
            if let Some(o) = o {
                v["person"] = o.person.as_ref().map_or(Value::Null, |p| person_json(p.jid.as_deref(), p.lid.as_deref()));
                v["status"] = json!(o.status.as_str());
                if let Some(c) = &o.code {
                    v["code"] = json!(c);
                }
            }
            v
        })
        .collect()
}

/// `GET /api/v1/sessions/{id}/groups` [contacts:read].
pub async fn list(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let target = Target::of(&app, &req, Permission::ContactsRead).await?;
    let mut q = req.query()?;
    let (limit, cursor) = q.page()?;
    q.finish()?;
    let scope = CursorScope { meta: app.store.meta(), list: ListKind::Groups, filters: format!("org={};session={}", target.access.org_id, target.id) };
    let after = match cursor {
        Some(c) => Some(String::from_utf8(scope.decode(&c)?).map_err(|_| ApiError::invalid_cursor("cursor is malformed"))?),
        None => None,
    };
    let key = target.key();
    let page = app.blocking(move |s| s.list_groups(key, after, limit)).await?;
    let data: Vec<Value> = page.items.iter().map(|(id, g)| group_json(id, g)).collect();
    let next = page.next_after.map(|k| scope.encode(k.as_bytes()));
    Ok(response::json(200, &json!({"data": data, "nextCursor": next})))
}

/// The body of `POST groups`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateBody {
    subject: String,
    participants: Vec<String>,
    description: Option<String>,
}

fn check_subject(s: &str) -> Result<(), ApiError> {
    let n = s.chars().count();
    if n == 0 || n > 100 || s.trim().is_empty() {
        return Err(ApiError::invalid("subject", "subject must be 1 to 100 characters"));
    }
    Ok(())
}

fn check_description(d: &str) -> Result<(), ApiError> {
    if d.chars().count() > 2048 {
        return Err(ApiError::invalid("description", "description must be at most 2048 characters"));
    }
    Ok(())
}

/// `POST /api/v1/sessions/{id}/groups` [groups:write] → 201 `{"group", "participants"}`.
pub async fn create(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let target = Target::of(&app, &req, Permission::GroupsWrite).await?;
    let b: CreateBody = req.json()?;
    check_subject(&b.subject)?;
    if let Some(d) = &b.description {
        check_description(d)?;
    }
    let jids = people(&b.participants)?;
    let conn = target.connection(&app)?;
    spend_lookups(&app, &target, jids.len() as u32).await?;
    let (info, outcomes) = conn.group_create(&b.subject, &jids, b.description.as_deref()).await.map_err(engine_error)?;
    let gid = info.id.clone();
    commit_notice(&app, &target, GroupNotice::Joined { group: info, by: me(&target) }).await?;
    let group = stored(&app, &target, &gid).await?;
    let parts = outcomes_json(&b.participants, &jids, &outcomes);
    Ok(response::json(201, &json!({"group": group, "participants": parts})))
}

/// `GET /api/v1/sessions/{id}/groups/{groupId}` [contacts:read]: from the
/// file; `?refresh=true` asks WhatsApp and stores its answer first.
pub async fn get(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let target = Target::of(&app, &req, Permission::ContactsRead).await?;
    let gid = group_param(&req)?;
    let mut q = req.query()?;
    let refresh = match q.take("refresh").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::invalid("refresh", "refresh must be true or false")),
    };
    q.finish()?;
    if refresh {
        let conn = target.connection(&app)?;
        let info = conn.group_info(&gid).await.map_err(engine_error)?;
        commit_notice(&app, &target, GroupNotice::Joined { group: info, by: None }).await?;
    }
    Ok(response::json(200, &stored(&app, &target, &gid).await?))
}

/// The body of `PATCH groups/{groupId}` (absent: unchanged; `description: null` clears).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PatchBody {
    subject: Option<String>,
    #[serde(default, deserialize_with = "crate::api::nullable")]
    description: Option<Option<String>>,
    announce: Option<bool>,
    locked: Option<bool>,
    ephemeral_seconds: Option<u32>,
    membership_approval: Option<bool>,
}

/// `PATCH /api/v1/sessions/{id}/groups/{groupId}` [groups:write] → 200 Group.
pub async fn update(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let target = Target::of(&app, &req, Permission::GroupsWrite).await?;
    let gid = group_param(&req)?;
    let b: PatchBody = req.json()?;
    if let Some(s) = &b.subject {
        check_subject(s)?;
    }
    if let Some(Some(d)) = &b.description {
        check_description(d)?;
    }
    if b.ephemeral_seconds.is_some_and(|e| ![0, 86_400, 604_800, 7_776_000].contains(&e)) {
        return Err(ApiError::invalid("ephemeralSeconds", "ephemeralSeconds must be 0, 86400, 604800 or 7776000"));
    }
    let changes = GroupChanges {
        subject: b.subject,
        description: b.description,
        announce: b.announce,
        locked: b.locked,
        ephemeral_seconds: b.ephemeral_seconds,
        membership_approval: b.membership_approval,
    };
    stored(&app, &target, &gid).await?;
    if !changes.is_empty() {
        let conn = target.connection(&app)?;
        conn.group_update(&gid, &changes).await.map_err(engine_error)?;
        commit_notice(&app, &target, GroupNotice::Changed { group_id: gid.clone(), changes, by: me(&target) }).await?;
    }
    Ok(response::json(200, &stored(&app, &target, &gid).await?))
}

/// `DELETE /api/v1/sessions/{id}/groups/{groupId}` [groups:write]: leaves → 204.
pub async fn leave(app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let target = Target::of(&app, &req, Permission::GroupsWrite).await?;
    let gid = group_param(&req)?;
    stored(&app, &target, &gid).await?;
    let conn = target.connection(&app)?;
    conn.group_leave(&gid).await.map_err(engine_error)?;
    commit_notice(&app, &target, GroupNotice::Left { group_id: gid, by: me(&target) }).await?;
    Ok(response::empty(204))
}
