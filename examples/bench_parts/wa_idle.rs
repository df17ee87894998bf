//! Bench part G: memory of idle `whatsapp` engine clients, measured offline.
//!
//! There is no WhatsApp server here, so the clients connect to a loopback
//! websocket that completes the HTTP upgrade and then never answers the noise
//! handshake. Each session then holds what an idle client holds before login:
//! its `whatsapp-rust` `Client`, the persistence manager with the device record
//! loaded from the redb data file, the websocket and the supervisor task.
//! Not counted (it needs a logged-in phone): Signal sessions, app-state keys
//! and caches that grow with real traffic.
//!
//! Measured in this process: VmRSS before and after N clients are waiting,
//! divided by N.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use ulid::Ulid;
use wa_gateway::engine::wa_client::{WaOptions, WhatsappEngine};
use wa_gateway::engine::{Engine, EventSink, StartInfo};
use wa_gateway::store::Store;

/// Counts of the loopback websocket server.
#[derive(Default)]
struct Seen {
    upgraded: AtomicU64,
    /// Connections that sent bytes after the upgrade (the noise hello).
    spoke: AtomicU64,
}

/// `Sec-WebSocket-Accept` for a client key (RFC 6455 §4.2.2).
fn ws_accept(key: &str) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(key.trim().as_bytes());
    ctx.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(ctx.finish().as_ref())
}

/// A websocket server that upgrades and then stays silent (for at most `life`).
async fn silent_ws(life: Duration) -> (String, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Seen::default());
    let counts = seen.clone();
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + life;
        while let Ok(Ok((mut sock, _))) = tokio::time::timeout_at(deadline, listener.accept()).await {
            let seen = counts.clone();
            tokio::spawn(async move {
                let mut buf = Vec::with_capacity(2048);
                let mut chunk = [0u8; 2048];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tokio::time::timeout_at(deadline, sock.read(&mut chunk)).await {
                        Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                        _ => return,
                    }
                }
                let head = String::from_utf8_lossy(&buf).into_owned();
                let Some(key) = head
                    .lines()
                    .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("sec-websocket-key")))
                    .map(|(_, v)| v.trim().to_string())
                else {
                    return;
                };
                let resp = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                    ws_accept(&key)
                );
                if sock.write_all(resp.as_bytes()).await.is_err() {
                    return;
                }
                seen.upgraded.fetch_add(1, Ordering::SeqCst);
                let mut spoke = false;
                while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, sock.read(&mut chunk)).await {
                    if n == 0 {
                        return;
                    }
                    if !spoke {
                        spoke = true;
                        seen.spoke.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    (format!("ws://{addr}/ws/chat"), seen)
}

/// Runs part G with `n` clients; returns KiB per idle client, if measured.
pub async fn idle_clients(n: u64, rss_kib: impl Fn() -> Option<u64>) -> Option<f64> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(&dir.path().join("gateway.redb"), 16 << 20).expect("open store"));
    let (url, seen) = silent_ws(Duration::from_secs(120)).await;
    let options = WaOptions {
        connect_timeout: Duration::from_secs(90),
        ws_url: Some(url),
        version: Some((2, 3000, 1_000_000_000)),
        ..WaOptions::default()
    };
    let engine = Arc::new(WhatsappEngine::new(store, options));
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let rss0 = rss_kib()?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (engine, tx) = (engine.clone(), tx.clone());
        tasks.push(tokio::spawn(async move {
            let session = Ulid::generate();
            let info = StartInfo { session, linked_jid: None, linked_lid: None };
            engine.start(info, EventSink::new(session, 1, tx)).await
        }));
    }
    while seen.spoke.load(Ordering::SeqCst) < n && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all = seen.spoke.load(Ordering::SeqCst);
    let ready = started.elapsed();
    if all < n {
        // Say why: the first start that ended.
        println!("only {all} of {n} clients reached the handshake ({} upgraded)", seen.upgraded.load(Ordering::SeqCst));
        if let Some(t) = tasks.iter_mut().find(|t| t.is_finished()) {
            if let Ok(Err(e)) = t.await {
                println!("a start ended: {e}");
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss1 = rss_kib()?;
    let per = rss1.saturating_sub(rss0) as f64 / n as f64;
    println!(
        "{all}/{n} clients upgraded and waiting in the noise handshake after {:.0} ms; VmRSS {:.1} -> {:.1} MiB = {per:.1} KiB per idle client",
        ready.as_secs_f64() * 1000.0,
        rss0 as f64 / 1024.0,
        rss1 as f64 / 1024.0,
    );
    for t in &tasks {
        t.abort();
    }
    // Cancelled starts close their clients in the background; give them a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    (all == n).then_some(per)
}
