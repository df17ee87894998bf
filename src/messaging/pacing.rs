//! The pacing rule of CONTRACT §9, as pure functions of the clock: a send
//! queue asks [`next_allowed`] when its next message may leave, given the
//! times of its recent sends. Nothing here reads a clock, so the property
//! tests below run it over hours of virtual time in milliseconds.
//!
//! The rule: in any rolling 60 s at most `ratePerMin` sends; in any rolling
//! 3600 s at most `ratePerHour`; and two sends never closer than half of
//! `60000 / ratePerMin` ms (no bursts, even inside the minute's budget).

use std::collections::VecDeque;

/// A session's rates (each 1..=100000, CONTRACT §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rates {
    pub per_min: u32,
    pub per_hour: u32,
}

/// The smallest gap between two sends, in ms (rounded up, so never closer).
pub fn min_gap_ms(per_min: u32) -> i64 {
    let per_min = i64::from(per_min.max(1));
    (30_000 + per_min - 1) / per_min
}

/// The earliest time at or after `now` at which one more send keeps the
/// rule, given `history`: the times of earlier sends, oldest first (only the
/// last hour matters).
pub fn next_allowed(history: &VecDeque<i64>, now: i64, rates: Rates) -> i64 {
    let mut t = now;
    let n = history.len();
    if let Some(&last) = history.back() {
        t = t.max(last + min_gap_ms(rates.per_min));
    }
    let per_min = rates.per_min.max(1) as usize;
    if n >= per_min {
        t = t.max(history[n - per_min] + 60_000);
    }
    let per_hour = rates.per_hour.max(1) as usize;
    if n >= per_hour {
        t = t.max(history[n - per_hour] + 3_600_000);
    }
    t
}

/// The most sends any rate can look back on (the largest allowed rate).
pub const MAX_HISTORY: usize = 100_000;

/// Records a send at `at` and forgets what no rate can need any more: sends
/// older than an hour (kept whatever the current rates, so a `PATCH` to
/// higher rates still sees every send of the last hour).
pub fn record(history: &mut VecDeque<i64>, at: i64) {
    history.push_back(at);
    while history.len() > MAX_HISTORY || history.front().is_some_and(|&f| f <= at - 3_600_000) {
        history.pop_front();
    }
}

/// How long to show `composing` before a message of `chars` characters:
/// about a fast typist's time (45 ms a character after a 0.5 s start), with
/// `jitter` in [0, 1) spreading it ±20%, always within 1..=8 s (so a short
/// reply is typed for the minimum second, a paragraph for several).
pub fn typing_ms(chars: usize, jitter: f64) -> i64 {
    let base = 500.0 + 45.0 * chars.min(1_000) as f64;
    let spread = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
    ((base * spread) as i64).clamp(1_000, 8_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Sends `arrivals` (the times messages become ready, sorted) through the
    /// rule with rates that may change at `change_at`; returns send times.
    fn simulate(arrivals: &[i64], first: Rates, second: Rates, change_at: i64) -> Vec<(i64, Rates)> {
        let mut history = VecDeque::new();
        let mut out = Vec::new();
        let mut clock = 0;
        for &a in arrivals {
            clock = clock.max(a);
            let rates = if clock >= change_at { second } else { first };
            let t = next_allowed(&history, clock, rates);
            assert!(t >= clock);
            record(&mut history, t);
            out.push((t, rates));
            clock = t;
        }
        out
    }

    fn check_windows(sends: &[(i64, Rates)]) {
        for (i, &(t, rates)) in sends.iter().enumerate() {
            if i > 0 {
                assert!(t - sends[i - 1].0 >= min_gap_ms(rates.per_min), "gap at {i}");
            }
            let in_min = sends[..=i].iter().filter(|(s, _)| *s > t - 60_000).count();
            assert!(in_min <= rates.per_min as usize, "{in_min} sends in the minute before {t}");
            let in_hour = sends[..=i].iter().filter(|(s, _)| *s > t - 3_600_000).count();
            assert!(in_hour <= rates.per_hour as usize, "{in_hour} sends in the hour before {t}");
        }
    }

    fn rates() -> impl Strategy<Value = Rates> {
        (1u32..=120, 1u32..=400).prop_map(|(per_min, per_hour)| Rates { per_min, per_hour })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        /// Random arrival patterns (bursts and gaps, over up to ~3 virtual
        /// hours): no window ever holds more than its rate, no two sends are
        /// closer than the gap, and nothing is dropped.
        #[test]
        fn windows_and_gap_hold(gaps in proptest::collection::vec(0i64..40_000, 1..600), first in rates(), second in rates(), change in 0i64..5_000_000) {
            let mut t = 0;
            let arrivals: Vec<i64> = gaps.iter().map(|g| { t += g; t }).collect();
            let sends = simulate(&arrivals, first, second, change);
            prop_assert_eq!(sends.len(), arrivals.len());
            check_windows(&sends);
        }

        /// Never later than needed: a send happens at its arrival, or exactly
        /// when one of the three limits releases it.
        #[test]
        fn no_needless_wait(gaps in proptest::collection::vec(0i64..10_000, 1..300), r in rates()) {
            let mut t = 0;
            let arrivals: Vec<i64> = gaps.iter().map(|g| { t += g; t }).collect();
            let mut history = VecDeque::new();
            let mut clock = 0;
            for &a in &arrivals {
                clock = clock.max(a);
                let at = next_allowed(&history, clock, r);
                if at > clock {
                    // One millisecond earlier would break a limit.
                    let mut trial: Vec<(i64, Rates)> = history.iter().map(|&h| (h, r)).collect();
                    trial.push((at - 1, r));
                    let gap_ok = history.back().is_none_or(|&l| at - 1 - l >= min_gap_ms(r.per_min));
                    let min_ok = trial.iter().filter(|(s, _)| *s > at - 1 - 60_000).count() <= r.per_min as usize;
                    let hour_ok = trial.iter().filter(|(s, _)| *s > at - 1 - 3_600_000).count() <= r.per_hour as usize;
                    prop_assert!(!(gap_ok && min_ok && hour_ok), "waited past {} for nothing", at - 1);
                }
                record(&mut history, at);
                clock = at;
            }
        }

        #[test]
        fn typing_is_bounded_and_grows(a in 0usize..2_000, b in 0usize..2_000, j in 0.0f64..1.0) {
            let (x, y) = (typing_ms(a.min(b), j), typing_ms(a.max(b), j));
            prop_assert!((1_000..=8_000).contains(&x));
            prop_assert!(x <= y);
        }
    }

    #[test]
    fn sixty_a_minute_is_one_every_half_second_at_most() {
        let r = Rates { per_min: 60, per_hour: 600 };
        assert_eq!(min_gap_ms(60), 500);
        let sends = simulate(&[0; 8], r, r, i64::MAX);
        let times: Vec<i64> = sends.iter().map(|s| s.0).collect();
        assert_eq!(times, vec![0, 500, 1000, 1500, 2000, 2500, 3000, 3500]);
        // The 61st send of a minute waits for the first to leave the window.
        let sends = simulate(&[0; 61], r, r, i64::MAX);
        assert_eq!(sends[60].0, 60_000);
        assert!(typing_ms(0, 0.5) >= 1_000 && typing_ms(10_000, 0.5) == 8_000);
        assert!(typing_ms(200, 0.5) > typing_ms(10, 0.5));
    }

    #[test]
    fn the_hour_budget_holds_across_a_virtual_day() {
        let r = Rates { per_min: 100, per_hour: 30 };
        let sends = simulate(&vec![0; 100], r, r, i64::MAX);
        check_windows(&sends);
        assert_eq!(sends[30].0, 3_600_000 + sends[0].0);
    }
}
