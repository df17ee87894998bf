//! The `whatsapp` engine's contacts, presence, profile and blocking
//! (CONTRACT §12) on whatsapp-rust 0.7: `client.contacts()`,
//! `client.presence()`, `client.profile()`, `client.blocking()`. The
//! translation of the client's contact and presence events is in
//! `directory_events`.
//!
//! Every call is one bounded network operation ([`NET_TIMEOUT`]): an IQ the
//! server never answers fails the call instead of holding an HTTP request.
//! The crate's failures map onto [`EngineError`] in [`directory_error`].

use std::error::Error as StdError;
use std::future::Future;
use std::time::Duration;

use tokio::time::timeout;
use whatsapp_rust::http::HttpRequest;
use whatsapp_rust::wacore_binary::JidExt;
use whatsapp_rust::{BlockingError, ContactError, ErrorChainExt, GroupError, Jid, PresenceError, ProfileError};

use super::connection::WaConnection;
use super::send::parse_jid;
use crate::engine::{BoxFuture, EngineError, NumberCheck};

pub(super) use super::directory_events::translate;

/// Upper bound for one directory call's network round trip (an IQ, or the
/// picture download).
pub(super) const NET_TIMEOUT: Duration = Duration::from_secs(20);

/// Maps a failed directory call: not connected or unanswered → `Connect`;
/// WhatsApp's 404 → `NotFound`; any other code WhatsApp gave → `Refused`.
pub(super) fn directory_error(what: &str, e: &(dyn StdError + 'static)) -> EngineError {
    if e.is_transport_unavailable() || e.is_timeout() {
        return EngineError::Connect(format!("{what}: not connected to WhatsApp ({e})"));
    }
    if let Some(r) = e.server_rejection() {
        let text = if r.text.is_empty() { "no reason given" } else { r.text };
        if r.code == 404 {
            return EngineError::NotFound(format!("{what}: WhatsApp knows no such thing ({text})"));
        }
        return EngineError::Refused { code: r.code.to_string(), message: format!("{what}: {text}") };
    }
    EngineError::Other(format!("{what}: {e}"))
}

/// Runs `call` bounded by [`NET_TIMEOUT`], mapping its error with `map`.
async fn bounded<T, E>(
    what: &str,
    call: impl Future<Output = Result<T, E>>,
    map: impl FnOnce(&str, E) -> EngineError,
) -> Result<T, EngineError> {
    match timeout(NET_TIMEOUT, call).await {
        Err(_) => Err(EngineError::Connect(format!("{what}: WhatsApp did not answer within {NET_TIMEOUT:?}"))),
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(map(what, e)),
    }
}

fn contact_error(what: &str, e: ContactError) -> EngineError {
    match e {
        ContactError::InvalidJid(m) => EngineError::Invalid(format!("{what}: {m}")),
        other => directory_error(what, &other),
    }
}

fn blocking_error(what: &str, e: BlockingError) -> EngineError {
    match e {
        // The crate needs the contact's LID and phone number; neither is known.
        BlockingError::InvalidJid(m) => EngineError::NotFound(format!("{what}: {m}")),
        other => directory_error(what, &other),
    }
}

fn presence_error(what: &str, e: PresenceError) -> EngineError {
    match e {
        PresenceError::PushNameEmpty => EngineError::State(format!("{what}: the profile has no name yet; set one first")),
        other => directory_error(what, &other),
    }
}

fn profile_error(what: &str, e: ProfileError) -> EngineError {
    match e {
        ProfileError::InvalidArgument(m) => EngineError::Invalid(format!("{what}: {m}")),
        other => directory_error(what, &other),
    }
}

fn group_error(what: &str, e: GroupError) -> EngineError {
    directory_error(what, &e)
}

impl WaConnection {
    /// Fails with `State` when no call can go out now.
    fn ready(&self) -> Result<(), EngineError> {
        match self.not_ready() {
            Some(why) => Err(EngineError::State(why)),
            None => Ok(()),
        }
    }

    /// A person's address (phone JID or `@lid`), strictly.
    fn person(&self, jid: &str) -> Result<Jid, EngineError> {
        let j = parse_jid(jid).map_err(EngineError::Invalid)?;
        if j.is_pn() || j.is_lid() {
            Ok(j.to_non_ad())
        } else {
            Err(EngineError::Invalid(format!("not a person's address: {jid:?}")))
        }
    }

    async fn numbers(&self, phones: &[String]) -> Result<Vec<NumberCheck>, EngineError> {
        self.ready()?;
        if let Some(bad) = phones.iter().find(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
            return Err(EngineError::Invalid(format!("not a phone number (digits): {bad:?}")));
        }
        if phones.is_empty() {
            return Ok(Vec::new());
        }
        let jids: Vec<Jid> = phones.iter().map(|p| Jid::pn(p.as_str())).collect();
        let contacts = self.client.contacts();
        let results = bounded("checking numbers", contacts.is_on_whatsapp(&jids), contact_error).await?;
        Ok(phones
            .iter()
            .map(|phone| {
                let answer = results.iter().find(|r| {
                    (r.jid.is_pn() && r.jid.user == *phone) || r.pn_jid.as_ref().is_some_and(|pn| pn.user == *phone)
                });
                match answer {
                    Some(r) if r.is_registered => NumberCheck {
                        phone: phone.clone(),
                        on_whatsapp: true,
                        jid: Some(Jid::pn(phone.as_str()).to_string()),
                        lid: r.lid.as_ref().map(|l| l.to_non_ad_string()).or_else(|| {
                            r.jid.is_lid().then(|| r.jid.to_non_ad_string())
                        }),
                        is_business: r.is_business,
                    },
                    _ => NumberCheck { phone: phone.clone(), on_whatsapp: false, jid: None, lid: None, is_business: false },
                }
            })
            .collect())
    }

    async fn about(&self, jid: &str) -> Result<Option<String>, EngineError> {
        let jid = self.person(jid)?;
        self.ready()?;
        let contacts = self.client.contacts();
        let info = bounded("fetching the about text", contacts.get_user_info(std::slice::from_ref(&jid)), contact_error)
            .await?;
        let mine = info.get(&jid).or_else(|| info.values().find(|i| i.jid.user == jid.user)).or(info.values().next());
        Ok(mine.and_then(|i| i.status.clone()).filter(|s| !s.is_empty()))
    }

    async fn fetch_picture(&self, jid: &str, full: bool) -> Result<Option<Vec<u8>>, EngineError> {
        let jid = parse_jid(jid).map_err(EngineError::Invalid)?.to_non_ad();
        if !(jid.is_pn() || jid.is_lid() || jid.is_group()) {
            return Err(EngineError::Invalid(format!("no pictures for {jid}")));
        }
        self.ready()?;
        let contacts = self.client.contacts();
        let what = "fetching the picture";
        let Some(pic) = bounded(what, contacts.get_profile_picture(&jid, !full), contact_error).await? else {
            return Ok(None);
        };
        if pic.url.is_empty() {
            return Ok(None);
        }
        let http = self.client.http_client.clone();
        let response = match timeout(NET_TIMEOUT, http.execute(HttpRequest::get(pic.url.clone()))).await {
            Err(_) => return Err(EngineError::Connect(format!("{what}: the download did not finish within {NET_TIMEOUT:?}"))),
            Ok(Err(e)) => return Err(EngineError::Connect(format!("{what}: downloading it failed: {e:#}"))),
            Ok(Ok(r)) => r,
        };
        match response.status_code {
            200 => Ok(Some(response.body)),
            401 | 403 | 404 | 410 => Ok(None),
            code => Err(EngineError::Other(format!("{what}: the picture host answered {code}"))),
        }
    }

    async fn block(&self, jid: &str, blocked: bool) -> Result<(), EngineError> {
        let jid = self.person(jid)?;
        self.ready()?;
        let what = if blocked { "blocking the contact" } else { "unblocking the contact" };
        // The crate blocks by LID and phone number together: learn the pair first.
        let known = matches!(self.client.get_lid_pn_entry(&jid).await, Ok(Some(_)));
        if !known && (blocked || jid.is_pn()) {
            let contacts = self.client.contacts();
            let found = bounded(what, contacts.is_on_whatsapp(std::slice::from_ref(&jid)), contact_error).await?;
            if jid.is_pn() && !found.iter().any(|r| r.is_registered) {
                return Err(EngineError::NotFound(format!("{what}: {jid} is not on WhatsApp")));
            }
        }
        let blocking = self.client.blocking();
        if blocked {
            bounded(what, blocking.block(&jid), blocking_error).await
        } else {
            bounded(what, blocking.unblock(&jid), blocking_error).await
        }
    }

    async fn own_presence(&self, available: bool) -> Result<(), EngineError> {
        self.ready()?;
        let presence = self.client.presence();
        if available {
            bounded("setting the presence", presence.set_available(), presence_error).await
        } else {
            bounded("setting the presence", presence.set_unavailable(), presence_error).await
        }
    }

    async fn subscribe(&self, jid: &str) -> Result<(), EngineError> {
        let jid = self.person(jid)?;
        self.ready()?;
        bounded("subscribing to the presence", self.client.presence().subscribe(jid), presence_error).await
    }

    async fn push_name(&self, name: &str) -> Result<(), EngineError> {
        if name.trim().is_empty() {
            return Err(EngineError::Invalid("the profile name is empty".into()));
        }
        self.ready()?;
        bounded("setting the profile name", self.client.profile().set_push_name(name), profile_error).await
    }

    async fn status_text(&self, about: &str) -> Result<(), EngineError> {
        self.ready()?;
        bounded("setting the about text", self.client.profile().set_status_text(about), profile_error).await
    }

    async fn profile_picture(&self, group: Option<&str>, jpeg: Option<Vec<u8>>) -> Result<(), EngineError> {
        if jpeg.as_ref().is_some_and(Vec::is_empty) {
            return Err(EngineError::Invalid("the picture is empty".into()));
        }
        let group = match group {
            None => None,
            Some(g) => {
                let j = parse_jid(g).map_err(EngineError::Invalid)?;
                if !j.is_group() {
                    return Err(EngineError::Invalid(format!("not a group: {g:?}")));
                }
                Some(j)
            }
        };
        self.ready()?;
        let what = "setting the picture";
        match (group, jpeg) {
            (None, Some(jpeg)) => bounded(what, self.client.profile().set_profile_picture(jpeg), profile_error).await?,
            (None, None) => bounded(what, self.client.profile().remove_profile_picture(), profile_error).await?,
            (Some(g), Some(jpeg)) => bounded(what, self.client.groups().set_profile_picture(g, jpeg), group_error).await?,
            (Some(g), None) => bounded(what, self.client.groups().remove_profile_picture(g), group_error).await?,
        };
        Ok(())
    }
}

/// [`Connection::check_numbers`](crate::engine::Connection::check_numbers).
pub(super) fn check_numbers<'a>(c: &'a WaConnection, phones: &[String]) -> BoxFuture<'a, Result<Vec<NumberCheck>, EngineError>> {
    let phones = phones.to_vec();
    Box::pin(async move { c.numbers(&phones).await })
}

/// [`Connection::contact_about`](crate::engine::Connection::contact_about).
pub(super) fn contact_about<'a>(c: &'a WaConnection, jid: &str) -> BoxFuture<'a, Result<Option<String>, EngineError>> {
    let jid = jid.to_string();
    Box::pin(async move { c.about(&jid).await })
}

/// [`Connection::picture`](crate::engine::Connection::picture).
pub(super) fn picture<'a>(c: &'a WaConnection, jid: &str, full: bool) -> BoxFuture<'a, Result<Option<Vec<u8>>, EngineError>> {
    let jid = jid.to_string();
    Box::pin(async move { c.fetch_picture(&jid, full).await })
}

/// [`Connection::set_blocked`](crate::engine::Connection::set_blocked).
pub(super) fn set_blocked<'a>(c: &'a WaConnection, jid: &str, blocked: bool) -> BoxFuture<'a, Result<(), EngineError>> {
    let jid = jid.to_string();
    Box::pin(async move { c.block(&jid, blocked).await })
}

/// [`Connection::set_presence`](crate::engine::Connection::set_presence).
pub(super) fn set_presence<'a>(c: &'a WaConnection, available: bool) -> BoxFuture<'a, Result<(), EngineError>> {
    Box::pin(c.own_presence(available))
}

/// [`Connection::subscribe_presence`](crate::engine::Connection::subscribe_presence).
pub(super) fn subscribe_presence<'a>(c: &'a WaConnection, jid: &str) -> BoxFuture<'a, Result<(), EngineError>> {
    let jid = jid.to_string();
    Box::pin(async move { c.subscribe(&jid).await })
}

/// [`Connection::set_push_name`](crate::engine::Connection::set_push_name).
pub(super) fn set_push_name<'a>(c: &'a WaConnection, name: &str) -> BoxFuture<'a, Result<(), EngineError>> {
    let name = name.to_string();
    Box::pin(async move { c.push_name(&name).await })
}

/// [`Connection::set_about`](crate::engine::Connection::set_about).
pub(super) fn set_about<'a>(c: &'a WaConnection, about: &str) -> BoxFuture<'a, Result<(), EngineError>> {
    let about = about.to_string();
    Box::pin(async move { c.status_text(&about).await })
}

/// [`Connection::set_picture`](crate::engine::Connection::set_picture).
pub(super) fn set_picture<'a>(c: &'a WaConnection, group: Option<&str>, jpeg: Option<Vec<u8>>) -> BoxFuture<'a, Result<(), EngineError>> {
    let group = group.map(str::to_string);
    Box::pin(async move { c.profile_picture(group.as_deref(), jpeg).await })
}

#[cfg(test)]
mod tests {
    use whatsapp_rust::IqError;

    use super::*;

    fn server(code: u16, text: &str) -> IqError {
        IqError::ServerError { code, text: text.into(), error_type: None, backoff: None }
    }

    #[test]
    fn failures_map_to_the_gateways() {
        let e = ContactError::Iq(IqError::NotConnected);
        assert!(matches!(contact_error("x", e), EngineError::Connect(_)));
        let e = ContactError::Iq(IqError::Timeout);
        assert!(matches!(contact_error("x", e), EngineError::Connect(_)));
        let e = ContactError::Iq(server(404, "item-not-found"));
        assert!(matches!(contact_error("x", e), EngineError::NotFound(_)));
        let e = ContactError::Iq(server(403, "forbidden"));
        assert_eq!(
            contact_error("x", e),
            EngineError::Refused { code: "403".into(), message: "x: forbidden".into() }
        );
        let e = BlockingError::InvalidJid("no mapping".into());
        assert!(matches!(blocking_error("x", e), EngineError::NotFound(_)));
        assert!(matches!(presence_error("x", PresenceError::PushNameEmpty), EngineError::State(_)));
        let e = ProfileError::InvalidArgument("empty".into());
        assert!(matches!(profile_error("x", e), EngineError::Invalid(_)));
        let e = ProfileError::Iq(server(500, ""));
        assert_eq!(
            profile_error("x", e),
            EngineError::Refused { code: "500".into(), message: "x: no reason given".into() }
        );
    }
}
