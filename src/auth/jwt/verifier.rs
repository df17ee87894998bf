//! The request-path JWT verifier over a key source.
//!
//! Header checks run before any key lookup, so a token asking for a remote
//! key (`jku` and friends) never causes a fetch. An unknown `kid` triggers one
//! rate-limited refetch. (Repeated tokens are answered by the authenticator's
//! [`crate::auth::token_cache`], which keeps the resolved principal only.)

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{parse_header, verify_with, JwtError, VerifiedToken, VerifyOptions};
use crate::auth::jwks::{JwksSource, KeySet};

/// Verifies bearer JWTs against a [`JwksSource`]. Send + Sync; share it.
pub struct Verifier {
    source: Arc<JwksSource>,
    opts: VerifyOptions,
}

/// Now, in seconds since the epoch.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Verifier {
    /// A verifier over `source`.
    pub fn new(source: Arc<JwksSource>, opts: VerifyOptions) -> Verifier {
        Verifier { source, opts }
    }

    /// The key source.
    pub fn source(&self) -> &Arc<JwksSource> {
        &self.source
    }

    /// The claim requirements.
    pub fn options(&self) -> &VerifyOptions {
        &self.opts
    }

    /// Verifies `token` now. Header first (no fetch for refused headers), then
    /// the key set (one rate-limited refetch for an unknown `kid`, or when no
    /// keys are loaded), then signature and claims.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, JwtError> {
        let header = parse_header(token)?;
        let mut keys = self.source.current();
        let missing = |k: &Option<Arc<KeySet>>| match k {
            Some(set) => set.select(header.kid.as_deref()).is_none(),
            None => true,
        };
        if missing(&keys) && self.source.refetch_for_unknown_kid().await {
            keys = self.source.current();
        }
        let keys = keys.ok_or(JwtError::NoKeys)?;
        if keys.select(header.kid.as_deref()).is_none() {
            return Err(JwtError::UnknownKey);
        }

        verify_with(token, &keys, &self.opts, now_secs())
    }
}
