//! The simulated engine: a deterministic, in-process WhatsApp for local
//! development and the test suite.
//!
//! Starting an unlinked session shows a QR (`sim://<session>/<n>`). The sim
//! controls (`POST /api/v1/sessions/{id}/sim/pair|disconnect|logout|incoming`)
//! then play the phone: pairing links `<phone>@s.whatsapp.net` with a stable
//! `<digits>@lid` derived from the phone number. A linked session (its JID is
//! kept in the session record) reconnects straight to `working`, as a real
//! linked device does.
//!
//! Messaging: everything a session sends (messages, presence, read receipts,
//! revokes) lands in its *outbox* (`GET .../sim/outbox`) and, with
//! `serve --sim-log FILE`, as one JSON line in FILE, flushed before the send
//! is reported. A WhatsApp id already in the log is not sent twice (as a
//! receiver drops a repeated id), also across a restart. Numbers starting
//! `999` are not on WhatsApp; `sim/refuse` makes the next sends fail with a
//! chosen WhatsApp error code.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use ring::digest::{digest, SHA256};
use ulid::Ulid;

use super::{
    BoxFuture, ChatPresence, Connection, Engine, EngineError, EngineEvent, EventSink, GroupChanges, GroupInfo,
    Inbound, InboundBody, JoinOutcome, JoinRequest, MediaKind, NumberCheck, OutContent, OutMessage, ParticipantAction,
    ParticipantOutcome, ReceiptStatus, SendError, StartInfo,
};
use crate::store::now_ms;

mod directory;
mod groups;
mod groups_hook;

pub use groups_hook::SimGroupAction;

pub use directory::{SimContact, SIM_JPEG};

/// How long a sim QR is valid.
pub const QR_TTL_MS: i64 = 60_000;

#[derive(Default)]
struct Live {
    sink: Option<EventSink>,
    linked: bool,
    qr_count: u64,
    /// Everything the network received from this session, in order.
    outbox: Vec<serde_json::Value>,
    /// The next `n` sends are refused with (code, retry after ms).
    refuse: Option<(String, u32, Option<i64>)>,
    /// waMessageId → chat, for receipts.
    sent: HashMap<String, String>,
    /// The simulated network's directory as this session sees it.
    dir: directory::SimDirectory,
    /// The groups this session's number is in, as the network holds them.
    groups: groups::SimGroups,
}

/// What the simulated network keeps across sessions: the log file and the
/// ids it already carried (read back from the log at start).
#[derive(Default)]
struct Network {
    log: Option<std::fs::File>,
    seen: HashSet<String>,
}

/// The simulated engine; cheap to clone, shared with the sim API.
#[derive(Clone, Default)]
pub struct SimEngine {
    sessions: Arc<Mutex<HashMap<Ulid, Live>>>,
    network: Arc<Mutex<Network>>,
}

/// The stable `@lid` the sim gives a phone number.
pub fn lid_for(phone: &str) -> String {
    let d = digest(&SHA256, phone.as_bytes());
    let n = d.as_ref()[..8].iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    format!("{:015}@lid", n % 1_000_000_000_000_000)
}

/// The session's own number as a person (phone JID and its `@lid`).
fn directory_person(phone: &str) -> super::directory::PersonIds {
    super::directory::PersonIds { jid: Some(format!("{phone}@s.whatsapp.net")), lid: Some(lid_for(phone)) }
}

/// The pairing code the sim gives a phone number for a session: `ABCD-EFGH`.
pub fn pair_code_for(session: Ulid, phone: &str) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let d = digest(&SHA256, format!("{session}:{phone}").as_bytes());
    let c: Vec<u8> = d.as_ref()[..8].iter().map(|b| ALPHABET[usize::from(*b) % 32]).collect();
    format!("{}-{}", String::from_utf8_lossy(&c[..4]), String::from_utf8_lossy(&c[4..]))
}

impl SimEngine {
    /// A new sim with no sessions.
    pub fn new() -> SimEngine {
        SimEngine::default()
    }

    /// A sim that appends what its network receives to `path` (one JSON
    /// line each) and remembers the message ids already in it.
    pub fn with_log(path: Option<PathBuf>) -> std::io::Result<SimEngine> {
        let sim = SimEngine::default();
        if let Some(path) = path {
            let mut seen = HashSet::new();
            if let Ok(text) = std::fs::read_to_string(&path) {
                for line in text.lines() {
                    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
                    if v["kind"] == "message" {
                        if let Some(id) = v["waMessageId"].as_str() {
                            seen.insert(id.to_string());
                        }
                    }
                }
            }
            let log = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
            if let Ok(mut n) = sim.network.lock() {
                n.log = Some(log);
                n.seen = seen;
            }
        }
        Ok(sim)
    }

    /// A fresh WhatsApp id for an inbound message.
    pub fn new_wa_id() -> String {
        format!("SIM{}", crate::new_id())
    }

    /// Everything the network received from session `id`, in order.
    pub fn outbox(&self, id: Ulid) -> Vec<serde_json::Value> {
        self.sessions.lock().ok().and_then(|m| m.get(&id).map(|l| l.outbox.clone())).unwrap_or_default()
    }

    /// The next `count` sends of session `id` are refused with `code`.
    pub fn refuse(&self, id: Ulid, code: &str, count: u32, retry_after_ms: Option<i64>) -> Result<(), EngineError> {
        let mut map = self.sessions.lock().map_err(|_| EngineError::Other("sim state poisoned".into()))?;
        map.entry(id).or_default().refuse = (count > 0).then(|| (code.to_string(), count, retry_after_ms));
        Ok(())
    }

    /// The recipient of `wa_id` received (or read) it.
    pub fn receipt(&self, id: Ulid, wa_id: &str, status: ReceiptStatus) -> Result<(), EngineError> {
        // A message sent before a gateway restart is not in this process's
        // memory: its receipt still names it (the chat is then unknown).
        let (sink, chat) = self.with(id, |l| {
            let chat = l.sent.get(wa_id).cloned().unwrap_or_default();
            Ok((l.sink.clone().ok_or_else(|| EngineError::State("not running".into()))?, chat))
        })?;
        sink.emit(EngineEvent::Receipt { chat, wa_ids: vec![wa_id.to_string()], status, at: now_ms() });
        Ok(())
    }

    /// Appends a record to the session's outbox and the log (flushed).
    fn record(&self, id: Ulid, mut rec: serde_json::Value) {
        rec["at"] = serde_json::json!(now_ms());
        if let Ok(mut net) = self.network.lock() {
            if let Some(f) = net.log.as_mut() {
                let mut line = rec.to_string();
                line.push('\n');
                if let Err(e) = f.write_all(line.as_bytes()).and_then(|()| f.flush()) {
                    tracing::error!(error = %e, "sim: could not write --sim-log");
                }
            }
        }
        if let Ok(mut map) = self.sessions.lock() {
            map.entry(id).or_default().outbox.push(rec);
        }
    }

    /// Carries one message: refused, not on WhatsApp, a repeat (dropped), or
    /// recorded.
    fn carry(&self, id: Ulid, msg: OutMessage) -> Result<(), SendError> {
        let digits = msg.chat.split(['@', ':']).next().unwrap_or("");
        if msg.chat.ends_with("@s.whatsapp.net") && digits.starts_with("999") {
            return Err(SendError::NotOnWhatsapp);
        }
        {
            let mut map = self.sessions.lock().map_err(|_| SendError::Unavailable("sim state poisoned".into()))?;
            let live = map.entry(id).or_default();
            if let Some((code, n, retry)) = live.refuse.take() {
                if n > 1 {
                    live.refuse = Some((code.clone(), n - 1, retry));
                }
                return Err(SendError::Refused { code, message: "sim: refused by the simulated server".into(), retry_after_ms: retry });
            }
            live.sent.insert(msg.wa_id.clone(), msg.chat.clone());
        }
        let repeat = match self.network.lock() {
            Ok(mut net) => !net.seen.insert(msg.wa_id.clone()),
            Err(_) => false,
        };
        if repeat {
            return Ok(());
        }
        let (kind, text) = match &msg.content {
            OutContent::Text { text } => ("text", Some(text.clone())),
            OutContent::Media { kind, caption, .. } => (kind.as_str(), caption.clone()),
            OutContent::Location { .. } => ("location", None),
            OutContent::Contact { .. } => ("contact", None),
            OutContent::Reaction { emoji, .. } => ("reaction", Some(emoji.clone())),
        };
        self.record(
            id,
            serde_json::json!({"kind": "message", "chatId": msg.chat, "waMessageId": msg.wa_id, "type": kind, "text": text}),
        );
        Ok(())
    }

    fn with<T>(&self, id: Ulid, f: impl FnOnce(&mut Live) -> Result<T, EngineError>) -> Result<T, EngineError> {
        let mut map = self.sessions.lock().map_err(|_| EngineError::Other("sim state poisoned".into()))?;
        match map.get_mut(&id) {
            Some(live) if live.sink.is_some() => f(live),
            _ => Err(EngineError::State("the session is not running".into())),
        }
    }

    fn sink(&self, id: Ulid) -> Result<EventSink, EngineError> {
        self.with(id, |l| l.sink.clone().ok_or_else(|| EngineError::State("not running".into())))
    }

    /// The phone scans the QR (or enters the code): links `phone`.
    pub fn pair(&self, id: Ulid, phone: &str) -> Result<(String, String), EngineError> {
        let sink = self.with(id, |l| {
            if l.linked {
                return Err(EngineError::State("the session is already linked".into()));
            }
            l.linked = true;
            l.groups.me = Some(directory_person(phone));
            l.sink.clone().ok_or_else(|| EngineError::State("not running".into()))
        })?;
        let (jid, lid) = (format!("{phone}@s.whatsapp.net"), lid_for(phone));
        sink.emit(EngineEvent::Connected { jid: jid.clone(), lid: Some(lid.clone()), push_name: Some("Sim Phone".into()) });
        Ok((jid, lid))
    }

    /// The network drops; the gateway should reconnect.
    pub fn disconnect(&self, id: Ulid) -> Result<(), EngineError> {
        let sink = self.sink(id)?;
        sink.emit(EngineEvent::Disconnected { reason: "sim: connection lost".into(), retry: true });
        Ok(())
    }

    /// The phone unlinks this device.
    pub fn logout(&self, id: Ulid) -> Result<(), EngineError> {
        let sink = self.with(id, |l| {
            l.linked = false;
            l.sink.take().ok_or_else(|| EngineError::State("not running".into()))
        })?;
        sink.emit(EngineEvent::LoggedOut { reason: "sim: device unlinked from the phone".into() });
        Ok(())
    }

    /// A message arrives: from `from` (digits), addressed by its `@lid`
    /// when `lid` is given (WhatsApp's LID mode, the phone JID as the
    /// alternate address), in group `group` if given.
    /// The message gets WhatsApp id `wa_id` (see [`SimEngine::new_wa_id`]),
    /// chosen by the caller so that it can wait for it to be stored.
    pub fn incoming(
        &self,
        id: Ulid,
        wa_id: String,
        from: &str,
        lid: Option<&str>,
        group: Option<&str>,
        body: InboundBody,
    ) -> Result<String, EngineError> {
        let sink = self.with(id, |l| {
            if !l.linked {
                return Err(EngineError::State("the session is not linked".into()));
            }
            l.sink.clone().ok_or_else(|| EngineError::State("not running".into()))
        })?;
        let pn = format!("{from}@s.whatsapp.net");
        let lid = lid.map(|l| if l.ends_with("@lid") { l.to_string() } else { format!("{l}@lid") });
        let (sender, sender_alt) = match &lid {
            Some(l) => (l.clone(), Some(pn.clone())),
            None => (pn.clone(), None),
        };
        let (chat, chat_alt) = match group {
            Some(g) => (if g.ends_with("@g.us") { g.to_string() } else { format!("{g}@g.us") }, None),
            None => (sender.clone(), sender_alt.clone()),
        };
        let body = match body {
            InboundBody::Media { kind, mimetype, file_name, caption, .. } => {
                let data = format!("sim media {wa_id}").into_bytes();
                InboundBody::Media { kind, mimetype, file_name, size: Some(data.len() as u64), caption, media_ref: data }
            }
            other => other,
        };
        sink.emit(EngineEvent::Message(Box::new(Inbound {
            wa_id: wa_id.clone(),
            chat,
            chat_alt,
            sender,
            sender_alt,
            from_me: false,
            timestamp: now_ms(),
            push_name: Some("Sim Contact".into()),
            body,
            reply_to: None,
            mentions: Vec::new(),
        })));
        Ok(wa_id)
    }
}

/// The sim's default media for an inbound `type` (`image`, `document`...).
pub fn sim_media(kind: MediaKind, caption: Option<String>) -> InboundBody {
    let (mime, name) = match kind {
        MediaKind::Image => ("image/jpeg", None),
        MediaKind::Video => ("video/mp4", None),
        MediaKind::Audio => ("audio/ogg", None),
        MediaKind::Document => ("application/pdf", Some("sim.pdf".to_string())),
        MediaKind::Sticker => ("image/webp", None),
    };
    InboundBody::Media { kind, mimetype: Some(mime.into()), file_name: name, size: None, caption, media_ref: Vec::new() }
}

struct SimConnection {
    engine: SimEngine,
    session: Ulid,
    generation: u64,
}

impl SimConnection {
    /// Whether this connection is the session's current, linked one.
    fn live(&self) -> bool {
        self.engine.sessions.lock().ok().is_some_and(|m| {
            m.get(&self.session)
                .is_some_and(|l| l.linked && l.sink.as_ref().is_some_and(|s| s.generation == self.generation))
        })
    }

    fn detach(&self) {
        if let Ok(mut map) = self.engine.sessions.lock() {
            if let Some(live) = map.get_mut(&self.session) {
                if live.sink.as_ref().is_some_and(|s| s.generation == self.generation) {
                    live.sink = None;
                }
            }
        }
    }
}

impl Connection for SimConnection {
    fn stop(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move { self.detach() })
    }

    fn logout(&self) -> BoxFuture<'_, Result<(), EngineError>> {
        Box::pin(async move {
            self.detach();
            if let Ok(mut map) = self.engine.sessions.lock() {
                // Unlinked; what the network already received stays in the outbox.
                if let Some(live) = map.get_mut(&self.session) {
                    let outbox = std::mem::take(&mut live.outbox);
                    *live = Live { outbox, ..Live::default() };
                }
            }
            Ok(())
        })
    }

    fn send(&self, msg: OutMessage) -> BoxFuture<'_, Result<(), SendError>> {
        Box::pin(async move {
            if !self.live() {
                return Err(SendError::Unavailable("the session is not connected".into()));
            }
            self.engine.carry(self.session, msg)
        })
    }

    fn presence(&self, chat: &str, presence: ChatPresence) -> BoxFuture<'_, Result<(), EngineError>> {
        let rec = serde_json::json!({"kind": "presence", "chatId": chat, "presence": presence.as_str()});
        Box::pin(async move {
            self.engine.record(self.session, rec);
            Ok(())
        })
    }

    fn mark_read(&self, chat: &str, _sender: Option<&str>, wa_ids: &[String]) -> BoxFuture<'_, Result<(), EngineError>> {
        let recs: Vec<serde_json::Value> = wa_ids
            .iter()
            .map(|w| serde_json::json!({"kind": "receipt", "chatId": chat, "waMessageId": w}))
            .collect();
        Box::pin(async move {
            recs.into_iter().for_each(|r| self.engine.record(self.session, r));
            Ok(())
        })
    }

    fn revoke(&self, chat: &str, wa_id: &str) -> BoxFuture<'_, Result<(), SendError>> {
        let rec = serde_json::json!({"kind": "revoke", "chatId": chat, "waMessageId": wa_id});
        Box::pin(async move {
            if !self.live() {
                return Err(SendError::Unavailable("the session is not connected".into()));
            }
            self.engine.record(self.session, rec);
            Ok(())
        })
    }

    fn download(&self, media_ref: &[u8]) -> BoxFuture<'_, Result<Vec<u8>, EngineError>> {
        let data = media_ref.to_vec();
        Box::pin(async move { Ok(data) })
    }

    fn check_numbers(&self, phones: &[String]) -> BoxFuture<'_, Result<Vec<NumberCheck>, EngineError>> {
        directory::check_numbers(self, phones)
    }

    fn contact_about(&self, jid: &str) -> BoxFuture<'_, Result<Option<String>, EngineError>> {
        directory::contact_about(self, jid)
    }

    fn picture(&self, jid: &str, full: bool) -> BoxFuture<'_, Result<Option<Vec<u8>>, EngineError>> {
        directory::picture(self, jid, full)
    }

    fn set_blocked(&self, jid: &str, blocked: bool) -> BoxFuture<'_, Result<(), EngineError>> {
        directory::set_blocked(self, jid, blocked)
    }

    fn set_presence(&self, available: bool) -> BoxFuture<'_, Result<(), EngineError>> {
        directory::set_presence(self, available)
    }

    fn subscribe_presence(&self, jid: &str) -> BoxFuture<'_, Result<(), EngineError>> {
        directory::subscribe_presence(self, jid)
    }

    fn set_push_name(&self, name: &str) -> BoxFuture<'_, Result<(), EngineError>> {
        directory::set_push_name(self, name)
    }

    fn set_about(&self, about: &str) -> BoxFuture<'_, Result<(), EngineError>> {
        directory::set_about(self, about)
    }

    fn set_picture(&self, group: Option<&str>, jpeg: Option<Vec<u8>>) -> BoxFuture<'_, Result<(), EngineError>> {
        directory::set_picture(self, group, jpeg)
    }

    fn group_create(&self, subject: &str, participants: &[String], description: Option<&str>) -> BoxFuture<'_, Result<(GroupInfo, Vec<ParticipantOutcome>), EngineError>> {
        groups::group_create(self, subject, participants, description)
    }

    fn group_info(&self, group: &str) -> BoxFuture<'_, Result<GroupInfo, EngineError>> {
        groups::group_info(self, group)
    }

    fn groups_joined(&self) -> BoxFuture<'_, Result<Vec<GroupInfo>, EngineError>> {
        groups::groups_joined(self)
    }

    fn group_participants(&self, group: &str, action: ParticipantAction, participants: &[String], invite: bool) -> BoxFuture<'_, Result<Vec<ParticipantOutcome>, EngineError>> {
        groups::group_participants(self, group, action, participants, invite)
    }

    fn group_update(&self, group: &str, changes: &GroupChanges) -> BoxFuture<'_, Result<(), EngineError>> {
        groups::group_update(self, group, changes)
    }

    fn group_leave(&self, group: &str) -> BoxFuture<'_, Result<(), EngineError>> {
        groups::group_leave(self, group)
    }

    fn group_invite(&self, group: &str, revoke: bool) -> BoxFuture<'_, Result<String, EngineError>> {
        groups::group_invite(self, group, revoke)
    }

    fn group_join(&self, code: &str) -> BoxFuture<'_, Result<JoinOutcome, EngineError>> {
        groups::group_join(self, code)
    }

    fn group_invite_preview(&self, code: &str) -> BoxFuture<'_, Result<GroupInfo, EngineError>> {
        groups::group_invite_preview(self, code)
    }

    fn group_requests(&self, group: &str) -> BoxFuture<'_, Result<Vec<JoinRequest>, EngineError>> {
        groups::group_requests(self, group)
    }

    fn group_requests_action(&self, group: &str, approve: bool, participants: &[String]) -> BoxFuture<'_, Result<Vec<ParticipantOutcome>, EngineError>> {
        groups::group_requests_action(self, group, approve, participants)
    }

    fn pair_code(&self, phone: &str) -> BoxFuture<'_, Result<String, EngineError>> {
        let phone = phone.to_string();
        Box::pin(async move {
            let sink = self.engine.with(self.session, |l| {
                if l.linked {
                    return Err(EngineError::State("the session is already linked".into()));
                }
                l.sink.clone().ok_or_else(|| EngineError::State("not running".into()))
            })?;
            let code = pair_code_for(self.session, &phone);
            sink.emit(EngineEvent::PairCode { code: code.clone() });
            Ok(code)
        })
    }
}

impl Engine for SimEngine {
    fn name(&self) -> &'static str {
        "sim"
    }

    fn start(&self, info: StartInfo, sink: EventSink) -> BoxFuture<'_, Result<Box<dyn Connection>, EngineError>> {
        Box::pin(async move {
            let generation = sink.generation;
            let (linked, n) = {
                let mut map = self.sessions.lock().map_err(|_| EngineError::Other("sim state poisoned".into()))?;
                let live = map.entry(info.session).or_default();
                live.linked = info.linked_jid.is_some();
                live.groups.me = info.linked_jid.as_ref().map(|j| super::directory::PersonIds { jid: Some(j.clone()), lid: info.linked_lid.clone() });
                live.qr_count += 1;
                live.sink = Some(sink.clone());
                (live.linked, live.qr_count)
            };
            match (linked, info.linked_jid) {
                (true, Some(jid)) => sink.emit(EngineEvent::Connected {
                    jid,
                    lid: info.linked_lid,
                    push_name: Some("Sim Phone".into()),
                }),
                _ => sink.emit(EngineEvent::Qr {
                    value: format!("sim://{}/{n}", info.session),
                    expires_at: now_ms() + QR_TTL_MS,
                }),
            }
            Ok(Box::new(SimConnection { engine: self.clone(), session: info.session, generation }) as Box<dyn Connection>)
        })
    }

    fn forget(&self, session: Ulid) {
        if let Ok(mut map) = self.sessions.lock() {
            map.remove(&session);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_ids_and_codes() {
        assert_eq!(lid_for("6281234567890"), lid_for("6281234567890"));
        assert_ne!(lid_for("6281234567890"), lid_for("6281234567891"));
        assert!(lid_for("1").ends_with("@lid") && lid_for("1").len() == 19);
        let s = Ulid::from(7u128);
        let code = pair_code_for(s, "62812");
        assert_eq!(code, pair_code_for(s, "62812"));
        assert_eq!(code.len(), 9);
        assert_eq!(&code[4..5], "-");
    }
}
