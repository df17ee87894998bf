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
/// (session ULID, message ULID) → (): a session's messages in id order.
pub const SESSION_MESSAGES: TableDefinition<(u128, u128), ()> = TableDefinition::new("session_messages");
/// (session ULID, due ms, message ULID) → (): the send queue. Due is
/// `createdAt` (or `sendAt`), so the head is the oldest message that is due.
pub const SEND_QUEUE: TableDefinition<(u128, i64, u128), ()> = TableDefinition::new("send_queue");
/// Session ULID → messages in its send queue (the cap is checked in O(1)).
pub const QUEUE_COUNTS: TableDefinition<u128, u64> = TableDefinition::new("send_queue_counts");
/// (session ULID, WhatsApp message id) → message ULID: receipts, reactions,
/// edits and revokes name messages by WhatsApp's id. An outbound message is
/// indexed when claimed for sending (nothing names it before it leaves).
pub const WA_IDS: TableDefinition<(u128, &str), u128> = TableDefinition::new("wa_message_ids");
/// Message ULID → media bytes of an outbound message, until it has left.
pub const MEDIA: TableDefinition<u128, &[u8]> = TableDefinition::new("message_media");
/// (session ULID, send time ms, message ULID) → (): sends of the last hour,
/// so pacing survives a restart.
pub const SEND_TIMES: TableDefinition<(u128, i64, u128), ()> = TableDefinition::new("send_times");
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
    txn.open_table(QUEUE_COUNTS)?;
    txn.open_table(WA_IDS)?;
    txn.open_table(MEDIA)?;
    txn.open_table(SEND_TIMES)?;
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
    // Upgrades, one step per version, in this transaction.
    if from < 2 {
        upgrade_delivery_log(&txn)?;
    }
    recount_statuses_if_missing(&txn)?;
    txn.commit()?;
    read_meta(&db.begin_read()?)
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
