//! The sim engine's contacts, presence, profile and blocking (CONTRACT §12,
//! §15): the simulated network's directory (`sim/contacts`), presence
//! (`sim/presence`), and the outbox kinds `lookup`, `presence_subscribe`,
//! `presence`, `profile` and `block`.

use super::SimConnection;
use crate::engine::{BoxFuture, EngineError, NumberCheck};

/// The simulated network's directory for one session (`sim/contacts`):
/// who is on WhatsApp, their names, about, picture, and whether group adds
/// reach them.
#[derive(Default)]
pub(super) struct SimDirectory {}

impl SimDirectory {
    /// Whether a group add of `phone` (digits) goes through (`"addable":
    /// false` in `sim/contacts` makes it `needs_invite`).
    pub(super) fn addable(&self, _phone: &str) -> bool {
        true
    }

    /// Whether `phone` (digits) is on WhatsApp (`999…` are not).
    pub(super) fn on_whatsapp(&self, phone: &str) -> bool {
        !phone.starts_with("999")
    }
}

/// [`Connection::check_numbers`](crate::engine::Connection::check_numbers).
pub(super) fn check_numbers<'a>(_c: &'a SimConnection, _phones: &[String]) -> BoxFuture<'a, Result<Vec<NumberCheck>, EngineError>> {
    Box::pin(async { Err(EngineError::Unsupported("number checks")) })
}

/// [`Connection::contact_about`](crate::engine::Connection::contact_about).
pub(super) fn contact_about<'a>(_c: &'a SimConnection, _jid: &str) -> BoxFuture<'a, Result<Option<String>, EngineError>> {
    Box::pin(async { Err(EngineError::Unsupported("about texts")) })
}

/// [`Connection::picture`](crate::engine::Connection::picture).
pub(super) fn picture<'a>(_c: &'a SimConnection, _jid: &str, _full: bool) -> BoxFuture<'a, Result<Option<Vec<u8>>, EngineError>> {
    Box::pin(async { Err(EngineError::Unsupported("pictures")) })
}

/// [`Connection::set_blocked`](crate::engine::Connection::set_blocked).
pub(super) fn set_blocked<'a>(_c: &'a SimConnection, _jid: &str, _blocked: bool) -> BoxFuture<'a, Result<(), EngineError>> {
    Box::pin(async { Err(EngineError::Unsupported("blocking")) })
}

/// [`Connection::set_presence`](crate::engine::Connection::set_presence).
pub(super) fn set_presence<'a>(_c: &'a SimConnection, _available: bool) -> BoxFuture<'a, Result<(), EngineError>> {
    Box::pin(async { Err(EngineError::Unsupported("presence")) })
}

/// [`Connection::subscribe_presence`](crate::engine::Connection::subscribe_presence).
pub(super) fn subscribe_presence<'a>(_c: &'a SimConnection, _jid: &str) -> BoxFuture<'a, Result<(), EngineError>> {
    Box::pin(async { Err(EngineError::Unsupported("presence subscriptions")) })
}

/// [`Connection::set_push_name`](crate::engine::Connection::set_push_name).
pub(super) fn set_push_name<'a>(_c: &'a SimConnection, _name: &str) -> BoxFuture<'a, Result<(), EngineError>> {
    Box::pin(async { Err(EngineError::Unsupported("profile names")) })
}

/// [`Connection::set_about`](crate::engine::Connection::set_about).
pub(super) fn set_about<'a>(_c: &'a SimConnection, _about: &str) -> BoxFuture<'a, Result<(), EngineError>> {
    Box::pin(async { Err(EngineError::Unsupported("about texts")) })
}

/// [`Connection::set_picture`](crate::engine::Connection::set_picture).
pub(super) fn set_picture<'a>(_c: &'a SimConnection, _group: Option<&str>, _jpeg: Option<Vec<u8>>) -> BoxFuture<'a, Result<(), EngineError>> {
    Box::pin(async { Err(EngineError::Unsupported("pictures")) })
}
