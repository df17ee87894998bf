//! Part U of the bench: the web console's memory under a live event tail.
//!
//! The gateway runs in-process (sim engine, embedded issuer); a headless
//! chromium (Debian's `chromium` + `chromedriver`, driven over WebDriver by
//! `tests/support/webdriver.rs`) opens `/console`, signed in as an owner,
//! on the Events screen. One working sim session then receives 100 inbound
//! messages per second (each one `message.received` event on the stream)
//! for `BENCH_CONSOLE_SECS` seconds (default 600). Every 10 s, after a
//! forced GC (`--js-flags=--expose-gc`), it samples the page's JS heap
//! (`performance.memory.usedJSHeapSize`, precise with
//! `--enable-precise-memory-info`) and the resident memory of chromium's
//! renderer processes (descendants of chromedriver with `--type=renderer`).
//! Target: < 100 MB, and no growth after the first minute.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use wa_gateway::config::ServeConfig;
use wa_gateway::engine::EngineKind;
use wa_gateway::store::now_ms;

use super::webdriver::Browser;
use super::{start, Conn, Summary};

/// Inbound messages (so events) per second.
const RATE: u64 = 100;

/// A `Pss:` line of `/proc/{pid}/smaps_rollup` (KiB): resident memory with
/// shared pages split among their sharers.
fn pss_kib(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    text.lines().find(|l| l.starts_with("Pss:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// The renderer processes under `root`: how many, and the largest one's
/// (the console page's) RSS and PSS in KiB.
fn renderer_rss_kib(root: u32) -> (usize, u64, u64) {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
            // pid (comm) state ppid ...: comm may hold spaces; split after the last ')'.
            let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)).and_then(|p| p.parse().ok());
            if let Some(ppid) = ppid {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let (mut count, mut rss, mut pss) = (0, 0, 0);
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        if let Some(kids) = children.get(&pid) {
            stack.extend(kids);
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains("--type=renderer") {
            count += 1;
            let r = super::proc_status_kib(pid, "VmRSS:").unwrap_or(0);
            if r > rss {
                rss = r;
                pss = pss_kib(pid);
            }
        }
    }
    (count, rss, pss)
}

/// One sample: seconds into the tail, JS heap used (bytes), the page
/// renderer's RSS and PSS (KiB), how many renderers run, what the page saw.
struct Sample {
    at: f64,
    heap: f64,
    rss_kib: u64,
    pss_kib: u64,
    renderers: usize,
    rows: u64,
    seen: String,
}

pub async fn run(summary: &mut Summary) {
    let secs: u64 = std::env::var("BENCH_CONSOLE_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(600);
    println!("\n--- U. Console memory: live event tail at {RATE} events/s for {secs} s (BENCH_CONSOLE_SECS) ---");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = ServeConfig::new(dir.path());
    c.engine = EngineKind::Sim;
    c.rate_limit = None;
    c.auth_failure_limit = None;
    let gw = start(c, None).await;
    let addr = gw.addr();
    let now = now_ms() / 1000;
    let claims = json!({"sub": "bench", "iss": "wa-gateway", "iat": now, "exp": now + secs as i64 + 3600,
                        "org_id": "bench", "org_role": "owner"});
    let token = gw.app.issuer.as_ref().expect("embedded issuer").mint(&claims);

    // A working sim session.
    let mut conn = Conn::open(addr).await.expect("connect");
    let (status, body) = conn
        .send(Method::POST, "/api/v1/sessions", Some(&token), Some(json!({"label": "bench", "start": true}).to_string().into()))
        .await
        .expect("create");
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    let sid = serde_json::from_slice::<Value>(&body).expect("json")["id"].as_str().expect("id").to_string();
    let pair = format!("/api/v1/sessions/{sid}/sim/pair");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, _) = conn
            .send(Method::POST, &pair, Some(&token), Some(json!({"phoneNumber": "6281100000001"}).to_string().into()))
            .await
            .expect("pair");
        if s == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "the sim session never showed a QR");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A missing browser panics in its own task: reported, not fatal to the bench.
    let browser = match tokio::spawn(Browser::start_with(&["--js-flags=--expose-gc"])).await {
        Ok(b) => b,
        Err(_) => {
            summary.add("U console JS heap after the tail", "no chromium/chromedriver", "< 100 MB");
            return;
        }
    };
    // Baseline: the same renderer on a page of the same origin with no script.
    browser.goto(&format!("http://{addr}/healthz")).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, base_rss, base_pss) = renderer_rss_kib(browser.driver_pid());
    println!("  baseline (GET /healthz, no script): page renderer RSS {:.1} MB, PSS {:.1} MB", base_rss as f64 / 1024.0, base_pss as f64 / 1024.0);
    browser.goto(&format!("http://{addr}/console#token={token}")).await;
    browser.wait("window.__wag && window.__wag.sessionsShownAt !== null", Duration::from_secs(10), "the console").await;
    browser.goto(&format!("http://{addr}/console#/events")).await;
    browser.wait("document.getElementById('live') && document.getElementById('live').textContent.includes('live') && document.getElementById('tail-rows')", Duration::from_secs(10), "the live tail").await;

    // The load: RATE inbound messages per second, paced by a ticker.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let load = {
        let (stop, sent, failed, token) = (stop.clone(), sent.clone(), failed.clone(), token.clone());
        let path = format!("/api/v1/sessions/{sid}/sim/incoming");
        tokio::spawn(async move {
            let mut c = Conn::open(addr).await.expect("connect");
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                n += 1;
                let body = json!({"from": "6281200000002", "text": format!("bench message {n}: hello from the tail")});
                match c.send(Method::POST, &path, Some(&token), Some(body.to_string().into())).await {
                    Ok((StatusCode::ACCEPTED, _)) => sent.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        })
    };

    let started = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let probe = "if (window.gc) { window.gc(); } return {heap: performance.memory.usedJSHeapSize, \
                 rows: document.querySelectorAll('#tail-rows tr').length, seen: document.getElementById('tail-count').textContent}";
    let every = Duration::from_secs(10.min(secs.max(1)));
    while started.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(every.min(Duration::from_secs(secs).saturating_sub(started.elapsed()).max(Duration::from_millis(1)))).await;
        let v = browser.js(probe).await;
        let (renderers, rss_kib, pss_kib) = renderer_rss_kib(browser.driver_pid());
        let s = Sample {
            at: started.elapsed().as_secs_f64(),
            heap: v["heap"].as_f64().unwrap_or(0.0),
            rss_kib,
            pss_kib,
            renderers,
            rows: v["rows"].as_u64().unwrap_or(0),
            seen: v["seen"].as_str().unwrap_or("").to_string(),
        };
        println!(
            "  t={:>5.0}s  JS heap {:>6.2} MB  page renderer RSS {:>6.1} MB, PSS {:>6.1} MB ({} renderers)  rows {:>3}  {}  (sent {}, failed {})",
            s.at,
            s.heap / 1e6,
            s.rss_kib as f64 / 1024.0,
            s.pss_kib as f64 / 1024.0,
            s.renderers,
            s.rows,
            s.seen,
            sent.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed)
        );
        samples.push(s);
    }
    stop.store(true, Ordering::Relaxed);
    let _ = load.await;
    let elapsed = started.elapsed().as_secs_f64();
    let total = sent.load(Ordering::Relaxed);
    let rate = total as f64 / elapsed;
    let last = samples.last();
    let after_minute = samples.iter().find(|s| s.at >= 59.0).or(samples.first());
    let max_heap = samples.iter().map(|s| s.heap).fold(0.0, f64::max);
    let max_rss = samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let max_pss = samples.iter().map(|s| s.pss_kib).max().unwrap_or(0);
    if let (Some(last), Some(m1)) = (last, after_minute) {
        println!(
            "{total} events in {elapsed:.0} s ({rate:.1}/s); JS heap {:.2} MB at {:.0} s, {:.2} MB at the end (max {:.2} MB); \
             renderer RSS {:.1} MB at {:.0} s, {:.1} MB at the end (max {:.1} MB)",
            m1.heap / 1e6,
            m1.at,
            last.heap / 1e6,
            max_heap / 1e6,
            m1.rss_kib as f64 / 1024.0,
            m1.at,
            last.rss_kib as f64 / 1024.0,
            max_rss as f64 / 1024.0
        );
        summary.add(format!("U console JS heap, end of {secs} s tail at {rate:.0} ev/s"), format!("{:.2} MB", last.heap / 1e6), "< 100 MB");
        summary.add(
            format!("U console JS heap growth after {:.0} s", m1.at),
            format!("{:+.2} MB", (last.heap - m1.heap) / 1e6),
            "~0",
        );
        summary.add(
            "U console page renderer RSS (max) / baseline page",
            format!("{:.1} / {:.1} MB", max_rss as f64 / 1024.0, base_rss as f64 / 1024.0),
            "",
        );
        summary.add("U console page renderer PSS (max)", format!("{:.1} MB", max_pss as f64 / 1024.0), "");
        summary.add(
            format!("U console page renderer RSS growth after {:.0} s", m1.at),
            format!("{:+.1} MB", (last.rss_kib as f64 - m1.rss_kib as f64) / 1024.0),
            "~0",
        );
    }
    browser.quit().await;
    gw.shutdown().await.expect("shutdown");
}
