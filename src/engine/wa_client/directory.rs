//! The `whatsapp` engine's contacts, presence, profile and blocking
//! (CONTRACT §12) on whatsapp-rust 0.7: `client.contacts()`,
//! `client.presence()`, `client.profile()`, `client.blocking()`, and the
//! translation of the client's contact and presence events.

use whatsapp_rust::types::events::Event;
use whatsapp_rust::Client;

use super::connection::WaConnection;
use crate::engine::{BoxFuture, EngineError, EngineEvent, NumberCheck};

/// The directory's engine events for one client event (none for events
/// that are not the directory's).
pub(super) async fn translate(_client: Option<&Client>, _event: &Event) -> Vec<EngineEvent> {
    Vec::new()
}

/// [`Connection::check_numbers`](crate::engine::Connection::check_numbers).
pub(super) fn check_numbers<'a>(_c: &'a WaConnection, _phones: &[String]) -> BoxFuture<'a, Result<Vec<NumberCheck>, EngineError>> {
    Box::pin(async { Err(EngineError::Unsupported("number checks")) })
}

/// [`Connection::contact_about`](crate::engine::Connection::contact_about).
pub(super) fn contact_about<'a>(_c: &'a WaConnection, _jid: &str) -> BoxFuture<'a, Result<Option<String>, EngineError>> {
    Box::pin(async { Err(EngineError::Unsupported("about texts")) })
}

/// [`Connection::picture`](crate::engine::Connection::picture).
pub(super) fn picture<'a>(_c: &'a WaConnection, _jid: &str, _full: bool) -> BoxFuture<'a, Result<Option<Vec<u8>>, EngineError>> {
    Box::pin(async { Err(EngineError::Unsupported("pictures")) })
}

/// [`Connection::set_blocked`](crate::engine::Connection::set_blocked).
pub(super) fn set_blocked<'a>(_c: &'a WaConnection, _jid: &str, _blocked: bool) -> BoxFuture<'a, Result<(), EngineError>> {
    Box::pin(async { Err(EngineError::Unsupported("blocking")) })
}

/// [`Connection::set_presence`](crate::engine::Connection::set_presence).
pub(super) fn set_presence<'a>(_c: &'a WaConnection, _available: bool) -> BoxFuture<'a, Result<(), EngineError>> {
    Box::pin(async { Err(EngineError::Unsupported("presence")) })
}

/// [`Connection::subscribe_presence`](crate::engine::Connection::subscribe_presence).
pub(super) fn subscribe_presence<'a>(_c: &'a WaConnection, _jid: &str) -> BoxFuture<'a, Result<(), EngineError>> {
    Box::pin(async { Err(EngineError::Unsupported("presence subscriptions")) })
}

/// [`Connection::set_push_name`](crate::engine::Connection::set_push_name).
pub(super) fn set_push_name<'a>(_c: &'a WaConnection, _name: &str) -> BoxFuture<'a, Result<(), EngineError>> {
    Box::pin(async { Err(EngineError::Unsupported("profile names")) })
}

/// [`Connection::set_about`](crate::engine::Connection::set_about).
pub(super) fn set_about<'a>(_c: &'a WaConnection, _about: &str) -> BoxFuture<'a, Result<(), EngineError>> {
    Box::pin(async { Err(EngineError::Unsupported("about texts")) })
}

/// [`Connection::set_picture`](crate::engine::Connection::set_picture).
pub(super) fn set_picture<'a>(_c: &'a WaConnection, _group: Option<&str>, _jpeg: Option<Vec<u8>>) -> BoxFuture<'a, Result<(), EngineError>> {
    Box::pin(async { Err(EngineError::Unsupported("pictures")) })
}
