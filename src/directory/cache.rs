//! Contacts' about texts and pictures, kept in memory for an hour (CONTRACT
//! §12: "cached 1 h"), so that repeated reads do not ask the network again.
//! Bounded: past [`MAX_ENTRIES`] the expired entries go, then the oldest.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ulid::Ulid;

/// How long an answer is reused.
pub const TTL: Duration = Duration::from_secs(3600);
/// Most entries kept (each picture up to a few hundred KiB).
pub const MAX_ENTRIES: usize = 2_048;

/// What is cached about one contact of one session.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    About(Ulid, String),
    Picture(Ulid, String, bool),
}

/// When an answer was kept, and the answer (`None`: there is none).
type Entry = (Instant, Option<Vec<u8>>);

/// The cache of about texts and pictures, shared by the API handlers.
#[derive(Default)]
pub struct DirectoryCache {
    entries: Mutex<HashMap<Key, Entry>>,
}

impl DirectoryCache {
    fn get(&self, key: &Key) -> Option<Option<Vec<u8>>> {
        let map = match self.entries.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.get(key).filter(|(at, _)| at.elapsed() < TTL).map(|(_, v)| v.clone())
    }

    fn put(&self, key: Key, value: Option<Vec<u8>>) {
        let mut map = match self.entries.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, (at, _)| at.elapsed() < TTL);
            while map.len() >= MAX_ENTRIES {
                let Some(oldest) = map.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| k.clone()) else { break };
                map.remove(&oldest);
            }
        }
        map.insert(key, (Instant::now(), value));
    }

    /// The cached about text of `jid` (`Some(None)`: known to be hidden).
    pub fn about(&self, session: Ulid, jid: &str) -> Option<Option<String>> {
        self.get(&Key::About(session, jid.to_string()))
            .map(|v| v.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// Keeps `jid`'s about text (or that it is hidden).
    pub fn put_about(&self, session: Ulid, jid: &str, about: Option<&str>) {
        self.put(Key::About(session, jid.to_string()), about.map(|a| a.as_bytes().to_vec()));
    }

    /// The cached picture of `jid` (`Some(None)`: known to have none).
    pub fn picture(&self, session: Ulid, jid: &str, full: bool) -> Option<Option<Vec<u8>>> {
        self.get(&Key::Picture(session, jid.to_string(), full))
    }

    /// Keeps `jid`'s picture (or that it has none).
    pub fn put_picture(&self, session: Ulid, jid: &str, full: bool, jpeg: Option<Vec<u8>>) {
        self.put(Key::Picture(session, jid.to_string(), full), jpeg);
    }

    /// Forgets `jid`'s pictures (it changed).
    pub fn forget_picture(&self, session: Ulid, jid: &str) {
        let mut map = match self.entries.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.remove(&Key::Picture(session, jid.to_string(), true));
        map.remove(&Key::Picture(session, jid.to_string(), false));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_and_bounds() {
        let c = DirectoryCache::default();
        let s = Ulid::from(1u128);
        assert_eq!(c.about(s, "a"), None);
        c.put_about(s, "a", Some("hi"));
        c.put_about(s, "b", None);
        assert_eq!(c.about(s, "a"), Some(Some("hi".into())));
        assert_eq!(c.about(s, "b"), Some(None));
        c.put_picture(s, "a", true, Some(vec![1]));
        assert_eq!(c.picture(s, "a", true), Some(Some(vec![1])));
        assert_eq!(c.picture(s, "a", false), None);
        c.forget_picture(s, "a");
        assert_eq!(c.picture(s, "a", true), None);
        for i in 0..MAX_ENTRIES + 10 {
            c.put_about(s, &i.to_string(), None);
        }
        assert!(c.entries.lock().map(|m| m.len()).unwrap_or(0) <= MAX_ENTRIES);
    }
}
