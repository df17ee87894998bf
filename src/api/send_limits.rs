//! The two refusals of a send that depend on what is stored, decided inside
//! the commit of [`super::messages`]' queueing job (so that concurrent sends
//! in one group commit see each other): the organization's storage quota
//! (CONTRACT "§11 (continued)") and a full send queue (§9).

use redb::WriteTransaction;

use super::message_input::Outgoing;
use crate::http::{ApiError, ErrorCode};
use crate::store::records::{Session, SessionStatus};
use crate::store::{messages, orgs, usage, StoreResult};

/// Retry-After of a send refused by the storage quota: stored bytes come
/// back only when queued media leaves, retention prunes or a session is
/// deleted, none of which the gateway can date; a minute is a polling
/// interval, not a promise.
pub const QUOTA_RETRY_SECS: i64 = 60;

/// What a request would add to its organization's stored bytes (media plus
/// text, as [`usage`] counts them), and whether it carries media.
pub fn request_bytes(items: &[Outgoing]) -> (u64, bool) {
    let mut bytes = 0u64;
    let mut media = false;
    for i in items {
        bytes += i.text.as_ref().map_or(0, |t| t.len() as u64);
        if let Some((b, _, _)) = &i.media {
            // Staged media has left the request (its bytes emptied): its
            // size is kept with the blob id.
            bytes += i.staged.map_or(b.len() as u64, |(_, size)| size);
            media = true;
        }
    }
    (bytes, media)
}

/// 429 `rate_limited` with `details.quota` when a send with media would
/// take `org` past its cap (its `maxStoredBytes`, else `default`, the
/// gateway's `--org-storage-quota`). Text-only sends are not held to the
/// quota (their text still counts in `storedBytes`): the contract caps
/// "a send with media", and a tenant at its cap can still talk.
pub fn quota_refusal(
    txn: &WriteTransaction,
    org: &str,
    (request, has_media): (u64, bool),
    default: Option<u64>,
) -> StoreResult<Option<ApiError>> {
    if !has_media {
        return Ok(None);
    }
    let cap = orgs::get_in(txn, org)?.and_then(|o| o.max_stored_bytes).or(default);
    let Some(cap) = cap else { return Ok(None) };
    let stored = usage::stored_in(txn, org)?;
    if stored.saturating_add(request) <= cap {
        return Ok(None);
    }
    Ok(Some(
        ApiError::new(
            ErrorCode::RateLimited,
            format!(
                "the organization's storage quota is full: {stored} of {cap} bytes stored, this request needs {request} more; \
                 bytes come back as queued media is sent and as messages are pruned or deleted"
            ),
        )
        .detail("quota", serde_json::json!({"maxStoredBytes": cap, "storedBytes": stored, "requestBytes": request}))
        .detail("retryAfterSeconds", QUOTA_RETRY_SECS)
        .header("retry-after", QUOTA_RETRY_SECS.to_string()),
    ))
}

/// 429 `rate_limited` for a full queue (`queued` of `max`). A working
/// session drains at its pace: Retry-After is the time one send takes at
/// `ratePerMin`. Any other session's queue drains only once it is started
/// (or as its messages expire): the answer says so (`details.sessionStatus`),
/// and Retry-After is the time until the queue's head expires after `ttl_ms`
/// — the moment room is certain to come even if nobody starts it.
pub fn queue_full(
    txn: &WriteTransaction,
    session_id: u128,
    session: &Session,
    (queued, max): (u64, u64),
    ttl_ms: i64,
    now: i64,
) -> StoreResult<ApiError> {
    let status = session.status;
    if status == SessionStatus::Working {
        let secs = pace_secs(session.rate_per_min);
        return Ok(ApiError::new(ErrorCode::RateLimited, format!("the session's send queue is full ({max} messages)"))
            .detail("queued", queued)
            .detail("sessionStatus", status.as_str())
            .detail("retryAfterSeconds", secs)
            .header("retry-after", secs.to_string()));
    }
    let head_expires = messages::head_in(txn, session_id)?.map(|(due, _, _)| due.saturating_add(ttl_ms));
    let secs = stopped_retry_secs(head_expires, ttl_ms, now);
    Ok(ApiError::new(
        ErrorCode::RateLimited,
        format!(
            "the session's send queue is full ({max} messages) and the session is {}: its queue drains only once the \
             session is started (POST /api/v1/sessions/{{id}}/start); until then room comes only as queued messages expire",
            status.as_str()
        ),
    )
    .detail("queued", queued)
    .detail("sessionStatus", status.as_str())
    .detail("retryAfterSeconds", secs)
    .header("retry-after", secs.to_string()))
}

/// Seconds one send takes at `rate_per_min` (at least 1).
fn pace_secs(rate_per_min: u32) -> i64 {
    let rate = i64::from(rate_per_min.max(1));
    ((60 + rate - 1) / rate).max(1)
}

/// Seconds until a stopped session's queue is certain to have room: until
/// its head expires (`head_expires`, Unix ms), or a whole TTL when the head
/// is unknown; at least 1.
pub fn stopped_retry_secs(head_expires: Option<i64>, ttl_ms: i64, now: i64) -> i64 {
    let until = head_expires.unwrap_or(now.saturating_add(ttl_ms));
    (until.saturating_sub(now).saturating_add(999) / 1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Over virtual time: the wait is never less than 1 s, never ends
        /// before the head expires, and never past it by a second or more.
        #[test]
        fn a_stopped_queue_waits_until_its_head_expires(now in 0i64..1 << 45, left in -100_000i64..100_000_000, ttl in 1i64..1 << 32) {
            let secs = stopped_retry_secs(Some(now + left), ttl, now);
            prop_assert!(secs >= 1);
            prop_assert!(now + secs * 1000 >= now + left);
            prop_assert!(left <= 0 || secs * 1000 < left + 1000);
            prop_assert_eq!(stopped_retry_secs(None, ttl, now), (ttl + 999) / 1000);
        }
    }

    #[test]
    fn a_working_queue_waits_one_send() {
        assert_eq!(pace_secs(20), 3);
        assert_eq!(pace_secs(0), 60);
        assert_eq!(pace_secs(1000), 1);
    }
}
