//! The request-path JWT verifier: key source plus a verified-token cache.
//!
//! Header checks run before any key lookup, so a token asking for a remote
//! key (`jku` and friends) never causes a fetch. An unknown `kid` triggers one
//! rate-limited refetch. Verified tokens are cached by SHA-256 of the token,
//! tagged with the key-set generation; a hit is honoured only while that
//! generation is current and the token's times still pass.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use ring::digest;

use super::{parse_header, verify_with, JwtError, TimeClaims, VerifiedToken, VerifyOptions};
use crate::auth::jwks::{JwksSource, KeySet};

type CacheKey = [u8; 32];

struct Cached {
    token: VerifiedToken,
    times: TimeClaims,
    generation: u64,
}

/// Verifies bearer JWTs against a [`JwksSource`]. Send + Sync; share it.
pub struct Verifier {
    source: Arc<JwksSource>,
    opts: VerifyOptions,
    capacity: usize,
    cache: Mutex<HashMap<CacheKey, Cached>>,
    hits: AtomicU64,
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Verifier {
    /// A verifier over `source`. `cache_capacity` bounds the verified-token
    /// cache (0 disables it).
    pub fn new(source: Arc<JwksSource>, opts: VerifyOptions, cache_capacity: usize) -> Verifier {
        Verifier {
            source,
            opts,
            capacity: cache_capacity,
            cache: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
        }
    }

    /// The key source.
    pub fn source(&self) -> &Arc<JwksSource> {
        &self.source
    }

    /// The claim requirements.
    pub fn options(&self) -> &VerifyOptions {
        &self.opts
    }

    /// Number of verifications answered from the cache (for metrics and tests).
    pub fn cache_hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Verifies `token` now. Header first (no fetch for refused headers), then
    /// the key set (one rate-limited refetch for an unknown `kid`, or when no
    /// keys are loaded), then the cache, then signature and claims.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, JwtError> {
        let header = parse_header(token)?;
        // Generation is read before the keys: a concurrent swap can only make
        // the cache tag older than the keys used, never newer.
        let (mut generation, mut keys) = self.snapshot();
        let missing = |k: &Option<Arc<KeySet>>| match k {
            Some(set) => set.select(header.kid.as_deref()).is_none(),
            None => true,
        };
        if missing(&keys) && self.source.refetch_for_unknown_kid().await {
            (generation, keys) = self.snapshot();
        }
        let keys = keys.ok_or(JwtError::NoKeys)?;
        if keys.select(header.kid.as_deref()).is_none() {
            return Err(JwtError::UnknownKey);
        }

        let now = now_secs();
        let key = self.cache_key(token);
        if let Some(hit) = key.and_then(|k| self.lookup(&k, generation, now)) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(hit);
        }
        let verified = verify_with(token, &keys, &self.opts, now)?;
        if let Some(k) = key {
            self.store(k, &verified, generation);
        }
        Ok(verified)
    }

    fn snapshot(&self) -> (u64, Option<Arc<KeySet>>) {
        let generation = self.source.generation();
        (generation, self.source.current())
    }

    fn cache_key(&self, token: &str) -> Option<CacheKey> {
        if self.capacity == 0 {
            return None;
        }
        let d = digest::digest(&digest::SHA256, token.as_bytes());
        d.as_ref().try_into().ok()
    }

    fn lookup(&self, key: &CacheKey, generation: u64, now: i64) -> Option<VerifiedToken> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let entry = cache.get(key)?;
        if entry.generation == generation && entry.times.check(self.opts.leeway_secs, now).is_ok() {
            return Some(entry.token.clone());
        }
        cache.remove(key);
        None
    }

    fn store(&self, key: CacheKey, token: &VerifiedToken, generation: u64) {
        let Ok(times) = TimeClaims::read(&token.claims) else {
            return;
        };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= self.capacity {
            let now = now_secs();
            let leeway = self.opts.leeway_secs;
            cache.retain(|_, c| c.generation == generation && c.times.check(leeway, now).is_ok());
            if cache.len() >= self.capacity {
                cache.clear();
            }
        }
        cache.insert(
            key,
            Cached {
                token: token.clone(),
                times,
                generation,
            },
        );
    }
}
