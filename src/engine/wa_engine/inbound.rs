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
async fn cached_alternative(client: &Client, jid: &str) -> Option<String> {
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
