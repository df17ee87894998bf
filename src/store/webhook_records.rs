//! The webhook endpoint record (CONTRACT §10), versioned like every record
//! (`records.rs`): a postcard envelope whose leading varint is the version,
//! pinned by golden bytes below.
//!
//! The signing secret is kept as its raw 32 bytes: unlike an api-key (which
//! is only ever verified, so only its hash is stored) the gateway itself signs
//! with it. During a rotation the previous secret signs beside the new one
//! until `previous_until`.

use serde::{Deserialize, Serialize};

use super::records::{record, Record};
use super::StoreError;

/// A webhook endpoint of one organization, as version 1 stored it (kept
/// to read older files).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct WebhookV1 {
    pub organization_id: String,
    pub url: String,
    /// Event types, or `["*"]` for all.
    pub events: Vec<String>,
    /// Only these sessions' events (ULID strings); empty: every session.
    pub session_ids: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    /// Why the gateway disabled it (410, days of failures), if it did.
    pub disabled_reason: Option<String>,
    /// The signing secret (the bytes behind `whsec_…`).
    pub secret: [u8; 32],
    /// The secret before the last rotation, and until when it still signs (Unix ms).
    pub previous: Option<([u8; 32], i64)>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// How a webhook's deliveries wait for each other (CONTRACT §11 continued).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WebhookOrdering {
    /// A session's events reach the webhook in id order: a failed delivery
    /// holds back the session's later events until it is delivered or failed.
    #[default]
    Session,
    /// A failed delivery leaves its session's lane for a lane of its own and
    /// is retried there; the session's later events go on meanwhile.
    None,
}

impl WebhookOrdering {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookOrdering::Session => "session",
            WebhookOrdering::None => "none",
        }
    }

    /// From the API's spelling.
    pub fn parse(s: &str) -> Option<WebhookOrdering> {
        match s {
            "session" => Some(WebhookOrdering::Session),
            "none" => Some(WebhookOrdering::None),
            _ => None,
        }
    }
}

/// A webhook endpoint of one organization, with its delivery `ordering`
/// (version 2: a V1 record reads as `ordering: Session`, what it meant).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct WebhookV2 {
    pub organization_id: String,
    pub url: String,
    /// Event types, or `["*"]` for all.
    pub events: Vec<String>,
    /// Only these sessions' events (ULID strings); empty: every session.
    pub session_ids: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    /// Why the gateway disabled it (410, days of failures), if it did.
    pub disabled_reason: Option<String>,
    /// The signing secret (the bytes behind `whsec_…`).
    pub secret: [u8; 32],
    /// The secret before the last rotation, and until when it still signs (Unix ms).
    pub previous: Option<([u8; 32], i64)>,
    pub created_at: i64,
    pub updated_at: i64,
    pub ordering: WebhookOrdering,
}

impl From<WebhookV1> for WebhookV2 {
    fn from(v: WebhookV1) -> WebhookV2 {
        WebhookV2 {
            organization_id: v.organization_id,
            url: v.url,
            events: v.events,
            session_ids: v.session_ids,
            description: v.description,
            enabled: v.enabled,
            disabled_reason: v.disabled_reason,
            secret: v.secret,
            previous: v.previous,
            created_at: v.created_at,
            updated_at: v.updated_at,
            ordering: WebhookOrdering::Session,
        }
    }
}

/// The current webhook record.
pub type Webhook = WebhookV2;

/// The webhook record's versions on disk: V1 before `ordering`.
#[derive(Serialize, Deserialize)]
enum WebhookEnvelope {
    V1(WebhookV1),
    V2(WebhookV2),
}

impl Record for WebhookV2 {
    const KIND: &'static str = "webhook";
    fn encode(&self) -> Vec<u8> {
        // Serializing this plain struct into a Vec cannot fail.
        postcard::to_stdvec(&WebhookEnvelope::V2(self.clone())).unwrap_or_default()
    }
    fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        match postcard::from_bytes::<WebhookEnvelope>(bytes) {
            Ok(WebhookEnvelope::V1(v)) => Ok(v.into()),
            Ok(WebhookEnvelope::V2(v)) => Ok(v),
            Err(e) => Err(StoreError::Corrupt(format!("webhook record: {e}"))),
        }
    }
}

impl WebhookV2 {
    /// Whether an event of `kind` from `session` goes to this endpoint.
    /// `webhook.test` never matches: it goes only to the webhook it tests.
    /// The session's ULID is spelled out only for a webhook that filters by
    /// session (enqueueing asks this of every webhook for every event).
    pub fn wants(&self, kind: &str, session: Option<u128>) -> bool {
        if kind == WEBHOOK_TEST || !self.events.iter().any(|e| e == "*" || e == kind) {
            return false;
        }
        self.session_ids.is_empty()
            || session.is_some_and(|s| self.session_ids.contains(&ulid::Ulid::from(s).to_string()))
    }

    /// The secrets that sign at `now`: the current one, and the previous one
    /// during its overlap.
    pub fn signing_secrets(&self, now: i64) -> Vec<[u8; 32]> {
        let mut out = vec![self.secret];
        if let Some((old, until)) = self.previous {
            if now < until {
                out.push(old);
            }
        }
        out
    }
}

/// The event type of `POST /api/v1/webhooks/{id}/test`.
pub const WEBHOOK_TEST: &str = "webhook.test";

/// Where one (webhook, event) delivery stands.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its (next) attempt at `next_at`.
    Pending,
    /// A 2xx answer was had.
    Delivered,
    /// Every attempt of the schedule failed; kept for replay.
    Failed,
}

/// The state of one event's delivery to one webhook.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct DeliveryV1 {
    /// The event's session (its ordering lane), if any.
    pub session: Option<u128>,
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (Unix ms).
    pub next_at: i64,
    /// The last answer's HTTP status, if there was one.
    pub last_status: Option<u16>,
    /// The last attempt's error (timeout, refusal, network), if any.
    pub last_error: Option<String>,
    pub updated_at: i64,
}

/// The current delivery record.
pub type Delivery = DeliveryV1;

#[derive(Serialize, Deserialize)]
enum DeliveryEnvelope {
    V1(DeliveryV1),
}

record!(DeliveryV1, DeliveryEnvelope, "delivery");

/// One delivery attempt, as the delivery log shows it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct AttemptV1 {
    /// When it started (Unix ms).
    pub at: i64,
    /// The HTTP status answered, if any.
    pub status: Option<u16>,
    /// Why there was no usable answer (timeout, refusal, network), if so.
    pub error: Option<String>,
    pub latency_ms: u32,
    /// At most 1 KiB of the answer's body.
    pub response: Vec<u8>,
}

/// The current attempt record.
pub type Attempt = AttemptV1;

#[derive(Serialize, Deserialize)]
enum AttemptEnvelope {
    V1(AttemptV1),
}

record!(AttemptV1, AttemptEnvelope, "delivery attempt");

/// A row of the delivery log: which delivery an attempt was, and the
/// attempt. The log is keyed by when attempts were recorded (one append
/// per attempt, whatever event it was), so its row names the event.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LoggedAttemptV1 {
    pub event: u128,
    /// 1 = the first attempt since the delivery was queued or replayed.
    pub number: u32,
    pub attempt: AttemptV1,
}

/// The current delivery log row.
pub type LoggedAttempt = LoggedAttemptV1;

#[derive(Serialize, Deserialize)]
enum LoggedAttemptEnvelope {
    V1(LoggedAttemptV1),
}

record!(LoggedAttemptV1, LoggedAttemptEnvelope, "delivery log entry");

/// A plain enabled webhook of organization `o` (for tests).
#[cfg(test)]
pub(crate) fn sample_webhook() -> Webhook {
    WebhookV2 {
        organization_id: "o".into(),
        url: "https://x.example.com".into(),
        events: vec!["*".into()],
        session_ids: vec![],
        description: None,
        enabled: true,
        disabled_reason: None,
        secret: [1; 32],
        previous: None,
        created_at: 1,
        updated_at: 1,
        ordering: WebhookOrdering::Session,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook() -> WebhookV1 {
        WebhookV1 {
            organization_id: "o".into(),
            url: "https://x".into(),
            events: vec!["*".into()],
            session_ids: vec![],
            description: None,
            enabled: true,
            disabled_reason: None,
            secret: [1; 32],
            previous: Some(([2; 32], 9)),
            created_at: 3,
            updated_at: 4,
        }
    }

    /// A V1 record (before `ordering`) still decodes, as `ordering: session`.
    #[test]
    fn webhook_v1_golden_bytes() {
        let mut golden = vec![0, 1, b'o', 9];
        golden.extend(b"https://x");
        golden.extend([1, 1, b'*', 0, 0, 1, 0]);
        golden.extend([1u8; 32]);
        golden.push(1);
        golden.extend([2u8; 32]);
        golden.extend([18, 6, 8]);
        assert_eq!(postcard::to_stdvec(&WebhookEnvelope::V1(hook())).expect("encode"), golden);
        assert_eq!(WebhookV2::decode(&golden).ok(), Some(WebhookV2::from(hook())));
        assert_eq!(WebhookV2::decode(&golden).map(|h| h.ordering).ok(), Some(WebhookOrdering::Session));
        let mut v3 = golden.clone();
        v3[0] = 2;
        assert!(matches!(WebhookV2::decode(&v3), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn webhook_v2_golden_bytes() {
        let h = WebhookV2 { ordering: WebhookOrdering::None, ..WebhookV2::from(hook()) };
        let mut golden = vec![1, 1, b'o', 9];
        golden.extend(b"https://x");
        golden.extend([1, 1, b'*', 0, 0, 1, 0]);
        golden.extend([1u8; 32]);
        golden.push(1);
        golden.extend([2u8; 32]);
        golden.extend([18, 6, 8, 1]);
        assert_eq!(h.encode(), golden);
        assert_eq!(WebhookV2::decode(&golden).ok(), Some(h.clone()));
        let session = WebhookV2 { ordering: WebhookOrdering::Session, ..h };
        let last = golden.len() - 1;
        golden[last] = 0;
        assert_eq!(session.encode(), golden);
    }

    #[test]
    fn filters_and_overlapping_secrets() {
        let mut h = WebhookV2::from(hook());
        let (s1, s2) = (u128::from(crate::new_id()), u128::from(crate::new_id()));
        assert!(h.wants("message.received", Some(s1)) && !h.wants("webhook.test", None));
        h.events = vec!["message.status".into()];
        h.session_ids = vec![ulid::Ulid::from(s1).to_string()];
        assert!(h.wants("message.status", Some(s1)));
        assert!(!h.wants("message.status", Some(s2)) && !h.wants("message.received", Some(s1)));
        assert!(!h.wants("message.status", None));
        assert_eq!(h.signing_secrets(8), vec![[1; 32], [2; 32]]);
        assert_eq!(h.signing_secrets(9), vec![[1; 32]]);
    }

    #[test]
    fn delivery_v1_golden_bytes() {
        let d = DeliveryV1 {
            session: Some(5),
            status: DeliveryStatus::Failed,
            attempts: 3,
            next_at: 4,
            last_status: Some(500),
            last_error: Some("x".into()),
            updated_at: 1,
        };
        let golden = vec![0, 1, 5, 2, 3, 8, 1, 0xf4, 0x03, 1, 1, b'x', 2];
        assert_eq!(d.encode(), golden);
        assert_eq!(DeliveryV1::decode(&golden).ok(), Some(d));
        let mut v2 = golden.clone();
        v2[0] = 1;
        assert!(matches!(DeliveryV1::decode(&v2), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn attempt_v1_golden_bytes() {
        let a = AttemptV1 { at: 2, status: None, error: Some("t".into()), latency_ms: 300, response: b"ok".to_vec() };
        let golden = vec![0, 4, 0, 1, 1, b't', 0xac, 0x02, 2, b'o', b'k'];
        assert_eq!(a.encode(), golden);
        assert_eq!(AttemptV1::decode(&golden).ok(), Some(a));
        let mut v2 = golden.clone();
        v2[0] = 1;
        assert!(matches!(AttemptV1::decode(&v2), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn logged_attempt_v1_golden_bytes() {
        let a = AttemptV1 { at: 2, status: Some(200), error: None, latency_ms: 1, response: vec![] };
        let l = LoggedAttemptV1 { event: 300, number: 2, attempt: a };
        let golden = vec![0, 0xac, 0x02, 2, 4, 1, 0xc8, 0x01, 0, 1, 0];
        assert_eq!(l.encode(), golden);
        assert_eq!(LoggedAttemptV1::decode(&golden).ok(), Some(l));
        let mut v2 = golden.clone();
        v2[0] = 1;
        assert!(matches!(LoggedAttemptV1::decode(&v2), Err(StoreError::Corrupt(_))));
    }
}
