//! Table definitions and schema migration.
//!
//! Keys are chosen so that redb's ordering is the API's ordering: a ULID as a
//! `u128` sorts exactly as its string does, so walking `sessions` from a key is
//! an id-ordered, O(log n) seek followed by O(limit) reads.

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use ring::rand::{SecureRandom, SystemRandom};

use super::{read_meta, Meta, StoreError, StoreResult, SCHEMA_VERSION};

/// Schema version, cursor secret, data-file id.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Organization id → organization envelope.
pub const ORGS: TableDefinition<&str, &[u8]> = TableDefinition::new("organizations");
/// Session ULID → session envelope (the global index).
pub const SESSIONS: TableDefinition<u128, &[u8]> = TableDefinition::new("sessions");
/// (organization id, session ULID) → () (the per-organization index).
pub const ORG_SESSIONS: TableDefinition<(&str, u128), ()> = TableDefinition::new("org_sessions");
/// Api-key ULID → api-key envelope.
pub const API_KEYS: TableDefinition<u128, &[u8]> = TableDefinition::new("api_keys");
/// SHA-256 of an api-key → api-key ULID.
pub const API_KEY_HASHES: TableDefinition<&[u8], u128> = TableDefinition::new("api_key_hashes");
/// Session ULID → () for every session meant to be running (restarted on boot).
pub const RUNNING: TableDefinition<u128, ()> = TableDefinition::new("running_sessions");
/// Session status (wire name) → number of sessions in it; kept in the same
/// transaction as every session write, so `/metrics` reads six rows.
pub const STATUS_COUNTS: TableDefinition<&str, u64> = TableDefinition::new("session_status_counts");
/// (organization id, api-key ULID) → ().
pub const ORG_API_KEYS: TableDefinition<(&str, u128), ()> = TableDefinition::new("org_api_keys");

/// Message ULID → message envelope (both directions).
pub const MESSAGES: TableDefinition<u128, &[u8]> = TableDefinition::new("messages");
/// (session ULID, message ULID) → lane flag: a session's messages in id
/// order. The flag is 1 for a message that waits in the session's in-order
/// lane while pending (outbound, no `sendAt`): that lane is this index itself,
/// from the low-water id in [`QUEUE_HEADS`] on, so queuing a plain send
/// writes one per-session row, not two.
pub const SESSION_MESSAGES: TableDefinition<(u128, u128), u8> = TableDefinition::new("session_message_index");
/// (session ULID, due ms, message ULID) → (): the queue's other lane, for
/// what does not wait in id order: scheduled messages (due = `sendAt`) and
/// revokes of sent messages (due = their `sendAt` or `createdAt`).
pub const SEND_QUEUE: TableDefinition<(u128, i64, u128), ()> = TableDefinition::new("send_queue");
/// Session ULID → (messages queued in all, of them in the in-order lane, the
/// lane's low-water id: no lane message below it is pending). The cap is
/// checked in O(1) and the lane's head is found from the low-water id.
pub const QUEUE_HEADS: TableDefinition<u128, (u64, u64, u128)> = TableDefinition::new("send_queue_heads");
/// Schema 2's index of a session's messages (no lane flag); upgraded at open.
pub const V2_SESSION_MESSAGES: TableDefinition<(u128, u128), ()> = TableDefinition::new("session_messages");
/// Schema 2's queue counts; upgraded at open.
pub const V2_QUEUE_COUNTS: TableDefinition<u128, u64> = TableDefinition::new("send_queue_counts");
/// (session ULID, WhatsApp message id) → message ULID: receipts, reactions,
/// edits and revokes name messages by WhatsApp's id. An outbound message is
/// indexed when claimed for sending (nothing names it before it leaves).
pub const WA_IDS: TableDefinition<(u128, &str), u128> = TableDefinition::new("wa_message_ids");
/// Blob ULID → media bytes of an outbound message, staged or attached
/// (schema 3's rows are keyed by their message's ULID). See
/// [`crate::store::media`].
pub const MEDIA: TableDefinition<u128, &[u8]> = TableDefinition::new("message_media");
/// Message ULID → the blob in [`MEDIA`] holding its media, until it has left.
pub const MEDIA_REFS: TableDefinition<u128, u128> = TableDefinition::new("message_media_refs");
/// Blob ULID → (organization id, bytes, staged at ms): a blob staged by a
/// send in flight and not yet attached to a message.
pub const MEDIA_STAGED: TableDefinition<u128, (&str, u64, i64)> = TableDefinition::new("media_staged");
/// (send time ms, message ULID) → session ULID: every session's sends of
/// the last hour, so pacing survives a restart. Keyed by time, not by
/// session: a commit's sends append to one edge of the tree instead of
/// dirtying a page per session, the hour is pruned from the other edge, and
/// the gateway reads it once at start ([`super::messages::recent_sends`]).
pub const SEND_LOG: TableDefinition<(i64, u128), u128> = TableDefinition::new("send_log");
/// Schema 2's send times, keyed per session; moved to [`SEND_LOG`] at open.
pub const V2_SEND_TIMES: TableDefinition<(u128, i64, u128), ()> = TableDefinition::new("send_times");
/// Organization id → the bytes it stores: its kept media (decoded) plus the
/// UTF-8 length of its messages' `text`, kept in the same transaction as
/// every write that changes either ([`super::usage`]); no row = 0.
pub const ORG_USAGE: TableDefinition<&str, u64> = TableDefinition::new("org_stored_bytes");
/// Session ULID → Unix ms until which its queue is paused (account trouble).
pub const SEND_PAUSES: TableDefinition<u128, i64> = TableDefinition::new("send_pauses");
/// (session ULID, JID) → the other form of it (`@lid` ↔ phone JID).
pub const LID_MAP: TableDefinition<(u128, &str), &str> = TableDefinition::new("lid_map");
/// (organization id, Idempotency-Key) → the first answer.
pub const IDEMPOTENCY: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("idempotency_keys");
/// (created ms, organization id, key) → (): idempotent answers by age, for retention.
pub const IDEMPOTENCY_EXPIRY: TableDefinition<(i64, &str, &str), ()> = TableDefinition::new("idempotency_expiry");
/// Event ULID → event envelope: the event log, in commit order.
pub const EVENTS: TableDefinition<u128, &[u8]> = TableDefinition::new("events");
/// (organization id, event ULID) → (): one organization's events.
pub const ORG_EVENTS: TableDefinition<(&str, u128), ()> = TableDefinition::new("org_events");

/// (session ULID, group id `…@g.us`) → `Group` envelope (CONTRACT §13):
/// the groups a session's number is in, participants inline.
pub const GROUPS: TableDefinition<(u128, &str), &[u8]> = TableDefinition::new("groups");

/// Webhook endpoints (CONTRACT §10), by ULID.
pub const WEBHOOKS: TableDefinition<u128, &[u8]> = TableDefinition::new("webhooks");
/// An organization's webhooks in id order.
pub const ORG_WEBHOOKS: TableDefinition<(&str, u128), ()> = TableDefinition::new("org_webhooks");

/// Webhook ULID → the last event id already queued for it (set to the newest
/// event at creation: only later events go out).
pub const WEBHOOK_CURSORS: TableDefinition<u128, u128> = TableDefinition::new("webhook_cursors");
/// (webhook ULID, event ULID) → `Delivery` v1: the deliveries that are not
/// plain — a pending one with failed attempts (its retry time), or one that
/// failed for good (kept for replay). A queued delivery with no row is fresh
/// (no attempt yet, due at once); a delivered one keeps no row. So the
/// common case, delivered at the first attempt, never writes here.
pub const DELIVERIES: TableDefinition<(u128, u128), &[u8]> = TableDefinition::new("deliveries");
/// (webhook ULID, lane = session ULID or 0, event ULID) → (): what is still
/// to be delivered; a lane's first row is its head (per-session order).
pub const DELIVERY_QUEUE: TableDefinition<(u128, u128, u128), ()> = TableDefinition::new("delivery_queue");
/// (webhook ULID, entry ULID) → `LoggedAttempt` v1: the delivery log, in the
/// order attempts were recorded (an append: a round of attempts to many
/// lanes writes one leaf, not one per lane).
pub const DELIVERY_LOG: TableDefinition<(u128, u128), &[u8]> = TableDefinition::new("delivery_log");
/// Schema 1's delivery log, keyed (webhook ULID, event ULID, attempt n) →
/// `Attempt` v1: moved into [`DELIVERY_LOG`] and dropped by the upgrade to 2.
pub const V1_DELIVERY_ATTEMPTS: TableDefinition<(u128, u128, u32), &[u8]> = TableDefinition::new("delivery_attempts");
/// Webhook ULID → since when (Unix ms) its attempts have failed with no
/// success in between; no row while it is healthy (CONTRACT §10: failing
/// for 5 days in a row disables it). See [`crate::store::webhook_health`].
pub const WEBHOOK_HEALTH: TableDefinition<u128, i64> = TableDefinition::new("webhook_health");

/// (session ULID, jid or "", lid or "") → `Contact` v1: a session's
/// contacts in `jid` order, then `lid` (CONTRACT §12; [`super::contacts`]).
pub const CONTACTS: TableDefinition<(u128, &str, &str), &[u8]> = TableDefinition::new("contacts");
/// (session ULID, phone JID or `@lid`) → the contact's key in [`CONTACTS`].
pub const CONTACT_ADDRESSES: TableDefinition<(u128, &str), (&str, &str)> = TableDefinition::new("contact_addresses");
/// (session ULID, phone digits) → `NumberCheck` v1: the number-check cache.
pub const NUMBER_CHECKS: TableDefinition<(u128, &str), &[u8]> = TableDefinition::new("number_checks");
/// Session ULID → `LookupWindow` v1: the lookup budget spent in the last hour.
pub const LOOKUP_BUDGET: TableDefinition<u128, &[u8]> = TableDefinition::new("lookup_budget");
/// Session ULID → `Profile` v1: the session's own name and about.
pub const PROFILES: TableDefinition<u128, &[u8]> = TableDefinition::new("profiles");
/// Event ULID → organization id: the `presence.update` events, pruned after
/// `--presence-retention` (sooner than the other events).
pub const PRESENCE_EVENTS: TableDefinition<u128, &str> = TableDefinition::new("presence_events");

pub const META_SCHEMA_VERSION: &str = "schema_version";
pub const META_DATA_FILE_ID: &str = "data_file_id";
pub const META_CURSOR_SECRET: &str = "cursor_secret";
pub const META_CREATED_AT: &str = "created_at";
/// `jwks` or `embedded`: who issues the login tokens this file's gateway
/// accepts (written by `serve`, read by `token`).
pub const META_ISSUER_MODE: &str = "issuer_mode";

/// Fills a buffer from the OS random source.
pub fn random_bytes<const N: usize>() -> StoreResult<[u8; N]> {
    let mut buf = [0u8; N];
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| StoreError::Corrupt("no OS randomness".into()))?;
    Ok(buf)
}

/// Creates missing tables and meta values, upgrades older schemas, all in one
/// write transaction, and returns the meta values.
pub fn migrate(db: &Database) -> StoreResult<Meta> {
    let mut txn = db.begin_write()?;
    txn.set_durability(redb::Durability::Immediate)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    // The schema the file had (this build's for a new file).
    let mut from = SCHEMA_VERSION;
    {
        let mut meta = txn.open_table(META)?;
        let existing = match meta.get(META_SCHEMA_VERSION)? {
            Some(v) => Some(
                <[u8; 4]>::try_from(v.value())
                    .map(u32::from_be_bytes)
                    .map_err(|_| StoreError::Corrupt("meta.schema_version".into()))?,
            ),
            None => None,
        };
        match existing {
            Some(v) if v > SCHEMA_VERSION => return Err(StoreError::NewerSchema(v)),
            Some(v) => from = v,
            None => {
                meta.insert(META_DATA_FILE_ID, random_bytes::<16>()?.as_slice())?;
                meta.insert(META_CURSOR_SECRET, random_bytes::<32>()?.as_slice())?;
                meta.insert(META_CREATED_AT, super::now_ms().to_be_bytes().as_slice())?;
            }
        }
        meta.insert(META_SCHEMA_VERSION, SCHEMA_VERSION.to_be_bytes().as_slice())?;
    }
    txn.open_table(ORGS)?;
    txn.open_table(SESSIONS)?;
    txn.open_table(ORG_SESSIONS)?;
    txn.open_table(API_KEYS)?;
    txn.open_table(API_KEY_HASHES)?;
    crate::store::wa_state::create_tables(&txn)?;
    txn.open_table(ORG_API_KEYS)?;
    txn.open_table(RUNNING)?;
    txn.open_table(MESSAGES)?;
    txn.open_table(SESSION_MESSAGES)?;
    txn.open_table(SEND_QUEUE)?;
    txn.open_table(QUEUE_HEADS)?;
    txn.open_table(WA_IDS)?;
    txn.open_table(MEDIA)?;
    txn.open_table(ORG_USAGE)?;
    txn.open_table(MEDIA_REFS)?;
    txn.open_table(MEDIA_STAGED)?;
    txn.open_table(SEND_LOG)?;
    txn.open_table(SEND_PAUSES)?;
    txn.open_table(LID_MAP)?;
    txn.open_table(IDEMPOTENCY)?;
    txn.open_table(IDEMPOTENCY_EXPIRY)?;
    txn.open_table(EVENTS)?;
    txn.open_table(ORG_EVENTS)?;
    txn.open_table(WEBHOOKS)?;
    txn.open_table(ORG_WEBHOOKS)?;
    txn.open_table(WEBHOOK_CURSORS)?;
    txn.open_table(DELIVERIES)?;
    txn.open_table(DELIVERY_QUEUE)?;
    txn.open_table(DELIVERY_LOG)?;
    txn.open_table(WEBHOOK_HEALTH)?;
    // Schema 4 → 5 adds the directory's tables (CONTRACT §12, §13), empty:
    // contacts are learned and groups told by WhatsApp from then on, and
    // nothing older moves into them, so creating them is the whole step.
    create_directory_tables(&txn)?;
    // Upgrades, one step per version, in this transaction.
    if from < 2 {
        upgrade_delivery_log(&txn)?;
    }
    if from < 3 {
        upgrade_queue_lanes(&txn)?;
    }
    if from < 4 {
        super::media::upgrade_to_4_media(&txn)?;
    }
    upgrade_send_log(&txn)?;
    if from < 4 {
        super::usage::upgrade_to_4_quota(&txn)?;
    }
    recount_statuses_if_missing(&txn)?;
    txn.commit()?;
    read_meta(&db.begin_read()?)
}

/// The directory's tables (CONTRACT §12, §13; schema 5).
fn create_directory_tables(txn: &redb::WriteTransaction) -> StoreResult<()> {
    txn.open_table(GROUPS)?;
    txn.open_table(CONTACTS)?;
    txn.open_table(CONTACT_ADDRESSES)?;
    txn.open_table(NUMBER_CHECKS)?;
    txn.open_table(LOOKUP_BUDGET)?;
    txn.open_table(PROFILES)?;
    txn.open_table(PRESENCE_EVENTS)?;
    Ok(())
}

/// Schema 1 → 2: the delivery log moves from `delivery_attempts`, keyed by
/// (webhook, event, attempt n), to [`DELIVERY_LOG`], keyed by when the
/// attempt was made; `deliveries` drops its delivered rows (schema 2 keeps
/// none). An entry id is the attempt's time (the top 48 bits, as in a ULID)
/// over a count of the rows moved (the low 80 bits): the log keeps its order
/// by time, attempts of one millisecond keep their old (event, attempt)
/// order, and no two entries can share an id.
fn upgrade_delivery_log(txn: &redb::WriteTransaction) -> StoreResult<()> {
    use super::records::Record;
    use super::webhook_records::{Attempt, Delivery, DeliveryStatus, LoggedAttempt};
    use redb::TableHandle;
    let had = txn.list_tables()?.any(|t| t.name() == V1_DELIVERY_ATTEMPTS.name());
    if had {
        let old = txn.open_table(V1_DELIVERY_ATTEMPTS)?;
        let mut log = txn.open_table(DELIVERY_LOG)?;
        for (moved, row) in old.iter()?.enumerate() {
            let (k, v) = row?;
            let (webhook, event, number) = k.value();
            let attempt = Attempt::decode(v.value())?;
            let id = (u128::from(attempt.at.max(0) as u64 & ((1 << 48) - 1)) << 80) | moved as u128;
            log.insert((webhook, id), LoggedAttempt { event, number, attempt }.encode().as_slice())?;
        }
        drop(old);
        txn.delete_table(V1_DELIVERY_ATTEMPTS)?;
    }
    let mut deliveries = txn.open_table(DELIVERIES)?;
    deliveries.retain(|_, v| Delivery::decode(v).map_or(true, |d| d.status != DeliveryStatus::Delivered))?;
    Ok(())
}

/// Schema 2 → 3: the send queue's plain sends move into the lane flag of
/// the session index (`session_messages` becomes `session_message_index`),
/// `send_queue` keeps only scheduled messages and revokes, and
/// `send_queue_counts` becomes `send_queue_heads` (with the lane's count and
/// low-water id). One pass over the old index and the messages it names.
fn upgrade_queue_lanes(txn: &redb::WriteTransaction) -> StoreResult<()> {
    use super::messages::{in_lane, in_order, queued};
    use redb::TableHandle;
    let names: Vec<String> = txn.list_tables()?.map(|t| t.name().to_string()).collect();
    if names.iter().any(|n| n == V2_SESSION_MESSAGES.name()) {
        let messages = txn.open_table(MESSAGES)?;
        let old = txn.open_table(V2_SESSION_MESSAGES)?;
        let mut index = txn.open_table(SESSION_MESSAGES)?;
        let mut queue = txn.open_table(SEND_QUEUE)?;
        let mut heads: std::collections::HashMap<u128, (u64, u64, u128)> = std::collections::HashMap::new();
        for row in old.iter()? {
            let (session, id) = row?.0.value();
            let m = super::messages::get(&messages, id)?
                .ok_or_else(|| StoreError::Corrupt("session_messages names a missing message".into()))?;
            index.insert((session, id), u8::from(in_order(&m)))?;
            if queued(&m) {
                let h = heads.entry(session).or_insert((0, 0, u128::MAX));
                h.0 += 1;
                if in_lane(&m) {
                    h.1 += 1;
                    h.2 = h.2.min(id);
                    queue.remove((session, super::messages::due(&m), id))?;
                }
            }
        }
        let mut t = txn.open_table(QUEUE_HEADS)?;
        for (session, (total, lane, low)) in heads {
            t.insert(session, (total, lane, if lane == 0 { 0 } else { low }))?;
        }
        drop(old);
        txn.delete_table(V2_SESSION_MESSAGES)?;
    }
    if names.iter().any(|n| n == V2_QUEUE_COUNTS.name()) {
        txn.delete_table(V2_QUEUE_COUNTS)?;
    }
    Ok(())
}

/// Schema 2 → 3 (also run for a schema-3 file written before the change):
/// the send times move from `send_times`, keyed per session, to
/// [`SEND_LOG`], keyed by time.
fn upgrade_send_log(txn: &redb::WriteTransaction) -> StoreResult<()> {
    use redb::TableHandle;
    if !txn.list_tables()?.any(|t| t.name() == V2_SEND_TIMES.name()) {
        return Ok(());
    }
    {
        let old = txn.open_table(V2_SEND_TIMES)?;
        let mut log = txn.open_table(SEND_LOG)?;
        for row in old.iter()? {
            let (session, at, id) = row?.0.value();
            log.insert((at, id), session)?;
        }
    }
    txn.delete_table(V2_SEND_TIMES)?;
    Ok(())
}

/// Fills `session_status_counts` from the sessions when it is empty but
/// sessions exist (a file from before the table): a one-time O(n) pass.
fn recount_statuses_if_missing(txn: &redb::WriteTransaction) -> StoreResult<()> {
    use redb::ReadableTableMetadata;
    let mut counts = txn.open_table(STATUS_COUNTS)?;
    if !counts.is_empty()? {
        return Ok(());
    }
    let sessions = txn.open_table(SESSIONS)?;
    if sessions.is_empty()? {
        return Ok(());
    }
    let mut tally = std::collections::HashMap::new();
    for row in sessions.iter()? {
        let (_, v) = row?;
        let s = super::records::SessionRef::decode(v.value())?;
        *tally.entry(s.status.as_str()).or_insert(0u64) += 1;
    }
    for (status, n) in tally {
        counts.insert(status, n)?;
    }
    Ok(())
}
