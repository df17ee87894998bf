//! Part M of the bench: the send queue and the event log (CONTRACT §9, §10),
//! on the gateway started in-process with the sim engine and the embedded
//! issuer (tokens minted with `app.issuer`), each on a fresh data dir.
//!
//! - M1: durable 202s per second of `POST /api/v1/sessions/{id}/messages`
//!   (text) with 1 and 16 keep-alive clients, spread over 100 stopped
//!   sessions (the queue only stores), and p50/p99 latency. Target with 16
//!   clients: >= 5,000/s, p99 < 20 ms.
//! - M2: end to end through the sim: 1,000 working sessions at 100,000/min,
//!   no typing; 20 messages each queued by the batch route (16 clients);
//!   messages/s from the first 202 to the last durable `sent` (every queue
//!   empty, read from the data file in-process) and to the last message on
//!   the simulated network (the sim outbox `at`). Target >= 10,000/s.
//! - M3: pacing: 100 working sessions at 60/min, no typing, 10 messages
//!   each in one batch; each send's lateness against its earliest allowed
//!   time (the 202 for the first, the previous send + 500 ms after), from
//!   the sim outbox `at` times. Target p99 < 50 ms.
//! - M4: 1,000,000 messages queued by the batch route (1,000 a request)
//!   over 1,000 stopped sessions: this process's VmRSS/VmHWM before, after
//!   queuing, after the gateway is dropped, after a restart on the file;
//!   then (if `target/release/wa-gateway` exists) the real process on the
//!   same file. Target < 100 MiB (the queue lives on disk).
//! - M5: the event log of that file (each queued message made a
//!   `message.status` event): a walk of `GET /api/v1/events?limit=200`,
//!   then mean latency of the first page vs the last page at limit=50.
//!   Target ratio <= 1.5.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use ulid::Ulid;
use wa_gateway::app::Gateway;
use wa_gateway::config::ServeConfig;
use wa_gateway::engine::EngineKind;
use wa_gateway::store::now_ms;

use super::{gateway_binary, owner, rss_mib, trim, latency, proc_status_kib, start, wait_ready, wait_working, Conn, Stats, Summary};

const TO: &str = "6281234567890";
/// M4: sessions and messages per session (1,000 x 1,000 = 1M).
const M4_SESSIONS: usize = 1_000;
const M4_PER_SESSION: usize = 1_000;
/// M4 stops queuing after this long and extrapolates (clearly labelled).
const M4_BUDGET: Duration = Duration::from_secs(180);

fn config(dir: &Path) -> ServeConfig {
    let mut c = ServeConfig::new(dir);
    c.engine = EngineKind::Sim;
    c.rate_limit = None;
    c.auth_failure_limit = None;
    c.messaging.max_queued = 10_000_000;
    c
}

/// CPU seconds (user + system) used so far by this process, and by its
/// threads named `thread` (e.g. the group committer, `wa-committer`).
fn cpu_secs(thread: &str) -> (f64, f64) {
    // SAFETY: sysconf only reads a configuration value.
    let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let ticks = |stat: &str| -> f64 {
        // Fields after the `(comm)`: state is 3rd, utime 14th, stime 15th.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let n = |i: usize| f.get(i - 3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        n(14) + n(15)
    };
    let all = std::fs::read_to_string("/proc/self/stat").map_or(0.0, |s| ticks(&s));
    let mut named = 0.0;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for t in tasks.filter_map(Result::ok) {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if comm.trim_end() == thread {
                named += std::fs::read_to_string(t.path().join("stat")).map_or(0.0, |s| ticks(&s));
            }
        }
    }
    (all / tck, named / tck)
}

/// Bytes this process has handed to `write`/`pwrite` so far (the data
/// file's page writes, mostly): with the commit count, KiB per commit.
fn written_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("wchar:").and_then(|v| v.trim().parse().ok())))
        .unwrap_or(0)
}

/// "x.xx cores, committer y%" over `secs` of wall time since `before`.
fn cpu_since(before: (f64, f64), secs: f64) -> String {
    let now = cpu_secs("wa-committer");
    format!(
        "CPU {:.2} of 2 cores (bench clients + gateway), committer thread {:.0}% of one core",
        (now.0 - before.0) / secs,
        100.0 * (now.1 - before.1) / secs
    )
}

/// p50/p99 ms of a 4 KiB append + `fdatasync` in `dir`: what one durable
/// commit costs this disk at least.
fn fsync_probe(dir: &Path, n: usize) -> (f64, f64) {
    use std::io::Write;
    let path = dir.join("fsync-probe");
    let mut f = std::fs::File::create(&path).expect("probe file");
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        f.write_all(&[7u8; 4096]).expect("probe write");
        let t = Instant::now();
        f.sync_data().expect("fdatasync");
        v.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let _ = std::fs::remove_file(&path);
    v.sort_by(f64::total_cmp);
    (q(&v, 0.5), q(&v, 0.99))
}

fn id_of(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body).expect("json")["id"].as_str().expect("id").to_string()
}

/// Creates `n` sessions with `body` over 16 connections; returns their ids in order.
async fn create_sessions(addr: SocketAddr, token: &str, n: usize, body: Value) -> Vec<String> {
    let ids = Arc::new(Mutex::new(vec![String::new(); n]));
    let body = Bytes::from(body.to_string());
    let mut tasks = Vec::new();
    for k in 0..16.min(n) {
        let (ids, body, token) = (ids.clone(), body.clone(), token.to_string());
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open(addr).await.expect("connect");
            for i in (k..n).step_by(16) {
                let (st, b) = c.send(Method::POST, "/api/v1/sessions", Some(&token), Some(body.clone())).await.expect("create");
                assert_eq!(st, StatusCode::CREATED, "create: {}", String::from_utf8_lossy(&b));
                ids.lock().expect("ids")[i] = id_of(&b);
            }
        }));
    }
    for t in tasks {
        t.await.expect("create task");
    }
    let ids = ids.lock().expect("ids").clone();
    ids
}

/// `n` sessions created with `settings`, started, paired and `working`.
async fn working_sessions(addr: SocketAddr, token: &str, n: usize, settings: Value) -> Vec<String> {
    let started = Instant::now();
    let mut body = json!({"label": "m", "start": true});
    for (k, v) in settings.as_object().cloned().unwrap_or_default() {
        body[k] = v;
    }
    let ids = create_sessions(addr, token, n, body).await;
    let ids = Arc::new(ids);
    let mut tasks = Vec::new();
    for k in 0..16.min(n) {
        let (ids, token) = (ids.clone(), token.to_string());
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open(addr).await.expect("connect");
            for i in (k..ids.len()).step_by(16) {
                let pair = Bytes::from(json!({"phoneNumber": format!("62811{i:06}")}).to_string());
                let path = format!("/api/v1/sessions/{}/sim/pair", ids[i]);
                let t = Instant::now();
                loop {
                    let (st, b) = c.send(Method::POST, &path, Some(&token), Some(pair.clone())).await.expect("pair");
                    if st == StatusCode::OK {
                        break;
                    }
                    assert!(t.elapsed() < Duration::from_secs(30), "pair {}: {st} {}", ids[i], String::from_utf8_lossy(&b));
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("pair task");
    }
    let mut c = Conn::open(addr).await.expect("connect");
    let all = wait_working(&mut c, n as u64, Duration::from_secs(120)).await;
    assert!(all.is_some(), "not all {n} sessions reached working");
    println!("  {n} sessions created, started, paired and working in {:.1} s", started.elapsed().as_secs_f64());
    Arc::try_unwrap(ids).unwrap_or_else(|a| (*a).clone())
}

/// Sessions with anything left in their send queue, read from the data file.
fn queued_sessions(gw: &Gateway) -> usize {
    let txn = gw.app.store.read().expect("read txn");
    wa_gateway::store::messages::sessions_with_queue(&txn).expect("queue counts").len()
}

fn batch_body(n: usize, tag: &str) -> Bytes {
    let items: Vec<Value> = (0..n).map(|i| json!({"to": TO, "text": format!("{tag} {i}")})).collect();
    Bytes::from(json!({"messages": items}).to_string())
}

/// p-th quantile of a sorted slice.
fn q(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

// ---------------------------------------------------------------------------
// M1: durable 202s.

struct Spread {
    ok: u64,
    errors: u64,
    secs: f64,
    /// Latency in ms of each 202 counted.
    lat: Stats,
}

/// `conns` connections post `body` round-robin over `paths` for `dur`.
async fn spread(addr: SocketAddr, paths: Arc<Vec<String>>, token: &str, body: Bytes, conns: usize, dur: Duration) -> Spread {
    let barrier = Arc::new(tokio::sync::Barrier::new(conns + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for k in 0..conns {
        let (barrier, stop, errors, paths, body, token) =
            (barrier.clone(), stop.clone(), errors.clone(), paths.clone(), body.clone(), token.to_string());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await.expect("connect to gateway");
            let mut lat = Vec::with_capacity(1 << 16);
            let mut i = k;
            barrier.wait().await;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let r = conn.send(Method::POST, &paths[i % paths.len()], Some(&token), Some(body.clone())).await;
                let ms = t.elapsed().as_secs_f64() * 1e3;
                i += conns;
                if stop.load(Ordering::Relaxed) {
                    break; // finished after the clock stopped: not counted
                }
                match r {
                    Ok((StatusCode::ACCEPTED, _)) => lat.push(ms),
                    Ok((st, b)) => {
                        if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                            println!("  first error: {st} {}", String::from_utf8_lossy(&b[..b.len().min(300)]));
                        }
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        conn = Conn::open(addr).await.expect("reconnect");
                    }
                }
            }
            lat
        }));
    }
    barrier.wait().await;
    let started = Instant::now();
    tokio::time::sleep(dur).await;
    stop.store(true, Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("load task"));
    }
    Spread { ok: all.len() as u64, errors: errors.load(Ordering::Relaxed), secs, lat: Stats::of(all) }
}

async fn m1(secs: f64, summary: &mut Summary) {
    println!("\n-- M1. POST /api/v1/sessions/{{id}}/messages (durable 202), 100 stopped sessions --");
    let dir = tempfile::tempdir().expect("tempdir");
    let probe = dir.path().to_path_buf();
    let (f50, f99) = tokio::task::spawn_blocking(move || fsync_probe(&probe, 300)).await.expect("probe");
    println!("  this disk: 4 KiB write + fdatasync p50 {f50:.2} ms, p99 {f99:.2} ms (300 in the data dir's filesystem)");
    summary.add("M1 disk fdatasync p50 / p99", format!("{f50:.2} / {f99:.2} ms"), "");
    let gw = start(config(dir.path()), None).await;
    let token = owner(&gw, "org_m1");
    let ids = create_sessions(gw.addr(), &token, 100, json!({"label": "m1", "start": false})).await;
    let paths: Arc<Vec<String>> = Arc::new(ids.iter().map(|id| format!("/api/v1/sessions/{id}/messages")).collect());
    let body = Bytes::from(json!({"to": TO, "text": "hello from the bench"}).to_string());
    let dur = Duration::from_secs_f64(secs);
    for clients in [1usize, 16] {
        let (cpu0, v0, w0) = (cpu_secs("wa-committer"), gw.app.store.version(), written_bytes());
        let r = spread(gw.addr(), paths.clone(), &token, body.clone(), clients, dur).await;
        let cpu = cpu_since(cpu0, r.secs);
        let commits = gw.app.store.version() - v0;
        let rps = r.ok as f64 / r.secs;
        let target = if clients == 16 { "  (target >= 5,000/s, p99 < 20 ms)" } else { "" };
        println!(
            "  {clients:>2} client(s): {rps:>8.0} 202/s  p50 {:.2} ms  p99 {:.2} ms  mean {:.2} ms  ({} queued, {} errors, {:.2} s){target}",
            r.lat.p50, r.lat.p99, r.lat.mean, r.ok, r.errors, r.secs
        );
        println!(
            "              {commits} durable commits ({:.0}/s, {:.1} 202s a commit, {:.2} ms a commit, {:.0} KiB written a commit); {cpu}",
            commits as f64 / r.secs,
            r.ok as f64 / commits.max(1) as f64,
            r.secs * 1e3 / commits.max(1) as f64,
            (written_bytes() - w0) as f64 / 1024.0 / commits.max(1) as f64
        );
        let t = if clients == 16 { ">= 5000/s" } else { "" };
        summary.add(format!("M1 durable 202/s, {clients} client(s)"), format!("{rps:.0}/s"), t);
        let t = if clients == 16 { "p99 < 20 ms" } else { "" };
        summary.add(format!("M1 202 p50 / p99, {clients} client(s)"), format!("{:.2} / {:.2} ms", r.lat.p50, r.lat.p99), t);
    }
    gw.shutdown().await.expect("shutdown");
}

// ---------------------------------------------------------------------------
// M2: end to end through the sim.

async fn m2(summary: &mut Summary) {
    const N: usize = 1_000;
    const PER: usize = 20;
    println!("\n-- M2. {N} working sim sessions at 100,000/min, {PER} messages each by the batch route --");
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = start(config(dir.path()), None).await;
    let addr = gw.addr();
    let token = owner(&gw, "org_m2");
    let settings = json!({"ratePerMin": 100_000, "ratePerHour": 100_000, "presenceTyping": false});
    let ids = Arc::new(working_sessions(addr, &token, N, settings).await);
    let body = batch_body(PER, "e2e");
    // (first 202: Instant, wall ms), last 202.
    let first: Arc<Mutex<Option<(Instant, i64)>>> = Arc::new(Mutex::new(None));
    let (cpu0, v0, w0) = (cpu_secs("wa-committer"), gw.app.store.version(), written_bytes());
    let queued_from = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..16 {
        let (ids, body, token, first) = (ids.clone(), body.clone(), token.clone(), first.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open(addr).await.expect("connect");
            for i in (k..ids.len()).step_by(16) {
                let path = format!("/api/v1/sessions/{}/messages/batch", ids[i]);
                let (st, b) = c.send(Method::POST, &path, Some(&token), Some(body.clone())).await.expect("batch");
                let (at, wall) = (Instant::now(), now_ms());
                assert_eq!(st, StatusCode::ACCEPTED, "batch: {}", String::from_utf8_lossy(&b[..b.len().min(300)]));
                let mut f = first.lock().expect("first");
                if f.is_none_or(|(t, _)| at < t) {
                    *f = Some((at, wall));
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("batch task");
    }
    let all_queued = queued_from.elapsed();
    let (first_at, first_wall) = first.lock().expect("first").expect("a 202");
    // Done when every queue is empty: each message left `sending` durably.
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut drained = None;
    while Instant::now() < deadline {
        if queued_sessions(&gw) == 0 {
            drained = Some(first_at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let sim = gw.app.sim.as_ref().expect("sim engine");
    let (mut carried, mut last_at) = (0usize, i64::MIN);
    for id in ids.iter() {
        for r in sim.outbox(Ulid::from_string(id).expect("ulid")).iter().filter(|r| r["kind"] == "message") {
            carried += 1;
            last_at = last_at.max(r["at"].as_i64().unwrap_or(0));
        }
    }
    let total = N * PER;
    let net_secs = (last_at - first_wall) as f64 / 1e3;
    println!(
        "  {total} messages queued by {N} batch requests in {:.2} s; {carried} reached the sim network",
        all_queued.as_secs_f64()
    );
    match drained {
        Some(d) => {
            let rate = total as f64 / d.as_secs_f64();
            println!(
                "  first 202 -> last durable `sent` (all queues empty): {:.2} s = {rate:.0} messages/s  (target >= 10,000/s)",
                d.as_secs_f64()
            );
            println!(
                "  first 202 -> last message on the sim network (outbox `at`): {net_secs:.2} s = {:.0} messages/s",
                carried as f64 / net_secs.max(1e-3)
            );
            let (secs, commits) = (queued_from.elapsed().as_secs_f64(), gw.app.store.version() - v0);
            println!(
                "  {commits} durable commits ({:.0}/s, {:.2} ms a commit, {:.0} KiB written a commit; a message takes 2 writes: queued, then `sent` with the next one's `sending`); {}",
                commits as f64 / secs,
                secs * 1e3 / commits.max(1) as f64,
                (written_bytes() - w0) as f64 / 1024.0 / commits.max(1) as f64,
                cpu_since(cpu0, secs)
            );
            summary.add("M2 sim end to end, 1,000 sessions", format!("{rate:.0} msg/s"), ">= 10000/s");
        }
        None => {
            println!("  queues not empty after 300 s ({carried} of {total} on the sim network)");
            summary.add("M2 sim end to end, 1,000 sessions", "timeout", ">= 10000/s");
        }
    }
    gw.shutdown().await.expect("shutdown");
}

// ---------------------------------------------------------------------------
// M3: pacing accuracy.

async fn m3(summary: &mut Summary) {
    const N: usize = 100;
    const PER: usize = 10;
    const GAP: i64 = 500; // ratePerMin 60: half of 60000/60 ms
    println!("\n-- M3. Pacing: {N} working sessions at 60/min, {PER} messages each in one batch --");
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = start(config(dir.path()), None).await;
    let addr = gw.addr();
    let token = owner(&gw, "org_m3");
    let settings = json!({"ratePerMin": 60, "presenceTyping": false});
    let ids = Arc::new(working_sessions(addr, &token, N, settings).await);
    let body = batch_body(PER, "paced");
    let t202 = Arc::new(Mutex::new(vec![0i64; N]));
    let mut tasks = Vec::new();
    for k in 0..16 {
        let (ids, body, token, t202) = (ids.clone(), body.clone(), token.clone(), t202.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open(addr).await.expect("connect");
            for i in (k..N).step_by(16) {
                let path = format!("/api/v1/sessions/{}/messages/batch", ids[i]);
                let (st, b) = c.send(Method::POST, &path, Some(&token), Some(body.clone())).await.expect("batch");
                let wall = now_ms();
                assert_eq!(st, StatusCode::ACCEPTED, "batch: {}", String::from_utf8_lossy(&b[..b.len().min(300)]));
                t202.lock().expect("t202")[i] = wall;
            }
        }));
    }
    for t in tasks {
        t.await.expect("batch task");
    }
    let sim = gw.app.sim.as_ref().expect("sim engine");
    let ulids: Vec<Ulid> = ids.iter().map(|i| Ulid::from_string(i).expect("ulid")).collect();
    let sent_at = |u: Ulid| -> Vec<i64> {
        sim.outbox(u).iter().filter(|r| r["kind"] == "message").map(|r| r["at"].as_i64().unwrap_or(0)).collect()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = ulids.iter().map(|u| sent_at(*u).len()).sum::<usize>();
        if done >= N * PER {
            break;
        }
        if Instant::now() > deadline {
            println!("  only {done} of {} sent within 60 s", N * PER);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let t202 = t202.lock().expect("t202").clone();
    let (mut all, mut firsts, mut paced, mut min_gap) = (Vec::new(), Vec::new(), Vec::new(), i64::MAX);
    for (s, u) in ulids.iter().enumerate() {
        let at = sent_at(*u);
        for (i, &a) in at.iter().enumerate() {
            let earliest = if i == 0 { t202[s] } else { t202[s].max(at[i - 1] + GAP) };
            let late = (a - earliest) as f64;
            all.push(late);
            if i == 0 {
                firsts.push(late);
            } else {
                paced.push(late);
                min_gap = min_gap.min(a - at[i - 1]);
            }
        }
    }
    for v in [&mut all, &mut firsts, &mut paced] {
        v.sort_by(f64::total_cmp);
    }
    let max = all.last().copied().unwrap_or(f64::NAN);
    println!(
        "  lateness of {} sends: p50 {:.0} ms  p99 {:.0} ms  max {max:.0} ms  min {:.0} ms  (target p99 < 50 ms)",
        all.len(),
        q(&all, 0.5),
        q(&all, 0.99),
        all.first().copied().unwrap_or(f64::NAN)
    );
    println!(
        "    first send after its 202: p50 {:.0} ms p99 {:.0} ms; later sends after previous + 500 ms: p50 {:.0} ms p99 {:.0} ms; smallest gap seen {min_gap} ms",
        q(&firsts, 0.5),
        q(&firsts, 0.99),
        q(&paced, 0.5),
        q(&paced, 0.99)
    );
    summary.add("M3 pacing lateness p50 / p99 / max", format!("{:.0} / {:.0} / {max:.0} ms", q(&all, 0.5), q(&all, 0.99)), "p99 < 50 ms");
    gw.shutdown().await.expect("shutdown");
}

// ---------------------------------------------------------------------------
// M4 + M5: a million queued messages, and the event log they made.

/// Walks `GET /api/v1/events?limit=200`; returns (pages, events, secs,
/// the cursor of a page near the end that has >= 50 events after it).
async fn walk_events(c: &mut Conn, token: &str) -> (u64, u64, f64, Option<String>) {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Head {
        data: Vec<serde::de::IgnoredAny>,
        next_cursor: Option<String>,
    }
    let started = Instant::now();
    let (mut pages, mut items) = (0u64, 0u64);
    let (mut prev, mut cur): (Option<String>, Option<String>) = (None, None);
    loop {
        let path = match &cur {
            Some(c) => format!("/api/v1/events?limit=200&cursor={c}"),
            None => "/api/v1/events?limit=200".to_string(),
        };
        let (st, body) = c.get(&path, Some(token)).await;
        assert_eq!(st, StatusCode::OK, "events page {pages}: {}", String::from_utf8_lossy(&body[..body.len().min(300)]));
        let page: Head = serde_json::from_slice(&body).expect("events JSON");
        pages += 1;
        items += page.data.len() as u64;
        match page.next_cursor {
            Some(n) => {
                prev = cur;
                cur = Some(n);
            }
            None => {
                // The last page from `cur`, or the one before if it is short.
                let last = if page.data.len() >= 50 { cur } else { prev.or(cur) };
                return (pages, items, started.elapsed().as_secs_f64(), last);
            }
        }
    }
}

/// M5 on a running gateway: walk, then first page vs last page.
async fn m5(addr: SocketAddr, token: &str, samples: usize, summary: &mut Summary) {
    println!("\n-- M5. Event log: GET /api/v1/events, first page vs last page --");
    let mut c = Conn::open(addr).await.expect("connect");
    let (pages, items, secs, last) = walk_events(&mut c, token).await;
    println!(
        "  walk, limit=200: {pages} pages, {items} events in {secs:.1} s ({:.0} pages/s, {:.2} ms/page)",
        pages as f64 / secs,
        secs * 1e3 / pages as f64
    );
    summary.add("M5 events walked (limit=200)", format!("{items} in {secs:.1} s"), ">= 1000000");
    let first_path = "/api/v1/events?limit=50".to_string();
    let last_path = match &last {
        Some(cur) => format!("/api/v1/events?limit=50&cursor={cur}"),
        None => first_path.clone(),
    };
    // Warm both once, then measure.
    c.get(&first_path, Some(token)).await;
    c.get(&last_path, Some(token)).await;
    let n = samples.max(1);
    let first = latency(&mut c, &first_path, token, n).await;
    let lastp = latency(&mut c, &last_path, token, n).await;
    let r = lastp.mean / first.mean;
    println!("  first page (limit=50): mean {:.1} µs  p50 {:.1} µs  p99 {:.1} µs  ({n} requests)", first.mean, first.p50, first.p99);
    println!("  last page  (limit=50): mean {:.1} µs  p50 {:.1} µs  p99 {:.1} µs  ({n} requests)", lastp.mean, lastp.p50, lastp.p99);
    println!("  ratio last/first (mean): {r:.3}  (target <= 1.5)");
    summary.add("M5 events first / last page mean", format!("{:.1} / {:.1} µs", first.mean, lastp.mean), "");
    summary.add("M5 events ratio last/first", format!("{r:.3}"), "<= 1.5");
}

async fn m4_m5(samples: usize, summary: &mut Summary) {
    let total = M4_SESSIONS * M4_PER_SESSION;
    println!("\n-- M4. {total} messages queued over {M4_SESSIONS} stopped sessions (batch route, 1,000 a request) --");
    trim();
    let (rss0, hwm0) = rss_mib();
    println!("  this process before: VmRSS {rss0:.1} MiB (VmHWM so far {hwm0:.1} MiB: the peak of every earlier part)");
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = start(config(dir.path()), None).await;
    let addr = gw.addr();
    let token = owner(&gw, "org_m4");
    let ids = Arc::new(create_sessions(addr, &token, M4_SESSIONS, json!({"label": "m4", "start": false})).await);
    let body = batch_body(M4_PER_SESSION, "queued");
    let queued = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    const CLIENTS: usize = 4;
    for k in 0..CLIENTS {
        let (ids, body, token, queued) = (ids.clone(), body.clone(), token.clone(), queued.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open(addr).await.expect("connect");
            for i in (k..ids.len()).step_by(CLIENTS) {
                if started.elapsed() > M4_BUDGET {
                    return;
                }
                let path = format!("/api/v1/sessions/{}/messages/batch", ids[i]);
                let (st, b) = c.send(Method::POST, &path, Some(&token), Some(body.clone())).await.expect("batch");
                assert_eq!(st, StatusCode::ACCEPTED, "batch: {}", String::from_utf8_lossy(&b[..b.len().min(300)]));
                queued.fetch_add(M4_PER_SESSION as u64, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.expect("batch task");
    }
    let secs = started.elapsed().as_secs_f64();
    let n = queued.load(Ordering::Relaxed);
    let file = std::fs::read_dir(dir.path())
        .map(|d| d.filter_map(Result::ok).filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum::<u64>())
        .unwrap_or(0);
    println!(
        "  {n} messages queued in {secs:.1} s ({:.0} messages/s, {CLIENTS} clients); data dir {:.0} MiB",
        n as f64 / secs,
        file as f64 / 1048576.0
    );
    if (n as usize) < total {
        println!(
            "  NOTE: stopped at the {} s budget; {n} of {total} queued. At this rate 1M would take ~{:.0} s.",
            M4_BUDGET.as_secs(),
            total as f64 / (n as f64 / secs)
        );
    }
    summary.add("M4 messages queued (batch route)", format!("{n} in {secs:.1} s"), "1000000");
    let (rss1, hwm1) = rss_mib();
    trim();
    let (rss1t, _) = rss_mib();
    println!(
        "  this process after queuing: VmRSS {rss1:.1} MiB (+{:.1} over before), {rss1t:.1} MiB after malloc_trim; VmHWM {hwm1:.1} MiB",
        rss1 - rss0
    );
    gw.shutdown().await.expect("shutdown");
    trim();
    let (rss2, _) = rss_mib();
    println!("  gateway dropped (redb cache, workers, connections freed) + malloc_trim: VmRSS {rss2:.1} MiB");
    // Restart on the file: what a gateway holding 1M queued messages costs.
    let gw = start(config(dir.path()), None).await;
    tokio::time::sleep(Duration::from_secs(1)).await; // the queue workers of the 1,000 sessions start
    let (rss3, _) = rss_mib();
    println!(
        "  in-process gateway restarted on the 1M-message file: VmRSS {rss3:.1} MiB (+{:.1} over the dropped state)",
        rss3 - rss2
    );
    summary.add("M4 in-process VmRSS before / queued / restarted", format!("{rss0:.0} / {rss1:.0} / {rss3:.0} MiB"), "< 100 MiB");

    // M5 on the restarted gateway (its summary rows go after M4's).
    let mut m5_rows = Summary::default();
    m5(gw.addr(), &token, samples, &mut m5_rows).await;
    let (rss4, hwm4) = rss_mib();
    println!("  this process after M5: VmRSS {rss4:.1} MiB, VmHWM {hwm4:.1} MiB (process peak since start)");
    gw.shutdown().await.expect("shutdown");

    // The real process on the same file, if built.
    match gateway_binary() {
        None => println!("\n  target/release/wa-gateway not found: `cargo build --release` for the standalone process RSS"),
        Some(bin) => {
            let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
            let t = Instant::now();
            let mut child = std::process::Command::new(&bin)
                .args(["serve", "--rate-limit", "0", "--engine", "sim", "--data"])
                .arg(dir.path())
                .args(["--listen", &addr.to_string()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("spawn wa-gateway serve");
            let pid = child.id();
            match wait_ready(addr, Duration::from_secs(60)).await {
                None => println!("  wa-gateway serve did not become ready within 60 s"),
                Some(_) => {
                    let ready_ms = t.elapsed().as_secs_f64() * 1e3;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let kib = |f| proc_status_kib(pid, f).unwrap_or(0) as f64 / 1024.0;
                    let idle = kib("VmRSS:");
                    let mut c = Conn::open(addr).await.expect("connect");
                    // The same token: the embedded issuer's key is in the data dir.
                    let (pages, items, wsecs, _) = walk_events(&mut c, &token).await;
                    let (rss, hwm) = (kib("VmRSS:"), kib("VmHWM:"));
                    println!(
                        "\n  wa-gateway serve (its own process) on the 1M-message file: /readyz in {ready_ms:.0} ms, VmRSS {idle:.1} MiB 1 s after; after a walk of {items} events ({pages} pages, {wsecs:.1} s) VmRSS {rss:.1} MiB, VmHWM {hwm:.1} MiB  (target < 100 MiB)"
                    );
                    summary.add("M4 wa-gateway process VmRSS idle / after walk", format!("{idle:.1} / {rss:.1} MiB"), "< 100 MiB");
                    summary.add("M4 wa-gateway process VmHWM", format!("{hwm:.1} MiB"), "< 100 MiB");
                }
            }
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
            let _ = tokio::task::spawn_blocking(move || child.wait()).await;
        }
    }
    summary.rows.extend(m5_rows.rows);
}

pub async fn run(secs: f64, page_samples: usize, summary: &mut Summary) {
    println!("\n--- M. Messaging: send queue and event log (sim engine, in-process) ---");
    // `BENCH_M=12` runs only M1 and M2 (for profiling one part).
    let only = std::env::var("BENCH_M").unwrap_or_else(|_| "12345".into());
    if only.contains('1') {
        m1(secs, summary).await;
    }
    if only.contains('2') {
        m2(summary).await;
    }
    if only.contains('3') {
        m3(summary).await;
    }
    if only.contains('4') || only.contains('5') {
        m4_m5(page_samples, summary).await;
    }
}
