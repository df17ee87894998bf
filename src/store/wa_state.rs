//! The redb table holding every WhatsApp session's credentials and Signal
//! protocol state, inside the gateway's one data file.
//!
//! One table, [`WA_STATE`], keyed `(session ULID, namespace, key)`:
//!
//! - the session ULID (`u128`) comes first, so everything a session owns is
//!   one contiguous key range: [`delete_session_state`] removes it in the
//!   caller's write transaction (the same one that changes the session's
//!   status), [`count_session_rows`] counts it;
//! - the namespace (`&str`, one of [`ns`]) says what kind of row it is;
//! - the key (`&[u8]`) is the row's identity inside the namespace: a UTF-8
//!   address or JID, a big-endian id, or several parts joined by
//!   [`composite_key`].
//!
//! Values are either raw protocol bytes (Signal sessions, identities, sender
//! keys, pre-key records, ...) or a postcard record in a versioned envelope
//! (see `engine::wa_state::codec`). The value layout of every namespace is listed in
//! [`ns`].

use std::ops::Bound;

use redb::{ReadTransaction, ReadableTable, TableDefinition, TableError, WriteTransaction};

use crate::store::{StoreError, StoreResult};

/// The key of a [`WA_STATE`] row: `(session ULID, namespace, key)`.
pub type StateKey<'a> = (u128, &'a str, &'a [u8]);

/// `(session ULID, namespace, key)` → value: every WhatsApp session's state.
pub const WA_STATE: TableDefinition<(u128, &str, &[u8]), &[u8]> = TableDefinition::new("wa_state");

/// Namespaces of [`WA_STATE`], with each one's key and value layout.
///
/// "Envelope" values are postcard-encoded enums whose variant index is the
/// record version (see `engine::wa_state::codec`); "raw" values are stored as the
/// `whatsapp-rust` crate hands them over. `a ‖ b` is [`composite_key`].
pub mod ns {
    /// The session's own device (keys, JIDs, account): key empty, envelope `Device`.
    pub const DEVICE: &str = "device";
    /// Remote identity keys: key = Signal address, value = raw 32 bytes.
    pub const IDENTITY: &str = "identity";
    /// Signal sessions: key = Signal address, value = raw session record.
    pub const SESSION: &str = "session";
    /// One-time pre-keys: key = id (u32 BE), envelope `PreKey` (record + uploaded flag).
    pub const PREKEY: &str = "prekey";
    /// Signed pre-keys: key = id (u32 BE), value = raw record.
    pub const SIGNED_PREKEY: &str = "signed_prekey";
    /// Group sender keys: key = sender-key address, value = raw record.
    pub const SENDER_KEY: &str = "sender_key";
    /// App-state sync keys: key = key id, envelope `SyncKey`.
    pub const SYNC_KEY: &str = "sync_key";
    /// App-state collection versions: key = collection name, envelope `HashState`.
    pub const APP_VERSION: &str = "app_version";
    /// App-state mutation MACs: key = collection ‖ index MAC, envelope `MutationMac`.
    pub const MUTATION_MAC: &str = "mutation_mac";
    /// Sender-key distribution status: key = group JID ‖ device JID, value = 1 byte (0/1).
    pub const SENDER_KEY_DEVICE: &str = "skd";
    /// LID → phone-number mappings: key = LID user, envelope `LidMapping`.
    pub const LID_MAPPING: &str = "lid";
    /// Reverse index of [`LID_MAPPING`]: key = phone ‖ LID, value empty.
    pub const PN_LID: &str = "pn_lid";
    /// Retry base-key collision detection: key = address ‖ message id, value = raw base key.
    pub const BASE_KEY: &str = "base_key";
    /// Device lists from usync: key = user, envelope `DeviceList`.
    pub const DEVICE_LIST: &str = "device_list";
    /// Group metadata cache: key = group JID, value = raw (crate-serialized) blob.
    pub const GROUP_METADATA: &str = "group_meta";
    /// Trusted-contact tokens: key = JID, envelope `TcToken`.
    pub const TC_TOKEN: &str = "tc_token";
    /// Sent messages kept for retry receipts: key = chat ‖ message id, envelope `SentMessage`.
    pub const SENT_MESSAGE: &str = "sent_msg";
    /// Inbound-durability buffer: key = chat ‖ sender ‖ id, envelope `PendingInbound`.
    pub const PENDING_INBOUND: &str = "pending_in";
    /// Message secrets: key = chat ‖ sender ‖ message id, envelope `MsgSecret`.
    pub const MSG_SECRET: &str = "msg_secret";

    /// Every namespace, for checks and tests.
    pub const ALL: [&str; 19] = [
        DEVICE,
        IDENTITY,
        SESSION,
        PREKEY,
        SIGNED_PREKEY,
        SENDER_KEY,
        SYNC_KEY,
        APP_VERSION,
        MUTATION_MAC,
        SENDER_KEY_DEVICE,
        LID_MAPPING,
        PN_LID,
        BASE_KEY,
        DEVICE_LIST,
        GROUP_METADATA,
        TC_TOKEN,
        SENT_MESSAGE,
        PENDING_INBOUND,
        MSG_SECRET,
    ];
}

/// Joins key parts: every part but the last is written as a 4-byte
/// big-endian length followed by its bytes; the last part is written as is.
/// Unambiguous for any bytes, and `composite_prefix(&[a])` is a byte prefix
/// of every `composite_key(&[a, ..])`, which is what the prefix scans use.
pub fn composite_key(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 4).sum());
    if let Some((last, init)) = parts.split_last() {
        for p in init {
            out.extend_from_slice(&(p.len() as u32).to_be_bytes());
            out.extend_from_slice(p);
        }
        out.extend_from_slice(last);
    }
    out
}

/// The prefix shared by every [`composite_key`] whose leading parts are
/// `parts` (each length-prefixed).
pub fn composite_prefix(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(&(p.len() as u32).to_be_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// Splits the first length-prefixed part off a [`composite_key`]:
/// `(first, rest)`, or `None` if the bytes are not a composite key.
pub fn split_composite(key: &[u8]) -> Option<(&[u8], &[u8])> {
    let len_bytes: [u8; 4] = key.get(..4)?.try_into().ok()?;
    let len = u32::from_be_bytes(len_bytes) as usize;
    let rest = key.get(4..)?;
    if rest.len() < len {
        return None;
    }
    Some(rest.split_at(len))
}

/// Key bounds covering every row of one session.
fn session_bounds(session: u128) -> (Bound<StateKey<'static>>, Bound<StateKey<'static>>) {
    let lower = Bound::Included((session, "", &[][..]));
    let upper = match session.checked_add(1) {
        Some(next) => Bound::Excluded((next, "", &[][..])),
        None => Bound::Unbounded,
    };
    (lower, upper)
}

/// Creates [`WA_STATE`] if it does not exist (called from the schema migration).
pub fn create_tables(txn: &WriteTransaction) -> StoreResult<()> {
    txn.open_table(WA_STATE)?;
    Ok(())
}

/// Deletes every row of `session`, in the caller's write transaction, and
/// returns how many rows were deleted. Other sessions' rows are untouched.
pub fn delete_session_state(txn: &WriteTransaction, session: u128) -> StoreResult<u64> {
    let mut table = txn.open_table(WA_STATE)?;
    let mut n = 0u64;
    for row in table.extract_from_if(session_bounds(session), |_, _| true)? {
        row?;
        n += 1;
    }
    Ok(n)
}

/// Copies every [`WA_STATE`] row from the snapshot `src` into `dst` (for
/// backups) and returns the number of rows copied. A source file without the
/// table copies nothing (and still creates the table in `dst`).
pub fn copy_tables(src: &ReadTransaction, dst: &WriteTransaction) -> StoreResult<u64> {
    let mut to = dst.open_table(WA_STATE)?;
    let from = match src.open_table(WA_STATE) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(StoreError::from(e)),
    };
    let mut n = 0u64;
    for row in from.iter()? {
        let (k, v) = row?;
        to.insert(k.value(), v.value())?;
        n += 1;
    }
    Ok(n)
}

/// How many [`WA_STATE`] rows `session` owns (0 if the table does not exist).
pub fn count_session_rows(txn: &ReadTransaction, session: u128) -> StoreResult<u64> {
    let table = match txn.open_table(WA_STATE) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(StoreError::from(e)),
    };
    let mut n = 0u64;
    for row in table.range(session_bounds(session))? {
        row?;
        n += 1;
    }
    Ok(n)
}

/// Every session that owns [`WA_STATE`] rows, with its row count, in id
/// order (for `check`: rows of a session that no longer exists are orphans).
pub fn rows_per_session(txn: &ReadTransaction) -> StoreResult<Vec<(u128, u64)>> {
    let table = match txn.open_table(WA_STATE) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::from(e)),
    };
    let mut out: Vec<(u128, u64)> = Vec::new();
    for row in table.iter()? {
        let (k, _) = row?;
        let (session, _, _) = k.value();
        match out.last_mut() {
            Some((s, n)) if *s == session => *n += 1,
            _ => out.push((session, 1)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_keys_round_trip_and_prefix() {
        let k = composite_key(&[b"group@g.us", b"123:4@s.whatsapp.net"]);
        let p = composite_prefix(&[b"group@g.us"]);
        assert!(k.starts_with(&p));
        let (first, rest) = split_composite(&k).unwrap();
        assert_eq!(first, b"group@g.us");
        assert_eq!(rest, b"123:4@s.whatsapp.net");
        // A group whose name is a prefix of another's does not share its prefix.
        let other = composite_key(&[b"group@g.usX", b"d"]);
        assert!(!other.starts_with(&p));
        assert_eq!(composite_key(&[b"only"]), b"only".to_vec());
        assert!(split_composite(&[0, 0, 0, 9, 1]).is_none());
    }
}
