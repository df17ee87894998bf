//! Verified login tokens → what they resolved to, so a repeated token costs
//! one hash and one lookup instead of a signature check.
//!
//! Keyed by SHA-256 of the token; an entry keeps only the resolved value
//! (the caller's [`crate::auth::Principal`], a few dozen bytes), never the
//! token or its claims, and is bounded by bytes as well as by count: 10,000
//! distinct 8 KiB tokens cost what their principals cost. A hit is honoured
//! only while the key-set generation it was verified under is current and
//! the token's times still pass.

use std::collections::HashMap;
use std::sync::Mutex;

use ring::digest;

use super::jwt::TimeClaims;

/// The cache key of a token.
pub type TokenKey = [u8; 32];

/// SHA-256 of a token.
pub fn token_key(token: &str) -> TokenKey {
    let mut k = [0u8; 32];
    k.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    k
}

/// Bookkeeping bytes per entry beyond the value's own (key, times, map slot).
const ENTRY_OVERHEAD: usize = 96;

struct Entry<T> {
    value: T,
    times: TimeClaims,
    generation: u64,
    bytes: usize,
}

struct Inner<T> {
    map: HashMap<TokenKey, Entry<T>>,
    bytes: usize,
}

/// A bounded map from verified tokens to resolved values.
pub struct TokenCache<T> {
    max_entries: usize,
    max_bytes: usize,
    leeway_secs: i64,
    inner: Mutex<Inner<T>>,
}

impl<T: Clone> TokenCache<T> {
    /// A cache of at most `max_entries` entries and `max_bytes` bytes
    /// (either 0 disables it).
    pub fn new(max_entries: usize, max_bytes: usize, leeway_secs: i64) -> TokenCache<T> {
        TokenCache { max_entries, max_bytes, leeway_secs, inner: Mutex::new(Inner { map: HashMap::new(), bytes: 0 }) }
    }

    /// Whether the cache holds anything at all.
    pub fn enabled(&self) -> bool {
        self.max_entries > 0 && self.max_bytes > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value for `key`, if it was verified under `generation` and its
    /// times still pass at `now` (seconds); a stale entry is dropped.
    pub fn get(&self, key: &TokenKey, generation: u64, now: i64) -> Option<T> {
        let mut inner = self.lock();
        let entry = inner.map.get(key)?;
        if entry.generation == generation && entry.times.check(self.leeway_secs, now).is_ok() {
            return Some(entry.value.clone());
        }
        if let Some(gone) = inner.map.remove(key) {
            inner.bytes -= gone.bytes;
        }
        None
    }

    /// Remembers `value` (about `value_bytes` big) for `key`.
    pub fn put(&self, key: TokenKey, value: T, value_bytes: usize, times: TimeClaims, generation: u64, now: i64) {
        if !self.enabled() {
            return;
        }
        let bytes = value_bytes + ENTRY_OVERHEAD;
        if bytes > self.max_bytes {
            return;
        }
        let mut inner = self.lock();
        if inner.map.len() >= self.max_entries || inner.bytes + bytes > self.max_bytes {
            let leeway = self.leeway_secs;
            inner.map.retain(|_, e| e.generation == generation && e.times.check(leeway, now).is_ok());
            inner.bytes = inner.map.values().map(|e| e.bytes).sum();
            if inner.map.len() >= self.max_entries || inner.bytes + bytes > self.max_bytes {
                inner.map.clear();
                inner.bytes = 0;
            }
        }
        if let Some(old) = inner.map.insert(key, Entry { value, times, generation, bytes }) {
            inner.bytes -= old.bytes;
        }
        inner.bytes += bytes;
    }

    /// Entries and bytes held (for tests and metrics).
    pub fn usage(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.map.len(), inner.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn times(exp: i64) -> TimeClaims {
        let claims = json!({"exp": exp});
        TimeClaims::read(claims.as_object().expect("object")).expect("times")
    }

    #[test]
    fn hits_only_under_the_same_generation_and_valid_times() {
        let c: TokenCache<String> = TokenCache::new(10, 10_000, 60);
        let k = token_key("a");
        c.put(k, "alice".into(), 5, times(1000), 1, 900);
        assert_eq!(c.get(&k, 1, 900).as_deref(), Some("alice"));
        assert_eq!(c.get(&k, 2, 900), None, "a new key set misses");
        assert_eq!(c.usage().0, 0, "and drops the entry");
        c.put(k, "alice".into(), 5, times(1000), 1, 900);
        assert_eq!(c.get(&k, 1, 1061), None, "expired (with leeway) misses");
    }

    #[test]
    fn bounded_by_bytes_and_by_count() {
        let c: TokenCache<Vec<u8>> = TokenCache::new(1000, 64 * 1024, 60);
        for i in 0..10_000u32 {
            c.put(token_key(&i.to_string()), vec![0; 1024], 1024, times(5000), 1, 100);
            let (n, bytes) = c.usage();
            assert!(bytes <= 64 * 1024, "{bytes}");
            assert!(n <= 1000);
        }
        let c: TokenCache<u8> = TokenCache::new(3, 1 << 20, 60);
        for i in 0..100u32 {
            c.put(token_key(&i.to_string()), 1, 1, times(5000), 1, 100);
            assert!(c.usage().0 <= 3);
        }
        let off: TokenCache<u8> = TokenCache::new(0, 1 << 20, 60);
        off.put(token_key("x"), 1, 1, times(5000), 1, 100);
        assert_eq!(off.get(&token_key("x"), 1, 100), None);
    }
}
