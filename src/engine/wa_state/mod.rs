//! [`RedbBackend`]: the `whatsapp-rust` storage backend (its `Backend` trait
//! set: Signal, AppSync, Protocol, MsgSecret and Device stores) on the
//! gateway's redb data file, one instance per session.
//!
//! Every row lives in [`WA_STATE`] under the session's ULID (see
//! [`crate::store::wa_state`] for the layout). redb calls block, so each trait method
//! runs one transaction on tokio's blocking pool. Writes are durable
//! ([`Store::write`] + [`Store::commit`]); a batch method is one transaction,
//! and so is every read-modify-write (redb runs one write transaction at a
//! time, which makes them atomic).
//!
//! Semantics follow the crate's own SQLite backend: a `get` of a missing row
//! is `Ok(None)` (or the documented default), deleting a missing row is not
//! an error, `put` overwrites.

mod appsync;
pub mod codec;
mod device;
mod messages;
mod msg_secret;
mod protocol;
mod signal;

use std::fmt;
use std::ops::Bound;
use std::sync::Arc;

use redb::{ReadOnlyTable, ReadableTable, Table, TableError};
use ulid::Ulid;
use whatsapp_rust::wacore::store::error::StoreError as CrateStoreError;

use crate::store::wa_state::{create_tables, StateKey, WA_STATE};
use crate::store::records::SessionStatus;
use crate::store::{Store, StoreError};
use codec::Envelope;

/// Why a [`RedbBackend`] operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum WaStoreError {
    /// The data file failed.
    Store(StoreError),
    /// A stored value could not be decoded.
    Decode {
        /// What kind of value.
        kind: &'static str,
        /// The decoder's message.
        detail: String,
    },
    /// The blocking task running the transaction panicked or was cancelled.
    Task(String),
    /// The session is logged out: its protocol state was wiped and is not
    /// written again (a task of the closed client that writes late).
    LoggedOut,
}

impl fmt::Display for WaStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaStoreError::Store(e) => write!(f, "whatsapp state: {e}"),
            WaStoreError::Decode { kind, detail } => {
                write!(f, "whatsapp state: stored {kind} cannot be decoded: {detail}")
            }
            WaStoreError::Task(m) => write!(f, "whatsapp state: storage task failed: {m}"),
            WaStoreError::LoggedOut => write!(f, "whatsapp state: the session is logged out; its state is no longer kept"),
        }
    }
}

impl std::error::Error for WaStoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WaStoreError::Store(e) => Some(e),
            _ => None,
        }
    }
}

macro_rules! from_store_error {
    ($($t:ty),*) => {$(
        impl From<$t> for WaStoreError {
            fn from(e: $t) -> Self { WaStoreError::Store(e.into()) }
        }
    )*};
}
from_store_error!(
    StoreError,
    redb::Error,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl From<WaStoreError> for CrateStoreError {
    fn from(e: WaStoreError) -> Self {
        match e {
            WaStoreError::Decode { .. } => CrateStoreError::Serialization(Box::new(e)),
            other => CrateStoreError::Database(Box::new(other)),
        }
    }
}

/// Result alias inside the backend.
pub(crate) type WaResult<T> = Result<T, WaStoreError>;

/// The crate's result type, which every trait method returns.
pub(crate) type CrateResult<T> = Result<T, CrateStoreError>;

/// `whatsapp-rust` storage backend for one session, on the gateway's data file.
///
/// Cheap to clone; hand it to the crate as `Arc<dyn Backend>`.
#[derive(Clone)]
pub struct RedbBackend {
    store: Arc<Store>,
    session: u128,
}

impl fmt::Debug for RedbBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbBackend").field("session", &Ulid::from(self.session)).finish()
    }
}

impl RedbBackend {
    /// The backend for `session`'s state in `store`.
    pub fn new(store: Arc<Store>, session: Ulid) -> Self {
        RedbBackend { store, session: session.0 }
    }

    /// The session this backend reads and writes.
    pub fn session(&self) -> Ulid {
        Ulid::from(self.session)
    }

    /// Runs `f` on a read snapshot, on the blocking pool.
    async fn read<T, F>(&self, f: F) -> CrateResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Reader) -> WaResult<T> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        let session = self.session;
        let run = move || -> WaResult<T> {
            let txn = store.read()?;
            let table = match txn.open_table(WA_STATE) {
                Ok(t) => t,
                Err(TableError::TableDoesNotExist(_)) => {
                    // A data file from before this table: create it, then read.
                    let w = store.write()?;
                    create_tables(&w)?;
                    store.commit_unversioned(w)?;
                    store.read()?.open_table(WA_STATE)?
                }
                Err(e) => return Err(e.into()),
            };
            f(&Reader { table, session })
        };
        Ok(tokio::task::spawn_blocking(run).await.map_err(|e| WaStoreError::Task(e.to_string()))??)
    }

    /// Runs `f` in one durable write transaction, on the blocking pool. The
    /// transaction commits only if `f` succeeds.
    async fn write<T, F>(&self, f: F) -> CrateResult<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&mut Writer<'t>) -> WaResult<T> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        let session = self.session;
        let run = move || -> WaResult<T> {
            let txn = store.write()?;
            // Logout wipes this session's rows and marks it `logged_out` in
            // one transaction; a write of the closed client that comes after
            // (a background task finishing late) must not bring a row back.
            if crate::store::sessions::get_in(&txn, session)?.is_some_and(|s| s.status == SessionStatus::LoggedOut) {
                return Err(WaStoreError::LoggedOut);
            }
            let out = {
                let table = txn.open_table(WA_STATE)?;
                let mut w = Writer { table, session };
                f(&mut w)?
            };
            store.commit_unversioned(txn)?;
            Ok(out)
        };
        Ok(tokio::task::spawn_blocking(run).await.map_err(|e| WaStoreError::Task(e.to_string()))??)
    }
}

/// The smallest byte string greater than every string starting with `prefix`,
/// or `None` if there is none (empty, or all `0xFF`).
fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut p = prefix.to_vec();
    while let Some(last) = p.pop() {
        if last < 0xFF {
            p.push(last + 1);
            return Some(p);
        }
    }
    None
}

/// Owned bounds of the rows of one session and namespace whose key starts with a prefix.
struct PrefixRange {
    session: u128,
    ns: &'static str,
    /// `ns` followed by a NUL: the smallest namespace after `ns`.
    ns_next: String,
    prefix: Vec<u8>,
    upper: Option<Vec<u8>>,
}

impl PrefixRange {
    fn new(session: u128, ns: &'static str, prefix: &[u8]) -> Self {
        PrefixRange {
            session,
            ns,
            ns_next: format!("{ns}\0"),
            prefix: prefix.to_vec(),
            upper: prefix_successor(prefix),
        }
    }

    fn bounds(&self) -> (Bound<StateKey<'_>>, Bound<StateKey<'_>>) {
        let lower = Bound::Included((self.session, self.ns, self.prefix.as_slice()));
        let upper = match &self.upper {
            Some(u) => Bound::Excluded((self.session, self.ns, u.as_slice())),
            None => Bound::Excluded((self.session, self.ns_next.as_str(), &[][..])),
        };
        (lower, upper)
    }
}

/// Read access to one session's rows.
pub(crate) struct Reader {
    table: ReadOnlyTable<(u128, &'static str, &'static [u8]), &'static [u8]>,
    session: u128,
}

impl Reader {
    fn get(&self, ns: &'static str, key: &[u8]) -> WaResult<Option<Vec<u8>>> {
        Ok(self.table.get((self.session, ns, key))?.map(|v| v.value().to_vec()))
    }

    fn get_env<T: Envelope>(&self, ns: &'static str, key: &[u8]) -> WaResult<Option<T>> {
        match self.table.get((self.session, ns, key))? {
            Some(v) => Ok(Some(T::decode(v.value())?)),
            None => Ok(None),
        }
    }

    fn contains(&self, ns: &'static str, key: &[u8]) -> WaResult<bool> {
        Ok(self.table.get((self.session, ns, key))?.is_some())
    }

    /// Calls `f(key, value)` for each row of `ns` whose key starts with
    /// `prefix`, in key order (reversed if `rev`), until it returns `false`.
    fn scan(
        &self,
        ns: &'static str,
        prefix: &[u8],
        rev: bool,
        mut f: impl FnMut(&[u8], &[u8]) -> WaResult<bool>,
    ) -> WaResult<()> {
        let r = PrefixRange::new(self.session, ns, prefix);
        let range = self.table.range(r.bounds())?;
        let mut step = |row: Result<_, redb::StorageError>| -> WaResult<bool> {
            let (k, v): (redb::AccessGuard<StateKey<'static>>, redb::AccessGuard<&'static [u8]>) = row?;
            let key = k.value();
            f(key.2, v.value())
        };
        if rev {
            for row in range.rev() {
                if !step(row)? {
                    break;
                }
            }
        } else {
            for row in range {
                if !step(row)? {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Whether any row of `ns` has a key starting with `prefix`.
    fn any_with_prefix(&self, ns: &'static str, prefix: &[u8]) -> WaResult<bool> {
        let mut found = false;
        self.scan(ns, prefix, false, |_, _| {
            found = true;
            Ok(false)
        })?;
        Ok(found)
    }
}

/// Write access to one session's rows, inside one write transaction.
pub(crate) struct Writer<'t> {
    table: Table<'t, (u128, &'static str, &'static [u8]), &'static [u8]>,
    session: u128,
}

impl Writer<'_> {
    fn get(&self, ns: &'static str, key: &[u8]) -> WaResult<Option<Vec<u8>>> {
        Ok(self.table.get((self.session, ns, key))?.map(|v| v.value().to_vec()))
    }

    fn get_env<T: Envelope>(&self, ns: &'static str, key: &[u8]) -> WaResult<Option<T>> {
        match self.table.get((self.session, ns, key))? {
            Some(v) => Ok(Some(T::decode(v.value())?)),
            None => Ok(None),
        }
    }

    fn put(&mut self, ns: &'static str, key: &[u8], value: &[u8]) -> WaResult<()> {
        self.table.insert((self.session, ns, key), value)?;
        Ok(())
    }

    fn put_env<T: Envelope>(&mut self, ns: &'static str, key: &[u8], value: &T) -> WaResult<()> {
        self.put(ns, key, &value.encode())
    }

    /// Removes one row; `true` if it existed.
    fn remove(&mut self, ns: &'static str, key: &[u8]) -> WaResult<bool> {
        Ok(self.table.remove((self.session, ns, key))?.is_some())
    }

    /// Removes the rows of `ns` whose key starts with `prefix` and for which
    /// `pred(key, value)` is true; returns how many. A predicate error stops
    /// the scan and fails the transaction.
    fn remove_where(
        &mut self,
        ns: &'static str,
        prefix: &[u8],
        mut pred: impl FnMut(&[u8], &[u8]) -> WaResult<bool>,
    ) -> WaResult<u64> {
        let r = PrefixRange::new(self.session, ns, prefix);
        let mut failure: Option<WaStoreError> = None;
        let mut n = 0u64;
        {
            let extracted = self.table.extract_from_if(r.bounds(), |k, v| {
                if failure.is_some() {
                    return false;
                }
                match pred(k.2, v) {
                    Ok(b) => b,
                    Err(e) => {
                        failure = Some(e);
                        false
                    }
                }
            })?;
            for row in extracted {
                row?;
                n += 1;
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }
}

/// Decodes a UTF-8 key part.
fn utf8(kind: &'static str, bytes: &[u8]) -> WaResult<String> {
    String::from_utf8(bytes.to_vec())
        .map_err(|e| WaStoreError::Decode { kind, detail: e.to_string() })
}

/// A pre-key or signed-pre-key id as a key (big-endian, so keys sort by id).
fn id_key(id: u32) -> [u8; 4] {
    id.to_be_bytes()
}

/// The id of an [`id_key`].
fn key_id(kind: &'static str, key: &[u8]) -> WaResult<u32> {
    <[u8; 4]>::try_from(key)
        .map(u32::from_be_bytes)
        .map_err(|_| WaStoreError::Decode { kind, detail: format!("key of {} bytes", key.len()) })
}

#[cfg(test)]
mod tests {
    use super::prefix_successor;

    #[test]
    fn successor() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xFF, 0xFF]), None);
        assert_eq!(prefix_successor(b""), None);
    }
}
