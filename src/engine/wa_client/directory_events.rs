//! The directory's share of the client's events (CONTRACT §12): presence of
//! subscribed contacts, chat states, picture and profile changes, names from
//! the address-book sync and from messages. Group notifications are
//! `groups`'s.
//!
//! [`translate_pure`] is the rule (what each event says, with the addresses
//! the event itself carries); [`translate`] then fills the other form of the
//! person's address (`@lid` for a phone JID and the reverse) from the
//! client's LID↔phone cache, when it knows it.

use whatsapp_rust::types::events::Event;
use whatsapp_rust::types::presence::{ChatPresence, ChatPresenceMedia};
use whatsapp_rust::{Client, Jid};

use super::inbound::cached_alternative;
use super::translate::bare;
use crate::engine::directory::{PersonIds, PresenceStatus};
use crate::engine::{ContactUpdate, EngineEvent, PresenceUpdate};

/// The directory's engine events for one client event (none for events
/// that are not the directory's).
pub(super) async fn translate(client: Option<&Client>, event: &Event) -> Vec<EngineEvent> {
    let Some(mut ev) = translate_pure(event) else { return Vec::new() };
    if let Some(client) = client {
        let person = match &mut ev {
            EngineEvent::Presence(p) => Some(&mut p.person),
            EngineEvent::Contact(c) => Some(&mut c.person),
            _ => None,
        };
        if let Some(person) = person {
            complete(client, person).await;
        }
    }
    vec![ev]
}

/// Fills the missing half of `person` from the client's cache.
async fn complete(client: &Client, person: &mut PersonIds) {
    match (&person.jid, &person.lid) {
        (Some(jid), None) => person.lid = cached_alternative(client, jid).await,
        (None, Some(lid)) => person.jid = cached_alternative(client, lid).await,
        _ => {}
    }
}

/// A person's ids from an address and, maybe, its other form; `None` for
/// addresses that are not a person's (groups, broadcasts, newsletters).
fn person(primary: &Jid, alt: Option<&Jid>) -> Option<PersonIds> {
    let mut p = PersonIds::default();
    for j in std::iter::once(primary).chain(alt) {
        if j.is_lid() && p.lid.is_none() {
            p.lid = Some(bare(j));
        } else if j.is_pn() && p.jid.is_none() {
            p.jid = Some(bare(j));
        }
    }
    (primary.is_pn() || primary.is_lid()).then_some(p)
}

/// A person named by address strings (the app-state sync's), `None` when
/// none of them is a person's.
fn person_of_strings(primary: &Jid, others: &[Option<&str>]) -> Option<PersonIds> {
    let mut p = person(primary, None)?;
    for j in others.iter().flatten().filter_map(|s| s.parse::<Jid>().ok()) {
        if j.is_lid() && p.lid.is_none() {
            p.lid = Some(bare(&j));
        } else if j.is_pn() && p.jid.is_none() {
            p.jid = Some(bare(&j));
        }
    }
    Some(p)
}

fn contact(person: PersonIds) -> ContactUpdate {
    ContactUpdate { person, ..ContactUpdate::default() }
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

/// What one client event says for the directory, from the event alone.
pub(super) fn translate_pure(event: &Event) -> Option<EngineEvent> {
    match event {
        Event::Presence(p) => Some(EngineEvent::Presence(Box::new(PresenceUpdate {
            person: person(&p.from, None)?,
            status: if p.unavailable { PresenceStatus::Unavailable } else { PresenceStatus::Available },
            chat: None,
            last_seen: p.last_seen.map(|t| t.timestamp_millis()),
        }))),
        Event::ChatPresence(c) => {
            if c.source.is_from_me {
                return None;
            }
            let status = match (c.state, c.media) {
                (ChatPresence::Composing, ChatPresenceMedia::Audio) => PresenceStatus::Recording,
                (ChatPresence::Composing, _) => PresenceStatus::Composing,
                (ChatPresence::Paused, _) => PresenceStatus::Paused,
            };
            Some(EngineEvent::Presence(Box::new(PresenceUpdate {
                person: person(&c.source.sender, c.source.sender_alt.as_ref())?,
                status,
                chat: Some(bare(&c.source.chat)),
                last_seen: None,
            })))
        }
        // A person's picture was set, changed or removed (a group's is `groups`'s).
        Event::PictureUpdate(p) => {
            Some(EngineEvent::Contact(Box::new(ContactUpdate { picture_changed: true, ..contact(person(&p.jid, None)?) })))
        }
        // "This contact's profile changed": WhatsApp Web refreshes the
        // picture on it, so the gateway's cached picture is stale.
        Event::ContactUpdated(u) => {
            Some(EngineEvent::Contact(Box::new(ContactUpdate { picture_changed: true, ..contact(person(&u.jid, None)?) })))
        }
        // The phone's address book (app-state sync).
        Event::ContactUpdate(u) => {
            let a = &u.action;
            let who = person_of_strings(&u.jid, &[a.pn_jid.as_deref(), a.lid_jid.as_deref()])?;
            let name = non_empty(a.full_name.as_deref()).or_else(|| non_empty(a.first_name.as_deref()));
            Some(EngineEvent::Contact(Box::new(ContactUpdate { name: Some(name?), ..contact(who) })))
        }
        // A contact's own name, seen on a message.
        Event::PushNameUpdate(u) => {
            let push_name = non_empty(Some(&u.new_push_name))?;
            let who = person(&u.jid, u.message.source.sender_alt.as_ref())?;
            Some(EngineEvent::Contact(Box::new(ContactUpdate { push_name: Some(push_name), ..contact(who) })))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use whatsapp_rust::chrono::DateTime;
    use whatsapp_rust::types::events::{
        ChatPresenceUpdate, ContactUpdate as WaContactUpdate, ContactUpdated, PictureUpdate, PresenceUpdate as WaPresence,
        PushNameUpdate, UserAboutUpdate,
    };
    use whatsapp_rust::types::message::MessageSource;
    use whatsapp_rust::waproto::whatsapp as wa;

    use super::super::translate_tests::{info, jid, T};
    use super::*;

    fn at() -> DateTime<whatsapp_rust::chrono::Utc> {
        DateTime::from_timestamp(T, 0).expect("a time")
    }

    fn presence_of(e: Option<EngineEvent>) -> PresenceUpdate {
        match e {
            Some(EngineEvent::Presence(p)) => *p,
            other => panic!("not a presence: {other:?}"),
        }
    }

    fn contact_of(e: Option<EngineEvent>) -> ContactUpdate {
        match e {
            Some(EngineEvent::Contact(c)) => *c,
            other => panic!("not a contact update: {other:?}"),
        }
    }

    #[test]
    fn presence_is_available_or_unavailable_with_last_seen() {
        let on = Event::Presence(WaPresence::builder().from(jid("62811:3@s.whatsapp.net")).unavailable(false).build());
        let p = presence_of(translate_pure(&on));
        assert_eq!(p.person, PersonIds { jid: Some("62811@s.whatsapp.net".into()), lid: None });
        assert_eq!((p.status, p.chat, p.last_seen), (PresenceStatus::Available, None, None));
        let off = Event::Presence(
            WaPresence::builder().from(jid("100200@lid")).unavailable(true).last_seen(at()).build(),
        );
        let p = presence_of(translate_pure(&off));
        assert_eq!(p.person, PersonIds { jid: None, lid: Some("100200@lid".into()) });
        assert_eq!((p.status, p.last_seen), (PresenceStatus::Unavailable, Some(T * 1000)));
        let group = Event::Presence(WaPresence::builder().from(jid("120363@g.us")).unavailable(false).build());
        assert_eq!(translate_pure(&group), None, "not a person");
    }

    fn chat_state(state: ChatPresence, media: ChatPresenceMedia, from_me: bool) -> Event {
        let source = MessageSource {
            chat: jid("120363000@g.us"),
            sender: jid("100200:2@lid"),
            sender_alt: Some(jid("62811@s.whatsapp.net")),
            is_from_me: from_me,
            is_group: true,
            ..Default::default()
        };
        Event::ChatPresence(ChatPresenceUpdate::builder().source(source).state(state).media(media).build())
    }

    #[test]
    fn chat_states_name_the_chat_and_both_addresses() {
        let cases = [
            (ChatPresence::Composing, ChatPresenceMedia::Text, PresenceStatus::Composing),
            (ChatPresence::Composing, ChatPresenceMedia::Audio, PresenceStatus::Recording),
            (ChatPresence::Paused, ChatPresenceMedia::Text, PresenceStatus::Paused),
        ];
        for (state, media, want) in cases {
            let p = presence_of(translate_pure(&chat_state(state, media, false)));
            assert_eq!(p.status, want);
            assert_eq!(p.chat.as_deref(), Some("120363000@g.us"));
            assert_eq!(
                p.person,
                PersonIds { jid: Some("62811@s.whatsapp.net".into()), lid: Some("100200@lid".into()) }
            );
        }
        assert_eq!(translate_pure(&chat_state(ChatPresence::Paused, ChatPresenceMedia::Text, true)), None);
    }

    #[test]
    fn picture_and_profile_changes_of_people_mark_the_picture_changed() {
        let pic = |j: &str| {
            Event::PictureUpdate(PictureUpdate::builder().jid(jid(j)).timestamp(at()).removed(false).build())
        };
        let c = contact_of(translate_pure(&pic("62811@s.whatsapp.net")));
        assert!(c.picture_changed);
        assert_eq!(c.person.jid.as_deref(), Some("62811@s.whatsapp.net"));
        assert_eq!((c.name, c.push_name, c.blocked), (None, None, None));
        assert_eq!(translate_pure(&pic("120363000@g.us")), None, "a group's picture is the groups part's");
        let updated = Event::ContactUpdated(ContactUpdated::builder().jid(jid("100200@lid")).timestamp(at()).build());
        let c = contact_of(translate_pure(&updated));
        assert!(c.picture_changed);
        assert_eq!(c.person.lid.as_deref(), Some("100200@lid"));
    }

    fn book(j: &str, full: Option<&str>, first: Option<&str>, lid: Option<&str>) -> Event {
        let action = wa::sync_action_value::ContactAction {
            full_name: full.map(str::to_string),
            first_name: first.map(str::to_string),
            lid_jid: lid.map(str::to_string),
            ..Default::default()
        };
        Event::ContactUpdate(
            WaContactUpdate::builder().jid(jid(j)).timestamp(at()).action(Box::new(action)).from_full_sync(false).build(),
        )
    }

    #[test]
    fn the_address_book_gives_names() {
        let c = contact_of(translate_pure(&book("62811@s.whatsapp.net", Some("Budi Santoso"), Some("Budi"), Some("100200@lid"))));
        assert_eq!(c.name.as_deref(), Some("Budi Santoso"));
        assert_eq!(
            c.person,
            PersonIds { jid: Some("62811@s.whatsapp.net".into()), lid: Some("100200@lid".into()) }
        );
        assert!(!c.picture_changed);
        let c = contact_of(translate_pure(&book("62811@s.whatsapp.net", Some("  "), Some("Budi"), None)));
        assert_eq!(c.name.as_deref(), Some("Budi"));
        assert_eq!(translate_pure(&book("62811@s.whatsapp.net", None, None, None)), None, "nothing to say");
    }

    #[test]
    fn a_push_name_seen_on_a_message_is_the_contacts_own_name() {
        let mut i = info("3EB0A", "100200@lid", "100200:5@lid", false);
        i.source.sender_alt = Some(jid("62811@s.whatsapp.net"));
        let ev = |name: &str| {
            Event::PushNameUpdate(
                PushNameUpdate::builder()
                    .jid(jid("100200@lid"))
                    .message(Box::new(i.clone()))
                    .old_push_name("Old".into())
                    .new_push_name(name.into())
                    .build(),
            )
        };
        let c = contact_of(translate_pure(&ev("Ana")));
        assert_eq!(c.push_name.as_deref(), Some("Ana"));
        assert_eq!(c.person, PersonIds { jid: Some("62811@s.whatsapp.net".into()), lid: Some("100200@lid".into()) });
        assert_eq!(translate_pure(&ev("")), None);
    }

    #[tokio::test]
    async fn without_a_client_the_event_goes_as_it_came() {
        let on = Event::Presence(WaPresence::builder().from(jid("62811@s.whatsapp.net")).unavailable(false).build());
        let out = translate(None, &on).await;
        assert_eq!(out.len(), 1);
        // An about text change has no field in a contact update (the about is fetched when asked).
        let about = UserAboutUpdate::builder().jid(jid("62811@s.whatsapp.net")).status("hi".into()).timestamp(at()).build();
        assert_eq!(translate(None, &Event::UserAboutUpdate(about)).await, vec![]);
    }
}
