//! `MsgSecretStore`: the 32-byte message secrets that let later replies
//! (poll votes, reactions, edits) to a message be decrypted, keyed
//! `(chat, sender, message id)`, with a retention deadline.

use whatsapp_rust::async_trait;
use whatsapp_rust::wacore::store::traits::{
    merge_msg_secret_expiry, merge_msg_secret_message_ts, MsgSecretEntry, MsgSecretStore,
};

use super::codec::{Envelope, MsgSecretV1};
use super::{CrateResult, RedbBackend};
use crate::store::wa_state::{composite_key, ns};

fn secret_key(chat: &str, sender: &str, msg_id: &str) -> Vec<u8> {
    composite_key(&[chat.as_bytes(), sender.as_bytes(), msg_id.as_bytes()])
}

#[async_trait]
impl MsgSecretStore for RedbBackend {
    /// Upserts every entry in one transaction. On conflict the secret is
    /// replaced, the later deadline wins (0 = never wins over any) and the
    /// later non-zero parent time wins. Returns the number of entries given.
    async fn put_msg_secrets(&self, entries: Vec<MsgSecretEntry>) -> CrateResult<usize> {
        if entries.is_empty() {
            return Ok(0);
        }
        self.write(move |w| {
            for e in &entries {
                let key = secret_key(&e.chat, &e.sender, &e.msg_id);
                let row = match w.get_env::<MsgSecretV1>(ns::MSG_SECRET, &key)? {
                    Some(old) => MsgSecretV1 {
                        secret: e.secret,
                        expires_at: merge_msg_secret_expiry(old.expires_at, e.expires_at),
                        message_ts: merge_msg_secret_message_ts(old.message_ts, e.message_ts),
                    },
                    None => MsgSecretV1 { secret: e.secret, expires_at: e.expires_at, message_ts: e.message_ts },
                };
                w.put_env(ns::MSG_SECRET, &key, &row)?;
            }
            Ok(entries.len())
        })
        .await
    }

    async fn get_msg_secret(&self, chat: &str, sender: &str, msg_id: &str) -> CrateResult<Option<Vec<u8>>> {
        Ok(self.get_msg_secret_with_ts(chat, sender, msg_id).await?.map(|(secret, _)| secret))
    }

    async fn get_msg_secret_with_ts(
        &self,
        chat: &str,
        sender: &str,
        msg_id: &str,
    ) -> CrateResult<Option<(Vec<u8>, i64)>> {
        let key = secret_key(chat, sender, msg_id);
        self.read(move |r| {
            Ok(r.get_env::<MsgSecretV1>(ns::MSG_SECRET, &key)?.map(|s| (s.secret.to_vec(), s.message_ts)))
        })
        .await
    }

    /// Deletes rows whose non-zero deadline is at or before the cutoff.
    async fn delete_expired_msg_secrets(&self, cutoff_timestamp: i64) -> CrateResult<u32> {
        self.write(move |w| {
            let n = w.remove_where(ns::MSG_SECRET, &[], |_, v| {
                let s = MsgSecretV1::decode(v)?;
                Ok(s.expires_at != 0 && s.expires_at <= cutoff_timestamp)
            })?;
            Ok(u32::try_from(n).unwrap_or(u32::MAX))
        })
        .await
    }
}
