//! The `whatsapp-rust` engine's storage: each session's WhatsApp credentials
//! and Signal protocol state, kept in the gateway's own redb data file (so a
//! backup of the file backs up the linked phones).
//!
//! - [`tables`] — the `wa_state` table, its key layout, and the helpers the
//!   store's migrate / backup / check / session-delete paths call.
//! - [`store`] — [`store::RedbBackend`], the crate's `Backend` for one session.

pub mod store;
pub mod tables;

pub use store::{RedbBackend, WaStoreError};
