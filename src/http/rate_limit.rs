//! Rate limits (CONTRACT §11): token buckets per principal and, for failed
//! authentications, per client address. The pipeline answers a refusal with
//! 429 `rate_limited` and `Retry-After: `[`retry_after_secs`].
//!
//! Every rule is a pure function of a `now: Duration` passed in (time since an
//! arbitrary monotonic epoch; production passes [`monotonic_now`]), so it is
//! property-tested over virtual time. The arithmetic is integer nanoseconds: a
//! bucket keeps its tokens as *credit* in ns (one token = one `interval`), so a
//! `Retry-After` is exact and there is no float drift.
//!
//! Wiring: per principal, `try_take` on each authenticated request; per client
//! address ([`client_addr`], keyed by [`addr_key`]), `check` before verifying a
//! credential and `note` after a failed one. `--rate-limit 0`: [`limits`] gives
//! `None` for both, and a limiter built from `None` allows everything for free.

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// `--rate-limit` default: requests per second per principal, and its burst.
pub const DEFAULT_RATE: f64 = 50.0;
pub const DEFAULT_BURST: u32 = 100;
/// Failed authentications per second per client address, and their burst.
pub const AUTH_FAILURE_RATE: f64 = 10.0;
pub const AUTH_FAILURE_BURST: u32 = 50;
/// Default bound on the keys a [`KeyedLimiter`] tracks.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

const NS: u128 = 1_000_000_000;

/// Now, as the time since a process-wide monotonic epoch.
pub fn monotonic_now() -> Duration {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed()
}

/// A wait as `Retry-After` seconds: rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// Parses a `--rate-limit` value (clap `value_parser`): requests per second,
/// `0` = off, fractions allowed; negative, NaN and infinite values refused.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("`{s}` is not a number of requests per second"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("`{s}`: the rate must be a finite number >= 0 (0 turns rate limiting off)"));
    }
    Ok(v + 0.0) // turns -0 into 0
}

/// A rate and a burst, with the rate precomputed as the nanoseconds one token
/// takes to come back: it exists so the flag's float never enters the
/// per-request arithmetic, and so an invalid limit cannot be built.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limit {
    per_sec: f64,
    burst: u32,
    interval: u64,
}

impl Limit {
    /// `None` (= off) unless `per_sec` is positive and finite; a burst of 0 is
    /// taken as 1. The interval is rounded up: the real rate never exceeds `per_sec`.
    pub fn new(per_sec: f64, burst: u32) -> Option<Limit> {
        if !(per_sec > 0.0 && per_sec.is_finite()) {
            return None;
        }
        let interval = ((1e9 / per_sec).ceil() as u64).max(1); // `as` saturates
        Some(Limit { per_sec, burst: burst.max(1), interval })
    }
    pub fn per_sec(&self) -> f64 {
        self.per_sec
    }
    pub fn burst(&self) -> u32 {
        self.burst
    }
    fn cap(&self) -> i128 {
        i128::from(self.interval) * i128::from(self.burst)
    }
}

/// The contract's two limits from `--rate-limit` and its burst: (per
/// principal, failed authentications per address). A rate of 0 turns both off.
pub fn limits(rate: f64, burst: u32) -> (Option<Limit>, Option<Limit>) {
    match Limit::new(rate, burst) {
        None => (None, None),
        some => (some, Limit::new(AUTH_FAILURE_RATE, AUTH_FAILURE_BURST)),
    }
}

/// A bucket's mutable part without its [`Limit`], so a keyed map stores only
/// this per key. `credit` is tokens × interval, in [-cap, cap]; `last` is the
/// latest time seen (refill time), which is also the key's recency for eviction.
#[derive(Clone, Copy, Debug)]
struct State {
    credit: i128,
    last: u128,
}

impl State {
    fn fresh(limit: &Limit, now: u128) -> State {
        State { credit: limit.cap(), last: now }
    }
    /// The credit refilled up to `now`; a `now` before `last` counts as no time.
    fn credit_at(&self, limit: &Limit, now: u128) -> i128 {
        let elapsed = i128::try_from(now.saturating_sub(self.last)).unwrap_or(i128::MAX);
        self.credit.saturating_add(elapsed).min(limit.cap())
    }
    fn refill(&mut self, limit: &Limit, now: u128) {
        self.credit = self.credit_at(limit, now);
        self.last = self.last.max(now);
    }
    fn check(&self, limit: &Limit, now: u128) -> Result<(), Duration> {
        let need = i128::from(limit.interval) - self.credit_at(limit, now);
        if need <= 0 {
            return Ok(());
        }
        // Refill runs from `last` on: a `now` before it also waits for that.
        Err(nanos(need.unsigned_abs().saturating_add(self.last.saturating_sub(now))))
    }
    fn try_take(&mut self, limit: &Limit, now: u128) -> Result<(), Duration> {
        self.check(limit, now)?;
        self.refill(limit, now);
        self.credit -= i128::from(limit.interval);
        Ok(())
    }
    /// Spends a token even if there is none: debt, bounded by one full burst,
    /// so failures that raced past `check` are still paid for.
    fn note(&mut self, limit: &Limit, now: u128) {
        self.refill(limit, now);
        self.credit = (self.credit - i128::from(limit.interval)).max(-limit.cap());
    }
    fn is_full(&self, limit: &Limit, now: u128) -> bool {
        self.credit_at(limit, now) >= limit.cap()
    }
}

fn nanos(ns: u128) -> Duration {
    Duration::new(u64::try_from(ns / NS).unwrap_or(u64::MAX), (ns % NS) as u32)
}

/// One token bucket, usable alone: the unit every limit here is made of.
#[derive(Clone, Copy, Debug)]
pub struct TokenBucket {
    limit: Limit,
    state: State,
}

impl TokenBucket {
    /// A full bucket: a new client starts with its whole burst.
    pub fn new(limit: Limit, now: Duration) -> Self {
        TokenBucket { limit, state: State::fresh(&limit, now.as_nanos()) }
    }
    /// Takes a token, or says exactly how long until one is there.
    pub fn try_take(&mut self, now: Duration) -> Result<(), Duration> {
        self.state.try_take(&self.limit, now.as_nanos())
    }
    /// Whether `try_take` would succeed now, without taking.
    pub fn check(&self, now: Duration) -> Result<(), Duration> {
        self.state.check(&self.limit, now.as_nanos())
    }
    /// Records one failure: spends a token, into bounded debt if need be.
    pub fn note(&mut self, now: Duration) {
        self.state.note(&self.limit, now.as_nanos())
    }
}

/// A [`Limit`] per key (principal, client address), bounded in memory. It
/// exists because the limit runs on every request: the key is hashed once
/// (random-keyed SipHash, HashDoS-safe) and that hash picks a shard and is
/// reused by the shard's table, so the hot path is one hash + one mostly
/// uncontended lock.
///
/// Full table: first drop buckets that are full again (no change in behaviour),
/// then evict the least recently used key. Chosen over "untracked keys are
/// allowed" because that fails open: whoever fills the table (cheap with
/// IPv6 addresses) would get unlimited attempts for every new key, while LRU
/// still gives each key at least a fresh bucket's burst, and the evicted key is
/// the one whose bucket has had longest to refill. Cost: an O(shard) scan on
/// that rare path only.
pub struct KeyedLimiter<K> {
    inner: Option<Keyed<K>>,
}

/// The limiter when on: `None` in [`KeyedLimiter`] is what makes "off" free.
struct Keyed<K> {
    limit: Limit,
    hasher: RandomState,
    shards: Box<[Mutex<Shard<K>>]>,
}

/// One lock's worth of keys: sharding keeps that lock mostly uncontended.
struct Shard<K> {
    map: HashMap<Slot<K>, State, BuildHasherDefault<PassThrough>>,
    cap: usize,
    /// Latest time seen: the shard's clock only moves forward, so a fresh
    /// bucket never starts earlier than the one it replaced.
    clock: u128,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// `limit: None` = off. `max_keys` (at least 1) bounds the tracked keys.
    pub fn new(limit: impl Into<Option<Limit>>, max_keys: usize) -> Self {
        let Some(limit) = limit.into() else { return KeyedLimiter { inner: None } };
        let max = max_keys.max(1);
        let n = (max / 256).clamp(1, 64);
        let shard = |i| Mutex::new(Shard { map: HashMap::default(), cap: max / n + usize::from(i < max % n), clock: 0 });
        KeyedLimiter { inner: Some(Keyed { limit, hasher: RandomState::new(), shards: (0..n).map(shard).collect() }) }
    }
    pub fn limit(&self) -> Option<Limit> {
        self.inner.as_ref().map(|k| k.limit)
    }
    /// Takes a token for `key`, or says exactly how long until one is there.
    pub fn try_take(&self, key: &K, now: Duration) -> Result<(), Duration> {
        self.with(key, now, |s, l, now| s.try_take(l, now)).unwrap_or(Ok(()))
    }
    /// Records one failure for `key` (see [`TokenBucket::note`]).
    pub fn note(&self, key: &K, now: Duration) {
        self.with(key, now, |s, l, now| s.note(l, now));
    }
    /// Whether `try_take` would succeed now, without taking or tracking.
    pub fn check(&self, key: &K, now: Duration) -> Result<(), Duration> {
        let Some(k) = &self.inner else { return Ok(()) };
        let hash = k.hasher.hash_one(key);
        let mut shard = k.shard(hash);
        let now = shard.tick(now);
        shard.map.get(&Probe { hash, key } as &dyn Lookup<K>).map_or(Ok(()), |s| s.check(&k.limit, now))
    }
    /// Keys tracked now (at most `max_keys`).
    pub fn len(&self) -> usize {
        let shards = self.inner.iter().flat_map(|k| k.shards.iter());
        shards.map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).map.len()).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn with<R>(&self, key: &K, now: Duration, f: impl FnOnce(&mut State, &Limit, u128) -> R) -> Option<R> {
        let k = self.inner.as_ref()?;
        let hash = k.hasher.hash_one(key);
        let mut shard = k.shard(hash);
        let now = shard.tick(now);
        if let Some(s) = shard.map.get_mut(&Probe { hash, key } as &dyn Lookup<K>) {
            return Some(f(s, &k.limit, now));
        }
        let mut s = State::fresh(&k.limit, now);
        let r = f(&mut s, &k.limit, now);
        if !s.is_full(&k.limit, now) {
            shard.make_room(&k.limit, now);
            shard.map.insert(Slot { hash, key: key.clone() }, s);
        }
        Some(r)
    }
}

impl<K> Keyed<K> {
    fn shard(&self, hash: u64) -> std::sync::MutexGuard<'_, Shard<K>> {
        // Bits 32.. : the table itself uses the low bits and the top 7.
        let i = (hash >> 32) as usize % self.shards.len();
        // A panic cannot leave a bucket half-updated: the state stays valid.
        self.shards[i].lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<K: Hash + Eq + Clone> Shard<K> {
    fn tick(&mut self, now: Duration) -> u128 {
        self.clock = self.clock.max(now.as_nanos());
        self.clock
    }
    fn make_room(&mut self, limit: &Limit, now: u128) {
        if self.map.len() < self.cap {
            return;
        }
        self.map.retain(|_, s| !s.is_full(limit, now));
        if self.map.len() < self.cap {
            return;
        }
        let lru = self.map.iter().min_by_key(|(_, s)| s.last).map(|(k, _)| Slot { hash: k.hash, key: k.key.clone() });
        if let Some(lru) = lru {
            self.map.remove(&lru);
        }
    }
}

/// A stored key with its hash, so the table never hashes the key again.
struct Slot<K> {
    hash: u64,
    key: K,
}
/// A borrowed key with its hash, to look up without cloning the key.
struct Probe<'a, K> {
    hash: u64,
    key: &'a K,
}
/// What [`Slot`] and [`Probe`] share, so a `Slot` map accepts a `Probe`.
trait Lookup<K> {
    fn parts(&self) -> (u64, &K);
}
impl<K> Lookup<K> for Slot<K> {
    fn parts(&self) -> (u64, &K) {
        (self.hash, &self.key)
    }
}
impl<K> Lookup<K> for Probe<'_, K> {
    fn parts(&self) -> (u64, &K) {
        (self.hash, self.key)
    }
}
impl<'a, K: 'a> Borrow<dyn Lookup<K> + 'a> for Slot<K> {
    fn borrow(&self) -> &(dyn Lookup<K> + 'a) {
        self
    }
}
impl<K: Eq> PartialEq for dyn Lookup<K> + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}
impl<K: Eq> Eq for dyn Lookup<K> + '_ {}
impl<K> Hash for dyn Lookup<K> + '_ {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(self.parts().0)
    }
}
impl<K: Eq> PartialEq for Slot<K> {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.key == other.key
    }
}
impl<K: Eq> Eq for Slot<K> {}
impl<K> Hash for Slot<K> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(self.hash)
    }
}

/// The shard tables' hasher: it passes the precomputed hash through.
#[derive(Default)]
struct PassThrough(u64);
impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write_u64(&mut self, h: u64) {
        self.0 = h;
    }
    fn write(&mut self, bytes: &[u8]) {
        bytes.iter().for_each(|b| self.0 = self.0.rotate_left(8) ^ u64::from(*b)); // never called
    }
}

/// A network (`--trusted-proxy`): whose `X-Forwarded-For` is believed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

/// Why a `--trusted-proxy` value is not a CIDR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CidrError {
    Address(String),
    Prefix(String),
}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CidrError::Address(s) => write!(f, "`{s}`: not an IP address or CIDR (e.g. 10.0.0.0/8, ::1)"),
            CidrError::Prefix(s) => write!(f, "`{s}`: the prefix length must be 0-32 (IPv4) or 0-128 (IPv6)"),
        }
    }
}
impl std::error::Error for CidrError {}

impl FromStr for Cidr {
    type Err = CidrError;
    /// `10.0.0.0/8`, `::1/128`, or a bare address (/32, /128); host bits are cleared.
    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let (addr, prefix) = s.trim().split_once('/').map_or((s.trim(), None), |(a, p)| (a, Some(p)));
        let net: IpAddr = addr.parse().map_err(|_| CidrError::Address(s.to_owned()))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse().ok().filter(|p| *p <= max).ok_or_else(|| CidrError::Prefix(s.to_owned()))?,
        };
        Ok(Cidr { net: mask(net, prefix), prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

impl Cidr {
    /// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) match IPv4 networks, and IPv4 addresses match mapped IPv6 networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.net, ip.to_canonical()) {
            (IpAddr::V6(_), IpAddr::V4(v4)) => IpAddr::V6(v4.to_ipv6_mapped()),
            (IpAddr::V4(_), IpAddr::V6(_)) => return false,
            (_, ip) => ip,
        };
        mask(ip, self.prefix) == self.net
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => (u32::from(a) & u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)).to_be_bytes().into(),
        IpAddr::V6(a) => Ipv6Addr::from(u128::from(a) & u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)).into(),
    }
}

/// The client's address. Only a peer inside `trusted` is believed about
/// `X-Forwarded-For` (several headers: join them with `,`): walk it from the
/// right, skip trusted hops, return the first untrusted one; the entries left of
/// it are the client's own claims and are never read. A malformed entry
/// (`unknown`, empty, garbage) stops the walk at the last trusted hop: the
/// limit then falls on our own proxy, never on an address the client chose.
/// Returned in canonical form (`::ffff:1.2.3.4` becomes `1.2.3.4`).
pub fn client_addr(peer: IpAddr, x_forwarded_for: Option<&str>, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    let mut hop = peer.to_canonical();
    let Some(xff) = x_forwarded_for.filter(|x| is_trusted(hop) && !x.trim().is_empty()) else { return hop };
    for entry in xff.rsplit(',') {
        let entry = entry.trim();
        let ip = entry.parse::<IpAddr>().or_else(|_| entry.parse::<SocketAddr>().map(|a| a.ip()));
        let Ok(ip) = ip.map(|ip| ip.to_canonical()) else { return hop };
        if !is_trusted(ip) {
            return ip;
        }
        hop = ip;
    }
    hop
}

/// The failed-auth limiter's key for an address: IPv6 by its /64, since one
/// host usually holds a whole /64 and could otherwise rotate through 2^64 fresh buckets.
pub fn addr_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        v6 @ IpAddr::V6(_) => mask(v6, 64),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }
    fn lim(rate: f64, burst: u32) -> Limit {
        Limit::new(rate, burst).expect("valid limit")
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }
    /// Gaps between requests: bursts, steady traffic and long pauses.
    fn gaps() -> impl Strategy<Value = Vec<u64>> {
        vec(prop_oneof![3 => Just(0u64), 5 => 0u64..20_000_000, 1 => 0u64..3_000_000_000], 1..200)
    }

    #[test]
    fn bucket_takes_refuses_with_exact_waits_and_survives_odd_clocks() {
        let mut b = TokenBucket::new(lim(2.0, 3), ms(0));
        (0..3).for_each(|_| assert_eq!(b.try_take(ms(0)), Ok(())));
        assert_eq!(b.try_take(ms(0)), Err(ms(500)));
        assert_eq!(b.check(ms(100)), Err(ms(400)));
        assert_eq!(b.try_take(ms(500)), Ok(()));
        assert_eq!(b.try_take(ms(100)), Err(ms(900)), "backwards: no refill, and the wait counts from 500ms");
        assert_eq!(b.try_take(Duration::MAX), Ok(()));
        assert_eq!(b.check(Duration::ZERO), Ok(()));
        let mut f = TokenBucket::new(lim(10.0, 2), ms(0));
        (0..2).for_each(|_| f.note(ms(0)));
        assert_eq!(f.check(ms(0)), Err(ms(100)));
        (0..10).for_each(|_| f.note(ms(0)));
        assert_eq!(f.check(ms(0)), Err(ms(300)), "debt is bounded by one burst");
        let slow = TokenBucket::new(lim(1e-30, 1), ms(0));
        assert!(slow.check(Duration::MAX).is_ok());
    }

    #[test]
    fn rates_limits_and_retry_after() {
        assert_eq!(parse_rate("50"), Ok(50.0));
        assert_eq!(parse_rate(" 0.5 "), Ok(0.5));
        assert_eq!(parse_rate("-0"), Ok(0.0));
        for bad in ["-1", "NaN", "inf", "", "fast"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
        assert_eq!(Limit::new(0.0, 100), None);
        assert_eq!(Limit::new(3.0, 0).map(|l| (l.burst(), l.interval)), Some((1, 333_333_334)));
        assert_eq!(limits(0.0, 100), (None, None));
        let (p, a) = limits(DEFAULT_RATE, DEFAULT_BURST);
        assert_eq!((p.map(|l| l.interval), a.map(|l| l.burst())), (Some(20_000_000), Some(AUTH_FAILURE_BURST)));
        let secs: Vec<u64> = [0, 1, 1000, 1001].map(|n| retry_after_secs(ms(n))).to_vec();
        assert_eq!(secs, [1, 1, 1, 2]);
    }

    #[test]
    fn keyed_off_costs_nothing_and_full_tables_evict_the_lru() {
        let off = KeyedLimiter::<u32>::new(None, 10);
        assert!((0..1000).all(|_| off.try_take(&1, ms(0)).is_ok()) && off.is_empty() && off.limit().is_none());
        let k = KeyedLimiter::new(lim(1.0, 1), 2);
        assert_eq!(k.check(&"a", ms(0)), Ok(()));
        assert!(k.is_empty(), "check does not track");
        for (key, t) in [("a", 0), ("b", 100), ("c", 200)] {
            assert_eq!(k.try_take(&key, ms(t)), Ok(()));
        }
        assert_eq!(k.len(), 2);
        assert_eq!(k.try_take(&"a", ms(300)), Ok(()), "a was the least recently used: evicted, fresh again");
        assert_eq!(k.try_take(&"c", ms(300)), Err(ms(900)), "c is still tracked and limited");
        let many = KeyedLimiter::new(lim(0.001, 1), 1000);
        (0..5000u32).for_each(|i| many.note(&i, ms(u64::from(i))));
        assert_eq!(many.len(), 1000);
    }

    #[test]
    fn cidrs_parse_match_and_report_errors() {
        let c: Cidr = "10.1.2.3/8".parse().expect("cidr");
        assert_eq!((c, c.to_string()), ("10.0.0.0/8".parse().expect("cidr"), "10.0.0.0/8".to_owned()));
        assert!(c.contains(ip("10.255.0.1")) && c.contains(ip("::ffff:10.0.0.1")) && !c.contains(ip("11.0.0.1")));
        let one: Cidr = "::1".parse().expect("cidr");
        assert!(one.contains(ip("::1")) && !one.contains(ip("::2")) && !one.contains(ip("127.0.0.1")));
        let mapped: Cidr = "::ffff:10.0.0.0/104".parse().expect("cidr");
        assert!(mapped.contains(ip("10.9.9.9")));
        let all: Cidr = "0.0.0.0/0".parse().expect("cidr");
        assert!(all.contains(ip("1.2.3.4")) && !all.contains(ip("2001:db8::1")));
        assert_eq!("1.2.3.4".parse::<Cidr>().map(|c| c.to_string()), Ok("1.2.3.4/32".to_owned()));
        for bad in ["10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0/8", "x", "10.0.0.0/-1"] {
            let e = bad.parse::<Cidr>().expect_err(bad);
            assert!(e.to_string().contains(bad), "{e}");
        }
        assert_eq!(addr_key(ip("2001:db8::1")), addr_key(ip("2001:db8::ffff:1")));
        assert_eq!(addr_key(ip("::ffff:1.2.3.4")), ip("1.2.3.4"));
    }

    #[test]
    fn client_addr_believes_only_trusted_proxies() {
        let trusted: Vec<Cidr> = ["10.0.0.0/8", "::1"].iter().map(|s| s.parse().expect("cidr")).collect();
        let at = |peer: &str, xff: Option<&str>| client_addr(ip(peer), xff, &trusted).to_string();
        assert_eq!(at("203.0.113.5", Some("1.2.3.4")), "203.0.113.5", "spoofed XFF from an untrusted peer");
        assert_eq!(at("10.0.0.1", None), "10.0.0.1");
        assert_eq!(at("10.0.0.1", Some(" ")), "10.0.0.1");
        assert_eq!(at("10.0.0.1", Some("6.6.6.6, 1.2.3.4, 10.0.0.2")), "1.2.3.4", "multi-hop; left of it is ignored");
        assert_eq!(at("10.0.0.1", Some("1.2.3.4, unknown, 10.0.0.2")), "10.0.0.2", "malformed: last trusted hop");
        assert_eq!(at("10.0.0.1", Some("1.2.3.4,,")), "10.0.0.1");
        assert_eq!(at("10.0.0.1", Some("10.0.0.3, 10.0.0.2")), "10.0.0.3", "all trusted: the leftmost");
        assert_eq!(at("::ffff:10.0.0.1", Some("2001:db8::1")), "2001:db8::1");
        assert_eq!(at("::1", Some("[2001:db8::2]:443")), "2001:db8::2");
        assert_eq!(at("::1", Some("1.2.3.4:80")), "1.2.3.4");
        assert_eq!(at("::ffff:1.2.3.4", Some("5.6.7.8")), "1.2.3.4");
    }

    proptest! {
        /// (a) Over any window of length T, at most burst + rate·T admissions.
        #[test]
        fn no_window_admits_more_than_burst_plus_rate(rate in 0.1f64..100.0, burst in 1u32..20, gaps in gaps()) {
            let (mut b, mut t, mut admitted) = (TokenBucket::new(lim(rate, burst), Duration::ZERO), 0u64, vec![]);
            for g in gaps {
                t += g;
                if b.try_take(Duration::from_nanos(t)).is_ok() {
                    admitted.push(t);
                }
            }
            for i in 0..admitted.len() {
                for j in i..admitted.len() {
                    let span = (admitted[j] - admitted[i]) as f64 / 1e9;
                    prop_assert!((j - i + 1) as f64 <= f64::from(burst) + rate * span + 1e-6);
                }
            }
        }

        /// (b) After a refusal with wait R, now+R succeeds and now+R-1ms fails,
        /// with time also stepping backwards.
        #[test]
        fn retry_after_is_exact(rate in 0.1f64..1000.0, burst in 1u32..10, steps in vec(-300i64..300, 1..200)) {
            let (mut b, mut t) = (TokenBucket::new(lim(rate, burst), Duration::ZERO), 0i64);
            for step in steps {
                t = (t + step).max(0);
                let now = ms(t as u64);
                if let Err(wait) = b.try_take(now) {
                    let ok_at = |mut copy: TokenBucket, at| copy.try_take(at).is_ok();
                    prop_assert!(ok_at(b, now + wait));
                    prop_assert!(wait <= ms(1) || !ok_at(b, now + wait - ms(1)));
                }
            }
        }

        /// (c) A key's traffic never changes another key's answers: each key
        /// behaves exactly like a bucket of its own.
        #[test]
        fn keys_are_independent(ops in vec((0u8..5, 0u64..30_000_000, any::<bool>()), 1..300)) {
            let (k, mut alone, mut t) = (KeyedLimiter::new(lim(20.0, 3), 1000), HashMap::new(), 0);
            for (key, gap, fail) in ops {
                t += gap;
                let now = Duration::from_nanos(t);
                let own = alone.entry(key).or_insert_with(|| TokenBucket::new(lim(20.0, 3), now));
                prop_assert_eq!(k.check(&key, now), own.check(now));
                if fail {
                    k.note(&key, now);
                    own.note(now);
                } else {
                    prop_assert_eq!(k.try_take(&key, now), own.try_take(now));
                }
            }
        }

        /// (e) Arbitrary (backwards, huge) times never panic, and grant exactly
        /// what the same requests would get on a clock that never goes back.
        #[test]
        fn backwards_time_grants_nothing_extra(ops in vec((0u8..3, prop_oneof![0u64..5_000_000_000, any::<u64>()]), 1..200)) {
            let mut raw = TokenBucket::new(lim(7.0, 4), Duration::ZERO);
            let (mut mono, mut max) = (raw, Duration::ZERO);
            for (op, t) in ops {
                let now = Duration::from_nanos(t);
                let at = max.max(now); // `check` reads only: the bucket has not seen its time
                match op {
                    0 => prop_assert_eq!(raw.try_take(now).is_ok(), mono.try_take(at).is_ok()),
                    1 => prop_assert_eq!(raw.check(now).is_ok(), mono.check(at).is_ok()),
                    _ => { raw.note(now); mono.note(at); }
                }
                if op != 1 {
                    max = at;
                }
            }
        }

        /// (f) An untrusted peer's XFF is never read; behind trusted hops, the
        /// client is the first untrusted address from the right.
        #[test]
        fn client_addr_finds_the_client(peer in any::<[u8; 4]>(), junk in ".{0,40}", client in any::<[u8; 4]>(),
                                        hops in vec(any::<[u8; 3]>(), 0..4)) {
            let trusted: [Cidr; 1] = ["10.0.0.0/8".parse().expect("cidr")];
            let peer = IpAddr::from(peer);
            prop_assume!(!trusted[0].contains(peer));
            prop_assert_eq!(client_addr(peer, Some(&junk), &trusted), peer);
            let client = IpAddr::from(client);
            prop_assume!(!trusted[0].contains(client));
            let mut xff = format!("{junk}, {client}");
            hops.iter().for_each(|h| xff.push_str(&format!(", 10.{}.{}.{}", h[0], h[1], h[2])));
            prop_assert_eq!(client_addr(ip("10.0.0.1"), Some(&xff), &trusted), client);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// (d) The keyed limiter never tracks more than max_keys.
        #[test]
        fn len_never_exceeds_max_keys(max in 1usize..700, ops in vec((0u16..2000, 0u64..5_000_000, any::<bool>()), 1..800)) {
            let (k, mut t) = (KeyedLimiter::new(lim(1.0, 2), max), 0);
            for (key, gap, fail) in ops {
                t += gap;
                let now = Duration::from_nanos(t);
                if fail { k.note(&key, now) } else { let _ = k.try_take(&key, now); }
                prop_assert!(k.len() <= max);
            }
        }
    }
}
