//! Who is calling, and what they may do.
//!
//! Two kinds of bearer token are tried in turn: an api-key (`wa_...`, looked up
//! by its SHA-256) and a login JWT (verified with ring against a JWKS, or the
//! embedded issuer). Either becomes a [`Principal`]; handlers then ask for
//! [`Authenticator::org_access`] with one [`Permission`], or for a super_admin.

pub mod api_key;
pub mod issuer;
pub mod jwks;
pub mod jwt;
pub mod permissions;
pub mod strict_json;
pub mod token_cache;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::header::AUTHORIZATION;
use hyper::HeaderMap;
use serde_json::Value;
use ulid::Ulid;

pub use permissions::{Permission, Permissions, Role};
use token_cache::TokenCache;

use crate::store::{now_ms, Store, StoreError};

/// Why a caller was refused. Mapped to 401/403 by the HTTP layer.
#[derive(Debug)]
#[non_exhaustive]
pub enum AuthError {
    /// No usable credentials: 401 with `WWW-Authenticate`.
    Unauthorized(String),
    /// Authenticated, but not allowed: 403.
    Forbidden(String),
    /// The store failed while checking.
    Store(StoreError),
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Unauthorized(m) | AuthError::Forbidden(m) => f.write_str(m),
            AuthError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for AuthError {}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        AuthError::Store(e)
    }
}

/// Where the gateway reads its claims in a login JWT (dotted paths).
#[derive(Clone, Debug)]
pub struct ClaimPaths {
    pub org: String,
    pub role: String,
    pub platform_role: String,
}

impl Default for ClaimPaths {
    fn default() -> Self {
        ClaimPaths { org: "org_id".into(), role: "org_role".into(), platform_role: "platform_role".into() }
    }
}

/// Reads a dotted path (`o.id`) out of a claims object.
pub fn claim<'a>(claims: &'a serde_json::Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut cur = claims.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_object()?.get(p)?;
    }
    Some(cur)
}

/// An authenticated caller.
#[derive(Clone, Debug)]
pub enum Principal {
    /// A person, from a login JWT.
    User {
        user_id: String,
        org_id: Option<String>,
        role: Option<Role>,
        super_admin: bool,
    },
    /// A script, from an api-key.
    ApiKey {
        key_id: Ulid,
        org_id: String,
        permissions: Permissions,
        /// The user who created the key; sessions it creates name them.
        created_by: String,
    },
}

impl Principal {
    /// The organization this caller acts in, if any (for logs).
    pub fn org_id(&self) -> Option<&str> {
        match self {
            Principal::User { org_id, .. } => org_id.as_deref(),
            Principal::ApiKey { org_id, .. } => Some(org_id),
        }
    }

    /// Whether this is a platform super_admin (only ever from a login JWT).
    pub fn is_super_admin(&self) -> bool {
        matches!(self, Principal::User { super_admin: true, .. })
    }

    /// The permissions this caller holds inside its organization.
    pub fn permissions(&self) -> Permissions {
        match self {
            Principal::User { role: Some(r), org_id: Some(_), .. } => r.permissions(),
            Principal::User { .. } => Permissions::EMPTY,
            Principal::ApiKey { permissions, .. } => *permissions,
        }
    }
}

/// A caller cleared to act inside one organization.
#[derive(Clone, Debug)]
pub struct OrgAccess {
    pub org_id: String,
    /// Recorded as `createdByUserId`.
    pub user_id: String,
    pub super_admin: bool,
    pub via_api_key: bool,
    /// Everything the caller may do here (for defaults that depend on it).
    pub permissions: Permissions,
}

/// Verifies bearer tokens and answers permission questions.
pub struct Authenticator {
    verifier: jwt::Verifier,
    claims: ClaimPaths,
    store: Arc<Store>,
    /// Verified login tokens → their principal.
    cache: TokenCache<Principal>,
    cache_hits: AtomicU64,
    /// When each api-key's `lastUsedAt` was last written (at most once a minute).
    last_used: Mutex<HashMap<Ulid, Instant>>,
}

const LAST_USED_EVERY: Duration = Duration::from_secs(60);

/// Bytes the verified-token cache may hold: a principal is a few dozen
/// bytes, so this is thousands of callers, whatever their tokens weigh.
pub const TOKEN_CACHE_BYTES: usize = 4 * 1024 * 1024;

impl Principal {
    /// About how many bytes this principal holds (for the token cache's budget).
    fn weight(&self) -> usize {
        std::mem::size_of::<Principal>()
            + match self {
                Principal::User { user_id, org_id, .. } => user_id.len() + org_id.as_ref().map_or(0, String::len),
                Principal::ApiKey { org_id, created_by, .. } => org_id.len() + created_by.len(),
            }
    }
}

fn bearer(headers: &HeaderMap) -> Result<&str, AuthError> {
    let value = headers
        .get(AUTHORIZATION)
        .ok_or_else(|| AuthError::Unauthorized("missing bearer token".into()))?;
    let value = value
        .to_str()
        .map_err(|_| AuthError::Unauthorized("malformed Authorization header".into()))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| AuthError::Unauthorized("expected `Authorization: Bearer <token>`".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthError::Unauthorized("expected `Authorization: Bearer <token>`".into()));
    }
    Ok(token.trim())
}

impl Authenticator {
    /// Builds an authenticator over a JWT verifier and the store, caching up
    /// to `cache_entries` verified tokens (0 disables the cache).
    pub fn new(verifier: jwt::Verifier, claims: ClaimPaths, store: Arc<Store>, cache_entries: usize) -> Authenticator {
        let leeway = verifier.options().leeway_secs;
        Authenticator {
            verifier,
            claims,
            store,
            cache: TokenCache::new(cache_entries, TOKEN_CACHE_BYTES, leeway),
            cache_hits: AtomicU64::new(0),
            last_used: Mutex::new(HashMap::new()),
        }
    }

    /// Logins answered from the token cache, and the cache's (entries, bytes).
    pub fn cache_stats(&self) -> (u64, usize, usize) {
        let (n, bytes) = self.cache.usage();
        (self.cache_hits.load(Ordering::Relaxed), n, bytes)
    }

    /// The JWT verifier (for readiness and metrics).
    pub fn verifier(&self) -> &jwt::Verifier {
        &self.verifier
    }

    /// Turns the request's bearer token into a principal.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        let token = bearer(headers)?;
        if token.starts_with(api_key::PREFIX) {
            return self.api_key(token).await;
        }
        // The generation is read before verifying: a key-set swap meanwhile
        // can only tag the entry older than the keys used, never newer.
        let generation = self.verifier.source().generation();
        let key = self.cache.enabled().then(|| token_cache::token_key(token));
        let now = jwt::now_secs();
        if let Some(p) = key.as_ref().and_then(|k| self.cache.get(k, generation, now)) {
            self.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(p);
        }
        let verified = self
            .verifier
            .verify(token)
            .await
            .map_err(|e| AuthError::Unauthorized(format!("invalid token: {e}")))?;
        let principal = self.user(&verified.claims)?;
        if let (Some(k), Ok(times)) = (key, jwt::TimeClaims::read(&verified.claims)) {
            self.cache.put(k, principal.clone(), principal.weight(), times, generation, now);
        }
        Ok(principal)
    }

    fn user(&self, claims: &serde_json::Map<String, Value>) -> Result<Principal, AuthError> {
        let user_id = match claims.get("sub") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(AuthError::Unauthorized("invalid token: no `sub` claim".into())),
        };
        let org_id = match claim(claims, &self.claims.org) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        if let Some(org) = &org_id {
            if !crate::api::valid_org_id(org) {
                return Err(AuthError::Unauthorized("invalid token: unusable organization id".into()));
            }
            // The organization's row is written by its first write (a
            // session or api-key created), never by a read or a refusal.
        }
        let role = match claim(claims, &self.claims.role) {
            Some(Value::String(s)) => Role::parse(s.strip_prefix("org:").unwrap_or(s)),
            _ => None,
        };
        let super_admin = match claim(claims, &self.claims.platform_role) {
            Some(Value::String(s)) => s == "super_admin",
            Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some("super_admin")),
            _ => false,
        };
        Ok(Principal::User { user_id, org_id, role, super_admin })
    }

    async fn api_key(&self, token: &str) -> Result<Principal, AuthError> {
        let refused = || AuthError::Unauthorized("invalid api-key".into());
        if !api_key::well_formed(token) {
            return Err(refused());
        }
        let hash = api_key::hash(token);
        // The lookup reads the data file: on the blocking pool.
        let store = self.store.clone();
        let found = tokio::task::spawn_blocking(move || store.find_api_key(&hash))
            .await
            .map_err(|e| AuthError::Store(StoreError::Corrupt(format!("store task: {e}"))))??;
        let (id, key) = found.ok_or_else(refused)?;
        if !api_key::constant_time_eq(&key.hash, &hash) {
            return Err(refused());
        }
        let now = now_ms();
        if key.revoked_at.is_some() {
            return Err(AuthError::Unauthorized("api-key revoked".into()));
        }
        if key.expires_at.is_some_and(|t| t <= now) {
            return Err(AuthError::Unauthorized("api-key expired".into()));
        }
        self.touch(id, &key.organization_id);
        Ok(Principal::ApiKey {
            key_id: id,
            org_id: key.organization_id,
            permissions: Permissions::from_bits(key.permissions),
            created_by: key.created_by_user_id,
        })
    }

    /// Writes `lastUsedAt` in the background, at most once a minute per key.
    fn touch(&self, id: Ulid, org: &str) {
        let due = match self.last_used.lock() {
            Ok(mut map) => {
                let now = Instant::now();
                match map.get(&id) {
                    Some(t) if now.duration_since(*t) < LAST_USED_EVERY => false,
                    _ => {
                        if map.len() > 100_000 {
                            map.clear();
                        }
                        map.insert(id, now);
                        true
                    }
                }
            }
            Err(_) => false,
        };
        if due {
            let store = self.store.clone();
            let org = org.to_string();
            tokio::task::spawn_blocking(move || {
                let now = now_ms();
                if let Err(e) = store.update_api_key(id, &org, |k| k.last_used_at = Some(now)) {
                    tracing::warn!(error = %e, "could not record api-key lastUsedAt");
                }
            });
        }
    }

    /// Refuses a caller whose organization is suspended (403), on every
    /// route that acts as that organization, `/me` included.
    pub fn check_active(&self, principal: &Principal) -> Result<(), AuthError> {
        match principal.org_id() {
            Some(org) if self.store.is_suspended(org) => Err(AuthError::Forbidden("organization is suspended".into())),
            _ => Ok(()),
        }
    }

    /// Clears `principal` to act in its organization with `perm`.
    pub fn org_access(&self, principal: &Principal, perm: Permission) -> Result<OrgAccess, AuthError> {
        let (org_id, user_id, via_api_key) = match principal {
            Principal::User { org_id: Some(org), user_id, .. } => (org.clone(), user_id.clone(), false),
            Principal::User { .. } => {
                return Err(AuthError::Forbidden("the token names no organization".into()))
            }
            Principal::ApiKey { org_id, created_by, .. } => (org_id.clone(), created_by.clone(), true),
        };
        self.check_active(principal)?;
        if !principal.permissions().contains(perm) {
            return Err(AuthError::Forbidden(format!("missing permission {}", perm.as_str())));
        }
        Ok(OrgAccess {
            org_id,
            user_id,
            super_admin: principal.is_super_admin(),
            via_api_key,
            permissions: principal.permissions(),
        })
    }

    /// Clears `principal` for `/api/v1/admin/*`: a super_admin login JWT only.
    pub fn super_admin(&self, principal: &Principal) -> Result<String, AuthError> {
        match principal {
            Principal::User { super_admin: true, user_id, .. } => Ok(user_id.clone()),
            _ => Err(AuthError::Forbidden("requires the platform super_admin role".into())),
        }
    }
}
