//! The messaging calls of a [`WaConnection`]: send (with its media upload),
//! presence, read receipts, revoke and media download.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::timeout;
use whatsapp_rust::send::{RevokeType, SendOptions};
use whatsapp_rust::upload::UploadOptions;
use whatsapp_rust::{ChatStateType, Jid};

use super::connection::WaConnection;
use super::media_ref::{media_type, MediaRef};
use super::send::{context_info, engine_error, media_message, parse_jid, plain_message, send_error, upload_error, Me};
use super::translate::bare;
use crate::engine::{ChatPresence, EngineError, OutContent, OutMessage, SendError};
use crate::store::now_ms;

/// Upper bound for the "is this number on WhatsApp" check before a first send.
const EXISTS_TIMEOUT: Duration = Duration::from_secs(10);

impl WaConnection {
    /// Why no call can go out now, if none can.
    fn not_ready(&self) -> Option<String> {
        if self.shared.stopping.load(Ordering::SeqCst) || self.shared.closed.load(Ordering::SeqCst) {
            return Some("the connection is closed".into());
        }
        if !self.client.is_connected() {
            return Some("not connected to WhatsApp".into());
        }
        if !self.client.is_logged_in() {
            return Some("not logged in to WhatsApp".into());
        }
        None
    }

    fn me(&self) -> Me {
        Me { pn: self.client.pn().map(|j| bare(&j)), lid: self.client.lid().map(|j| bare(&j)) }
    }

    /// Whether a phone JID is on WhatsApp: `Some(false)` only when WhatsApp
    /// said so. A number whose LID is already known is (no query); a failed
    /// check says nothing (the send goes ahead).
    async fn registered(&self, to: &Jid) -> Option<bool> {
        if !to.is_pn() {
            return None;
        }
        if let Ok(Some(_)) = self.client.get_lid_pn_entry(to).await {
            return Some(true);
        }
        let query = self.client.contacts();
        let results = match timeout(EXISTS_TIMEOUT, query.is_on_whatsapp(std::slice::from_ref(to))).await {
            Ok(Ok(results)) => results,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "whatsapp: is-on-WhatsApp check failed; sending anyway");
                return None;
            }
            Err(_) => return None,
        };
        let mine = results.iter().find(|r| r.jid.user == to.user).or(match results.as_slice() {
            [only] => Some(only),
            _ => None,
        })?;
        Some(mine.is_registered)
    }

    pub(super) async fn send_message(&self, msg: OutMessage) -> Result<(), SendError> {
        if let Some(why) = self.not_ready() {
            return Err(SendError::Unavailable(why));
        }
        let failed = |message: String| SendError::Failed { code: "send_failed".into(), message };
        let to = parse_jid(&msg.chat).map_err(failed)?;
        if self.registered(&to).await == Some(false) {
            return Err(SendError::NotOnWhatsapp);
        }
        let me = self.me();
        let message = match &msg.content {
            OutContent::Media { kind, mimetype, file_name, caption, data } => {
                let upload = self
                    .client
                    .upload(data.to_vec(), media_type(*kind), UploadOptions::default())
                    .await
                    .map_err(|e| upload_error(&e))?;
                media_message(*kind, mimetype, file_name.clone(), caption.clone(), upload, context_info(&msg, &me))
            }
            _ => plain_message(&msg, &me, now_ms()).ok_or_else(|| failed("nothing to send".into()))?,
        };
        let options = SendOptions::default().with_message_id(msg.wa_id.clone());
        self.client.send_message_with_options(to, message, options).await.map_err(|e| send_error(&e))?;
        Ok(())
    }

    pub(super) async fn send_presence(&self, chat: &str, presence: ChatPresence) -> Result<(), EngineError> {
        if let Some(why) = self.not_ready() {
            return Err(EngineError::State(why));
        }
        let to = parse_jid(chat).map_err(EngineError::Invalid)?;
        let state = match presence {
            ChatPresence::Composing => ChatStateType::Composing,
            ChatPresence::Recording => ChatStateType::Recording,
            ChatPresence::Paused => ChatStateType::Paused,
        };
        self.client.chatstate().send(&to, state).await.map_err(|e| engine_error("sending the chat state", &e))
    }

    pub(super) async fn send_read(&self, chat: &str, sender: Option<&str>, ids: &[String]) -> Result<(), EngineError> {
        if ids.is_empty() {
            return Ok(());
        }
        if let Some(why) = self.not_ready() {
            return Err(EngineError::State(why));
        }
        let chat = parse_jid(chat).map_err(EngineError::Invalid)?;
        let sender = sender.map(parse_jid).transpose().map_err(EngineError::Invalid)?;
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        self.client
            .mark_as_read(&chat, sender.as_ref(), &ids)
            .await
            .map_err(|e| engine_error("sending the read receipt", e.as_ref()))
    }

    pub(super) async fn send_revoke(&self, chat: &str, wa_id: &str) -> Result<(), SendError> {
        if let Some(why) = self.not_ready() {
            return Err(SendError::Unavailable(why));
        }
        let to = parse_jid(chat).map_err(|message| SendError::Failed { code: "send_failed".into(), message })?;
        self.client.revoke_message(to, wa_id, RevokeType::Sender).await.map_err(|e| send_error(&e))
    }

    pub(super) async fn fetch_media(&self, media_ref: &[u8]) -> Result<Vec<u8>, EngineError> {
        let media = MediaRef::decode(media_ref).map_err(EngineError::Invalid)?;
        if let Some(why) = self.not_ready() {
            return Err(EngineError::State(why));
        }
        self.client.download(&media).await.map_err(|e| engine_error("downloading the media", e.as_ref()))
    }
}
