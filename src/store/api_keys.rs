//! Api-key records: stored by id, found by the SHA-256 of the key, listed per
//! organization. The key itself is never stored.

use std::ops::Bound;

use redb::{ReadableTable};
use ulid::Ulid;

use super::records::{ApiKey, Record};
use super::sessions::{collect_page, Page};
use super::tables::{API_KEYS, API_KEY_HASHES, ORG_API_KEYS};
use super::{orgs, Store, StoreError, StoreResult};

impl Store {
    /// Stores a new api-key and its hash index entry.
    pub fn create_api_key(&self, id: Ulid, key: &ApiKey) -> StoreResult<()> {
        let txn = self.write()?;
        {
            orgs::ensure(&txn, &key.organization_id, key.created_at)?;
            let mut hashes = txn.open_table(API_KEY_HASHES)?;
            if hashes.get(key.hash.as_slice())?.is_some() {
                return Err(StoreError::Conflict("api-key hash collision".into()));
            }
            let k = u128::from(id);
            hashes.insert(key.hash.as_slice(), k)?;
            txn.open_table(API_KEYS)?.insert(k, key.encode().as_slice())?;
            txn.open_table(ORG_API_KEYS)?.insert((key.organization_id.as_str(), k), ())?;
        }
        self.commit(txn)?;
        Ok(())
    }

    /// Finds an api-key by the SHA-256 of its secret.
    pub fn find_api_key(&self, hash: &[u8; 32]) -> StoreResult<Option<(Ulid, ApiKey)>> {
        let txn = self.read()?;
        let id = match txn.open_table(API_KEY_HASHES)?.get(hash.as_slice())? {
            Some(v) => v.value(),
            None => return Ok(None),
        };
        match txn.open_table(API_KEYS)?.get(id)? {
            Some(v) => Ok(Some((Ulid::from(id), ApiKey::decode(v.value())?))),
            None => Err(StoreError::Corrupt("api_key_hashes names a missing key".into())),
        }
    }

    /// Read-modify-write of one api-key within an organization.
    pub fn update_api_key(
        &self,
        id: Ulid,
        org: &str,
        change: impl FnOnce(&mut ApiKey),
    ) -> StoreResult<ApiKey> {
        let txn = self.write()?;
        let key = {
            let mut table = txn.open_table(API_KEYS)?;
            let mut key = match table.get(u128::from(id))? {
                Some(v) => ApiKey::decode(v.value())?,
                None => return Err(StoreError::NotFound("api-key")),
            };
            if key.organization_id != org {
                return Err(StoreError::NotFound("api-key"));
            }
            change(&mut key);
            table.insert(u128::from(id), key.encode().as_slice())?;
            key
        };
        self.commit(txn)?;
        Ok(key)
    }

    /// One page of an organization's api-keys in id order.
    pub fn list_api_keys(
        &self,
        org: &str,
        after: Option<u128>,
        limit: usize,
    ) -> StoreResult<Page<u128, ApiKey>> {
        let txn = self.read()?;
        let index = txn.open_table(ORG_API_KEYS)?;
        let keys = txn.open_table(API_KEYS)?;
        let start = after.map_or(Bound::Included((org, 0u128)), |a| Bound::Excluded((org, a)));
        let rows = index
            .range::<(&str, u128)>((start, Bound::Included((org, u128::MAX))))?
            .map(|row| {
                let id = row?.0.value().1;
                let v = keys
                    .get(id)?
                    .ok_or_else(|| StoreError::Corrupt("org_api_keys names a missing key".into()))?;
                Ok((id, ApiKey::decode(v.value())?))
            });
        collect_page(rows, limit, limit, |_| true)
    }
}
