//! Organizations: created on first sight of a login JWT naming them, or by a
//! super_admin; suspended by a super_admin.

use std::collections::HashSet;
use std::ops::Bound;

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::records::{OrgStatus, Organization, Record};
use super::sessions::{collect_page, Page};
use super::tables::ORGS;
use super::{Store, StoreError, StoreResult};

/// Returns the organization, creating it (active, named after its id) if new.
pub fn ensure(txn: &WriteTransaction, id: &str, now: i64) -> StoreResult<Organization> {
    let mut table = txn.open_table(ORGS)?;
    if let Some(v) = table.get(id)? {
        return Organization::decode(v.value());
    }
    let org = Organization {
        name: id.to_string(),
        status: OrgStatus::Active,
        max_sessions: None,
        created_at: now,
        updated_at: now,
        max_stored_bytes: None,
    };
    table.insert(id, org.encode().as_slice())?;
    Ok(org)
}

/// Reads one organization in a write transaction.
pub fn get_in(txn: &WriteTransaction, id: &str) -> StoreResult<Option<Organization>> {
    match txn.open_table(ORGS)?.get(id)? {
        Some(v) => Ok(Some(Organization::decode(v.value())?)),
        None => Ok(None),
    }
}

/// Reads one organization from a snapshot.
pub fn get(txn: &ReadTransaction, id: &str) -> StoreResult<Option<Organization>> {
    let table = txn.open_table(ORGS)?;
    match table.get(id)? {
        Some(v) => Ok(Some(Organization::decode(v.value())?)),
        None => Ok(None),
    }
}

/// Ids of every suspended organization in a snapshot (read once at open).
pub fn suspended_ids(txn: &ReadTransaction) -> StoreResult<HashSet<String>> {
    let table = txn.open_table(ORGS)?;
    let mut out = HashSet::new();
    for row in table.iter()? {
        let (k, v) = row?;
        // An undecodable row is `check`'s business, not a reason not to start.
        if Organization::decode(v.value()).is_ok_and(|o| o.status == OrgStatus::Suspended) {
            out.insert(k.value().to_string());
        }
    }
    Ok(out)
}

impl Store {
    /// Whether `id` is suspended: answered from memory, no read.
    pub fn is_suspended(&self, id: &str) -> bool {
        self.suspended.read().unwrap_or_else(|e| e.into_inner()).contains(id)
    }

    /// Keeps the in-memory suspended set in step after a committed org write.
    fn note_status(&self, id: &str, status: OrgStatus) {
        let mut set = self.suspended.write().unwrap_or_else(|e| e.into_inner());
        if status == OrgStatus::Suspended {
            set.insert(id.to_string());
        } else {
            set.remove(id);
        }
    }

    /// Reads an organization.
    pub fn get_org(&self, id: &str) -> StoreResult<Option<Organization>> {
        get(&self.read()?, id)
    }

    /// Returns the organization, creating it on first sight (one durable write
    /// the first time, a read afterwards).
    pub fn ensure_org(&self, id: &str) -> StoreResult<Organization> {
        if let Some(org) = self.get_org(id)? {
            return Ok(org);
        }
        let txn = self.write()?;
        let org = ensure(&txn, id, super::now_ms())?;
        self.commit(txn)?;
        Ok(org)
    }

    /// Creates an organization; 409 if the id is taken.
    pub fn create_org(&self, id: &str, org: &Organization) -> StoreResult<()> {
        let txn = self.write()?;
        {
            let mut table = txn.open_table(ORGS)?;
            if table.get(id)?.is_some() {
                return Err(StoreError::Conflict(format!("organization {id} already exists")));
            }
            table.insert(id, org.encode().as_slice())?;
        }
        self.commit(txn)?;
        self.note_status(id, org.status);
        Ok(())
    }

    /// Read-modify-write of one organization.
    pub fn update_org(
        &self,
        id: &str,
        change: impl FnOnce(&mut Organization),
    ) -> StoreResult<Organization> {
        let txn = self.write()?;
        let org = {
            let mut table = txn.open_table(ORGS)?;
            let mut org = match table.get(id)? {
                Some(v) => Organization::decode(v.value())?,
                None => return Err(StoreError::NotFound("organization")),
            };
            change(&mut org);
            table.insert(id, org.encode().as_slice())?;
            org
        };
        self.commit(txn)?;
        self.note_status(id, org.status);
        Ok(org)
    }

    /// The bytes an organization stores (see [`super::usage`]).
    pub fn org_stored_bytes(&self, id: &str) -> StoreResult<u64> {
        super::usage::stored(&self.read()?, id)
    }

    /// [`Store::list_orgs`], each with its stored bytes, from one snapshot.
    pub fn list_orgs_with_usage(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<String, (Organization, u64)>> {
        let txn = self.read()?;
        let page = list_in(&txn, after, limit)?;
        let counters = match txn.open_table(super::tables::ORG_USAGE) {
            Ok(t) => Some(t),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let mut items = Vec::with_capacity(page.items.len());
        for (id, org) in page.items {
            let n = match &counters {
                Some(t) => t.get(id.as_str())?.map_or(0, |v| v.value()),
                None => 0,
            };
            items.push((id, (org, n)));
        }
        Ok(Page { items, next_after: page.next_after })
    }

    /// One page of organizations in id order.
    pub fn list_orgs(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<String, Organization>> {
        list_in(&self.read()?, after, limit)
    }
}

/// One page of organizations in id order, from a snapshot.
fn list_in(txn: &ReadTransaction, after: Option<&str>, limit: usize) -> StoreResult<Page<String, Organization>> {
    let table = txn.open_table(ORGS)?;
    let start = after.map_or(Bound::Unbounded, Bound::Excluded);
    let rows = table.range::<&str>((start, Bound::Unbounded))?.map(|row| {
        let (k, v) = row?;
        Ok((k.value().to_string(), Organization::decode(v.value())?))
    });
    collect_page(rows, limit, limit, |_| true)
}
