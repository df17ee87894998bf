//! Stored forms of the structured WhatsApp state: plain serde structs owned
//! by the gateway (not the crate's types, whose serde layout may change
//! between crate versions), postcard-encoded inside a versioned envelope.
//!
//! Each envelope is an enum whose variant index is the record version
//! (postcard writes it as a leading varint), exactly like the gateway's own
//! records: a later gateway adds `V2` and upgrades `V1` on read; an older
//! gateway meeting `V2` refuses it instead of misreading it.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::WaStoreError;

/// A value stored in a versioned envelope.
pub trait Envelope: Sized {
    /// What the value is, for error messages.
    const KIND: &'static str;
    /// Encodes as the newest envelope version.
    fn encode(&self) -> Vec<u8>;
    /// Decodes any known envelope version.
    fn decode(bytes: &[u8]) -> Result<Self, WaStoreError>;
}

fn to_bytes<T: Serialize>(v: &T) -> Vec<u8> {
    // Serializing these plain structs into a Vec cannot fail.
    postcard::to_stdvec(v).unwrap_or_default()
}

fn from_bytes<T: DeserializeOwned>(kind: &'static str, bytes: &[u8]) -> Result<T, WaStoreError> {
    postcard::from_bytes(bytes).map_err(|e| WaStoreError::Decode { kind, detail: e.to_string() })
}

macro_rules! envelope {
    ($ty:ident, $env:ident, $kind:literal) => {
        #[derive(Serialize, Deserialize)]
        enum $env {
            V1($ty),
        }
        impl Envelope for $ty {
            const KIND: &'static str = $kind;
            fn encode(&self) -> Vec<u8> {
                to_bytes(&$env::V1(self.clone()))
            }
            fn decode(bytes: &[u8]) -> Result<Self, WaStoreError> {
                match from_bytes::<$env>($kind, bytes)? {
                    $env::V1(v) => Ok(v),
                }
            }
        }
    };
}

/// A one-time pre-key record and whether it was uploaded to the server.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PreKeyV1 {
    pub record: Vec<u8>,
    pub uploaded: bool,
}
envelope!(PreKeyV1, PreKeyEnvelope, "prekey");

/// An app-state sync key.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SyncKeyV1 {
    pub key_data: Vec<u8>,
    pub fingerprint: Vec<u8>,
    pub timestamp: i64,
}
envelope!(SyncKeyV1, SyncKeyEnvelope, "app-state sync key");

/// An app-state collection's version and ltHash state.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct HashStateV1 {
    pub version: u64,
    /// 128 bytes.
    pub hash: Vec<u8>,
    /// (index MAC as the crate keys it, value MAC), sorted by key.
    pub index_value_map: Vec<(String, Vec<u8>)>,
    pub mac_mismatch_fatal: bool,
}
envelope!(HashStateV1, HashStateEnvelope, "app-state version");

/// An app-state mutation MAC and the collection version that wrote it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct MutationMacV1 {
    pub version: u64,
    pub value_mac: Vec<u8>,
}
envelope!(MutationMacV1, MutationMacEnvelope, "mutation MAC");

/// A LID ↔ phone-number mapping (keyed by LID).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LidMappingV1 {
    pub phone_number: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub learning_source: String,
}
envelope!(LidMappingV1, LidMappingEnvelope, "LID mapping");

/// One device of a [`DeviceListV1`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfoV1 {
    pub device_id: u32,
    pub key_index: Option<u32>,
    pub is_hosted: bool,
}

/// A user's device list (keyed by user).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct DeviceListV1 {
    pub devices: Vec<DeviceInfoV1>,
    pub timestamp: i64,
    pub phash: Option<String>,
    pub raw_id: Option<u32>,
}
envelope!(DeviceListV1, DeviceListEnvelope, "device list");

/// A trusted-contact token.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TcTokenV1 {
    pub token: Vec<u8>,
    pub token_timestamp: i64,
    pub sender_timestamp: Option<i64>,
}
envelope!(TcTokenV1, TcTokenEnvelope, "tc token");

/// A sent message kept for retry receipts.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SentMessageV1 {
    pub payload: Vec<u8>,
    /// Unix seconds when stored.
    pub created_at: i64,
}
envelope!(SentMessageV1, SentMessageEnvelope, "sent message");

/// A decrypted inbound message awaiting its durability-hook commit.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PendingInboundV1 {
    pub message: Vec<u8>,
    /// Unix seconds when stored.
    pub inserted_at: i64,
}
envelope!(PendingInboundV1, PendingInboundEnvelope, "pending inbound message");

/// A message secret with its retention deadline and parent message time.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct MsgSecretV1 {
    pub secret: [u8; 32],
    /// Unix seconds; 0 = never expires.
    pub expires_at: i64,
    /// Unix seconds; 0 = unknown.
    pub message_ts: i64,
}
envelope!(MsgSecretV1, MsgSecretEnvelope, "message secret");

/// A cached Noise certificate (key and validity window).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct NoiseCertV1 {
    pub key: [u8; 32],
    pub not_before: i64,
    pub not_after: i64,
}

/// The cached server certificate chain.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CertChainV1 {
    pub intermediate: NoiseCertV1,
    pub leaf: NoiseCertV1,
}

/// The session's own device: everything the crate persists about it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct DeviceV1 {
    /// Phone-number JID, once paired.
    pub pn: Option<String>,
    /// LID JID, once paired.
    pub lid: Option<String>,
    pub registration_id: u32,
    /// Private key (32 bytes) then public key (32 bytes).
    pub noise_key: Vec<u8>,
    /// Private key (32 bytes) then public key (32 bytes).
    pub identity_key: Vec<u8>,
    /// Private key (32 bytes) then public key (32 bytes).
    pub signed_pre_key: Vec<u8>,
    pub signed_pre_key_id: u32,
    /// 64 bytes.
    pub signed_pre_key_signature: Vec<u8>,
    pub adv_secret_key: [u8; 32],
    /// `ADVSignedDeviceIdentity` protobuf bytes, once paired.
    pub account: Option<Vec<u8>>,
    pub push_name: String,
    pub app_version_primary: u32,
    pub app_version_secondary: u32,
    pub app_version_tertiary: u32,
    pub app_version_last_fetched_ms: i64,
    pub edge_routing_info: Option<Vec<u8>>,
    pub props_hash: Option<String>,
    pub next_pre_key_id: u32,
    pub first_unupload_pre_key_id: u32,
    pub server_has_prekeys: bool,
    pub nct_salt: Option<Vec<u8>>,
    pub server_cert_chain: Option<CertChainV1>,
    pub login_counter: i32,
    pub lid_migrated: bool,
    pub last_signed_pre_key_rotation_ms: i64,
    pub read_receipts_disabled: bool,
}
envelope!(DeviceV1, DeviceEnvelope, "device");

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the byte layout: a change here breaks existing data files.
    #[test]
    fn golden_bytes() {
        let p = PreKeyV1 { record: vec![1, 2], uploaded: true };
        assert_eq!(p.encode(), vec![0, 2, 1, 2, 1]);
        assert_eq!(PreKeyV1::decode(&[0, 2, 1, 2, 1]).unwrap(), p);
        let s = SentMessageV1 { payload: vec![9], created_at: 1 };
        assert_eq!(s.encode(), vec![0, 1, 9, 2]);
        assert!(PreKeyV1::decode(&[1, 2, 1, 2, 1]).is_err(), "unknown version refused");
    }
}
