//! Stored records of messaging (CONTRACT §9, §10): messages, events, and
//! remembered idempotent answers. Same rules as [`super::records`]: serde +
//! postcard inside a versioned envelope (the variant index is the version),
//! pinned by golden-bytes tests below.

use serde::{Deserialize, Serialize};

use super::records::{record, Record, Session};
use super::StoreError;

/// Which way a message went.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Out,
    In,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Out => "out",
            Direction::In => "in",
        }
    }

    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "out" => Some(Direction::Out),
            "in" => Some(Direction::In),
            _ => None,
        }
    }
}

/// What a message is (the API's `type`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageType {
    Text,
    Image,
    Video,
    Audio,
    Document,
    Sticker,
    Location,
    Contact,
    Reaction,
    Unsupported,
}

impl MessageType {
    pub const ALL: [MessageType; 10] = [
        MessageType::Text,
        MessageType::Image,
        MessageType::Video,
        MessageType::Audio,
        MessageType::Document,
        MessageType::Sticker,
        MessageType::Location,
        MessageType::Contact,
        MessageType::Reaction,
        MessageType::Unsupported,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Text => "text",
            MessageType::Image => "image",
            MessageType::Video => "video",
            MessageType::Audio => "audio",
            MessageType::Document => "document",
            MessageType::Sticker => "sticker",
            MessageType::Location => "location",
            MessageType::Contact => "contact",
            MessageType::Reaction => "reaction",
            MessageType::Unsupported => "unsupported",
        }
    }

    pub fn parse(s: &str) -> Option<MessageType> {
        MessageType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Whether the type carries media.
    pub fn is_media(self) -> bool {
        matches!(
            self,
            MessageType::Image | MessageType::Video | MessageType::Audio | MessageType::Document | MessageType::Sticker
        )
    }
}

/// Where a message is in its life. Outbound ones only move forward
/// ([`MessageStatus::rank`]); inbound ones are `received` or `revoked`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageStatus {
    Scheduled,
    Queued,
    Sending,
    Sent,
    Delivered,
    Read,
    Failed,
    Canceled,
    Expired,
    Revoked,
    Received,
}

impl MessageStatus {
    pub const ALL: [MessageStatus; 11] = [
        MessageStatus::Scheduled,
        MessageStatus::Queued,
        MessageStatus::Sending,
        MessageStatus::Sent,
        MessageStatus::Delivered,
        MessageStatus::Read,
        MessageStatus::Failed,
        MessageStatus::Canceled,
        MessageStatus::Expired,
        MessageStatus::Revoked,
        MessageStatus::Received,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Scheduled => "scheduled",
            MessageStatus::Queued => "queued",
            MessageStatus::Sending => "sending",
            MessageStatus::Sent => "sent",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Read => "read",
            MessageStatus::Failed => "failed",
            MessageStatus::Canceled => "canceled",
            MessageStatus::Expired => "expired",
            MessageStatus::Revoked => "revoked",
            MessageStatus::Received => "received",
        }
    }

    pub fn parse(s: &str) -> Option<MessageStatus> {
        MessageStatus::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Still waiting in the send queue.
    pub fn is_pending(self) -> bool {
        matches!(self, MessageStatus::Scheduled | MessageStatus::Queued | MessageStatus::Sending)
    }

    /// Order along the delivery path: a receipt moves a status only to a
    /// higher rank (`read` never goes back to `delivered`).
    pub fn rank(self) -> u8 {
        match self {
            MessageStatus::Scheduled => 0,
            MessageStatus::Queued => 1,
            MessageStatus::Sending => 2,
            MessageStatus::Sent => 3,
            MessageStatus::Delivered => 4,
            MessageStatus::Read => 5,
            _ => 6,
        }
    }
}

/// A message's media, as the API shows it, plus the engine's handle to
/// download an inbound one.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct MediaInfo {
    pub mimetype: String,
    pub file_name: Option<String>,
    pub size_bytes: u64,
    /// Inbound: the engine's handle for downloading it on demand.
    pub media_ref: Option<Vec<u8>>,
}

/// A shared location.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    pub name: Option<String>,
    pub address: Option<String>,
}

/// A shared contact card.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Contact {
    pub name: String,
    pub phone_number: Option<String>,
}

/// A reaction: the target by our id (when we have it) and by WhatsApp's.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Reaction {
    pub message_id: Option<String>,
    pub target_wa_id: String,
    pub emoji: String,
}

/// Why a message failed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct MessageError {
    pub code: String,
    pub message: String,
}

/// One message, either direction (CONTRACT §9).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct MessageV1 {
    pub session_id: u128,
    pub organization_id: String,
    pub direction: Direction,
    pub chat_id: String,
    pub chat_jid: Option<String>,
    pub chat_lid: Option<String>,
    pub sender_jid: Option<String>,
    pub sender_lid: Option<String>,
    pub kind: MessageType,
    pub text: Option<String>,
    pub media: Option<MediaInfo>,
    pub location: Option<Location>,
    pub contact: Option<Contact>,
    pub reaction: Option<Reaction>,
    /// Our id of the quoted message.
    pub reply_to: Option<String>,
    /// WhatsApp's id of the quoted message (what the engine needs).
    pub reply_to_wa: Option<String>,
    pub mentions: Vec<String>,
    pub status: MessageStatus,
    pub error: Option<MessageError>,
    pub wa_message_id: String,
    pub send_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub sent_at: Option<i64>,
    pub delivered_at: Option<i64>,
    pub read_at: Option<i64>,
    /// Inbound: edited by its sender (the text is the latest).
    pub edited_at: Option<i64>,
    /// Outbound: a revoke was asked for; the queue sends it, then `revoked`.
    pub revoke_requested: bool,
}

/// The current message record.
pub type Message = MessageV1;

/// What an event says (the event's `data`), kept typed so the API renders it
/// with the same renderers as the objects themselves.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum EventData {
    /// `session.status`: the session after the change.
    Session(u128, Box<Session>),
    /// `message.*`: the message after the change.
    Message(u128, Box<Message>),
    /// `session.sending_paused`.
    SendingPaused { until: i64, reason: String },
    /// `webhook.test`: the webhook being tested (added last: older records
    /// decode unchanged).
    WebhookTest(u128),
    /// The directory's events (CONTRACT §12, §13: `contact.updated`,
    /// `presence.update`, `group.*`): their `data` as JSON text, rendered
    /// when the change was committed (added last: older records decode
    /// unchanged).
    Directory(String),
}

/// One event of the log (CONTRACT §10).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct EventV1 {
    /// `session.status`, `message.received`, ...
    pub kind: String,
    pub timestamp: i64,
    pub organization_id: String,
    pub session_id: Option<u128>,
    pub data: EventData,
}

/// The current event record.
pub type Event = EventV1;

/// The first answer to an `Idempotency-Key`, replayed for 24 h.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct IdempotentV1 {
    /// SHA-256 of the method, path and body of the first request.
    pub request_hash: [u8; 32],
    pub status: u16,
    pub body: Vec<u8>,
    pub created_at: i64,
}

/// The current idempotency record.
pub type Idempotent = IdempotentV1;

#[derive(Serialize, Deserialize)]
enum MessageEnvelope {
    V1(MessageV1),
}

#[derive(Serialize, Deserialize)]
enum EventEnvelope {
    V1(EventV1),
}

#[derive(Serialize, Deserialize)]
enum IdempotentEnvelope {
    V1(IdempotentV1),
}

record!(MessageV1, MessageEnvelope, "message");
record!(EventV1, EventEnvelope, "event");
record!(IdempotentV1, IdempotentEnvelope, "idempotency");

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn message() -> MessageV1 {
        MessageV1 {
            session_id: 1,
            organization_id: "o".into(),
            direction: Direction::Out,
            chat_id: "62@s.whatsapp.net".into(),
            chat_jid: None,
            chat_lid: None,
            sender_jid: None,
            sender_lid: None,
            kind: MessageType::Text,
            text: Some("hi".into()),
            media: None,
            location: None,
            contact: None,
            reaction: None,
            reply_to: None,
            reply_to_wa: None,
            mentions: vec![],
            status: MessageStatus::Queued,
            error: None,
            wa_message_id: "3EB0".into(),
            send_at: None,
            created_at: 5,
            updated_at: 6,
            sent_at: None,
            delivered_at: None,
            read_at: None,
            edited_at: None,
            revoke_requested: false,
        }
    }

    #[test]
    fn message_v1_golden_bytes() {
        let m = message();
        let mut golden = vec![0, 1, 1, b'o', 0, 17];
        golden.extend_from_slice(b"62@s.whatsapp.net");
        golden.extend([0, 0, 0, 0, 0, 1, 2, b'h', b'i', 0, 0, 0, 0, 0, 0, 0, 1, 0, 4]);
        golden.extend_from_slice(b"3EB0");
        golden.extend([0, 10, 12, 0, 0, 0, 0, 0]);
        assert_eq!(m.encode(), golden);
        assert_eq!(MessageV1::decode(&golden).ok(), Some(m));
        let mut v2 = golden.clone();
        v2[0] = 1;
        assert!(MessageV1::decode(&v2).is_err());
    }

    #[test]
    fn event_v1_golden_bytes() {
        let e = EventV1 {
            kind: "session.sending_paused".into(),
            timestamp: 1,
            organization_id: "o".into(),
            session_id: Some(2),
            data: EventData::SendingPaused { until: 3, reason: "463".into() },
        };
        let mut golden = vec![0, 22];
        golden.extend_from_slice(b"session.sending_paused");
        golden.extend([2, 1, b'o', 1, 2, 2, 6, 3, b'4', b'6', b'3']);
        assert_eq!(e.encode(), golden);
        assert_eq!(EventV1::decode(&golden).ok(), Some(e));
    }

    #[test]
    fn directory_event_golden_bytes() {
        let e = EventV1 {
            kind: "group.left".into(),
            timestamp: 1,
            organization_id: "o".into(),
            session_id: None,
            data: EventData::Directory("{}".into()),
        };
        let mut golden = vec![0, 10];
        golden.extend_from_slice(b"group.left");
        golden.extend([2, 1, b'o', 0, 4, 2, b'{', b'}']);
        assert_eq!(e.encode(), golden);
        assert_eq!(EventV1::decode(&golden).ok(), Some(e));
    }

    #[test]
    fn idempotent_v1_golden_bytes() {
        let i = IdempotentV1 { request_hash: [9; 32], status: 202, body: b"{}".to_vec(), created_at: 7 };
        let mut golden = vec![0];
        golden.extend([9u8; 32]);
        golden.extend([202, 1, 2, b'{', b'}', 14]);
        assert_eq!(i.encode(), golden);
        assert_eq!(IdempotentV1::decode(&golden).ok(), Some(i));
    }

    #[test]
    fn statuses_move_forward_only() {
        assert!(MessageStatus::Read.rank() > MessageStatus::Delivered.rank());
        assert!(MessageStatus::Delivered.rank() > MessageStatus::Sent.rank());
        for s in MessageStatus::ALL {
            assert_eq!(MessageStatus::parse(s.as_str()), Some(s));
        }
        for t in MessageType::ALL {
            assert_eq!(MessageType::parse(t.as_str()), Some(t));
        }
    }
}
