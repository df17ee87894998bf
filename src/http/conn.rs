//! One client connection as the server watches it: what it is waiting for,
//! when it last made progress, and the §11 timeouts that cut it off.
//!
//! The socket is wrapped in [`Tracked`], which notes every byte read or
//! written and every write the client's window blocks. The request pipeline
//! marks the phases it controls (reading a body, handling). From those two
//! sources [`verdict`] — a pure function of the snapshot and a clock — says
//! whether a connection has overstayed: headers 10 s, idle keep-alive 60 s,
//! each blocked write 30 s (the body's 30 s is enforced where it is read).
//! The [`Registry`] of open connections picks whom to shed when the cap is
//! reached: the connection that has waited longest on its client.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

pub use super::rate_limit::monotonic_now as mono_now;

fn now_ms() -> u64 {
    mono_now().as_millis() as u64
}

/// How long a client may keep us waiting (CONTRACT §11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// From a request's first byte to its complete head.
    pub header: Duration,
    /// Reading a request body, in all.
    pub body: Duration,
    /// Any one write the client does not take.
    pub write: Duration,
    /// Between requests on a keep-alive connection.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header: Duration::from_secs(10),
            body: Duration::from_secs(30),
            write: Duration::from_secs(30),
            idle: Duration::from_secs(60),
        }
    }
}

/// What a connection is waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Between requests (or before the first byte).
    Idle = 0,
    /// Some bytes of a request head have arrived, not all.
    Head = 1,
    /// Our pipeline is reading the body from the client.
    Body = 2,
    /// Our own work: authenticating, the handler.
    Handling = 3,
    /// Writing a streamed answer (Server-Sent Events): never idle, but still
    /// cut when a write blocks too long, and shed like any client we wait on.
    Streaming = 4,
}

impl Phase {
    fn from_u8(v: u8) -> Phase {
        match v {
            1 => Phase::Head,
            2 => Phase::Body,
            3 => Phase::Handling,
            4 => Phase::Streaming,
            _ => Phase::Idle,
        }
    }
}

/// Why the server cut a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    HeaderTimeout,
    IdleTimeout,
    WriteTimeout,
    /// Shed to make room for a new client.
    Shed,
    /// The shutdown deadline passed.
    Shutdown,
    /// A streamed answer's reader took nothing for the stall timeout.
    SlowReader,
}

impl Cut {
    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Cut::HeaderTimeout => "header_timeout",
            Cut::IdleTimeout => "idle_timeout",
            Cut::WriteTimeout => "write_timeout",
            Cut::Shed => "shed",
            Cut::Shutdown => "shutdown",
            Cut::SlowReader => "slow_reader",
        }
    }
}

/// A connection's state at one instant (milliseconds on [`mono_now`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub phase: Phase,
    /// When the current phase began.
    pub phase_since: u64,
    /// Last byte read or written (or the accept).
    pub last_progress: u64,
    /// When the pending write started to block; 0 when none blocks.
    pub write_blocked_since: u64,
}

/// Whether a connection in state `s` has overstayed at `now`. Pure.
pub fn verdict(s: Snapshot, now: u64, t: &Timeouts) -> Option<Cut> {
    let over = |since: u64, limit: Duration| now.saturating_sub(since) > limit.as_millis() as u64;
    if s.write_blocked_since != 0 && over(s.write_blocked_since, t.write) {
        return Some(Cut::WriteTimeout);
    }
    match s.phase {
        Phase::Head if over(s.phase_since, t.header) => Some(Cut::HeaderTimeout),
        Phase::Idle if s.write_blocked_since == 0 && over(s.phase_since.max(s.last_progress), t.idle) => {
            Some(Cut::IdleTimeout)
        }
        _ => None,
    }
}

/// When `s` last moved, for shedding: `None` while our own code works on it
/// (it is not waiting on its client, so it is never shed).
pub fn waiting_since(s: Snapshot) -> Option<u64> {
    if s.phase == Phase::Handling && s.write_blocked_since == 0 {
        return None;
    }
    Some(s.last_progress.max(s.phase_since))
}

/// Shared between the socket wrapper, the pipeline and the registry.
#[derive(Debug)]
pub struct ConnState {
    pub peer: SocketAddr,
    phase: AtomicU8,
    phase_since: AtomicU64,
    last_progress: AtomicU64,
    write_blocked_since: AtomicU64,
    /// A request left its body unread: close with a lingering read.
    body_left: AtomicBool,
    /// Set when the registry sheds this connection.
    shed: Notify,
    /// Set when a stream cut this connection for not reading.
    slow_reader: AtomicBool,
    /// Set (and `drain` notified) when the server starts shutting down:
    /// streamed answers end so that the connection can close.
    draining: AtomicBool,
    drain: Notify,
}

impl ConnState {
    /// A new connection, accepted now.
    pub fn new(peer: SocketAddr) -> ConnState {
        let now = now_ms();
        ConnState {
            peer,
            phase: AtomicU8::new(Phase::Idle as u8),
            phase_since: AtomicU64::new(now),
            last_progress: AtomicU64::new(now),
            write_blocked_since: AtomicU64::new(0),
            body_left: AtomicBool::new(false),
            shed: Notify::new(),
            slow_reader: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            drain: Notify::new(),
        }
    }

    /// Enters `phase` now.
    pub fn set_phase(&self, phase: Phase) {
        self.phase_since.store(now_ms(), Ordering::Relaxed);
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    /// Notes that a request was answered without reading its body.
    pub fn leave_body(&self) {
        self.body_left.store(true, Ordering::Relaxed);
    }

    /// Whether some request was answered without reading its body.
    pub fn body_left(&self) -> bool {
        self.body_left.load(Ordering::Relaxed)
    }

    /// The state now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            phase: Phase::from_u8(self.phase.load(Ordering::Relaxed)),
            phase_since: self.phase_since.load(Ordering::Relaxed),
            last_progress: self.last_progress.load(Ordering::Relaxed),
            write_blocked_since: self.write_blocked_since.load(Ordering::Relaxed),
        }
    }

    fn on_read(&self) {
        let now = now_ms();
        self.last_progress.store(now, Ordering::Relaxed);
        // The first byte after an idle spell starts a request head.
        if self
            .phase
            .compare_exchange(Phase::Idle as u8, Phase::Head as u8, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.phase_since.store(now, Ordering::Relaxed);
        }
    }

    fn on_write(&self) {
        self.last_progress.store(now_ms(), Ordering::Relaxed);
        self.write_blocked_since.store(0, Ordering::Relaxed);
    }

    fn on_write_blocked(&self) {
        let _ = self.write_blocked_since.compare_exchange(0, now_ms().max(1), Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Resolves once the registry sheds this connection.
    pub async fn shed(&self) {
        self.shed.notified().await
    }

    /// Cuts this connection because its reader stopped taking a stream.
    pub fn cut_slow_reader(&self) {
        self.slow_reader.store(true, Ordering::Relaxed);
        self.shed.notify_one();
    }

    /// Whether [`ConnState::cut_slow_reader`] cut this connection.
    pub fn cut_for_slow_reader(&self) -> bool {
        self.slow_reader.load(Ordering::Relaxed)
    }

    /// The server is shutting down: streams on this connection end.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.drain.notify_waiters();
    }

    /// Resolves once the server shuts down (at once if it already does).
    pub async fn draining(&self) {
        let notified = self.drain.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.draining.load(Ordering::SeqCst) {
            return;
        }
        notified.await
    }
}

/// A TCP stream that reports its progress to a [`ConnState`].
pub struct Tracked {
    inner: TcpStream,
    state: Arc<ConnState>,
}

impl Tracked {
    /// Wraps an accepted stream.
    pub fn new(inner: TcpStream, state: Arc<ConnState>) -> Tracked {
        Tracked { inner, state }
    }
}

impl AsyncRead for Tracked {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.on_read();
        }
        r
    }
}

impl Tracked {
    /// Notes a write's outcome: bytes taken are progress, a full window
    /// starts the write timer. (A flush that completes at once is neither:
    /// hyper flushes on every poll, and an idle connection must stay idle.)
    fn track<T>(&self, r: Poll<io::Result<T>>, moved: impl FnOnce(&T) -> bool) -> Poll<io::Result<T>> {
        match &r {
            Poll::Ready(Ok(v)) if moved(v) || self.state.write_blocked_since.load(Ordering::Relaxed) != 0 => {
                self.state.on_write()
            }
            Poll::Pending => self.state.on_write_blocked(),
            _ => {}
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.track(r, |n| *n > 0)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.track(r, |n| *n > 0)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.track(r, |_| false)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The open connections, so that the accept loop can shed one when full.
#[derive(Default)]
pub struct Registry {
    conns: Mutex<HashMap<u64, Arc<ConnState>>>,
    next: AtomicU64,
}

impl Registry {
    /// Adds a connection; returns its key for [`Registry::remove`].
    pub fn add(&self, state: Arc<ConnState>) -> u64 {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(key, state);
        key
    }

    /// Forgets a closed connection.
    pub fn remove(&self, key: u64) {
        self.lock().remove(&key);
    }

    /// Open connections.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sheds the connection that has waited longest on its client; false if
    /// every open connection is busy in our own code.
    pub fn shed_one(&self) -> bool {
        let conns = self.lock();
        let victim = conns
            .values()
            .filter_map(|c| waiting_since(c.snapshot()).map(|t| (t, c)))
            .min_by_key(|(t, _)| *t)
            .map(|(_, c)| c.clone());
        drop(conns);
        match victim {
            Some(c) => {
                c.shed.notify_one();
                true
            }
            None => false,
        }
    }

    /// Cuts every open connection (the shutdown deadline passed).
    pub fn shed_all(&self) {
        for c in self.lock().values() {
            c.shed.notify_one();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ConnState>>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t() -> Timeouts {
        Timeouts::default()
    }

    fn snap(phase: Phase, phase_since: u64, last_progress: u64, write_blocked_since: u64) -> Snapshot {
        Snapshot { phase, phase_since, last_progress, write_blocked_since }
    }

    #[test]
    fn each_phase_has_its_own_deadline() {
        let t = t();
        assert_eq!(verdict(snap(Phase::Head, 1000, 1000, 0), 11_000, &t), None);
        assert_eq!(verdict(snap(Phase::Head, 1000, 1000, 0), 11_001, &t), Some(Cut::HeaderTimeout));
        // Idle: 60 s from the later of the phase start and the last byte.
        assert_eq!(verdict(snap(Phase::Idle, 1000, 5000, 0), 65_000, &t), None);
        assert_eq!(verdict(snap(Phase::Idle, 1000, 5000, 0), 65_001, &t), Some(Cut::IdleTimeout));
        // A write the client does not take: 30 s, whatever the phase.
        for p in [Phase::Idle, Phase::Head, Phase::Body, Phase::Handling] {
            assert_eq!(verdict(snap(p, 0, 0, 2000), 32_001, &t), Some(Cut::WriteTimeout));
            assert_eq!(verdict(snap(p, 0, 0, 2000), 32_000, &t).filter(|c| *c == Cut::WriteTimeout), None);
        }
        // Our own work and body reads are never cut here.
        assert_eq!(verdict(snap(Phase::Handling, 0, 0, 0), 10_000_000, &t), None);
        assert_eq!(verdict(snap(Phase::Body, 0, 0, 0), 10_000_000, &t), None);
    }

    #[test]
    fn shedding_skips_connections_in_our_own_hands() {
        assert_eq!(waiting_since(snap(Phase::Handling, 5, 9, 0)), None);
        assert_eq!(waiting_since(snap(Phase::Handling, 5, 9, 7)), Some(9));
        assert_eq!(waiting_since(snap(Phase::Body, 5, 9, 0)), Some(9));
        assert_eq!(waiting_since(snap(Phase::Idle, 12, 9, 0)), Some(12));
    }

    proptest! {
        /// Progress never brings a deadline closer: a connection that is
        /// fine at `now` is still fine after any later byte moved it on.
        #[test]
        fn progress_only_postpones(phase in 0u8..4, since in 0u64..100_000, prog in 0u64..100_000,
                                   blocked in prop::option::of(1u64..100_000), dt in 0u64..200_000, bump in 0u64..50_000) {
            let phase = Phase::from_u8(phase);
            let s = snap(phase, since, prog, blocked.unwrap_or(0));
            let now = since.max(prog).max(blocked.unwrap_or(0)) + dt;
            let moved = Snapshot { last_progress: prog + bump, ..s };
            if verdict(s, now, &t()).is_none() {
                prop_assert!(verdict(moved, now, &t()).is_none());
            }
        }

        /// Any waiting connection is cut eventually, and never before its limit.
        #[test]
        fn every_wait_ends(phase in 0u8..3, since in 0u64..100_000, blocked in any::<bool>()) {
            let phase = Phase::from_u8(phase);
            let s = snap(phase, since, since, if blocked { since.max(1) } else { 0 });
            let longest = 60_001;
            let cut = verdict(s, since + longest, &t());
            prop_assert!(cut.is_some() || phase == Phase::Body);
            prop_assert!(verdict(s, since + 10_000, &t()).is_none());
        }
    }
}
