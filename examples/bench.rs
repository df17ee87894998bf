//! Performance benchmark of the gateway (a program that prints numbers, not a test).
//!
//! ```text
//! cargo build --release                      # the `wa-gateway` binary, used by part C
//! cargo run --release --example bench [-- --data DIR] [--duration 5] [--conns 32] [--only abcde]
//! ```
//!
//! Without `--data` (or with an empty directory) it first seeds 1,000,000
//! sessions over 10,000 organizations with the code of `seed_data.rs` (into a
//! temp dir, or into DIR). It then measures, and prints with units:
//!
//! - **A. Throughput**: the real gateway started in-process (`App::build` +
//!   `Gateway::start` on 127.0.0.1:0, trusting a JWKS served over HTTP by a tiny
//!   hyper server in this process, RS256 super_admin login JWT). With the same
//!   keep-alive HTTP/1.1 client (N connections, 2 runtime threads, fixed
//!   duration, alternating 1 s slices of each), requests/s of
//!   `GET /api/v1/admin/sessions?limit=50` vs a static route
//!   (`App::extra_static`) answering the same bytes as one real response of that
//!   endpoint (through the same request pipeline); the ratio; with the
//!   verified-token cache and the page cache on and off.
//! - **B. Pagination**: a full walk of the list (limit 50, following
//!   `nextCursor`), then mean latency of the first page vs the last page.
//! - **C. Process**: `target/release/wa-gateway serve` spawned on the same data
//!   file: milliseconds from spawn to `/readyz` 200 (polled every 2 ms), and its
//!   resident memory (VmRSS, VmHWM) after a full walk through it; then SIGTERM.
//! - **D. JWT verification**: µs per token for RS256, ES256 and EdDSA through
//!   `jwt::verify_with`, through a `Verifier`, and as a hit of the
//!   authenticator's verified-token cache (SHA-256 of the token, one lookup).
//! - **E. Durable creates**: `POST /api/v1/sessions` per second with 1 and 16
//!   concurrent clients on a fresh data dir.
//!
//! - **F. Sim engine at scale**: `wa-gateway serve --engine sim` with 1,000
//!   sessions linked and `working`: resident memory per session, then a
//!   restart: spawn to `/readyz`, and spawn to all 1,000 `working` again.
//! - **H. Hardening** (`bench_parts/hardening.rs`): `/healthz` p99 with
//!   1,024 stalled connections vs none; the listing with the rate limiter on
//!   (not hit) vs off; an authorized 1 MiB create vs a 1 KiB one.
//! - **G. Idle `whatsapp` clients** (`bench_parts/wa_idle.rs`, run first): 200 real
//!   `whatsapp-rust` clients on the redb backend, each waiting on a loopback
//!   websocket that never answers the noise handshake: resident memory per
//!   client (offline, so before login).
//! - **M. Messaging** (`bench_parts/messaging.rs`): durable message 202s/s
//!   (1 and 16 clients), sim end-to-end messages/s, pacing lateness, RSS with
//!   1M queued messages, event-log first page vs last page.
//! - **K. The directory** (`bench_parts/directory.rs`): a group read and the
//!   first and last contacts and groups pages, at 10,000 contacts and 1,000
//!   groups in one sim session: p50/p99, last/first; and (`bench_parts/wa_group.rs`)
//!   one text to a 256-member group through the real client against the
//!   fake WhatsApp server: 202 → `sent`, and the RSS it adds.
//! - **X. Webhook delivery** (`bench_parts/delivery.rs`): events/s to one
//!   loopback receiver, commit → receiver latency at 1,000 events/s, and
//!   deliveries/s to 100 webhooks, and one organization's latency while another's
//!   100 endpoints hang (X6).
//! - **W. The whatsapp engine at scale** (`bench_parts/wa_fake.rs`): `--wa-sessions`
//!   (1,000) sessions linked by QR against the fake WhatsApp server of
//!   `tests/support/fake_wa` with real whatsapp-rust clients: VmRSS per working
//!   session, CPU per idle session, time to all `working` after a restart.
//! - **U. Web console** (`bench_parts/console.rs`, only with `--only u`: it
//!   needs chromium and runs `BENCH_CONSOLE_SECS`, default 600 s): the
//!   console's JS heap and renderer RSS during a live event tail at 100
//!   events/s in headless chromium.
//! - **R. Media memory** (`bench_parts/media_memory.rs`, only with `--only r`:
//!   it stages a few GB of media on the data disk): `wa-gateway serve
//!   --engine sim` (`BENCH_GATEWAY_BIN`, or `target/release/wa-gateway`) taking
//!   a 200×16 MiB URL batch (R1), 50 concurrent 16 MiB base64 sends (R2), and
//!   both at once (R3), each on a fresh process: peak RSS (VmHWM) against the
//!   media budget + 100 MiB, VmRSS 3 s after, 202/429 counts, wall time.
//!
//! A summary table with the targets comes last.

#[allow(dead_code)]
#[path = "seed_data.rs"]
mod seed;

#[path = "../tests/common/keys.rs"]
mod keys;

#[path = "bench_parts/wa_idle.rs"]
mod wa_idle;

#[path = "../tests/support/fake_wa/mod.rs"]
mod fake_wa;

#[path = "bench_parts/wa_fake.rs"]
mod wa_fake;

#[path = "bench_parts/delivery.rs"]
mod delivery;

#[path = "bench_parts/hardening.rs"]
mod hardening;

#[path = "bench_parts/messaging.rs"]
mod messaging;

#[path = "../tests/support/webdriver.rs"]
mod webdriver;

#[path = "bench_parts/console.rs"]
mod console;

#[path = "bench_parts/media_memory.rs"]
mod media_memory;

#[path = "bench_parts/directory.rs"]
mod directory;

#[path = "bench_parts/wa_group.rs"]
mod wa_group;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use wa_gateway::app::{App, Gateway};
use wa_gateway::auth::jwks::{JwksSource, KeySet};
use wa_gateway::auth::jwt::{verify_with, TimeClaims, Verifier, VerifyOptions};
use wa_gateway::auth::token_cache::{token_key, TokenCache};
use wa_gateway::config::ServeConfig;
use wa_gateway::store::now_ms;

use keys::TestKey;

const ISSUER: &str = "https://frontend.bench.local";
const LIST_PATH: &str = "/api/v1/admin/sessions?limit=50";
const STATIC_PATH: &str = "/bench/static-admin-sessions";
const SEED_ORGS: u64 = 10_000;
const SEED_SESSIONS: u64 = 1_000_000;

#[derive(Parser, Debug)]
#[command(about = "wa-gateway benchmark")]
struct Args {
    /// Data directory holding (or to be seeded with) 1M sessions over 10k orgs.
    /// Default: a temporary directory, seeded and removed afterwards.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Seconds per throughput measurement (part A).
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Concurrent keep-alive connections for part A.
    #[arg(long, default_value_t = 32)]
    conns: usize,
    /// Seconds per durable-create measurement (part E).
    #[arg(long, default_value_t = 3.0)]
    create_duration: f64,
    /// Requests each for the first-page / last-page latency (part B).
    #[arg(long, default_value_t = 2000)]
    page_samples: usize,
    /// Iterations per algorithm for JWT verification (part D).
    #[arg(long, default_value_t = 20_000)]
    jwt_iterations: usize,
    /// Part W: whatsapp sessions linked against the fake WhatsApp server.
    #[arg(long, default_value_t = 1000)]
    wa_sessions: usize,
    /// Part W: seconds the linked sessions sit idle while CPU is measured.
    #[arg(long, default_value_t = 60.0)]
    wa_idle: f64,
    /// Which parts to run (letters a-h, k, m, w, x; and u, the console in
    /// chromium, and r, media memory, never by default), e.g. `--only a` for
    /// throughput only.
    #[arg(long, default_value = "abcdefghkmwx")]
    only: String,
}

// ---------------------------------------------------------------------------
// A minimal keep-alive HTTP/1.1 client: one connection per task.

struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: String,
}

impl Conn {
    async fn open(addr: SocketAddr) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { sender, host: addr.to_string() })
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes), hyper::Error> {
        let mut b = Request::builder().method(method).uri(path).header("host", &self.host);
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        if body.is_some() {
            b = b.header("content-type", "application/json");
        }
        let req = b.body(Full::new(body.unwrap_or_default())).expect("valid request");
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    async fn get(&mut self, path: &str, token: Option<&str>) -> (StatusCode, Bytes) {
        self.send(Method::GET, path, token, None).await.expect("GET failed")
    }
}

/// Result of a fixed-duration load run.
#[derive(Clone, Copy, Debug, Default)]
struct Load {
    ok: u64,
    errors: u64,
    secs: f64,
}

impl Load {
    fn add(&mut self, other: Load) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.secs += other.secs;
    }

    fn rps(&self) -> f64 {
        self.ok as f64 / self.secs.max(1e-9)
    }
}

/// `conns` connections each send `method path` in a loop for `dur`; a response
/// counts if it has `want` status (and, if given, exactly `want_len` bytes).
#[allow(clippy::too_many_arguments)]
async fn load(
    addr: SocketAddr,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Bytes>,
    want: StatusCode,
    want_len: Option<usize>,
    conns: usize,
    dur: Duration,
) -> Load {
    let barrier = Arc::new(tokio::sync::Barrier::new(conns + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (barrier, stop, ok, errors) = (barrier.clone(), stop.clone(), ok.clone(), errors.clone());
        let (method, path, token, body) = (method.clone(), path.to_string(), token.map(str::to_string), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await.expect("connect to gateway");
            barrier.wait().await;
            while !stop.load(Ordering::Relaxed) {
                match conn.send(method.clone(), &path, token.as_deref(), body.clone()).await {
                    Ok((status, b)) if status == want && want_len.is_none_or(|l| l == b.len()) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        match Conn::open(addr).await {
                            Ok(c) => conn = c,
                            Err(_) => return,
                        }
                    }
                }
            }
        }));
    }
    barrier.wait().await;
    let started = Instant::now();
    tokio::time::sleep(dur).await;
    stop.store(true, Ordering::Relaxed);
    // Responses in flight when the clock stops are finished but still counted
    // against the measured interval only up to now.
    let secs = started.elapsed().as_secs_f64();
    let ok_at_stop = ok.load(Ordering::Relaxed);
    let err_at_stop = errors.load(Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    Load { ok: ok_at_stop, errors: err_at_stop, secs }
}

/// Mean and percentiles (µs) of `n` sequential GETs of `path` on one connection.
async fn latency(conn: &mut Conn, path: &str, token: &str, n: usize) -> Stats {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let (status, _) = conn.get(path, Some(token)).await;
        samples.push(t.elapsed().as_secs_f64() * 1e6);
        assert_eq!(status, StatusCode::OK, "GET {path}");
    }
    Stats::of(samples)
}

#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    mean: f64,
    p50: f64,
    p99: f64,
}

impl Stats {
    fn of(mut v: Vec<f64>) -> Stats {
        if v.is_empty() {
            return Stats::default();
        }
        v.sort_by(f64::total_cmp);
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
        Stats { mean, p50: at(0.5), p99: at(0.99) }
    }
}

/// Result of following `nextCursor` through the whole admin list.
struct Walk {
    pages: u64,
    items: u64,
    secs: f64,
    /// Path of the last page (the one whose `nextCursor` is null).
    last_page_path: String,
}

/// Just what the walk needs from a list page (items are skipped, not built).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageHead {
    data: Vec<serde::de::IgnoredAny>,
    next_cursor: Option<String>,
}

async fn walk(conn: &mut Conn, token: &str) -> Walk {
    let started = Instant::now();
    let mut path = LIST_PATH.to_string();
    let (mut pages, mut items) = (0u64, 0u64);
    loop {
        let (status, body) = conn.get(&path, Some(token)).await;
        assert_eq!(status, StatusCode::OK, "walk page {pages}: {}", String::from_utf8_lossy(&body));
        let page: PageHead = serde_json::from_slice(&body).expect("list JSON");
        pages += 1;
        items += page.data.len() as u64;
        match page.next_cursor {
            Some(c) => path = format!("{LIST_PATH}&cursor={c}"),
            None => break,
        }
    }
    Walk { pages, items, secs: started.elapsed().as_secs_f64(), last_page_path: path }
}

// ---------------------------------------------------------------------------
// The JWKS endpoint the gateway trusts, and the tokens it accepts.

async fn serve_jwks(doc: Bytes) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind JWKS server");
    let addr = listener.local_addr().expect("JWKS addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let doc = doc.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req: Request<Incoming>| {
                    let doc = doc.clone();
                    async move {
                        Ok::<_, Infallible>(
                            Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(doc))
                                .expect("JWKS response"),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    addr
}

struct Tokens {
    rsa: TestKey,
    p256: TestKey,
    ed: TestKey,
}

impl Tokens {
    fn new() -> Tokens {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rsa2048.pk8");
        Tokens { rsa: TestKey::rsa_from_file(fixture), p256: TestKey::p256(), ed: TestKey::ed25519() }
    }

    fn jwks(&self) -> String {
        keys::jwks(&[self.rsa.jwk("bench-rsa"), self.p256.jwk("bench-p256"), self.ed.jwk("bench-ed")])
    }

    fn sign(&self, alg: &str, claims: &Value) -> String {
        let (key, kid) = match alg {
            "RS256" => (&self.rsa, "bench-rsa"),
            "ES256" => (&self.p256, "bench-p256"),
            "EdDSA" => (&self.ed, "bench-ed"),
            other => panic!("no bench key for {other}"),
        };
        key.sign(alg, &json!({"alg": alg, "typ": "JWT", "kid": kid}), claims)
    }

    fn super_admin(&self, alg: &str) -> String {
        let now = keys::now();
        self.sign(
            alg,
            &json!({"sub": "user_bench_root", "iss": ISSUER, "iat": now, "exp": now + 3600,
                    "platform_role": "super_admin"}),
        )
    }

    fn owner(&self, org: &str) -> String {
        let now = keys::now();
        self.sign(
            "RS256",
            &json!({"sub": format!("user_owner_{org}"), "iss": ISSUER, "iat": now, "exp": now + 3600,
                    "org_id": org, "org_role": "owner"}),
        )
    }
}

// ---------------------------------------------------------------------------
// Gateways.

fn config(dir: &Path, jwks_url: &str, token_cache: usize, page_cache: usize) -> ServeConfig {
    let mut c = ServeConfig::new(dir);
    c.jwks_url = Some(jwks_url.to_string());
    c.jwt_issuer = Some(ISSUER.to_string());
    c.token_cache = token_cache;
    c.page_cache = page_cache;
    // A benchmark is one principal firing as fast as it can: the §11 limits
    // are off unless a part measures them (part H).
    c.rate_limit = None;
    c.auth_failure_limit = None;
    c
}

async fn start(config: ServeConfig, extra_static: Option<Bytes>) -> Gateway {
    let mut app = App::build(config).expect("build gateway");
    if let Some(b) = extra_static {
        app.extra_static.push((STATIC_PATH.to_string(), b));
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind gateway");
    let gw = Gateway::start(app, listener).expect("start gateway");
    wait_ready(gw.addr(), Duration::from_secs(10)).await.expect("in-process gateway became ready");
    gw
}

/// Polls `/readyz` every 2 ms until 200; returns how long it took.
async fn wait_ready(addr: SocketAddr, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        if let Ok(mut c) = Conn::open(addr).await {
            if let Ok((StatusCode::OK, _)) = c.send(Method::GET, "/readyz", None, None).await {
                return Some(started.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    None
}

fn ensure_seeded(dir: &Path) -> (bool, Option<seed::SeedStats>) {
    let existing = seed::existing_sessions(dir).expect("read data dir");
    if existing > 0 {
        println!("using {} ({existing} sessions already there)", dir.display());
        return (false, None);
    }
    println!("seeding {SEED_SESSIONS} sessions over {SEED_ORGS} organizations into {} ...", dir.display());
    let s = seed::seed(dir, SEED_ORGS, SEED_SESSIONS, 50_000, true).expect("seed data dir");
    println!(
        "  seeded in {:.2} s ({:.0} sessions/s, file {:.1} MiB)",
        s.elapsed.as_secs_f64(),
        s.rows_per_sec(),
        s.file_bytes as f64 / 1048576.0
    );
    (true, Some(s))
}

/// An embedded-issuer login JWT for the owner of `org`.
pub fn owner(gw: &Gateway, org: &str) -> String {
    let now = now_ms() / 1000;
    let claims = json!({"sub": format!("owner-of-{org}"), "iss": "wa-gateway", "iat": now, "exp": now + 7200,
                        "org_id": org, "org_role": "owner"});
    gw.app.issuer.as_ref().expect("embedded issuer").mint(&claims)
}

/// Gives freed heap back to the OS (glibc keeps it otherwise).
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only hands free heap pages back to the OS.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// This process's (VmRSS, VmHWM) in MiB.
pub fn rss_mib() -> (f64, f64) {
    let pid = std::process::id();
    let kib = |f| proc_status_kib(pid, f).unwrap_or(0) as f64 / 1024.0;
    (kib("VmRSS:"), kib("VmHWM:"))
}

fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn gateway_binary() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        // target/release/examples/bench -> target/release/wa-gateway
        if let Some(dir) = exe.parent().and_then(Path::parent) {
            candidates.push(dir.join("wa-gateway"));
        }
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/wa-gateway"));
    candidates.into_iter().find(|p| p.is_file())
}

// ---------------------------------------------------------------------------

#[derive(Default)]
struct Summary {
    rows: Vec<(String, String, String)>,
}

impl Summary {
    fn add(&mut self, what: impl Into<String>, value: impl Into<String>, target: impl Into<String>) {
        self.rows.push((what.into(), value.into(), target.into()));
    }

    fn print(&mut self) {
        // Seeding first, then parts A..E in order (A and B were measured interleaved).
        self.rows.sort_by_key(|r| if r.0.starts_with("seed") { ' ' } else { r.0.chars().next().unwrap_or(' ') });
        let w0 = self.rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(6);
        let w1 = self.rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(5);
        println!("\n=== SUMMARY ===");
        println!("{:<w0$}  {:>w1$}  target", "metric", "value");
        println!("{}", "-".repeat(w0 + w1 + 12));
        for (a, b, c) in &self.rows {
            println!("{a:<w0$}  {b:>w1$}  {c}");
        }
    }
}

fn main() {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run(args));
}

async fn run(args: Args) {
    let total_started = Instant::now();
    let only = args.only.to_ascii_lowercase();
    let want = |part: char| only.contains(part);
    let mut summary = Summary::default();
    println!(
        "wa-gateway bench: {} cores, runtime 2 worker threads, {} connections, {:.1} s per throughput run",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.conns,
        args.duration
    );

    // ---- G. Idle whatsapp engine clients (first: on a fresh heap, so the
    // allocator does not hand them memory that earlier parts freed) -----
    if want('g') {
        println!("\n--- G. 200 idle whatsapp-rust clients (loopback websocket, no WhatsApp server) ---");
        let pid = std::process::id();
        match wa_idle::idle_clients(200, || proc_status_kib(pid, "VmRSS:")).await {
            Some(per) => summary.add("G VmRSS per idle whatsapp client (pre-login)", format!("{per:.1} KiB"), ""),
            None => summary.add("G VmRSS per idle whatsapp client (pre-login)", "not all connected", ""),
        }
    }

    // Data: --data DIR (seeded if empty) or a temporary directory.
    let tmp;
    let dir = match &args.data {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir().expect("tempdir");
            tmp.path().to_path_buf()
        }
    };
    // Parts A-C read the 1M-session file; the others bring their own data.
    let seeded = if "abc".chars().any(want) { ensure_seeded(&dir).1 } else { None };
    if let Some(s) = &seeded {
        summary.add("seed 1M sessions", format!("{:.2} s", s.elapsed.as_secs_f64()), "< 60 s");
    }

    let tokens = Tokens::new();
    let jwks_addr = serve_jwks(Bytes::from(tokens.jwks())).await;
    let jwks_url = format!("http://{jwks_addr}/.well-known/jwks.json");
    let admin = tokens.super_admin("RS256");
    let dur = Duration::from_secs_f64(args.duration);

    // ---- A. Dynamic list vs static bytes --------------------------------
    let real_body = if want('a') {
        println!("\n--- A. GET {LIST_PATH} vs static route with the same bytes ---");
        let gw = start(config(&dir, &jwks_url, 10_000, 0), None).await;
        let mut c = Conn::open(gw.addr()).await.expect("connect");
        let (status, body) = c.get(LIST_PATH, Some(&admin)).await;
        assert_eq!(status, StatusCode::OK, "admin list: {}", String::from_utf8_lossy(&body));
        drop(c);
        gw.shutdown().await.expect("shutdown");
        println!("one real response: {} bytes (50 sessions + nextCursor)", body.len());
        Some(body)
    } else {
        None
    };

    // (label, verified-token cache, page cache). Part B runs with the page
    // cache off, so it measures what a page really costs to read and render.
    let mut runs = Vec::new();
    if want('a') {
        runs.push(("token cache on, page cache on", 10_000usize, 256usize));
    }
    if want('a') || want('b') {
        runs.push(("token cache on, page cache off", 10_000, 0));
    }
    if want('a') {
        runs.push(("token cache off, page cache off", 0, 0));
    }
    for (label, cache, pages) in runs {
        let gw = start(config(&dir, &jwks_url, cache, pages), real_body.clone()).await;
        let addr = gw.addr();
        if let Some(real_body) = &real_body {
            // Alternate ~1 s slices of each so background load on the machine
            // affects both sides alike; totals add up to `--duration` each.
            let slices = args.duration.round().max(1.0) as u32;
            let slice = dur / slices;
            let (mut dynamic, mut fixed) = (Load::default(), Load::default());
            for _ in 0..slices {
                let d = load(addr, Method::GET, LIST_PATH, Some(&admin), None, StatusCode::OK, None, args.conns, slice)
                    .await;
                let f = load(
                    addr,
                    Method::GET,
                    STATIC_PATH,
                    None,
                    None,
                    StatusCode::OK,
                    Some(real_body.len()),
                    args.conns,
                    slice,
                )
                .await;
                dynamic.add(d);
                fixed.add(f);
            }
            let ratio = dynamic.rps() / fixed.rps();
            println!("[{label}]");
            println!(
                "  admin list (RS256 JWT, limit=50): {:>9.0} req/s  ({} ok, {} errors, {:.2} s)",
                dynamic.rps(),
                dynamic.ok,
                dynamic.errors,
                dynamic.secs
            );
            println!(
                "  static, same {} bytes:          {:>9.0} req/s  ({} ok, {} errors, {:.2} s)",
                real_body.len(),
                fixed.rps(),
                fixed.ok,
                fixed.errors,
                fixed.secs
            );
            println!("  ratio dynamic/static:             {ratio:>9.3}  (target >= 0.50)");
            summary.add(format!("A admin list req/s, {label}"), format!("{:.0}", dynamic.rps()), "");
            summary.add(format!("A static req/s, {label}"), format!("{:.0}", fixed.rps()), "");
            summary.add(format!("A ratio, {label}"), format!("{ratio:.3}"), ">= 0.50");
        }

        // ---- B. Pagination (once: token cache on, page cache off) ----------
        if cache > 0 && pages == 0 && want('b') {
            println!("\n--- B. Walk and first page vs last page ---");
            let mut c = Conn::open(addr).await.expect("connect");
            let w = walk(&mut c, &admin).await;
            println!(
                "full walk, limit=50: {} pages, {} sessions in {:.2} s ({:.0} pages/s, {:.0} µs/page)",
                w.pages,
                w.items,
                w.secs,
                w.pages as f64 / w.secs,
                w.secs * 1e6 / w.pages as f64
            );
            let first = latency(&mut c, LIST_PATH, &admin, args.page_samples).await;
            let last = latency(&mut c, &w.last_page_path, &admin, args.page_samples).await;
            let r = last.mean / first.mean;
            println!(
                "first page: mean {:.1} µs, p50 {:.1} µs, p99 {:.1} µs ({} requests)",
                first.mean, first.p50, first.p99, args.page_samples
            );
            println!(
                "last page:  mean {:.1} µs, p50 {:.1} µs, p99 {:.1} µs ({} requests)",
                last.mean, last.p50, last.p99, args.page_samples
            );
            println!("ratio last/first (mean): {r:.3}  (target <= 1.5)");
            summary.add("B full walk (20k pages)", format!("{:.2} s", w.secs), "");
            summary.add("B walk items seen", w.items.to_string(), "1000000");
            summary.add("B first page mean", format!("{:.1} µs", first.mean), "");
            summary.add("B last page mean", format!("{:.1} µs", last.mean), "");
            summary.add("B ratio last/first", format!("{r:.3}"), "<= 1.5");
            println!();
        }
        gw.shutdown().await.expect("shutdown");
    }

    // ---- C. Process start and resident memory ----------------------------
    if want('c') {
        println!("\n--- C. wa-gateway serve: start to /readyz, resident memory ---");
        match gateway_binary() {
            None => {
                println!("target/release/wa-gateway not found: run `cargo build --release` first (part C skipped)");
                summary.add("C start to /readyz", "skipped", "< 300 ms");
            }
            Some(bin) => {
                let port = {
                    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
                    l.local_addr().expect("port").port()
                };
                let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
                let started = Instant::now();
                let mut child = std::process::Command::new(&bin)
                    .args(["serve", "--rate-limit", "0", "--data"])
                    .arg(&dir)
                    .args(["--listen", &addr.to_string(), "--jwks-url", &jwks_url, "--jwt-issuer", ISSUER])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .expect("spawn wa-gateway serve");
                let pid = child.id();
                let ready = wait_ready(addr, Duration::from_secs(30)).await;
                let ready_ms = ready.map(|_| started.elapsed().as_secs_f64() * 1000.0);
                match ready_ms {
                    Some(ms) => println!("process spawn to /readyz 200: {ms:.1} ms  (target < 300 ms)"),
                    None => println!("process did not become ready within 30 s"),
                }
                summary.add(
                    "C start to /readyz",
                    ready_ms.map_or("timeout".into(), |ms| format!("{ms:.1} ms")),
                    "< 300 ms",
                );
                if ready_ms.is_some() {
                    let rss_idle = proc_status_kib(pid, "VmRSS:").unwrap_or(0);
                    println!("VmRSS when ready: {:.1} MiB", rss_idle as f64 / 1024.0);
                    let mut c = Conn::open(addr).await.expect("connect");
                    let w = walk(&mut c, &admin).await;
                    println!(
                        "full walk through the process: {} pages, {} sessions in {:.2} s",
                        w.pages, w.items, w.secs
                    );
                    drop(c);
                    let l = load(addr, Method::GET, LIST_PATH, Some(&admin), None, StatusCode::OK, None, args.conns, Duration::from_secs(2)).await;
                    println!("then {} connections for 2 s: {:.0} req/s", args.conns, l.rps());
                    let rss = proc_status_kib(pid, "VmRSS:").unwrap_or(0);
                    let hwm = proc_status_kib(pid, "VmHWM:").unwrap_or(0);
                    println!(
                        "VmRSS after the load: {:.1} MiB, peak VmHWM: {:.1} MiB  (target < 100 MiB)",
                        rss as f64 / 1024.0,
                        hwm as f64 / 1024.0
                    );
                    summary.add("C VmRSS after load", format!("{:.1} MiB", rss as f64 / 1024.0), "< 100 MiB");
                    summary.add("C VmHWM (peak)", format!("{:.1} MiB", hwm as f64 / 1024.0), "< 100 MiB");
                }
                let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
                let stop_started = Instant::now();
                let status = tokio::task::spawn_blocking(move || child.wait()).await.expect("join").expect("wait");
                println!(
                    "SIGTERM -> exit in {:.1} ms ({status})",
                    stop_started.elapsed().as_secs_f64() * 1000.0
                );
            }
        }
    }

    // ---- D. JWT verification --------------------------------------------
    if want('d') {
        println!("\n--- D. JWT verification (µs per token) ---");
        let keyset = KeySet::parse(tokens.jwks().as_bytes()).expect("parse JWKS");
        let opts = VerifyOptions { issuer: Some(ISSUER.to_string()), audience: None, leeway_secs: 60 };
        let now = keys::now();
        let source = Arc::new(JwksSource::fixed(KeySet::parse(tokens.jwks().as_bytes()).expect("parse JWKS")));
        let verifier = Verifier::new(source, opts.clone());
        let cache: TokenCache<String> = TokenCache::new(10_000, 4 << 20, 60);
        println!("{:<6}  {:>16}  {:>20}  {:>20}", "alg", "verify_with", "Verifier", "token-cache hit");
        for alg in ["RS256", "ES256", "EdDSA"] {
            let token = tokens.super_admin(alg);
            verify_with(&token, &keyset, &opts, now).expect("bench token verifies");
            let n = args.jwt_iterations.max(1);
            let t = Instant::now();
            for _ in 0..n {
                std::hint::black_box(verify_with(std::hint::black_box(&token), &keyset, &opts, now).is_ok());
            }
            let raw = t.elapsed().as_secs_f64() * 1e6 / n as f64;
            let t = Instant::now();
            for _ in 0..n {
                std::hint::black_box(verifier.verify(&token).await.is_ok());
            }
            let off = t.elapsed().as_secs_f64() * 1e6 / n as f64;
            // A hit: what the authenticator does for a token it has seen.
            let verified = verifier.verify(&token).await.expect("verify");
            let times = serde_json::json!({"exp": verified.claims["exp"]});
            let times = TimeClaims::read(times.as_object().expect("object")).expect("times");
            cache.put(token_key(&token), "super".into(), 5, times, 1, now);
            let t = Instant::now();
            for _ in 0..n {
                std::hint::black_box(cache.get(&token_key(std::hint::black_box(&token)), 1, now).is_some());
            }
            let on = t.elapsed().as_secs_f64() * 1e6 / n as f64;
            println!("{alg:<6}  {raw:>13.2} µs  {off:>17.2} µs  {on:>17.2} µs   ({n} iterations each)");
            summary.add(format!("D {alg} verify_with"), format!("{raw:.2} µs"), "");
            summary.add(format!("D {alg} Verifier / cache hit"), format!("{off:.2} / {on:.2} µs"), "");
        }
    }

    // ---- E. Durable creates ---------------------------------------------
    if want('e') {
        println!("\n--- E. POST /api/v1/sessions (durable), fresh data dir ---");
        let fresh = tempfile::tempdir().expect("tempdir");
        let gw = start(config(fresh.path(), &jwks_url, 10_000, 256), None).await;
        let owner = tokens.owner("org_bench");
        // `"start": false`: the durable create itself; starting is measured below.
        let body = Bytes::from(json!({"label": "bench", "phoneNumber": "6281234567890", "start": false}).to_string());
        {
            let mut c = Conn::open(gw.addr()).await.expect("connect");
            let (status, b) = c
                .send(Method::POST, "/api/v1/sessions", Some(&owner), Some(body.clone()))
                .await
                .expect("POST");
            assert_eq!(status, StatusCode::CREATED, "create: {}", String::from_utf8_lossy(&b));
        }
        let cdur = Duration::from_secs_f64(args.create_duration);
        for clients in [1usize, 16] {
            let l = load(
                gw.addr(),
                Method::POST,
                "/api/v1/sessions",
                Some(&owner),
                Some(body.clone()),
                StatusCode::CREATED,
                None,
                clients,
                cdur,
            )
            .await;
            println!(
                "{clients:>2} client(s): {:>8.0} creates/s  ({} created, {} errors, {:.2} s)",
                l.rps(),
                l.ok,
                l.errors,
                l.secs
            );
            summary.add(format!("E creates/s, {clients} client(s)"), format!("{:.0}", l.rps()), "");
        }
        gw.shutdown().await.expect("shutdown");

        // The default create starts the session: one more durable write
        // (`starting`) and the engine's work. On the sim engine; and on the
        // whatsapp engine with no route out (every start fails and retries).
        for engine in [wa_gateway::engine::EngineKind::Sim, wa_gateway::engine::EngineKind::Whatsapp] {
            let fresh = tempfile::tempdir().expect("tempdir");
            let mut c = config(fresh.path(), &jwks_url, 10_000, 256);
            c.engine = engine;
            let name = if engine == wa_gateway::engine::EngineKind::Sim { "sim" } else { "whatsapp, no route" };
            let gw = start(c, None).await;
            let body = Bytes::from(json!({"label": "bench"}).to_string());
            for clients in [1usize, 16] {
                let l = load(gw.addr(), Method::POST, "/api/v1/sessions", Some(&owner), Some(body.clone()),
                    StatusCode::CREATED, None, clients, cdur).await;
                println!("{clients:>2} client(s): {:>8.0} creates/s that start ({name})  ({} created, {} errors)", l.rps(), l.ok, l.errors);
                summary.add(format!("E creates/s that start ({name}), {clients} client(s)"), format!("{:.0}", l.rps()), "");
            }
            gw.shutdown().await.expect("shutdown");
        }
    }

    // ---- H. Hardening: what §11's defences cost ------------------------------
    if want('h') {
        let fresh = tempfile::tempdir().expect("tempdir");
        hardening::run(fresh.path(), &jwks_url, &tokens, args.conns, args.duration, &mut summary).await;
    }

    // ---- F. 1,000 sessions running on the sim engine ------------------------
    if want('f') {
        println!("\n--- F. 1,000 sessions on the sim engine (wa-gateway serve --engine sim) ---");
        match gateway_binary() {
            None => {
                println!("target/release/wa-gateway not found: run `cargo build --release` first (part F skipped)");
                summary.add("F sim sessions", "skipped", "");
            }
            Some(bin) => sim_sessions(&bin, &jwks_url, &tokens, &mut summary).await,
        }
    }

    // ---- K. The directory: contacts and groups from the data file ----------
    if want('k') {
        let fresh = tempfile::tempdir().expect("tempdir");
        directory::run(fresh.path(), args.page_samples, &mut summary).await;
        wa_group::run(&mut summary).await;
    }

    // ---- M. Messaging: send queue and event log ---------------------------
    if want('m') {
        messaging::run(args.duration, args.page_samples, &mut summary).await;
    }

    // ---- U. The web console in headless chromium ---------------------------
    if want('u') {
        console::run(&mut summary).await;
    }

    // ---- R. Media memory: large batches and base64 sends -------------------
    if want('r') {
        media_memory::run(&mut summary).await;
    }

    // ---- X. Webhook delivery -----------------------------------------------
    if want('x') {
        delivery::run(&mut summary).await;
    }

    // ---- W. The whatsapp engine against the fake WhatsApp server ---------
    if want('w') {
        wa_fake::run(args.wa_sessions, Duration::from_secs_f64(args.wa_idle), &mut summary).await;
    }

    summary.print();
    println!("\ntotal bench time: {:.1} s", total_started.elapsed().as_secs_f64());
}

// ---------------------------------------------------------------------------
// F. Sim engine at scale.

fn spawn_sim(bin: &Path, dir: &Path, addr: SocketAddr, jwks_url: &str) -> std::process::Child {
    std::process::Command::new(bin)
        .args(["serve", "--rate-limit", "0", "--engine", "sim", "--data"])
        .arg(dir)
        .args(["--listen", &addr.to_string(), "--jwks-url", jwks_url, "--jwt-issuer", ISSUER])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn wa-gateway serve --engine sim")
}

/// `wa_gateway_sessions_by_status{status="working"}` from /metrics.
async fn working_count(c: &mut Conn) -> u64 {
    let (_, body) = c.get("/metrics", None).await;
    String::from_utf8_lossy(&body)
        .lines()
        .find(|l| l.starts_with("wa_gateway_sessions_by_status{status=\"working\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

async fn wait_working(c: &mut Conn, n: u64, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        if working_count(c).await >= n {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

fn sigterm(child: &mut std::process::Child) {
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
}

async fn sim_sessions(bin: &Path, jwks_url: &str, tokens: &Tokens, summary: &mut Summary) {
    const N: u64 = 1000;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let mut child = spawn_sim(bin, dir.path(), addr, jwks_url);
    if wait_ready(addr, Duration::from_secs(30)).await.is_none() {
        println!("sim gateway did not become ready");
        sigterm(&mut child);
        return;
    }
    let pid = child.id();
    let mut c = Conn::open(addr).await.expect("connect");
    let owner = tokens.owner("org_sim");
    // Warm the paths once so the baseline includes the server's own buffers.
    c.get("/api/v1/sessions", Some(&owner)).await;
    let rss0 = proc_status_kib(pid, "VmRSS:").unwrap_or(0);
    let started = Instant::now();
    for i in 0..N {
        let body = Bytes::from(json!({"label": format!("sim {i}"), "start": true}).to_string());
        let (st, resp) = c.send(Method::POST, "/api/v1/sessions", Some(&owner), Some(body)).await.expect("create");
        assert_eq!(st, StatusCode::CREATED, "{}", String::from_utf8_lossy(&resp));
        let id = serde_json::from_slice::<Value>(&resp).expect("json")["id"].as_str().expect("id").to_string();
        let pair = Bytes::from(json!({"phoneNumber": format!("62811{i:06}")}).to_string());
        loop {
            let (st, _) = c
                .send(Method::POST, &format!("/api/v1/sessions/{id}/sim/pair"), Some(&owner), Some(pair.clone()))
                .await
                .expect("pair");
            if st == StatusCode::OK {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let all = wait_working(&mut c, N, Duration::from_secs(60)).await;
    let linked_secs = started.elapsed().as_secs_f64();
    let rss1 = proc_status_kib(pid, "VmRSS:").unwrap_or(0);
    let per = (rss1.saturating_sub(rss0)) as f64 / N as f64;
    println!(
        "{N} sessions created, started and linked in {linked_secs:.1} s ({}); VmRSS {:.1} -> {:.1} MiB = {per:.1} KiB per working session",
        if all.is_some() { "all working" } else { "NOT all working" },
        rss0 as f64 / 1024.0,
        rss1 as f64 / 1024.0
    );
    summary.add("F VmRSS per working sim session", format!("{per:.1} KiB"), "");
    drop(c);
    sigterm(&mut child);

    // Restart: the 1,000 sessions come back by themselves.
    let started = Instant::now();
    let mut child = spawn_sim(bin, dir.path(), addr, jwks_url);
    let ready = wait_ready(addr, Duration::from_secs(30)).await.map(|_| started.elapsed());
    let mut c = Conn::open(addr).await.expect("connect");
    let resumed = wait_working(&mut c, N, Duration::from_secs(60)).await.map(|_| started.elapsed());
    let rss2 = proc_status_kib(child.id(), "VmRSS:").unwrap_or(0);
    let ms = |d: Option<Duration>| d.map_or("timeout".to_string(), |d| format!("{:.1} ms", d.as_secs_f64() * 1000.0));
    println!(
        "restart with {N} running sessions: spawn to /readyz {}, spawn to all {N} working {}, VmRSS {:.1} MiB",
        ms(ready),
        ms(resumed),
        rss2 as f64 / 1024.0
    );
    summary.add("F restart: spawn to /readyz (1,000 running)", ms(ready), "");
    summary.add("F restart: spawn to 1,000 working", ms(resumed), "");
    summary.add("F VmRSS with 1,000 working", format!("{:.1} MiB", rss2 as f64 / 1024.0), "");
    drop(c);
    sigterm(&mut child);
}
