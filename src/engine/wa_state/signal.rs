//! `SignalStore`: identities, sessions, pre-keys, signed pre-keys and sender
//! keys. Values are the crate's raw protocol bytes, except pre-keys, which
//! also carry their "uploaded" flag.

use std::sync::Arc;

use bytes::Bytes;
use whatsapp_rust::async_trait;
use whatsapp_rust::wacore::store::traits::SignalStore;

use super::codec::{Envelope, PreKeyV1};
use super::{id_key, key_id, CrateResult, RedbBackend, WaStoreError};
use crate::store::wa_state::ns;

fn identity(bytes: Vec<u8>) -> Result<[u8; 32], WaStoreError> {
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| WaStoreError::Decode {
        kind: "identity key",
        detail: format!("{} bytes, expected 32", bytes.len()),
    })
}

#[async_trait]
impl SignalStore for RedbBackend {
    async fn put_identity(&self, address: &str, key: [u8; 32]) -> CrateResult<()> {
        let address = address.to_owned();
        self.write(move |w| w.put(ns::IDENTITY, address.as_bytes(), &key)).await
    }

    async fn put_identities_batch(&self, identities: &[(Arc<str>, [u8; 32])]) -> CrateResult<()> {
        if identities.is_empty() {
            return Ok(());
        }
        let identities = identities.to_vec();
        self.write(move |w| {
            for (address, key) in &identities {
                w.put(ns::IDENTITY, address.as_bytes(), key)?;
            }
            Ok(())
        })
        .await
    }

    async fn load_identity(&self, address: &str) -> CrateResult<Option<[u8; 32]>> {
        let address = address.to_owned();
        self.read(move |r| r.get(ns::IDENTITY, address.as_bytes())?.map(identity).transpose())
            .await
    }

    async fn delete_identity(&self, address: &str) -> CrateResult<()> {
        let address = address.to_owned();
        self.write(move |w| w.remove(ns::IDENTITY, address.as_bytes()).map(|_| ())).await
    }

    async fn get_session(&self, address: &str) -> CrateResult<Option<Bytes>> {
        let address = address.to_owned();
        self.read(move |r| Ok(r.get(ns::SESSION, address.as_bytes())?.map(Bytes::from))).await
    }

    async fn put_session(&self, address: &str, session: &[u8]) -> CrateResult<()> {
        let address = address.to_owned();
        let session = session.to_vec();
        self.write(move |w| w.put(ns::SESSION, address.as_bytes(), &session)).await
    }

    async fn put_sessions_batch(&self, sessions: &[(Arc<str>, Bytes)]) -> CrateResult<()> {
        if sessions.is_empty() {
            return Ok(());
        }
        let sessions = sessions.to_vec();
        self.write(move |w| {
            for (address, record) in &sessions {
                w.put(ns::SESSION, address.as_bytes(), record)?;
            }
            Ok(())
        })
        .await
    }

    async fn delete_session(&self, address: &str) -> CrateResult<()> {
        let address = address.to_owned();
        self.write(move |w| w.remove(ns::SESSION, address.as_bytes()).map(|_| ())).await
    }

    async fn has_session(&self, address: &str) -> CrateResult<bool> {
        let address = address.to_owned();
        self.read(move |r| r.contains(ns::SESSION, address.as_bytes())).await
    }

    /// Addresses are `user@server` (device 0) or `user:device@server`.
    async fn has_signal_state_for_user(&self, user: &str) -> CrateResult<bool> {
        let at = format!("{user}@");
        let colon = format!("{user}:");
        self.read(move |r| {
            for space in [ns::SESSION, ns::IDENTITY] {
                if r.any_with_prefix(space, at.as_bytes())?
                    || r.any_with_prefix(space, colon.as_bytes())?
                {
                    return Ok(true);
                }
            }
            Ok(false)
        })
        .await
    }

    async fn store_prekey(&self, id: u32, record: &[u8], uploaded: bool) -> CrateResult<()> {
        let value = PreKeyV1 { record: record.to_vec(), uploaded }.encode();
        self.write(move |w| w.put(ns::PREKEY, &id_key(id), &value)).await
    }

    async fn store_prekeys_batch(&self, keys: &[(u32, Bytes)], uploaded: bool) -> CrateResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let keys = keys.to_vec();
        self.write(move |w| {
            for (id, record) in &keys {
                let value = PreKeyV1 { record: record.to_vec(), uploaded }.encode();
                w.put(ns::PREKEY, &id_key(*id), &value)?;
            }
            Ok(())
        })
        .await
    }

    async fn load_prekey(&self, id: u32) -> CrateResult<Option<Bytes>> {
        self.read(move |r| {
            Ok(r.get_env::<PreKeyV1>(ns::PREKEY, &id_key(id))?.map(|p| Bytes::from(p.record)))
        })
        .await
    }

    async fn load_prekeys_batch(&self, ids: &[u32]) -> CrateResult<Vec<(u32, Bytes)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = ids.to_vec();
        self.read(move |r| {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(p) = r.get_env::<PreKeyV1>(ns::PREKEY, &id_key(id))? {
                    out.push((id, Bytes::from(p.record)));
                }
            }
            Ok(out)
        })
        .await
    }

    /// Update-only: ids with no stored pre-key stay absent.
    async fn mark_prekeys_uploaded(&self, ids: &[u32]) -> CrateResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids = ids.to_vec();
        self.write(move |w| {
            for id in ids {
                if let Some(mut p) = w.get_env::<PreKeyV1>(ns::PREKEY, &id_key(id))? {
                    if !p.uploaded {
                        p.uploaded = true;
                        w.put_env(ns::PREKEY, &id_key(id), &p)?;
                    }
                }
            }
            Ok(())
        })
        .await
    }

    async fn remove_prekey(&self, id: u32) -> CrateResult<()> {
        self.write(move |w| w.remove(ns::PREKEY, &id_key(id)).map(|_| ())).await
    }

    async fn get_max_prekey_id(&self) -> CrateResult<u32> {
        self.read(|r| {
            let mut max = 0;
            r.scan(ns::PREKEY, &[], true, |k, _| {
                max = key_id("prekey id", k)?;
                Ok(false)
            })?;
            Ok(max)
        })
        .await
    }

    async fn store_signed_prekey(&self, id: u32, record: &[u8]) -> CrateResult<()> {
        let record = record.to_vec();
        self.write(move |w| w.put(ns::SIGNED_PREKEY, &id_key(id), &record)).await
    }

    async fn load_signed_prekey(&self, id: u32) -> CrateResult<Option<Vec<u8>>> {
        self.read(move |r| r.get(ns::SIGNED_PREKEY, &id_key(id))).await
    }

    /// In id order.
    async fn load_all_signed_prekeys(&self) -> CrateResult<Vec<(u32, Vec<u8>)>> {
        self.read(|r| {
            let mut out = Vec::new();
            r.scan(ns::SIGNED_PREKEY, &[], false, |k, v| {
                out.push((key_id("signed prekey id", k)?, v.to_vec()));
                Ok(true)
            })?;
            Ok(out)
        })
        .await
    }

    async fn remove_signed_prekey(&self, id: u32) -> CrateResult<()> {
        self.write(move |w| w.remove(ns::SIGNED_PREKEY, &id_key(id)).map(|_| ())).await
    }

    async fn put_sender_key(&self, address: &str, record: &[u8]) -> CrateResult<()> {
        let address = address.to_owned();
        let record = record.to_vec();
        self.write(move |w| w.put(ns::SENDER_KEY, address.as_bytes(), &record)).await
    }

    async fn put_sender_keys_batch(&self, sender_keys: &[(Arc<str>, Bytes)]) -> CrateResult<()> {
        if sender_keys.is_empty() {
            return Ok(());
        }
        let sender_keys = sender_keys.to_vec();
        self.write(move |w| {
            for (address, record) in &sender_keys {
                w.put(ns::SENDER_KEY, address.as_bytes(), record)?;
            }
            Ok(())
        })
        .await
    }

    async fn get_sender_key(&self, address: &str) -> CrateResult<Option<Vec<u8>>> {
        let address = address.to_owned();
        self.read(move |r| r.get(ns::SENDER_KEY, address.as_bytes())).await
    }

    async fn delete_sender_key(&self, address: &str) -> CrateResult<()> {
        let address = address.to_owned();
        self.write(move |w| w.remove(ns::SENDER_KEY, address.as_bytes()).map(|_| ())).await
    }
}
