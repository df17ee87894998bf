//! `DeviceStore`: the session's own device — its Noise, identity and signed
//! pre-key pairs, registration id, and once paired its JIDs and signed
//! account identity. One row per session (namespace `device`, empty key).
//!
//! The crate does not persist `device_props`, `client_profile` and
//! `nct_salt_sync_seen`; like its SQLite backend, loading restores their
//! defaults (the client re-applies overrides at start).

use std::sync::Arc;

use whatsapp_rust::async_trait;
use whatsapp_rust::wacore::client_profile::ClientProfile;
use whatsapp_rust::wacore::libsignal::protocol::{KeyPair, PrivateKey, PublicKey};
use whatsapp_rust::wacore::stats::StorageResourceReport;
use whatsapp_rust::wacore::store::device::{account_serde, CachedNoiseCert, CachedServerCertChain, DEVICE_PROPS};
use whatsapp_rust::wacore::store::traits::DeviceStore;
use whatsapp_rust::wacore::store::Device;

use super::codec::{CertChainV1, DeviceV1, NoiseCertV1};
use super::{CrateResult, RedbBackend, WaResult, WaStoreError};
use crate::store::wa_state::ns;

/// The id `create` reports: one device per session, like the crate's
/// SQLite backend's default.
pub const DEVICE_ID: i32 = 1;

const KEY: &[u8] = &[];

fn bad(detail: String) -> WaStoreError {
    WaStoreError::Decode { kind: "device", detail }
}

fn key_pair_bytes(kp: &KeyPair) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(64);
    bytes.extend_from_slice(kp.private_key.serialize());
    bytes.extend_from_slice(kp.public_key.public_key_bytes());
    bytes
}

fn key_pair(field: &str, bytes: &[u8]) -> WaResult<KeyPair> {
    if bytes.len() != 64 {
        return Err(bad(format!("{field}: {} bytes, expected 64", bytes.len())));
    }
    let private = PrivateKey::deserialize(&bytes[..32]).map_err(|e| bad(format!("{field}: {e}")))?;
    let public = PublicKey::from_djb_public_key_bytes(&bytes[32..]).map_err(|e| bad(format!("{field}: {e}")))?;
    Ok(KeyPair::new(public, private))
}

fn cert_row(c: &CachedNoiseCert) -> NoiseCertV1 {
    NoiseCertV1 { key: c.key, not_before: c.not_before, not_after: c.not_after }
}

fn cert(c: NoiseCertV1) -> CachedNoiseCert {
    CachedNoiseCert { key: c.key, not_before: c.not_before, not_after: c.not_after }
}

/// The stored form of a device.
pub(crate) fn device_row(d: &Device) -> DeviceV1 {
    DeviceV1 {
        pn: d.pn.as_ref().map(|j| j.to_string()),
        lid: d.lid.as_ref().map(|j| j.to_string()),
        registration_id: d.registration_id,
        noise_key: key_pair_bytes(&d.noise_key),
        identity_key: key_pair_bytes(&d.identity_key),
        signed_pre_key: key_pair_bytes(&d.signed_pre_key),
        signed_pre_key_id: d.signed_pre_key_id,
        signed_pre_key_signature: d.signed_pre_key_signature.to_vec(),
        adv_secret_key: d.adv_secret_key,
        account: d.account.as_ref().map(|a| account_serde::to_bytes(a)),
        push_name: d.push_name.clone(),
        app_version_primary: d.app_version_primary,
        app_version_secondary: d.app_version_secondary,
        app_version_tertiary: d.app_version_tertiary,
        app_version_last_fetched_ms: d.app_version_last_fetched_ms,
        edge_routing_info: d.edge_routing_info.clone(),
        props_hash: d.props_hash.clone(),
        next_pre_key_id: d.next_pre_key_id,
        first_unupload_pre_key_id: d.first_unupload_pre_key_id,
        server_has_prekeys: d.server_has_prekeys,
        nct_salt: d.nct_salt.clone(),
        server_cert_chain: d
            .server_cert_chain
            .as_ref()
            .map(|c| CertChainV1 { intermediate: cert_row(&c.intermediate), leaf: cert_row(&c.leaf) }),
        login_counter: d.login_counter,
        lid_migrated: d.lid_migrated,
        last_signed_pre_key_rotation_ms: d.last_signed_pre_key_rotation_ms,
        read_receipts_disabled: d.read_receipts_disabled,
    }
}

/// The device a stored row describes.
pub(crate) fn device_from_row(r: DeviceV1) -> WaResult<Device> {
    let jid = |field: &str, s: Option<String>| -> WaResult<_> {
        s.map(|s| s.parse().map_err(|e| bad(format!("{field} {s:?}: {e}")))).transpose()
    };
    let signed_pre_key_signature: [u8; 64] = r
        .signed_pre_key_signature
        .as_slice()
        .try_into()
        .map_err(|_| bad(format!("signature of {} bytes, expected 64", r.signed_pre_key_signature.len())))?;
    let account = r
        .account
        .map(|b| account_serde::from_bytes(&b).map(Arc::new).map_err(|e| bad(format!("account: {e}"))))
        .transpose()?;
    Ok(Device {
        pn: jid("pn", r.pn)?,
        lid: jid("lid", r.lid)?,
        registration_id: r.registration_id,
        noise_key: key_pair("noise_key", &r.noise_key)?,
        identity_key: key_pair("identity_key", &r.identity_key)?,
        signed_pre_key: key_pair("signed_pre_key", &r.signed_pre_key)?,
        signed_pre_key_id: r.signed_pre_key_id,
        signed_pre_key_signature,
        adv_secret_key: r.adv_secret_key,
        account,
        push_name: r.push_name,
        app_version_primary: r.app_version_primary,
        app_version_secondary: r.app_version_secondary,
        app_version_tertiary: r.app_version_tertiary,
        app_version_last_fetched_ms: r.app_version_last_fetched_ms,
        device_props: Arc::new(DEVICE_PROPS.clone()),
        client_profile: ClientProfile::web(),
        edge_routing_info: r.edge_routing_info,
        props_hash: r.props_hash,
        next_pre_key_id: r.next_pre_key_id,
        first_unupload_pre_key_id: r.first_unupload_pre_key_id,
        server_has_prekeys: r.server_has_prekeys,
        nct_salt: r.nct_salt,
        nct_salt_sync_seen: false,
        server_cert_chain: r
            .server_cert_chain
            .map(|c| CachedServerCertChain { intermediate: cert(c.intermediate), leaf: cert(c.leaf) }),
        login_counter: r.login_counter,
        lid_migrated: r.lid_migrated,
        last_signed_pre_key_rotation_ms: r.last_signed_pre_key_rotation_ms,
        read_receipts_disabled: r.read_receipts_disabled,
    })
}

#[async_trait]
impl DeviceStore for RedbBackend {
    async fn save(&self, device: &Device) -> CrateResult<()> {
        let row = device_row(device);
        self.write(move |w| w.put_env(ns::DEVICE, KEY, &row)).await
    }

    async fn load(&self) -> CrateResult<Option<Device>> {
        self.read(|r| r.get_env::<DeviceV1>(ns::DEVICE, KEY)?.map(device_from_row).transpose()).await
    }

    async fn exists(&self) -> CrateResult<bool> {
        self.read(|r| r.contains(ns::DEVICE, KEY)).await
    }

    /// Stores a freshly generated device (new key pairs) unless the session
    /// already has one, which is never overwritten; returns [`DEVICE_ID`].
    async fn create(&self) -> CrateResult<i32> {
        self.write(|w| {
            if w.get(ns::DEVICE, KEY)?.is_none() {
                w.put_env(ns::DEVICE, KEY, &device_row(&Device::new()))?;
            }
            Ok(DEVICE_ID)
        })
        .await
    }

    /// Snapshots are the gateway's `backup` command (of the whole data
    /// file); the crate's debug snapshot hook is a no-op here.
    async fn snapshot_db(&self, _name: &str, _extra_content: Option<&[u8]>) -> CrateResult<()> {
        Ok(())
    }

    /// The redb page cache is shared by every session, so none of it is
    /// attributed to one (`memory_bytes: Some(0)`); `pages` is the number of
    /// rows the session owns. Best effort: errors report nothing.
    async fn resource_report(&self) -> StorageResourceReport {
        let rows = self
            .read(|r| {
                let mut n = 0u64;
                for space in ns::ALL {
                    r.scan(space, &[], false, |_, _| {
                        n += 1;
                        Ok(true)
                    })?;
                }
                Ok(n)
            })
            .await;
        match rows {
            Ok(n) => StorageResourceReport { memory_bytes: Some(0), pages: Some(n), ..Default::default() },
            Err(_) => StorageResourceReport::default(),
        }
    }
}
