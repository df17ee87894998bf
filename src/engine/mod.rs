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
//!
//! What crosses the boundary, and why:
//! - in: lifecycle calls (start, stop, logout, pair code) and the messaging
//!   calls a send queue needs — [`Connection::send`] with the WhatsApp id the
//!   queue chose (so a resend after a crash is recognisably the same
//!   message), [`Connection::presence`] for typing, [`Connection::mark_read`]
//!   for `autoRead`, [`Connection::revoke`], [`Connection::download`];
//! - out: [`EngineEvent`]s. Lifecycle events are the manager's; message
//!   events ([`EngineEvent::is_messaging`]) are forwarded to the messaging
//!   layer, which stores them. Engines never touch the gateway's tables.
//! - the directory (contacts, presence, profile, groups): the calls and
//!   values of [`directory`], and its events ([`EngineEvent::Contact`],
//!   [`EngineEvent::Presence`], [`EngineEvent::Group`]), which travel with
//!   the message events so that one session's changes commit in order.

pub mod directory;
pub mod manager;
pub mod sim;
pub mod wa_client;
pub mod wa_state;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use tokio::sync::mpsc;
use ulid::Ulid;

pub use directory::{
    ContactUpdate, GroupChanges, GroupInfo, GroupNotice, JoinOutcome, JoinRequest, NumberCheck, ParticipantAction,
    ParticipantOutcome, PresenceUpdate,
};

/// A boxed future, so engines can be trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Something that happened on a session's connection.
#[derive(Clone, Debug, PartialEq)]
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
    /// A message (or a reaction, edit or revoke) arrived, or one this account
    /// sent from another device.
    Message(Box<Inbound>),
    /// Recipients received or read messages this session sent.
    Receipt { chat: String, wa_ids: Vec<String>, status: ReceiptStatus, at: i64 },
    /// WhatsApp refused a message after accepting it for sending (a server
    /// ack with an error): `code` is WhatsApp's (`"463"`, `"429"`, ...).
    SendRefused { wa_id: String, code: String, message: String, retry_after_ms: Option<i64> },
    /// The account is temporarily banned from sending.
    TemporaryBan { code: String, retry_after_ms: Option<i64> },
    /// The session learned which phone number a `@lid` stands for.
    LidMapping { lid: String, pn: String },
    /// Something about a contact changed (names, picture, blocked).
    Contact(Box<ContactUpdate>),
    /// A subscribed contact's presence.
    Presence(Box<PresenceUpdate>),
    /// A group notification.
    Group(Box<GroupNotice>),
}

impl EngineEvent {
    /// The event's type name, for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            EngineEvent::Qr { .. } => "qr",
            EngineEvent::PairCode { .. } => "pair_code",
            EngineEvent::Connected { .. } => "connected",
            EngineEvent::Disconnected { .. } => "disconnected",
            EngineEvent::LoggedOut { .. } => "logged_out",
            EngineEvent::Message(_) => "message",
            EngineEvent::Receipt { .. } => "receipt",
            EngineEvent::SendRefused { .. } => "send_refused",
            EngineEvent::TemporaryBan { .. } => "temporary_ban",
            EngineEvent::LidMapping { .. } => "lid_mapping",
            EngineEvent::Contact(_) => "contact",
            EngineEvent::Presence(_) => "presence",
            EngineEvent::Group(_) => "group",
        }
    }

    /// Whether the event concerns messages (the messaging layer's), not the
    /// session's lifecycle (the manager's).
    pub fn is_messaging(&self) -> bool {
        matches!(
            self,
            EngineEvent::Message(_)
                | EngineEvent::Receipt { .. }
                | EngineEvent::SendRefused { .. }
                | EngineEvent::TemporaryBan { .. }
                | EngineEvent::LidMapping { .. }
                | EngineEvent::Contact(_)
                | EngineEvent::Presence(_)
                | EngineEvent::Group(_)
        )
    }
}

/// How far a recipient got with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiptStatus {
    Delivered,
    Read,
}

/// The kinds of media a message can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MediaKind {
    Image,
    Video,
    Audio,
    Document,
    Sticker,
}

impl MediaKind {
    /// The wire name (the message `type`).
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Video => "video",
            MediaKind::Audio => "audio",
            MediaKind::Document => "document",
            MediaKind::Sticker => "sticker",
        }
    }
}

/// Which message a reaction, reply, edit or revoke points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageKey {
    /// The chat it is in (as WhatsApp addresses it).
    pub chat: String,
    pub wa_id: String,
    /// Sent by this session.
    pub from_me: bool,
    /// Who wrote it, in a group.
    pub sender: Option<String>,
}

/// What an outbound message carries.
#[derive(Clone, Debug, PartialEq)]
pub enum OutContent {
    Text { text: String },
    /// The engine uploads `data` (encrypted, to WhatsApp's media servers)
    /// before it sends the message that points at it.
    Media {
        kind: MediaKind,
        mimetype: String,
        file_name: Option<String>,
        caption: Option<String>,
        data: bytes::Bytes,
    },
    Location { latitude: f64, longitude: f64, name: Option<String>, address: Option<String> },
    Contact { name: String, phone: String },
    /// `emoji` empty removes the reaction.
    Reaction { target: MessageKey, emoji: String },
}

/// One message to send, with the WhatsApp id chosen when it was queued (a
/// resend after a crash reuses it, so the receiver drops the repeat).
#[derive(Clone, Debug, PartialEq)]
pub struct OutMessage {
    pub wa_id: String,
    /// The JID to send to (`@s.whatsapp.net`, `@lid` or `@g.us`).
    pub chat: String,
    pub content: OutContent,
    pub reply_to: Option<MessageKey>,
    /// JIDs mentioned in the text.
    pub mentions: Vec<String>,
}

/// Presence shown in one chat while the gateway "types".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatPresence {
    Composing,
    Recording,
    Paused,
}

impl ChatPresence {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChatPresence::Composing => "composing",
            ChatPresence::Recording => "recording",
            ChatPresence::Paused => "paused",
        }
    }
}

/// What an inbound message is.
#[derive(Clone, Debug, PartialEq)]
pub enum InboundBody {
    Text { text: String },
    /// `media_ref` is the engine's own handle for [`Connection::download`]
    /// (opaque to the gateway, stored with the message).
    Media {
        kind: MediaKind,
        mimetype: Option<String>,
        file_name: Option<String>,
        size: Option<u64>,
        caption: Option<String>,
        media_ref: Vec<u8>,
    },
    Location { latitude: f64, longitude: f64, name: Option<String>, address: Option<String> },
    Contact { name: String, phone: Option<String> },
    /// A reaction to message `target` (empty `emoji`: removed).
    Reaction { target: String, emoji: String },
    /// Message `target` was edited to `text`.
    Edit { target: String, text: String },
    /// Message `target` was revoked (deleted for everyone).
    Revoke { target: String },
    Unsupported,
}

/// A message that arrived, as the engine saw it. `chat`/`sender` are the
/// addresses WhatsApp used; the `_alt` ones the other form (phone JID for a
/// `@lid`, and vice versa) when the engine knows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Inbound {
    pub wa_id: String,
    pub chat: String,
    pub chat_alt: Option<String>,
    pub sender: String,
    pub sender_alt: Option<String>,
    /// Sent by this account from another device.
    pub from_me: bool,
    /// Unix ms.
    pub timestamp: i64,
    pub push_name: Option<String>,
    pub body: InboundBody,
    /// The WhatsApp id of the message this one quotes.
    pub reply_to: Option<String>,
    pub mentions: Vec<String>,
}

/// Why a send failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The recipient is not on WhatsApp.
    NotOnWhatsapp,
    /// Account trouble (WhatsApp error 463, a temporary ban, a server rate
    /// limit): this message fails with `code` and the queue pauses.
    Refused { code: String, message: String, retry_after_ms: Option<i64> },
    /// Not connected right now: the message stays queued.
    Unavailable(String),
    /// This message cannot be sent (bad media, bad address...).
    Failed { code: String, message: String },
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::NotOnWhatsapp => write!(f, "the recipient is not on WhatsApp"),
            SendError::Refused { code, message, .. } => write!(f, "WhatsApp refused the message ({code}): {message}"),
            SendError::Unavailable(m) => write!(f, "not connected: {m}"),
            SendError::Failed { code, message } => write!(f, "{code}: {message}"),
        }
    }
}

impl std::error::Error for SendError {}

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
    /// What the operation names does not exist on WhatsApp (an unknown
    /// group, an invite code that is void).
    NotFound(String),
    /// WhatsApp refused the operation (not an admin, not allowed): its
    /// code (`"401"`, `"403"`, ...) and text.
    Refused { code: String, message: String },
    /// This engine does not do that.
    Unsupported(&'static str),
    /// Anything else.
    Other(String),
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Connect(m) => write!(f, "connect: {m}"),
            EngineError::State(m) => write!(f, "{m}"),
            EngineError::Invalid(m) => write!(f, "{m}"),
            EngineError::NotFound(m) => write!(f, "{m}"),
            EngineError::Refused { code, message } => write!(f, "WhatsApp refused ({code}): {message}"),
            EngineError::Unsupported(what) => write!(f, "the engine does not support {what}"),
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
    /// Sends one message (uploading its media first); returns once WhatsApp
    /// took it. Refusals that arrive later come as [`EngineEvent::SendRefused`].
    fn send(&self, msg: OutMessage) -> BoxFuture<'_, Result<(), SendError>>;
    /// Shows `presence` in `chat`.
    fn presence(&self, chat: &str, presence: ChatPresence) -> BoxFuture<'_, Result<(), EngineError>>;
    /// Marks messages of one chat (from `sender`, in a group) as read.
    fn mark_read(&self, chat: &str, sender: Option<&str>, wa_ids: &[String]) -> BoxFuture<'_, Result<(), EngineError>>;
    /// Revokes (deletes for everyone) a message this session sent.
    fn revoke(&self, chat: &str, wa_id: &str) -> BoxFuture<'_, Result<(), SendError>>;
    /// Downloads an inbound message's media by the engine's `media_ref`.
    fn download(&self, media_ref: &[u8]) -> BoxFuture<'_, Result<Vec<u8>, EngineError>>;

    // The directory (CONTRACT §12, §13; values in [`directory`]). Every call
    // is one network operation, made only for a `working` session, after the
    // API layer authorized and budgeted it. The defaults say "unsupported".

    /// Asks the network which of `phones` (digits) are on WhatsApp; one
    /// answer per number, in the order given.
    fn check_numbers(&self, _phones: &[String]) -> BoxFuture<'_, Result<Vec<NumberCheck>, EngineError>> {
        unsupported("number checks")
    }
    /// A contact's about (status) text; `None` when hidden or unset.
    fn contact_about(&self, _jid: &str) -> BoxFuture<'_, Result<Option<String>, EngineError>> {
        unsupported("about texts")
    }
    /// The JPEG of a contact's or a group's picture (`full` size, else the
    /// preview); `None` when there is none or privacy hides it.
    fn picture(&self, _jid: &str, _full: bool) -> BoxFuture<'_, Result<Option<Vec<u8>>, EngineError>> {
        unsupported("pictures")
    }
    /// Blocks or unblocks a contact.
    fn set_blocked(&self, _jid: &str, _blocked: bool) -> BoxFuture<'_, Result<(), EngineError>> {
        unsupported("blocking")
    }
    /// Shows the number as available (online) or unavailable.
    fn set_presence(&self, _available: bool) -> BoxFuture<'_, Result<(), EngineError>> {
        unsupported("presence")
    }
    /// Subscribes to a contact's presence: updates come as
    /// [`EngineEvent::Presence`].
    fn subscribe_presence(&self, _jid: &str) -> BoxFuture<'_, Result<(), EngineError>> {
        unsupported("presence subscriptions")
    }
    /// Sets the number's display (push) name.
    fn set_push_name(&self, _name: &str) -> BoxFuture<'_, Result<(), EngineError>> {
        unsupported("profile names")
    }
    /// Sets the number's about text.
    fn set_about(&self, _about: &str) -> BoxFuture<'_, Result<(), EngineError>> {
        unsupported("about texts")
    }
    /// Sets (`Some(jpeg)`) or removes (`None`) the picture of the number
    /// (`group` None) or of a group.
    fn set_picture(&self, _group: Option<&str>, _jpeg: Option<Vec<u8>>) -> BoxFuture<'_, Result<(), EngineError>> {
        unsupported("pictures")
    }
    /// Creates a group with `participants` (JIDs); the number is its
    /// superadmin. Returns the group and how each participant fared.
    fn group_create(
        &self,
        _subject: &str,
        _participants: &[String],
        _description: Option<&str>,
    ) -> BoxFuture<'_, Result<(GroupInfo, Vec<ParticipantOutcome>), EngineError>> {
        unsupported("groups")
    }
    /// A group's metadata, asked of WhatsApp.
    fn group_info(&self, _group: &str) -> BoxFuture<'_, Result<GroupInfo, EngineError>> {
        unsupported("groups")
    }
    /// Every group the number is in, asked of WhatsApp.
    fn groups_joined(&self) -> BoxFuture<'_, Result<Vec<GroupInfo>, EngineError>> {
        unsupported("groups")
    }
    /// Adds, removes, promotes or demotes `participants` (JIDs); with
    /// `invite`, people whose privacy refuses the add get the group's
    /// invite as a message.
    fn group_participants(
        &self,
        _group: &str,
        _action: ParticipantAction,
        _participants: &[String],
        _invite: bool,
    ) -> BoxFuture<'_, Result<Vec<ParticipantOutcome>, EngineError>> {
        unsupported("groups")
    }
    /// Changes a group's subject, description or settings.
    fn group_update(&self, _group: &str, _changes: &GroupChanges) -> BoxFuture<'_, Result<(), EngineError>> {
        unsupported("groups")
    }
    /// Leaves a group.
    fn group_leave(&self, _group: &str) -> BoxFuture<'_, Result<(), EngineError>> {
        unsupported("groups")
    }
    /// The group's invite code; `revoke` voids the old one and returns a new one.
    fn group_invite(&self, _group: &str, _revoke: bool) -> BoxFuture<'_, Result<String, EngineError>> {
        unsupported("group invites")
    }
    /// Joins a group by invite code.
    fn group_join(&self, _code: &str) -> BoxFuture<'_, Result<JoinOutcome, EngineError>> {
        unsupported("group invites")
    }
    /// The group an invite code leads to, without joining.
    fn group_invite_preview(&self, _code: &str) -> BoxFuture<'_, Result<GroupInfo, EngineError>> {
        unsupported("group invites")
    }
    /// People waiting for approval to join a group.
    fn group_requests(&self, _group: &str) -> BoxFuture<'_, Result<Vec<JoinRequest>, EngineError>> {
        unsupported("membership requests")
    }
    /// Approves or rejects people waiting to join.
    fn group_requests_action(
        &self,
        _group: &str,
        _approve: bool,
        _participants: &[String],
    ) -> BoxFuture<'_, Result<Vec<ParticipantOutcome>, EngineError>> {
        unsupported("membership requests")
    }
}

/// The default of a directory call an engine does not implement.
fn unsupported<'a, T: Send + 'a>(what: &'static str) -> BoxFuture<'a, Result<T, EngineError>> {
    Box::pin(async move { Err(EngineError::Unsupported(what)) })
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
