//! The engine boundary: what the gateway needs from a WhatsApp connection.
//!
//! An [`Engine`] starts one [`Connection`] per session and reports what
//! happens on it as [`EngineEvent`]s. The [`manager::Manager`] owns the
//! lifecycle around that: it persists every status change, reconnects with
//! backoff, and publishes each applied event, numbered, on a broadcast stream
//! (the place where a durable consumer such as the webhook outbox will sit).
//!
//! Engines: [`sim`] (deterministic, in-process, for development and tests)
//! and `whatsapp` (the `whatsapp-rust` crate).

pub mod manager;
pub mod sim;
pub mod wa_engine;
pub mod whatsapp;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use tokio::sync::mpsc;
use ulid::Ulid;

/// A boxed future, so engines can be trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Something that happened on a session's connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineEvent {
    /// A QR code to scan, valid until `expires_at` (Unix ms).
    Qr { value: String, expires_at: i64 },
    /// A pairing code to type on the phone.
    PairCode { code: String },
    /// Linked and online.
    Connected { jid: String, lid: Option<String>, push_name: Option<String> },
    /// The connection dropped; the manager reconnects when `retry` holds.
    Disconnected { reason: String, retry: bool },
    /// WhatsApp unlinked the device: credentials are void.
    LoggedOut { reason: String },
    /// A message arrived.
    MessageReceived { id: String, from: String, text: String, timestamp: i64 },
    /// A sent message changed state (sent, delivered, read...).
    MessageStatus { id: String, status: String },
}

impl EngineEvent {
    /// The event's type name, for metrics and the event stream.
    pub fn kind(&self) -> &'static str {
        match self {
            EngineEvent::Qr { .. } => "qr",
            EngineEvent::PairCode { .. } => "pair_code",
            EngineEvent::Connected { .. } => "connected",
            EngineEvent::Disconnected { .. } => "disconnected",
            EngineEvent::LoggedOut { .. } => "logged_out",
            EngineEvent::MessageReceived { .. } => "message_received",
            EngineEvent::MessageStatus { .. } => "message_status",
        }
    }
}

/// Why an engine operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineError {
    /// Could not connect (network, protocol); worth retrying.
    Connect(String),
    /// The operation does not fit the connection's state.
    State(String),
    /// The request was bad (e.g. a phone number).
    Invalid(String),
    /// Anything else.
    Other(String),
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Connect(m) => write!(f, "connect: {m}"),
            EngineError::State(m) => write!(f, "{m}"),
            EngineError::Invalid(m) => write!(f, "{m}"),
            EngineError::Other(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for EngineError {}

/// Where a connection sends its events: tagged with the session and the
/// start generation, so events of a replaced connection are recognised.
#[derive(Clone, Debug)]
pub struct EventSink {
    pub session: Ulid,
    pub generation: u64,
    tx: mpsc::UnboundedSender<(Ulid, u64, EngineEvent)>,
}

impl EventSink {
    /// A sink feeding `tx`.
    pub fn new(session: Ulid, generation: u64, tx: mpsc::UnboundedSender<(Ulid, u64, EngineEvent)>) -> EventSink {
        EventSink { session, generation, tx }
    }

    /// Reports an event (dropped if the manager is gone).
    pub fn emit(&self, event: EngineEvent) {
        let _ = self.tx.send((self.session, self.generation, event));
    }
}

/// What an engine is told when a session starts.
#[derive(Clone, Debug)]
pub struct StartInfo {
    pub session: Ulid,
    /// The phone's JID if the session is already linked (credentials kept).
    pub linked_jid: Option<String>,
    pub linked_lid: Option<String>,
}

/// One live connection.
pub trait Connection: Send + Sync {
    /// Closes the connection; credentials stay.
    fn stop(&self) -> BoxFuture<'_, ()>;
    /// Unlinks the device from the phone and closes the connection.
    fn logout(&self) -> BoxFuture<'_, Result<(), EngineError>>;
    /// Asks for a pairing code for `phone` (digits) instead of a QR.
    fn pair_code(&self, phone: &str) -> BoxFuture<'_, Result<String, EngineError>>;
}

/// Which engine `serve` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineKind {
    /// Real WhatsApp, through the whatsapp-rust crate.
    Whatsapp,
    /// The deterministic in-process simulator.
    Sim,
}

/// A WhatsApp implementation.
pub trait Engine: Send + Sync {
    /// `whatsapp` or `sim`.
    fn name(&self) -> &'static str;
    /// Opens a connection for a session; events flow into `sink`.
    fn start(&self, info: StartInfo, sink: EventSink) -> BoxFuture<'_, Result<Box<dyn Connection>, EngineError>>;
    /// Deletes whatever the engine keeps for a session outside the gateway's
    /// tables (called after its protocol state is wiped).
    fn forget(&self, _session: Ulid) {}
}
