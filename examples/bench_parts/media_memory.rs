//! Part R of the bench: the gateway's memory while it takes in large media
//! (CONTRACT §11 continued, issue 20 "Memory"). Only with `--only r`: it
//! writes a few GB of staged media to the data disk.
//!
//! The same workload as `tests/media_memory.rs` (its 200-item batch and 50
//! base64 sends), measured on the release binary: `wa-gateway serve --engine
//! sim --allow-private-urls --rate-limit 0 --min-free-disk 0`, spawned as its
//! own process (`BENCH_GATEWAY_BIN`, or the `wa-gateway` next to this bench's
//! `examples/` directory), with its data under the target directory (the
//! normal disk, not a tmpfs: each phase stages up to 4 GB), one `working` sim
//! session, and a loopback server handing out 16 MiB of `image/jpeg`. No
//! `--media-fetch-budget` flag is passed, so a binary from before the budget
//! existed runs the same command line (the new one applies its default,
//! 256 MiB). Three phases, each on a fresh gateway process:
//!
//! - R1: one batch of 200 items, each a 16 MiB media URL;
//! - R2: 50 concurrent single sends, each a 16 MiB base64 `media.data`;
//! - R3: both at once (the sends start 300 ms after the batch).
//!
//! For each: the gateway's peak resident memory (`VmHWM`), its `VmRSS` 3 s
//! after the last answer, how many requests were answered 202 / 429 / other,
//! and the wall time. Target: the peak stays under the budget + 100 MiB.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

use super::{gateway_binary, proc_status_kib, wait_ready, Summary};

#[path = "../../tests/support/media_server.rs"]
mod media_server;
use media_server::media_server;

const MIB: usize = 1024 * 1024;
/// The new binary's default `--media-fetch-budget`.
const BUDGET_MIB: u64 = 256;
/// Batch items (R1, R3) and concurrent sends (R2, R3).
const BATCH_ITEMS: usize = 200;
const SENDS: usize = 50;
/// Bytes of each medium.
const MEDIA_BYTES: usize = 16 * MIB;

/// The binary to measure: `BENCH_GATEWAY_BIN`, else the one part C uses.
fn binary() -> Option<PathBuf> {
    match std::env::var_os("BENCH_GATEWAY_BIN") {
        Some(p) => Some(PathBuf::from(p)).filter(|p| p.is_file()),
        None => gateway_binary(),
    }
}

/// Where the data directories go: the target directory this bench was built
/// in (`target/release/examples/bench` -> `target/release`), on the normal disk.
fn scratch_root() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().and_then(Path::parent).map(Path::to_path_buf))
        .filter(|d| d.is_dir())
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// A `wa-gateway` command with a clean environment (no inherited `WAG_*` or
/// `RUST_LOG`, which would change what the binary does).
fn wag(bin: &Path) -> Command {
    let mut c = Command::new(bin);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("WAG_") {
            c.env_remove(k);
        }
    }
    c.env_remove("RUST_LOG");
    c.stdin(Stdio::null());
    c
}

/// An owner token from the embedded issuer (`wa-gateway token`).
fn owner_token(bin: &Path, data: &Path) -> Result<String, String> {
    let out = wag(bin)
        .arg("token")
        .arg("--data")
        .arg(data)
        .args(["--sub", "u", "--org", "o", "--role", "owner"])
        .output()
        .map_err(|e| format!("run wa-gateway token: {e}"))?;
    if !out.status.success() {
        return Err(format!("wa-gateway token failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `VmHWM` (peak) and `VmRSS` (now) of process `pid`, in MiB.
fn rss_mib(pid: u32) -> (f64, f64) {
    let mib = |f| proc_status_kib(pid, f).unwrap_or(0) as f64 / 1024.0;
    (mib("VmHWM:"), mib("VmRSS:"))
}

/// A spawned `wa-gateway serve`: SIGTERM on drop (then SIGKILL if it lingers).
struct Gateway {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Gateway {
    fn spawn(bin: &Path, data: &Path, log: PathBuf) -> std::io::Result<Gateway> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let file = std::fs::File::create(&log)?;
        let child = wag(bin)
            .args(["serve", "--engine", "sim", "--allow-private-urls", "--rate-limit", "0", "--min-free-disk", "0"])
            .arg("--data")
            .arg(data)
            .args(["--listen", &addr.to_string()])
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()?;
        Ok(Gateway { child, addr, log })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines the gateway wrote (for a phase that went wrong).
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A pooled HTTP/1.1 client with the gateway's base URL and an owner token.
#[derive(Clone)]
struct Api {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    token: String,
}

/// An answer: status, whether it carried `Retry-After`, the JSON body.
type Answer = (u16, bool, Value);

impl Api {
    /// One request (up to 600 s: a 200-item batch of 16 MiB takes a while).
    async fn send(&self, method: hyper::Method, path: &str, body: Option<Bytes>) -> Result<Answer, String> {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {}", self.token));
        if body.is_some() {
            b = b.header("content-type", "application/json");
        }
        let req = b.body(Full::new(body.unwrap_or_default())).map_err(|e| e.to_string())?;
        let fut = async {
            let resp = self.client.request(req).await.map_err(|e| format!("request: {e}"))?;
            let status = resp.status().as_u16();
            let retry = resp.headers().contains_key("retry-after");
            let bytes = resp.into_body().collect().await.map_err(|e| format!("body: {e}"))?.to_bytes();
            Ok((status, retry, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
        };
        tokio::time::timeout(Duration::from_secs(600), fut).await.map_err(|_| "no answer within 600 s".to_string())?
    }

    async fn post(&self, path: &str, body: Bytes) -> Result<Answer, String> {
        self.send(hyper::Method::POST, path, Some(body)).await
    }

    /// Waits (up to 10 s) until session `id` shows status `want`.
    async fn wait_status(&self, id: &str, want: &str) -> Result<(), String> {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            let (_, _, s) = self.send(hyper::Method::GET, &format!("/api/v1/sessions/{id}"), None).await?;
            if s["status"] == want {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(format!("session {id} never reached {want}"))
    }

    /// A sim session that is `working` (its queue sends, reading the media).
    async fn working_session(&self) -> Result<String, String> {
        let body = json!({"label": "r", "presenceTyping": false, "ratePerMin": 600});
        let (st, _, s) = self.post("/api/v1/sessions", Bytes::from(body.to_string())).await?;
        let id = match (st, s["id"].as_str()) {
            (201, Some(id)) => id.to_string(),
            _ => return Err(format!("create session: {st} {s}")),
        };
        self.wait_status(&id, "scan_qr_code").await?;
        let pair = Bytes::from(json!({"phoneNumber": "6281100000009"}).to_string());
        let (st, _, s) = self.post(&format!("/api/v1/sessions/{id}/sim/pair"), pair).await?;
        if st != 200 {
            return Err(format!("sim pair: {st} {s}"));
        }
        self.wait_status(&id, "working").await?;
        Ok(id)
    }
}

/// Which load a phase puts on the gateway.
#[derive(Clone, Copy)]
struct Mix {
    batch: bool,
    sends: bool,
}

/// What one phase measured.
struct Outcome {
    hwm_before: f64,
    hwm: f64,
    rss_after: f64,
    accepted: usize,
    limited: usize,
    /// 429s without `Retry-After` (should be none).
    limited_bare: usize,
    other: Vec<String>,
    /// The batch's answer: status and items queued.
    batch: Option<(u16, usize)>,
    secs: f64,
}

/// One phase on a fresh gateway process; `Err` if it could not be set up.
async fn phase(bin: &Path, url: &str, send_body: &Bytes, load: Mix) -> Result<Outcome, String> {
    let dir = tempfile::Builder::new()
        .prefix("bench-media-")
        .tempdir_in(scratch_root())
        .map_err(|e| format!("tempdir: {e}"))?;
    let data = dir.path().join("data");
    let gw = Gateway::spawn(bin, &data, dir.path().join("serve.log")).map_err(|e| format!("spawn serve: {e}"))?;
    if wait_ready(gw.addr, Duration::from_secs(30)).await.is_none() {
        return Err(format!("the gateway did not become ready:\n{}", gw.log_tail()));
    }
    let token = owner_token(bin, &data)?;
    let api = Api { client: Client::builder(TokioExecutor::new()).build_http(), base: format!("http://{}", gw.addr), token };
    let id = api.working_session().await.map_err(|e| format!("{e}\n{}", gw.log_tail()))?;
    let (hwm_before, _) = rss_mib(gw.pid());
    let started = Instant::now();

    let batch = load.batch.then(|| {
        let items: Vec<Value> = (0..BATCH_ITEMS)
            .map(|i| json!({"to": "6281234567890", "text": format!("b{i}"), "media": {"url": format!("{url}/media")}}))
            .collect();
        let body = Bytes::from(json!({"messages": items}).to_string());
        let (api, path) = (api.clone(), format!("/api/v1/sessions/{id}/messages/batch"));
        tokio::spawn(async move { api.post(&path, body).await })
    });
    if load.batch && load.sends {
        // Let the batch start fetching, then the sends at once.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let sends: Vec<_> = if load.sends {
        (0..SENDS)
            .map(|_| {
                let (api, path, body) = (api.clone(), format!("/api/v1/sessions/{id}/messages"), send_body.clone());
                tokio::spawn(async move { api.post(&path, body).await })
            })
            .collect()
    } else {
        Vec::new()
    };

    let (mut accepted, mut limited, mut limited_bare, mut other) = (0, 0, 0, Vec::new());
    for s in sends {
        match s.await.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok((202, _, _)) => accepted += 1,
            Ok((429, retry, _)) => {
                limited += 1;
                if !retry {
                    limited_bare += 1;
                }
            }
            Ok((st, _, body)) => other.push(format!("send {st}: {}", short(&body))),
            Err(e) => other.push(format!("send: {e}")),
        }
    }
    let batch = match batch {
        None => None,
        Some(b) => match b.await.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok((st, _, body)) => {
                if st != 202 {
                    other.push(format!("batch {st}: {}", short(&body)));
                }
                Some((st, body["data"].as_array().map_or(0, Vec::len)))
            }
            Err(e) => {
                other.push(format!("batch: {e}"));
                None
            }
        },
    };
    let secs = started.elapsed().as_secs_f64();
    let (hwm, _) = rss_mib(gw.pid());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, rss_after) = rss_mib(gw.pid());
    if !other.is_empty() {
        println!("  gateway log tail:\n{}", gw.log_tail());
    }
    drop(gw);
    Ok(Outcome { hwm_before, hwm, rss_after, accepted, limited, limited_bare, other, batch, secs })
}

/// The start of an error body (they can quote the request).
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 200 {
        format!("{}…", s.chars().take(200).collect::<String>())
    } else {
        s
    }
}

pub async fn run(summary: &mut Summary) {
    println!("\n--- R. Media memory: 200×16 MiB URL batch, 50×16 MiB base64 sends (wa-gateway serve --engine sim) ---");
    let Some(bin) = binary() else {
        println!("no wa-gateway binary (BENCH_GATEWAY_BIN, or target/release/wa-gateway): part R skipped");
        summary.add("R media memory", "skipped", "");
        return;
    };
    println!("binary: {}; data under {}", bin.display(), scratch_root().display());
    let target = format!("< {} MiB", BUDGET_MIB + 100);
    let url = media_server(MEDIA_BYTES).await;
    // One 16 MiB base64 send body, shared by every send (Bytes clones).
    let send_body = {
        let media: Vec<u8> = (0..MEDIA_BYTES).map(|i| (i % 251) as u8).collect();
        let data = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &media);
        Bytes::from(json!({"to": "6281234567890", "media": {"data": data, "mimetype": "image/png"}}).to_string())
    };

    let phases = [
        ("R1", "200×16 MiB URL batch", Mix { batch: true, sends: false }),
        ("R2", "50×16 MiB base64 sends", Mix { batch: false, sends: true }),
        ("R3", "batch + 50 sends at once", Mix { batch: true, sends: true }),
    ];
    for (tag, what, load) in phases {
        match phase(&bin, &url, &send_body, load).await {
            Err(e) => {
                println!("{tag} {what}: not measured: {e}");
                summary.add(format!("{tag} {what}: peak RSS"), "failed", target.clone());
            }
            Ok(o) => {
                let batch = match o.batch {
                    Some((st, n)) => format!("batch {st} ({n} items queued); "),
                    None if load.batch => "batch unanswered; ".to_string(),
                    None => String::new(),
                };
                let sends = if load.sends {
                    format!(
                        "sends: {} × 202, {} × 429{}, {} other; ",
                        o.accepted,
                        o.limited,
                        if o.limited_bare > 0 { format!(" ({} without Retry-After)", o.limited_bare) } else { String::new() },
                        o.other.iter().filter(|e| e.starts_with("send")).count()
                    )
                } else {
                    String::new()
                };
                println!(
                    "{tag} {what}: {batch}{sends}answered in {:.1} s; peak VmHWM {:.1} MiB (before the load {:.1} MiB; target {target}); \
                     VmRSS 3 s after {:.1} MiB",
                    o.secs, o.hwm, o.hwm_before, o.rss_after
                );
                for e in o.other.iter().take(5) {
                    println!("  {e}");
                }
                summary.add(format!("{tag} {what}: peak RSS"), format!("{:.1} MiB", o.hwm), target.clone());
                summary.add(format!("{tag} {what}: VmRSS 3 s after"), format!("{:.1} MiB", o.rss_after), "");
                let mut answers = Vec::new();
                if let Some((st, _)) = o.batch {
                    answers.push(format!("batch {st}"));
                }
                if load.sends {
                    answers.push(format!("{}/{}/{}", o.accepted, o.limited, o.other.iter().filter(|e| e.starts_with("send")).count()));
                }
                summary.add(
                    format!("{tag} {what}: answers{}", if load.sends { " (sends 202/429/other)" } else { "" }),
                    answers.join(", "),
                    "",
                );
                summary.add(format!("{tag} {what}: wall time"), format!("{:.1} s", o.secs), "");
            }
        }
    }
}
