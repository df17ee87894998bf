//! The messaging half of the event stream: messages, receipts, nacks, bans
//! and LID mappings, translated in the order the client reported them.
//!
//! The client's event handler is synchronous, but filling in the LID↔phone
//! alternative of an address the stanza did not carry means asking the
//! client's mapping cache (async, backed by the store). So the handler only
//! queues these events; one task per connection translates them in order.
//! Before the supervisor reports the connection's end it [`flush`]es the
//! queue, so every message is reported while its generation is current.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;
use whatsapp_rust::types::events::Event;
use whatsapp_rust::{Client, Jid};

use super::events::Shared;
use super::translate::{is_shared_chat, lid_mappings, migration_mappings, translate_message, translate_other};
use crate::engine::{EngineEvent, EventSink, Inbound};

/// How long one mapping lookup may take before the message goes without it.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);
/// Mappings remembered per connection to report each once (then forgotten wholesale).
const MAX_KNOWN_MAPPINGS: usize = 4096;

/// One item of a connection's messaging queue.
pub(super) enum Work {
    /// A messaging event from the client, to translate and report.
    Event(Arc<Event>),
    /// Answered once everything queued before it has been reported.
    Flush(oneshot::Sender<()>),
}

/// The sending end of the queue, held by the event handler and the supervisor.
pub(super) type Inbox = mpsc::UnboundedSender<Work>;

/// Waits (at most `limit`) until everything queued so far has been reported.
pub(super) async fn flush(inbox: &Inbox, limit: Duration) {
    let (tx, rx) = oneshot::channel();
    if inbox.send(Work::Flush(tx)).is_ok() && timeout(limit, rx).await.is_err() {
        tracing::warn!("whatsapp: reporting queued messages took longer than {limit:?}");
    }
}

/// Translates one connection's messaging events until the handler and the
/// supervisor are gone.
pub(super) async fn run(
    mut rx: mpsc::UnboundedReceiver<Work>,
    sink: EventSink,
    shared: Arc<Shared>,
    client: Weak<Client>,
) {
    let mut known: HashSet<(String, String)> = HashSet::new();
    while let Some(work) = rx.recv().await {
        let event = match work {
            Work::Flush(done) => {
                let _ = done.send(());
                continue;
            }
            Work::Event(event) => event,
        };
        if shared.stopping.load(Ordering::SeqCst) {
            continue;
        }
        let mut report = |ev: EngineEvent| {
            if let EngineEvent::LidMapping { lid, pn } = &ev {
                if known.len() >= MAX_KNOWN_MAPPINGS {
                    known.clear();
                }
                if !known.insert((lid.clone(), pn.clone())) {
                    return;
                }
            }
            sink.emit(ev);
        };
        let Event::Messages(batch) = &*event else {
            if let Some(ev) = translate_other(&event) {
                report(ev);
            }
            // The directory's events (contacts, presence: `directory`;
            // group notifications: `groups`), in order with the messages.
            let client = client.upgrade();
            for ev in super::directory::translate(client.as_deref(), &event).await {
                report(ev);
            }
            for ev in super::groups::translate(client.as_deref(), &event).await {
                report(ev);
            }
            continue;
        };
        for m in batch.iter() {
            for ev in migration_mappings(&m.info, &m.message) {
                report(ev);
            }
            let Some(mut inbound) = translate_message(&m.info, &m.message) else { continue };
            for ev in lid_mappings(&inbound) {
                report(ev);
            }
            if let Some(client) = client.upgrade() {
                fill_alternatives(&client, &mut inbound).await;
            }
            report(EngineEvent::Message(Box::new(inbound)));
        }
    }
}

/// Fills `sender_alt`/`chat_alt` the stanza left out from the client's
/// LID↔phone cache, when it knows them.
async fn fill_alternatives(client: &Client, m: &mut Inbound) {
    if m.sender_alt.is_none() {
        m.sender_alt = cached_alternative(client, &m.sender).await;
    }
    if m.chat_alt.is_none() && !is_shared_chat(&m.chat) {
        m.chat_alt = if m.chat == m.sender { m.sender_alt.clone() } else { cached_alternative(client, &m.chat).await };
    }
}

/// The other form of a LID or phone JID, from the client's mapping cache.
pub(super) async fn cached_alternative(client: &Client, jid: &str) -> Option<String> {
    let jid: Jid = jid.parse().ok()?;
    if !jid.is_lid() && !jid.is_pn() {
        return None;
    }
    let entry = match timeout(LOOKUP_TIMEOUT, client.get_lid_pn_entry(&jid)).await {
        Ok(Ok(entry)) => entry?,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "whatsapp: LID mapping lookup failed");
            return None;
        }
        Err(_) => return None,
    };
    let alt = if jid.is_lid() { Jid::pn(&*entry.phone_number) } else { Jid::lid(&*entry.lid) };
    Some(alt.to_string())
}

#[cfg(test)]
mod tests {
    //! The queue and every messaging event kind, through the real handler.

    use std::sync::{Arc, Weak};

    use tokio::sync::mpsc;
    use ulid::Ulid;
    use whatsapp_rust::chrono::{DateTime, Duration as ChronoDuration};
    use whatsapp_rust::types::events::{
        ContactNumberChanged, Event, EventHandler, Receipt, ServerAck, TempBanReason, TemporaryBan,
    };
    use whatsapp_rust::types::message::MessageSource;
    use whatsapp_rust::types::presence::ReceiptType;
    use whatsapp_rust::waproto::buffa::{Message as _, MessageField};
    use whatsapp_rust::waproto::whatsapp as wa;

    use super::super::events::{End, Forwarder, Shared};
    use super::super::translate_tests::{batch, info, jid, protocol, text, T};
    use crate::engine::{EngineEvent, EventSink, Inbound, InboundBody, ReceiptStatus};

    /// Runs events through a real handler and queue (no client: no cache lookups)
    /// and returns what reached the sink, plus the noted end.
    async fn run(events: Vec<Event>) -> (Vec<EngineEvent>, Option<End>) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sink = EventSink::new(Ulid::from(7u128), 1, tx);
        let shared = Arc::new(Shared::default());
        let (inbox, queue) = mpsc::unbounded_channel();
        let task = tokio::spawn(super::run(queue, sink.clone(), shared.clone(), Weak::new()));
        let forwarder = Forwarder { sink, shared: shared.clone(), client: Weak::new(), inbox: inbox.clone() };
        for e in events {
            forwarder.handle_event(Arc::new(e));
        }
        super::flush(&inbox, std::time::Duration::from_secs(5)).await;
        drop((forwarder, inbox));
        task.await.expect("the queue task ends with its senders");
        let mut out = Vec::new();
        while let Ok((_, _, e)) = rx.try_recv() {
            out.push(e);
        }
        (out, shared.take_end())
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
        let ban = TemporaryBan::builder()
            .code(TempBanReason::SentToTooManyPeople)
            .expire(ChronoDuration::seconds(3600))
            .build();
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
        assert_eq!(
            out,
            vec![EngineEvent::LidMapping { lid: "99887766@lid".into(), pn: "6282222@s.whatsapp.net".into() }]
        );
    }
}
