//! Webhook endpoints: stored by id, listed per organization. An endpoint of
//! another organization is "not found", as every tenant-scoped record.

use std::ops::Bound;

use redb::ReadableTable;
use ulid::Ulid;

use super::records::Record;
use super::sessions::{collect_page, Page};
use super::tables::{ORG_WEBHOOKS, WEBHOOKS};
use super::webhook_records::Webhook;
use super::{orgs, Store, StoreError, StoreResult};

impl Store {
    /// Stores a new webhook.
    pub fn create_webhook(&self, id: Ulid, hook: &Webhook) -> StoreResult<()> {
        let txn = self.write()?;
        {
            orgs::ensure(&txn, &hook.organization_id, hook.created_at)?;
            let k = u128::from(id);
            txn.open_table(WEBHOOKS)?.insert(k, hook.encode().as_slice())?;
            txn.open_table(ORG_WEBHOOKS)?.insert((hook.organization_id.as_str(), k), ())?;
            // Only events after its creation go out.
            let newest = super::events::newest(&txn.open_table(super::tables::EVENTS)?)?.unwrap_or(0);
            txn.open_table(super::tables::WEBHOOK_CURSORS)?.insert(k, newest)?;
        }
        self.commit(txn)
    }

    /// One webhook of `org` (`None`: any organization's, for the dispatcher).
    pub fn webhook(&self, id: Ulid, org: Option<&str>) -> StoreResult<Webhook> {
        let txn = self.read()?;
        let found = txn.open_table(WEBHOOKS)?.get(u128::from(id))?.map(|v| Webhook::decode(v.value()));
        match found.transpose()? {
            Some(h) if org.is_none_or(|o| o == h.organization_id) => Ok(h),
            _ => Err(StoreError::NotFound("webhook")),
        }
    }

    /// Read-modify-write of one webhook of `org`; `change` may refuse with an error.
    pub fn update_webhook(
        &self,
        id: Ulid,
        org: &str,
        change: impl FnOnce(&mut Webhook) -> StoreResult<()>,
    ) -> StoreResult<Webhook> {
        let txn = self.write()?;
        let hook = {
            let mut table = txn.open_table(WEBHOOKS)?;
            let found = table.get(u128::from(id))?.map(|v| Webhook::decode(v.value()));
            let mut hook = match found.transpose()? {
                Some(h) if h.organization_id == org => h,
                _ => return Err(StoreError::NotFound("webhook")),
            };
            let was_enabled = hook.enabled;
            change(&mut hook)?;
            table.insert(u128::from(id), hook.encode().as_slice())?;
            if hook.enabled && !was_enabled {
                // Enabled again by hand: its failing streak starts afresh.
                super::webhook_health::delete(&txn, u128::from(id))?;
            }
            hook
        };
        self.commit(txn)?;
        Ok(hook)
    }

    /// Deletes one webhook of `org`.
    pub fn delete_webhook(&self, id: Ulid, org: &str) -> StoreResult<()> {
        let txn = self.write()?;
        {
            let mut table = txn.open_table(WEBHOOKS)?;
            let found = table.get(u128::from(id))?.map(|v| Webhook::decode(v.value()));
            match found.transpose()? {
                Some(h) if h.organization_id == org => {}
                _ => return Err(StoreError::NotFound("webhook")),
            }
            table.remove(u128::from(id))?;
            txn.open_table(ORG_WEBHOOKS)?.remove((org, u128::from(id)))?;
            super::deliveries::delete_rows(&txn, u128::from(id))?;
        }
        self.commit(txn)
    }

    /// One page of an organization's webhooks in id order.
    pub fn list_webhooks(&self, org: &str, after: Option<u128>, limit: usize) -> StoreResult<Page<u128, Webhook>> {
        let txn = self.read()?;
        let index = txn.open_table(ORG_WEBHOOKS)?;
        let hooks = txn.open_table(WEBHOOKS)?;
        let start = after.map_or(Bound::Included((org, 0u128)), |a| Bound::Excluded((org, a)));
        let rows = index.range::<(&str, u128)>((start, Bound::Included((org, u128::MAX))))?.map(|row| {
            let id = row?.0.value().1;
            let v = hooks.get(id)?.ok_or_else(|| StoreError::Corrupt("org_webhooks names a missing webhook".into()))?;
            Ok((id, Webhook::decode(v.value())?))
        });
        collect_page(rows, limit, limit, |_| true)
    }

    /// How many webhooks an organization has.
    pub fn count_webhooks(&self, org: &str) -> StoreResult<usize> {
        let txn = self.read()?;
        let index = txn.open_table(ORG_WEBHOOKS)?;
        let n = index.range::<(&str, u128)>((org, 0u128)..=(org, u128::MAX))?.count();
        Ok(n)
    }
}
