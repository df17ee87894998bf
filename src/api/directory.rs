//! What the directory routes (CONTRACT §12 contacts, presence, profile;
//! §13 groups) share: the caller's session, its live connection (409 when
//! the session is not `working`), the addresses in paths and bodies (a
//! person's where a person is meant, a group's where a group is), the
//! Person object, and how an engine's failure reads over HTTP.

use std::sync::Arc;

use serde_json::{json, Value};
use ulid::Ulid;

use crate::app::App;
use crate::auth::{OrgAccess, Permission};
use crate::engine::{Connection, EngineError};
use crate::http::{ApiError, ErrorCode, Req};
use crate::store::records::{Session, SessionStatus};

/// The caller's session of a directory route: cleared for `perm`, in the
/// caller's organization (another organization's session is 404).
pub struct Target {
    pub access: OrgAccess,
    pub id: Ulid,
    pub session: Session,
}

impl Target {
    /// Clears the caller for `perm` on the `{id}` session.
    pub async fn of(app: &App, req: &Req, perm: Permission) -> Result<Target, ApiError> {
        let access = app.org(req, perm).await?;
        let id = req.ulid("session")?;
        let session = super::sessions::read_session(app, id, &access.org_id).await?;
        Ok(Target { access, id, session })
    }

    /// The session's live connection, for a call that needs the network:
    /// 409 `conflict` (with `details.status`) unless the session is `working`.
    pub fn connection(&self, app: &App) -> Result<Arc<dyn Connection>, ApiError> {
        let not_working = || {
            ApiError::new(ErrorCode::Conflict, "the session is not working: this needs the WhatsApp connection")
                .detail("status", self.session.status.as_str())
        };
        if self.session.status != SessionStatus::Working {
            return Err(not_working());
        }
        app.engine.connection(self.id).ok_or_else(not_working)
    }

    /// The session's key in the store's tables.
    pub fn key(&self) -> u128 {
        u128::from(self.id)
    }
}

/// Spends `units` of the session's lookup budget (`--lookups-per-hour`, a
/// rolling hour; CONTRACT §12) before the network is asked: number checks
/// not answered from the cache and participant adds (one unit each). An
/// overspend is 429 `rate_limited` with `Retry-After`, and nothing is spent.
pub async fn spend_lookups(app: &App, target: &Target, units: u32) -> Result<(), ApiError> {
    use crate::directory::budget::{self, Refusal};
    use crate::store::contact_records::LookupWindow;
    use crate::store::contacts;
    if units == 0 {
        return Ok(());
    }
    let limit = app.config.directory.lookups_per_hour;
    let key = target.key();
    let outcome = app
        .committer
        .run(move |txn| {
            let window = contacts::lookup_window(txn, key)?;
            match budget::admit(&window.spent, crate::store::now_ms(), limit, units) {
                Ok(spent) => contacts::put_lookup_window(txn, key, &LookupWindow { spent }).map(|()| Ok(())),
                Err(refusal) => Ok(Err(refusal)),
            }
        })
        .await?;
    let wait_ms = match outcome {
        Ok(()) => return Ok(()),
        Err(Refusal::RetryAfter { retry_after_ms }) => retry_after_ms,
        Err(Refusal::OverLimit) => budget::HOUR_MS,
    };
    let secs = budget::retry_after_secs(wait_ms);
    Err(ApiError::new(
        ErrorCode::RateLimited,
        format!("the session's lookup budget ({limit} per hour) does not have {units} units free"),
    )
    .detail("limit", "lookups")
    .detail("perHour", limit)
    .detail("requested", units)
    .header("retry-after", secs.to_string()))
}

/// How an engine's failure reads over HTTP: an unknown group or void code
/// is 404, a refusal by WhatsApp (not an admin...) 409 with its `code`, a
/// bad address 400, a connection that is not ready 409; the rest 503.
pub fn engine_error(e: EngineError) -> ApiError {
    match e {
        EngineError::NotFound(m) => ApiError::new(ErrorCode::NotFound, m),
        EngineError::Refused { code, message } => {
            ApiError::new(ErrorCode::Conflict, format!("WhatsApp refused: {message}")).detail("code", code)
        }
        EngineError::Invalid(m) => ApiError::new(ErrorCode::InvalidRequest, m),
        EngineError::State(m) => ApiError::new(ErrorCode::Conflict, m),
        EngineError::Unsupported(what) => {
            ApiError::new(ErrorCode::Conflict, format!("this session's engine does not support {what}"))
        }
        other => ApiError::new(ErrorCode::Unavailable, format!("WhatsApp: {other}")).header("retry-after", "5"),
    }
}

/// A path segment, percent-decoded (`%40` for `@`); a segment that does
/// not decode to UTF-8 is `None`.
pub fn path_segment(raw: &str) -> Option<String> {
    crate::messaging::host::percent_decode(raw)
}

fn digits(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// A person, as the API takes one (`{contact}` in a path, `contact` or
/// `participants` in a body): phone digits, a `@s.whatsapp.net` JID or a
/// `@lid`. Returns the JID to use; a group id → 400 naming `field`.
pub fn person_address(raw: &str, field: &str) -> Result<String, ApiError> {
    match raw.split_once('@') {
        None if digits(raw, 6, 20) => Ok(format!("{raw}@s.whatsapp.net")),
        Some((user, "s.whatsapp.net")) if digits(user, 6, 20) => Ok(raw.to_string()),
        Some((user, "lid")) if digits(user, 1, 32) => Ok(raw.to_string()),
        Some((_, "g.us")) => Err(ApiError::invalid(field, format!("{field} names a group; a person (phone digits, @s.whatsapp.net or @lid) is expected here"))),
        _ => Err(ApiError::invalid(field, format!("{field} must be phone digits, a @s.whatsapp.net JID or a @lid"))),
    }
}

/// A group, as the API takes one (`{groupId}`): `<id>@g.us` (or the bare
/// id); a person's address → 400 naming `field`.
pub fn group_address(raw: &str, field: &str) -> Result<String, ApiError> {
    let ok = |user: &str| !user.is_empty() && user.len() <= 64 && user.bytes().all(|b| b.is_ascii_digit() || b == b'-');
    match raw.split_once('@') {
        Some((user, "g.us")) if ok(user) => Ok(raw.to_string()),
        None if ok(raw) && (raw.contains('-') || raw.len() > 20) => Ok(format!("{raw}@g.us")),
        Some((_, "s.whatsapp.net" | "lid")) => Err(ApiError::invalid(field, format!("{field} names a person; a group id (…@g.us) is expected here"))),
        None if digits(raw, 6, 20) => Err(ApiError::invalid(field, format!("{field} names a person; a group id (…@g.us) is expected here"))),
        _ => Err(ApiError::invalid(field, format!("{field} must be a group id (…@g.us)"))),
    }
}

/// The `{contact}` path segment as a person's JID (400 for a group id or
/// anything else that is not a person).
pub fn contact_param(req: &Req) -> Result<String, ApiError> {
    let raw = req.sub_id.as_deref().and_then(path_segment).ok_or_else(|| ApiError::invalid("contact", "contact is not a valid path segment"))?;
    person_address(&raw, "contact")
}

/// The `{groupId}` path segment as a group JID (400 for a person).
pub fn group_param(req: &Req) -> Result<String, ApiError> {
    let raw = req.sub_id.as_deref().and_then(path_segment).ok_or_else(|| ApiError::invalid("groupId", "groupId is not a valid path segment"))?;
    group_address(&raw, "groupId")
}

/// The digits of a phone-number JID (`<digits>@s.whatsapp.net`, a device
/// suffix `:n` dropped); `None` for anything else.
pub fn phone_of(jid: &str) -> Option<String> {
    let (user, server) = jid.split_once('@')?;
    let user = user.split(':').next().unwrap_or(user);
    (server == "s.whatsapp.net" && digits(user, 1, 20)).then(|| user.to_string())
}

/// A Person (CONTRACT §12): `{"jid", "lid", "phoneNumber"}`, each null when
/// unknown.
pub fn person_json(jid: Option<&str>, lid: Option<&str>) -> Value {
    json!({"jid": jid, "lid": lid, "phoneNumber": jid.and_then(phone_of)})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_and_groups_are_told_apart() {
        assert_eq!(person_address("6281234567", "c").ok().as_deref(), Some("6281234567@s.whatsapp.net"));
        assert_eq!(person_address("123@lid", "c").ok().as_deref(), Some("123@lid"));
        assert!(person_address("120363025246125486@g.us", "c").is_err());
        assert!(person_address("12", "c").is_err());
        assert!(person_address("abc@s.whatsapp.net", "c").is_err());
        assert_eq!(group_address("120363025246125486@g.us", "g").ok().as_deref(), Some("120363025246125486@g.us"));
        assert_eq!(group_address("6281234567-1612345678", "g").ok().as_deref(), Some("6281234567-1612345678@g.us"));
        assert!(group_address("6281234567@s.whatsapp.net", "g").is_err());
        assert!(group_address("6281234567", "g").is_err());
        assert!(group_address("1@lid", "g").is_err());
        assert_eq!(path_segment("62%40lid").as_deref(), Some("62@lid"));
        assert_eq!(path_segment("%zz"), None);
        assert_eq!(phone_of("62812:3@s.whatsapp.net").as_deref(), Some("62812"));
        assert_eq!(person_json(Some("628@s.whatsapp.net"), None)["phoneNumber"], "628");
    }
}
