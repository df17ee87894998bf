//! Tests of the inbound translation, with events built by the crate's public
//! builders and fed through the real handler and queue.

use std::sync::{Arc, Weak};

use tokio::sync::mpsc;
use ulid::Ulid;
use whatsapp_rust::chrono::{DateTime, Duration as ChronoDuration};
use whatsapp_rust::types::events::{
    BatchOrigin, ContactNumberChanged, Event, EventHandler, InboundMessage, MessageBatch, Receipt, ServerAck,
    TempBanReason, TemporaryBan,
};
use whatsapp_rust::types::message::{MessageInfo, MessageSource};
use whatsapp_rust::types::presence::ReceiptType;
use whatsapp_rust::waproto::buffa::{Message as _, MessageField};
use whatsapp_rust::waproto::whatsapp as wa;
use whatsapp_rust::Jid;

use super::events::{End, Forwarder, Shared};
use super::inbound;
use super::media_ref::MediaRef;
use super::translate::translate_message;
use crate::engine::{EngineEvent, EventSink, Inbound, InboundBody, MediaKind, ReceiptStatus};

const T: i64 = 1_700_000_000;

fn jid(s: &str) -> Jid {
    s.parse().expect("a JID")
}

fn info(id: &str, chat: &str, sender: &str, from_me: bool) -> MessageInfo {
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

fn batch(items: Vec<(MessageInfo, wa::Message)>) -> Event {
    let messages: Vec<InboundMessage> = items
        .into_iter()
        .map(|(i, m)| InboundMessage::builder().message(Arc::new(m)).info(Arc::new(i)).build())
        .collect();
    Event::Messages(MessageBatch::builder().messages(messages.into()).origin(BatchOrigin::Live).build())
}

/// Runs events through a real handler and queue (no client: no cache lookups)
/// and returns what reached the sink, plus the noted end.
async fn run(events: Vec<Event>) -> (Vec<EngineEvent>, Option<End>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let sink = EventSink::new(Ulid::from(7u128), 1, tx);
    let shared = Arc::new(Shared::default());
    let (inbox, queue) = mpsc::unbounded_channel();
    let task = tokio::spawn(inbound::run(queue, sink.clone(), shared.clone(), Weak::new()));
    let forwarder = Forwarder { sink, shared: shared.clone(), client: Weak::new(), inbox: inbox.clone() };
    for e in events {
        forwarder.handle_event(Arc::new(e));
    }
    inbound::flush(&inbox, std::time::Duration::from_secs(5)).await;
    drop((forwarder, inbox));
    task.await.expect("the queue task ends with its senders");
    let mut out = Vec::new();
    while let Ok((_, _, e)) = rx.try_recv() {
        out.push(e);
    }
    (out, shared.take_end())
}

fn one(info: MessageInfo, msg: wa::Message) -> Inbound {
    translate_message(&info, &msg).expect("a message")
}

fn text(t: &str) -> wa::Message {
    wa::Message { conversation: Some(t.into()), ..Default::default() }
}

#[tokio::test]
async fn a_lid_sender_gets_its_phone_and_the_mapping_is_reported_first() {
    let mut i = info("3EB0A", "100200300@lid", "100200300:5@lid", false);
    i.source.sender_alt = Some(jid("6281234567@s.whatsapp.net"));
    let (events, end) = run(vec![batch(vec![(i, text("hello"))])]).await;
    assert_eq!(end, None);
    assert_eq!(
        events,
        vec![
            EngineEvent::LidMapping { lid: "100200300@lid".into(), pn: "6281234567@s.whatsapp.net".into() },
            EngineEvent::Message(Box::new(Inbound {
                wa_id: "3EB0A".into(),
                chat: "100200300@lid".into(),
                chat_alt: Some("6281234567@s.whatsapp.net".into()),
                sender: "100200300@lid".into(),
                sender_alt: Some("6281234567@s.whatsapp.net".into()),
                from_me: false,
                timestamp: T * 1000,
                push_name: Some("Ana".into()),
                body: InboundBody::Text { text: "hello".into() },
                reply_to: None,
                mentions: vec![],
            })),
        ]
    );
}

#[tokio::test]
async fn every_message_of_a_batch_is_reported_in_order_and_a_mapping_once() {
    let mut a = info("A", "100@lid", "100@lid", false);
    a.source.sender_alt = Some(jid("62811@s.whatsapp.net"));
    let mut b = a.clone();
    b.id = "B".into();
    let own = info("C", "62899@s.whatsapp.net", "62800:3@s.whatsapp.net", true);
    let (events, _) = run(vec![batch(vec![(a, text("1")), (b, text("2")), (own, text("3"))])]).await;
    let kinds: Vec<_> = events
        .iter()
        .map(|e| match e {
            EngineEvent::Message(m) => format!("{}:{}", m.wa_id, m.from_me),
            other => other.kind().to_string(),
        })
        .collect();
    assert_eq!(kinds, ["lid_mapping", "A:false", "B:false", "C:true"]);
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
    ($ty:ident { $($extra:tt)* }) => {
        wa::message::$ty {
            direct_path: Some(concat!("/", stringify!($ty)).into()),
            media_key: Some(vec![7; 32]),
            file_sha256: Some(vec![1; 32]),
            file_enc_sha256: Some(vec![2; 32]),
            file_length: Some(1234),
            $($extra)*
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

fn protocol(kind: wa::message::protocol_message::Type, edited: Option<wa::Message>) -> wa::Message {
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

#[tokio::test]
async fn migration_pushes_from_this_account_become_mappings() {
    let payload = wa::LIDMigrationMappingSyncPayload {
        pn_to_lid_mappings: vec![
            wa::LIDMigrationMapping { pn: 6281, assigned_lid: 111, latest_lid: None },
            wa::LIDMigrationMapping { pn: 6282, assigned_lid: 222, latest_lid: Some(333) },
        ],
        ..Default::default()
    };
    let mut msg = protocol(wa::message::protocol_message::Type::LID_MIGRATION_MAPPING_SYNC, None);
    if let Some(pm) = msg.protocol_message.as_option_mut() {
        pm.lid_migration_mapping_sync_message = MessageField::some(wa::LIDMigrationMappingSyncMessage {
            encoded_mapping_payload: Some(payload.encode_to_vec()),
        });
    }
    let from_peer = info("M1", "62811@s.whatsapp.net", "62811@s.whatsapp.net", false);
    let own = info("M2", "62800@s.whatsapp.net", "62800@s.whatsapp.net", true);
    let (events, _) = run(vec![batch(vec![(from_peer, msg.clone()), (own, msg)])]).await;
    assert_eq!(
        events,
        vec![
            EngineEvent::LidMapping { lid: "111@lid".into(), pn: "6281@s.whatsapp.net".into() },
            EngineEvent::LidMapping { lid: "333@lid".into(), pn: "6282@s.whatsapp.net".into() },
        ]
    );
}

fn receipt(kind: ReceiptType, ids: &[&str]) -> Event {
    Event::Receipt(
        Receipt::builder()
            .source(MessageSource {
                chat: jid("62811@s.whatsapp.net"),
                sender: jid("62811:2@s.whatsapp.net"),
                ..Default::default()
            })
            .message_ids(ids.iter().map(|s| s.to_string()).collect())
            .timestamp(DateTime::from_timestamp(T, 500_000_000).expect("a time"))
            .r#type(kind)
            .offline(false)
            .build(),
    )
}

#[tokio::test]
async fn delivery_and_read_receipts_are_reported_and_others_ignored() {
    let events = vec![
        receipt(ReceiptType::Delivered, &["A", "B"]),
        receipt(ReceiptType::Read, &["A"]),
        receipt(ReceiptType::ReadSelf, &["C"]),
        receipt(ReceiptType::Played, &["D"]),
        receipt(ReceiptType::Retry, &["E"]),
        receipt(ReceiptType::Sender, &["F"]),
        receipt(ReceiptType::Delivered, &[]),
    ];
    let (out, _) = run(events).await;
    let r = |ids: &[&str], status| EngineEvent::Receipt {
        chat: "62811@s.whatsapp.net".into(),
        wa_ids: ids.iter().map(|s| s.to_string()).collect(),
        status,
        at: T * 1000 + 500,
    };
    assert_eq!(
        out,
        vec![
            r(&["A", "B"], ReceiptStatus::Delivered),
            r(&["A"], ReceiptStatus::Read),
            r(&["C"], ReceiptStatus::Read),
            r(&["D"], ReceiptStatus::Read),
        ]
    );
}

#[tokio::test]
async fn a_message_nack_is_a_refusal_and_plain_acks_say_nothing() {
    let ack = |class: &str, error: Option<&str>| {
        Event::ServerAck(
            ServerAck::builder()
                .id("3EB0SENT".into())
                .class(class.into())
                .maybe_error(error.map(str::to_string))
                .build(),
        )
    };
    let (out, _) = run(vec![ack("message", None), ack("receipt", Some("479")), ack("message", Some("463"))]).await;
    assert_eq!(out.len(), 1, "{out:?}");
    let EngineEvent::SendRefused { wa_id, code, message, retry_after_ms } = &out[0] else { panic!("{out:?}") };
    assert_eq!((wa_id.as_str(), code.as_str(), *retry_after_ms), ("3EB0SENT", "463", None));
    assert!(message.contains("463"), "{message}");
}

#[tokio::test]
async fn a_temporary_ban_is_reported_and_ends_the_connection() {
    let ban =
        TemporaryBan::builder().code(TempBanReason::SentToTooManyPeople).expire(ChronoDuration::seconds(3600)).build();
    let (out, end) = run(vec![Event::TemporaryBan(ban)]).await;
    assert_eq!(out, vec![EngineEvent::TemporaryBan { code: "101".into(), retry_after_ms: Some(3_600_000) }]);
    assert!(matches!(end, Some(End::Fatal(ref why)) if why.contains("3600")), "{end:?}");
}

#[tokio::test]
async fn a_number_change_with_its_lid_is_a_mapping() {
    let change = |new_lid: Option<&str>| {
        Event::ContactNumberChanged(
            ContactNumberChanged::builder()
                .old_jid(jid("6281111@s.whatsapp.net"))
                .new_jid(jid("6282222@s.whatsapp.net"))
                .maybe_new_lid(new_lid.map(jid))
                .timestamp(DateTime::from_timestamp(T, 0).expect("a time"))
                .build(),
        )
    };
    let (out, _) = run(vec![change(None), change(Some("99887766@lid"))]).await;
    assert_eq!(out, vec![EngineEvent::LidMapping { lid: "99887766@lid".into(), pn: "6282222@s.whatsapp.net".into() }]);
}
