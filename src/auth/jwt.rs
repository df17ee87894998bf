//! Login-JWT verification: strict compact-JWS parsing and claim checks.
//!
//! Tokens are refused as early and as cheaply as possible: size first, then
//! shape (three strict base64url segments), then the header (strict JSON,
//! algorithm allowlist, no `jku`/`x5u`/`jwk`/`x5c`/`crit`, `typ` = JWT), all
//! before any key lookup or fetch. The signature is verified with `ring`
//! before any claim is read, then `exp`/`nbf`/`iat`/`iss`/`aud` are checked.
//! [`verify_with`] is pure; the [`Verifier`] (in `verifier`) adds the key
//! source and a small verified-token cache.

mod verifier;

use std::fmt;

use serde_json::{Map, Value};

pub use verifier::{now_secs, Verifier};

use super::jwks::{b64url, Alg, KeySet};
use super::strict_json;

/// Largest accepted token, in bytes; checked before anything else.
pub const MAX_TOKEN_BYTES: usize = 8192;

/// Default clock-skew allowance for `exp`/`nbf`/`iat`, in seconds.
pub const DEFAULT_LEEWAY_SECS: i64 = 60;

/// Header members that point at keys or extensions we never honour.
const FORBIDDEN_HEADERS: [&str; 5] = ["jku", "x5u", "jwk", "x5c", "crit"];

/// What a token must satisfy beyond its signature.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Audience that `aud` must contain, when set.
    pub audience: Option<String>,
    /// Clock-skew allowance in seconds (use [`DEFAULT_LEEWAY_SECS`]).
    pub leeway_secs: i64,
}

/// Why a token was refused. Display is short and never echoes the token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwtError {
    /// Longer than [`MAX_TOKEN_BYTES`].
    TooLarge,
    /// Not a well-formed compact JWS (the reason is fixed text).
    Malformed(&'static str),
    /// `alg` is not on the allowlist (sanitised, truncated copy of it).
    DisallowedAlg(String),
    /// The header carries a member we refuse (`jku`, `x5u`, `jwk`, `x5c`, `crit`).
    ForbiddenHeader(&'static str),
    /// `typ` is present and is not `JWT`.
    BadType,
    /// No key matches the token's `kid`.
    UnknownKey,
    /// The selected key may not be used with the token's `alg`.
    KeyMismatch,
    /// The signature does not verify.
    BadSignature,
    /// No `exp` claim.
    MissingExp,
    /// A time claim (`exp`, `nbf`, `iat`) is not a number.
    BadTimeClaim(&'static str),
    /// `exp` (plus leeway) has passed.
    Expired,
    /// `nbf` (minus leeway) is in the future.
    NotYetValid,
    /// `iat` (minus leeway) is in the future.
    IssuedInFuture,
    /// `iss` is not the configured issuer.
    BadIssuer,
    /// `aud` does not contain the configured audience.
    BadAudience,
    /// No verification keys are available (never loaded, or stale).
    NoKeys,
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtError::TooLarge => f.write_str("token too large"),
            JwtError::Malformed(why) => write!(f, "malformed token: {why}"),
            JwtError::DisallowedAlg(alg) => write!(f, "algorithm \"{alg}\" not allowed"),
            JwtError::ForbiddenHeader(h) => write!(f, "header \"{h}\" not allowed"),
            JwtError::BadType => f.write_str("token type is not JWT"),
            JwtError::UnknownKey => f.write_str("unknown signing key"),
            JwtError::KeyMismatch => f.write_str("signing key does not match the algorithm"),
            JwtError::BadSignature => f.write_str("bad signature"),
            JwtError::MissingExp => f.write_str("token has no expiry"),
            JwtError::BadTimeClaim(c) => write!(f, "claim \"{c}\" is not a number"),
            JwtError::Expired => f.write_str("token expired"),
            JwtError::NotYetValid => f.write_str("token not yet valid"),
            JwtError::IssuedInFuture => f.write_str("token issued in the future"),
            JwtError::BadIssuer => f.write_str("wrong issuer"),
            JwtError::BadAudience => f.write_str("wrong audience"),
            JwtError::NoKeys => f.write_str("no verification keys available"),
        }
    }
}

impl std::error::Error for JwtError {}

/// The parts of a token header that select and constrain the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The (allowed) signature algorithm.
    pub alg: Alg,
    /// The key id, if any.
    pub kid: Option<String>,
}

/// A token whose signature and claims have been checked.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedToken {
    /// All claims, parsed strictly.
    pub claims: Map<String, Value>,
    /// `exp`, in seconds since the epoch (fractions rounded down).
    pub exp: i64,
    /// The algorithm the signature was made with.
    pub alg: Alg,
    /// The `kid` of the key that verified it.
    pub kid: Option<String>,
}

/// A token split and decoded, with its header checked; claims still untrusted.
struct Parts<'a> {
    header: Header,
    signing_input: &'a str,
    claims_b64: &'a str,
    signature: Vec<u8>,
}

/// Checks size, shape, base64url, header JSON, `alg`, forbidden members and
/// `typ`. Everything here happens before any key lookup or fetch.
pub fn parse_header(token: &str) -> Result<Header, JwtError> {
    split(token).map(|p| p.header)
}

fn split(token: &str) -> Result<Parts<'_>, JwtError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwtError::TooLarge);
    }
    let mut segments = token.split('.');
    let (Some(h), Some(c), Some(s), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(JwtError::Malformed("expected three segments"));
    };
    let header_bytes = b64url(h).ok_or(JwtError::Malformed("header is not base64url"))?;
    let header = strict_json::parse_object(&header_bytes)
        .map_err(|_| JwtError::Malformed("header is not a strict JSON object"))?;
    let alg = match header.get("alg") {
        Some(Value::String(a)) => {
            Alg::parse(a).ok_or_else(|| JwtError::DisallowedAlg(sanitize(a)))?
        }
        Some(_) => return Err(JwtError::Malformed("alg is not a string")),
        None => return Err(JwtError::Malformed("no alg")),
    };
    if let Some(name) = FORBIDDEN_HEADERS.iter().find(|n| header.contains_key(**n)) {
        return Err(JwtError::ForbiddenHeader(name));
    }
    match header.get("typ") {
        None => {}
        Some(Value::String(t)) if t.eq_ignore_ascii_case("JWT") => {}
        Some(_) => return Err(JwtError::BadType),
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(JwtError::Malformed("kid is not a string")),
    };
    if b64url(c).is_none() {
        return Err(JwtError::Malformed("claims are not base64url"));
    }
    let signature = b64url(s).ok_or(JwtError::Malformed("signature is not base64url"))?;
    if signature.is_empty() {
        return Err(JwtError::Malformed("empty signature"));
    }
    Ok(Parts {
        header: Header { alg, kid },
        signing_input: &token[..h.len() + 1 + c.len()],
        claims_b64: c,
        signature,
    })
}

/// A short printable copy of an attacker-chosen `alg`, for error messages.
fn sanitize(alg: &str) -> String {
    alg.chars()
        .take(16)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

/// Verifies `token` against `keys` at time `now_secs`. Pure: no I/O.
pub fn verify_with(
    token: &str,
    keys: &KeySet,
    opts: &VerifyOptions,
    now_secs: i64,
) -> Result<VerifiedToken, JwtError> {
    let parts = split(token)?;
    let Header { alg, kid } = parts.header;
    let key = keys.select(kid.as_deref()).ok_or(JwtError::UnknownKey)?;
    if !key.supports(alg) {
        return Err(JwtError::KeyMismatch);
    }
    if !key.verify(alg, parts.signing_input.as_bytes(), &parts.signature) {
        return Err(JwtError::BadSignature);
    }
    // Only now is the payload trusted enough to read.
    let claim_bytes =
        b64url(parts.claims_b64).ok_or(JwtError::Malformed("claims are not base64url"))?;
    let claims = strict_json::parse_object(&claim_bytes)
        .map_err(|_| JwtError::Malformed("claims are not a strict JSON object"))?;
    let times = TimeClaims::read(&claims)?;
    times.check(opts.leeway_secs, now_secs)?;
    check_issuer(&claims, opts)?;
    check_audience(&claims, opts)?;
    Ok(VerifiedToken {
        claims,
        exp: times.exp,
        alg,
        kid,
    })
}

/// `exp`, `nbf` and `iat`, rounded conservatively to whole seconds.
#[derive(Clone, Copy, Debug)]
pub struct TimeClaims {
    pub(crate) exp: i64,
    pub(crate) nbf: Option<i64>,
    pub(crate) iat: Option<i64>,
}

impl TimeClaims {
    /// Reads the time claims; `exp` is required and all must be JSON numbers.
    pub fn read(claims: &Map<String, Value>) -> Result<TimeClaims, JwtError> {
        let exp = number(claims, "exp")?.ok_or(JwtError::MissingExp)?;
        let nbf = number(claims, "nbf")?;
        let iat = number(claims, "iat")?;
        Ok(TimeClaims {
            // Round towards "less valid": exp down, nbf/iat up.
            exp: exp.floor() as i64,
            nbf: nbf.map(|v| v.ceil() as i64),
            iat: iat.map(|v| v.ceil() as i64),
        })
    }

    /// Applies the time rules with `leeway` seconds of skew allowed.
    pub fn check(&self, leeway: i64, now: i64) -> Result<(), JwtError> {
        if self.exp.saturating_add(leeway) < now {
            return Err(JwtError::Expired);
        }
        if self.nbf.is_some_and(|nbf| nbf.saturating_sub(leeway) > now) {
            return Err(JwtError::NotYetValid);
        }
        if self.iat.is_some_and(|iat| iat.saturating_sub(leeway) > now) {
            return Err(JwtError::IssuedInFuture);
        }
        Ok(())
    }
}

fn number(claims: &Map<String, Value>, name: &'static str) -> Result<Option<f64>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_f64().map(Some).ok_or(JwtError::BadTimeClaim(name)),
        Some(_) => Err(JwtError::BadTimeClaim(name)),
    }
}

fn check_issuer(claims: &Map<String, Value>, opts: &VerifyOptions) -> Result<(), JwtError> {
    match &opts.issuer {
        None => Ok(()),
        Some(want) => match claims.get("iss") {
            Some(Value::String(iss)) if iss == want => Ok(()),
            _ => Err(JwtError::BadIssuer),
        },
    }
}

fn check_audience(claims: &Map<String, Value>, opts: &VerifyOptions) -> Result<(), JwtError> {
    let Some(want) = &opts.audience else {
        return Ok(());
    };
    match claims.get("aud") {
        Some(Value::String(aud)) if aud == want => Ok(()),
        Some(Value::Array(list)) => {
            if list.iter().all(Value::is_string) && list.iter().any(|a| a.as_str() == Some(want)) {
                Ok(())
            } else {
                Err(JwtError::BadAudience)
            }
        }
        _ => Err(JwtError::BadAudience),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn time_rules_use_leeway() {
        let t = TimeClaims::read(&claims(json!({"exp": 1000}))).unwrap();
        assert!(t.check(60, 1060).is_ok());
        assert_eq!(t.check(60, 1061), Err(JwtError::Expired));
        let t = TimeClaims::read(&claims(json!({"exp": 5000, "nbf": 1100, "iat": 1100}))).unwrap();
        assert!(t.check(60, 1040).is_ok());
        assert_eq!(t.check(60, 1039), Err(JwtError::NotYetValid));
        let t = TimeClaims::read(&claims(json!({"exp": 5000, "iat": 1100}))).unwrap();
        assert_eq!(t.check(60, 1039), Err(JwtError::IssuedInFuture));
    }

    #[test]
    fn time_claims_must_be_numbers() {
        assert_eq!(
            TimeClaims::read(&claims(json!({}))).unwrap_err(),
            JwtError::MissingExp
        );
        assert_eq!(
            TimeClaims::read(&claims(json!({"exp": "1"}))).unwrap_err(),
            JwtError::BadTimeClaim("exp")
        );
        assert_eq!(
            TimeClaims::read(&claims(json!({"exp": 1, "nbf": null}))).unwrap_err(),
            JwtError::BadTimeClaim("nbf")
        );
        let t = TimeClaims::read(&claims(json!({"exp": 10.9, "nbf": 1.1}))).unwrap();
        assert_eq!((t.exp, t.nbf), (10, Some(2)));
        let t = TimeClaims::read(&claims(json!({"exp": 1e300}))).unwrap();
        assert_eq!(t.exp, i64::MAX);
        assert!(t.check(i64::MAX, 0).is_ok());
    }

    #[test]
    fn audience_rules() {
        let opts = VerifyOptions {
            audience: Some("gw".into()),
            ..Default::default()
        };
        let ok = |v: Value| check_audience(&claims(v), &opts).is_ok();
        assert!(ok(json!({"aud": "gw"})));
        assert!(ok(json!({"aud": ["x", "gw"]})));
        assert!(!ok(json!({"aud": []})));
        assert!(!ok(json!({"aud": ["gw", 1]})));
        assert!(!ok(json!({})));
        assert!(!ok(json!({"aud": "GW"})));
    }

    #[test]
    fn sanitize_truncates_and_masks() {
        assert_eq!(sanitize("none"), "none");
        assert_eq!(sanitize("a\nb"), "a?b");
        assert_eq!(sanitize(&"x".repeat(100)).len(), 16);
    }
}
