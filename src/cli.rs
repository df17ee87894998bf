//! The command line (CONTRACT §7): `serve`, `token`, `backup`, `check`, and
//! `console` (a ready link to the web console, for local development).
//! Every flag can also come from `WAG_<FLAG>` in the environment.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde_json::{json, Map, Value};

use crate::app::{App, Gateway};
use crate::auth::issuer::{Issuer, DEFAULT_ISSUER};
use crate::auth::ClaimPaths;
use crate::config::{parse_bytes, parse_duration, parse_quota, LogFormat, ServeConfig};
use crate::http::conn::Timeouts;
use crate::http::rate_limit::Limit;
use crate::store::{self, backup, check, data_file};

/// wa-gateway: a self-hosted, multi-tenant WhatsApp gateway.
#[derive(Parser, Debug)]
#[command(name = "wa-gateway", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
// Parsed once per process: the size of `serve`'s arguments does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gateway.
    Serve(ServeArgs),
    /// Print a login JWT from the embedded issuer (works while `serve` runs).
    Token(TokenArgs),
    /// Write a consistent snapshot of the data file (works while `serve` runs).
    Backup(BackupArgs),
    /// Verify a data file or backup read-only; exit 1 if inconsistent.
    Check(CheckArgs),
    /// Print a link to the web console, signed in with a short-lived token
    /// from the embedded issuer (local development).
    Console(ConsoleArgs),
}

/// Flags of `serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "WAG_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Data directory (holds gateway.redb and issuer.pk8).
    #[arg(long, env = "WAG_DATA", default_value = "./data")]
    pub data: PathBuf,
    /// This node's id, reported as each session's gatewayId.
    #[arg(long, env = "WAG_GATEWAY_ID", default_value = "gw-local-1")]
    pub gateway_id: String,
    /// The frontend's JWKS URL; without it the gateway is its own issuer.
    #[arg(long, env = "WAG_JWKS_URL")]
    pub jwks_url: Option<String>,
    #[command(flatten)]
    pub jwt: JwtArgs,
    /// Log line format.
    #[arg(long, env = "WAG_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Origins allowed by CORS (comma-separated); none by default.
    #[arg(long, env = "WAG_CORS_ORIGIN", value_delimiter = ',')]
    pub cors_origin: Vec<String>,
    /// Cap on open client connections; 0 = from the open-files limit (raised
    /// to its hard limit at start). At the cap, the connection that has
    /// waited longest on its client is shed.
    #[arg(long, env = "WAG_MAX_CONNECTIONS", default_value_t = 0)]
    pub max_connections: usize,
    /// Longest wait for a request's headers, from its first byte.
    #[arg(long, env = "WAG_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,
    /// Longest wait for a whole request body.
    #[arg(long, env = "WAG_BODY_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub body_timeout: Duration,
    /// Longest wait for a client to take any one write of our answer.
    #[arg(long, env = "WAG_WRITE_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub write_timeout: Duration,
    /// Longest idle time of a keep-alive connection between requests.
    #[arg(long, env = "WAG_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Longest a shutdown (SIGTERM, ctrl-c) takes before open connections are cut.
    #[arg(long, env = "WAG_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// Requests per second per principal (api-key, or user+org of a JWT);
    /// 0 turns this and the failed-authentication limit off.
    #[arg(long, env = "WAG_RATE_LIMIT", default_value = "50", value_parser = crate::http::rate_limit::parse_rate)]
    pub rate_limit: f64,
    /// Burst of requests per principal above the steady rate.
    #[arg(long, env = "WAG_RATE_LIMIT_BURST", default_value_t = 100)]
    pub rate_limit_burst: u32,
    /// Failed authentications per second per client address.
    #[arg(long, env = "WAG_AUTH_FAILURE_LIMIT", default_value = "10", value_parser = crate::http::rate_limit::parse_rate)]
    pub auth_failure_limit: f64,
    /// Burst of failed authentications per client address.
    #[arg(long, env = "WAG_AUTH_FAILURE_BURST", default_value_t = 50)]
    pub auth_failure_burst: u32,
    /// Proxies (CIDR, comma-separated) whose `X-Forwarded-For` names the client.
    #[arg(long, env = "WAG_TRUSTED_PROXY", value_delimiter = ',')]
    pub trusted_proxy: Vec<crate::http::rate_limit::Cidr>,
    /// Writes are refused (503) while the data disk has less free space (0 = never).
    #[arg(long, env = "WAG_MIN_FREE_DISK", default_value = "256MiB", value_parser = parse_bytes)]
    pub min_free_disk: u64,
    /// Bytes of stored media and message bodies an organization may keep
    /// when its `maxStoredBytes` is null: a size (`50MiB`, `10GiB`), or
    /// `unlimited` (also `0`).
    #[arg(long, env = "WAG_ORG_STORAGE_QUOTA", default_value = "unlimited", value_parser = parse_quota)]
    pub org_storage_quota: u64,
    /// The WhatsApp engine: `whatsapp` (real) or `sim` (in-process simulator).
    #[arg(long, env = "WAG_ENGINE", value_enum, default_value = "whatsapp")]
    pub engine: crate::engine::EngineKind,
    /// How often the JWKS is refreshed.
    #[arg(long, env = "WAG_JWKS_REFRESH", default_value = "10m", value_parser = parse_duration)]
    pub jwks_refresh: Duration,
    /// Failed connects in a row before a session is `failed` (1..=1000).
    #[arg(long, env = "WAG_RECONNECT_ATTEMPTS", default_value_t = 6,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub reconnect_attempts: u32,
    /// Longest wait between two connects (backoff doubles from 1s up to this).
    #[arg(long, env = "WAG_RECONNECT_MAX_DELAY", default_value = "60s", value_parser = parse_duration)]
    pub reconnect_max_delay: Duration,
    /// A queued message not sent this long after `createdAt` (or `sendAt`) is `expired`.
    #[arg(long, env = "WAG_MESSAGE_TTL", default_value = "24h", value_parser = parse_duration)]
    pub message_ttl: Duration,
    /// Messages queued per session at most; past it, 429.
    #[arg(long, env = "WAG_MAX_QUEUED_MESSAGES", default_value_t = 10_000)]
    pub max_queued_messages: u64,
    /// How long a session's queue pauses after account trouble when WhatsApp names no time.
    #[arg(long, env = "WAG_SEND_PAUSE", default_value = "1h", value_parser = parse_duration)]
    pub send_pause: Duration,
    /// How long messages are kept.
    #[arg(long, env = "WAG_MESSAGE_RETENTION", default_value = "30d", value_parser = parse_duration)]
    pub message_retention: Duration,
    /// How long events are kept.
    #[arg(long, env = "WAG_EVENT_RETENTION", default_value = "7d", value_parser = parse_duration)]
    pub event_retention: Duration,
    /// Number checks and group participant adds per session in any rolling hour (the lookup budget); past it, 429.
    #[arg(long, env = "WAG_LOOKUPS_PER_HOUR", default_value_t = crate::directory::DEFAULT_LOOKUPS_PER_HOUR)]
    pub lookups_per_hour: u32,
    /// How long a number check's answer ("not on WhatsApp" included) is reused without asking WhatsApp.
    #[arg(long, env = "WAG_CONTACT_CHECK_TTL", default_value = "7d", value_parser = parse_duration)]
    pub contact_check_ttl: Duration,
    /// How long presence.update events are kept.
    #[arg(long, env = "WAG_PRESENCE_RETENTION", default_value = "1h", value_parser = parse_duration)]
    pub presence_retention: Duration,
    /// Bytes of media being read, fetched or decoded at once across all requests; past it a send waits, then 429 (0 = unlimited).
    #[arg(long, env = "WAG_MEDIA_FETCH_BUDGET", default_value = "256MiB", value_parser = parse_bytes)]
    pub media_fetch_budget: u64,
    /// Let media URLs (and later webhooks) reach private, loopback and link-local addresses.
    #[arg(long, env = "WAG_ALLOW_PRIVATE_URLS")]
    pub allow_private_urls: bool,
    /// Webhook retry waits, comma-separated (units ms, s, m, h); after the last, a delivery is failed.
    #[arg(long, env = "WAG_WEBHOOK_RETRY_SCHEDULE", default_value = "5s,5m,30m,2h,5h,10h,10h", value_parser = crate::delivery::retry::Schedule::parse)]
    pub webhook_retry_schedule: crate::delivery::retry::Schedule,
    /// One webhook delivery attempt, everything included, at most this long.
    #[arg(long, env = "WAG_WEBHOOK_TIMEOUT", default_value = "15s", value_parser = parse_duration)]
    pub webhook_timeout: Duration,
    /// Webhook attempts in flight to one endpoint at most (one per session at most).
    #[arg(long, env = "WAG_WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub webhook_max_in_flight_per_endpoint: u32,
    /// Webhook attempts in flight overall, shared fairly per organization: each busy organization gets an
    /// equal share, and one under its share may start at once even while others hold more (up to twice this).
    #[arg(long, env = "WAG_WEBHOOK_MAX_IN_FLIGHT", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub webhook_max_in_flight: u32,
    /// Live event streams: a comment heartbeat this often.
    #[arg(long, env = "WAG_SSE_HEARTBEAT", default_value = "15s", value_parser = parse_duration)]
    pub sse_heartbeat: Duration,
    /// Live event streams: a reader that takes nothing for this long is cut off (it resumes with Last-Event-ID).
    #[arg(long, env = "WAG_SSE_STALL_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub sse_stall_timeout: Duration,
    /// Sim engine: append everything the simulated network receives to FILE, one JSON line each.
    #[arg(long, env = "WAG_SIM_LOG")]
    pub sim_log: Option<PathBuf>,
}

/// How login JWTs are read: shared by `serve` (to verify) and `token` (to mint).
#[derive(Args, Debug)]
pub struct JwtArgs {
    /// Required `iss` of login JWTs.
    #[arg(long, env = "WAG_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` of login JWTs.
    #[arg(long, env = "WAG_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Claim path of the organization id (dotted for nested, e.g. `o.id`).
    #[arg(long, env = "WAG_CLAIM_ORG", default_value = "org_id")]
    pub claim_org: String,
    /// Claim path of the organization role.
    #[arg(long, env = "WAG_CLAIM_ROLE", default_value = "org_role")]
    pub claim_role: String,
    /// Claim path of the platform role.
    #[arg(long, env = "WAG_CLAIM_PLATFORM_ROLE", default_value = "platform_role")]
    pub claim_platform_role: String,
}

impl JwtArgs {
    /// The claim paths.
    pub fn claims(&self) -> ClaimPaths {
        ClaimPaths {
            org: self.claim_org.clone(),
            role: self.claim_role.clone(),
            platform_role: self.claim_platform_role.clone(),
        }
    }
}

/// Who a minted token names, and for how long: shared by `token` and `console`.
#[derive(Args, Debug)]
pub struct GrantArgs {
    /// Organization id.
    #[arg(long, env = "WAG_ORG")]
    pub org: Option<String>,
    /// Role in the organization.
    #[arg(long, env = "WAG_ROLE", value_parser = ["owner", "admin", "member"])]
    pub role: Option<String>,
    /// Add the platform super_admin role.
    #[arg(long, env = "WAG_SUPER_ADMIN")]
    pub super_admin: bool,
    /// Lifetime (30s, 15m, 1h, 7d).
    #[arg(long, env = "WAG_TTL", default_value = "1h", value_parser = parse_duration)]
    pub ttl: Duration,
}

/// Flags of `token`.
#[derive(Args, Debug)]
pub struct TokenArgs {
    #[arg(long, env = "WAG_DATA", default_value = "./data")]
    pub data: PathBuf,
    /// The user id (`sub`).
    #[arg(long, env = "WAG_SUB")]
    pub sub: String,
    #[command(flatten)]
    pub grant: GrantArgs,
    /// Issuer, audience and claim paths: the same flags (and `WAG_*` variables)
    /// as `serve`, so tokens match the server they are minted for.
    #[command(flatten)]
    pub jwt: JwtArgs,
    /// Mint even though this data directory's gateway verifies tokens from
    /// `--jwks-url` (the token would be accepted only if the gateway ever
    /// started again without it).
    #[arg(long, env = "WAG_FORCE")]
    pub force: bool,
}

/// Flags of `console`: where the gateway listens, and who the link signs in as.
#[derive(Args, Debug)]
pub struct ConsoleArgs {
    /// Address the gateway listens on (as given to `serve`).
    #[arg(long, env = "WAG_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    #[arg(long, env = "WAG_DATA", default_value = "./data")]
    pub data: PathBuf,
    /// The user id (`sub`) of the token.
    #[arg(long, env = "WAG_SUB", default_value = "console")]
    pub sub: String,
    /// Organization and role (`console`: owner unless --role says otherwise).
    #[command(flatten)]
    pub grant: GrantArgs,
    /// The frontend's JWKS URL: when set, tokens come from the frontend and
    /// no token is printed.
    #[arg(long, env = "WAG_JWKS_URL")]
    pub jwks_url: Option<String>,
    #[command(flatten)]
    pub jwt: JwtArgs,
}

/// Flags of `backup`.
#[derive(Args, Debug)]
pub struct BackupArgs {
    #[arg(long, env = "WAG_DATA", default_value = "./data")]
    pub data: PathBuf,
    /// The snapshot file to create (must not exist).
    #[arg(long, env = "WAG_OUT")]
    pub out: PathBuf,
}

/// Flags of `check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    #[arg(long, env = "WAG_DATA", default_value = "./data")]
    pub data: PathBuf,
    /// A data file or backup to check instead of `--data`.
    pub file: Option<PathBuf>,
    /// Repair the file in place (the only mode that writes to it): recover it
    /// after a crash and verify every page checksum; the server must be stopped.
    #[arg(long, env = "WAG_REPAIR")]
    pub repair: bool,
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Token(args) => token(args),
        Command::Backup(args) => backup_cmd(args),
        Command::Check(args) => check_cmd(args),
        Command::Console(args) => console_cmd(args),
    }
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("wa-gateway: {msg}");
    ExitCode::from(2)
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

fn serve(args: ServeArgs) -> ExitCode {
    crate::messaging::media_budget::return_big_buffers();
    init_logs(args.log_format);
    let mut config = ServeConfig::new(&args.data);
    config.gateway_id = args.gateway_id;
    config.jwks_url = args.jwks_url;
    config.claims = args.jwt.claims();
    config.jwt_issuer = args.jwt.jwt_issuer;
    config.jwt_audience = args.jwt.jwt_audience;
    config.cors_origins = args.cors_origin.into_iter().filter(|o| !o.is_empty()).collect();
    config.max_connections = args.max_connections;
    config.timeouts = Timeouts {
        header: args.header_timeout,
        body: args.body_timeout,
        write: args.write_timeout,
        idle: args.idle_timeout,
    };
    config.shutdown_timeout = args.shutdown_timeout;
    config.rate_limit = Limit::new(args.rate_limit, args.rate_limit_burst);
    // `--rate-limit 0` turns both off (benchmarks, trusted networks).
    config.auth_failure_limit = config.rate_limit.and(Limit::new(args.auth_failure_limit, args.auth_failure_burst));
    config.trusted_proxies = args.trusted_proxy;
    config.min_free_disk = args.min_free_disk;
    config.org_storage_quota = (args.org_storage_quota > 0).then_some(args.org_storage_quota);
    config.jwks.refresh_every = args.jwks_refresh;
    config.engine = args.engine;
    config.messaging = crate::messaging::MessagingConfig {
        message_ttl: args.message_ttl,
        max_queued: args.max_queued_messages,
        send_pause: args.send_pause,
        message_retention: args.message_retention,
        event_retention: args.event_retention,
        allow_private_urls: args.allow_private_urls,
        media_fetch_budget: args.media_fetch_budget,
        ..crate::messaging::MessagingConfig::default()
    };
    config.directory = crate::directory::DirectoryConfig {
        lookups_per_hour: args.lookups_per_hour,
        contact_check_ttl: args.contact_check_ttl,
        presence_retention: args.presence_retention,
    };
    config.delivery = crate::delivery::DeliveryConfig {
        retry_schedule: args.webhook_retry_schedule.0,
        timeout: args.webhook_timeout,
        max_in_flight_per_webhook: args.webhook_max_in_flight_per_endpoint as usize,
        max_in_flight: args.webhook_max_in_flight as usize,
    };
    config.sse_heartbeat = args.sse_heartbeat;
    config.sse_stall_timeout = args.sse_stall_timeout;
    config.sim_log = args.sim_log;
    config.retry.max_attempts = args.reconnect_attempts;
    config.retry.backoff_max = args.reconnect_max_delay.max(config.retry.backoff_base);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(e),
    };
    let code = runtime.block_on(async move {
        let app = match App::build(config) {
            Ok(app) => app,
            Err(e) => return fail(e),
        };
        let listener = match tokio::net::TcpListener::bind(&args.listen).await {
            Ok(l) => l,
            Err(e) => return fail(format!("cannot listen on {}: {e}", args.listen)),
        };
        let mode = if app.issuer.is_some() { "embedded" } else { "jwks" };
        let gateway = match Gateway::start(app, listener) {
            Ok(g) => g,
            Err(e) => return fail(e),
        };
        let cfg = &gateway.app.config;
        tracing::info!(
            address = %gateway.addr(),
            data_file = %data_file(&cfg.data_dir).display(),
            issuer = mode,
            jwks_url = cfg.jwks_url.as_deref().unwrap_or("-"),
            gateway_id = %cfg.gateway_id,
            engine = gateway.app.engine.engine_name(),
            "wa-gateway listening on http://{}", gateway.addr()
        );
        if mode == "embedded" {
            tracing::warn!(
                key = %crate::auth::issuer::key_path(&cfg.data_dir).display(),
                "EMBEDDED ISSUER IS ON: anyone who can read the data directory can mint login tokens \
                 (`wa-gateway token`). Use --jwks-url to trust your frontend instead."
            );
        }
        // A full disk, or a write that met an I/O error, never ends the
        // process: the store reopens its file and resumes writes by itself
        // (`store::recovery`), and `/healthz` says `degraded` meanwhile.
        shutdown_signal().await;
        tracing::info!("shutting down: draining requests and closing the data file");
        let closed = gateway.shutdown().await;
        match closed {
            Ok(true) => {
                tracing::info!("data file closed cleanly");
                ExitCode::SUCCESS
            }
            Ok(false) => {
                tracing::warn!("data file still in use at exit; redb closes it as the process ends");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        }
    });
    // Whatever is still running (a DNS lookup on the blocking pool, say)
    // must not keep the process from exiting.
    runtime.shutdown_timeout(std::time::Duration::from_millis(300));
    code
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Sets a dotted claim path (`o.id`) in a claims object.
fn set_claim(claims: &mut Map<String, Value>, path: &str, value: Value) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().unwrap_or(path);
    let mut cur = claims;
    for p in parts {
        let entry = cur.entry(p.to_string()).or_insert_with(|| json!({}));
        if !entry.is_object() {
            *entry = json!({});
        }
        match entry.as_object_mut() {
            Some(m) => cur = m,
            None => return,
        }
    }
    cur.insert(last.to_string(), value);
}

/// What a login JWT from the embedded issuer says: shared by `token` and `console`.
struct Mint<'a> {
    data: &'a Path,
    sub: &'a str,
    org: Option<&'a str>,
    role: Option<&'a str>,
    super_admin: bool,
    ttl: Duration,
    jwt: &'a JwtArgs,
    force: bool,
}

/// Mints a login JWT with the data directory's embedded issuer key, or says
/// why not (no data directory; the gateway verifies `--jwks-url` tokens).
fn mint(m: Mint<'_>) -> Result<String, String> {
    if !m.data.is_dir() {
        return Err(format!(
            "no data directory at {} (start `wa-gateway serve` first, or pass --data)",
            m.data.display()
        ));
    }
    if !m.force {
        let file = data_file(m.data);
        let mode = if file.is_file() {
            store::open_read_only(&file).and_then(|db| store::issuer_mode(&db.begin_read()?)).ok().flatten()
        } else {
            None
        };
        if mode.as_deref() == Some("jwks") {
            return Err(format!(
                "the gateway of {} verifies login tokens from --jwks-url, so it would refuse a token from the \
                 embedded issuer; mint tokens with your frontend instead (or pass --force to create and use \
                 the embedded issuer key anyway)",
                m.data.display()
            ));
        }
    }
    let issuer = Issuer::load_or_create(m.data).map_err(|e| e.to_string())?;
    let now = store::now_ms() / 1000;
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(m.sub));
    claims.insert("iss".into(), json!(m.jwt.jwt_issuer.as_deref().unwrap_or(DEFAULT_ISSUER)));
    if let Some(aud) = &m.jwt.jwt_audience {
        claims.insert("aud".into(), json!(aud));
    }
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + m.ttl.as_secs() as i64));
    if let Some(org) = m.org {
        set_claim(&mut claims, &m.jwt.claim_org, json!(org));
    }
    if let Some(role) = m.role {
        set_claim(&mut claims, &m.jwt.claim_role, json!(role));
    }
    if m.super_admin {
        set_claim(&mut claims, &m.jwt.claim_platform_role, json!("super_admin"));
    }
    Ok(issuer.mint(&Value::Object(claims)))
}

fn token(args: TokenArgs) -> ExitCode {
    let minted = mint(Mint {
        data: &args.data,
        sub: &args.sub,
        org: args.grant.org.as_deref(),
        role: args.grant.role.as_deref(),
        super_admin: args.grant.super_admin,
        ttl: args.grant.ttl,
        jwt: &args.jwt,
        force: args.force,
    });
    match minted {
        Ok(t) => {
            println!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// The console's address for a listen address: a wildcard address is
/// reached through loopback.
fn console_base(listen: &str) -> String {
    let host = match listen.rsplit_once(':') {
        Some(("0.0.0.0", port)) => format!("127.0.0.1:{port}"),
        Some(("[::]", port)) => format!("[::1]:{port}"),
        _ => listen.to_string(),
    };
    format!("http://{host}/console")
}

/// `console`: prints a link to the web console with a short-lived token in
/// its fragment (which browsers never send to a server, so it stays out of
/// access logs; the console clears it from the address bar).
fn console_cmd(args: ConsoleArgs) -> ExitCode {
    let base = console_base(&args.listen);
    if args.jwks_url.is_some() {
        println!("{base}");
        eprintln!(
            "this gateway verifies login tokens from --jwks-url: sign in with a token from your frontend \
             (or an api-key); no token is printed"
        );
        return ExitCode::SUCCESS;
    }
    if args.grant.org.is_none() && !args.grant.super_admin {
        return fail("say who the console signs in as: --org ORG (owner unless --role) and/or --super-admin");
    }
    let role = args.grant.org.as_ref().map(|_| args.grant.role.as_deref().unwrap_or("owner"));
    let minted = mint(Mint {
        data: &args.data,
        sub: &args.sub,
        org: args.grant.org.as_deref(),
        role,
        super_admin: args.grant.super_admin,
        ttl: args.grant.ttl,
        jwt: &args.jwt,
        force: false,
    });
    match minted {
        Ok(t) => {
            println!("{base}#token={t}");
            eprintln!(
                "the link signs in as {} for {}s; anyone with it can act as that user until then",
                args.sub,
                args.grant.ttl.as_secs()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn backup_cmd(args: BackupArgs) -> ExitCode {
    // Refused before anything is opened or written.
    if let Err(e) = backup::check_target(&args.out) {
        return fail(e);
    }
    let path = data_file(&args.data);
    let result = store::open_read_only(&path).and_then(|db| {
        if let Some(note) = db.note(&path) {
            eprintln!("note: {note}");
        }
        backup::snapshot(&db.begin_read()?, &args.out)
    });
    match result {
        Ok(r) => {
            println!("wrote {} ({} bytes, {} sessions)", r.path.display(), r.size_bytes, r.sessions);
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `check`: exit 0 if the file is sound, 1 if it is damaged, inconsistent or
/// unreadable, 2 if the check could not run as asked; never a panic (101).
fn check_cmd(args: CheckArgs) -> ExitCode {
    use std::io::Write;
    let path = match &args.file {
        Some(f) if f.is_dir() => data_file(f),
        Some(f) => f.clone(),
        None => data_file(&args.data),
    };
    let mode = if args.repair { check::CheckMode::Repair } else { check::CheckMode::ReadOnly };
    // Whatever the storage layer panics on is damage to report, not a crash.
    check::quiet_panics();
    let result = check::guarded(|| check::run(Path::new(&path), mode));
    // Write errors (a closed pipe) are ignored: println! would panic on them.
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    let shown = path.display();
    match result {
        Ok(Ok(run)) => {
            for note in &run.notes {
                let _ = writeln!(err, "note: {note}");
            }
            let _ = writeln!(out, "{shown}: {}", run.report);
            if run.report.ok() {
                ExitCode::SUCCESS
            } else {
                let _ = writeln!(err, "wa-gateway: check {shown}: FAILED ({} problems)", run.report.problem_count());
                ExitCode::from(1)
            }
        }
        Ok(Err(e @ check::CheckError::Unreadable(_))) => {
            let _ = writeln!(err, "wa-gateway: check {shown}: {e}");
            ExitCode::from(1)
        }
        Ok(Err(e @ check::CheckError::Refused(_))) => {
            let _ = writeln!(err, "wa-gateway: check {shown}: {e}");
            ExitCode::from(2)
        }
        Err(panic) => {
            let _ = writeln!(err, "wa-gateway: check {shown}: FAILED: the check itself failed: {panic}");
            ExitCode::from(1)
        }
    }
}
