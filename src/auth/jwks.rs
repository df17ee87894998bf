//! Public keys for login-JWT verification: the JWK model and the key set.
//!
//! A JWKS document is parsed into a [`KeySet`] holding only keys we can use
//! safely: RSA (≥ 2048 bits), EC P-256/P-384 and Ed25519. Symmetric (`oct`)
//! keys, short RSA moduli, unknown key types and malformed entries are dropped
//! at parse time, so an attacker can never steer verification onto them.
//! [`Jwk::verify`] checks that the key's `kty`/`crv`/`alg`/`use`/`key_ops`
//! agree with the token's algorithm before handing the signature to `ring`.
//!
//! Where the keys come from (a remote JWKS endpoint, or the embedded issuer)
//! lives in the `source` submodule; its types are re-exported here.

mod source;

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::{Map, Value};

pub use source::{JwksConfig, JwksSource};

use super::strict_json;

/// A JWS signature algorithm this gateway accepts. `none` and HS* do not exist here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Alg {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl Alg {
    /// Parses an exact (case-sensitive) JWS `alg` name; anything else is `None`.
    pub fn parse(s: &str) -> Option<Alg> {
        Some(match s {
            "RS256" => Alg::RS256,
            "RS384" => Alg::RS384,
            "RS512" => Alg::RS512,
            "PS256" => Alg::PS256,
            "PS384" => Alg::PS384,
            "PS512" => Alg::PS512,
            "ES256" => Alg::ES256,
            "ES384" => Alg::ES384,
            "EdDSA" => Alg::EdDSA,
            _ => return None,
        })
    }

    /// The JWS name of the algorithm.
    pub fn as_str(&self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::EdDSA => "EdDSA",
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Decodes strict base64url: URL alphabet only, no padding, canonical trailing bits.
pub(crate) fn b64url(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.as_bytes()).ok()
}

/// Smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;

/// The public key material of one JWK, already validated for shape.
#[derive(Clone, Debug)]
enum Material {
    /// Big-endian modulus and exponent, leading zero bytes stripped.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// Uncompressed point `0x04‖x‖y` on P-256.
    P256(Vec<u8>),
    /// Uncompressed point `0x04‖x‖y` on P-384.
    P384(Vec<u8>),
    /// Raw Ed25519 public key.
    Ed25519([u8; 32]),
}

/// One usable public key from a JWKS, with the constraints its JWK declared.
#[derive(Clone, Debug)]
pub struct Jwk {
    kid: Option<String>,
    material: Material,
    /// The JWK's `alg`, verbatim (it may name an algorithm we do not support).
    alg: Option<String>,
    /// The JWK's `use`, verbatim.
    use_: Option<String>,
    /// The JWK's `key_ops`, verbatim.
    key_ops: Option<Vec<String>>,
}

impl Jwk {
    /// An Ed25519 verification key (the embedded issuer's public key).
    pub fn ed25519(kid: Option<String>, public_key: [u8; 32]) -> Jwk {
        Jwk {
            kid,
            material: Material::Ed25519(public_key),
            alg: Some(Alg::EdDSA.as_str().to_string()),
            use_: Some("sig".to_string()),
            key_ops: None,
        }
    }

    /// The key id, if the JWK had one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Whether this key may verify signatures made with `alg`: the key family
    /// and curve must match, and the JWK's `alg`, `use` and `key_ops` (when
    /// present) must allow it.
    pub(crate) fn supports(&self, alg: Alg) -> bool {
        let family_ok = matches!(
            (&self.material, alg),
            (
                Material::Rsa { .. },
                Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512,
            ) | (Material::P256(_), Alg::ES256)
                | (Material::P384(_), Alg::ES384)
                | (Material::Ed25519(_), Alg::EdDSA)
        );
        family_ok
            && self.alg.as_deref().is_none_or(|a| a == alg.as_str())
            && self.use_.as_deref().is_none_or(|u| u == "sig")
            && self
                .key_ops
                .as_ref()
                .is_none_or(|ops| ops.iter().any(|o| o == "verify"))
    }

    /// Verifies `signature` over `message` with `alg`. False if the key does
    /// not agree with `alg` (see above), the signature is empty, or it is wrong.
    pub fn verify(&self, alg: Alg, message: &[u8], signature: &[u8]) -> bool {
        if signature.is_empty() || !self.supports(alg) {
            return false;
        }
        match &self.material {
            Material::Rsa { n, e } => {
                let params: &signature::RsaParameters = match alg {
                    Alg::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                    Alg::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    Alg::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                    Alg::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
                    Alg::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
                    Alg::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
                    _ => return false,
                };
                RsaPublicKeyComponents {
                    n: n.as_slice(),
                    e: e.as_slice(),
                }
                .verify(params, message, signature)
                .is_ok()
            }
            Material::P256(point) => {
                signature.len() == 64
                    && UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                        .verify(message, signature)
                        .is_ok()
            }
            Material::P384(point) => {
                signature.len() == 96
                    && UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
                        .verify(message, signature)
                        .is_ok()
            }
            Material::Ed25519(key) => {
                signature.len() == 64
                    && UnparsedPublicKey::new(&signature::ED25519, key)
                        .verify(message, signature)
                        .is_ok()
            }
        }
    }

    /// Builds a key from one JWKS entry, or says why it is unusable.
    fn from_json(entry: &Map<String, Value>) -> Result<Jwk, &'static str> {
        let kid = opt_string(entry, "kid")?;
        let alg = opt_string(entry, "alg")?;
        let use_ = opt_string(entry, "use")?;
        let key_ops = match entry.get("key_ops") {
            None => None,
            Some(Value::Array(ops)) => Some(
                ops.iter()
                    .map(|o| {
                        o.as_str()
                            .map(str::to_string)
                            .ok_or("key_ops must be strings")
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(_) => return Err("key_ops must be an array"),
        };
        let material = match entry.get("kty").and_then(Value::as_str) {
            Some("RSA") => {
                let n = strip_zeros(b64_member(entry, "n")?);
                let e = strip_zeros(b64_member(entry, "e")?);
                if modulus_bits(&n) < MIN_RSA_BITS {
                    return Err("RSA modulus under 2048 bits");
                }
                if e.is_empty() {
                    return Err("RSA exponent is zero");
                }
                Material::Rsa { n, e }
            }
            Some("EC") => {
                let (len, p384) = match entry.get("crv").and_then(Value::as_str) {
                    Some("P-256") => (32, false),
                    Some("P-384") => (48, true),
                    _ => return Err("unsupported EC curve"),
                };
                let x = b64_member(entry, "x")?;
                let y = b64_member(entry, "y")?;
                if x.len() != len || y.len() != len {
                    return Err("EC coordinate of the wrong length");
                }
                let mut point = Vec::with_capacity(1 + 2 * len);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                if p384 {
                    Material::P384(point)
                } else {
                    Material::P256(point)
                }
            }
            Some("OKP") => {
                if entry.get("crv").and_then(Value::as_str) != Some("Ed25519") {
                    return Err("unsupported OKP curve");
                }
                let x: [u8; 32] = b64_member(entry, "x")?
                    .try_into()
                    .map_err(|_| "Ed25519 key of the wrong length")?;
                Material::Ed25519(x)
            }
            Some("oct") => return Err("symmetric keys are never used"),
            _ => return Err("unsupported key type"),
        };
        Ok(Jwk {
            kid,
            material,
            alg,
            use_,
            key_ops,
        })
    }
}

fn opt_string(entry: &Map<String, Value>, name: &str) -> Result<Option<String>, &'static str> {
    match entry.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err("JWK member is not a string"),
    }
}

fn b64_member(entry: &Map<String, Value>, name: &str) -> Result<Vec<u8>, &'static str> {
    entry
        .get(name)
        .and_then(Value::as_str)
        .and_then(b64url)
        .ok_or("missing or invalid base64url key member")
}

fn strip_zeros(mut v: Vec<u8>) -> Vec<u8> {
    let zeros = v.iter().take_while(|b| **b == 0).count();
    v.drain(..zeros);
    v
}

/// Bit length of a big-endian integer without leading zero bytes.
fn modulus_bits(n: &[u8]) -> usize {
    match n.first() {
        None => 0,
        Some(first) => (n.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
    }
}

/// The usable keys of one JWKS document. Immutable; replaced as a whole.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    keys: Vec<Jwk>,
}

impl KeySet {
    /// Parses a `{"keys":[...]}` document (strict JSON). Unusable entries are
    /// skipped, so the result may be empty; callers decide whether that is ok.
    pub fn parse(json: &[u8]) -> Result<KeySet, JwksError> {
        let doc = strict_json::parse_object(json).map_err(|e| JwksError::Parse(e.to_string()))?;
        let entries = match doc.get("keys") {
            Some(Value::Array(a)) => a,
            _ => {
                return Err(JwksError::Parse(
                    "expected a {\"keys\": [...]} object".into(),
                ))
            }
        };
        let mut keys = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let parsed = match entry {
                Value::Object(map) => Jwk::from_json(map),
                _ => Err("entry is not an object"),
            };
            match parsed {
                Ok(k) => keys.push(k),
                Err(why) => tracing::debug!(index = i, reason = why, "ignoring JWKS entry"),
            }
        }
        Ok(KeySet { keys })
    }

    /// A key set made of the given keys (used by the embedded issuer).
    pub fn from_keys(keys: Vec<Jwk>) -> KeySet {
        KeySet { keys }
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is no usable key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key for a token: the first key whose `kid` equals `kid` exactly;
    /// with no `kid`, the only key if there is exactly one.
    pub fn select(&self, kid: Option<&str>) -> Option<&Jwk> {
        match kid {
            Some(kid) => self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
            None if self.keys.len() == 1 => self.keys.first(),
            None => None,
        }
    }
}

/// Why a JWKS could not be loaded.
#[derive(Debug)]
#[non_exhaustive]
pub enum JwksError {
    /// The configured URL is unusable (scheme, or http:// to a non-loopback host).
    InvalidUrl(String),
    /// Connection, TLS or protocol failure.
    Http(String),
    /// The endpoint answered with a non-2xx status (redirects included).
    Status(u16),
    /// The body exceeded the size cap.
    TooLarge,
    /// The fetch took longer than the timeout.
    Timeout,
    /// The body is not a valid JWKS document.
    Parse(String),
    /// The document holds no usable key; the previous set is kept.
    Empty,
}

impl fmt::Display for JwksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwksError::InvalidUrl(m) => write!(f, "invalid JWKS URL: {m}"),
            JwksError::Http(m) => write!(f, "JWKS fetch failed: {m}"),
            JwksError::Status(s) => write!(f, "JWKS endpoint answered HTTP {s}"),
            JwksError::TooLarge => f.write_str("JWKS document too large"),
            JwksError::Timeout => f.write_str("JWKS fetch timed out"),
            JwksError::Parse(m) => write!(f, "JWKS document invalid: {m}"),
            JwksError::Empty => f.write_str("JWKS holds no usable key"),
        }
    }
}

impl std::error::Error for JwksError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alg_round_trips_and_is_case_sensitive() {
        for a in [
            "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
        ] {
            assert_eq!(Alg::parse(a).map(|x| x.as_str()), Some(a));
        }
        for bad in ["none", "HS256", "rs256", "EDDSA", "ES512", ""] {
            assert_eq!(Alg::parse(bad), None);
        }
    }

    #[test]
    fn modulus_bits_counts_from_the_top_bit() {
        assert_eq!(modulus_bits(&[]), 0);
        assert_eq!(modulus_bits(&[1]), 1);
        assert_eq!(modulus_bits(&[0x80, 0]), 16);
        assert_eq!(modulus_bits(&strip_zeros(vec![0, 0, 0x7f, 0])), 15);
    }

    #[test]
    fn parse_requires_a_keys_array() {
        assert!(KeySet::parse(b"[]").is_err());
        assert!(KeySet::parse(br#"{"keys":{}}"#).is_err());
        assert!(KeySet::parse(br#"{"keys":[],"keys":[]}"#).is_err());
        assert_eq!(
            KeySet::parse(br#"{"keys":[1,"x",{"kty":"oct","k":"AAAA"}]}"#)
                .map(|k| k.len())
                .ok(),
            Some(0)
        );
    }
}
