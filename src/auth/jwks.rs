//! STUB — replaced by the real module.
use std::sync::Arc; use std::time::Duration;
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Alg { RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA }
pub struct Jwk;
impl Jwk { pub fn ed25519(_kid: Option<String>, _pk: [u8; 32]) -> Jwk { Jwk } }
pub struct KeySet(usize);
impl KeySet { pub fn from_keys(k: Vec<Jwk>) -> KeySet { KeySet(k.len()) } pub fn len(&self) -> usize { self.0 } pub fn is_empty(&self) -> bool { self.0 == 0 } }
#[derive(Debug)] pub enum JwksError { InvalidUrl(String) }
impl std::fmt::Display for JwksError { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "{self:?}") } }
#[derive(Clone, Debug, Default)] pub struct JwksConfig { pub refresh_every: Duration, pub unknown_kid_cooldown: Duration, pub max_stale: Duration, pub fetch_timeout: Duration, pub max_body: usize }
pub struct JwksSource(Option<Arc<KeySet>>);
impl JwksSource {
  pub fn remote(_u: &str, _c: JwksConfig) -> Result<JwksSource, JwksError> { Ok(JwksSource(None)) }
  pub fn fixed(k: KeySet) -> JwksSource { JwksSource(Some(Arc::new(k))) }
  pub async fn refresh(&self) -> Result<usize, JwksError> { Ok(0) }
  pub fn current(&self) -> Option<Arc<KeySet>> { self.0.clone() }
  pub fn generation(&self) -> u64 { 0 }
  pub fn fetch_count(&self) -> u64 { 0 }
  pub fn is_remote(&self) -> bool { false }
  pub fn spawn_refresher(self: &Arc<Self>, _s: tokio::sync::watch::Receiver<bool>) -> tokio::task::JoinHandle<()> { tokio::spawn(async {}) }
}
