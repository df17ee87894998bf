//! `AppSyncStore`: app-state sync keys, collection versions (ltHash state)
//! and mutation MACs.

use std::collections::HashMap;

use whatsapp_rust::async_trait;
use whatsapp_rust::wacore::appstate::hash::HashState;
use whatsapp_rust::wacore::appstate::processor::AppStateMutationMAC;
use whatsapp_rust::wacore::store::traits::{AppStateSyncKey, AppSyncStore};

use super::codec::{Envelope, HashStateV1, MutationMacV1, SyncKeyV1};
use super::{CrateResult, RedbBackend, WaStoreError};
use crate::store::wa_state::{composite_key, composite_prefix, ns};

fn sync_key_to_row(k: &AppStateSyncKey) -> SyncKeyV1 {
    SyncKeyV1 { key_data: k.key_data.clone(), fingerprint: k.fingerprint.clone(), timestamp: k.timestamp }
}

fn sync_key_from_row(r: SyncKeyV1) -> AppStateSyncKey {
    AppStateSyncKey { key_data: r.key_data, fingerprint: r.fingerprint, timestamp: r.timestamp }
}

fn hash_state_to_row(s: &HashState) -> HashStateV1 {
    let mut map: Vec<(String, Vec<u8>)> =
        s.index_value_map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    map.sort();
    HashStateV1 {
        version: s.version,
        hash: s.hash.to_vec(),
        index_value_map: map,
        mac_mismatch_fatal: s.mac_mismatch_fatal,
    }
}

fn hash_state_from_row(r: HashStateV1) -> Result<HashState, WaStoreError> {
    let hash: [u8; 128] = r.hash.as_slice().try_into().map_err(|_| WaStoreError::Decode {
        kind: "app-state version",
        detail: format!("hash of {} bytes, expected 128", r.hash.len()),
    })?;
    Ok(HashState {
        version: r.version,
        hash,
        index_value_map: r.index_value_map.into_iter().collect(),
        mac_mismatch_fatal: r.mac_mismatch_fatal,
    })
}

fn mac_key(name: &str, index_mac: &[u8]) -> Vec<u8> {
    composite_key(&[name.as_bytes(), index_mac])
}

#[async_trait]
impl AppSyncStore for RedbBackend {
    async fn get_sync_key(&self, key_id: &[u8]) -> CrateResult<Option<AppStateSyncKey>> {
        let key_id = key_id.to_vec();
        self.read(move |r| Ok(r.get_env::<SyncKeyV1>(ns::SYNC_KEY, &key_id)?.map(sync_key_from_row)))
            .await
    }

    async fn set_sync_key(&self, key_id: &[u8], key: AppStateSyncKey) -> CrateResult<()> {
        let key_id = key_id.to_vec();
        let row = sync_key_to_row(&key);
        self.write(move |w| w.put_env(ns::SYNC_KEY, &key_id, &row)).await
    }

    /// A collection never stored reads as the default (version 0) state.
    async fn get_version(&self, name: &str) -> CrateResult<HashState> {
        let name = name.to_owned();
        self.read(move |r| match r.get_env::<HashStateV1>(ns::APP_VERSION, name.as_bytes())? {
            Some(row) => hash_state_from_row(row),
            None => Ok(HashState::default()),
        })
        .await
    }

    async fn set_version(&self, name: &str, state: HashState) -> CrateResult<()> {
        let name = name.to_owned();
        let row = hash_state_to_row(&state);
        self.write(move |w| w.put_env(ns::APP_VERSION, name.as_bytes(), &row)).await
    }

    /// Upserts, one transaction; the stored version is the one given here.
    async fn put_mutation_macs(
        &self,
        name: &str,
        version: u64,
        mutations: &[AppStateMutationMAC],
    ) -> CrateResult<()> {
        if mutations.is_empty() {
            return Ok(());
        }
        let name = name.to_owned();
        let rows: Vec<(Vec<u8>, MutationMacV1)> = mutations
            .iter()
            .map(|m| {
                (mac_key(&name, &m.index_mac), MutationMacV1 { version, value_mac: m.value_mac.clone() })
            })
            .collect();
        self.write(move |w| {
            for (key, row) in &rows {
                w.put_env(ns::MUTATION_MAC, key, row)?;
            }
            Ok(())
        })
        .await
    }

    async fn get_mutation_mac(&self, name: &str, index_mac: &[u8]) -> CrateResult<Option<Vec<u8>>> {
        let key = mac_key(name, index_mac);
        self.read(move |r| Ok(r.get_env::<MutationMacV1>(ns::MUTATION_MAC, &key)?.map(|m| m.value_mac)))
            .await
    }

    /// One snapshot; only the MACs that exist are in the map.
    async fn get_mutation_macs(
        &self,
        name: &str,
        index_macs: &[[u8; 32]],
    ) -> CrateResult<HashMap<[u8; 32], Vec<u8>>> {
        if index_macs.is_empty() {
            return Ok(HashMap::new());
        }
        let name = name.to_owned();
        let index_macs = index_macs.to_vec();
        self.read(move |r| {
            let mut out = HashMap::with_capacity(index_macs.len());
            for im in index_macs {
                if let Some(m) = r.get_env::<MutationMacV1>(ns::MUTATION_MAC, &mac_key(&name, &im))? {
                    out.insert(im, m.value_mac);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn delete_mutation_macs(&self, name: &str, index_macs: &[Vec<u8>]) -> CrateResult<()> {
        if index_macs.is_empty() {
            return Ok(());
        }
        let keys: Vec<Vec<u8>> = index_macs.iter().map(|im| mac_key(name, im)).collect();
        self.write(move |w| {
            for key in &keys {
                w.remove(ns::MUTATION_MAC, key)?;
            }
            Ok(())
        })
        .await
    }

    async fn clear_mutation_macs(&self, name: &str) -> CrateResult<()> {
        let prefix = composite_prefix(&[name.as_bytes()]);
        self.write(move |w| w.remove_where(ns::MUTATION_MAC, &prefix, |_, _| Ok(true)).map(|_| ()))
            .await
    }

    /// Like the crate's SQLite backend: the greatest key id (bytewise) whose
    /// stored key decodes.
    async fn get_latest_sync_key_id(&self) -> CrateResult<Option<Vec<u8>>> {
        self.read(|r| {
            let mut latest = None;
            r.scan(ns::SYNC_KEY, &[], true, |k, v| {
                if SyncKeyV1::decode(v).is_ok() {
                    latest = Some(k.to_vec());
                    return Ok(false);
                }
                Ok(true)
            })?;
            Ok(latest)
        })
        .await
    }
}
