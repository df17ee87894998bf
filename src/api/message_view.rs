//! The Message object as the API shows it (CONTRACT §9): the one renderer
//! of messages, for 202s, single reads, list pages and event data.

use serde::Serialize;
use serde_json::Value;
use ulid::Ulid;

use crate::store::message_records::Message;

/// A message as the API shows it (CONTRACT §9), serialized straight from
/// the record (no intermediate JSON tree: this runs for every 202 and
/// every row of a page).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageView<'a> {
    id: String,
    session_id: String,
    organization_id: &'a str,
    direction: &'static str,
    chat_id: &'a str,
    chat_jid: Option<&'a str>,
    chat_lid: Option<&'a str>,
    sender_jid: Option<&'a str>,
    sender_lid: Option<&'a str>,
    #[serde(rename = "type")]
    kind: &'static str,
    text: Option<&'a str>,
    media: Option<MediaView<'a>>,
    location: Option<LocationView<'a>>,
    contact: Option<ContactView<'a>>,
    reaction: Option<ReactionView<'a>>,
    reply_to: Option<&'a str>,
    mentions: &'a [String],
    status: &'static str,
    error: Option<ErrorView<'a>>,
    wa_message_id: &'a str,
    send_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
    sent_at: Option<i64>,
    delivered_at: Option<i64>,
    read_at: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MediaView<'a> {
    mimetype: &'a str,
    file_name: Option<&'a str>,
    size_bytes: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LocationView<'a> {
    latitude: f64,
    longitude: f64,
    name: Option<&'a str>,
    address: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ContactView<'a> {
    name: &'a str,
    phone_number: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReactionView<'a> {
    message_id: Option<&'a str>,
    emoji: &'a str,
}

#[derive(Serialize)]
struct ErrorView<'a> {
    code: &'a str,
    message: &'a str,
}

/// The API view of message `id`.
pub fn message_view(id: u128, m: &Message) -> MessageView<'_> {
    MessageView {
        id: Ulid::from(id).to_string(),
        session_id: Ulid::from(m.session_id).to_string(),
        organization_id: &m.organization_id,
        direction: m.direction.as_str(),
        chat_id: &m.chat_id,
        chat_jid: m.chat_jid.as_deref(),
        chat_lid: m.chat_lid.as_deref(),
        sender_jid: m.sender_jid.as_deref(),
        sender_lid: m.sender_lid.as_deref(),
        kind: m.kind.as_str(),
        text: m.text.as_deref(),
        media: m.media.as_ref().map(|x| MediaView { mimetype: &x.mimetype, file_name: x.file_name.as_deref(), size_bytes: x.size_bytes }),
        location: m.location.as_ref().map(|l| LocationView {
            latitude: l.latitude,
            longitude: l.longitude,
            name: l.name.as_deref(),
            address: l.address.as_deref(),
        }),
        contact: m.contact.as_ref().map(|c| ContactView { name: &c.name, phone_number: c.phone_number.as_deref() }),
        reaction: m.reaction.as_ref().map(|r| ReactionView { message_id: r.message_id.as_deref(), emoji: &r.emoji }),
        reply_to: m.reply_to.as_deref(),
        mentions: &m.mentions,
        status: m.status.as_str(),
        error: m.error.as_ref().map(|e| ErrorView { code: &e.code, message: &e.message }),
        wa_message_id: &m.wa_message_id,
        send_at: m.send_at,
        created_at: m.created_at,
        updated_at: m.updated_at,
        sent_at: m.sent_at,
        delivered_at: m.delivered_at,
        read_at: m.read_at,
    }
}

/// A message as a JSON value (for callers that embed it).
pub fn message_value(id: u128, m: &Message) -> Value {
    serde_json::to_value(message_view(id, m)).unwrap_or(Value::Null)
}
