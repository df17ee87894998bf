//! A cache of rendered session-list pages.
//!
//! Admin dashboards poll the same first pages over and over. A page is reused
//! only while the store's version is the one it was rendered at; every commit
//! bumps the version (the server is the data file's only writer), so a cached
//! page is always exactly what a fresh read would return. The version is read
//! before the read transaction starts, so a page rendered from newer data is
//! filed under an older version and simply never matches. Bounded: when full,
//! it is cleared. `0` capacity disables it.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;

use super::cursor::ListKind;

/// Which page: the list, its canonical filters, where it starts, its size.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PageKey {
    pub list: ListKind,
    pub filters: String,
    pub after: Option<u128>,
    pub limit: usize,
}

/// Rendered pages by key, each with the store version it was read at.
pub struct PageCache {
    capacity: usize,
    pages: Mutex<HashMap<PageKey, (u64, Bytes)>>,
}

impl PageCache {
    /// A cache of at most `capacity` pages.
    pub fn new(capacity: usize) -> PageCache {
        PageCache { capacity, pages: Mutex::new(HashMap::new()) }
    }

    /// The page, if it was rendered at `version`.
    pub fn get(&self, key: &PageKey, version: u64) -> Option<Bytes> {
        if self.capacity == 0 {
            return None;
        }
        let pages = self.pages.lock().ok()?;
        match pages.get(key) {
            Some((v, body)) if *v == version => Some(body.clone()),
            _ => None,
        }
    }

    /// Files a page rendered from data read at `version`.
    pub fn put(&self, key: PageKey, version: u64, body: Bytes) {
        if self.capacity == 0 {
            return;
        }
        if let Ok(mut pages) = self.pages.lock() {
            if pages.len() >= self.capacity {
                pages.retain(|_, (v, _)| *v == version);
                if pages.len() >= self.capacity {
                    pages.clear();
                }
            }
            pages.insert(key, (version, body));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(after: Option<u128>) -> PageKey {
        PageKey { list: ListKind::AdminSessions, filters: String::new(), after, limit: 50 }
    }

    #[test]
    fn pages_match_only_their_version_and_key() {
        let c = PageCache::new(2);
        c.put(key(None), 7, Bytes::from_static(b"a"));
        assert_eq!(c.get(&key(None), 7).as_deref(), Some(&b"a"[..]));
        assert_eq!(c.get(&key(None), 8), None, "any commit invalidates");
        assert_eq!(c.get(&key(Some(1)), 7), None);
        c.put(key(Some(1)), 7, Bytes::from_static(b"b"));
        c.put(key(Some(2)), 7, Bytes::from_static(b"c"));
        assert!(c.pages.lock().map(|p| p.len()).unwrap_or(0) <= 2, "bounded");
        let off = PageCache::new(0);
        off.put(key(None), 1, Bytes::from_static(b"a"));
        assert_eq!(off.get(&key(None), 1), None);
    }
}
