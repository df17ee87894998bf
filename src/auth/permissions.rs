//! Permissions and organization roles (CONTRACT §2).

use std::fmt;

/// One thing a caller may do inside an organization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    SessionsRead,
    SessionsWrite,
    SessionsControl,
    MessagesSend,
    MessagesRead,
    WebhooksWrite,
    ApiKeysWrite,
    /// The directory (CONTRACT §12): contacts, number checks, pictures,
    /// group reads, presence subscriptions.
    ContactsRead,
    /// Create and change groups (§13).
    GroupsWrite,
    /// Archive, pin, mute, mark unread, delete chats, star, block, history.
    ChatsWrite,
}

impl Permission {
    /// Every permission, in wire order.
    pub const ALL: [Permission; 10] = [
        Permission::SessionsRead,
        Permission::SessionsWrite,
        Permission::SessionsControl,
        Permission::MessagesSend,
        Permission::MessagesRead,
        Permission::WebhooksWrite,
        Permission::ApiKeysWrite,
        Permission::ContactsRead,
        Permission::GroupsWrite,
        Permission::ChatsWrite,
    ];

    /// The wire name (`sessions:read`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::SessionsRead => "sessions:read",
            Permission::SessionsWrite => "sessions:write",
            Permission::SessionsControl => "sessions:control",
            Permission::MessagesSend => "messages:send",
            Permission::MessagesRead => "messages:read",
            Permission::WebhooksWrite => "webhooks:write",
            Permission::ApiKeysWrite => "api_keys:write",
            Permission::ContactsRead => "contacts:read",
            Permission::GroupsWrite => "groups:write",
            Permission::ChatsWrite => "chats:write",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == s)
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// A set of permissions, stored as bits in api-key records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Permissions(u32);

impl Permissions {
    /// No permission.
    pub const EMPTY: Permissions = Permissions(0);

    /// Every permission.
    pub fn all() -> Permissions {
        Permission::ALL.into_iter().collect()
    }

    /// Every permission an api-key may carry (all but `api_keys:write`).
    pub fn api_key_max() -> Permissions {
        Permission::ALL.into_iter().filter(|p| *p != Permission::ApiKeysWrite).collect()
    }

    /// From stored bits (unknown bits dropped).
    pub fn from_bits(bits: u32) -> Permissions {
        Permissions(bits & Permissions::all().0)
    }

    /// The stored bits.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Whether `p` is in the set.
    pub fn contains(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }

    /// The members, in wire order.
    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL.into_iter().filter(move |p| self.contains(*p))
    }

    /// The wire names.
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Permission::as_str).collect()
    }
}

impl FromIterator<Permission> for Permissions {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        Permissions(iter.into_iter().fold(0, |acc, p| acc | p.bit()))
    }
}

/// A person's role inside an organization, from the login JWT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Owner,
    Admin,
    Member,
}

impl Role {
    /// Parses `owner` | `admin` | `member` (the `org:` prefix already stripped).
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "owner" => Some(Role::Owner),
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    /// `member` reads sessions and the directory and sends/reads messages;
    /// `admin` and `owner` hold everything.
    pub fn permissions(self) -> Permissions {
        match self {
            Role::Owner | Role::Admin => Permissions::all(),
            Role::Member => {
                [Permission::SessionsRead, Permission::MessagesSend, Permission::MessagesRead, Permission::ContactsRead]
                    .into_iter()
                    .collect()
            }
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
