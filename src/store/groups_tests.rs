//! The groups table: pages in id order, a session's delete drops its
//! groups, a read stays fast with 1,000 groups of 256 participants, `check`
//! finds a group without its session, and a schema-4 file (no groups
//! table) checks clean and upgrades to 5.

use std::time::Instant;

use super::group_records::{Group, StoredParticipant, StoredRole};
use super::records::{Session, SessionStatus};
use super::tables::{GROUPS, META, META_SCHEMA_VERSION};
use super::{groups, Store, StoreError};

fn session(org: &str) -> Session {
    Session {
        organization_id: org.into(),
        created_by_user_id: "u".into(),
        gateway_id: "gw".into(),
        label: "L".into(),
        phone_number: None,
        status: SessionStatus::Stopped,
        auto_read: false,
        presence_typing: true,
        rate_per_min: 20,
        rate_per_hour: 600,
        is_admin_session: false,
        wa_jid: None,
        wa_lid: None,
        last_connected_at: None,
        desired_running: false,
        last_error: None,
        created_at: 1,
        updated_at: 1,
    }
}

fn group(n: usize) -> Group {
    Group {
        subject: "S".into(),
        description: None,
        owner: None,
        created_at: None,
        participants: (0..n)
            .map(|i| StoredParticipant { jid: Some(format!("62812{i:08}@s.whatsapp.net")), lid: None, role: StoredRole::Member })
            .collect(),
        announce: false,
        locked: false,
        ephemeral_seconds: 0,
        membership_approval: false,
        updated_at: 1,
    }
}

fn gid(i: usize) -> String {
    format!("120363{i:012}@g.us")
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("dir");
    let s = Store::open(&dir.path().join("g.redb"), 8 << 20).expect("open");
    (dir, s)
}

fn put_all(s: &Store, key: u128, ids: impl Iterator<Item = usize>, size: usize) {
    let txn = s.write().expect("write");
    for i in ids {
        groups::put(&txn, key, &gid(i), &group(size)).expect("put");
    }
    s.commit(txn).expect("commit");
}

#[test]
fn pages_walk_a_sessions_groups_in_id_order_and_delete_drops_them() {
    let (_d, s) = store();
    let (a, b) = (crate::new_id(), crate::new_id());
    s.create_session(a, &session("o")).expect("a");
    s.create_session(b, &session("o")).expect("b");
    put_all(&s, u128::from(a), [5, 1, 3, 2, 4].into_iter(), 2);
    put_all(&s, u128::from(b), [9].into_iter(), 1);
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s.list_groups(u128::from(a), after.clone(), 2).expect("page");
        seen.extend(page.items.iter().map(|(k, _)| k.clone()));
        match page.next_after {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, (1..=5).map(gid).collect::<Vec<_>>());
    s.delete_session(a, None, |_| Ok(())).expect("delete");
    assert!(s.list_groups(u128::from(a), None, 50).expect("list").items.is_empty());
    assert_eq!(s.list_groups(u128::from(b), None, 50).expect("list").items.len(), 1);
    assert!(matches!(s.group(u128::from(a), &gid(1)), Err(StoreError::NotFound(_))));
    let report = super::check::check(&s.read().expect("r")).expect("check");
    assert!(report.ok(), "{report}");
}

#[test]
fn a_group_read_and_a_page_stay_fast_with_1000_groups_of_256() {
    let (_d, s) = store();
    let key = u128::from(crate::new_id());
    put_all(&s, key, 0..1000, 256);
    let t = Instant::now();
    for i in (0..1000).step_by(10) {
        assert_eq!(s.group(key, &gid(i)).expect("read").participants.len(), 256);
    }
    let page = s.list_groups(key, Some(gid(900)), 50).expect("page");
    assert_eq!(page.items.len(), 50);
    assert_eq!(page.items[0].0, gid(901));
    // 100 reads and a page of 50 (debug build): far under a second.
    assert!(t.elapsed().as_millis() < 2_000, "{:?}", t.elapsed());
}

#[test]
fn check_finds_a_group_without_its_session_and_a_bad_key() {
    let (_d, s) = store();
    put_all(&s, 42, [1].into_iter(), 1);
    let txn = s.write().expect("w");
    groups::put(&txn, 42, "nope@s.whatsapp.net", &group(0)).expect("put");
    s.commit(txn).expect("c");
    let report = super::check::check(&s.read().expect("r")).expect("check");
    assert!(report.problems.iter().any(|p| p.contains(&gid(1)) && p.contains("session does not exist")), "{report}");
    assert!(report.problems.iter().any(|p| p.contains("not a group id")), "{report}");
}

#[test]
fn a_schema_4_file_without_groups_checks_clean_and_upgrades_to_5() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("g.redb");
    {
        let s = Store::open(&path, 1 << 20).expect("open");
        let txn = s.write().expect("w");
        txn.open_table(META).expect("meta").insert(META_SCHEMA_VERSION, 4u32.to_be_bytes().as_slice()).expect("v4");
        txn.delete_table(GROUPS).expect("drop groups");
        s.commit(txn).expect("c");
        let report = super::check::check(&s.read().expect("r")).expect("check");
        assert!(report.ok(), "{report}");
    }
    let s = Store::open(&path, 1 << 20).expect("reopen");
    assert_eq!(s.meta().schema_version, 5);
    assert!(s.list_groups(1, None, 10).expect("list").items.is_empty());
    let report = super::check::check(&s.read().expect("r")).expect("check");
    assert!(report.ok(), "{report}");
}
