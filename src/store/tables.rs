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
            Some(_) => {
                // Version 1 is the first schema: nothing to upgrade yet. Future
                // upgrades go here, one step per version, in this transaction.
            }
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
    crate::engine::whatsapp::tables::create_tables(&txn)?;
    txn.open_table(ORG_API_KEYS)?;
    txn.open_table(RUNNING)?;
    recount_statuses_if_missing(&txn)?;
    txn.commit()?;
    read_meta(&db.begin_read()?)
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
