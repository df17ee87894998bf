//! The gateway's two rate limits (CONTRACT §11), built on
//! [`super::rate_limit`]: requests per principal, and failed authentications
//! per client address. Either may be off (`--rate-limit 0` turns both off).

use std::net::IpAddr;
use std::time::Duration;

use super::rate_limit::{addr_key, KeyedLimiter, Limit, DEFAULT_MAX_KEYS};
use crate::auth::Principal;

/// Who a principal's limit is counted against: one api-key, or one person in
/// one organization (the same person in two organizations has two budgets).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PrincipalKey {
    ApiKey(u128),
    User { user: String, org: Option<String> },
}

impl PrincipalKey {
    /// The key of a caller.
    pub fn of(p: &Principal) -> PrincipalKey {
        match p {
            Principal::ApiKey { key_id, .. } => PrincipalKey::ApiKey(u128::from(*key_id)),
            Principal::User { user_id, org_id, .. } => PrincipalKey::User { user: user_id.clone(), org: org_id.clone() },
        }
    }
}

/// Both limiters (a limiter built from `None` allows everything, for free).
pub struct Limits {
    principals: KeyedLimiter<PrincipalKey>,
    failures: KeyedLimiter<IpAddr>,
}

impl Limits {
    /// Limiters for the configured limits.
    pub fn new(principal: Option<Limit>, failures: Option<Limit>) -> Limits {
        Limits {
            principals: KeyedLimiter::new(principal, DEFAULT_MAX_KEYS),
            failures: KeyedLimiter::new(failures, DEFAULT_MAX_KEYS),
        }
    }

    /// Whether `ip` may still try to authenticate (it has failure budget left).
    pub fn check_address(&self, ip: IpAddr, now: Duration) -> Result<(), Duration> {
        self.failures.check(&addr_key(ip), now)
    }

    /// Counts one failed authentication from `ip`.
    pub fn note_failure(&self, ip: IpAddr, now: Duration) {
        self.failures.note(&addr_key(ip), now);
    }

    /// Takes one request from the principal's budget.
    pub fn take(&self, p: &Principal, now: Duration) -> Result<(), Duration> {
        self.principals.try_take(&PrincipalKey::of(p), now)
    }
}
