//! Unit tests of the stored-bytes counters against real redb files: every
//! write of `crate::store::messages` keeps them equal to the recount, the
//! upgrade to schema 4 fills them, and `check` sees a wrong one.

use proptest::prelude::*;

use super::*;
use crate::store::message_records::tests::message;
use crate::store::message_records::{Direction, MediaInfo, MessageStatus, MessageType};
use crate::store::messages;
use crate::store::Store;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&dir.path().join("u.redb"), 1 << 20).expect("open");
    (dir, store)
}

fn counter(store: &Store, org: &str) -> u64 {
    stored(&store.read().expect("read"), org).expect("stored")
}

/// What `check` says about the counters (the fixtures have no session or
/// organization rows, which `check` also reports: those are left out).
fn usage_problems(store: &Store) -> Vec<String> {
    let report = crate::store::check::check(&store.read().expect("read")).expect("check");
    report.problems.into_iter().filter(|p| p.contains("org_stored_bytes") || p.contains("message_media")).collect()
}

fn out(org: &str, session: u128, text: Option<&str>, media: Option<usize>) -> Message {
    Message {
        session_id: session,
        organization_id: org.into(),
        direction: Direction::Out,
        text: text.map(str::to_string),
        kind: if media.is_some() { MessageType::Image } else { MessageType::Text },
        media: media.map(|n| MediaInfo { mimetype: "image/png".into(), file_name: None, size_bytes: n as u64, media_ref: None }),
        wa_message_id: format!("W{}", crate::new_id()),
        ..message()
    }
}

fn insert(store: &Store, id: u128, m: &Message, media: Option<usize>) {
    let txn = store.write().expect("write");
    let blob = media.map(|n| crate::store::media::stage(&txn, &m.organization_id, &vec![7u8; n], 0).expect("stage"));
    messages::insert(&txn, id, m, blob, "message.status").expect("insert");
    store.commit(txn).expect("commit");
}

fn change(store: &Store, id: u128, f: impl FnOnce(&mut Message)) {
    let txn = store.write().expect("write");
    messages::update(&txn, id, |m| {
        f(m);
        Some("message.status")
    })
    .expect("update")
    .expect("found");
    store.commit(txn).expect("commit");
}

/// A message's text and kept media count; sending drops the media's bytes,
/// an edit counts its new text, a revoke that clears the text gives it
/// back, deleting a session gives back all of its, and another
/// organization's counter never moves.
#[test]
fn every_write_keeps_the_count() {
    let (_dir, store) = store();
    let (a, b, c, other) = (u128::from(crate::new_id()), u128::from(crate::new_id()), u128::from(crate::new_id()), u128::from(crate::new_id()));
    insert(&store, a, &out("o1", 1, Some("héllo"), Some(1000)), Some(1000));
    assert_eq!(counter(&store, "o1"), 1006, "6 UTF-8 bytes of text + 1000 of media");
    insert(&store, b, &Message { direction: Direction::In, status: MessageStatus::Received, ..out("o1", 1, Some("hey"), None) }, None);
    insert(&store, other, &out("o2", 2, Some("x"), Some(10)), Some(10));
    assert_eq!((counter(&store, "o1"), counter(&store, "o2")), (1009, 11));
    assert_eq!(usage_problems(&store), Vec::<String>::new());
    change(&store, a, |m| m.status = MessageStatus::Sending);
    assert_eq!(counter(&store, "o1"), 1009, "sending keeps the media");
    change(&store, a, |m| m.status = MessageStatus::Sent);
    assert_eq!(counter(&store, "o1"), 9, "sent: the media is not kept");
    change(&store, b, |m| m.text = Some("hey there".into()));
    assert_eq!(counter(&store, "o1"), 15, "an edit counts its new text");
    change(&store, b, |m| {
        m.text = None;
        m.status = MessageStatus::Revoked;
    });
    assert_eq!(counter(&store, "o1"), 6);
    insert(&store, c, &out("o1", 1, None, Some(500)), Some(500));
    assert_eq!(counter(&store, "o1"), 506);
    assert_eq!(usage_problems(&store), Vec::<String>::new());
    change(&store, c, |m| m.status = MessageStatus::Canceled);
    assert_eq!(counter(&store, "o1"), 6, "canceled: the media is dropped");
    let txn = store.write().expect("write");
    messages::drop_session(&txn, 1).expect("drop");
    store.commit(txn).expect("commit");
    assert_eq!((counter(&store, "o1"), counter(&store, "o2")), (0, 11));
    assert_eq!(usage_problems(&store), Vec::<String>::new());
}

/// Retention gives back what it prunes; what is still queued (and its
/// media) stays counted.
#[test]
fn pruning_gives_the_bytes_back() {
    let (_dir, store) = store();
    let (sent, queued) = (u128::from(crate::new_id()), u128::from(crate::new_id()));
    insert(&store, sent, &out("o", 1, Some("abc"), None), None);
    change(&store, sent, |m| m.status = MessageStatus::Sent);
    insert(&store, queued, &out("o", 1, Some("de"), Some(100)), Some(100));
    assert_eq!(counter(&store, "o"), 105);
    let (_, deleted) = store.prune_messages(crate::store::now_ms() + 1, 100).expect("prune");
    assert_eq!(deleted, 1);
    assert_eq!(counter(&store, "o"), 102);
    assert_eq!(usage_problems(&store), Vec::<String>::new());
}

/// A batch counts its bytes with one counter update per organization.
#[test]
fn a_batch_is_counted_once() {
    let (_dir, store) = store();
    let rows: Vec<(u128, Message, Vec<u8>)> =
        (0..5).map(|i| (u128::from(crate::new_id()), out("o", 1, Some("1234"), Some(10 + i)), vec![1u8; 10 + i])).collect();
    let txn = store.write().expect("write");
    let blobs: Vec<u128> = rows.iter().map(|(_, m, b)| crate::store::media::stage(&txn, &m.organization_id, b, 0).expect("stage")).collect();
    messages::insert_all(&txn, rows.iter().zip(&blobs).map(|((id, m, _), blob)| (*id, m, Some(*blob))), "message.status").expect("insert");
    store.commit(txn).expect("commit");
    assert_eq!(counter(&store, "o"), 5 * 4 + (10 + 11 + 12 + 13 + 14));
    assert_eq!(usage_problems(&store), Vec::<String>::new());
}

/// `check` reports a counter that disagrees with the messages, and media
/// of a message that does not exist.
#[test]
fn check_finds_a_wrong_counter() {
    let (_dir, store) = store();
    insert(&store, u128::from(crate::new_id()), &out("o", 1, Some("abc"), Some(7)), Some(7));
    let txn = store.write().expect("write");
    add(&txn, "o", 1).expect("skew");
    txn.open_table(MEDIA).expect("media").insert(43u128, [1u8, 2].as_slice()).expect("orphan");
    txn.open_table(crate::store::tables::MEDIA_REFS).expect("refs").insert(42u128, 43u128).expect("orphan ref");
    store.commit(txn).expect("commit");
    let problems = usage_problems(&store);
    assert!(problems.iter().any(|p| p.contains("organization o stores 11 bytes") && p.contains("add up to 10")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("message_media")), "{problems:?}");
}

/// A schema-3 file (no counters) opens as schema 4 with every
/// organization's counter computed, and opening it again changes nothing.
#[test]
fn a_schema_3_file_gets_its_counters_at_open() {
    use crate::store::tables::{META, META_SCHEMA_VERSION};
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("u.redb");
    {
        let store = Store::open(&path, 1 << 20).expect("open");
        insert(&store, u128::from(crate::new_id()), &out("o1", 1, Some("abcd"), Some(100)), Some(100));
        insert(&store, u128::from(crate::new_id()), &out("o2", 2, Some("xy"), None), None);
        let txn = store.write().expect("write");
        txn.open_table(META).expect("meta").insert(META_SCHEMA_VERSION, 3u32.to_be_bytes().as_slice()).expect("v3");
        txn.delete_table(ORG_USAGE).expect("drop the counters");
        store.commit(txn).expect("commit");
    }
    for _ in 0..2 {
        let store = Store::open(&path, 1 << 20).expect("reopen");
        assert_eq!(store.meta().schema_version, crate::store::SCHEMA_VERSION);
        assert_eq!((counter(&store, "o1"), counter(&store, "o2")), (104, 2));
        assert_eq!(usage_problems(&store), Vec::<String>::new());
    }
}

/// One step of [`a_random_history_keeps_the_count`].
#[derive(Debug, Clone)]
enum Op {
    Send { org: u8, text: u8, media: Option<u16> },
    Inbound { org: u8, text: u8 },
    Status { pick: u8, to: u8 },
    Edit { pick: u8, text: u8 },
    DropSession { org: u8 },
    Prune,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..3, 0u8..20, proptest::option::of(1u16..2000)).prop_map(|(org, text, media)| Op::Send { org, text, media }),
        2 => (0u8..3, 0u8..20).prop_map(|(org, text)| Op::Inbound { org, text }),
        3 => (any::<u8>(), 0u8..5).prop_map(|(pick, to)| Op::Status { pick, to }),
        1 => (any::<u8>(), 0u8..20).prop_map(|(pick, text)| Op::Edit { pick, text }),
        1 => (0u8..3).prop_map(|org| Op::DropSession { org }),
        1 => Just(Op::Prune),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    /// Whatever the messages go through, each organization's counter equals
    /// the recount after every commit.
    #[test]
    fn a_random_history_keeps_the_count(ops in proptest::collection::vec(op(), 1..40)) {
        let (_dir, store) = store();
        let mut ids: Vec<u128> = Vec::new();
        for op in ops {
            match op {
                Op::Send { org, text, media } => {
                    let id = u128::from(crate::new_id());
                    let t = "é".repeat(usize::from(text));
                    let m = out(&format!("o{org}"), u128::from(org), (text > 0).then_some(t.as_str()), media.map(usize::from));
                    insert(&store, id, &m, media.map(usize::from));
                    ids.push(id);
                }
                Op::Inbound { org, text } => {
                    let id = u128::from(crate::new_id());
                    let t = "a".repeat(usize::from(text));
                    let m = Message { direction: Direction::In, status: MessageStatus::Received, ..out(&format!("o{org}"), u128::from(org), Some(&t), None) };
                    insert(&store, id, &m, None);
                    ids.push(id);
                }
                Op::Status { pick, to } if !ids.is_empty() => {
                    let id = ids[usize::from(pick) % ids.len()];
                    let to = [MessageStatus::Sending, MessageStatus::Sent, MessageStatus::Failed, MessageStatus::Canceled, MessageStatus::Expired][usize::from(to)];
                    let txn = store.write().expect("write");
                    messages::update(&txn, id, |m| (m.status.is_pending()).then(|| { m.status = to; "message.status" })).expect("update");
                    store.commit(txn).expect("commit");
                }
                Op::Edit { pick, text } if !ids.is_empty() => {
                    let id = ids[usize::from(pick) % ids.len()];
                    let txn = store.write().expect("write");
                    messages::update(&txn, id, |m| { m.text = (text > 0).then(|| "z".repeat(usize::from(text))); Some("message.edited") }).expect("update");
                    store.commit(txn).expect("commit");
                }
                Op::DropSession { org } => {
                    let txn = store.write().expect("write");
                    messages::drop_session(&txn, u128::from(org)).expect("drop");
                    store.commit(txn).expect("commit");
                }
                Op::Prune => {
                    store.prune_messages(crate::store::now_ms() + 1, 1000).expect("prune");
                }
                _ => {}
            }
            prop_assert_eq!(usage_problems(&store), Vec::<String>::new());
        }
    }
}
