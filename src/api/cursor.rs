//! List cursors (CONTRACT §5): opaque, tamper-evident, bound to one list, its
//! filters and the data file.
//!
//! Layout before base64url: `version(1) | list(1) | data_file_id(16) |
//! filter_hash(8) | position(..) | mac(16)`, where `mac` is HMAC-SHA256 (with
//! the secret kept in the data file's meta table) over everything before it,
//! truncated to 128 bits. The position is the last key the page read, so the
//! next page is a seek: O(log n + limit) wherever it starts.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::digest::{digest, SHA256};
use ring::hmac;

use crate::auth::api_key::constant_time_eq;
use crate::http::ApiError;
use crate::store::Meta;

const VERSION: u8 = 1;
const MAC_LEN: usize = 16;
const HEADER_LEN: usize = 1 + 1 + 16 + 8;

/// Which list a cursor belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ListKind {
    AdminSessions = 1,
    OrgSessions = 2,
    AdminOrganizations = 3,
    ApiKeys = 4,
    Messages = 5,
    OrgEvents = 6,
    AdminEvents = 7,
    Webhooks = 8,
    WebhookDeliveries = 9,
    /// A session's groups (CONTRACT §13).
    Groups = 11,
    /// A session's contacts (CONTRACT §12).
    Contacts = 10,
}

/// Binds cursors to a list and its filters (as canonical `name=value` pairs,
/// including the caller's organization for org-scoped lists).
pub struct CursorScope<'a> {
    pub meta: &'a Meta,
    pub list: ListKind,
    pub filters: String,
}

impl CursorScope<'_> {
    fn filter_hash(&self) -> [u8; 8] {
        let mut out = [0u8; 8];
        out.copy_from_slice(&digest(&SHA256, self.filters.as_bytes()).as_ref()[..8]);
        out
    }

    fn mac(&self, payload: &[u8]) -> [u8; MAC_LEN] {
        let tag = hmac::sign(&self.meta.cursor_key, payload);
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&tag.as_ref()[..MAC_LEN]);
        out
    }

    /// Makes a cursor that resumes after `position`.
    pub fn encode(&self, position: &[u8]) -> String {
        let mut buf = Vec::with_capacity(HEADER_LEN + position.len() + MAC_LEN);
        buf.push(VERSION);
        buf.push(self.list as u8);
        buf.extend_from_slice(&self.meta.data_file_id);
        buf.extend_from_slice(&self.filter_hash());
        buf.extend_from_slice(position);
        let mac = self.mac(&buf);
        buf.extend_from_slice(&mac);
        URL_SAFE_NO_PAD.encode(buf)
    }

    /// Checks a cursor and returns its position.
    pub fn decode(&self, cursor: &str) -> Result<Vec<u8>, ApiError> {
        let raw = URL_SAFE_NO_PAD
            .decode(cursor)
            .map_err(|_| ApiError::invalid_cursor("cursor is not valid base64url"))?;
        if raw.len() < HEADER_LEN + MAC_LEN || raw.len() > 512 {
            return Err(ApiError::invalid_cursor("cursor is malformed"));
        }
        let (payload, mac) = raw.split_at(raw.len() - MAC_LEN);
        if !constant_time_eq(&self.mac(payload), mac) {
            return Err(ApiError::invalid_cursor(
                "cursor was tampered with or comes from another data file",
            ));
        }
        if payload[0] != VERSION || payload[2..18] != self.meta.data_file_id {
            return Err(ApiError::invalid_cursor("cursor comes from another data file"));
        }
        if payload[1] != self.list as u8 {
            return Err(ApiError::invalid_cursor("cursor belongs to another list"));
        }
        if payload[18..26] != self.filter_hash() {
            return Err(ApiError::invalid_cursor("cursor was made for other filters"));
        }
        Ok(payload[HEADER_LEN..].to_vec())
    }

    /// A cursor position as a ULID key.
    pub fn decode_u128(&self, cursor: &str) -> Result<u128, ApiError> {
        let pos = self.decode(cursor)?;
        <[u8; 16]>::try_from(pos.as_slice())
            .map(u128::from_be_bytes)
            .map_err(|_| ApiError::invalid_cursor("cursor belongs to another list"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(seed: u8) -> Meta {
        Meta::new(1, [seed; 16], [seed; 32])
    }

    #[test]
    fn round_trip_and_every_binding() {
        let m = meta(1);
        let scope = CursorScope { meta: &m, list: ListKind::AdminSessions, filters: "status=working".into() };
        let c = scope.encode(&42u128.to_be_bytes());
        assert_eq!(scope.decode_u128(&c).ok(), Some(42));

        let other_list = CursorScope { meta: &m, list: ListKind::OrgSessions, filters: "status=working".into() };
        assert!(other_list.decode(&c).is_err());
        let other_filter = CursorScope { meta: &m, list: ListKind::AdminSessions, filters: String::new() };
        assert!(other_filter.decode(&c).is_err());
        let m2 = meta(2);
        let other_file = CursorScope { meta: &m2, list: ListKind::AdminSessions, filters: "status=working".into() };
        assert!(other_file.decode(&c).is_err());

        let mut raw = URL_SAFE_NO_PAD.decode(&c).expect("b64");
        raw[30] ^= 1;
        assert!(scope.decode(&URL_SAFE_NO_PAD.encode(&raw)).is_err());
        assert!(scope.decode("!!!").is_err());
        assert!(scope.decode("").is_err());
    }
}
