//! Groups kept current from WhatsApp's group notifications (CONTRACT §13).

use redb::WriteTransaction;

use crate::engine::GroupNotice;
use crate::store::records::Session;
use crate::store::StoreResult;

/// Applies a group notification to the stored group, with its `group.*` event.
pub fn apply_notice(_txn: &WriteTransaction, _key: u128, _session: &Session, _notice: GroupNotice, _now: i64) -> StoreResult<()> {
    Ok(())
}
