//! Part W of the bench: the default `whatsapp` engine at scale, against the
//! fake WhatsApp server of `tests/support/fake_wa` (offline, same process).
//!
//! - W1: N sessions created over the API, each QR read from the API and
//!   scanned by its own fake phone; time until all N are `working`, and this
//!   process's VmRSS growth per working session. The fake's side of each
//!   connection (its websocket, ciphers and a few records) is in that growth
//!   too, so the figure is an upper bound for the gateway. Target < 512 KiB.
//! - W2: CPU per idle working session (keepalives only) over `idle` seconds.
//! - W3: messages per second through the real clients: every session sends
//!   `W3_PER` texts (one batch request each, rates at their maximum, typing
//!   off) to its own contact; from the first 202 until every contact has
//!   decrypted every message. The fake's decryption (the contact's copy and
//!   the account phone's copy of each message) runs in this process too.
//! - W4: the gateway stops and starts on the same data file: time from the
//!   start to all N `working` again (IK resumptions, no QR). Target < 60 s
//!   for 1,000.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use wa_gateway::app::Gateway;
use wa_gateway::config::ServeConfig;

use super::fake_wa::FakeWa;
use super::{proc_status_kib, start, wait_working, Conn, Summary};

/// W3: texts per session.
const W3_PER: usize = 10;

pub(super) fn config(dir: &std::path::Path, fake: &FakeWa) -> ServeConfig {
    let mut c = ServeConfig::new(dir);
    c.engine = wa_gateway::engine::EngineKind::Whatsapp;
    c.whatsapp.ws_url = Some(fake.url.clone());
    c.whatsapp.plain_http_media_hosts = vec![fake.media_host()];
    c.whatsapp.version = Some((2, 3000, 1_000_000_000));
    c.rate_limit = None;
    c.auth_failure_limit = None;
    c
}

pub(super) fn rss_kib() -> f64 {
    proc_status_kib(std::process::id(), "VmRSS:").unwrap_or(0) as f64
}

fn cpu_secs() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i - 3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (n(14) + n(15)) / tck
}

/// Links session `id` with phone `phone`: waits for its QR, reads it, scans it.
pub(super) async fn link_one(c: &mut Conn, fake: &FakeWa, token: &str, id: &str, phone: &str) {
    let path = format!("/api/v1/sessions/{id}/qr");
    let started = Instant::now();
    loop {
        let (st, body) = c.send(Method::GET, &path, Some(token), None).await.expect("qr");
        if st == StatusCode::OK {
            let v: Value = serde_json::from_slice(&body).expect("json");
            let qr = v["value"].as_str().expect("value");
            match fake.scan(phone, qr).await {
                Ok(_) => return,
                // The QR rotated between the read and the scan: read again.
                Err(e) if started.elapsed() < Duration::from_secs(120) => eprintln!("scan {id}: {e}; again"),
                Err(e) => panic!("scan {id}: {e}"),
            }
        }
        assert!(started.elapsed() < Duration::from_secs(120), "no QR for {id}: {st}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn run(n: usize, idle: Duration, summary: &mut Summary) {
    println!("\n--- W. {n} whatsapp sessions against the fake WhatsApp server (real whatsapp-rust clients) ---");
    let fake = Arc::new(FakeWa::start().await);
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = start(config(dir.path(), &fake), None).await;
    let addr = gw.addr();
    let token = super::owner(&gw, "org_w");
    let rss0 = rss_kib();
    let t0 = Instant::now();
    let body = Bytes::from(json!({"label": "w", "start": true}).to_string());
    let workers = 16.min(n);
    let ids = Arc::new(Mutex::new(vec![String::new(); n]));
    let mut tasks = Vec::new();
    for k in 0..workers {
        let (fake, token, body, ids) = (fake.clone(), token.clone(), body.clone(), ids.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open(addr).await.expect("connect");
            for i in (k..n).step_by(workers) {
                let (st, b) = c.send(Method::POST, "/api/v1/sessions", Some(&token), Some(body.clone())).await.expect("create");
                assert_eq!(st, StatusCode::CREATED, "{}", String::from_utf8_lossy(&b));
                let id = serde_json::from_slice::<Value>(&b).expect("json")["id"].as_str().expect("id").to_string();
                link_one(&mut c, &fake, &token, &id, &format!("62812{i:07}")).await;
                ids.lock().expect("ids")[i] = id;
            }
        }));
    }
    for t in tasks {
        t.await.expect("link task");
    }
    let scanned = t0.elapsed();
    let mut c = Conn::open(addr).await.expect("connect");
    let all = wait_working(&mut c, n as u64, Duration::from_secs(300)).await;
    let linked = t0.elapsed();
    let Some(_) = all else {
        println!("  not all {n} sessions reached working within 300 s");
        summary.add(format!("W {n} sessions linked"), "timeout", "");
        return;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss1 = rss_kib();
    let per = (rss1 - rss0) / n as f64;
    println!(
        "  W1: {n} sessions created, QR read from the API and scanned in {:.1} s; all working after {:.1} s \
         (the client waits 10 s after its first login for an app-state key share that only a real phone sends)",
        scanned.as_secs_f64(),
        linked.as_secs_f64()
    );
    println!("      VmRSS {:.1} -> {:.1} MiB: {per:.0} KiB per working session (fake's side included)  (target < 512 KiB)", rss0 / 1024.0, rss1 / 1024.0);
    summary.add(format!("W1 VmRSS per working session ({n})"), format!("{per:.0} KiB"), "< 512 KiB");
    summary.add(format!("W1 link {n} sessions by QR"), format!("{:.1} s", linked.as_secs_f64()), "");

    let cpu0 = cpu_secs();
    tokio::time::sleep(idle).await;
    let cpu = cpu_secs() - cpu0;
    let per_ms = cpu * 1e3 / idle.as_secs_f64() / n as f64;
    println!(
        "  W2: idle for {:.0} s: {:.2} CPU s in all (gateway + fake) = {:.3} ms CPU per second per session ({:.4}% of a core)",
        idle.as_secs_f64(),
        cpu,
        per_ms,
        per_ms / 10.0
    );
    summary.add("W2 CPU per idle working session", format!("{:.4}% of a core", per_ms / 10.0), "");

    let ids = ids.lock().expect("ids").clone();
    messages(&gw, &fake, &token, &ids, summary).await;

    gw.shutdown().await.expect("shutdown");
    let before = fake.handshakes().len();
    let t1 = Instant::now();
    let gw = start(config(dir.path(), &fake), None).await;
    let mut c = Conn::open(gw.addr()).await.expect("connect");
    match wait_working(&mut c, n as u64, Duration::from_secs(300)).await {
        Some(_) => {
            let secs = t1.elapsed().as_secs_f64();
            let ik = fake.handshakes()[before..].iter().filter(|h| h.as_str() == "IK login").count();
            println!("  W4: restart on the same file: all {n} working again after {secs:.2} s ({ik} IK logins, no QR)  (target < 60 s)");
            summary.add(format!("W4 restart to {n} working"), format!("{secs:.2} s"), "< 60 s");
        }
        None => summary.add(format!("W4 restart to {n} working"), "timeout", "< 60 s"),
    }
    gw.shutdown().await.expect("shutdown");
}

/// W3: every session sends `W3_PER` texts to its own contact.
async fn messages(gw: &Gateway, fake: &Arc<FakeWa>, token: &str, ids: &[String], summary: &mut Summary) {
    let addr = gw.addr();
    let contacts: Vec<String> = (0..ids.len()).map(|i| format!("62899{i:07}")).collect();
    for c in &contacts {
        fake.contact(c);
    }
    let mut c = Conn::open(addr).await.expect("connect");
    let fast = Bytes::from(json!({"presenceTyping": false, "ratePerMin": 100000, "ratePerHour": 100000}).to_string());
    for id in ids {
        let (st, b) = c.send(Method::PATCH, &format!("/api/v1/sessions/{id}"), Some(token), Some(fast.clone())).await.expect("patch");
        assert_eq!(st, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    }
    let total = ids.len() * W3_PER;
    let t0 = Instant::now();
    let workers = 16.min(ids.len());
    let mut tasks = Vec::new();
    for k in 0..workers {
        let (ids, contacts, token) = (ids.to_vec(), contacts.clone(), token.to_string());
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open(addr).await.expect("connect");
            for i in (k..ids.len()).step_by(workers) {
                let batch: Vec<Value> = (0..W3_PER).map(|j| json!({"to": contacts[i], "text": format!("message {j} of the bench")})).collect();
                let body = Bytes::from(json!({"messages": batch}).to_string());
                let path = format!("/api/v1/sessions/{}/messages/batch", ids[i]);
                let (st, b) = c.send(Method::POST, &path, Some(&token), Some(body)).await.expect("batch");
                assert_eq!(st, StatusCode::ACCEPTED, "{}", String::from_utf8_lossy(&b));
            }
        }));
    }
    for t in tasks {
        t.await.expect("send task");
    }
    let queued = t0.elapsed();
    let cpu0 = cpu_secs();
    let delivered = |f: &FakeWa| contacts.iter().map(|c| f.received(c).len()).sum::<usize>();
    let done = fake.until(Duration::from_secs(300), |f| delivered(f) >= total).await;
    let secs = t0.elapsed().as_secs_f64();
    let got = delivered(fake);
    if !done {
        println!("  W3: only {got} of {total} messages reached their contacts within 300 s");
        summary.add("W3 messages/s through real clients", "timeout", "");
        return;
    }
    println!(
        "  W3: {total} texts ({} sessions x {W3_PER}, queued in {:.2} s) encrypted by the real clients and decrypted by their contacts in {secs:.2} s = {:.0} messages/s ({:.2} CPU s after queuing, gateway + fake)",
        ids.len(),
        queued.as_secs_f64(),
        total as f64 / secs,
        cpu_secs() - cpu0
    );
    summary.add(format!("W3 messages/s through real clients ({total})"), format!("{:.0}/s", total as f64 / secs), "");
}
