//! Tests of the directory's store: merging, paging, dropping, pruning,
//! the schema-5 upgrade and `check`, on real redb files.

use super::*;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&dir.path().join("c.redb"), 1 << 20).expect("open");
    (dir, store)
}

fn change(jid: Option<&str>, lid: Option<&str>) -> ContactChange {
    ContactChange { jid: jid.map(str::to_string), lid: lid.map(str::to_string), ..ContactChange::default() }
}

#[test]
fn upsert_merges_a_lid_row_into_the_phone_row() {
    let (_d, s) = store();
    let txn = s.write().expect("w");
    let (c, changed) = upsert(&txn, 1, &ContactChange { push_name: Some("P".into()), ..change(None, Some("9@lid")) }, 5).expect("lid");
    assert!(changed && c.jid.is_none());
    let (_, changed) = upsert(&txn, 1, &ContactChange { name: Some("N".into()), ..change(Some("62811@s.whatsapp.net"), None) }, 6).expect("pn");
    assert!(changed);
    // Both known as one person now: one row, both names, both addresses.
    let (c, changed) = upsert(&txn, 1, &change(Some("62811@s.whatsapp.net"), Some("9@lid")), 7).expect("link");
    assert!(!changed);
    assert_eq!((c.name.as_deref(), c.push_name.as_deref(), c.phone_number.as_deref()), (Some("N"), Some("P"), Some("62811")));
    assert_eq!(find_w(&txn, 1, "9@lid").expect("find").map(|c| key_of(&c)), Some(("62811@s.whatsapp.net".into(), "9@lid".into())));
    // Nothing visible changed: no update.
    let (_, changed) = upsert(&txn, 1, &ContactChange { name: Some("N".into()), ..change(None, Some("9@lid")) }, 8).expect("same");
    assert!(!changed);
    // A new contact with only its addresses is no update either.
    let (_, changed) = upsert(&txn, 1, &change(Some("62822@s.whatsapp.net"), None), 9).expect("bare");
    assert!(!changed);
    s.commit(txn).expect("commit");
    let r = s.read().expect("r");
    let (rows, next) = page(&r, 1, None, 10, 100, |_| true).expect("page");
    assert_eq!(rows.len(), 2);
    assert!(next.is_none());
    let (rows, next) = page(&r, 1, None, 1, 100, |_| true).expect("page");
    assert_eq!(rows.len(), 1);
    let (rest, _) = page(&r, 1, next, 10, 100, |_| true).expect("page 2");
    assert_eq!(rest.len(), 1);
    assert_ne!(key_of(&rows[0]), key_of(&rest[0]));
    drop(r);
    let txn = s.write().expect("w");
    drop_session(&txn, 1).expect("drop");
    assert!(find_w(&txn, 1, "9@lid").expect("find").is_none());
    s.commit(txn).expect("commit");
    let r = s.read().expect("r");
    assert!(crate::store::check::check(&r).expect("check").ok());
}

#[test]
fn presence_events_are_pruned_by_age() {
    let (_d, s) = store();
    let txn = s.write().expect("w");
    let now = crate::store::now_ms();
    let id = crate::store::events::directory_event(&txn, "presence.update", "o", 1, now, &serde_json::json!({})).expect("event");
    note_presence_event(&txn, id, "o").expect("note");
    s.commit(txn).expect("commit");
    assert_eq!(s.prune_presence(now - 60_000, 10).expect("young"), 0);
    assert_eq!(s.prune_presence(now + 60_000, 10).expect("old"), 1);
    let r = s.read().expect("r");
    assert!(r.open_table(EVENTS).expect("events").get(id).expect("get").is_none());
}

/// A schema-4 file (no directory tables) checks clean as it is, and
/// opens as schema 5 with the tables created (and checks clean again).
#[test]
fn a_schema_4_file_checks_clean_and_gets_the_tables_at_open() {
    use crate::store::tables::{META, META_SCHEMA_VERSION};
    use redb::ReadableDatabase;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("c.redb");
    {
        let store = Store::open(&path, 1 << 20).expect("open");
        let txn = store.write().expect("write");
        txn.open_table(META).expect("meta").insert(META_SCHEMA_VERSION, 4u32.to_be_bytes().as_slice()).expect("v4");
        txn.delete_table(CONTACTS).expect("drop");
        txn.delete_table(CONTACT_ADDRESSES).expect("drop");
        txn.delete_table(NUMBER_CHECKS).expect("drop");
        txn.delete_table(LOOKUP_BUDGET).expect("drop");
        txn.delete_table(PROFILES).expect("drop");
        txn.delete_table(PRESENCE_EVENTS).expect("drop");
        store.commit(txn).expect("commit");
    }
    {
        let db = redb::Database::open(&path).expect("raw open");
        let report = crate::store::check::check(&db.begin_read().expect("read")).expect("check");
        assert!(report.ok() && report.schema_version == 4, "{report}");
    }
    let store = Store::open(&path, 1 << 20).expect("reopen");
    assert_eq!(store.meta().schema_version, 5);
    let r = store.read().expect("read");
    assert!(r.open_table(CONTACTS).is_ok() && r.open_table(PRESENCE_EVENTS).is_ok());
    assert!(crate::store::check::check(&r).expect("check").ok());
}

/// `check` sees a contact whose address index is missing or wrong.
#[test]
fn check_sees_a_broken_address_index() {
    let (_d, s) = store();
    let txn = s.write().expect("w");
    upsert(&txn, 1, &ContactChange { name: Some("N".into()), ..change(Some("62811@s.whatsapp.net"), Some("9@lid")) }, 1).expect("put");
    txn.open_table(CONTACT_ADDRESSES).expect("t").remove((1u128, "9@lid")).expect("rm");
    txn.open_table(CONTACT_ADDRESSES).expect("t").insert((1u128, "5@lid"), ("62811@s.whatsapp.net", "9@lid")).expect("bad");
    s.commit(txn).expect("commit");
    let report = crate::store::check::check(&s.read().expect("r")).expect("check");
    let text = report.problems.join("\n");
    assert!(text.contains("9@lid") && text.contains("missing from contact_addresses"), "{text}");
    assert!(text.contains("5@lid"), "{text}");
    assert!(text.contains("which does not exist"), "contacts of a missing session are seen too: {text}");
}

mod walks {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

        /// A page walk while contacts are added and removed between pages:
        /// every contact present during the whole walk is returned exactly
        /// once, in key order; nothing returned is out of order.
        #[test]
        fn walking_pages_sees_every_steady_contact_once(
            start in proptest::collection::btree_set(0u32..400, 0..60),
            churn in proptest::collection::vec((any::<bool>(), 0u32..400), 0..40),
            limit in 1usize..7,
        ) {
            let (_d, s) = store();
            let jid = |n: u32| format!("62810{n:06}@s.whatsapp.net");
            let txn = s.write().expect("w");
            for n in &start {
                upsert(&txn, 3, &ContactChange { name: Some("x".into()), ..change(Some(&jid(*n)), None) }, 1).expect("put");
            }
            s.commit(txn).expect("commit");
            let mut touched = std::collections::BTreeSet::new();
            let mut seen: Vec<String> = Vec::new();
            let mut after = None;
            let mut churn = churn.into_iter();
            loop {
                let (rows, next) = page(&s.read().expect("r"), 3, after.clone(), limit, limit * 20, |_| true).expect("page");
                seen.extend(rows.iter().filter_map(|c| c.jid.clone()));
                let Some(n) = next else { break };
                after = Some(n);
                if let Some((add, k)) = churn.next() {
                    touched.insert(jid(k));
                    let txn = s.write().expect("w");
                    if add {
                        upsert(&txn, 3, &ContactChange { name: Some("y".into()), ..change(Some(&jid(k)), None) }, 2).expect("add");
                    } else if let Some(c) = find_w(&txn, 3, &jid(k)).expect("find") {
                        remove(&txn, 3, &c).expect("rm");
                    }
                    s.commit(txn).expect("commit");
                }
            }
            let mut sorted = seen.clone();
            sorted.sort();
            sorted.dedup();
            prop_assert_eq!(&sorted, &seen, "in key order, no repeats");
            for n in &start {
                if !touched.contains(&jid(*n)) {
                    prop_assert!(seen.contains(&jid(*n)), "steady contact {} skipped", n);
                }
            }
        }
    }
}
