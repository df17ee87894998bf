//! Runtime configuration of `serve`, independent of how it was given (flags,
//! environment, or a test building it directly).

use std::path::PathBuf;
use std::time::Duration;

use crate::auth::jwks::JwksConfig;
use crate::auth::ClaimPaths;
use crate::engine::manager::ManagerConfig;
use crate::engine::wa_client::WaOptions;
use crate::engine::EngineKind;
use crate::http::conn::Timeouts;
use crate::http::rate_limit::{self, Cidr, Limit};

/// Default `--min-free-disk`: 256 MiB.
pub const DEFAULT_MIN_FREE_DISK: u64 = 256 * 1024 * 1024;

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
    /// Cap on open client connections; 0 = from the fd limit (see
    /// [`crate::http::server::connection_cap`]).
    pub max_connections: usize,
    /// How long a client may keep us waiting (headers, body, writes, idle).
    pub timeouts: Timeouts,
    /// How long a shutdown may take before open connections are cut.
    pub shutdown_timeout: Duration,
    /// Requests per principal (api-key, or user+org); `None` = off.
    pub rate_limit: Option<Limit>,
    /// Failed authentications per client address; `None` = off.
    pub auth_failure_limit: Option<Limit>,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<Cidr>,
    /// Writes are refused (503) while the data file's filesystem has less free.
    pub min_free_disk: u64,
    /// `--org-storage-quota`: the cap on an organization's stored media and
    /// message bodies when its `maxStoredBytes` is null; `None` = unlimited.
    pub org_storage_quota: Option<u64>,
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
    /// Send queues, retention, media fetching.
    pub messaging: crate::messaging::MessagingConfig,
    /// Contacts, presence and groups (CONTRACT §12, §13).
    pub directory: crate::directory::DirectoryConfig,
    /// Webhook delivery: retry schedule, timeout, in-flight caps.
    pub delivery: crate::delivery::DeliveryConfig,
    /// Sim engine: where to append what the simulated network received.
    pub sim_log: Option<PathBuf>,
    /// Live event streams: a comment heartbeat this often (CONTRACT §10: 15 s).
    pub sse_heartbeat: Duration,
    /// Live event streams: a reader that takes nothing for this long is cut
    /// off (it resumes with `Last-Event-ID`).
    pub sse_stall_timeout: Duration,
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
            max_connections: 0,
            timeouts: Timeouts::default(),
            shutdown_timeout: Duration::from_secs(10),
            rate_limit: Limit::new(rate_limit::DEFAULT_RATE, rate_limit::DEFAULT_BURST),
            auth_failure_limit: Limit::new(rate_limit::AUTH_FAILURE_RATE, rate_limit::AUTH_FAILURE_BURST),
            trusted_proxies: Vec::new(),
            min_free_disk: DEFAULT_MIN_FREE_DISK,
            org_storage_quota: None,
            jwks: JwksConfig::default(),
            cache_bytes: crate::store::DEFAULT_CACHE_BYTES,
            token_cache: 10_000,
            page_cache: 256,
            engine: EngineKind::Whatsapp,
            retry: ManagerConfig::default(),
            whatsapp: WaOptions::default(),
            messaging: crate::messaging::MessagingConfig::default(),
            directory: crate::directory::DirectoryConfig::default(),
            delivery: crate::delivery::DeliveryConfig::default(),
            sim_log: None,
            sse_heartbeat: Duration::from_secs(15),
            sse_stall_timeout: Duration::from_secs(10),
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

/// Parses a byte size: `256MiB`, `1GiB`, `512k`, `100MB` or a bare number of bytes.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("invalid size {s:?} (try 256MiB, 1GiB, 0)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(format!("invalid size unit in {s:?} (use B, KiB, MiB, GiB or TiB)")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("size {s:?} is too large"))
}

/// Parses `--org-storage-quota`: `unlimited` (or `0`, as other flags say
/// "off") is no cap and reads as 0; anything else is a size as
/// [`parse_bytes`] reads it.
pub fn parse_quota(s: &str) -> Result<u64, String> {
    if s.trim().eq_ignore_ascii_case("unlimited") {
        return Ok(0);
    }
    parse_bytes(s)
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

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("256MiB"), Ok(256 << 20));
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert_eq!(parse_bytes("0"), Ok(0));
        assert_eq!(parse_bytes("12345"), Ok(12345));
        assert!(parse_bytes("1Q").is_err());
        assert!(parse_bytes("99999999999T").is_err());
        assert_eq!(parse_quota("unlimited"), Ok(0));
        assert_eq!(parse_quota("0"), Ok(0));
        assert_eq!(parse_quota("50MiB"), Ok(50 << 20));
        assert!(parse_quota("lots").is_err());
    }
}
