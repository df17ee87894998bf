//! The stored group record (CONTRACT §13), versioned like every record
//! (`records.rs`): a postcard envelope whose leading varint is the version,
//! pinned by golden bytes below.
//!
//! Participants are kept inline, in the group's own row: a group read is one
//! key lookup and one decode (≤ 256 participants, a few KiB), the list pages
//! read one row per group, and a change rewrites one row in the same
//! transaction as its event. A side table would make each read a range scan
//! and each change several writes, for no query the API needs.

use serde::{Deserialize, Serialize};

use super::records::{record, Record};
use super::StoreError;

/// A participant's standing, as stored (the data layer's own copy of the
/// engine's role, so `store` imports nothing else of ours).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoredRole {
    Member,
    Admin,
    SuperAdmin,
}

/// One participant of a stored group: a phone JID, a `@lid`, or both.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct StoredParticipant {
    pub jid: Option<String>,
    pub lid: Option<String>,
    pub role: StoredRole,
}

impl StoredParticipant {
    /// Whether this participant is the person known by `jid` or `lid`.
    pub fn is(&self, jid: Option<&str>, lid: Option<&str>) -> bool {
        (jid.is_some() && self.jid.as_deref() == jid) || (lid.is_some() && self.lid.as_deref() == lid)
    }
}

/// A group a session's number is in, kept current from WhatsApp's
/// notifications and from the changes the gateway itself makes. The group
/// id (`…@g.us`) is the row's key.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct GroupV1 {
    pub subject: String,
    pub description: Option<String>,
    /// The creator's JID.
    pub owner: Option<String>,
    /// Unix ms.
    pub created_at: Option<i64>,
    pub participants: Vec<StoredParticipant>,
    pub announce: bool,
    pub locked: bool,
    pub ephemeral_seconds: u32,
    pub membership_approval: bool,
    /// When the gateway last changed this row (Unix ms).
    pub updated_at: i64,
}

impl GroupV1 {
    /// Whether two records describe the same group state (`updated_at`
    /// aside): an idempotent apply writes nothing when they do.
    pub fn same_state(&self, other: &GroupV1) -> bool {
        GroupV1 { updated_at: 0, ..self.clone() } == GroupV1 { updated_at: 0, ..other.clone() }
    }
}

/// The current group record.
pub type Group = GroupV1;

/// The group record's versions on disk.
#[derive(Serialize, Deserialize)]
enum GroupEnvelope {
    V1(GroupV1),
}

record!(GroupV1, GroupEnvelope, "group");

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> GroupV1 {
        GroupV1 {
            subject: "S".into(),
            description: None,
            owner: Some("1@s".into()),
            created_at: Some(2),
            participants: vec![StoredParticipant { jid: Some("1@s".into()), lid: None, role: StoredRole::SuperAdmin }],
            announce: true,
            locked: false,
            ephemeral_seconds: 86_400,
            membership_approval: true,
            updated_at: 3,
        }
    }

    #[test]
    fn group_v1_golden_bytes() {
        let mut golden = vec![0, 1, b'S', 0, 1, 3];
        golden.extend(b"1@s");
        golden.extend([1, 4, 1, 1, 3]);
        golden.extend(b"1@s");
        golden.extend([0, 2, 1, 0, 0x80, 0xa3, 0x05, 1, 6]);
        assert_eq!(group().encode(), golden);
        assert_eq!(GroupV1::decode(&golden).ok(), Some(group()));
        let mut v2 = golden.clone();
        v2[0] = 1;
        assert!(matches!(GroupV1::decode(&v2), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn same_state_ignores_updated_at_only() {
        let a = group();
        assert!(a.same_state(&GroupV1 { updated_at: 99, ..a.clone() }));
        assert!(!a.same_state(&GroupV1 { subject: "T".into(), ..a.clone() }));
    }
}
