//! `ProtocolStore`: sender-key distribution status, LID ↔ phone mappings,
//! retry base keys, device lists and group metadata. Trusted-contact tokens,
//! sent messages and the pending-inbound buffer are in [`super::messages`].

use whatsapp_rust::async_trait;
use whatsapp_rust::wacore::store::traits::{
    DeviceInfo, DeviceListRecord, LidPnMappingEntry, PendingInboundKey, PendingInboundRow,
    ProtocolStore, TcTokenEntry,
};

use super::codec::{DeviceInfoV1, DeviceListV1, LidMappingV1};
use super::{messages, utf8, CrateResult, RedbBackend, WaResult, Writer};
use crate::store::wa_state::{composite_key, composite_prefix, ns, split_composite};

fn skd_key(group: &str, device: &str) -> Vec<u8> {
    composite_key(&[group.as_bytes(), device.as_bytes()])
}

fn pn_lid_key(phone: &str, lid: &str) -> Vec<u8> {
    composite_key(&[phone.as_bytes(), lid.as_bytes()])
}

fn base_key_key(address: &str, message_id: &str) -> Vec<u8> {
    composite_key(&[address.as_bytes(), message_id.as_bytes()])
}

fn lid_entry(lid: String, m: LidMappingV1) -> LidPnMappingEntry {
    LidPnMappingEntry {
        lid,
        phone_number: m.phone_number,
        created_at: m.created_at,
        updated_at: m.updated_at,
        learning_source: m.learning_source,
    }
}

/// Upserts one mapping (the first `created_at` is kept) and keeps the
/// phone → LID index in step.
fn put_lid(w: &mut Writer<'_>, e: &LidPnMappingEntry) -> WaResult<()> {
    let lid = e.lid.as_bytes();
    let old = w.get_env::<LidMappingV1>(ns::LID_MAPPING, lid)?;
    let created_at = match &old {
        Some(old) => {
            if old.phone_number != e.phone_number {
                w.remove(ns::PN_LID, &pn_lid_key(&old.phone_number, &e.lid))?;
            }
            old.created_at
        }
        None => e.created_at,
    };
    let row = LidMappingV1 {
        phone_number: e.phone_number.clone(),
        created_at,
        updated_at: e.updated_at,
        learning_source: e.learning_source.clone(),
    };
    w.put_env(ns::LID_MAPPING, lid, &row)?;
    w.put(ns::PN_LID, &pn_lid_key(&e.phone_number, &e.lid), &[])
}

fn device_list_row(r: &DeviceListRecord) -> DeviceListV1 {
    DeviceListV1 {
        devices: r
            .devices
            .iter()
            .map(|d| DeviceInfoV1 { device_id: d.device_id, key_index: d.key_index, is_hosted: d.is_hosted })
            .collect(),
        timestamp: r.timestamp,
        phash: r.phash.clone(),
        raw_id: r.raw_id,
    }
}

fn device_list_record(user: String, r: DeviceListV1) -> DeviceListRecord {
    DeviceListRecord {
        user,
        devices: r
            .devices
            .into_iter()
            .map(|d| DeviceInfo::new(d.device_id, d.key_index).with_hosting(d.is_hosted))
            .collect(),
        timestamp: r.timestamp,
        phash: r.phash,
        raw_id: r.raw_id,
    }
}

#[async_trait]
impl ProtocolStore for RedbBackend {
    /// In device-JID order.
    async fn get_sender_key_devices(&self, group_jid: &str) -> CrateResult<Vec<(String, bool)>> {
        let prefix = composite_prefix(&[group_jid.as_bytes()]);
        self.read(move |r| {
            let mut out = Vec::new();
            r.scan(ns::SENDER_KEY_DEVICE, &prefix, false, |k, v| {
                let device = utf8("sender-key device", &k[prefix.len()..])?;
                out.push((device, v.first().copied().unwrap_or(0) != 0));
                Ok(true)
            })?;
            Ok(out)
        })
        .await
    }

    async fn set_sender_key_status(&self, group_jid: &str, entries: &[(&str, bool)]) -> CrateResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let rows: Vec<(Vec<u8>, bool)> =
            entries.iter().map(|(device, has)| (skd_key(group_jid, device), *has)).collect();
        self.write(move |w| {
            for (key, has) in &rows {
                w.put(ns::SENDER_KEY_DEVICE, key, &[u8::from(*has)])?;
            }
            Ok(())
        })
        .await
    }

    async fn clear_sender_key_devices(&self, group_jid: &str) -> CrateResult<()> {
        let prefix = composite_prefix(&[group_jid.as_bytes()]);
        self.write(move |w| w.remove_where(ns::SENDER_KEY_DEVICE, &prefix, |_, _| Ok(true)).map(|_| ()))
            .await
    }

    /// Removes these devices' rows in every group.
    async fn delete_sender_key_device_rows(&self, device_jids: &[&str]) -> CrateResult<()> {
        if device_jids.is_empty() {
            return Ok(());
        }
        let devices: std::collections::HashSet<Vec<u8>> =
            device_jids.iter().map(|d| d.as_bytes().to_vec()).collect();
        self.write(move |w| {
            w.remove_where(ns::SENDER_KEY_DEVICE, &[], |k, _| {
                Ok(split_composite(k).is_some_and(|(_, device)| devices.contains(device)))
            })
            .map(|_| ())
        })
        .await
    }

    async fn clear_all_sender_key_devices(&self) -> CrateResult<()> {
        self.write(|w| w.remove_where(ns::SENDER_KEY_DEVICE, &[], |_, _| Ok(true)).map(|_| ())).await
    }

    async fn get_lid_mapping(&self, lid: &str) -> CrateResult<Option<LidPnMappingEntry>> {
        let lid = lid.to_owned();
        self.read(move |r| {
            Ok(r.get_env::<LidMappingV1>(ns::LID_MAPPING, lid.as_bytes())?.map(|m| lid_entry(lid, m)))
        })
        .await
    }

    /// The mapping with the latest `updated_at` among the LIDs mapped to `phone`.
    async fn get_pn_mapping(&self, phone: &str) -> CrateResult<Option<LidPnMappingEntry>> {
        let phone = phone.to_owned();
        self.read(move |r| {
            let prefix = composite_prefix(&[phone.as_bytes()]);
            let mut lids = Vec::new();
            r.scan(ns::PN_LID, &prefix, false, |k, _| {
                lids.push(utf8("LID", &k[prefix.len()..])?);
                Ok(true)
            })?;
            let mut best: Option<LidPnMappingEntry> = None;
            for lid in lids {
                let Some(m) = r.get_env::<LidMappingV1>(ns::LID_MAPPING, lid.as_bytes())? else {
                    continue;
                };
                if m.phone_number != phone {
                    continue;
                }
                if best.as_ref().is_none_or(|b| m.updated_at > b.updated_at) {
                    best = Some(lid_entry(lid, m));
                }
            }
            Ok(best)
        })
        .await
    }

    async fn put_lid_mapping(&self, entry: &LidPnMappingEntry) -> CrateResult<()> {
        self.put_lid_mappings(std::slice::from_ref(entry)).await
    }

    async fn put_lid_mappings(&self, entries: &[LidPnMappingEntry]) -> CrateResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let entries = entries.to_vec();
        self.write(move |w| {
            for e in &entries {
                put_lid(w, e)?;
            }
            Ok(())
        })
        .await
    }

    async fn get_all_lid_mappings(&self) -> CrateResult<Vec<LidPnMappingEntry>> {
        self.read(|r| {
            let mut rows = Vec::new();
            r.scan(ns::LID_MAPPING, &[], false, |k, v| {
                rows.push((utf8("LID", k)?, v.to_vec()));
                Ok(true)
            })?;
            rows.into_iter()
                .map(|(lid, v)| {
                    use super::codec::Envelope;
                    Ok(lid_entry(lid, LidMappingV1::decode(&v)?))
                })
                .collect()
        })
        .await
    }

    async fn save_base_key(&self, address: &str, message_id: &str, base_key: &[u8]) -> CrateResult<()> {
        let key = base_key_key(address, message_id);
        let base_key = base_key.to_vec();
        self.write(move |w| w.put(ns::BASE_KEY, &key, &base_key)).await
    }

    /// `false` when no base key was saved for this address and message.
    async fn has_same_base_key(
        &self,
        address: &str,
        message_id: &str,
        current_base_key: &[u8],
    ) -> CrateResult<bool> {
        let key = base_key_key(address, message_id);
        let current = current_base_key.to_vec();
        self.read(move |r| Ok(r.get(ns::BASE_KEY, &key)?.is_some_and(|stored| stored == current))).await
    }

    async fn delete_base_key(&self, address: &str, message_id: &str) -> CrateResult<()> {
        let key = base_key_key(address, message_id);
        self.write(move |w| w.remove(ns::BASE_KEY, &key).map(|_| ())).await
    }

    async fn update_device_list(&self, record: DeviceListRecord) -> CrateResult<()> {
        self.update_device_lists(vec![record]).await
    }

    async fn update_device_lists(&self, records: Vec<DeviceListRecord>) -> CrateResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        self.write(move |w| {
            for r in &records {
                w.put_env(ns::DEVICE_LIST, r.user.as_bytes(), &device_list_row(r))?;
            }
            Ok(())
        })
        .await
    }

    async fn get_devices(&self, user: &str) -> CrateResult<Option<DeviceListRecord>> {
        let user = user.to_owned();
        self.read(move |r| {
            Ok(r.get_env::<DeviceListV1>(ns::DEVICE_LIST, user.as_bytes())?
                .map(|row| device_list_record(user, row)))
        })
        .await
    }

    async fn delete_devices(&self, user: &str) -> CrateResult<()> {
        let user = user.to_owned();
        self.write(move |w| w.remove(ns::DEVICE_LIST, user.as_bytes()).map(|_| ())).await
    }

    async fn get_group_metadata(&self, group_jid: &str) -> CrateResult<Option<Vec<u8>>> {
        let group = group_jid.to_owned();
        self.read(move |r| r.get(ns::GROUP_METADATA, group.as_bytes())).await
    }

    async fn put_group_metadata(&self, group_jid: &str, blob: &[u8]) -> CrateResult<()> {
        let group = group_jid.to_owned();
        let blob = blob.to_vec();
        self.write(move |w| w.put(ns::GROUP_METADATA, group.as_bytes(), &blob)).await
    }

    async fn delete_group_metadata(&self, group_jid: &str) -> CrateResult<()> {
        let group = group_jid.to_owned();
        self.write(move |w| w.remove(ns::GROUP_METADATA, group.as_bytes()).map(|_| ())).await
    }

    async fn get_tc_token(&self, jid: &str) -> CrateResult<Option<TcTokenEntry>> {
        messages::get_tc_token(self, jid).await
    }

    async fn put_tc_token(&self, jid: &str, entry: &TcTokenEntry) -> CrateResult<()> {
        messages::put_tc_token(self, jid, entry).await
    }

    async fn delete_tc_token(&self, jid: &str) -> CrateResult<()> {
        messages::delete_tc_token(self, jid).await
    }

    async fn get_all_tc_token_jids(&self) -> CrateResult<Vec<String>> {
        messages::get_all_tc_token_jids(self).await
    }

    async fn delete_expired_tc_tokens(&self, token_cutoff: i64, sender_cutoff: i64) -> CrateResult<u32> {
        messages::delete_expired_tc_tokens(self, token_cutoff, sender_cutoff).await
    }

    async fn touch_tc_token_sender_timestamp(&self, jid: &str, sender_timestamp: i64) -> CrateResult<()> {
        messages::touch_tc_token_sender_timestamp(self, jid, sender_timestamp).await
    }

    async fn store_received_tc_token(&self, jid: &str, token: &[u8], token_timestamp: i64) -> CrateResult<()> {
        messages::store_received_tc_token(self, jid, token, token_timestamp).await
    }

    async fn store_sent_message(&self, chat_jid: &str, message_id: &str, payload: &[u8]) -> CrateResult<()> {
        messages::store_sent_message(self, chat_jid, message_id, payload).await
    }

    async fn take_sent_message(&self, chat_jid: &str, message_id: &str) -> CrateResult<Option<Vec<u8>>> {
        messages::take_sent_message(self, chat_jid, message_id).await
    }

    async fn delete_expired_sent_messages(&self, cutoff_timestamp: i64) -> CrateResult<u32> {
        messages::delete_expired_sent_messages(self, cutoff_timestamp).await
    }

    async fn store_pending_inbound(&self, chat: &str, sender: &str, id: &str, message: &[u8]) -> CrateResult<()> {
        let row = PendingInboundRow { chat, sender, id, message };
        messages::store_pending_inbound_batch(self, &[row]).await
    }

    async fn get_pending_inbound(&self, chat: &str, sender: &str, id: &str) -> CrateResult<Option<Vec<u8>>> {
        messages::get_pending_inbound(self, chat, sender, id).await
    }

    async fn delete_pending_inbound(&self, chat: &str, sender: &str, id: &str) -> CrateResult<()> {
        messages::delete_pending_inbound_batch(self, &[PendingInboundKey { chat, sender, id }]).await
    }

    async fn delete_expired_pending_inbound(&self, cutoff_timestamp: i64) -> CrateResult<u32> {
        messages::delete_expired_pending_inbound(self, cutoff_timestamp).await
    }

    async fn store_pending_inbound_batch(&self, rows: &[PendingInboundRow<'_>]) -> CrateResult<()> {
        messages::store_pending_inbound_batch(self, rows).await
    }

    async fn delete_pending_inbound_batch(&self, keys: &[PendingInboundKey<'_>]) -> CrateResult<()> {
        messages::delete_pending_inbound_batch(self, keys).await
    }
}
