//! Pure translation of the crate's messaging events into [`EngineEvent`]s.
//!
//! Nothing here touches a client: what a message or receipt says is read
//! from the event alone, so every rule is testable with events built by the
//! crate's public builders. (Filling in a LID↔phone alternative the stanza
//! did not carry needs the client's cache; `inbound` does that afterwards.)

use whatsapp_rust::types::events::{ContactNumberChanged, Event, Receipt, ServerAck, TemporaryBan};
use whatsapp_rust::types::message::MessageInfo;
use whatsapp_rust::types::presence::ReceiptType;
use whatsapp_rust::wacore::proto_helpers::MessageExt;
use whatsapp_rust::waproto::whatsapp as wa;
use whatsapp_rust::{Jid, Server};

use super::media_ref::{media_of, MediaRef};
use crate::engine::{EngineEvent, Inbound, InboundBody, ReceiptStatus};

type ProtocolType = wa::message::protocol_message::Type;

/// `user@server` without the device part (`123:4@s.whatsapp.net` → `123@s.whatsapp.net`).
pub(super) fn bare(jid: &Jid) -> String {
    jid.to_non_ad_string()
}

/// `alt`, when it is the other form of `primary` (a phone JID for a LID, or
/// the other way round).
fn other_form(primary: &Jid, alt: Option<&Jid>) -> Option<String> {
    let alt = alt?;
    let fits = (primary.server == Server::Lid && alt.server == Server::Pn)
        || (primary.server == Server::Pn && alt.server == Server::Lid);
    fits.then(|| bare(alt))
}

/// Whether a chat JID string names a group, a broadcast list or status (no
/// LID↔phone alternative).
pub(super) fn is_shared_chat(chat: &str) -> bool {
    chat.ends_with("@g.us") || chat.ends_with("@broadcast") || chat.ends_with("@newsletter")
}

/// One inbound message (or reaction, edit, revoke) as the gateway sees it;
/// `None` for protocol housekeeping that carries nothing for the user (key
/// shares, history-sync notices, ephemeral settings...).
pub(super) fn translate_message(info: &MessageInfo, msg: &wa::Message) -> Option<Inbound> {
    let base = msg.get_base_message();
    let body = body_of(base)?;
    let src = &info.source;
    let chat = bare(&src.chat);
    let sender = bare(&src.sender);
    let sender_alt = other_form(&src.sender, src.sender_alt.as_ref());
    let chat_alt = if src.is_group || is_shared_chat(&chat) {
        None
    } else if chat == sender {
        sender_alt.clone()
    } else {
        // Own message to someone (from another device): the recipient's other form.
        other_form(&src.chat, src.recipient_alt.as_ref())
            .or_else(|| other_form(&src.chat, info.peer_recipient_pn.as_ref()))
    };
    let ctx = context_of(base);
    Some(Inbound {
        wa_id: info.id.clone(),
        chat,
        chat_alt,
        sender,
        sender_alt,
        from_me: src.is_from_me,
        timestamp: info.timestamp.timestamp_millis(),
        push_name: Some(info.push_name.clone()).filter(|n| !n.is_empty()),
        body,
        reply_to: ctx.and_then(|c| c.stanza_id.clone()).filter(|id| !id.is_empty()),
        mentions: ctx.map(|c| c.mentioned_jid.clone()).unwrap_or_default(),
    })
}

/// What a (wrapper-free) message carries.
fn body_of(m: &wa::Message) -> Option<InboundBody> {
    if let Some(text) = m.conversation.as_deref().filter(|t| !t.is_empty()) {
        return Some(InboundBody::Text { text: text.to_string() });
    }
    if let Some(ext) = m.extended_text_message.as_option() {
        return Some(InboundBody::Text { text: ext.text.clone().unwrap_or_default() });
    }
    if let Some((kind, media)) = media_of(m) {
        let (mimetype, file_name) = media_details(m);
        return Some(InboundBody::Media {
            kind,
            mimetype,
            file_name,
            size: media.file_length(),
            caption: m.get_caption().filter(|c| !c.is_empty()).map(str::to_string),
            media_ref: MediaRef::of(kind, media).map(|r| r.encode()).unwrap_or_default(),
        });
    }
    if let Some(loc) = m.location_message.as_option() {
        return Some(InboundBody::Location {
            latitude: loc.degrees_latitude.unwrap_or_default(),
            longitude: loc.degrees_longitude.unwrap_or_default(),
            name: loc.name.clone().filter(|s| !s.is_empty()),
            address: loc.address.clone().filter(|s| !s.is_empty()),
        });
    }
    if let Some(c) = m.contact_message.as_option() {
        let vcard = c.vcard.as_deref().unwrap_or_default();
        let name = c.display_name.clone().filter(|n| !n.is_empty()).or_else(|| vcard_name(vcard)).unwrap_or_default();
        return Some(InboundBody::Contact { name, phone: vcard_phone(vcard) });
    }
    if let Some(r) = m.reaction_message.as_option() {
        return Some(InboundBody::Reaction {
            target: r.key.as_option().and_then(|k| k.id.clone()).unwrap_or_default(),
            emoji: r.text.clone().unwrap_or_default(),
        });
    }
    if let Some(pm) = m.protocol_message.as_option() {
        let target = pm.key.as_option().and_then(|k| k.id.clone()).unwrap_or_default();
        return match pm.r#type {
            Some(ProtocolType::REVOKE) => Some(InboundBody::Revoke { target }),
            Some(ProtocolType::MESSAGE_EDIT) => {
                let edited = pm.edited_message.as_option();
                let text = edited.and_then(|e| e.text_content().or_else(|| e.get_caption())).unwrap_or_default();
                Some(InboundBody::Edit { target, text: text.to_string() })
            }
            _ => None,
        };
    }
    (!is_housekeeping(m)).then_some(InboundBody::Unsupported)
}

/// Whether a message carries nothing but key material and metadata.
fn is_housekeeping(m: &wa::Message) -> bool {
    let mut rest = m.clone();
    rest.sender_key_distribution_message = Default::default();
    rest.fast_ratchet_key_sender_key_distribution_message = Default::default();
    rest.message_context_info = Default::default();
    whatsapp_rust::waproto::codec::message_encoded_len(&rest) == 0
}

/// Mimetype and file name of the media sub-message.
fn media_details(m: &wa::Message) -> (Option<String>, Option<String>) {
    let mime = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    if let Some(x) = m.image_message.as_option() {
        return (mime(&x.mimetype), None);
    }
    if let Some(x) = m.video_message.as_option() {
        return (mime(&x.mimetype), None);
    }
    if let Some(x) = m.audio_message.as_option() {
        return (mime(&x.mimetype), None);
    }
    if let Some(x) = m.document_message.as_option() {
        return (mime(&x.mimetype), mime(&x.file_name).or_else(|| mime(&x.title)));
    }
    if let Some(x) = m.sticker_message.as_option() {
        return (mime(&x.mimetype), None);
    }
    (None, None)
}

/// The ContextInfo (quote, mentions) of the first content kind the message has.
fn context_of(m: &wa::Message) -> Option<&wa::ContextInfo> {
    macro_rules! first_of {
        ($($field:ident),+) => {
            $(if let Some(x) = m.$field.as_option() {
                return x.context_info.as_option();
            })+
        };
    }
    first_of!(
        extended_text_message,
        image_message,
        video_message,
        audio_message,
        document_message,
        sticker_message,
        location_message,
        contact_message
    );
    None
}

/// The phone number (digits) a vCard names: its `waid`, else its first `TEL`.
pub(super) fn vcard_phone(vcard: &str) -> Option<String> {
    let digits = |s: &str| Some(s.chars().filter(char::is_ascii_digit).collect::<String>()).filter(|d| !d.is_empty());
    for line in vcard.lines() {
        if let Some(at) = line.find("waid=") {
            let id: String = line[at + 5..].chars().take_while(char::is_ascii_digit).collect();
            if !id.is_empty() {
                return Some(id);
            }
        }
    }
    vcard
        .lines()
        .filter(|l| l.trim_start().to_ascii_uppercase().starts_with("TEL"))
        .find_map(|l| l.split_once(':').and_then(|(_, v)| digits(v)))
}

/// The formatted name (`FN`) of a vCard.
fn vcard_name(vcard: &str) -> Option<String> {
    vcard.lines().find_map(|l| {
        let (key, value) = l.split_once(':')?;
        let key = key.trim().to_ascii_uppercase();
        (key == "FN" || key.starts_with("FN;")).then(|| value.trim().to_string()).filter(|v| !v.is_empty())
    })
}

/// The LID↔phone mappings an inbound message states (its sender's, and the
/// chat's for a one-to-one chat), as [`EngineEvent::LidMapping`]s.
pub(super) fn lid_mappings(m: &Inbound) -> Vec<EngineEvent> {
    let mut out: Vec<EngineEvent> = Vec::new();
    for (a, b) in [(&m.sender, &m.sender_alt), (&m.chat, &m.chat_alt)] {
        if let Some(ev) = b.as_deref().and_then(|b| lid_mapping(a, b)) {
            if !out.contains(&ev) {
                out.push(ev);
            }
        }
    }
    out
}

/// The mappings the phone pushes to its companions when the account moves to
/// LID addressing (a protocol message from this account only: a peer's could
/// poison them, and the crate drops those too).
pub(super) fn migration_mappings(info: &MessageInfo, msg: &wa::Message) -> Vec<EngineEvent> {
    let sync = msg
        .get_base_message()
        .protocol_message
        .as_option()
        .and_then(|pm| pm.lid_migration_mapping_sync_message.as_option())
        .and_then(|s| s.encoded_mapping_payload.as_deref());
    let Some(bytes) = sync.filter(|_| info.source.is_from_me) else { return Vec::new() };
    let Ok(payload) = whatsapp_rust::waproto::codec::lid_migration_mapping_sync_payload_decode(bytes) else {
        return Vec::new();
    };
    payload
        .pn_to_lid_mappings
        .iter()
        .filter_map(|m| {
            let lid = m.latest_lid.filter(|&l| l != 0).unwrap_or(m.assigned_lid);
            (m.pn != 0 && lid != 0).then(|| EngineEvent::LidMapping {
                lid: Jid::lid(lid.to_string()).to_string(),
                pn: Jid::pn(m.pn.to_string()).to_string(),
            })
        })
        .collect()
}

/// A mapping event when one JID is a LID and the other a phone JID.
fn lid_mapping(a: &str, b: &str) -> Option<EngineEvent> {
    let (lid, pn) = match (a.ends_with("@lid"), b.ends_with("@lid")) {
        (true, false) => (a, b),
        (false, true) => (b, a),
        _ => return None,
    };
    pn.ends_with("@s.whatsapp.net").then(|| EngineEvent::LidMapping { lid: lid.to_string(), pn: pn.to_string() })
}

/// Delivery and read receipts for messages; other receipt kinds are protocol.
pub(super) fn translate_receipt(r: &Receipt) -> Option<EngineEvent> {
    let status = match r.r#type {
        ReceiptType::Delivered => ReceiptStatus::Delivered,
        ReceiptType::Read | ReceiptType::ReadSelf | ReceiptType::Played | ReceiptType::PlayedSelf => {
            ReceiptStatus::Read
        }
        _ => return None,
    };
    if r.message_ids.is_empty() {
        return None;
    }
    Some(EngineEvent::Receipt {
        chat: bare(&r.source.chat),
        wa_ids: r.message_ids.clone(),
        status,
        at: r.timestamp.timestamp_millis(),
    })
}

/// A server nack of a message this session sent; plain acks say nothing new.
pub(super) fn translate_ack(ack: &ServerAck) -> Option<EngineEvent> {
    if ack.class.as_deref() != Some("message") {
        return None;
    }
    let code = ack.error.clone()?;
    let message = match code.as_str() {
        "463" => "WhatsApp refused the message (463): this account may not message this recipient right now".into(),
        "429" => "WhatsApp refused the message (429): rate limited".into(),
        _ => format!("WhatsApp refused the message (error {code})"),
    };
    Some(EngineEvent::SendRefused { wa_id: ack.id.clone(), code, message, retry_after_ms: None })
}

/// The ban, for the messaging layer (the connection end is noted separately).
pub(super) fn translate_ban(ban: &TemporaryBan) -> EngineEvent {
    EngineEvent::TemporaryBan {
        code: ban.code.code().to_string(),
        retry_after_ms: Some(ban.expire.num_milliseconds().max(0)),
    }
}

/// A contact's new number, with its LID when the server told it.
pub(super) fn translate_number_change(c: &ContactNumberChanged) -> Option<EngineEvent> {
    let lid = c.new_lid.as_ref()?;
    lid_mapping(&bare(lid), &bare(&c.new_jid))
}

/// Every messaging event but messages themselves (those need `inbound`'s lookups).
pub(super) fn translate_other(event: &Event) -> Option<EngineEvent> {
    match event {
        Event::Receipt(r) => translate_receipt(r),
        Event::ServerAck(a) => translate_ack(a),
        Event::TemporaryBan(b) => Some(translate_ban(b)),
        Event::ContactNumberChanged(c) => translate_number_change(c),
        _ => None,
    }
}
