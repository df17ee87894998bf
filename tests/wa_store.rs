//! Conformance tests for the `whatsapp-rust` storage backend on the data
//! file ([`wa_gateway::engine::wa_state::RedbBackend`]): every trait method
//! (round trips, overwrites, deletes of present and missing rows, batches),
//! isolation between sessions sharing one file, survival across reopen,
//! the table helpers (`delete_session_state`, `count_session_rows`,
//! `copy_tables`), and the crate's own device-initialization path.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use ulid::Ulid;
use wa_gateway::engine::wa_state::codec::{Envelope, PreKeyV1};
use wa_gateway::store::wa_state::{self as tables, ns, WA_STATE};
use wa_gateway::engine::wa_state::RedbBackend;
use wa_gateway::store::Store;
use whatsapp_rust::wacore::appstate::hash::HashState;
use whatsapp_rust::wacore::appstate::processor::AppStateMutationMAC;
use whatsapp_rust::wacore::store::device::{account_serde, CachedNoiseCert, CachedServerCertChain};
use whatsapp_rust::wacore::store::error::StoreError as CrateStoreError;
use whatsapp_rust::wacore::store::traits::*;
use whatsapp_rust::wacore::store::Device;
use whatsapp_rust::wacore::time::now_secs;

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    store: Arc<Store>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.redb");
        let store = Arc::new(Store::open(&path, 32 << 20).unwrap());
        Fixture { _dir: dir, path, store }
    }

    fn backend(&self, session: Ulid) -> RedbBackend {
        RedbBackend::new(Arc::clone(&self.store), session)
    }

    /// Closes the file and opens it again.
    fn reopen(self) -> Fixture {
        let Fixture { _dir, path, store } = self;
        Arc::try_unwrap(store).ok().expect("no other store handle").close().unwrap();
        let store = Arc::new(Store::open(&path, 32 << 20).unwrap());
        Fixture { _dir, path, store }
    }

    fn rows(&self, session: Ulid) -> u64 {
        tables::count_session_rows(&self.store.read().unwrap(), session.0).unwrap()
    }

    /// Writes a raw row, bypassing the backend.
    fn put_raw(&self, session: Ulid, space: &str, key: &[u8], value: &[u8]) {
        let txn = self.store.write().unwrap();
        txn.open_table(WA_STATE).unwrap().insert((session.0, space, key), value).unwrap();
        self.store.commit(txn).unwrap();
    }

    fn get_raw(&self, session: Ulid, space: &str, key: &[u8]) -> Option<Vec<u8>> {
        let txn = self.store.read().unwrap();
        let t = txn.open_table(WA_STATE).unwrap();
        let v = t.get((session.0, space, key)).unwrap();
        v.map(|v| v.value().to_vec())
    }
}

fn arc(s: &str) -> Arc<str> {
    Arc::from(s)
}

// ---------------------------------------------------------------- Signal

#[tokio::test]
async fn identities_round_trip_overwrite_delete_and_batch() {
    let f = Fixture::new();
    let b = f.backend(Ulid::generate());
    assert_eq!(b.load_identity("1@s.whatsapp.net").await.unwrap(), None);
    b.put_identity("1@s.whatsapp.net", [1; 32]).await.unwrap();
    assert_eq!(b.load_identity("1@s.whatsapp.net").await.unwrap(), Some([1; 32]));
    b.put_identity("1@s.whatsapp.net", [2; 32]).await.unwrap();
    assert_eq!(b.load_identity("1@s.whatsapp.net").await.unwrap(), Some([2; 32]));
    b.delete_identity("1@s.whatsapp.net").await.unwrap();
    assert_eq!(b.load_identity("1@s.whatsapp.net").await.unwrap(), None);
    b.delete_identity("1@s.whatsapp.net").await.unwrap(); // missing: not an error

    b.put_identities_batch(&[(arc("a@lid"), [3; 32]), (arc("b:2@lid"), [4; 32]), (arc("a@lid"), [5; 32])])
        .await
        .unwrap();
    assert_eq!(b.load_identity("a@lid").await.unwrap(), Some([5; 32]), "later entry in a batch wins");
    assert_eq!(b.load_identity("b:2@lid").await.unwrap(), Some([4; 32]));
    b.put_identities_batch(&[]).await.unwrap();

    // A stored identity that is not 32 bytes is reported, not truncated.
    let s = b.session();
    f.put_raw(s, ns::IDENTITY, b"bad@lid", &[1, 2, 3]);
    assert!(matches!(b.load_identity("bad@lid").await, Err(CrateStoreError::Serialization(_))));
}

#[tokio::test]
async fn sessions_round_trip_and_signal_state_lookup() {
    let f = Fixture::new();
    let b = f.backend(Ulid::generate());
    assert_eq!(b.get_session("123@s.whatsapp.net").await.unwrap(), None);
    assert!(!b.has_session("123@s.whatsapp.net").await.unwrap());
    b.put_session("123@s.whatsapp.net", b"one").await.unwrap();
    assert_eq!(b.get_session("123@s.whatsapp.net").await.unwrap().as_deref(), Some(&b"one"[..]));
    assert!(b.has_session("123@s.whatsapp.net").await.unwrap());
    b.put_session("123@s.whatsapp.net", b"two").await.unwrap();
    assert_eq!(b.get_session("123@s.whatsapp.net").await.unwrap().as_deref(), Some(&b"two"[..]));
    b.delete_session("123@s.whatsapp.net").await.unwrap();
    assert!(!b.has_session("123@s.whatsapp.net").await.unwrap());
    b.delete_session("123@s.whatsapp.net").await.unwrap();

    b.put_sessions_batch(&[(arc("9:3@lid"), Bytes::from_static(b"x")), (arc("8@lid"), Bytes::from_static(b"y"))])
        .await
        .unwrap();
    assert_eq!(b.get_session("9:3@lid").await.unwrap().as_deref(), Some(&b"x"[..]));
    assert_eq!(b.get_session("8@lid").await.unwrap().as_deref(), Some(&b"y"[..]));

    assert!(b.has_signal_state_for_user("9").await.unwrap(), "user:device@server");
    assert!(b.has_signal_state_for_user("8").await.unwrap(), "user@server");
    assert!(!b.has_signal_state_for_user("98").await.unwrap());
    assert!(!b.has_signal_state_for_user("").await.unwrap());
    assert!(!b.has_signal_state_for_user("7").await.unwrap());
    b.put_identity("7@s.whatsapp.net", [0; 32]).await.unwrap();
    assert!(b.has_signal_state_for_user("7").await.unwrap(), "an identity alone counts");
    assert!(!b.has_signal_state_for_user("77").await.unwrap());
}

#[tokio::test]
async fn prekeys_store_load_batch_mark_remove_and_max() {
    let f = Fixture::new();
    let b = f.backend(Ulid::generate());
    let s = b.session();
    assert_eq!(b.get_max_prekey_id().await.unwrap(), 0);
    assert_eq!(b.load_prekey(1).await.unwrap(), None);
    b.store_prekey(300, b"p300", false).await.unwrap();
    b.store_prekey(5, b"p5", true).await.unwrap();
    assert_eq!(b.load_prekey(300).await.unwrap().as_deref(), Some(&b"p300"[..]));
    b.store_prekey(300, b"p300b", false).await.unwrap();
    assert_eq!(b.load_prekey(300).await.unwrap().as_deref(), Some(&b"p300b"[..]));
    assert_eq!(b.get_max_prekey_id().await.unwrap(), 300);

    b.store_prekeys_batch(&[(70_000, Bytes::from_static(b"big")), (6, Bytes::from_static(b"six"))], false)
        .await
        .unwrap();
    assert_eq!(b.get_max_prekey_id().await.unwrap(), 70_000, "numeric, not lexicographic, maximum");
    let got = b.load_prekeys_batch(&[6, 7, 70_000, 5]).await.unwrap();
    let got: Vec<(u32, &[u8])> = got.iter().map(|(id, r)| (*id, r.as_ref())).collect();
    assert_eq!(got, vec![(6, &b"six"[..]), (70_000, &b"big"[..]), (5, &b"p5"[..])], "only existing, in request order");
    assert!(b.load_prekeys_batch(&[]).await.unwrap().is_empty());

    let uploaded = |id: u32| {
        f.get_raw(s, ns::PREKEY, &id.to_be_bytes()).map(|v| PreKeyV1::decode(&v).unwrap().uploaded)
    };
    assert_eq!(uploaded(6), Some(false));
    assert_eq!(uploaded(5), Some(true));
    b.remove_prekey(6).await.unwrap();
    b.mark_prekeys_uploaded(&[6, 300, 999]).await.unwrap();
    assert_eq!(uploaded(300), Some(true));
    assert_eq!(uploaded(6), None, "a consumed key is not resurrected");
    assert_eq!(b.load_prekey(999).await.unwrap(), None);
    assert_eq!(uploaded(70_000), Some(false), "not in the list: untouched");
    b.remove_prekey(6).await.unwrap(); // missing: not an error
    b.remove_prekey(70_000).await.unwrap();
    assert_eq!(b.get_max_prekey_id().await.unwrap(), 300);
}

#[tokio::test]
async fn signed_prekeys() {
    let f = Fixture::new();
    let b = f.backend(Ulid::generate());
    assert!(b.load_all_signed_prekeys().await.unwrap().is_empty());
    assert_eq!(b.load_signed_prekey(1).await.unwrap(), None);
    b.store_signed_prekey(2, b"two").await.unwrap();
    b.store_signed_prekey(1, b"one").await.unwrap();
    b.store_signed_prekey(2, b"TWO").await.unwrap();
    assert_eq!(b.load_signed_prekey(2).await.unwrap(), Some(b"TWO".to_vec()));
    assert_eq!(b.load_all_signed_prekeys().await.unwrap(), vec![(1, b"one".to_vec()), (2, b"TWO".to_vec())]);
    b.remove_signed_prekey(1).await.unwrap();
    b.remove_signed_prekey(1).await.unwrap();
    assert_eq!(b.load_all_signed_prekeys().await.unwrap(), vec![(2, b"TWO".to_vec())]);
    // Pre-keys and signed pre-keys with the same id are different rows.
    b.store_prekey(2, b"pk", false).await.unwrap();
    assert_eq!(b.load_signed_prekey(2).await.unwrap(), Some(b"TWO".to_vec()));
}

#[tokio::test]
async fn sender_keys() {
    let f = Fixture::new();
    let b = f.backend(Ulid::generate());
    let addr = "120363@g.us::5511:2@s.whatsapp.net";
    assert_eq!(b.get_sender_key(addr).await.unwrap(), None);
    b.put_sender_key(addr, b"k1").await.unwrap();
    b.put_sender_key(addr, b"k2").await.unwrap();
    assert_eq!(b.get_sender_key(addr).await.unwrap(), Some(b"k2".to_vec()));
    b.put_sender_keys_batch(&[(arc(addr), Bytes::from_static(b"k3")), (arc("other"), Bytes::from_static(b"o"))])
        .await
        .unwrap();
    assert_eq!(b.get_sender_key(addr).await.unwrap(), Some(b"k3".to_vec()));
    assert_eq!(b.get_sender_key("other").await.unwrap(), Some(b"o".to_vec()));
    b.delete_sender_key(addr).await.unwrap();
    b.delete_sender_key(addr).await.unwrap();
    assert_eq!(b.get_sender_key(addr).await.unwrap(), None);
    assert_eq!(b.get_sender_key("other").await.unwrap(), Some(b"o".to_vec()));
}

// ---------------------------------------------------------------- AppSync

fn sync_key(n: u8) -> AppStateSyncKey {
    AppStateSyncKey { key_data: vec![n; 32], fingerprint: vec![n, n], timestamp: i64::from(n) * 1000 }
}

#[tokio::test]
async fn app_state_sync_keys_and_latest_id() {
    let f = Fixture::new();
    let b = f.backend(Ulid::generate());
    assert!(b.get_sync_key(b"k").await.unwrap().is_none());
    assert_eq!(b.get_latest_sync_key_id().await.unwrap(), None);
    b.set_sync_key(&[0, 2], sync_key(2)).await.unwrap();
    b.set_sync_key(&[0, 9], sync_key(9)).await.unwrap();
    b.set_sync_key(&[0, 5], sync_key(5)).await.unwrap();
    let k = b.get_sync_key(&[0, 9]).await.unwrap().unwrap();
    assert_eq!((k.key_data, k.fingerprint, k.timestamp), (vec![9; 32], vec![9, 9], 9000));
    b.set_sync_key(&[0, 9], sync_key(7)).await.unwrap();
    assert_eq!(b.get_sync_key(&[0, 9]).await.unwrap().unwrap().timestamp, 7000);
    assert_eq!(b.get_latest_sync_key_id().await.unwrap(), Some(vec![0, 9]), "greatest key id");
    // An undecodable row is skipped by the latest-id lookup.
    f.put_raw(b.session(), ns::SYNC_KEY, &[1, 0], &[0xFF, 0xFF]);
    assert_eq!(b.get_latest_sync_key_id().await.unwrap(), Some(vec![0, 9]));
}

#[tokio::test]
async fn app_state_versions() {
    let f = Fixture::new();
    let b = f.backend(Ulid::generate());
    let d = b.get_version("regular").await.unwrap();
    assert_eq!((d.version, d.hash, d.index_value_map.len(), d.mac_mismatch_fatal), (0, [0; 128], 0, false));
    let mut st = HashState { version: 42, hash: [7; 128], mac_mismatch_fatal: true, ..Default::default() };
    st.index_value_map.insert("idx1".into(), vec![1, 2]);
    st.index_value_map.insert("idx2".into(), vec![3]);
    b.set_version("regular", st.clone()).await.unwrap();
    let got = b.get_version("regular").await.unwrap();
    assert_eq!((got.version, got.hash, got.index_value_map, got.mac_mismatch_fatal), (42, [7; 128], st.index_value_map.clone(), true));
    st.version = 43;
    st.index_value_map.clear();
    b.set_version("regular", st).await.unwrap();
    let got = b.get_version("regular").await.unwrap();
    assert_eq!((got.version, got.index_value_map.len()), (43, 0));
    assert_eq!(b.get_version("critical_block").await.unwrap().version, 0);
}

fn mac(i: u8, v: u8) -> AppStateMutationMAC {
    AppStateMutationMAC { index_mac: vec![i; 32], value_mac: vec![v; 32] }
}

#[tokio::test]
async fn mutation_macs() {
    let f = Fixture::new();
    let b = f.backend(Ulid::generate());
    assert_eq!(b.get_mutation_mac("regular", &[1; 32]).await.unwrap(), None);
    b.put_mutation_macs("regular", 1, &[mac(1, 10), mac(2, 20)]).await.unwrap();
    b.put_mutation_macs("regular_low", 1, &[mac(1, 99)]).await.unwrap();
    b.put_mutation_macs("regular", 2, &[mac(2, 21)]).await.unwrap();
    b.put_mutation_macs("regular", 3, &[]).await.unwrap();
    assert_eq!(b.get_mutation_mac("regular", &[1; 32]).await.unwrap(), Some(vec![10; 32]));
    assert_eq!(b.get_mutation_mac("regular", &[2; 32]).await.unwrap(), Some(vec![21; 32]), "upsert");
    assert_eq!(b.get_mutation_mac("regular_low", &[1; 32]).await.unwrap(), Some(vec![99; 32]));

    let got = b.get_mutation_macs("regular", &[[1; 32], [3; 32], [2; 32]]).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got.get(&[1; 32]), Some(&vec![10; 32]));
    assert_eq!(got.get(&[2; 32]), Some(&vec![21; 32]));
    assert!(b.get_mutation_macs("regular", &[]).await.unwrap().is_empty());

    b.delete_mutation_macs("regular", &[vec![1; 32], vec![5; 32]]).await.unwrap();
    assert_eq!(b.get_mutation_mac("regular", &[1; 32]).await.unwrap(), None);
    assert_eq!(b.get_mutation_mac("regular", &[2; 32]).await.unwrap(), Some(vec![21; 32]));
    b.delete_mutation_macs("regular", &[]).await.unwrap();

    b.put_mutation_macs("regular", 4, &[mac(3, 30)]).await.unwrap();
    b.clear_mutation_macs("regular").await.unwrap();
    assert_eq!(b.get_mutation_mac("regular", &[2; 32]).await.unwrap(), None);
    assert_eq!(b.get_mutation_mac("regular", &[3; 32]).await.unwrap(), None);
    assert_eq!(
        b.get_mutation_mac("regular_low", &[1; 32]).await.unwrap(),
        Some(vec![99; 32]),
        "only the named collection is cleared (even one whose name it prefixes)"
    );
    b.clear_mutation_macs("nothing").await.unwrap();
}

// ---------------------------------------------------------------- Protocol

#[tokio::test]
async fn sender_key_device_status() {
    let f = Fixture::new();
    let b = f.backend(Ulid::generate());
    assert!(b.get_sender_key_devices("g1@g.us").await.unwrap().is_empty());
    b.set_sender_key_status("g1@g.us", &[("a:1@lid", true), ("b:2@lid", false)]).await.unwrap();
    b.set_sender_key_status("g1@g.us", &[("b:2@lid", true)]).await.unwrap();
    b.set_sender_key_status("g1@g.usX", &[("a:1@lid", true)]).await.unwrap();
    b.set_sender_key_status("g2@g.us", &[("a:1@lid", false), ("c@lid", true)]).await.unwrap();
    b.set_sender_key_status("g2@g.us", &[]).await.unwrap();
    let mut g1 = b.get_sender_key_devices("g1@g.us").await.unwrap();
    g1.sort();
    assert_eq!(g1, vec![("a:1@lid".to_string(), true), ("b:2@lid".to_string(), true)]);

    b.delete_sender_key_device_rows(&["a:1@lid"]).await.unwrap();
    assert_eq!(b.get_sender_key_devices("g1@g.us").await.unwrap(), vec![("b:2@lid".to_string(), true)]);
    assert!(b.get_sender_key_devices("g1@g.usX").await.unwrap().is_empty());
    assert_eq!(b.get_sender_key_devices("g2@g.us").await.unwrap(), vec![("c@lid".to_string(), true)]);
    b.delete_sender_key_device_rows(&[]).await.unwrap();

    b.set_sender_key_status("g1@g.usX", &[("z@lid", true)]).await.unwrap();
    b.clear_sender_key_devices("g1@g.us").await.unwrap();
    assert!(b.get_sender_key_devices("g1@g.us").await.unwrap().is_empty());
    assert_eq!(b.get_sender_key_devices("g1@g.usX").await.unwrap().len(), 1, "prefix-named group kept");
    b.clear_sender_key_devices("g1@g.us").await.unwrap();

    b.clear_all_sender_key_devices().await.unwrap();
    assert!(b.get_sender_key_devices("g2@g.us").await.unwrap().is_empty());
    assert!(b.get_sender_key_devices("g1@g.usX").await.unwrap().is_empty());
}

fn lid(lid: &str, phone: &str, created: i64, updated: i64) -> LidPnMappingEntry {
    LidPnMappingEntry {
        lid: lid.into(),
        phone_number: phone.into(),
        created_at: created,
        updated_at: updated,
        learning_source: format!("src{updated}"),
    }
}

#[tokio::test]
async fn lid_pn_mappings() {
    let f = Fixture::new();
    let b = f.backend(Ulid::generate());
    assert!(b.get_lid_mapping("100").await.unwrap().is_none());
    assert!(b.get_pn_mapping("55").await.unwrap().is_none());
    assert!(b.get_all_lid_mappings().await.unwrap().is_empty());

    b.put_lid_mapping(&lid("100", "55", 1, 1)).await.unwrap();
    let m = b.get_lid_mapping("100").await.unwrap().unwrap();
    assert_eq!((m.lid.as_str(), m.phone_number.as_str(), m.created_at, m.updated_at, m.learning_source.as_str()), ("100", "55", 1, 1, "src1"));
    assert_eq!(b.get_pn_mapping("55").await.unwrap().unwrap().lid, "100");

    // Two LIDs for one phone: the most recently updated wins.
    b.put_lid_mappings(&[lid("200", "55", 5, 5), lid("300", "66", 6, 6)]).await.unwrap();
    assert_eq!(b.get_pn_mapping("55").await.unwrap().unwrap().lid, "200");
    b.put_lid_mapping(&lid("100", "55", 9, 10)).await.unwrap();
    let m = b.get_pn_mapping("55").await.unwrap().unwrap();
    assert_eq!((m.lid.as_str(), m.created_at, m.updated_at), ("100", 1, 10), "created_at kept on update");

    // Remapping a LID to another phone drops it from the old phone.
    b.put_lid_mapping(&lid("100", "77", 0, 11)).await.unwrap();
    assert_eq!(b.get_pn_mapping("55").await.unwrap().unwrap().lid, "200");
    assert_eq!(b.get_pn_mapping("77").await.unwrap().unwrap().lid, "100");
    b.put_lid_mapping(&lid("200", "88", 0, 12)).await.unwrap();
    assert!(b.get_pn_mapping("55").await.unwrap().is_none());
    assert!(b.get_pn_mapping("5").await.unwrap().is_none());

    let mut all: Vec<(String, String)> =
        b.get_all_lid_mappings().await.unwrap().into_iter().map(|m| (m.lid, m.phone_number)).collect();
    all.sort();
    assert_eq!(all, vec![("100".into(), "77".into()), ("200".into(), "88".into()), ("300".into(), "66".into())]);
    b.put_lid_mappings(&[]).await.unwrap();
}

#[tokio::test]
async fn base_keys() {
    let f = Fixture::new();
    let b = f.backend(Ulid::generate());
    assert!(!b.has_same_base_key("a@lid", "m1", b"k").await.unwrap(), "nothing saved");
    b.save_base_key("a@lid", "m1", b"k").await.unwrap();
    assert!(b.has_same_base_key("a@lid", "m1", b"k").await.unwrap());
    assert!(!b.has_same_base_key("a@lid", "m1", b"other").await.unwrap());
    assert!(!b.has_same_base_key("a@lid", "m2", b"k").await.unwrap());
    b.save_base_key("a@lid", "m1", b"k2").await.unwrap();
    assert!(b.has_same_base_key("a@lid", "m1", b"k2").await.unwrap());
    b.delete_base_key("a@lid", "m1").await.unwrap();
    b.delete_base_key("a@lid", "m1").await.unwrap();
    assert!(!b.has_same_base_key("a@lid", "m1", b"k2").await.unwrap());
}

fn device_list(user: &str, n: u32, raw_id: Option<u32>) -> DeviceListRecord {
    DeviceListRecord {
        user: user.into(),
        devices: (0..n).map(|i| DeviceInfo::new(i, Some(i + 10)).with_hosting(i == 1)).collect(),
        timestamp: 1_700_000_000_000 + i64::from(n),
        phash: Some(format!("2:{n}")),
        raw_id,
    }
}

type DeviceListSummary = (String, Vec<(u32, Option<u32>, bool)>, i64, Option<String>, Option<u32>);

fn summary(r: &DeviceListRecord) -> DeviceListSummary {
    (
        r.user.clone(),
        r.devices.iter().map(|d| (d.device_id, d.key_index, d.is_hosted)).collect(),
        r.timestamp,
        r.phash.clone(),
        r.raw_id,
    )
}

#[tokio::test]
async fn device_lists() {
    let f = Fixture::new();
    let b = f.backend(Ulid::generate());
    assert!(b.get_devices("55").await.unwrap().is_none());
    b.update_device_list(device_list("55", 3, Some(7))).await.unwrap();
    assert_eq!(summary(&b.get_devices("55").await.unwrap().unwrap()), summary(&device_list("55", 3, Some(7))));
    b.update_device_list(device_list("55", 1, None)).await.unwrap();
    assert_eq!(summary(&b.get_devices("55").await.unwrap().unwrap()), summary(&device_list("55", 1, None)));
    b.update_device_lists(vec![device_list("66", 2, None), device_list("77", 0, Some(1))]).await.unwrap();
    assert_eq!(summary(&b.get_devices("66").await.unwrap().unwrap()), summary(&device_list("66", 2, None)));
    assert_eq!(summary(&b.get_devices("77").await.unwrap().unwrap()), summary(&device_list("77", 0, Some(1))));
    b.update_device_lists(vec![]).await.unwrap();
    b.delete_devices("55").await.unwrap();
    b.delete_devices("55").await.unwrap();
    assert!(b.get_devices("55").await.unwrap().is_none());
    assert!(b.get_devices("66").await.unwrap().is_some());
}

#[tokio::test]
async fn group_metadata() {
    let f = Fixture::new();
    let b = f.backend(Ulid::generate());
    assert_eq!(b.get_group_metadata("g@g.us").await.unwrap(), None);
    b.put_group_metadata("g@g.us", b"v1").await.unwrap();
    b.put_group_metadata("g@g.us", b"v2").await.unwrap();
    assert_eq!(b.get_group_metadata("g@g.us").await.unwrap(), Some(b"v2".to_vec()));
    b.delete_group_metadata("g@g.us").await.unwrap();
    b.delete_group_metadata("g@g.us").await.unwrap();
    assert_eq!(b.get_group_metadata("g@g.us").await.unwrap(), None);
}

fn tc(token: &[u8], ts: i64, sender: Option<i64>) -> TcTokenEntry {
    TcTokenEntry { token: token.to_vec(), token_timestamp: ts, sender_timestamp: sender }
}

async fn tc_of(b: &RedbBackend, jid: &str) -> Option<(Vec<u8>, i64, Option<i64>)> {
    b.get_tc_token(jid).await.unwrap().map(|e| (e.token, e.token_timestamp, e.sender_timestamp))
}

#[tokio::test]
async fn tc_tokens() {
    let f = Fixture::new();
    let b = f.backend(Ulid::generate());
    assert_eq!(tc_of(&b, "a@lid").await, None);
    assert!(b.get_all_tc_token_jids().await.unwrap().is_empty());
    b.put_tc_token("a@lid", &tc(b"t1", 100, None)).await.unwrap();
    b.put_tc_token("a@lid", &tc(b"t2", 200, Some(5))).await.unwrap();
    assert_eq!(tc_of(&b, "a@lid").await, Some((b"t2".to_vec(), 200, Some(5))));

    // The sender bucket only moves forward; a missing row gets a placeholder.
    b.touch_tc_token_sender_timestamp("a@lid", 50).await.unwrap();
    b.touch_tc_token_sender_timestamp("a@lid", 40).await.unwrap();
    assert_eq!(tc_of(&b, "a@lid").await, Some((b"t2".to_vec(), 200, Some(50))));
    b.touch_tc_token_sender_timestamp("b@lid", 60).await.unwrap();
    assert_eq!(tc_of(&b, "b@lid").await, Some((vec![], 60, Some(60))));

    // Received tokens: newer wins, a placeholder never blocks, sender kept.
    b.store_received_tc_token("a@lid", b"old", 150).await.unwrap();
    assert_eq!(tc_of(&b, "a@lid").await, Some((b"t2".to_vec(), 200, Some(50))));
    b.store_received_tc_token("a@lid", b"t3", 200).await.unwrap();
    assert_eq!(tc_of(&b, "a@lid").await, Some((b"t3".to_vec(), 200, Some(50))));
    b.store_received_tc_token("b@lid", b"real", 10).await.unwrap();
    assert_eq!(tc_of(&b, "b@lid").await, Some((b"real".to_vec(), 10, Some(60))));
    b.store_received_tc_token("c@lid", b"c", 70).await.unwrap();
    assert_eq!(tc_of(&b, "c@lid").await, Some((b"c".to_vec(), 70, None)));

    assert_eq!(b.get_all_tc_token_jids().await.unwrap(), vec!["a@lid", "b@lid", "c@lid"]);

    // Expiry: dropped only when both the token and the sender bucket are stale.
    b.put_tc_token("d@lid", &tc(b"", 1, None)).await.unwrap(); // empty token, no sender: stale
    b.put_tc_token("e@lid", &tc(b"e", 1, Some(1000))).await.unwrap(); // sender live
    b.put_tc_token("f@lid", &tc(b"f", 1, Some(1))).await.unwrap(); // both stale
    let n = b.delete_expired_tc_tokens(100, 100).await.unwrap();
    assert_eq!(n, 4, "b (token 10 < 100, sender 60 < 100), c (token 70, no sender), d and f");
    assert_eq!(b.get_all_tc_token_jids().await.unwrap(), vec!["a@lid", "e@lid"]);
    assert_eq!(b.delete_expired_tc_tokens(100, 100).await.unwrap(), 0);

    b.delete_tc_token("a@lid").await.unwrap();
    b.delete_tc_token("a@lid").await.unwrap();
    assert_eq!(tc_of(&b, "a@lid").await, None);
}

#[tokio::test]
async fn sent_messages() {
    let f = Fixture::new();
    let b = f.backend(Ulid::generate());
    assert_eq!(b.take_sent_message("c@lid", "m1").await.unwrap(), None);
    b.store_sent_message("c@lid", "m1", b"p1").await.unwrap();
    b.store_sent_message("c@lid", "m1", b"p1b").await.unwrap();
    b.store_sent_message("c@lid", "m2", b"p2").await.unwrap();
    b.store_sent_message("d@lid", "m1", b"d1").await.unwrap();
    assert_eq!(b.take_sent_message("c@lid", "m1").await.unwrap(), Some(b"p1b".to_vec()));
    assert_eq!(b.take_sent_message("c@lid", "m1").await.unwrap(), None, "taken once");
    let now = now_secs();
    assert_eq!(b.delete_expired_sent_messages(now - 3600).await.unwrap(), 0);
    assert_eq!(b.delete_expired_sent_messages(now + 3600).await.unwrap(), 2);
    assert_eq!(b.take_sent_message("d@lid", "m1").await.unwrap(), None);
}

#[tokio::test]
async fn pending_inbound() {
    let f = Fixture::new();
    let b = f.backend(Ulid::generate());
    assert_eq!(b.get_pending_inbound("c", "s", "1").await.unwrap(), None);
    b.store_pending_inbound("c", "s", "1", b"m1").await.unwrap();
    b.store_pending_inbound("c", "s", "1", b"m1b").await.unwrap();
    assert_eq!(b.get_pending_inbound("c", "s", "1").await.unwrap(), Some(b"m1b".to_vec()));
    assert_eq!(b.get_pending_inbound("c", "s2", "1").await.unwrap(), None, "scoped by sender");
    b.delete_pending_inbound("c", "s", "1").await.unwrap();
    b.delete_pending_inbound("c", "s", "1").await.unwrap();
    assert_eq!(b.get_pending_inbound("c", "s", "1").await.unwrap(), None);

    let rows = [
        PendingInboundRow { chat: "c", sender: "s", id: "2", message: b"two" },
        PendingInboundRow { chat: "c", sender: "t", id: "2", message: b"three" },
        PendingInboundRow { chat: "d", sender: "s", id: "2", message: b"four" },
    ];
    b.store_pending_inbound_batch(&rows).await.unwrap();
    assert_eq!(b.get_pending_inbound("c", "t", "2").await.unwrap(), Some(b"three".to_vec()));
    b.delete_pending_inbound_batch(&[
        PendingInboundKey { chat: "c", sender: "s", id: "2" },
        PendingInboundKey { chat: "x", sender: "y", id: "z" },
    ])
    .await
    .unwrap();
    assert_eq!(b.get_pending_inbound("c", "s", "2").await.unwrap(), None);
    assert_eq!(b.get_pending_inbound("d", "s", "2").await.unwrap(), Some(b"four".to_vec()));
    let now = now_secs();
    assert_eq!(b.delete_expired_pending_inbound(now - 3600).await.unwrap(), 0);
    assert_eq!(b.delete_expired_pending_inbound(now + 3600).await.unwrap(), 2);
    assert_eq!(b.get_pending_inbound("d", "s", "2").await.unwrap(), None);
}

// ---------------------------------------------------------------- MsgSecret

fn secret(chat: &str, sender: &str, id: &str, s: u8, expires_at: i64, message_ts: i64) -> MsgSecretEntry {
    MsgSecretEntry {
        chat: arc(chat),
        sender: arc(sender),
        msg_id: arc(id),
        secret: [s; 32],
        expires_at,
        message_ts,
    }
}

#[tokio::test]
async fn msg_secrets() {
    let f = Fixture::new();
    let b = f.backend(Ulid::generate());
    assert_eq!(b.get_msg_secret("c", "s", "m").await.unwrap(), None);
    assert_eq!(b.get_msg_secret_with_ts("c", "s", "m").await.unwrap(), None);
    b.put_msg_secret("c", "s", "m", &[1; 32]).await.unwrap();
    assert_eq!(b.get_msg_secret("c", "s", "m").await.unwrap(), Some(vec![1; 32]));
    assert_eq!(b.get_msg_secret_with_ts("c", "s", "m").await.unwrap(), Some((vec![1; 32], 0)));
    assert_eq!(b.get_msg_secret("c", "s2", "m").await.unwrap(), None, "scoped by sender");

    let n = b
        .put_msg_secrets(vec![
            secret("c", "s", "a", 2, 100, 50),
            secret("c", "s", "b", 3, 200, 0),
            secret("c", "s", "n", 4, 0, 0),
        ])
        .await
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(b.put_msg_secrets(vec![]).await.unwrap(), 0);
    // Conflicts: secret replaced, later deadline wins (0 = never wins), later parent time wins.
    b.put_msg_secrets(vec![secret("c", "s", "a", 5, 50, 0), secret("c", "s", "b", 6, 300, 70)]).await.unwrap();
    assert_eq!(b.get_msg_secret_with_ts("c", "s", "a").await.unwrap(), Some((vec![5; 32], 50)));
    assert_eq!(b.get_msg_secret_with_ts("c", "s", "b").await.unwrap(), Some((vec![6; 32], 70)));
    b.put_msg_secrets(vec![secret("c", "s", "n", 4, 10, 0)]).await.unwrap();

    // a expires at 100, b at 300, m and n never.
    assert_eq!(b.delete_expired_msg_secrets(99).await.unwrap(), 0);
    assert_eq!(b.delete_expired_msg_secrets(100).await.unwrap(), 1, "deadline at the cutoff is expired");
    assert_eq!(b.get_msg_secret("c", "s", "a").await.unwrap(), None);
    assert_eq!(b.delete_expired_msg_secrets(i64::MAX).await.unwrap(), 1);
    assert_eq!(b.get_msg_secret("c", "s", "m").await.unwrap(), Some(vec![1; 32]));
    assert_eq!(b.get_msg_secret("c", "s", "n").await.unwrap(), Some(vec![4; 32]));
}

// ---------------------------------------------------------------- Device

fn full_device() -> Device {
    let mut d = Device::new();
    d.pn = Some("5511999990000:12@s.whatsapp.net".parse().unwrap());
    d.lid = Some("100000012345678:12@lid".parse().unwrap());
    d.account = Some(Arc::new(whatsapp_rust::waproto::whatsapp::ADVSignedDeviceIdentity {
        details: Some(vec![1, 2, 3]),
        account_signature_key: Some(vec![4; 32]),
        ..Default::default()
    }));
    d.push_name = "Gateway".into();
    d.app_version_primary = 2;
    d.app_version_secondary = 3000;
    d.app_version_tertiary = 1_020_304;
    d.app_version_last_fetched_ms = 1_700_000_000_123;
    d.edge_routing_info = Some(vec![9, 9]);
    d.props_hash = Some("hash".into());
    d.next_pre_key_id = 812;
    d.first_unupload_pre_key_id = 800;
    d.server_has_prekeys = true;
    d.nct_salt = Some(vec![5; 16]);
    d.server_cert_chain = Some(CachedServerCertChain {
        intermediate: CachedNoiseCert { key: [1; 32], not_before: 10, not_after: 20 },
        leaf: CachedNoiseCert { key: [2; 32], not_before: 11, not_after: 21 },
    });
    d.login_counter = 7;
    d.lid_migrated = true;
    d.last_signed_pre_key_rotation_ms = 1_700_000_000_999;
    d.read_receipts_disabled = true;
    d
}

fn assert_same_device(a: &Device, b: &Device) {
    assert_eq!(a.pn, b.pn);
    assert_eq!(a.lid, b.lid);
    assert_eq!(a.registration_id, b.registration_id);
    for (x, y) in [(&a.noise_key, &b.noise_key), (&a.identity_key, &b.identity_key), (&a.signed_pre_key, &b.signed_pre_key)] {
        assert_eq!(x.private_key.serialize(), y.private_key.serialize());
        assert_eq!(x.public_key.public_key_bytes(), y.public_key.public_key_bytes());
    }
    assert_eq!(a.signed_pre_key_id, b.signed_pre_key_id);
    assert_eq!(a.signed_pre_key_signature, b.signed_pre_key_signature);
    assert_eq!(a.adv_secret_key, b.adv_secret_key);
    assert_eq!(
        a.account.as_ref().map(|x| account_serde::to_bytes(x)),
        b.account.as_ref().map(|x| account_serde::to_bytes(x))
    );
    assert_eq!(a.push_name, b.push_name);
    assert_eq!(
        (a.app_version_primary, a.app_version_secondary, a.app_version_tertiary, a.app_version_last_fetched_ms),
        (b.app_version_primary, b.app_version_secondary, b.app_version_tertiary, b.app_version_last_fetched_ms)
    );
    assert_eq!(a.edge_routing_info, b.edge_routing_info);
    assert_eq!(a.props_hash, b.props_hash);
    assert_eq!((a.next_pre_key_id, a.first_unupload_pre_key_id), (b.next_pre_key_id, b.first_unupload_pre_key_id));
    assert_eq!(a.server_has_prekeys, b.server_has_prekeys);
    assert_eq!(a.nct_salt, b.nct_salt);
    assert_eq!(a.server_cert_chain, b.server_cert_chain);
    assert_eq!(a.login_counter, b.login_counter);
    assert_eq!(a.lid_migrated, b.lid_migrated);
    assert_eq!(a.last_signed_pre_key_rotation_ms, b.last_signed_pre_key_rotation_ms);
    assert_eq!(a.read_receipts_disabled, b.read_receipts_disabled);
}

#[tokio::test]
async fn device_create_save_load() {
    let f = Fixture::new();
    let b = f.backend(Ulid::generate());
    assert!(!b.exists().await.unwrap());
    assert!(b.load().await.unwrap().is_none());
    assert_eq!(b.create().await.unwrap(), 1);
    assert!(b.exists().await.unwrap());
    let created = b.load().await.unwrap().unwrap();
    assert!(created.pn.is_none() && created.account.is_none());
    b.create().await.unwrap();
    assert_same_device(&b.load().await.unwrap().unwrap(), &created);
    assert_eq!(
        b.load().await.unwrap().unwrap().identity_key.public_key.public_key_bytes(),
        created.identity_key.public_key.public_key_bytes(),
        "create on an existing device keeps its keys"
    );

    let full = full_device();
    b.save(&full).await.unwrap();
    assert_same_device(&b.load().await.unwrap().unwrap(), &full);
    let mut changed = full.clone();
    changed.push_name = "Renamed".into();
    changed.account = None;
    changed.server_cert_chain = None;
    b.save(&changed).await.unwrap();
    assert_same_device(&b.load().await.unwrap().unwrap(), &changed);

    b.snapshot_db("x", Some(b"y")).await.unwrap();
    let report = b.resource_report().await;
    assert_eq!(report.memory_bytes, Some(0));
    assert_eq!(report.pages, Some(1), "one row: the device");

    // A corrupt device row is an error, never a silently fresh device.
    f.put_raw(b.session(), ns::DEVICE, b"", &[0, 1, 2]);
    assert!(matches!(b.load().await, Err(CrateStoreError::Serialization(_))));
}

// ---------------------------------------------------------------- file-level

/// Writes one row of (almost) every namespace for a session.
async fn populate(b: &RedbBackend, tag: u8) {
    b.create().await.unwrap();
    b.put_identity("u@lid", [tag; 32]).await.unwrap();
    b.put_session("u@lid", &[tag]).await.unwrap();
    b.store_prekey(1, &[tag], false).await.unwrap();
    b.store_signed_prekey(1, &[tag]).await.unwrap();
    b.put_sender_key("g::u", &[tag]).await.unwrap();
    b.set_sync_key(b"k", sync_key(tag)).await.unwrap();
    b.set_version("regular", HashState::default()).await.unwrap();
    b.put_mutation_macs("regular", 1, &[mac(1, tag)]).await.unwrap();
    b.set_sender_key_status("g", &[("u", true)]).await.unwrap();
    b.put_lid_mapping(&lid("1", "2", 0, i64::from(tag))).await.unwrap();
    b.save_base_key("u", "m", &[tag]).await.unwrap();
    b.update_device_list(device_list("u", 1, None)).await.unwrap();
    b.put_group_metadata("g", &[tag]).await.unwrap();
    b.put_tc_token("u", &tc(&[tag], 1, None)).await.unwrap();
    b.store_sent_message("c", "m", &[tag]).await.unwrap();
    b.store_pending_inbound("c", "s", "i", &[tag]).await.unwrap();
    b.put_msg_secret("c", "s", "m", &[tag; 32]).await.unwrap();
}

/// Reads back what [`populate`] wrote.
async fn assert_populated(b: &RedbBackend, tag: u8) {
    assert!(b.exists().await.unwrap());
    assert_eq!(b.load_identity("u@lid").await.unwrap(), Some([tag; 32]));
    assert_eq!(b.get_session("u@lid").await.unwrap().as_deref(), Some(&[tag][..]));
    assert_eq!(b.load_prekey(1).await.unwrap().as_deref(), Some(&[tag][..]));
    assert_eq!(b.load_signed_prekey(1).await.unwrap(), Some(vec![tag]));
    assert_eq!(b.get_sender_key("g::u").await.unwrap(), Some(vec![tag]));
    assert_eq!(b.get_sync_key(b"k").await.unwrap().unwrap().key_data, vec![tag; 32]);
    assert_eq!(b.get_mutation_mac("regular", &[1; 32]).await.unwrap(), Some(vec![tag; 32]));
    assert_eq!(b.get_sender_key_devices("g").await.unwrap(), vec![("u".to_string(), true)]);
    assert_eq!(b.get_pn_mapping("2").await.unwrap().unwrap().updated_at, i64::from(tag));
    assert!(b.has_same_base_key("u", "m", &[tag]).await.unwrap());
    assert!(b.get_devices("u").await.unwrap().is_some());
    assert_eq!(b.get_group_metadata("g").await.unwrap(), Some(vec![tag]));
    assert_eq!(tc_of(b, "u").await.unwrap().0, vec![tag]);
    assert_eq!(b.get_pending_inbound("c", "s", "i").await.unwrap(), Some(vec![tag]));
    assert_eq!(b.get_msg_secret("c", "s", "m").await.unwrap(), Some(vec![tag; 32]));
}

/// Rows written by [`populate`] (pn_lid index included, version row included).
const POPULATED_ROWS: u64 = 19;

#[tokio::test]
async fn sessions_are_isolated_and_delete_session_state_wipes_exactly_one() {
    let f = Fixture::new();
    let (s1, s2) = (Ulid::generate(), Ulid::generate());
    let edge = Ulid::from(u128::MAX); // the last possible session: no upper bound
    let (b1, b2, b3) = (f.backend(s1), f.backend(s2), f.backend(edge));
    populate(&b1, 1).await;
    populate(&b2, 2).await;
    populate(&b3, 3).await;
    assert_populated(&b1, 1).await;
    assert_populated(&b2, 2).await;
    assert_populated(&b3, 3).await;
    assert_eq!(f.rows(s1), POPULATED_ROWS);
    assert_eq!(f.rows(s2), POPULATED_ROWS);
    assert_eq!(b1.resource_report().await.pages, Some(POPULATED_ROWS));

    // Clearing one session's sweeping namespaces leaves the other's alone.
    b1.clear_all_sender_key_devices().await.unwrap();
    assert_eq!(b2.get_sender_key_devices("g").await.unwrap().len(), 1);
    b1.delete_expired_msg_secrets(i64::MAX).await.unwrap();
    b1.set_sender_key_status("g", &[("u", true)]).await.unwrap();

    let txn = f.store.write().unwrap();
    assert_eq!(tables::delete_session_state(&txn, s1.0).unwrap(), POPULATED_ROWS);
    f.store.commit(txn).unwrap();
    assert_eq!(f.rows(s1), 0);
    assert!(!b1.exists().await.unwrap());
    assert_eq!(b1.load_identity("u@lid").await.unwrap(), None);
    assert_populated(&b2, 2).await;
    assert_eq!(f.rows(s2), POPULATED_ROWS);

    let txn = f.store.write().unwrap();
    assert_eq!(tables::delete_session_state(&txn, edge.0).unwrap(), POPULATED_ROWS);
    assert_eq!(tables::delete_session_state(&txn, s1.0).unwrap(), 0, "nothing left");
    f.store.commit(txn).unwrap();
    assert_populated(&b2, 2).await;

    // A delete inside a transaction that aborts deletes nothing.
    let txn = f.store.write().unwrap();
    assert_eq!(tables::delete_session_state(&txn, s2.0).unwrap(), POPULATED_ROWS);
    txn.abort().unwrap();
    assert_populated(&b2, 2).await;
}

#[tokio::test]
async fn state_survives_close_and_reopen() {
    let f = Fixture::new();
    let (s1, s2) = (Ulid::generate(), Ulid::generate());
    populate(&f.backend(s1), 1).await;
    populate(&f.backend(s2), 2).await;
    let device = f.backend(s1).load().await.unwrap().unwrap();
    let f = f.reopen();
    assert_populated(&f.backend(s1), 1).await;
    assert_populated(&f.backend(s2), 2).await;
    assert_same_device(&f.backend(s1).load().await.unwrap().unwrap(), &device);
}

fn open_copy(path: &Path) -> redb::Database {
    redb::Database::open(path).unwrap()
}

#[tokio::test]
async fn copy_tables_copies_every_session() {
    let f = Fixture::new();
    let (s1, s2) = (Ulid::generate(), Ulid::generate());
    populate(&f.backend(s1), 1).await;
    populate(&f.backend(s2), 2).await;
    let out = f.path.with_file_name("copy.redb");
    {
        let db = redb::Database::create(&out).unwrap();
        let txn = db.begin_write().unwrap();
        assert_eq!(tables::copy_tables(&f.store.read().unwrap(), &txn).unwrap(), 2 * POPULATED_ROWS);
        txn.commit().unwrap();
    }
    let db = open_copy(&out);
    let txn = redb::ReadableDatabase::begin_read(&db).unwrap();
    assert_eq!(tables::count_session_rows(&txn, s1.0).unwrap(), POPULATED_ROWS);
    assert_eq!(tables::count_session_rows(&txn, s2.0).unwrap(), POPULATED_ROWS);
    drop(txn);
    drop(db);
    // The copy is a working data file for the backend.
    let copy = Arc::new(Store::open(&out, 1 << 20).unwrap());
    assert_populated(&RedbBackend::new(copy, s2), 2).await;

    // A file without the table copies nothing and counts nothing.
    let empty_path = f.path.with_file_name("empty.redb");
    let empty = redb::Database::create(&empty_path).unwrap();
    let dst_path = f.path.with_file_name("dst.redb");
    let dst = redb::Database::create(&dst_path).unwrap();
    let src = redb::ReadableDatabase::begin_read(&empty).unwrap();
    let w = dst.begin_write().unwrap();
    assert_eq!(tables::copy_tables(&src, &w).unwrap(), 0);
    assert_eq!(tables::count_session_rows(&src, s1.0).unwrap(), 0);
    w.commit().unwrap();
}

#[tokio::test]
async fn create_tables_is_idempotent_and_the_backend_creates_a_missing_table() {
    let f = Fixture::new();
    // Store::open may or may not create the table yet: reading must work either way.
    let b = f.backend(Ulid::generate());
    assert!(!b.exists().await.unwrap());
    for _ in 0..2 {
        let txn = f.store.write().unwrap();
        tables::create_tables(&txn).unwrap();
        f.store.commit(txn).unwrap();
    }
    assert_eq!(f.rows(b.session()), 0);
}

// ---------------------------------------------------------------- the crate's own code

#[tokio::test]
async fn crate_persistence_manager_creates_and_reloads_the_device() {
    use whatsapp_rust::store::commands::DeviceCommand;
    use whatsapp_rust::store::persistence_manager::PersistenceManager;

    let f = Fixture::new();
    let session = Ulid::generate();
    let backend: Arc<dyn Backend> = Arc::new(f.backend(session));
    let pm = PersistenceManager::new(Arc::clone(&backend)).await.unwrap();
    let fresh = pm.get_device_snapshot();
    let identity = fresh.identity_key.public_key.public_key_bytes().to_vec();
    let stored = backend.load().await.unwrap().expect("the crate created the device row");
    assert_eq!(stored.identity_key.public_key.public_key_bytes(), identity, "the crate uses the identity it stored");
    assert_eq!(stored.registration_id, fresh.registration_id);
    drop(fresh); // the crate's device holds a handle to the backend

    pm.process_command(DeviceCommand::SetPushName("From crate".into())).await;
    pm.flush().await.unwrap();
    assert_eq!(backend.load().await.unwrap().unwrap().push_name, "From crate");
    drop(pm);
    drop(backend);

    let f = f.reopen();
    let pm = PersistenceManager::new(Arc::new(f.backend(session))).await.unwrap();
    let again = pm.get_device_snapshot();
    assert_eq!(again.push_name, "From crate");
    assert_eq!(again.identity_key.public_key.public_key_bytes(), identity, "same linked identity after reopening the file");
}

#[tokio::test]
async fn crate_bot_builds_on_the_backend_without_connecting() {
    use whatsapp_rust::bot::Bot;

    let f = Fixture::new();
    let b = f.backend(Ulid::generate());
    let bot = Bot::builder()
        .with_backend(b.clone())
        .with_runtime(whatsapp_rust::TokioRuntime)
        .with_transport_factory(whatsapp_rust::transport::TokioWebSocketTransportFactory::new())
        .with_http_client(whatsapp_rust::http::UreqHttpClient::new())
        .build()
        .await
        .unwrap();
    let client = bot.client();
    let snap = client.persistence_manager().get_device_snapshot();
    let stored = b.load().await.unwrap().unwrap();
    assert_eq!(
        stored.identity_key.public_key.public_key_bytes(),
        snap.identity_key.public_key.public_key_bytes()
    );
    assert!(stored.pn.is_none(), "not paired");
}
