//! Test and bench helpers: real signing keys, their public JWKs, and a JWS
//! signer that can also build deliberately malformed tokens.
//!
//! Included by tests and `examples/bench.rs` via `#[path]`, so it uses only
//! the crate's dependencies and std, never the crate itself. RSA keys come
//! from PKCS#8 fixtures (ring cannot generate RSA keys); EC and Ed25519 keys
//! are generated fresh with ring.
#![allow(dead_code)]

use std::path::Path;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::rsa::PublicKeyComponents;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::{json, Value};

/// Base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Which key family a [`TestKey`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Rsa,
    P256,
    P384,
    Ed25519,
}

enum Pair {
    Rsa(RsaKeyPair),
    Ec {
        pair: EcdsaKeyPair,
        pkcs8: Vec<u8>,
        p384: bool,
    },
    Ed(Ed25519KeyPair),
}

/// A private signing key of one family, with its public JWK.
pub struct TestKey {
    pair: Pair,
}

impl TestKey {
    /// Loads an RSA key from a PKCS#8 DER or PEM (`BEGIN PRIVATE KEY`) file.
    /// PKCS#1 (`RSAPrivateKey`, what OpenSSL 3's `genpkey -outform DER`
    /// writes) is accepted too.
    pub fn rsa_from_file(path: impl AsRef<Path>) -> TestKey {
        let raw = std::fs::read(path.as_ref()).expect("read RSA fixture");
        let der = if raw.starts_with(b"-----BEGIN") {
            let text = String::from_utf8(raw).expect("PEM is UTF-8");
            let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
            STANDARD.decode(body.trim()).expect("PEM base64")
        } else {
            raw
        };
        let pair = RsaKeyPair::from_pkcs8(&der)
            .or_else(|_| RsaKeyPair::from_der(&der))
            .expect("RSA PKCS#8 or PKCS#1 DER");
        TestKey {
            pair: Pair::Rsa(pair),
        }
    }

    fn ec(p384: bool) -> TestKey {
        let rng = SystemRandom::new();
        let (sign_alg, _) = ec_algs(p384);
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(sign_alg, &rng).expect("EC keygen");
        let pair = EcdsaKeyPair::from_pkcs8(sign_alg, pkcs8.as_ref(), &rng).expect("EC PKCS#8");
        TestKey {
            pair: Pair::Ec {
                pair,
                pkcs8: pkcs8.as_ref().to_vec(),
                p384,
            },
        }
    }

    /// A fresh P-256 key.
    pub fn p256() -> TestKey {
        Self::ec(false)
    }

    /// A fresh P-384 key.
    pub fn p384() -> TestKey {
        Self::ec(true)
    }

    /// A fresh Ed25519 key.
    pub fn ed25519() -> TestKey {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("Ed25519 keygen");
        TestKey {
            pair: Pair::Ed(Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("Ed25519")),
        }
    }

    /// The key family.
    pub fn family(&self) -> Family {
        match &self.pair {
            Pair::Rsa(_) => Family::Rsa,
            Pair::Ec { p384: false, .. } => Family::P256,
            Pair::Ec { p384: true, .. } => Family::P384,
            Pair::Ed(_) => Family::Ed25519,
        }
    }

    /// The algorithm this key's JWK advertises by default.
    pub fn default_alg(&self) -> &'static str {
        match self.family() {
            Family::Rsa => "RS256",
            Family::P256 => "ES256",
            Family::P384 => "ES384",
            Family::Ed25519 => "EdDSA",
        }
    }

    /// Raw public key bytes (RSA: DER RSAPublicKey; EC: uncompressed point; Ed25519: 32 bytes).
    pub fn public_bytes(&self) -> Vec<u8> {
        match &self.pair {
            Pair::Rsa(p) => p.public_key().as_ref().to_vec(),
            Pair::Ec { pair, .. } => pair.public_key().as_ref().to_vec(),
            Pair::Ed(p) => p.public_key().as_ref().to_vec(),
        }
    }

    /// The public JWK with `kid`, `use: sig` and the default `alg`.
    pub fn jwk(&self, kid: &str) -> Value {
        self.jwk_with_alg(kid, Some(self.default_alg()))
    }

    /// The public JWK with `kid`, `use: sig`, and `alg` only if given.
    pub fn jwk_with_alg(&self, kid: &str, alg: Option<&str>) -> Value {
        let mut jwk = match &self.pair {
            Pair::Rsa(p) => {
                let c: PublicKeyComponents<Vec<u8>> = p.public().into();
                json!({"kty": "RSA", "n": b64(&c.n), "e": b64(&c.e)})
            }
            Pair::Ec { pair, p384, .. } => {
                let point = pair.public_key().as_ref();
                let len = if *p384 { 48 } else { 32 };
                let crv = if *p384 { "P-384" } else { "P-256" };
                json!({"kty": "EC", "crv": crv, "x": b64(&point[1..1 + len]), "y": b64(&point[1 + len..])})
            }
            Pair::Ed(p) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(p.public_key().as_ref())})
            }
        };
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        if let Some(alg) = alg {
            jwk["alg"] = json!(alg);
        }
        jwk
    }

    /// Signs `header`/`claims` (serialized compactly) as a compact JWS with `alg`.
    pub fn sign(&self, alg: &str, header: &Value, claims: &Value) -> String {
        let h = serde_json::to_vec(header).expect("header JSON");
        let c = serde_json::to_vec(claims).expect("claims JSON");
        self.sign_bytes(alg, &h, &c)
    }

    /// Signs raw header/claims bytes (e.g. JSON with duplicate members).
    pub fn sign_bytes(&self, alg: &str, header: &[u8], claims: &[u8]) -> String {
        self.sign_segments(alg, &b64(header), &b64(claims))
    }

    /// Signs the literal text `header_seg.claims_seg` (segments may be malformed).
    pub fn sign_segments(&self, alg: &str, header_seg: &str, claims_seg: &str) -> String {
        let input = format!("{header_seg}.{claims_seg}");
        let sig = self.signature(alg, input.as_bytes());
        format!("{input}.{}", b64(&sig))
    }

    /// A raw signature over `message` with `alg` (panics if the key cannot do `alg`).
    pub fn signature(&self, alg: &str, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match (&self.pair, alg) {
            (Pair::Rsa(p), _) => {
                let padding: &'static dyn signature::RsaEncoding = match alg {
                    "RS256" => &signature::RSA_PKCS1_SHA256,
                    "RS384" => &signature::RSA_PKCS1_SHA384,
                    "RS512" => &signature::RSA_PKCS1_SHA512,
                    "PS256" => &signature::RSA_PSS_SHA256,
                    "PS384" => &signature::RSA_PSS_SHA384,
                    "PS512" => &signature::RSA_PSS_SHA512,
                    other => panic!("RSA key cannot sign {other}"),
                };
                let mut sig = vec![0u8; p.public().modulus_len()];
                p.sign(padding, &rng, message, &mut sig).expect("RSA sign");
                sig
            }
            (Pair::Ec { pair, p384, .. }, "ES256" | "ES384") => {
                assert_eq!(*p384, alg == "ES384", "curve does not match {alg}");
                pair.sign(&rng, message)
                    .expect("ECDSA sign")
                    .as_ref()
                    .to_vec()
            }
            (Pair::Ed(p), "EdDSA") => p.sign(message).as_ref().to_vec(),
            (_, other) => panic!("key cannot sign {other}"),
        }
    }

    /// An ECDSA signature in ASN.1 DER form (for "DER must be refused" tests).
    pub fn der_signature(&self, message: &[u8]) -> Vec<u8> {
        let Pair::Ec { pkcs8, p384, .. } = &self.pair else {
            panic!("not an EC key");
        };
        let rng = SystemRandom::new();
        let (_, der_alg) = ec_algs(*p384);
        let pair = EcdsaKeyPair::from_pkcs8(der_alg, pkcs8, &rng).expect("EC PKCS#8");
        pair.sign(&rng, message)
            .expect("ECDSA sign")
            .as_ref()
            .to_vec()
    }
}

fn ec_algs(
    p384: bool,
) -> (
    &'static signature::EcdsaSigningAlgorithm,
    &'static signature::EcdsaSigningAlgorithm,
) {
    if p384 {
        (
            &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
        )
    } else {
        (
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        )
    }
}

/// `header_b64.claims_b64.b64(sig)`, for hand-made tokens.
pub fn sign_raw(header_b64: &str, claims_b64: &str, sig: &[u8]) -> String {
    format!("{header_b64}.{claims_b64}.{}", b64(sig))
}

/// Base64url of a JSON value.
pub fn b64_json(v: &Value) -> String {
    b64(&serde_json::to_vec(v).expect("JSON"))
}

/// A `{"keys":[...]}` document.
pub fn jwks(keys: &[Value]) -> String {
    json!({ "keys": keys }).to_string()
}

/// HMAC-SHA256 over `message` with `secret` (for HS256 confusion attacks).
pub fn hs256(secret: &[u8], message: &[u8]) -> Vec<u8> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    ring::hmac::sign(&key, message).as_ref().to_vec()
}
