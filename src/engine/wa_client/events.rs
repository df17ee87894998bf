//! Translation of the `whatsapp-rust` event bus into [`EngineEvent`]s.
//!
//! Events that merely report something (QR codes, pairing codes, the login)
//! go to the sink as they arrive; messaging events (messages, receipts, nacks,
//! bans, number changes) are queued for `inbound`, which translates them in
//! order. Events that end the connection (logout, replaced stream, bans, lost
//! transport) are only noted in [`Shared::end`]: the supervisor reports them
//! once the client has been closed and its state flushed, so the manager
//! never wipes credentials that a still-running client could write back.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use whatsapp_rust::types::events::{Event, EventHandler, EventInterest, EventKind};
use whatsapp_rust::Client;

use super::inbound::{Inbox, Work};
use super::translate::bare;
use crate::engine::{EngineEvent, EventSink};
use crate::store::now_ms;

/// Why a connection ended, as noted by the event handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum End {
    /// The phone (or WhatsApp) unlinked the device.
    LoggedOut(String),
    /// Reconnecting will not help (replaced, banned, outdated...).
    Fatal(String),
    /// Worth reconnecting, with backoff.
    Retry(String),
}

impl End {
    pub(super) fn into_event(self) -> EngineEvent {
        match self {
            End::LoggedOut(reason) => EngineEvent::LoggedOut { reason },
            End::Fatal(reason) => EngineEvent::Disconnected { reason, retry: false },
            End::Retry(reason) => EngineEvent::Disconnected { reason, retry: true },
        }
    }
}

/// State shared by the connection handle, its supervisor and the handler.
#[derive(Default)]
pub(super) struct Shared {
    /// `stop`/`logout` was asked for: report nothing more.
    pub stopping: AtomicBool,
    /// The client has been (or is being) closed.
    pub closed: AtomicBool,
    /// The first reason the current connection ended.
    pub end: Mutex<Option<End>>,
    /// How many times the client reported a completed login.
    pub logins: AtomicU64,
    /// The last error of opening the websocket.
    pub transport_error: Mutex<Option<String>>,
}

impl Shared {
    pub(super) fn note_end(&self, end: End) {
        if let Ok(mut slot) = self.end.lock() {
            slot.get_or_insert(end);
        }
    }

    pub(super) fn take_end(&self) -> Option<End> {
        self.end.lock().ok().and_then(|mut e| e.take())
    }

    pub(super) fn take_transport_error(&self) -> Option<String> {
        self.transport_error.lock().ok().and_then(|mut e| e.take())
    }
}

/// Formats an 8-character pairing code as `ABCD-EFGH`.
pub fn format_pair_code(code: &str) -> String {
    let clean: String = code.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_uppercase();
    if clean.len() == 8 {
        format!("{}-{}", &clean[..4], &clean[4..])
    } else {
        clean
    }
}

/// Forwards one client's events to a session's sink.
pub(super) struct Forwarder {
    pub sink: EventSink,
    pub shared: Arc<Shared>,
    /// Weak: the client's event bus owns this handler.
    pub client: Weak<Client>,
    /// Messaging events go here, to be translated in order (see `inbound`).
    pub inbox: Inbox,
}

impl Forwarder {
    /// The kinds this engine translates (the client skips building the rest).
    pub(super) fn interest() -> EventInterest {
        EventInterest::of(&[
            EventKind::Connected,
            EventKind::Disconnected,
            EventKind::PairSuccess,
            EventKind::PairError,
            EventKind::LoggedOut,
            EventKind::PairingQrCode,
            EventKind::PairingCode,
            EventKind::PairingCodeError,
            EventKind::PairingQrCodesExhausted,
            EventKind::QrScannedWithoutMultidevice,
            EventKind::ClientOutdated,
            EventKind::Messages,
            EventKind::Receipt,
            EventKind::ServerAck,
            EventKind::StreamReplaced,
            EventKind::TemporaryBan,
            EventKind::ConnectFailure,
            EventKind::ContactNumberChanged,
            // The directory (translated by `directory` and `groups`).
            EventKind::GroupUpdate,
            EventKind::Presence,
            EventKind::ChatPresence,
            EventKind::PictureUpdate,
            EventKind::UserAboutUpdate,
            EventKind::ContactUpdated,
            EventKind::ContactUpdate,
            EventKind::PushNameUpdate,
        ])
    }

    /// Hands a messaging event to the connection's translation queue.
    fn queue(&self, event: &Arc<Event>) {
        // Fails only once the queue's task is gone, i.e. the connection is over.
        let _ = self.inbox.send(Work::Event(event.clone()));
    }

    fn connected(&self) {
        self.shared.logins.fetch_add(1, Ordering::SeqCst);
        let Some(client) = self.client.upgrade() else { return };
        let Some(pn) = client.pn() else {
            tracing::warn!(session = %self.sink.session, "whatsapp: logged in but the device has no phone JID");
            return;
        };
        let push_name = Some(client.push_name()).filter(|n| !n.is_empty());
        self.sink.emit(EngineEvent::Connected {
            jid: format!("{}@s.whatsapp.net", pn.user),
            lid: client.lid().map(|l| bare(&l)),
            push_name,
        });
    }
}

impl EventHandler for Forwarder {
    fn handle_event(&self, event: Arc<Event>) {
        if self.shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let session = self.sink.session;
        match &*event {
            Event::PairingQrCode(qr) => {
                let ttl = i64::try_from(qr.timeout.as_millis()).unwrap_or(i64::MAX);
                self.sink.emit(EngineEvent::Qr { value: qr.code.clone(), expires_at: now_ms().saturating_add(ttl) });
            }
            Event::PairingCode(pc) => self.sink.emit(EngineEvent::PairCode { code: format_pair_code(&pc.code) }),
            Event::Connected(_) => self.connected(),
            Event::PairSuccess(p) => {
                tracing::info!(session = %session, jid = %bare(&p.id), platform = %p.platform, "whatsapp: device linked");
            }
            Event::PairError(p) => {
                tracing::warn!(session = %session, error = %p.error, "whatsapp: linking the device failed");
            }
            Event::PairingCodeError(p) => {
                tracing::warn!(session = %session, error = %p.error, "whatsapp: pairing-code flow failed");
            }
            Event::QrScannedWithoutMultidevice(_) => {
                tracing::warn!(session = %session, "whatsapp: QR scanned by a phone without multi-device");
            }
            // With the socket left up (not `disconnected`) a pairing-code flow is still running.
            Event::PairingQrCodesExhausted(x) if x.disconnected => {
                self.shared.note_end(End::Retry("no QR code was scanned in time".into()));
            }
            Event::Disconnected(d) => {
                self.shared.note_end(End::Retry(format!("connection to WhatsApp lost ({:?})", d.reason)));
            }
            Event::LoggedOut(l) => {
                let why = if l.on_connect { "WhatsApp refused the login" } else { "the device was unlinked" };
                self.shared.note_end(End::LoggedOut(format!("{why} ({:?})", l.reason)));
            }
            Event::StreamReplaced(_) => self
                .shared
                .note_end(End::Fatal("another client connected with this session's credentials".into())),
            Event::TemporaryBan(b) => {
                self.shared.note_end(End::Fatal(format!(
                    "the account is temporarily banned for {} s: {}",
                    b.expire.num_seconds(),
                    b.code
                )));
                self.queue(&event);
            }
            Event::ClientOutdated(_) => self
                .shared
                .note_end(End::Fatal("WhatsApp rejected this client version as outdated".into())),
            Event::ConnectFailure(f) => {
                let msg = format!(
                    "WhatsApp refused the connection ({:?}{})",
                    f.reason,
                    f.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
                );
                self.shared.note_end(if f.reason.should_reconnect() { End::Retry(msg) } else { End::Fatal(msg) });
            }
            Event::Messages(_) | Event::Receipt(_) | Event::ServerAck(_) | Event::ContactNumberChanged(_) => {
                self.queue(&event)
            }
            Event::GroupUpdate(_)
            | Event::Presence(_)
            | Event::ChatPresence(_)
            | Event::PictureUpdate(_)
            | Event::UserAboutUpdate(_)
            | Event::ContactUpdated(_)
            | Event::ContactUpdate(_)
            | Event::PushNameUpdate(_) => self.queue(&event),
            _ => {}
        }
    }

    fn interest(&self) -> EventInterest {
        Forwarder::interest()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_codes_are_dashed() {
        assert_eq!(format_pair_code("abcd1234"), "ABCD-1234");
        assert_eq!(format_pair_code("ABCD-1234"), "ABCD-1234");
        assert_eq!(format_pair_code("ABC"), "ABC");
    }
}
