//! The directory half of the engine boundary (CONTRACT §12 contacts,
//! presence, profile; §13 groups): the values that cross it.
//!
//! In: the calls of [`super::Connection`] named `check_numbers`,
//! `contact_*`, `set_*`, `subscribe_presence` and `group_*` — each one
//! network round trip that the API layer has already authorized, budgeted
//! (number checks and participant adds spend the lookup budget *before*
//! the engine is asked) and validated (JIDs normalized, sizes checked).
//! Out: [`EngineEvent::Contact`](super::EngineEvent::Contact),
//! [`EngineEvent::Presence`](super::EngineEvent::Presence) and
//! [`EngineEvent::Group`](super::EngineEvent::Group), which the messaging
//! layer commits in order with the other events of the session (held while
//! writes are refused, like messages), and the `directory` module turns into
//! stored contacts and groups plus their events.
//!
//! Addresses are JID strings as WhatsApp uses them (`<digits>@s.whatsapp.net`,
//! `<digits>@lid`, `<id>@g.us`). Engines say what they know: where a person
//! has both a phone JID and a `@lid`, both are given ([`PersonIds`]).

/// A person as the engine knows them: a phone JID, a `@lid`, or both.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PersonIds {
    /// `<digits>@s.whatsapp.net`.
    pub jid: Option<String>,
    /// `<digits>@lid`.
    pub lid: Option<String>,
}

impl PersonIds {
    /// A person known by one address (phone JID or `@lid`, by its server).
    pub fn from_address(address: &str) -> PersonIds {
        if address.ends_with("@lid") {
            PersonIds { jid: None, lid: Some(address.to_string()) }
        } else {
            PersonIds { jid: Some(address.to_string()), lid: None }
        }
    }

    /// The address to use on the wire: the phone JID, else the `@lid`.
    pub fn address(&self) -> Option<&str> {
        self.jid.as_deref().or(self.lid.as_deref())
    }
}

/// The network's answer for one number (`contacts/check`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NumberCheck {
    /// The digits asked about.
    pub phone: String,
    pub on_whatsapp: bool,
    pub jid: Option<String>,
    pub lid: Option<String>,
    pub is_business: bool,
}

/// A participant's standing in a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum GroupRole {
    Member,
    Admin,
    SuperAdmin,
}

impl GroupRole {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupRole::Member => "member",
            GroupRole::Admin => "admin",
            GroupRole::SuperAdmin => "superadmin",
        }
    }
}

/// One participant of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMember {
    pub person: PersonIds,
    pub role: GroupRole,
}

/// A group as WhatsApp describes it (metadata query, creation, a join).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInfo {
    /// `<id>@g.us`.
    pub id: String,
    pub subject: String,
    pub description: Option<String>,
    /// The creator's JID.
    pub owner: Option<String>,
    /// Unix ms.
    pub created_at: Option<i64>,
    pub participants: Vec<GroupMember>,
    /// Only admins send.
    pub announce: bool,
    /// Only admins edit the group's info.
    pub locked: bool,
    /// 0, 86400, 604800 or 7776000.
    pub ephemeral_seconds: u32,
    /// New members wait for an admin's approval.
    pub membership_approval: bool,
}

/// What `participants` does to the people it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParticipantAction {
    Add,
    Remove,
    Promote,
    Demote,
}

impl ParticipantAction {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ParticipantAction::Add => "add",
            ParticipantAction::Remove => "remove",
            ParticipantAction::Promote => "promote",
            ParticipantAction::Demote => "demote",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<ParticipantAction> {
        [ParticipantAction::Add, ParticipantAction::Remove, ParticipantAction::Promote, ParticipantAction::Demote]
            .into_iter()
            .find(|a| a.as_str() == s)
    }
}

/// How one participant of a change fared (CONTRACT §13).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParticipantStatus {
    Ok,
    /// Privacy refused the add; an invite can be sent instead.
    NeedsInvite,
    NotOnWhatsapp,
    NotInGroup,
    /// Refused for another reason (WhatsApp's code beside it).
    Failed,
}

impl ParticipantStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ParticipantStatus::Ok => "ok",
            ParticipantStatus::NeedsInvite => "needs_invite",
            ParticipantStatus::NotOnWhatsapp => "not_on_whatsapp",
            ParticipantStatus::NotInGroup => "not_in_group",
            ParticipantStatus::Failed => "failed",
        }
    }
}

/// One participant's result, for the address the gateway asked about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParticipantOutcome {
    /// The JID the engine was asked about.
    pub asked: String,
    /// Who that is, when known.
    pub person: Option<PersonIds>,
    pub status: ParticipantStatus,
    /// WhatsApp's code (`"403"`, `"408"`, ...) when it gave one.
    pub code: Option<String>,
}

/// Group settings to change (`None`: leave as is).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupChanges {
    pub subject: Option<String>,
    /// `Some(None)` clears the description.
    pub description: Option<Option<String>>,
    pub announce: Option<bool>,
    pub locked: Option<bool>,
    pub ephemeral_seconds: Option<u32>,
    pub membership_approval: Option<bool>,
}

impl GroupChanges {
    /// Whether nothing is changed.
    pub fn is_empty(&self) -> bool {
        *self == GroupChanges::default()
    }
}

/// What joining by invite code did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JoinOutcome {
    /// In the group now.
    Joined(GroupInfo),
    /// The group approves members: a request is waiting.
    Requested { group_id: String },
}

/// Someone waiting for approval to join a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinRequest {
    pub person: PersonIds,
    /// Unix ms.
    pub requested_at: Option<i64>,
}

/// A contact's presence, as seen by a subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PresenceStatus {
    Available,
    Unavailable,
    Composing,
    Recording,
    Paused,
}

impl PresenceStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            PresenceStatus::Available => "available",
            PresenceStatus::Unavailable => "unavailable",
            PresenceStatus::Composing => "composing",
            PresenceStatus::Recording => "recording",
            PresenceStatus::Paused => "paused",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<PresenceStatus> {
        [
            PresenceStatus::Available,
            PresenceStatus::Unavailable,
            PresenceStatus::Composing,
            PresenceStatus::Recording,
            PresenceStatus::Paused,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

/// What the engine learned about a contact (address-book sync, a push
/// name on a message, a picture change, the blocklist). `None`: not told.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContactUpdate {
    pub person: PersonIds,
    /// As saved in the phone's address book.
    pub name: Option<String>,
    /// The name the contact set.
    pub push_name: Option<String>,
    pub business_name: Option<String>,
    pub is_business: Option<bool>,
    pub blocked: Option<bool>,
    /// The contact's picture changed (or was removed).
    pub picture_changed: bool,
}

/// A presence update of a subscribed contact (or a chat state in a chat).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresenceUpdate {
    pub person: PersonIds,
    pub status: PresenceStatus,
    /// The chat a chat state (composing, recording, paused) is shown in.
    pub chat: Option<String>,
    /// Unix ms, when the contact shares it.
    pub last_seen: Option<i64>,
}

/// A group notification: something changed in a group the number is in.
/// `by` is who did it (a JID), when WhatsApp says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupNotice {
    /// The number is in a group it was not in: created, added, or joined.
    Joined { group: GroupInfo, by: Option<String> },
    /// The number left or was removed.
    Left { group_id: String, by: Option<String> },
    /// People were added, removed, promoted or demoted (not the number
    /// itself being added or removed: that is `Joined`/`Left`).
    Participants { group_id: String, action: ParticipantAction, participants: Vec<PersonIds>, by: Option<String> },
    /// Subject, description or settings changed.
    Changed { group_id: String, changes: GroupChanges, by: Option<String> },
    /// Someone asked to join (the group approves members).
    JoinRequest { group_id: String, requester: PersonIds },
}

impl GroupNotice {
    /// The group it concerns.
    pub fn group_id(&self) -> &str {
        match self {
            GroupNotice::Joined { group, .. } => &group.id,
            GroupNotice::Left { group_id, .. }
            | GroupNotice::Participants { group_id, .. }
            | GroupNotice::Changed { group_id, .. }
            | GroupNotice::JoinRequest { group_id, .. } => group_id,
        }
    }
}
