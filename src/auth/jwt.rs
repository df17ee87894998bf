//! STUB — replaced by the real module.
use std::sync::Arc; use super::jwks::*;
#[derive(Clone, Debug, Default)] pub struct VerifyOptions { pub issuer: Option<String>, pub audience: Option<String>, pub leeway_secs: i64 }
pub const DEFAULT_LEEWAY_SECS: i64 = 60;
#[derive(Debug)] pub enum JwtError { NoKeys }
impl std::fmt::Display for JwtError { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "{self:?}") } }
pub struct VerifiedToken { pub claims: serde_json::Map<String, serde_json::Value>, pub exp: i64 }
pub struct Verifier { s: Arc<JwksSource>, o: VerifyOptions }
impl Verifier {
  pub fn new(s: Arc<JwksSource>, o: VerifyOptions, _c: usize) -> Verifier { Verifier { s, o } }
  pub async fn verify(&self, _t: &str) -> Result<VerifiedToken, JwtError> { Err(JwtError::NoKeys) }
  pub fn source(&self) -> &Arc<JwksSource> { &self.s }
  pub fn options(&self) -> &VerifyOptions { &self.o }
}
