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

/// A webhook endpoint of one organization.
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

/// The current webhook record.
pub type Webhook = WebhookV1;

#[derive(Serialize, Deserialize)]
enum WebhookEnvelope {
    V1(WebhookV1),
}

record!(WebhookV1, WebhookEnvelope, "webhook");

impl WebhookV1 {
    /// Whether an event of `kind` from `session` (ULID string) goes to this endpoint.
    pub fn wants(&self, kind: &str, session: Option<&str>) -> bool {
        let by_type = self.events.iter().any(|e| e == "*" || e == kind);
        let by_session = self.session_ids.is_empty() || session.is_some_and(|s| self.session_ids.iter().any(|x| x == s));
        by_type && by_session
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

    #[test]
    fn webhook_v1_golden_bytes() {
        let mut golden = vec![0, 1, b'o', 9];
        golden.extend(b"https://x");
        golden.extend([1, 1, b'*', 0, 0, 1, 0]);
        golden.extend([1u8; 32]);
        golden.push(1);
        golden.extend([2u8; 32]);
        golden.extend([18, 6, 8]);
        assert_eq!(hook().encode(), golden);
        assert_eq!(WebhookV1::decode(&golden).ok(), Some(hook()));
        let mut v2 = golden.clone();
        v2[0] = 1;
        assert!(matches!(WebhookV1::decode(&v2), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn filters_and_overlapping_secrets() {
        let mut h = hook();
        assert!(h.wants("message.received", Some("S1")) && h.wants("webhook.test", None));
        h.events = vec!["message.status".into()];
        h.session_ids = vec!["S1".into()];
        assert!(h.wants("message.status", Some("S1")));
        assert!(!h.wants("message.status", Some("S2")) && !h.wants("message.received", Some("S1")));
        assert!(!h.wants("message.status", None));
        assert_eq!(h.signing_secrets(8), vec![[1; 32], [2; 32]]);
        assert_eq!(h.signing_secrets(9), vec![[1; 32]]);
    }
}
