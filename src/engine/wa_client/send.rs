//! Outbound: the crate's `wa::Message` for an [`OutMessage`], and how the
//! crate's failures map onto the gateway's [`SendError`]/[`EngineError`].

use std::error::Error as StdError;

use whatsapp_rust::media::{self, AudioOptions, DocumentOptions, ImageOptions, VideoOptions};
use whatsapp_rust::proto_helpers::{build_reaction_message, MessageBuilderExt};
use whatsapp_rust::upload::UploadResponse;
use whatsapp_rust::waproto::buffa::MessageField;
use whatsapp_rust::waproto::whatsapp as wa;
use whatsapp_rust::{ErrorChainExt, Jid};

use super::translate::is_shared_chat;
use crate::engine::{EngineError, MediaKind, MessageKey, OutContent, OutMessage, SendError};

/// This account's own JIDs: a reply to, or reaction on, one of its own
/// messages names it as the author.
#[derive(Clone, Debug, Default)]
pub(super) struct Me {
    pub pn: Option<String>,
    pub lid: Option<String>,
}

impl Me {
    /// The address this account has in `chat`: its phone JID in phone-addressed
    /// chats, its LID elsewhere (LID chats, and groups, which are LID-addressed now).
    fn in_chat(&self, chat: &str) -> Option<String> {
        if chat.ends_with("@s.whatsapp.net") {
            self.pn.clone().or_else(|| self.lid.clone())
        } else {
            self.lid.clone().or_else(|| self.pn.clone())
        }
    }
}

/// Parses a chat or sender address (`...@s.whatsapp.net`, `...@lid`, `...@g.us`).
pub(super) fn parse_jid(s: &str) -> Result<Jid, String> {
    match s.split_once('@') {
        Some((user, server)) if !user.is_empty() && !server.is_empty() => {
            s.parse::<Jid>().map_err(|e| format!("not a WhatsApp address: {s:?} ({e})"))
        }
        _ => Err(format!("not a WhatsApp address: {s:?}")),
    }
}

/// Who wrote the message `key` points at.
fn author(key: &MessageKey, me: &Me) -> String {
    if key.from_me {
        me.in_chat(&key.chat).unwrap_or_else(|| key.chat.clone())
    } else {
        key.sender.clone().unwrap_or_else(|| key.chat.clone())
    }
}

/// The quote and mentions of a message, if it has any.
pub(super) fn context_info(msg: &OutMessage, me: &Me) -> Option<wa::ContextInfo> {
    if msg.reply_to.is_none() && msg.mentions.is_empty() {
        return None;
    }
    let mut ctx = wa::ContextInfo { mentioned_jid: msg.mentions.clone(), ..Default::default() };
    if let Some(quoted) = &msg.reply_to {
        ctx.stanza_id = Some(quoted.wa_id.clone());
        ctx.participant = Some(author(quoted, me));
        if quoted.chat != msg.chat {
            ctx.remote_jid = Some(quoted.chat.clone());
        }
    }
    Some(ctx)
}

/// The key a reaction names its target by (with the author in groups).
pub(super) fn target_key(target: &MessageKey, me: &Me) -> wa::MessageKey {
    wa::MessageKey {
        remote_jid: Some(target.chat.clone()),
        from_me: Some(target.from_me),
        id: Some(target.wa_id.clone()),
        participant: is_shared_chat(&target.chat).then(|| author(target, me)),
    }
}

/// A vCard for one contact (`phone` in digits, as WhatsApp's own cards).
pub(super) fn vcard(name: &str, phone: &str) -> String {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let name = name.replace(['\r', '\n'], " ");
    format!("BEGIN:VCARD\nVERSION:3.0\nFN:{name}\nTEL;type=CELL;type=VOICE;waid={digits}:+{digits}\nEND:VCARD")
}

fn field<T: Default>(v: Option<T>) -> MessageField<T> {
    v.map(MessageField::some).unwrap_or_default()
}

/// The message for every content but media (`None` for media, which needs
/// its upload first: see [`media_message`]). `now_ms` stamps reactions.
pub(super) fn plain_message(msg: &OutMessage, me: &Me, now_ms: i64) -> Option<wa::Message> {
    let ctx = context_info(msg, me);
    Some(match &msg.content {
        OutContent::Text { text } => match ctx {
            None => wa::Message::text(text.clone()),
            Some(ctx) => wa::Message::text_with_context(text.clone(), ctx),
        },
        OutContent::Location { latitude, longitude, name, address } => wa::Message {
            location_message: MessageField::some(wa::message::LocationMessage {
                degrees_latitude: Some(*latitude),
                degrees_longitude: Some(*longitude),
                name: name.clone(),
                address: address.clone(),
                context_info: field(ctx),
                ..Default::default()
            }),
            ..Default::default()
        },
        OutContent::Contact { name, phone } => wa::Message {
            contact_message: MessageField::some(wa::message::ContactMessage {
                display_name: Some(name.clone()),
                vcard: Some(vcard(name, phone)),
                context_info: field(ctx),
                ..Default::default()
            }),
            ..Default::default()
        },
        OutContent::Reaction { target, emoji } => build_reaction_message(target_key(target, me), emoji.clone(), now_ms),
        OutContent::Media { .. } => return None,
    })
}

/// Voice notes are Opus in Ogg; other audio is sent as a file to play.
pub(super) fn is_voice_note(mimetype: &str) -> bool {
    mimetype.trim().to_ascii_lowercase().starts_with("audio/ogg")
}

/// The message pointing at uploaded media, built with the crate's builders.
pub(super) fn media_message(
    kind: MediaKind,
    mimetype: &str,
    file_name: Option<String>,
    caption: Option<String>,
    upload: UploadResponse,
    ctx: Option<wa::ContextInfo>,
) -> wa::Message {
    let mime = Some(mimetype.trim().to_string()).filter(|m| !m.is_empty());
    let context_info = ctx.clone().map(Box::new);
    match kind {
        MediaKind::Image => {
            media::image_message(upload, ImageOptions { caption, mimetype: mime, context_info, ..Default::default() })
        }
        MediaKind::Video => {
            media::video_message(upload, VideoOptions { caption, mimetype: mime, context_info, ..Default::default() })
        }
        MediaKind::Audio => {
            let ptt = Some(is_voice_note(mimetype));
            media::audio_message(upload, AudioOptions { mimetype: mime, ptt, context_info, ..Default::default() })
        }
        MediaKind::Document => media::document_message(
            upload,
            DocumentOptions {
                mimetype: mime,
                title: file_name.clone(),
                file_name,
                caption,
                context_info,
                ..Default::default()
            },
        ),
        // The crate has no sticker builder; the fields are the image builder's.
        MediaKind::Sticker => wa::Message {
            sticker_message: MessageField::some(wa::message::StickerMessage {
                url: Some(upload.url),
                direct_path: Some(upload.direct_path),
                media_key: Some(upload.media_key.to_vec()),
                file_sha256: Some(upload.file_sha256.to_vec()),
                file_enc_sha256: Some(upload.file_enc_sha256.to_vec()),
                file_length: Some(upload.file_length),
                media_key_timestamp: Some(upload.media_key_timestamp),
                mimetype: Some(mime.unwrap_or_else(|| "image/webp".into())),
                context_info: field(ctx),
                ..Default::default()
            }),
            ..Default::default()
        },
    }
}

/// Whether an error means "not connected right now" (worth queueing, not failing).
fn unreachable(e: &(dyn StdError + 'static)) -> bool {
    e.is_transport_unavailable() || e.is_timeout()
}

/// Maps the crate's send failure.
pub(super) fn send_error(e: &whatsapp_rust::SendError) -> SendError {
    if matches!(e, whatsapp_rust::SendError::NotLoggedIn) || unreachable(e) {
        return SendError::Unavailable(e.to_string());
    }
    if let Some(r) = e.server_rejection().filter(|r| r.code == 429 || r.code == 463) {
        return SendError::Refused {
            code: r.code.to_string(),
            message: format!(
                "WhatsApp refused the message: {}",
                if r.text.is_empty() { "no reason given" } else { r.text }
            ),
            retry_after_ms: r.backoff.map(|s| i64::from(s) * 1000),
        };
    }
    SendError::Failed { code: "send_failed".into(), message: e.to_string() }
}

/// Maps a failed media upload.
pub(super) fn upload_error(e: &whatsapp_rust::anyhow::Error) -> SendError {
    let cause: &(dyn StdError + 'static) = e.as_ref();
    if unreachable(cause) {
        return SendError::Unavailable(format!("uploading the media: {e:#}"));
    }
    SendError::Failed { code: "send_failed".into(), message: format!("uploading the media failed: {e:#}") }
}

/// Maps a failed presence, read-receipt or download call.
pub(super) fn engine_error(what: &str, e: &(dyn StdError + 'static)) -> EngineError {
    if unreachable(e) {
        EngineError::Connect(format!("{what}: not connected to WhatsApp ({e})"))
    } else {
        EngineError::Other(format!("{what}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Me {
        Me { pn: Some("62800@s.whatsapp.net".into()), lid: Some("555@lid".into()) }
    }

    fn out(chat: &str, content: OutContent) -> OutMessage {
        OutMessage { wa_id: "3EB0NEW".into(), chat: chat.into(), content, reply_to: None, mentions: vec![] }
    }

    fn key(chat: &str, from_me: bool, sender: Option<&str>) -> MessageKey {
        MessageKey { chat: chat.into(), wa_id: "3EB0OLD".into(), from_me, sender: sender.map(str::to_string) }
    }

    #[test]
    fn plain_text_is_a_conversation() {
        let m = plain_message(&out("62811@s.whatsapp.net", OutContent::Text { text: "hi".into() }), &me(), 0)
            .expect("a message");
        assert_eq!(m.conversation.as_deref(), Some("hi"));
        assert!(m.extended_text_message.is_unset());
    }

    #[test]
    fn a_reply_with_mentions_is_extended_text_with_context() {
        let mut msg = out("120363000@g.us", OutContent::Text { text: "yes @a".into() });
        msg.reply_to = Some(key("120363000@g.us", false, Some("100200300@lid")));
        msg.mentions = vec!["100200300@lid".into()];
        let m = plain_message(&msg, &me(), 0).expect("a message");
        assert_eq!(m.conversation, None);
        let ext = m.extended_text_message.as_option().expect("extended text");
        assert_eq!(ext.text.as_deref(), Some("yes @a"));
        let ctx = ext.context_info.as_option().expect("context");
        assert_eq!(ctx.stanza_id.as_deref(), Some("3EB0OLD"));
        assert_eq!(ctx.participant.as_deref(), Some("100200300@lid"));
        assert_eq!(ctx.remote_jid, None);
        assert_eq!(ctx.mentioned_jid, vec!["100200300@lid".to_string()]);
    }

    #[test]
    fn quoting_an_own_message_names_this_account_as_seen_in_the_chat() {
        let mut msg = out("62811@s.whatsapp.net", OutContent::Text { text: "see above".into() });
        msg.reply_to = Some(key("62811@s.whatsapp.net", true, None));
        let ctx = context_info(&msg, &me()).expect("context");
        assert_eq!(ctx.participant.as_deref(), Some("62800@s.whatsapp.net"));
        msg.reply_to = Some(key("777@lid", true, None));
        let ctx = context_info(&msg, &me()).expect("context");
        assert_eq!(ctx.participant.as_deref(), Some("555@lid"));
        assert_eq!(ctx.remote_jid.as_deref(), Some("777@lid"), "a quote from another chat names it");
    }

    #[test]
    fn location_and_contact() {
        let loc = OutContent::Location { latitude: -6.2, longitude: 106.8, name: Some("Monas".into()), address: None };
        let m = plain_message(&out("62811@s.whatsapp.net", loc), &me(), 0).expect("a message");
        let l = m.location_message.as_option().expect("location");
        assert_eq!(
            (l.degrees_latitude, l.degrees_longitude, l.name.as_deref()),
            (Some(-6.2), Some(106.8), Some("Monas"))
        );
        let contact = OutContent::Contact { name: "Budi".into(), phone: "+62 819-99".into() };
        let m = plain_message(&out("62811@s.whatsapp.net", contact), &me(), 0).expect("a message");
        let c = m.contact_message.as_option().expect("contact");
        assert_eq!(c.display_name.as_deref(), Some("Budi"));
        let card = c.vcard.as_deref().expect("vcard");
        assert!(card.contains("FN:Budi\n") && card.contains("waid=6281999:+6281999"), "{card}");
        assert_eq!(super::super::translate::vcard_phone(card).as_deref(), Some("6281999"));
    }

    #[test]
    fn reactions_name_their_target_with_the_author_in_groups() {
        let react = |target| OutContent::Reaction { target, emoji: "👍".into() };
        let m = plain_message(&out("62811@s.whatsapp.net", react(key("62811@s.whatsapp.net", false, None))), &me(), 42)
            .expect("a message");
        let r = m.reaction_message.as_option().expect("reaction");
        assert_eq!((r.text.as_deref(), r.sender_timestamp_ms), (Some("👍"), Some(42)));
        let k = r.key.as_option().expect("key");
        assert_eq!(
            (k.remote_jid.as_deref(), k.from_me, k.id.as_deref(), k.participant.as_deref()),
            (Some("62811@s.whatsapp.net"), Some(false), Some("3EB0OLD"), None)
        );
        let m = plain_message(&out("120363000@g.us", react(key("120363000@g.us", true, None))), &me(), 42)
            .expect("a message");
        let k = m.reaction_message.as_option().and_then(|r| r.key.as_option()).expect("key");
        assert_eq!((k.from_me, k.participant.as_deref()), (Some(true), Some("555@lid")));
    }

    #[test]
    fn media_waits_for_its_upload() {
        let media = OutContent::Media {
            kind: MediaKind::Image,
            mimetype: "image/png".into(),
            file_name: None,
            caption: None,
            data: bytes::Bytes::from_static(b"png"),
        };
        assert!(plain_message(&out("62811@s.whatsapp.net", media), &me(), 0).is_none());
    }

    #[test]
    fn ogg_audio_is_a_voice_note() {
        assert!(is_voice_note("audio/ogg; codecs=opus"));
        assert!(is_voice_note("Audio/OGG"));
        assert!(!is_voice_note("audio/mpeg"));
    }

    #[test]
    fn addresses_are_parsed_strictly() {
        assert_eq!(parse_jid("62811@s.whatsapp.net").map(|j| j.is_pn()), Ok(true));
        assert_eq!(parse_jid("100@lid").map(|j| j.is_lid()), Ok(true));
        assert!(parse_jid("120363000@g.us").is_ok());
        assert!(parse_jid("62811").is_err());
        assert!(parse_jid("@s.whatsapp.net").is_err());
    }

    #[test]
    fn send_failures_map_to_the_gateways() {
        use whatsapp_rust::{ClientError, IqError};
        let unavailable = whatsapp_rust::SendError::Client(ClientError::NotConnected);
        assert!(matches!(send_error(&unavailable), SendError::Unavailable(_)));
        assert!(matches!(send_error(&whatsapp_rust::SendError::NotLoggedIn), SendError::Unavailable(_)));
        assert!(matches!(send_error(&whatsapp_rust::SendError::Iq(IqError::NotConnected)), SendError::Unavailable(_)));
        let limited = whatsapp_rust::SendError::Iq(IqError::ServerError {
            code: 429,
            text: "rate-overlimit".into(),
            error_type: None,
            backoff: Some(30),
        });
        assert_eq!(
            send_error(&limited),
            SendError::Refused {
                code: "429".into(),
                message: "WhatsApp refused the message: rate-overlimit".into(),
                retry_after_ms: Some(30_000)
            }
        );
        let bad = whatsapp_rust::SendError::InvalidRequest("no".into());
        assert!(matches!(send_error(&bad), SendError::Failed { ref code, .. } if code == "send_failed"));
    }
}
