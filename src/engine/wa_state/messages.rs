//! The message-related part of `ProtocolStore`: trusted-contact tokens, sent
//! messages kept for retry receipts, and the pending-inbound durability
//! buffer. Called from the trait impl in [`super::protocol`].
//!
//! Expiry sweeps scan the session's rows of that namespace (there is no
//! time index); each sweep is one write transaction.

use whatsapp_rust::wacore::store::traits::{PendingInboundKey, PendingInboundRow, TcTokenEntry};
use whatsapp_rust::wacore::time::now_secs;

use super::codec::{Envelope, PendingInboundV1, SentMessageV1, TcTokenV1};
use super::{utf8, CrateResult, RedbBackend, WaResult, Writer};
use crate::store::wa_state::{composite_key, ns};

fn tc_row(e: &TcTokenEntry) -> TcTokenV1 {
    TcTokenV1 { token: e.token.clone(), token_timestamp: e.token_timestamp, sender_timestamp: e.sender_timestamp }
}

fn tc_entry(r: TcTokenV1) -> TcTokenEntry {
    TcTokenEntry { token: r.token, token_timestamp: r.token_timestamp, sender_timestamp: r.sender_timestamp }
}

fn sent_key(chat: &str, message_id: &str) -> Vec<u8> {
    composite_key(&[chat.as_bytes(), message_id.as_bytes()])
}

fn pending_key(chat: &str, sender: &str, id: &str) -> Vec<u8> {
    composite_key(&[chat.as_bytes(), sender.as_bytes(), id.as_bytes()])
}

/// Saturating count for the trait's `u32` results.
fn count(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

pub(super) async fn get_tc_token(b: &RedbBackend, jid: &str) -> CrateResult<Option<TcTokenEntry>> {
    let jid = jid.to_owned();
    b.read(move |r| Ok(r.get_env::<TcTokenV1>(ns::TC_TOKEN, jid.as_bytes())?.map(tc_entry))).await
}

pub(super) async fn put_tc_token(b: &RedbBackend, jid: &str, entry: &TcTokenEntry) -> CrateResult<()> {
    let jid = jid.to_owned();
    let row = tc_row(entry);
    b.write(move |w| w.put_env(ns::TC_TOKEN, jid.as_bytes(), &row)).await
}

pub(super) async fn delete_tc_token(b: &RedbBackend, jid: &str) -> CrateResult<()> {
    let jid = jid.to_owned();
    b.write(move |w| w.remove(ns::TC_TOKEN, jid.as_bytes()).map(|_| ())).await
}

/// In JID order.
pub(super) async fn get_all_tc_token_jids(b: &RedbBackend) -> CrateResult<Vec<String>> {
    b.read(|r| {
        let mut out = Vec::new();
        r.scan(ns::TC_TOKEN, &[], false, |k, _| {
            out.push(utf8("tc token JID", k)?);
            Ok(true)
        })?;
        Ok(out)
    })
    .await
}

/// Removes a token only when both its received token (empty, or older than
/// `token_cutoff`) and its sender bucket (absent, or older than
/// `sender_cutoff`) are stale.
pub(super) async fn delete_expired_tc_tokens(
    b: &RedbBackend,
    token_cutoff: i64,
    sender_cutoff: i64,
) -> CrateResult<u32> {
    b.write(move |w| {
        w.remove_where(ns::TC_TOKEN, &[], |_, v| {
            let e = TcTokenV1::decode(v)?;
            let token_live = !e.token.is_empty() && e.token_timestamp >= token_cutoff;
            let sender_live = e.sender_timestamp.is_some_and(|ts| ts >= sender_cutoff);
            Ok(!token_live && !sender_live)
        })
        .map(count)
    })
    .await
}

/// Moves the sender bucket forward only (max); inserts a token-less
/// placeholder when there is no row. Atomic: one write transaction.
pub(super) async fn touch_tc_token_sender_timestamp(
    b: &RedbBackend,
    jid: &str,
    sender_timestamp: i64,
) -> CrateResult<()> {
    let jid = jid.to_owned();
    b.write(move |w| {
        let row = match w.get_env::<TcTokenV1>(ns::TC_TOKEN, jid.as_bytes())? {
            Some(mut e) => {
                e.sender_timestamp = Some(e.sender_timestamp.map_or(sender_timestamp, |t| t.max(sender_timestamp)));
                e
            }
            None => TcTokenV1 {
                token: Vec::new(),
                token_timestamp: sender_timestamp,
                sender_timestamp: Some(sender_timestamp),
            },
        };
        w.put_env(ns::TC_TOKEN, jid.as_bytes(), &row)
    })
    .await
}

/// Newer wins: a stored real token is replaced only by one at least as new;
/// the sender bucket is kept. Atomic: one write transaction.
pub(super) async fn store_received_tc_token(
    b: &RedbBackend,
    jid: &str,
    token: &[u8],
    token_timestamp: i64,
) -> CrateResult<()> {
    let jid = jid.to_owned();
    let token = token.to_vec();
    b.write(move |w| {
        let existing = w.get_env::<TcTokenV1>(ns::TC_TOKEN, jid.as_bytes())?;
        if let Some(e) = &existing {
            if !e.token.is_empty() && token_timestamp < e.token_timestamp {
                return Ok(());
            }
        }
        let row = TcTokenV1 {
            token,
            token_timestamp,
            sender_timestamp: existing.and_then(|e| e.sender_timestamp),
        };
        w.put_env(ns::TC_TOKEN, jid.as_bytes(), &row)
    })
    .await
}

/// Replaces any earlier payload for the same message; stamped with now.
pub(super) async fn store_sent_message(
    b: &RedbBackend,
    chat_jid: &str,
    message_id: &str,
    payload: &[u8],
) -> CrateResult<()> {
    let key = sent_key(chat_jid, message_id);
    let row = SentMessageV1 { payload: payload.to_vec(), created_at: now_secs() };
    b.write(move |w| w.put_env(ns::SENT_MESSAGE, &key, &row)).await
}

/// Reads and deletes in one transaction, so a retry is served at most once.
pub(super) async fn take_sent_message(
    b: &RedbBackend,
    chat_jid: &str,
    message_id: &str,
) -> CrateResult<Option<Vec<u8>>> {
    let key = sent_key(chat_jid, message_id);
    b.write(move |w| {
        let Some(row) = w.get_env::<SentMessageV1>(ns::SENT_MESSAGE, &key)? else {
            return Ok(None);
        };
        w.remove(ns::SENT_MESSAGE, &key)?;
        Ok(Some(row.payload))
    })
    .await
}

/// Deletes sent messages stored before `cutoff` (Unix seconds).
pub(super) async fn delete_expired_sent_messages(b: &RedbBackend, cutoff: i64) -> CrateResult<u32> {
    b.write(move |w| {
        w.remove_where(ns::SENT_MESSAGE, &[], |_, v| Ok(SentMessageV1::decode(v)?.created_at < cutoff))
            .map(count)
    })
    .await
}

pub(super) async fn get_pending_inbound(
    b: &RedbBackend,
    chat: &str,
    sender: &str,
    id: &str,
) -> CrateResult<Option<Vec<u8>>> {
    let key = pending_key(chat, sender, id);
    b.read(move |r| Ok(r.get_env::<PendingInboundV1>(ns::PENDING_INBOUND, &key)?.map(|p| p.message)))
        .await
}

/// Upserts every row in one transaction, stamped with now.
pub(super) async fn store_pending_inbound_batch(b: &RedbBackend, rows: &[PendingInboundRow<'_>]) -> CrateResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let now = now_secs();
    let rows: Vec<(Vec<u8>, PendingInboundV1)> = rows
        .iter()
        .map(|r| {
            (pending_key(r.chat, r.sender, r.id), PendingInboundV1 { message: r.message.to_vec(), inserted_at: now })
        })
        .collect();
    b.write(move |w: &mut Writer<'_>| -> WaResult<()> {
        for (key, row) in &rows {
            w.put_env(ns::PENDING_INBOUND, key, row)?;
        }
        Ok(())
    })
    .await
}

/// Deletes every key in one transaction; missing keys are ignored.
pub(super) async fn delete_pending_inbound_batch(b: &RedbBackend, keys: &[PendingInboundKey<'_>]) -> CrateResult<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let keys: Vec<Vec<u8>> = keys.iter().map(|k| pending_key(k.chat, k.sender, k.id)).collect();
    b.write(move |w| {
        for key in &keys {
            w.remove(ns::PENDING_INBOUND, key)?;
        }
        Ok(())
    })
    .await
}

/// Deletes buffered messages stored before `cutoff` (Unix seconds).
pub(super) async fn delete_expired_pending_inbound(b: &RedbBackend, cutoff: i64) -> CrateResult<u32> {
    b.write(move |w| {
        w.remove_where(ns::PENDING_INBOUND, &[], |_, v| Ok(PendingInboundV1::decode(v)?.inserted_at < cutoff))
            .map(count)
    })
    .await
}
