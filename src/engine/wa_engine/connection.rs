//! A running session: the supervisor driving a client's read loop, and the
//! [`Connection`] handle the manager holds.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{timeout, timeout_at, Instant};
use whatsapp_rust::pair_code::{PairCodeError, PairCodeOptions, PairError};
use whatsapp_rust::{Client, IqError};

use super::events::{format_pair_code, End, Shared};
use super::inbound::{self, Inbox};
use super::{connect_err, MAX_QUICK_RESTARTS};
use crate::engine::{BoxFuture, ChatPresence, Connection, EngineError, EventSink, OutMessage, SendError};

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
