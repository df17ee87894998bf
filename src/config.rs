//! Runtime configuration of `serve`, independent of how it was given (flags,
//! environment, or a test building it directly).

use std::path::PathBuf;
use std::time::Duration;

use crate::auth::jwks::JwksConfig;
use crate::auth::ClaimPaths;
use crate::engine::manager::ManagerConfig;
use crate::engine::wa_engine::WaOptions;
use crate::engine::EngineKind;

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Everything `serve` needs.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub gateway_id: String,
    /// `None`: the embedded issuer.
    pub jwks_url: Option<String>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    pub claims: ClaimPaths,
    pub cors_origins: Vec<String>,
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub jwks: JwksConfig,
    pub cache_bytes: usize,
    /// Verified-token cache entries (0 disables it).
    pub token_cache: usize,
    /// Rendered list pages kept (0 disables the page cache).
    pub page_cache: usize,
    /// The WhatsApp engine.
    pub engine: EngineKind,
    /// Reconnect policy.
    pub retry: ManagerConfig,
    /// How the `whatsapp` engine connects (endpoint, timeouts, version).
    pub whatsapp: WaOptions,
}

impl ServeConfig {
    /// Defaults for a data directory: embedded issuer, `gw-local-1`.
    pub fn new(data_dir: impl Into<PathBuf>) -> ServeConfig {
        ServeConfig {
            data_dir: data_dir.into(),
            gateway_id: "gw-local-1".into(),
            jwks_url: None,
            jwt_issuer: None,
            jwt_audience: None,
            claims: ClaimPaths::default(),
            cors_origins: Vec::new(),
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            jwks: JwksConfig::default(),
            cache_bytes: crate::store::DEFAULT_CACHE_BYTES,
            token_cache: 10_000,
            page_cache: 256,
            engine: EngineKind::Whatsapp,
            retry: ManagerConfig::default(),
            whatsapp: WaOptions::default(),
        }
    }
}

/// Parses `90s`, `15m`, `1h`, `7d` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num.parse().map_err(|_| format!("invalid duration {s:?} (try 30s, 15m, 1h, 7d)"))?;
    let secs = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86400),
        _ => return Err(format!("invalid duration unit in {s:?} (use ms, s, m, h or d)")),
    };
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("42"), Ok(Duration::from_secs(42)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("1y").is_err());
        assert!(parse_duration("h").is_err());
    }
}
