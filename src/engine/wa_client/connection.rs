//! A running session: the supervisor driving a client's read loop, and the
//! [`Connection`] handle the manager holds, with its messaging calls (send
//! with its media upload, presence, read receipts, revoke, download).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{timeout, timeout_at, Instant};
use whatsapp_rust::pair_code::{PairCodeError, PairCodeOptions, PairError};
use whatsapp_rust::send::{RevokeType, SendOptions};
use whatsapp_rust::upload::UploadOptions;
use whatsapp_rust::{ChatStateType, Client, IqError, Jid};

use super::events::{format_pair_code, End, Shared};
use super::{directory, groups};
use crate::engine::{GroupChanges, GroupInfo, JoinOutcome, JoinRequest, NumberCheck, ParticipantAction, ParticipantOutcome};
use super::inbound::{self, Inbox};
use super::media_ref::{media_type, MediaRef};
use super::send::{context_info, engine_error, media_message, parse_jid, plain_message, send_error, upload_error, Me};
use super::translate::bare;
use super::{connect_err, MAX_QUICK_RESTARTS};
use crate::engine::{
    BoxFuture, ChatPresence, Connection, EngineError, EventSink, OutContent, OutMessage, SendError,
};
use crate::store::now_ms;

/// Closes a client: flushes its state and the socket, bounded by `limit`.
pub(super) async fn close(client: &Arc<Client>, shared: &Shared, limit: Duration) {
    if shared.closed.swap(true, Ordering::SeqCst) {
        return;
    }
    if timeout(limit, client.disconnect()).await.is_err() {
        tracing::warn!("whatsapp: closing the client timed out after {limit:?}; state may not be flushed");
    }
    client.signal_shutdown_sync();
}

/// Drives one client's read loop and reports how it ends.
pub(super) struct Supervisor {
    pub client: Arc<Client>,
    pub shared: Arc<Shared>,
    pub sink: EventSink,
    pub stop_timeout: Duration,
    /// The messaging queue, flushed before the end is reported.
    pub inbox: Inbox,
}

impl Supervisor {
    pub(super) async fn run(self, deadline: Instant, ready: oneshot::Sender<Result<(), EngineError>>) {
        let client = self.client.clone();
        let mut ready = ready;
        let mut run = Box::pin(client.run());

        // Phase 1: until the socket is up (or the connect fails, or `start` is abandoned).
        let outcome = tokio::select! {
            _ = &mut run => {
                let why = self.shared.take_transport_error().unwrap_or_else(|| {
                    "the WhatsApp handshake failed (the websocket opened; see the log for the protocol error)".into()
                });
                Err(connect_err("could not connect to WhatsApp", why))
            }
            r = timeout_at(deadline, client.wait_for_socket(Duration::from_secs(24 * 3600))) => match r {
                Ok(Ok(())) => Ok(()),
                _ => Err(EngineError::Connect(match self.shared.take_transport_error() {
                    Some(e) => format!("could not connect to WhatsApp: {e}"),
                    None => "timed out connecting to WhatsApp".into(),
                })),
            },
            _ = ready.closed() => Err(EngineError::Other("start abandoned".into())),
        };
        let ok = outcome.is_ok();
        if ready.send(outcome).is_err() || !ok {
            drop(run);
            close(&client, &self.shared, self.stop_timeout).await;
            return;
        }

        // Phase 2: until the connection ends for good.
        let mut quick_restarts = 0;
        let mut logins = self.shared.logins.load(Ordering::SeqCst);
        loop {
            (&mut run).await;
            if self.shared.stopping.load(Ordering::SeqCst) {
                return;
            }
            let end = match (self.shared.take_end(), self.shared.take_transport_error()) {
                (Some(end), _) => end,
                (None, Some(e)) => End::Retry(format!("could not reconnect to WhatsApp: {e}")),
                (None, None) => {
                    // A restart the server asked for (515 after linking): same client, at once.
                    let now = self.shared.logins.load(Ordering::SeqCst);
                    if now != logins {
                        logins = now;
                        quick_restarts = 0;
                    }
                    if quick_restarts < MAX_QUICK_RESTARTS {
                        quick_restarts += 1;
                        tracing::debug!(session = %self.sink.session, "whatsapp: server restarted the stream; resuming");
                        run = Box::pin(client.run());
                        continue;
                    }
                    End::Retry("WhatsApp keeps closing the connection".into())
                }
            };
            close(&client, &self.shared, self.stop_timeout).await;
            // Messages (and a ban) reported before the end, while this generation is current.
            inbound::flush(&self.inbox, self.stop_timeout).await;
            if !self.shared.stopping.load(Ordering::SeqCst) {
                self.sink.emit(end.into_event());
            }
            return;
        }
    }
}

/// A running session.
pub(super) struct WaConnection {
    pub client: Arc<Client>,
    pub shared: Arc<Shared>,
    pub task: Mutex<Option<JoinHandle<()>>>,
    pub stop_timeout: Duration,
}

impl WaConnection {
    /// Waits for the supervisor to finish (it does once the client is
    /// closed), aborting it if it does not in time.
    async fn join(&self) {
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let abort = task.abort_handle();
            if timeout(self.stop_timeout, task).await.is_err() {
                abort.abort();
            }
        }
    }
}

/// Upper bound for the "is this number on WhatsApp" check before a first send.
const EXISTS_TIMEOUT: Duration = Duration::from_secs(10);

impl WaConnection {
    /// Why no call can go out now, if none can.
    pub(super) fn not_ready(&self) -> Option<String> {
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

    async fn send_message(&self, msg: OutMessage) -> Result<(), SendError> {
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

    async fn send_presence(&self, chat: &str, presence: ChatPresence) -> Result<(), EngineError> {
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

    async fn send_read(&self, chat: &str, sender: Option<&str>, ids: &[String]) -> Result<(), EngineError> {
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

    async fn send_revoke(&self, chat: &str, wa_id: &str) -> Result<(), SendError> {
        if let Some(why) = self.not_ready() {
            return Err(SendError::Unavailable(why));
        }
        let to = parse_jid(chat).map_err(|message| SendError::Failed { code: "send_failed".into(), message })?;
        self.client.revoke_message(to, wa_id, RevokeType::Sender).await.map_err(|e| send_error(&e))
    }

    async fn fetch_media(&self, media_ref: &[u8]) -> Result<Vec<u8>, EngineError> {
        let media = MediaRef::decode(media_ref).map_err(EngineError::Invalid)?;
        if let Some(why) = self.not_ready() {
            return Err(EngineError::State(why));
        }
        self.client.download(&media).await.map_err(|e| engine_error("downloading the media", e.as_ref()))
    }
}

impl Connection for WaConnection {
    fn stop(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.shared.stopping.store(true, Ordering::SeqCst);
            close(&self.client, &self.shared, self.stop_timeout).await;
            self.join().await;
        })
    }

    fn logout(&self) -> BoxFuture<'_, Result<(), EngineError>> {
        Box::pin(async move {
            self.shared.stopping.store(true, Ordering::SeqCst);
            let online = self.client.is_logged_in();
            let result = if self.shared.closed.swap(true, Ordering::SeqCst) {
                Err(EngineError::State("the connection is already closed".into()))
            } else {
                // Unlinks on the phone (best effort inside the crate), then closes and flushes.
                let done = timeout(self.stop_timeout, self.client.logout()).await;
                self.client.signal_shutdown_sync();
                match (done, online) {
                    (Err(_), _) => Err(EngineError::Connect(format!(
                        "the unlink request to WhatsApp timed out after {:?}",
                        self.stop_timeout
                    ))),
                    (Ok(()), false) => Err(EngineError::State(
                        "not logged in to WhatsApp, so the phone could not be told to unlink this device".into(),
                    )),
                    (Ok(()), true) => Ok(()),
                }
            };
            self.join().await;
            result
        })
    }

    fn pair_code(&self, phone: &str) -> BoxFuture<'_, Result<String, EngineError>> {
        let phone = phone.to_string();
        Box::pin(async move {
            if self.shared.stopping.load(Ordering::SeqCst) || self.shared.closed.load(Ordering::SeqCst) {
                return Err(EngineError::State("the connection is closed".into()));
            }
            if self.client.pn().is_some() {
                return Err(EngineError::State("the session is already linked".into()));
            }
            let options = PairCodeOptions { phone_number: phone, ..PairCodeOptions::default() };
            // The code itself reaches the sink through the client's PairingCode event.
            match timeout(self.stop_timeout.max(Duration::from_secs(30)), self.client.pair_with_code(options)).await {
                Err(_) => Err(EngineError::Connect("WhatsApp did not answer the pairing-code request in time".into())),
                Ok(Ok(code)) => Ok(format_pair_code(&code)),
                Ok(Err(e)) => Err(pair_error(e)),
            }
        })
    }

    fn send(&self, msg: OutMessage) -> BoxFuture<'_, Result<(), SendError>> {
        Box::pin(self.send_message(msg))
    }

    fn check_numbers(&self, phones: &[String]) -> BoxFuture<'_, Result<Vec<NumberCheck>, EngineError>> {
        directory::check_numbers(self, phones)
    }

    fn contact_about(&self, jid: &str) -> BoxFuture<'_, Result<Option<String>, EngineError>> {
        directory::contact_about(self, jid)
    }

    fn picture(&self, jid: &str, full: bool) -> BoxFuture<'_, Result<Option<Vec<u8>>, EngineError>> {
        directory::picture(self, jid, full)
    }

    fn set_blocked(&self, jid: &str, blocked: bool) -> BoxFuture<'_, Result<(), EngineError>> {
        directory::set_blocked(self, jid, blocked)
    }

    fn set_presence(&self, available: bool) -> BoxFuture<'_, Result<(), EngineError>> {
        directory::set_presence(self, available)
    }

    fn subscribe_presence(&self, jid: &str) -> BoxFuture<'_, Result<(), EngineError>> {
        directory::subscribe_presence(self, jid)
    }

    fn set_push_name(&self, name: &str) -> BoxFuture<'_, Result<(), EngineError>> {
        directory::set_push_name(self, name)
    }

    fn set_about(&self, about: &str) -> BoxFuture<'_, Result<(), EngineError>> {
        directory::set_about(self, about)
    }

    fn set_picture(&self, group: Option<&str>, jpeg: Option<Vec<u8>>) -> BoxFuture<'_, Result<(), EngineError>> {
        directory::set_picture(self, group, jpeg)
    }

    fn group_create(&self, subject: &str, participants: &[String], description: Option<&str>) -> BoxFuture<'_, Result<(GroupInfo, Vec<ParticipantOutcome>), EngineError>> {
        groups::group_create(self, subject, participants, description)
    }

    fn group_info(&self, group: &str) -> BoxFuture<'_, Result<GroupInfo, EngineError>> {
        groups::group_info(self, group)
    }

    fn groups_joined(&self) -> BoxFuture<'_, Result<Vec<GroupInfo>, EngineError>> {
        groups::groups_joined(self)
    }

    fn group_participants(&self, group: &str, action: ParticipantAction, participants: &[String], invite: bool) -> BoxFuture<'_, Result<Vec<ParticipantOutcome>, EngineError>> {
        groups::group_participants(self, group, action, participants, invite)
    }

    fn group_update(&self, group: &str, changes: &GroupChanges) -> BoxFuture<'_, Result<(), EngineError>> {
        groups::group_update(self, group, changes)
    }

    fn group_leave(&self, group: &str) -> BoxFuture<'_, Result<(), EngineError>> {
        groups::group_leave(self, group)
    }

    fn group_invite(&self, group: &str, revoke: bool) -> BoxFuture<'_, Result<String, EngineError>> {
        groups::group_invite(self, group, revoke)
    }

    fn group_join(&self, code: &str) -> BoxFuture<'_, Result<JoinOutcome, EngineError>> {
        groups::group_join(self, code)
    }

    fn group_invite_preview(&self, code: &str) -> BoxFuture<'_, Result<GroupInfo, EngineError>> {
        groups::group_invite_preview(self, code)
    }

    fn group_requests(&self, group: &str) -> BoxFuture<'_, Result<Vec<JoinRequest>, EngineError>> {
        groups::group_requests(self, group)
    }

    fn group_requests_action(&self, group: &str, approve: bool, participants: &[String]) -> BoxFuture<'_, Result<Vec<ParticipantOutcome>, EngineError>> {
        groups::group_requests_action(self, group, approve, participants)
    }

    fn presence(&self, chat: &str, presence: ChatPresence) -> BoxFuture<'_, Result<(), EngineError>> {
        let chat = chat.to_string();
        Box::pin(async move { self.send_presence(&chat, presence).await })
    }

    fn mark_read(&self, chat: &str, sender: Option<&str>, wa_ids: &[String]) -> BoxFuture<'_, Result<(), EngineError>> {
        let (chat, sender, ids) = (chat.to_string(), sender.map(str::to_string), wa_ids.to_vec());
        Box::pin(async move { self.send_read(&chat, sender.as_deref(), &ids).await })
    }

    fn revoke(&self, chat: &str, wa_id: &str) -> BoxFuture<'_, Result<(), SendError>> {
        let (chat, wa_id) = (chat.to_string(), wa_id.to_string());
        Box::pin(async move { self.send_revoke(&chat, &wa_id).await })
    }

    fn download(&self, media_ref: &[u8]) -> BoxFuture<'_, Result<Vec<u8>, EngineError>> {
        let media_ref = media_ref.to_vec();
        Box::pin(async move { self.fetch_media(&media_ref).await })
    }
}

fn pair_error(e: PairError) -> EngineError {
    match e {
        PairError::PairCode(
            c @ (PairCodeError::PhoneNumberRequired
            | PairCodeError::PhoneNumberTooShort
            | PairCodeError::PhoneNumberNotInternational
            | PairCodeError::InvalidCustomCode),
        ) => EngineError::Invalid(c.to_string()),
        PairError::PairCode(c @ PairCodeError::CodeAlreadyOutstanding { .. }) => EngineError::State(c.to_string()),
        PairError::RequestFailed(
            iq @ (IqError::NotConnected | IqError::Disconnected(_) | IqError::InternalChannelClosed | IqError::Timeout),
        ) => EngineError::Connect(format!("the pairing-code request did not reach WhatsApp: {iq}")),
        PairError::RequestFailed(iq) => EngineError::Other(format!(
            "WhatsApp refused the pairing-code request (a bad-request is often rate limiting; retry later): {iq}"
        )),
        other => EngineError::Other(format!("pairing code: {other}")),
    }
}

impl Drop for WaConnection {
    fn drop(&mut self) {
        // Dropped without `stop` (start cancelled or failed, or the manager
        // letting go after an end it was told about): close in the background.
        let task = self.task.get_mut().ok().and_then(|t| t.take());
        let Some(task) = task else { return };
        self.shared.stopping.store(true, Ordering::SeqCst);
        let (client, shared, limit) = (self.client.clone(), self.shared.clone(), self.stop_timeout);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    close(&client, &shared, limit).await;
                    let abort = task.abort_handle();
                    if timeout(limit, task).await.is_err() {
                        abort.abort();
                    }
                });
            }
            Err(_) => {
                client.signal_shutdown_sync();
                task.abort();
            }
        }
    }
}
