//! The API resources, one file each. Handlers authenticate first, then parse
//! ids and bodies, then touch the store; they return `ApiError`, which the
//! HTTP layer maps once.

pub mod admin;
pub mod api_keys;
pub mod contacts;
pub mod cursor;
pub mod directory;
pub mod events;
pub mod events_stream;
pub mod groups;
pub mod groups_members;
pub mod lifecycle;
pub mod media_answer;
pub mod me;
pub mod media_staging;
pub mod message_input;
pub mod message_view;
pub mod messages;
pub mod orgs;
pub mod profile;
pub mod send_limits;
pub mod page_cache;
pub mod sessions;
pub mod sim;
pub mod sim_directory;
pub mod sim_groups;
pub mod webhooks;

use serde::Serialize;

/// A page of a list: `{"data": [...], "nextCursor": ... | null}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPage<T: Serialize> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Organization ids come from the frontend (`org_2abc...`) or from a
/// super_admin: 1..=128 characters of `[A-Za-z0-9_.:-]`.
pub fn valid_org_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
}

/// Deserializes a field that may be absent, `null`, or a value.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(d).map(Some)
}

/// Deserializes a field that may be absent but, when present, not `null`
/// (use with `#[serde(default, deserialize_with = "non_null")]`).
pub fn non_null<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}
