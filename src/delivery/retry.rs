//! The retry schedule: pure functions of the attempt number, `Retry-After`
//! and a jitter seed.

use std::time::Duration;

/// CONTRACT §10: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
pub fn default_schedule() -> Vec<Duration> {
    [5, 300, 1800, 7200, 18_000, 36_000, 36_000].into_iter().map(Duration::from_secs).collect()
}

/// The wait before the retry that follows attempt `attempt` (1 = the first
/// attempt), or `None` when the schedule is exhausted (the delivery fails).
/// The scheduled wait gets ±10% jitter from `jitter_seed`; a longer
/// `Retry-After` wins, but only up to the schedule's longest step (CONTRACT
/// §11 continued): a receiver cannot park a delivery for good, nor — by an
/// absurd value that overflows later arithmetic — make it retry at once.
pub fn next_delay(schedule: &[Duration], attempt: u32, retry_after: Option<Duration>, jitter_seed: u64) -> Option<Duration> {
    let base = *schedule.get((attempt as usize).checked_sub(1)?)?;
    let longest = schedule.iter().copied().max().unwrap_or(base);
    let retry_after = retry_after.map(|r| r.min(longest));
    // A fraction in [0.9, 1.1] from the seed (splitmix64 scrambles it).
    let mut z = jitter_seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    let unit = (z >> 11) as f64 / (1u64 << 53) as f64;
    let jittered = base.mul_f64(0.9 + 0.2 * unit);
    Some(match retry_after {
        Some(r) if r > jittered => r,
        _ => jittered,
    })
}

/// `wait` from `now` (Unix ms), saturating: never before `now`, whatever
/// the wait.
pub fn due_at(now: i64, wait: Duration) -> i64 {
    now.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX))
}

/// A parsed `--webhook-retry-schedule` (a newtype so clap takes it as one value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule(pub Vec<Duration>);

impl Schedule {
    /// [`parse_schedule`], for clap.
    pub fn parse(s: &str) -> Result<Schedule, String> {
        parse_schedule(s).map(Schedule)
    }
}

/// Parses a schedule: `1s,2s,4s` (units `ms`, `s`, `m`, `h`; a bare number is seconds).
pub fn parse_schedule(s: &str) -> Result<Vec<Duration>, String> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let p = part.trim();
        let split = p.find(|c: char| !c.is_ascii_digit()).unwrap_or(p.len());
        let (num, unit) = p.split_at(split);
        let n: u64 = num.parse().map_err(|_| format!("invalid retry delay {p:?} (try 5s, 5m, 2h, 200ms)"))?;
        let d = match unit {
            "ms" => Duration::from_millis(n),
            "" | "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            _ => return Err(format!("invalid unit in retry delay {p:?} (use ms, s, m or h)")),
        };
        out.push(d);
    }
    if out.len() > 100 {
        return Err("a retry schedule has at most 100 delays".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_schedules() {
        let s = parse_schedule("200ms, 1s,2m,3h,4").expect("parse");
        assert_eq!(s, vec![Duration::from_millis(200), Duration::from_secs(1), Duration::from_secs(120), Duration::from_secs(10_800), Duration::from_secs(4)]);
        assert!(parse_schedule("1d").is_err() && parse_schedule("").is_err() && parse_schedule("1s,,2s").is_err());
    }

    #[test]
    fn the_schedule_ends() {
        let s = default_schedule();
        assert_eq!(next_delay(&s, 8, None, 1), None);
        assert_eq!(next_delay(&s, 0, None, 1), None);
        assert!(next_delay(&s, 7, None, 1).is_some());
    }

    proptest! {
        #[test]
        fn jitter_stays_within_ten_percent(attempt in 1u32..=7, seed: u64) {
            let s = default_schedule();
            let d = next_delay(&s, attempt, None, seed).expect("in schedule");
            let base = s[attempt as usize - 1];
            prop_assert!(d >= base.mul_f64(0.9) && d <= base.mul_f64(1.1));
        }

        #[test]
        fn a_longer_retry_after_wins(attempt in 1u32..=7, seed: u64, ra in 0u64..36_000) {
            let s = default_schedule();
            let ra = Duration::from_secs(ra);
            let d = next_delay(&s, attempt, Some(ra), seed).expect("in schedule");
            let plain = next_delay(&s, attempt, None, seed).expect("in schedule");
            prop_assert_eq!(d, plain.max(ra));
        }

        /// Any `Retry-After` (any u64 of seconds) waits at least the
        /// jittered step and at most the longest step (or the jittered step
        /// when that is longer), and the due time never precedes now.
        #[test]
        fn retry_after_is_clamped_to_the_longest_step(attempt in 1u32..=7, seed: u64, secs: u64, now in 0i64..i64::MAX / 2, short: bool) {
            let s = if short { vec![Duration::from_secs(1), Duration::from_secs(2)] } else { default_schedule() };
            let attempt = attempt.min(s.len() as u32);
            let longest = s.iter().copied().max().expect("steps");
            let d = next_delay(&s, attempt, Some(Duration::from_secs(secs)), seed).expect("in schedule");
            let plain = next_delay(&s, attempt, None, seed).expect("in schedule");
            prop_assert!(d >= plain && d <= longest.max(plain), "{:?} vs {:?}/{:?}", d, plain, longest);
            prop_assert_eq!(d, plain.max(Duration::from_secs(secs).min(longest)));
            let at = due_at(now, d);
            prop_assert!(at >= now && at <= now + longest.mul_f64(1.1).as_millis() as i64 + 1);
        }

        #[test]
        fn due_at_saturates(now: i64, ms: u64) {
            let at = due_at(now, Duration::from_millis(ms));
            prop_assert!(at >= now);
            prop_assert_eq!(at, now.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX)));
        }

        #[test]
        fn past_the_schedule_is_failed(len in 0usize..10, extra in 1u32..5, seed: u64) {
            let s = vec![Duration::from_secs(1); len];
            prop_assert_eq!(next_delay(&s, len as u32 + extra, None, seed), None);
        }
    }
}
