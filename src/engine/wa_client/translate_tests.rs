//! Tests of the pure message translation, with messages and infos built as
//! the crate builds them. (The queue, and the other event kinds, are tested
//! in `inbound`, through the real handler.)

use std::sync::Arc;

use whatsapp_rust::chrono::DateTime;
use whatsapp_rust::types::events::{BatchOrigin, Event, InboundMessage, MessageBatch};
use whatsapp_rust::types::message::{MessageInfo, MessageSource};
use whatsapp_rust::waproto::buffa::MessageField;
use whatsapp_rust::waproto::whatsapp as wa;
use whatsapp_rust::Jid;

use super::media_ref::MediaRef;
use super::translate::translate_message;
use crate::engine::{Inbound, InboundBody, MediaKind};

pub(super) const T: i64 = 1_700_000_000;

pub(super) fn jid(s: &str) -> Jid {
    s.parse().expect("a JID")
}

pub(super) fn info(id: &str, chat: &str, sender: &str, from_me: bool) -> MessageInfo {
    MessageInfo {
        source: MessageSource {
            chat: jid(chat),
            sender: jid(sender),
            is_from_me: from_me,
            is_group: chat.ends_with("@g.us"),
            ..Default::default()
        },
        id: id.into(),
        push_name: "Ana".into(),
        timestamp: DateTime::from_timestamp(T, 0).expect("a time"),
        ..Default::default()
    }
}

pub(super) fn batch(items: Vec<(MessageInfo, wa::Message)>) -> Event {
    let messages: Vec<InboundMessage> = items
        .into_iter()
        .map(|(i, m)| InboundMessage::builder().message(Arc::new(m)).info(Arc::new(i)).build())
        .collect();
    Event::Messages(MessageBatch::builder().messages(messages.into()).origin(BatchOrigin::Live).build())
}

fn one(info: MessageInfo, msg: wa::Message) -> Inbound {
    translate_message(&info, &msg).expect("a message")
}

pub(super) fn text(t: &str) -> wa::Message {
    wa::Message { conversation: Some(t.into()), ..Default::default() }
}

#[test]
fn an_own_message_from_another_device_is_from_me_in_the_recipients_chat() {
    let mut i = info("3EB0OWN", "100200300@lid", "62800:7@s.whatsapp.net", true);
    i.peer_recipient_pn = Some(jid("6281234567@s.whatsapp.net"));
    let m = one(i, text("sent from the phone"));
    assert!(m.from_me);
    assert_eq!(m.chat, "100200300@lid");
    assert_eq!(m.chat_alt.as_deref(), Some("6281234567@s.whatsapp.net"));
    assert_eq!(m.sender, "62800@s.whatsapp.net");
    assert_eq!(m.sender_alt, None);
}

#[test]
fn extended_text_in_a_group_carries_the_quote_and_mentions() {
    let mut i = info("G1", "120363000@g.us", "100200300:2@lid", false);
    i.source.sender_alt = Some(jid("6281234567@s.whatsapp.net"));
    let msg = wa::Message {
        extended_text_message: MessageField::some(wa::message::ExtendedTextMessage {
            text: Some("hi @a".into()),
            context_info: MessageField::some(wa::ContextInfo {
                stanza_id: Some("QUOTED1".into()),
                participant: Some("100200301@lid".into()),
                mentioned_jid: vec!["100200301@lid".into()],
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let m = one(i, msg);
    assert_eq!(m.chat, "120363000@g.us");
    assert_eq!(m.chat_alt, None);
    assert_eq!(m.sender, "100200300@lid");
    assert_eq!(m.sender_alt.as_deref(), Some("6281234567@s.whatsapp.net"));
    assert_eq!(m.body, InboundBody::Text { text: "hi @a".into() });
    assert_eq!(m.reply_to.as_deref(), Some("QUOTED1"));
    assert_eq!(m.mentions, vec!["100200301@lid".to_string()]);
}

/// The media fields every kind shares, with a distinct path per kind.
macro_rules! media {
    ($ty:ident { $($field:ident: $value:expr),* $(,)? }) => {
        wa::message::$ty {
            direct_path: Some(concat!("/", stringify!($ty)).into()),
            media_key: Some(vec![7; 32]),
            file_sha256: Some(vec![1; 32]),
            file_enc_sha256: Some(vec![2; 32]),
            file_length: Some(1234),
            $($field: $value,)*
            ..Default::default()
        }
    };
}

#[test]
fn each_media_kind_becomes_media_with_its_details_and_a_ref() {
    let image = wa::Message {
        image_message: MessageField::some(media!(ImageMessage {
            mimetype: Some("image/jpeg".into()),
            caption: Some("cap".into()),
        })),
        ..Default::default()
    };
    let video = wa::Message {
        video_message: MessageField::some(media!(VideoMessage {
            mimetype: Some("video/mp4".into()),
            caption: Some("vid".into()),
        })),
        ..Default::default()
    };
    let audio = wa::Message {
        audio_message: MessageField::some(media!(AudioMessage {
            mimetype: Some("audio/ogg; codecs=opus".into()),
            ptt: Some(true),
        })),
        ..Default::default()
    };
    let document = wa::Message {
        document_message: MessageField::some(media!(DocumentMessage {
            mimetype: Some("application/pdf".into()),
            file_name: Some("invoice.pdf".into()),
            caption: Some("doc".into()),
        })),
        ..Default::default()
    };
    let sticker = wa::Message {
        sticker_message: MessageField::some(media!(StickerMessage { mimetype: Some("image/webp".into()) })),
        ..Default::default()
    };
    let cases = [
        (image, MediaKind::Image, "image/jpeg", None, Some("cap"), "/ImageMessage"),
        (video, MediaKind::Video, "video/mp4", None, Some("vid"), "/VideoMessage"),
        (audio, MediaKind::Audio, "audio/ogg; codecs=opus", None, None, "/AudioMessage"),
        (document, MediaKind::Document, "application/pdf", Some("invoice.pdf"), Some("doc"), "/DocumentMessage"),
        (sticker, MediaKind::Sticker, "image/webp", None, None, "/StickerMessage"),
    ];
    for (msg, kind, mime, name, caption, path) in cases {
        let m = one(info("M", "62811@s.whatsapp.net", "62811@s.whatsapp.net", false), msg);
        let InboundBody::Media { kind: k, mimetype, file_name, size, caption: c, media_ref } = m.body else {
            panic!("{kind:?} should be media, got {:?}", m.body);
        };
        assert_eq!(k, kind);
        assert_eq!(mimetype.as_deref(), Some(mime));
        assert_eq!(file_name.as_deref(), name);
        assert_eq!(size, Some(1234));
        assert_eq!(c.as_deref(), caption);
        let r = MediaRef::decode(&media_ref).expect("a ref");
        assert_eq!(
            (r.kind(), r.direct_path.as_str(), r.media_key.as_deref()),
            (Some(kind), path, Some(&[7u8; 32][..]))
        );
    }
}

#[test]
fn wrapped_messages_are_unwrapped() {
    let inner = wa::Message {
        image_message: MessageField::some(media!(ImageMessage { caption: Some("once".into()) })),
        ..Default::default()
    };
    let wrapped = wa::Message {
        ephemeral_message: MessageField::some(wa::message::FutureProofMessage { message: MessageField::some(inner) }),
        ..Default::default()
    };
    let m = one(info("E", "62811@s.whatsapp.net", "62811@s.whatsapp.net", false), wrapped);
    assert!(
        matches!(m.body, InboundBody::Media { kind: MediaKind::Image, ref caption, .. } if caption.as_deref() == Some("once"))
    );
}

#[test]
fn location_contact_and_reaction() {
    let i = || info("X", "62811@s.whatsapp.net", "62811@s.whatsapp.net", false);
    let loc = wa::Message {
        location_message: MessageField::some(wa::message::LocationMessage {
            degrees_latitude: Some(-6.2),
            degrees_longitude: Some(106.8),
            name: Some("Monas".into()),
            address: Some("Jakarta".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        one(i(), loc).body,
        InboundBody::Location {
            latitude: -6.2,
            longitude: 106.8,
            name: Some("Monas".into()),
            address: Some("Jakarta".into())
        }
    );
    let card = "BEGIN:VCARD\nVERSION:3.0\nFN:Budi\nTEL;type=CELL;waid=6281999:+62 819 99\nEND:VCARD";
    let contact = wa::Message {
        contact_message: MessageField::some(wa::message::ContactMessage {
            vcard: Some(card.into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(one(i(), contact).body, InboundBody::Contact { name: "Budi".into(), phone: Some("6281999".into()) });
    let reaction = wa::Message {
        reaction_message: MessageField::some(wa::message::ReactionMessage {
            key: MessageField::some(wa::MessageKey { id: Some("TARGET1".into()), ..Default::default() }),
            text: Some("👍".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(one(i(), reaction).body, InboundBody::Reaction { target: "TARGET1".into(), emoji: "👍".into() });
}

pub(super) fn protocol(kind: wa::message::protocol_message::Type, edited: Option<wa::Message>) -> wa::Message {
    wa::Message {
        protocol_message: MessageField::some(wa::message::ProtocolMessage {
            key: MessageField::some(wa::MessageKey { id: Some("TARGET2".into()), ..Default::default() }),
            r#type: Some(kind),
            edited_message: edited.map(MessageField::some).unwrap_or_default(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn revokes_and_edits_name_their_target_and_other_protocol_messages_are_dropped() {
    type P = wa::message::protocol_message::Type;
    let i = || info("P", "62811@s.whatsapp.net", "62811@s.whatsapp.net", false);
    assert_eq!(one(i(), protocol(P::REVOKE, None)).body, InboundBody::Revoke { target: "TARGET2".into() });
    let edit = protocol(P::MESSAGE_EDIT, Some(text("fixed")));
    assert_eq!(one(i(), edit).body, InboundBody::Edit { target: "TARGET2".into(), text: "fixed".into() });
    assert!(translate_message(&i(), &protocol(P::EPHEMERAL_SETTING, None)).is_none());
    let context_only =
        wa::Message { message_context_info: MessageField::some(Default::default()), ..Default::default() };
    assert!(translate_message(&i(), &context_only).is_none());
    let poll = wa::Message {
        poll_creation_message: MessageField::some(wa::message::PollCreationMessage {
            name: Some("lunch?".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(one(i(), poll).body, InboundBody::Unsupported);
}
