//! Records as they are stored: serde structs encoded with postcard inside a
//! versioned envelope.
//!
//! Every value written to the data file is an enum whose variant index is the
//! record's version (postcard writes it as a leading varint). A newer gateway
//! adds a `V2` variant and upgrades `V1` values on read, so old files keep
//! opening; an older gateway meeting a `V2` value refuses it instead of
//! misreading it. The golden-bytes tests at the bottom pin every version.

use serde::{Deserialize, Serialize};

use super::StoreError;

/// Lifecycle state of a WhatsApp session, as the API reports it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessionStatus {
    Stopped,
    Starting,
    ScanQrCode,
    Working,
    Failed,
    LoggedOut,
}

impl SessionStatus {
    /// Every status, in API order.
    pub const ALL: [SessionStatus; 6] = [
        SessionStatus::Stopped,
        SessionStatus::Starting,
        SessionStatus::ScanQrCode,
        SessionStatus::Working,
        SessionStatus::Failed,
        SessionStatus::LoggedOut,
    ];

    /// The wire name (`scan_qr_code`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Stopped => "stopped",
            SessionStatus::Starting => "starting",
            SessionStatus::ScanQrCode => "scan_qr_code",
            SessionStatus::Working => "working",
            SessionStatus::Failed => "failed",
            SessionStatus::LoggedOut => "logged_out",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<SessionStatus> {
        SessionStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// A WhatsApp session (a linked number) belonging to one organization.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SessionV1 {
    pub organization_id: String,
    pub created_by_user_id: String,
    pub gateway_id: String,
    pub label: String,
    pub phone_number: Option<String>,
    pub status: SessionStatus,
    pub auto_read: bool,
    pub presence_typing: bool,
    pub rate_per_min: u32,
    pub rate_per_hour: u32,
    pub is_admin_session: bool,
    pub wa_jid: Option<String>,
    pub wa_lid: Option<String>,
    pub last_connected_at: Option<i64>,
    /// Whether the session should be running; the engine restarts these on boot.
    pub desired_running: bool,
    /// Last engine error, kept for the `failed` status.
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The current session record.
pub type Session = SessionV1;

/// A session decoded without copying: its text fields are the stored bytes
/// (postcard writes `str` and bytes alike), so a list page costs no
/// allocation and no separate UTF-8 pass per row; the JSON writer validates
/// while it escapes. Field for field the same layout as [`SessionV1`] (a test
/// pins that).
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionRef<'a> {
    pub organization_id: &'a [u8],
    pub created_by_user_id: &'a [u8],
    pub gateway_id: &'a [u8],
    pub label: &'a [u8],
    pub phone_number: Option<&'a [u8]>,
    pub status: SessionStatus,
    pub auto_read: bool,
    pub presence_typing: bool,
    pub rate_per_min: u32,
    pub rate_per_hour: u32,
    pub is_admin_session: bool,
    pub wa_jid: Option<&'a [u8]>,
    pub wa_lid: Option<&'a [u8]>,
    pub last_connected_at: Option<i64>,
    pub desired_running: bool,
    pub last_error: Option<&'a [u8]>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Deserialize)]
enum SessionEnvelopeRef<'a> {
    #[serde(borrow)]
    V1(SessionRef<'a>),
}

impl<'a> SessionRef<'a> {
    /// Decodes a stored session envelope, borrowing its strings.
    pub fn decode(bytes: &'a [u8]) -> Result<SessionRef<'a>, StoreError> {
        match postcard::from_bytes::<SessionEnvelopeRef<'a>>(bytes) {
            Ok(SessionEnvelopeRef::V1(v)) => Ok(v),
            Err(e) => Err(StoreError::Corrupt(format!("session record: {e}"))),
        }
    }
}

impl SessionV1 {
    /// Borrows this session as a [`SessionRef`].
    pub fn as_ref(&self) -> SessionRef<'_> {
        SessionRef {
            organization_id: self.organization_id.as_bytes(),
            created_by_user_id: self.created_by_user_id.as_bytes(),
            gateway_id: self.gateway_id.as_bytes(),
            label: self.label.as_bytes(),
            phone_number: self.phone_number.as_deref().map(str::as_bytes),
            status: self.status,
            auto_read: self.auto_read,
            presence_typing: self.presence_typing,
            rate_per_min: self.rate_per_min,
            rate_per_hour: self.rate_per_hour,
            is_admin_session: self.is_admin_session,
            wa_jid: self.wa_jid.as_deref().map(str::as_bytes),
            wa_lid: self.wa_lid.as_deref().map(str::as_bytes),
            last_connected_at: self.last_connected_at,
            desired_running: self.desired_running,
            last_error: self.last_error.as_deref().map(str::as_bytes),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// Whether an organization may use the gateway.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrgStatus {
    Active,
    Suspended,
}

impl OrgStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrgStatus::Active => "active",
            OrgStatus::Suspended => "suspended",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<OrgStatus> {
        match s {
            "active" => Some(OrgStatus::Active),
            "suspended" => Some(OrgStatus::Suspended),
            _ => None,
        }
    }
}

/// A tenant. Its id is chosen by the frontend (e.g. a Clerk `org_...` id).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct OrganizationV1 {
    pub name: String,
    pub status: OrgStatus,
    pub max_sessions: Option<u32>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An organization with its storage quota (schema 4): V1's fields plus
/// `max_stored_bytes`, the cap on its stored media and message bodies
/// (`None`: the gateway's `--org-storage-quota`). A V1 record reads as
/// V2 with `None`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct OrganizationV2 {
    pub name: String,
    pub status: OrgStatus,
    pub max_sessions: Option<u32>,
    pub created_at: i64,
    pub updated_at: i64,
    pub max_stored_bytes: Option<u64>,
}

/// The current organization record.
pub type Organization = OrganizationV2;

impl From<OrganizationV1> for OrganizationV2 {
    fn from(v: OrganizationV1) -> OrganizationV2 {
        OrganizationV2 {
            name: v.name,
            status: v.status,
            max_sessions: v.max_sessions,
            created_at: v.created_at,
            updated_at: v.updated_at,
            max_stored_bytes: None,
        }
    }
}

/// An api-key: only its SHA-256 hash is kept, never the key.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyV1 {
    pub organization_id: String,
    pub name: String,
    pub prefix: String,
    /// Bit set of [`crate::auth::Permission`].
    pub permissions: u32,
    pub hash: [u8; 32],
    pub created_by_user_id: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// The current api-key record.
pub type ApiKey = ApiKeyV1;

#[derive(Serialize, Deserialize)]
enum SessionEnvelope {
    V1(SessionV1),
}

#[derive(Serialize, Deserialize)]
enum OrganizationEnvelope {
    V1(OrganizationV1),
    V2(OrganizationV2),
}

impl Record for OrganizationV2 {
    const KIND: &'static str = "organization";
    fn encode(&self) -> Vec<u8> {
        // Serializing this plain struct into a Vec cannot fail.
        postcard::to_stdvec(&OrganizationEnvelope::V2(self.clone())).unwrap_or_default()
    }
    fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        match postcard::from_bytes::<OrganizationEnvelope>(bytes) {
            Ok(OrganizationEnvelope::V1(v)) => Ok(v.into()),
            Ok(OrganizationEnvelope::V2(v)) => Ok(v),
            Err(e) => Err(StoreError::Corrupt(format!("organization record: {e}"))),
        }
    }
}

#[derive(Serialize, Deserialize)]
enum ApiKeyEnvelope {
    V1(ApiKeyV1),
}

/// A record type that has a versioned envelope on disk.
pub trait Record: Sized {
    /// Table name, for error messages.
    const KIND: &'static str;
    /// Encodes as the newest envelope version.
    fn encode(&self) -> Vec<u8>;
    /// Decodes any known envelope version, upgrading it to the newest.
    fn decode(bytes: &[u8]) -> Result<Self, StoreError>;
}

/// Implements [`Record`] for a V1 struct and its envelope enum.
macro_rules! record {
    ($ty:ty, $env:ident, $kind:literal) => {
        impl Record for $ty {
            const KIND: &'static str = $kind;
            fn encode(&self) -> Vec<u8> {
                // Serializing these plain structs into a Vec cannot fail.
                postcard::to_stdvec(&$env::V1(self.clone())).unwrap_or_default()
            }
            fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
                match postcard::from_bytes::<$env>(bytes) {
                    Ok($env::V1(v)) => Ok(v),
                    Err(e) => Err(StoreError::Corrupt(format!("{} record: {e}", $kind))),
                }
            }
        }
    };
}

pub(crate) use record;

record!(SessionV1, SessionEnvelope, "session");
record!(ApiKeyV1, ApiKeyEnvelope, "api-key");

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> SessionV1 {
        SessionV1 {
            organization_id: "org_1".into(),
            created_by_user_id: "u".into(),
            gateway_id: "gw".into(),
            label: "L".into(),
            phone_number: Some("62".into()),
            status: SessionStatus::Working,
            auto_read: false,
            presence_typing: true,
            rate_per_min: 20,
            rate_per_hour: 600,
            is_admin_session: false,
            wa_jid: None,
            wa_lid: None,
            last_connected_at: Some(1),
            desired_running: true,
            last_error: None,
            created_at: 1719662400000,
            updated_at: 1719662400001,
        }
    }

    #[test]
    fn session_v1_golden_bytes() {
        let bytes = session().encode();
        let golden: &[u8] = &[
            0, // envelope V1
            5, b'o', b'r', b'g', b'_', b'1', 1, b'u', 2, b'g', b'w', 1, b'L', 1, 2, b'6', b'2',
            3, // Working
            0, 1, 20, 216, 4, 0, 0, 0, 1, 2, 1, 0, //
            128, 200, 238, 189, 140, 100, 130, 200, 238, 189, 140, 100,
        ];
        assert_eq!(bytes, golden);
        assert_eq!(SessionV1::decode(golden).ok(), Some(session()));
        // The borrowed view reads the same bytes to the same values.
        let s = session();
        assert_eq!(SessionRef::decode(golden).ok(), Some(s.as_ref()));
        let mut v2 = golden.to_vec();
        v2[0] = 1;
        assert!(SessionRef::decode(&v2).is_err());
    }

    #[test]
    fn organization_v1_golden_bytes() {
        let org = OrganizationV1 {
            name: "Acme".into(),
            status: OrgStatus::Suspended,
            max_sessions: Some(3),
            created_at: 5,
            updated_at: 6,
        };
        let golden: &[u8] = &[0, 4, b'A', b'c', b'm', b'e', 1, 1, 3, 10, 12];
        assert_eq!(postcard::to_stdvec(&OrganizationEnvelope::V1(org.clone())).ok().as_deref(), Some(golden));
        // A V1 record still decodes, upgraded: no quota of its own.
        assert_eq!(Organization::decode(golden).ok(), Some(OrganizationV2::from(org)));
    }

    #[test]
    fn organization_v2_golden_bytes() {
        let org = OrganizationV2 {
            name: "Acme".into(),
            status: OrgStatus::Active,
            max_sessions: None,
            created_at: 5,
            updated_at: 6,
            max_stored_bytes: Some(50 << 20),
        };
        // 50 MiB = 52428800 as a varint: 0x80 0x80 0x80 0x19.
        let golden: &[u8] = &[1, 4, b'A', b'c', b'm', b'e', 0, 0, 10, 12, 1, 0x80, 0x80, 0x80, 0x19];
        assert_eq!(org.encode(), golden);
        assert_eq!(Organization::decode(golden).ok(), Some(org.clone()));
        let none = OrganizationV2 { max_stored_bytes: None, ..org };
        assert_eq!(none.encode(), &[1, 4, b'A', b'c', b'm', b'e', 0, 0, 10, 12, 0]);
        let mut v3 = golden.to_vec();
        v3[0] = 2;
        assert!(Organization::decode(&v3).is_err());
    }

    #[test]
    fn api_key_v1_golden_bytes() {
        let key = ApiKeyV1 {
            organization_id: "o".into(),
            name: "n".into(),
            prefix: "wa_x".into(),
            permissions: 3,
            hash: [7; 32],
            created_by_user_id: "u".into(),
            created_at: 1,
            last_used_at: None,
            expires_at: Some(2),
            revoked_at: None,
        };
        let mut golden = vec![0, 1, b'o', 1, b'n', 4, b'w', b'a', b'_', b'x', 3];
        golden.extend([7u8; 32]);
        golden.extend([1, b'u', 2, 0, 1, 4, 0]);
        assert_eq!(key.encode(), golden);
        assert_eq!(ApiKeyV1::decode(&golden).ok(), Some(key));
    }

    #[test]
    fn unknown_envelope_version_is_refused() {
        let mut bytes = session().encode();
        bytes[0] = 1; // a V2 this build does not know
        assert!(matches!(SessionV1::decode(&bytes), Err(StoreError::Corrupt(_))));
        assert!(SessionV1::decode(&[]).is_err());
    }
}
