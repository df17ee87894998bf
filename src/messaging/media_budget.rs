//! The global budget of media bytes being read, fetched or decoded at once
//! (`--media-fetch-budget`, CONTRACT §11 continued).
//!
//! A request body that carries media is charged before it is read, a URL
//! fetch before its response body is read; the charge is held until the
//! bytes are staged in the data file (and dropped from memory). Past the
//! budget a charge waits, at most the caller's bounded wait, in arrival
//! order (tokio's semaphore is fair: a big charge is not starved by small
//! ones), and then the caller answers 429. A charge larger than the whole
//! budget is charged as the whole budget: one request of any allowed size is
//! always possible, alone.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes per permit: the semaphore counts KiB so a budget of terabytes fits
/// in the `u32` a charge takes.
const UNIT: u64 = 1024;

/// The process-wide media budget; exists so every place that holds media in
/// memory draws from one bound.
#[derive(Clone, Debug)]
pub struct MediaBudget {
    sem: Arc<Semaphore>,
    /// Permits in all (0: no budget, every charge is free).
    units: u32,
}

/// Bytes of the budget held by one request; released when dropped.
#[derive(Debug)]
pub struct Charge {
    _permit: Option<OwnedSemaphorePermit>,
    bytes: u64,
}

impl Charge {
    /// Bytes this charge holds (after the cap at the whole budget).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// The budget stayed exhausted for the whole wait; exists so the HTTP layer
/// can answer 429 with `details.budget`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted {
    /// Seconds after which a retry is worth it.
    pub retry_after_secs: u64,
}

impl MediaBudget {
    /// A budget of `bytes` (0 = unlimited).
    pub fn new(bytes: u64) -> MediaBudget {
        let units = bytes.div_ceil(UNIT).min(u64::from(u32::MAX >> 3)) as u32;
        MediaBudget { sem: Arc::new(Semaphore::new(units as usize)), units }
    }

    /// The budget in bytes (0 = unlimited).
    pub fn total(&self) -> u64 {
        u64::from(self.units) * UNIT
    }

    /// Bytes currently charged.
    pub fn in_use(&self) -> u64 {
        u64::from(self.units).saturating_sub(self.sem.available_permits() as u64) * UNIT
    }

    /// Charges `bytes` (at most the whole budget), waiting at most `wait`.
    pub async fn charge(&self, bytes: u64, wait: Duration) -> Result<Charge, Exhausted> {
        if self.units == 0 || bytes == 0 {
            return Ok(Charge { _permit: None, bytes: 0 });
        }
        let units = bytes.div_ceil(UNIT).min(u64::from(self.units)) as u32;
        let sem = self.sem.clone();
        match tokio::time::timeout(wait, sem.acquire_many_owned(units)).await {
            Ok(Ok(p)) => Ok(Charge { _permit: Some(p), bytes: u64::from(units) * UNIT }),
            // The semaphore is never closed; a timeout is exhaustion.
            _ => Err(Exhausted { retry_after_secs: 1 }),
        }
    }
}

/// Allocations of at least this size are mapped on their own and given back
/// to the system when freed (see [`return_big_buffers`]).
pub const MMAP_THRESHOLD: usize = 1024 * 1024;

/// Makes glibc map every buffer of [`MMAP_THRESHOLD`] or more on its own
/// and unmap it when freed, and trim its heaps past that much free space.
/// Without it glibc raises its threshold to the largest buffer freed so far
/// (a 16 MiB media buffer, a 21 MiB body), after which such buffers come
/// from per-thread arenas that keep them: RSS stays at its peak after the
/// work is done. Called once at `serve` start.
pub fn return_big_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before
    // the runtime's threads exist, and a refused setting changes nothing.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
        libc::mallopt(libc::M_TRIM_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Concurrent charges of random sizes, each held for a random number
        /// of scheduler turns: the bytes held never exceed the budget, and
        /// every waiter is served (the wait is long enough for all to pass
        /// in turn).
        #[test]
        fn held_never_exceeds_the_budget_and_waiters_are_served(
            budget_kib in 1u64..4096,
            jobs in proptest::collection::vec((1u64..8 << 20, 1u64..50), 1..40),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("rt");
            rt.block_on(async move {
                let b = MediaBudget::new(budget_kib * 1024);
                let held = Arc::new(AtomicU64::new(0));
                let peak = Arc::new(AtomicU64::new(0));
                let mut tasks = Vec::new();
                for (bytes, hold_ms) in jobs.clone() {
                    let (b, held, peak) = (b.clone(), held.clone(), peak.clone());
                    tasks.push(tokio::spawn(async move {
                        let c = b.charge(bytes, Duration::from_secs(3600)).await.expect("served within the wait");
                        assert!(c.bytes() >= bytes.min(b.total()), "charged at least min(size, budget)");
                        let now = held.fetch_add(c.bytes(), Ordering::SeqCst) + c.bytes();
                        peak.fetch_max(now, Ordering::SeqCst);
                        assert!(now <= b.total(), "held {now} > budget {}", b.total());
                        for _ in 0..hold_ms {
                            tokio::task::yield_now().await;
                        }
                        held.fetch_sub(c.bytes(), Ordering::SeqCst);
                    }));
                }
                for t in tasks {
                    t.await.expect("task");
                }
                assert_eq!(b.in_use(), 0, "everything released");
                assert!(peak.load(Ordering::SeqCst) <= b.total());
            });
        }
    }

    /// A full budget makes a charge wait, then give up after its wait; it
    /// is served as soon as room returns.
    #[tokio::test]
    async fn a_full_budget_waits_then_refuses() {
        let b = MediaBudget::new(1 << 20);
        let first = b.charge(10 << 20, Duration::from_secs(1)).await.expect("one charge bigger than the budget passes alone");
        assert_eq!(first.bytes(), 1 << 20);
        assert_eq!(b.charge(1, Duration::from_millis(50)).await.err(), Some(Exhausted { retry_after_secs: 1 }));
        let b2 = b.clone();
        let waiter = tokio::spawn(async move { b2.charge(512 << 10, Duration::from_secs(5)).await.map(|c| c.bytes()) });
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(first);
        assert_eq!(waiter.await.expect("join"), Ok(512 << 10));
        assert_eq!(MediaBudget::new(0).charge(u64::MAX, Duration::ZERO).await.map(|c| c.bytes()), Ok(0), "0 = unlimited");
    }
}
