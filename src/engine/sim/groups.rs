//! The sim engine's groups (CONTRACT §13, §15): groups held by the
//! simulated network, changes by others (`sim/group-event`), and the outbox
//! kind `group`.

use super::SimConnection;
use crate::engine::{BoxFuture, EngineError, GroupChanges, GroupInfo, JoinOutcome, JoinRequest, ParticipantAction, ParticipantOutcome};

/// The groups a session's number is in, as the simulated network holds them.
#[derive(Default)]
pub(super) struct SimGroups {}

/// [`Connection::group_create`](crate::engine::Connection::group_create).
pub(super) fn group_create<'a>(_c: &'a SimConnection, _subject: &str, _participants: &[String], _description: Option<&str>) -> BoxFuture<'a, Result<(GroupInfo, Vec<ParticipantOutcome>), EngineError>> {
    Box::pin(async { Err(EngineError::Unsupported("groups")) })
}

/// [`Connection::group_info`](crate::engine::Connection::group_info).
pub(super) fn group_info<'a>(_c: &'a SimConnection, _group: &str) -> BoxFuture<'a, Result<GroupInfo, EngineError>> {
    Box::pin(async { Err(EngineError::Unsupported("groups")) })
}

/// [`Connection::groups_joined`](crate::engine::Connection::groups_joined).
pub(super) fn groups_joined<'a>(_c: &'a SimConnection) -> BoxFuture<'a, Result<Vec<GroupInfo>, EngineError>> {
    Box::pin(async { Err(EngineError::Unsupported("groups")) })
}

/// [`Connection::group_participants`](crate::engine::Connection::group_participants).
pub(super) fn group_participants<'a>(_c: &'a SimConnection, _group: &str, _action: ParticipantAction, _participants: &[String], _invite: bool) -> BoxFuture<'a, Result<Vec<ParticipantOutcome>, EngineError>> {
    Box::pin(async { Err(EngineError::Unsupported("groups")) })
}

/// [`Connection::group_update`](crate::engine::Connection::group_update).
pub(super) fn group_update<'a>(_c: &'a SimConnection, _group: &str, _changes: &GroupChanges) -> BoxFuture<'a, Result<(), EngineError>> {
    Box::pin(async { Err(EngineError::Unsupported("groups")) })
}

/// [`Connection::group_leave`](crate::engine::Connection::group_leave).
pub(super) fn group_leave<'a>(_c: &'a SimConnection, _group: &str) -> BoxFuture<'a, Result<(), EngineError>> {
    Box::pin(async { Err(EngineError::Unsupported("groups")) })
}

/// [`Connection::group_invite`](crate::engine::Connection::group_invite).
pub(super) fn group_invite<'a>(_c: &'a SimConnection, _group: &str, _revoke: bool) -> BoxFuture<'a, Result<String, EngineError>> {
    Box::pin(async { Err(EngineError::Unsupported("group invites")) })
}

/// [`Connection::group_join`](crate::engine::Connection::group_join).
pub(super) fn group_join<'a>(_c: &'a SimConnection, _code: &str) -> BoxFuture<'a, Result<JoinOutcome, EngineError>> {
    Box::pin(async { Err(EngineError::Unsupported("group invites")) })
}

/// [`Connection::group_invite_preview`](crate::engine::Connection::group_invite_preview).
pub(super) fn group_invite_preview<'a>(_c: &'a SimConnection, _code: &str) -> BoxFuture<'a, Result<GroupInfo, EngineError>> {
    Box::pin(async { Err(EngineError::Unsupported("group invites")) })
}

/// [`Connection::group_requests`](crate::engine::Connection::group_requests).
pub(super) fn group_requests<'a>(_c: &'a SimConnection, _group: &str) -> BoxFuture<'a, Result<Vec<JoinRequest>, EngineError>> {
    Box::pin(async { Err(EngineError::Unsupported("membership requests")) })
}

/// [`Connection::group_requests_action`](crate::engine::Connection::group_requests_action).
pub(super) fn group_requests_action<'a>(_c: &'a SimConnection, _group: &str, _approve: bool, _participants: &[String]) -> BoxFuture<'a, Result<Vec<ParticipantOutcome>, EngineError>> {
    Box::pin(async { Err(EngineError::Unsupported("membership requests")) })
}
