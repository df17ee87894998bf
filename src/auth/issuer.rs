//! The embedded issuer: the gateway as its own login-JWT issuer, so it runs on
//! a fresh machine with no frontend. On first start it creates an Ed25519 key in
//! `data/issuer.pk8` (mode 0600); `GET /.well-known/jwks.json` serves the public
//! half and `wa-gateway token` mints tokens with it. Anyone who can read the
//! data directory can mint tokens: it is exactly as safe as the data file.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::digest::{digest, SHA256};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{json, Value};

use super::jwks::{Jwk, KeySet};

/// The `iss` of embedded tokens unless `--jwt-issuer` says otherwise.
pub const DEFAULT_ISSUER: &str = "wa-gateway";

/// Why the issuer key could not be loaded or created.
#[derive(Debug)]
#[non_exhaustive]
pub enum IssuerError {
    Io(PathBuf, std::io::Error),
    BadKey(PathBuf),
    Rng,
}

impl fmt::Display for IssuerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IssuerError::Io(p, e) => write!(f, "issuer key {}: {e}", p.display()),
            IssuerError::BadKey(p) => write!(f, "issuer key {} is not an Ed25519 PKCS#8 key", p.display()),
            IssuerError::Rng => write!(f, "no OS randomness to create the issuer key"),
        }
    }
}

impl std::error::Error for IssuerError {}

/// The embedded issuer's signing key.
pub struct Issuer {
    key: Ed25519KeyPair,
    kid: String,
    public: [u8; 32],
}

/// Path of the issuer key in a data directory.
pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("issuer.pk8")
}

impl Issuer {
    /// Loads `data/issuer.pk8`, creating it (0600, never overwritten) if absent.
    pub fn load_or_create(data_dir: &Path) -> Result<Issuer, IssuerError> {
        let path = key_path(data_dir);
        let io = |e| IssuerError::Io(path.clone(), e);
        crate::store::create_private_dir(data_dir).map_err(|e| IssuerError::Io(data_dir.to_path_buf(), e))?;
        let pkcs8 = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| IssuerError::Rng)?;
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                match opts.open(&path) {
                    Ok(mut f) => {
                        f.write_all(doc.as_ref()).map_err(io)?;
                        f.sync_all().map_err(io)?;
                        doc.as_ref().to_vec()
                    }
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read(&path).map_err(io)?,
                    Err(e) => return Err(io(e)),
                }
            }
            Err(e) => return Err(io(e)),
        };
        let key = Ed25519KeyPair::from_pkcs8(&pkcs8)
            .or_else(|_| Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8))
            .map_err(|_| IssuerError::BadKey(path.clone()))?;
        let mut public = [0u8; 32];
        public.copy_from_slice(key.public_key().as_ref());
        // RFC 7638 thumbprint of the OKP key.
        let x = URL_SAFE_NO_PAD.encode(public);
        let thumb = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(&digest(&SHA256, thumb.as_bytes()).as_ref()[..16]);
        Ok(Issuer { key, kid, public })
    }

    /// The key id tokens carry.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// A key set holding only the public half.
    pub fn key_set(&self) -> KeySet {
        KeySet::from_keys(vec![Jwk::ed25519(Some(self.kid.clone()), self.public)])
    }

    /// The public JWKS document.
    pub fn jwks_json(&self) -> Value {
        json!({"keys": [{
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
            "kid": self.kid, "x": URL_SAFE_NO_PAD.encode(self.public),
        }]})
    }

    /// Signs `claims` as a compact EdDSA JWS.
    pub fn mint(&self, claims: &Value) -> String {
        let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": self.kid});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self.key.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}
