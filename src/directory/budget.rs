//! The lookup budget's admission rule (CONTRACT §12): a session may spend
//! at most `--lookups-per-hour` units (number checks not answered from the
//! cache, participant adds) in any rolling hour.
//!
//! A pure function of the spent window, the clock and the limit, so that
//! it is property-tested over virtual time; the store keeps the window
//! (so a restart does not refill the budget) and the API calls [`admit`]
//! inside the write transaction that stores the new window.

/// The rolling window's length.
pub const HOUR_MS: i64 = 3_600_000;

/// Units spent at one instant (Unix ms), oldest first in a window.
pub type Spent = (i64, u32);

/// Why a spend is refused. Nothing is spent either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Enough units are free again `retry_after_ms` from now (exactly: the
    /// same spend is admitted then, not a millisecond earlier).
    RetryAfter { retry_after_ms: i64 },
    /// The spend is larger than the whole hour's limit: it never fits.
    OverLimit,
}

/// The entries of `window` still inside the rolling hour at `now` (an entry
/// spent at `t` is free again at `t + HOUR_MS`).
pub fn live(window: &[Spent], now: i64) -> impl Iterator<Item = &Spent> {
    window.iter().filter(move |(t, _)| *t > now - HOUR_MS)
}

/// Admits a spend of `units` at `now` against `limit` units per rolling
/// hour: the new window (expired entries dropped, the spend appended), or
/// why not. `window` is oldest first; a spend of 0 is always admitted.
pub fn admit(window: &[Spent], now: i64, limit: u32, units: u32) -> Result<Vec<Spent>, Refusal> {
    let mut kept: Vec<Spent> = live(window, now).copied().collect();
    if units == 0 {
        return Ok(kept);
    }
    if units > limit {
        return Err(Refusal::OverLimit);
    }
    let used: u64 = kept.iter().map(|(_, u)| u64::from(*u)).sum();
    let limit = u64::from(limit);
    let units64 = u64::from(units);
    if used + units64 <= limit {
        match kept.last_mut() {
            Some(last) if last.0 == now => last.1 = last.1.saturating_add(units),
            _ => kept.push((now, units)),
        }
        return Ok(kept);
    }
    // The oldest entries free up first: find the one whose expiry makes
    // room for the spend.
    let need = used + units64 - limit;
    let mut freed = 0u64;
    for (t, u) in &kept {
        freed += u64::from(*u);
        if freed >= need {
            return Err(Refusal::RetryAfter { retry_after_ms: t + HOUR_MS - now });
        }
    }
    // Unreachable with units <= limit (freeing everything frees `used`),
    // but answer the longest wait rather than panic.
    Err(Refusal::RetryAfter { retry_after_ms: HOUR_MS })
}

/// `Retry-After` in whole seconds, rounded up (at least 1).
pub fn retry_after_secs(retry_after_ms: i64) -> i64 {
    ((retry_after_ms + 999) / 1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fills_then_refuses_then_frees() {
        let w = admit(&[], 0, 3, 2).expect("2 of 3");
        let w = admit(&w, 10, 3, 1).expect("3 of 3");
        assert_eq!(admit(&w, 20, 3, 1), Err(Refusal::RetryAfter { retry_after_ms: HOUR_MS - 20 }));
        assert_eq!(admit(&w, 20, 3, 3), Err(Refusal::RetryAfter { retry_after_ms: HOUR_MS - 10 }));
        assert_eq!(admit(&w, 0, 3, 4), Err(Refusal::OverLimit));
        assert!(admit(&w, HOUR_MS - 1, 3, 1).is_err());
        assert_eq!(admit(&w, HOUR_MS, 3, 2).map(|w| w.len()).ok(), Some(2));
        assert_eq!(admit(&[], 0, 0, 1), Err(Refusal::OverLimit));
        assert_eq!(admit(&w, 5, 0, 0).map(|w| w.len()).ok(), Some(2));
        assert_eq!(retry_after_secs(1), 1);
        assert_eq!(retry_after_secs(1000), 1);
        assert_eq!(retry_after_secs(1001), 2);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// Random spends over ~3 virtual hours: no rolling hour ever holds
        /// more than the limit; every refusal's wait is exact (admitted at
        /// now + retry_after, refused a millisecond before).
        #[test]
        fn never_over_and_exact_waits(
            steps in proptest::collection::vec((0i64..400_000, 1u32..12), 1..200),
            limit in 1u32..40,
        ) {
            let mut window: Vec<Spent> = Vec::new();
            let mut spends: Vec<Spent> = Vec::new();
            let mut now = 0;
            for (gap, units) in steps {
                now += gap;
                match admit(&window, now, limit, units) {
                    Ok(w) => {
                        window = w;
                        spends.push((now, units));
                        let in_hour: u64 = spends.iter().filter(|(t, _)| *t > now - HOUR_MS).map(|(_, u)| u64::from(*u)).sum();
                        prop_assert!(in_hour <= u64::from(limit));
                    }
                    Err(Refusal::OverLimit) => prop_assert!(units > limit),
                    Err(Refusal::RetryAfter { retry_after_ms }) => {
                        prop_assert!(retry_after_ms > 0 && retry_after_ms <= HOUR_MS);
                        prop_assert!(admit(&window, now + retry_after_ms, limit, units).is_ok());
                        prop_assert!(admit(&window, now + retry_after_ms - 1, limit, units).is_err());
                    }
                }
            }
        }
    }
}
