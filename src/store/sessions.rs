//! Session records: create, read, update, delete, and id-ordered walks of the
//! global index (`sessions`) and the per-organization index (`org_sessions`).

use std::collections::HashMap;
use std::ops::Bound;

use redb::{AccessGuard, ReadTransaction, ReadableTable, ReadableTableMetadata, WriteTransaction};
use ulid::Ulid;

use super::records::{OrgStatus, Organization, Record, Session, SessionRef, SessionStatus};
use super::tables::{ORGS, ORG_SESSIONS, RUNNING, SESSIONS, STATUS_COUNTS};
use super::{orgs, Store, StoreError, StoreResult};

/// One page of an id-ordered walk.
#[derive(Debug)]
pub struct Page<K, T> {
    /// Matching rows, in key order.
    pub items: Vec<(K, T)>,
    /// Where the next page starts (exclusive); `None` when the walk is done.
    pub next_after: Option<K>,
}

/// Collects up to `limit` rows for which `keep` holds, reading at most
/// `budget` rows (see [`scan`]); used for the smaller lists (organizations,
/// api-keys), whose records are decoded owned.
pub fn collect_page<K: Clone, T>(
    rows: impl Iterator<Item = StoreResult<(K, T)>>,
    limit: usize,
    budget: usize,
    mut keep: impl FnMut(&T) -> bool,
) -> StoreResult<Page<K, T>> {
    let mut items = Vec::with_capacity(limit.min(256));
    let mut last: Option<K> = None;
    for (scanned, row) in rows.enumerate() {
        if items.len() >= limit || scanned >= budget {
            return Ok(Page { items, next_after: last });
        }
        let (k, v) = row?;
        last = Some(k.clone());
        if keep(&v) {
            items.push((k, v));
        }
    }
    Ok(Page { items, next_after: None })
}

/// Reads one session from a snapshot.
pub fn get(txn: &ReadTransaction, id: Ulid) -> StoreResult<Option<Session>> {
    let table = txn.open_table(SESSIONS)?;
    match table.get(u128::from(id))? {
        Some(v) => Ok(Some(Session::decode(v.value())?)),
        None => Ok(None),
    }
}

/// Reads one session inside a write transaction (a job of the group commit
/// sees what the jobs before it wrote).
pub fn get_in(txn: &WriteTransaction, id: u128) -> StoreResult<Option<Session>> {
    let table = txn.open_table(SESSIONS)?;
    let found = table.get(id)?.map(|v| Session::decode(v.value()));
    found.transpose()
}

/// Feeds session rows to `visit` in key order, borrowing each record (no
/// copy), until `visit` has kept `limit` rows or `budget` rows were read, so a
/// filtered page costs O(budget) however sparse the matches are. Returns where
/// the next page starts, only when at least one further row exists.
fn scan<'r>(
    rows: impl Iterator<Item = StoreResult<(u128, AccessGuard<'r, &'static [u8]>)>>,
    limit: usize,
    budget: usize,
    mut visit: impl FnMut(u128, &SessionRef) -> bool,
) -> StoreResult<Option<u128>> {
    let mut kept = 0usize;
    let mut last = None;
    for (scanned, row) in rows.enumerate() {
        if kept >= limit || scanned >= budget {
            return Ok(last);
        }
        let (id, guard) = row?;
        last = Some(id);
        if visit(id, &SessionRef::decode(guard.value())?) {
            kept += 1;
        }
    }
    Ok(None)
}

/// Walks the global index after `after`, in id order; `visit` returns whether
/// it kept the row.
pub fn scan_all(
    txn: &ReadTransaction,
    after: Option<u128>,
    limit: usize,
    budget: usize,
    visit: impl FnMut(u128, &SessionRef) -> bool,
) -> StoreResult<Option<u128>> {
    let table = txn.open_table(SESSIONS)?;
    let start = after.map_or(Bound::Unbounded, Bound::Excluded);
    let rows = table.range::<u128>((start, Bound::Unbounded))?.map(|row| {
        let (k, v) = row?;
        Ok((k.value(), v))
    });
    scan(rows, limit, budget, visit)
}

/// Walks one organization's sessions after `after`, in id order.
pub fn scan_org(
    txn: &ReadTransaction,
    org: &str,
    after: Option<u128>,
    limit: usize,
    budget: usize,
    visit: impl FnMut(u128, &SessionRef) -> bool,
) -> StoreResult<Option<u128>> {
    let index = txn.open_table(ORG_SESSIONS)?;
    let sessions = txn.open_table(SESSIONS)?;
    let start = after.map_or(Bound::Included((org, 0u128)), |a| Bound::Excluded((org, a)));
    let rows = index
        .range::<(&str, u128)>((start, Bound::Included((org, u128::MAX))))?
        .map(|row| {
            let id = row?.0.value().1;
            let v = sessions.get(id)?.ok_or_else(|| {
                StoreError::Corrupt(format!("org_sessions names missing session {}", Ulid::from(id)))
            })?;
            Ok((id, v))
        });
    scan(rows, limit, budget, visit)
}

/// Counts one organization's sessions.
pub fn count_org(index: &impl ReadableTable<(&'static str, u128), ()>, org: &str) -> StoreResult<u64> {
    let mut n = 0;
    for row in index.range::<(&str, u128)>((org, 0)..=(org, u128::MAX))? {
        row?;
        n += 1;
    }
    Ok(n)
}

/// Keeps the `running_sessions` index equal to the sessions whose
/// `desired_running` is set, in the same transaction as the session write.
fn sync_running(txn: &WriteTransaction, key: u128, session: &Session) -> StoreResult<()> {
    let mut running = txn.open_table(RUNNING)?;
    if session.desired_running {
        running.insert(key, ())?;
    } else {
        running.remove(key)?;
    }
    Ok(())
}

/// Adds `delta` to the count of sessions in `status`, in the caller's transaction.
pub fn bump_status(txn: &WriteTransaction, status: SessionStatus, delta: i64) -> StoreResult<()> {
    let mut counts = txn.open_table(STATUS_COUNTS)?;
    let now = counts.get(status.as_str())?.map_or(0, |v| v.value());
    counts.insert(status.as_str(), now.saturating_add_signed(delta))?;
    Ok(())
}

/// Moves one session between status counts when its status changed.
fn move_status(txn: &WriteTransaction, from: SessionStatus, to: SessionStatus) -> StoreResult<()> {
    if from != to {
        bump_status(txn, from, -1)?;
        bump_status(txn, to, 1)?;
    }
    Ok(())
}

/// A change to one session, applied inside a store transaction.
pub type SessionChange = Box<dyn FnOnce(&mut Session) + Send>;

/// A change to one session that may decline (return `false`: nothing is
/// written), decided inside the write transaction: the session manager uses
/// it to drop a stale engine event in the same transaction that would have
/// written it, so the check is ordered against every other writer.
pub type GuardedChange = Box<dyn FnOnce(&mut Session) -> bool + Send>;

/// Reads a session (within `org`, if given), applies `change`, keeps the
/// running index and status counts in step and optionally wipes its protocol
/// state, in the caller's transaction.
fn rewrite_in(
    txn: &WriteTransaction,
    id: Ulid,
    org: Option<&str>,
    wipe_state: bool,
    change: impl FnOnce(&mut Session) -> StoreResult<()>,
) -> StoreResult<Session> {
    let written = rewrite_in_if(txn, id, org, wipe_state, |s| change(s).map(|()| true))?;
    written.ok_or_else(|| StoreError::Corrupt("an unconditional session change declined".into()))
}

/// [`rewrite_in`] for a change that may decline: when `change` returns
/// `false` nothing is written (nor wiped) and the result is `None`.
fn rewrite_in_if(
    txn: &WriteTransaction,
    id: Ulid,
    org: Option<&str>,
    wipe_state: bool,
    change: impl FnOnce(&mut Session) -> StoreResult<bool>,
) -> StoreResult<Option<Session>> {
    let mut table = txn.open_table(SESSIONS)?;
    let key = u128::from(id);
    let mut session = match table.get(key)? {
        Some(v) => Session::decode(v.value())?,
        None => return Err(StoreError::NotFound("session")),
    };
    if org.is_some_and(|o| o != session.organization_id) {
        return Err(StoreError::NotFound("session"));
    }
    let before = session.status;
    if !change(&mut session)? {
        return Ok(None);
    }
    table.insert(key, session.encode().as_slice())?;
    drop(table);
    sync_running(txn, key, &session)?;
    move_status(txn, before, session.status)?;
    if wipe_state {
        wipe(txn, key)?;
    }
    if before != session.status {
        super::events::session_status(txn, key, &session)?;
        if session.status == SessionStatus::LoggedOut {
            super::messages::fail_queue(
                txn,
                key,
                "session_logged_out",
                "the session was logged out before the message was sent",
                session.updated_at,
            )?;
        }
    }
    Ok(Some(session))
}

/// Whether organization `id` is suspended, memoized in `seen` (a missing
/// organization counts as active, as it does for login).
fn suspended_in(
    orgs: &impl ReadableTable<&'static str, &'static [u8]>,
    seen: &mut HashMap<String, bool>,
    id: &str,
) -> StoreResult<bool> {
    if let Some(s) = seen.get(id) {
        return Ok(*s);
    }
    let suspended = match orgs.get(id)? {
        Some(v) => Organization::decode(v.value())?.status == OrgStatus::Suspended,
        None => false,
    };
    seen.insert(id.to_string(), suspended);
    Ok(suspended)
}

/// Deletes a session's WhatsApp protocol state (credentials, Signal keys) in
/// the caller's transaction: on delete and on logout.
fn wipe(txn: &WriteTransaction, key: u128) -> StoreResult<u64> {
    crate::store::wa_state::delete_session_state(txn, key)
}

impl Store {
    /// Ids of the sessions meant to be running, in id order.
    pub fn running_sessions(&self) -> StoreResult<Vec<Ulid>> {
        let txn = self.read()?;
        let table = txn.open_table(RUNNING)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            out.push(Ulid::from(row?.0.value()));
        }
        Ok(out)
    }

    /// Ids of one organization's sessions, in id order (suspension and
    /// reactivation walk them).
    pub fn org_session_ids(&self, org: &str) -> StoreResult<Vec<Ulid>> {
        let txn = self.read()?;
        let index = txn.open_table(ORG_SESSIONS)?;
        let mut out = Vec::new();
        for row in index.range::<(&str, u128)>((org, 0)..=(org, u128::MAX))? {
            out.push(Ulid::from(row?.0.value().1));
        }
        Ok(out)
    }

    /// At gateway start, before serving: every session meant to run is not
    /// connected yet, so it is `starting` until its engine reports otherwise.
    /// A session of a suspended organization is not resumed, so it is
    /// `stopped` (its `desired_running` stays: reactivation starts it again).
    /// One transaction; returns how many sessions were marked `starting`.
    pub fn mark_resuming(&self) -> StoreResult<u64> {
        let ids = self.running_sessions()?;
        if ids.is_empty() {
            return Ok(0);
        }
        let txn = self.write()?;
        let mut marked = 0;
        {
            let mut table = txn.open_table(SESSIONS)?;
            let orgs = txn.open_table(ORGS)?;
            let mut seen = HashMap::new();
            let now = super::now_ms();
            for id in ids {
                let key = u128::from(id);
                let mut session = match table.get(key)? {
                    Some(v) => Session::decode(v.value())?,
                    None => continue,
                };
                let to = if suspended_in(&orgs, &mut seen, &session.organization_id)? {
                    match session.status {
                        SessionStatus::Working | SessionStatus::ScanQrCode | SessionStatus::Starting => {
                            SessionStatus::Stopped
                        }
                        _ => continue,
                    }
                } else {
                    match session.status {
                        SessionStatus::Working | SessionStatus::ScanQrCode => SessionStatus::Starting,
                        _ => continue,
                    }
                };
                move_status(&txn, session.status, to)?;
                session.status = to;
                session.updated_at = now;
                table.insert(key, session.encode().as_slice())?;
                super::events::session_status(&txn, key, &session)?;
                marked += u64::from(to == SessionStatus::Starting);
            }
        }
        self.commit(txn)?;
        Ok(marked)
    }

    /// Marks a session logged out and deletes its protocol state in one
    /// durable transaction.
    pub fn logout_session(&self, id: Ulid, change: impl FnOnce(&mut Session)) -> StoreResult<Session> {
        self.rewrite_session(id, None, true, |s| {
            change(s);
            Ok(())
        })
    }

    /// [`Store::logout_session`] for a change that may decline (`false`:
    /// nothing written, nothing wiped, `None`), decided in the transaction.
    pub fn logout_session_if(&self, id: Ulid, change: impl FnOnce(&mut Session) -> bool) -> StoreResult<Option<Session>> {
        self.rewrite_session_if(id, true, change)
    }

    /// Inserts a new session (and its organization on first sight), enforcing
    /// the organization's `maxSessions`. Durable when it returns.
    pub fn create_session(&self, id: Ulid, session: &Session) -> StoreResult<()> {
        let txn = self.write()?;
        {
            let org = orgs::ensure(&txn, &session.organization_id, session.created_at)?;
            let mut index = txn.open_table(ORG_SESSIONS)?;
            if let Some(max) = org.max_sessions {
                if count_org(&index, &session.organization_id)? >= u64::from(max) {
                    return Err(StoreError::Conflict(format!(
                        "organization has reached its limit of {max} sessions"
                    )));
                }
            }
            let mut table = txn.open_table(SESSIONS)?;
            let key = u128::from(id);
            if table.get(key)?.is_some() {
                return Err(StoreError::Conflict("session id already exists".into()));
            }
            table.insert(key, session.encode().as_slice())?;
            index.insert((session.organization_id.as_str(), key), ())?;
            sync_running(&txn, key, session)?;
            bump_status(&txn, session.status, 1)?;
        }
        self.commit(txn)?;
        Ok(())
    }

    /// Reads a session; with `org`, only if it belongs to that organization.
    pub fn get_session(&self, id: Ulid, org: Option<&str>) -> StoreResult<Session> {
        let txn = self.read()?;
        match get(&txn, id)? {
            Some(s) if org.is_none_or(|o| o == s.organization_id) => Ok(s),
            _ => Err(StoreError::NotFound("session")),
        }
    }

    /// Read-modify-write of one session in one durable transaction.
    pub fn update_session(
        &self,
        id: Ulid,
        org: Option<&str>,
        change: impl FnOnce(&mut Session) -> StoreResult<()>,
    ) -> StoreResult<Session> {
        self.rewrite_session(id, org, false, change)
    }

    /// Read-modify-write of one session that may decline: `change` returns
    /// `false` to write nothing (the transaction is dropped, no fsync) and the
    /// result is `None`. The decision is taken inside the write transaction,
    /// so it is ordered against every other writer (redb has one at a time).
    pub fn update_session_if(&self, id: Ulid, change: impl FnOnce(&mut Session) -> bool) -> StoreResult<Option<Session>> {
        self.rewrite_session_if(id, false, change)
    }

    /// One transaction around [`rewrite_in_if`]: committed when the change
    /// was applied, aborted when it declined.
    fn rewrite_session_if(
        &self,
        id: Ulid,
        wipe_state: bool,
        change: impl FnOnce(&mut Session) -> bool,
    ) -> StoreResult<Option<Session>> {
        let txn = self.write()?;
        match rewrite_in_if(&txn, id, None, wipe_state, |s| Ok(change(s)))? {
            Some(updated) => {
                self.commit(txn)?;
                Ok(Some(updated))
            }
            None => {
                txn.abort()?;
                Ok(None)
            }
        }
    }

    /// Reads a session (within `org`, if given), applies `change` and
    /// commits, all in one transaction (see [`rewrite_in`]).
    fn rewrite_session(
        &self,
        id: Ulid,
        org: Option<&str>,
        wipe_state: bool,
        change: impl FnOnce(&mut Session) -> StoreResult<()>,
    ) -> StoreResult<Session> {
        let txn = self.write()?;
        let updated = rewrite_in(&txn, id, org, wipe_state, change)?;
        self.commit(txn)?;
        Ok(updated)
    }

    /// Applies several sessions' changes in one durable transaction (one
    /// fsync for a burst of engine events). Sessions deleted meanwhile are
    /// skipped; returns how many were updated.
    pub fn update_sessions(&self, changes: Vec<(Ulid, SessionChange)>) -> StoreResult<usize> {
        let guarded = changes
            .into_iter()
            .map(|(id, change)| {
                let g: GuardedChange = Box::new(move |s: &mut Session| {
                    change(s);
                    true
                });
                (id, g)
            })
            .collect();
        Ok(self.update_sessions_if(guarded)?.into_iter().filter(|w| *w).count())
    }

    /// [`Store::update_sessions`] for changes that may decline: says, for
    /// each change in order, whether it was written (`false` when it declined
    /// or its session was deleted meanwhile). One transaction, committed only
    /// if something was written.
    pub fn update_sessions_if(&self, changes: Vec<(Ulid, GuardedChange)>) -> StoreResult<Vec<bool>> {
        let txn = self.write()?;
        let mut written = Vec::with_capacity(changes.len());
        for (id, change) in changes {
            match rewrite_in_if(&txn, id, None, false, |s| Ok(change(s))) {
                Ok(w) => written.push(w.is_some()),
                Err(StoreError::NotFound(_)) => written.push(false),
                Err(e) => return Err(e),
            }
        }
        if written.iter().any(|w| *w) {
            self.commit(txn)?;
        } else {
            txn.abort()?;
        }
        Ok(written)
    }

    /// Deletes a session and its index entry; `guard` may veto after reading it.
    pub fn delete_session(
        &self,
        id: Ulid,
        org: Option<&str>,
        guard: impl FnOnce(&Session) -> StoreResult<()>,
    ) -> StoreResult<()> {
        let txn = self.write()?;
        {
            let mut table = txn.open_table(SESSIONS)?;
            let key = u128::from(id);
            let session = match table.get(key)? {
                Some(v) => Session::decode(v.value())?,
                None => return Err(StoreError::NotFound("session")),
            };
            if org.is_some_and(|o| o != session.organization_id) {
                return Err(StoreError::NotFound("session"));
            }
            guard(&session)?;
            table.remove(key)?;
            txn.open_table(ORG_SESSIONS)?
                .remove((session.organization_id.as_str(), key))?;
            txn.open_table(RUNNING)?.remove(key)?;
            bump_status(&txn, session.status, -1)?;
            wipe(&txn, key)?;
            super::messages::drop_session(&txn, key)?;
            super::groups::drop_session(&txn, key)?;
            super::contacts::drop_session(&txn, key)?;
        }
        self.commit(txn)?;
        Ok(())
    }

    /// Sessions per status (O(1): six rows).
    pub fn status_counts(&self) -> StoreResult<Vec<(SessionStatus, u64)>> {
        let txn = self.read()?;
        let counts = txn.open_table(STATUS_COUNTS)?;
        let mut out = Vec::with_capacity(SessionStatus::ALL.len());
        for st in SessionStatus::ALL {
            out.push((st, counts.get(st.as_str())?.map_or(0, |v| v.value())));
        }
        Ok(out)
    }

    /// Number of sessions in the file (O(1): redb keeps the count).
    pub fn session_count(&self) -> StoreResult<u64> {
        Ok(self.read()?.open_table(SESSIONS)?.len()?)
    }
}
