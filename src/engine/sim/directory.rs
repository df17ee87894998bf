//! The sim engine's contacts, presence, profile and blocking (CONTRACT §12,
//! §15): the simulated network's directory (`sim/contacts`), presence
//! (`sim/presence`), and the outbox kinds `lookup`, `presence_subscribe`,
//! `presence`, `profile` and `block`.

use std::collections::{HashMap, HashSet};

use serde_json::json;
use ulid::Ulid;

use super::{lid_for, SimConnection, SimEngine};
use crate::engine::directory::{PersonIds, PresenceStatus};
use crate::engine::{BoxFuture, ContactUpdate, EngineError, EngineEvent, NumberCheck, PresenceUpdate};
use crate::store::now_ms;

/// A small valid JPEG (8×8 mid-grey, baseline, one DC and one AC code):
/// every picture the sim shows.
pub const SIM_JPEG: &[u8] = &[
    0xFF, 0xD8, // SOI
    0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00,
    0xFF, 0xDB, 0x00, 0x43, 0x00, // DQT: table 0, all ones
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x08, 0x00, 0x08, 0x01, 0x01, 0x11, 0x00, // SOF0: 8x8, grey
    0xFF, 0xC4, 0x00, 0x14, 0x00, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, // DHT DC0: "0" = 0
    0xFF, 0xC4, 0x00, 0x14, 0x10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, // DHT AC0: "0" = EOB
    0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00, // SOS
    0x3F, // DC 0, EOB, padded with ones
    0xFF, 0xD9, // EOI
];

/// One person of the simulated network's directory (`sim/contacts`).
#[derive(Clone, Debug, Default)]
pub struct SimContact {
    /// Digits.
    pub phone: String,
    /// `<digits>@lid` (default: [`lid_for`] the phone).
    pub lid: Option<String>,
    /// As saved in the phone's address book (also stored as a Contact).
    pub name: Option<String>,
    pub push_name: Option<String>,
    pub is_business: bool,
    pub about: Option<String>,
    pub picture: bool,
    /// Group adds go through (`false`: `needs_invite`).
    pub addable: bool,
}

/// The simulated network's directory for one session (`sim/contacts`):
/// who is on WhatsApp, their names, about, picture, and whether group adds
/// reach them; and the contacts this session subscribed to.
#[derive(Default)]
pub(super) struct SimDirectory {
    people: HashMap<String, SimContact>,
    subscribed: HashSet<String>,
}

fn digits_of(address: &str) -> &str {
    address.split(['@', ':']).next().unwrap_or("")
}

impl SimDirectory {
    /// Whether a group add of `phone` (digits) goes through (`"addable":
    /// false` in `sim/contacts` makes it `needs_invite`).
    pub(super) fn addable(&self, phone: &str) -> bool {
        self.people.get(phone).is_none_or(|p| p.addable)
    }

    /// Whether `phone` (digits) is on WhatsApp (`999…` are not).
    pub(super) fn on_whatsapp(&self, phone: &str) -> bool {
        !phone.starts_with("999")
    }

    /// The `@lid` of `phone` on the simulated network.
    fn lid_of(&self, phone: &str) -> String {
        self.people.get(phone).and_then(|p| p.lid.clone()).unwrap_or_else(|| lid_for(phone))
    }

    /// The person a phone JID or `@lid` names (their phone digits).
    fn phone_of(&self, address: &str) -> Option<String> {
        if address.ends_with("@lid") {
            let bare = format!("{}@lid", digits_of(address));
            self.people.values().find(|p| self.lid_of(&p.phone) == bare).map(|p| p.phone.clone())
        } else {
            Some(digits_of(address).to_string()).filter(|d| !d.is_empty())
        }
    }

    fn person(&self, address: &str) -> Option<&SimContact> {
        self.phone_of(address).and_then(|p| self.people.get(&p))
    }

    fn ids(&self, phone: &str) -> PersonIds {
        PersonIds { jid: Some(format!("{phone}@s.whatsapp.net")), lid: Some(self.lid_of(phone)) }
    }
}

impl SimEngine {
    /// `sim/contacts`: sets the simulated network's directory (entries by
    /// phone, replacing earlier ones of the same phone); entries with a
    /// `name` are synced to the phone's address book at once: a contact
    /// event each. Returns the address of the last such event (to wait for
    /// it), if any.
    pub fn set_directory(&self, id: Ulid, people: Vec<SimContact>) -> Result<Option<String>, EngineError> {
        let mut map = self.sessions.lock().map_err(|_| EngineError::Other("sim state poisoned".into()))?;
        let live = map.entry(id).or_default();
        let named: Vec<&SimContact> = people.iter().filter(|p| p.name.is_some()).collect();
        let sink = match (&live.sink, named.is_empty()) {
            (Some(s), _) => Some(s.clone()),
            (None, true) => None,
            (None, false) => return Err(EngineError::State("the session is not running: the address book syncs while it is".into())),
        };
        for p in &people {
            live.dir.people.insert(p.phone.clone(), p.clone());
        }
        let mut last = None;
        if let Some(sink) = sink {
            for p in people.iter().filter(|p| p.name.is_some()) {
                let person = live.dir.ids(&p.phone);
                last = person.jid.clone();
                sink.emit(EngineEvent::Contact(Box::new(ContactUpdate {
                    person,
                    name: p.name.clone(),
                    push_name: p.push_name.clone(),
                    business_name: None,
                    is_business: Some(p.is_business),
                    blocked: None,
                    picture_changed: false,
                })));
            }
        }
        Ok(last)
    }

    /// `sim/presence`: `from` (digits, a phone JID or a `@lid`) shows
    /// `status`; delivered (as a presence event) only if the session
    /// subscribed to them. Returns the person's phone JID when delivered.
    pub fn sim_presence(&self, id: Ulid, from: &str, status: PresenceStatus) -> Result<Option<String>, EngineError> {
        let (sink, person) = self.with(id, |l| {
            let phone = l.dir.phone_of(from).ok_or_else(|| EngineError::Invalid("from names nobody".into()))?;
            let person = l.dir.ids(&phone);
            let subscribed = [&person.jid, &person.lid].into_iter().flatten().any(|a| l.dir.subscribed.contains(a));
            Ok((l.sink.clone().filter(|_| subscribed), person))
        })?;
        let Some(sink) = sink else { return Ok(None) };
        let jid = person.jid.clone();
        let last_seen = (status == PresenceStatus::Unavailable).then(now_ms);
        sink.emit(EngineEvent::Presence(Box::new(PresenceUpdate { person, status, chat: None, last_seen })));
        Ok(jid)
    }
}

fn not_connected() -> EngineError {
    EngineError::State("the session is not connected".into())
}

/// [`Connection::check_numbers`](crate::engine::Connection::check_numbers).
pub(super) fn check_numbers<'a>(c: &'a SimConnection, phones: &[String]) -> BoxFuture<'a, Result<Vec<NumberCheck>, EngineError>> {
    let phones = phones.to_vec();
    Box::pin(async move {
        if !c.live() {
            return Err(not_connected());
        }
        let answers = c.engine.with(c.session, |l| {
            Ok(phones
                .iter()
                .map(|p| {
                    let on = l.dir.on_whatsapp(p);
                    NumberCheck {
                        phone: p.clone(),
                        on_whatsapp: on,
                        jid: on.then(|| format!("{p}@s.whatsapp.net")),
                        lid: on.then(|| l.dir.lid_of(p)),
                        is_business: on && l.dir.people.get(p).is_some_and(|x| x.is_business),
                    }
                })
                .collect::<Vec<_>>())
        })?;
        for p in &phones {
            c.engine.record(c.session, json!({"kind": "lookup", "phoneNumber": p}));
        }
        Ok(answers)
    })
}

/// [`Connection::contact_about`](crate::engine::Connection::contact_about).
pub(super) fn contact_about<'a>(c: &'a SimConnection, jid: &str) -> BoxFuture<'a, Result<Option<String>, EngineError>> {
    let jid = jid.to_string();
    Box::pin(async move {
        if !c.live() {
            return Err(not_connected());
        }
        c.engine.with(c.session, |l| Ok(l.dir.person(&jid).and_then(|p| p.about.clone())))
    })
}

/// [`Connection::picture`](crate::engine::Connection::picture).
pub(super) fn picture<'a>(c: &'a SimConnection, jid: &str, _full: bool) -> BoxFuture<'a, Result<Option<Vec<u8>>, EngineError>> {
    let jid = jid.to_string();
    Box::pin(async move {
        if !c.live() {
            return Err(not_connected());
        }
        c.engine.with(c.session, |l| Ok(l.dir.person(&jid).filter(|p| p.picture).map(|_| SIM_JPEG.to_vec())))
    })
}

/// [`Connection::set_blocked`](crate::engine::Connection::set_blocked).
pub(super) fn set_blocked<'a>(c: &'a SimConnection, jid: &str, blocked: bool) -> BoxFuture<'a, Result<(), EngineError>> {
    let rec = json!({"kind": "block", "action": if blocked { "block" } else { "unblock" }, "jid": jid});
    recorded(c, rec)
}

/// [`Connection::set_presence`](crate::engine::Connection::set_presence).
pub(super) fn set_presence<'a>(c: &'a SimConnection, available: bool) -> BoxFuture<'a, Result<(), EngineError>> {
    let rec = json!({"kind": "presence", "presence": if available { "available" } else { "unavailable" }});
    recorded(c, rec)
}

/// [`Connection::subscribe_presence`](crate::engine::Connection::subscribe_presence).
pub(super) fn subscribe_presence<'a>(c: &'a SimConnection, jid: &str) -> BoxFuture<'a, Result<(), EngineError>> {
    let jid = jid.to_string();
    Box::pin(async move {
        if !c.live() {
            return Err(not_connected());
        }
        c.engine.with(c.session, |l| {
            l.dir.subscribed.insert(jid.clone());
            Ok(())
        })?;
        c.engine.record(c.session, json!({"kind": "presence_subscribe", "jid": jid}));
        Ok(())
    })
}

/// [`Connection::set_push_name`](crate::engine::Connection::set_push_name).
pub(super) fn set_push_name<'a>(c: &'a SimConnection, name: &str) -> BoxFuture<'a, Result<(), EngineError>> {
    recorded(c, json!({"kind": "profile", "name": name}))
}

/// [`Connection::set_about`](crate::engine::Connection::set_about).
pub(super) fn set_about<'a>(c: &'a SimConnection, about: &str) -> BoxFuture<'a, Result<(), EngineError>> {
    recorded(c, json!({"kind": "profile", "about": about}))
}

/// [`Connection::set_picture`](crate::engine::Connection::set_picture):
/// the number's own picture is a `profile` record, a group's a `group`
/// record with `"action": "picture"`.
pub(super) fn set_picture<'a>(c: &'a SimConnection, group: Option<&str>, jpeg: Option<Vec<u8>>) -> BoxFuture<'a, Result<(), EngineError>> {
    let bytes = jpeg.as_ref().map(Vec::len);
    let rec = match group {
        None => json!({"kind": "profile", "picture": jpeg.is_some(), "bytes": bytes}),
        Some(g) => json!({"kind": "group", "action": "picture", "groupId": g, "picture": jpeg.is_some(), "bytes": bytes}),
    };
    recorded(c, rec)
}

/// Records `rec` in the outbox if the connection is live.
fn recorded(c: &SimConnection, rec: serde_json::Value) -> BoxFuture<'_, Result<(), EngineError>> {
    Box::pin(async move {
        if !c.live() {
            return Err(not_connected());
        }
        c.engine.record(c.session, rec);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jpeg_is_framed_and_the_directory_answers() {
        assert_eq!(&SIM_JPEG[..3], &[0xFF, 0xD8, 0xFF]);
        assert_eq!(&SIM_JPEG[SIM_JPEG.len() - 2..], &[0xFF, 0xD9]);
        let mut d = SimDirectory::default();
        d.people.insert("628111".into(), SimContact { phone: "628111".into(), lid: Some("77@lid".into()), addable: false, ..SimContact::default() });
        assert!(!d.addable("628111") && d.addable("628222"));
        assert!(d.on_whatsapp("628222") && !d.on_whatsapp("999123"));
        assert_eq!(d.phone_of("77@lid").as_deref(), Some("628111"));
        assert_eq!(d.phone_of("628222@s.whatsapp.net").as_deref(), Some("628222"));
        assert_eq!(d.lid_of("628222"), lid_for("628222"));
    }
}
