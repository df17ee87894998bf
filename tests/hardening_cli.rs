//! CONTRACT §11 through the release-style binary: the fd limit raised at
//! start and honoured under a low hard limit, refusals before routing in the
//! access log, the shutdown deadline with a slow client, rate-limit flags,
//! `token` refusing a `--jwks-url` data dir, and the engine counters.

#[path = "common/process.rs"]
mod process;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use process::{mint, owner_token, run, s, Server};

fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
    s
}

fn exchange(addr: &str, request: &[u8]) -> String {
    let mut s = connect(addr);
    s.write_all(request).expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn the_fd_limit_is_raised_and_a_low_hard_limit_sheds_instead_of_spinning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start_with(|c, addr| {
        c.args(["--data", s(&data), "--listen", addr, "--engine", "sim"]);
        // SAFETY: setrlimit only, between fork and exec.
        unsafe {
            c.pre_exec(|| {
                let lim = libc::rlimit { rlim_cur: 64, rlim_max: 128 };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).expect("limits");
    let line = limits.lines().find(|l| l.starts_with("Max open files")).expect("open files line");
    let nums: Vec<&str> = line.split_whitespace().filter(|w| w.chars().all(|c| c.is_ascii_digit())).collect();
    assert_eq!(nums, ["128", "128"], "soft limit raised to the hard one: {line}");
    // Far more idle connections than fds: new clients are still served.
    let held: Vec<TcpStream> = (0..300).filter_map(|_| TcpStream::connect(&server.addr).ok()).collect();
    std::thread::sleep(Duration::from_millis(500));
    for i in 0..10 {
        let started = Instant::now();
        let r = exchange(&server.addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 200"), "round {i}: {r:?}\n{}", server.log());
        assert!(started.elapsed() < Duration::from_secs(1), "round {i} took {:?}", started.elapsed());
    }
    drop(held);
    let warns = server.log().matches("accept failed").count();
    assert!(warns <= 10, "accept errors are logged at most once a second, not spun on: {warns}");
}

#[test]
fn refusals_before_routing_are_logged_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--engine", "sim"]);
    let big = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(100 * 1024));
    assert!(exchange(&server.addr, big.as_bytes()).starts_with("HTTP/1.1 431"));
    assert!(exchange(&server.addr, b"NOT HTTP\r\n\r\n").starts_with("HTTP/1.1 400"));
    let no_host = exchange(&server.addr, b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(no_host.starts_with("HTTP/1.1 400"), "{no_host}");
    let head = exchange(&server.addr, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200") && head.ends_with("\r\n\r\n"), "{head}");
    std::thread::sleep(Duration::from_millis(200));
    let log = server.log();
    assert!(log.lines().any(|l| l.contains("wa_gateway::access") && l.contains("status=431")), "{log}");
    assert!(log.lines().any(|l| l.contains("wa_gateway::access") && l.contains("status=400")), "{log}");
    let metrics = exchange(&server.addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(metrics.contains("route=\"unrouted\",status=\"431\""), "{metrics}");
    assert!(metrics.contains("wa_gateway_engine_errors_total"), "{metrics}");
    assert!(metrics.contains("wa_gateway_engine_reconnects_total"), "{metrics}");
}

#[test]
fn shutdown_keeps_its_deadline_with_a_slow_client() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut server = Server::start(&data, &["--engine", "sim", "--shutdown-timeout", "3s"]);
    let token = owner_token(&data);
    // One client stuck in its body (the body timeout is 30 s), one that
    // pipelines and never reads.
    let mut stuck = connect(&server.addr);
    write!(
        stuck,
        "POST /api/v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    )
    .expect("write");
    let mut deaf = connect(&server.addr);
    let _ = deaf.write_all("GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n".repeat(64).as_bytes());
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    server.sigterm();
    let st = server.wait_exit(Duration::from_secs(8)).expect("exits");
    let took = started.elapsed();
    assert!(st.success(), "{st}\n{}", server.log());
    assert!(took < Duration::from_millis(3800), "shutdown took {took:?} against --shutdown-timeout 3s");
}

#[test]
fn rate_limit_flags_limit_per_principal_and_zero_turns_them_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--engine", "sim", "--rate-limit", "1", "--rate-limit-burst", "2"]);
    let token = owner_token(&data);
    let get = |t: &str| {
        exchange(
            &server.addr,
            format!("GET /api/v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
    };
    let answers: Vec<String> = (0..4).map(|_| get(&token)).collect();
    assert!(answers[0].starts_with("HTTP/1.1 200") && answers[1].starts_with("HTTP/1.1 200"), "{answers:?}");
    let limited = answers.iter().find(|a| a.starts_with("HTTP/1.1 429")).expect("a 429");
    assert!(limited.to_ascii_lowercase().contains("retry-after: "), "{limited}");
    assert!(limited.contains("rate_limited"), "{limited}");
    let other = mint(&data, &["--sub", "someone-else", "--org", "org_1", "--role", "admin"]);
    assert!(get(&other).starts_with("HTTP/1.1 200"), "another principal is unaffected");
    drop(server);
    // `--rate-limit 0` (the test harness's default): never limited.
    let server = Server::start(&data, &["--engine", "sim"]);
    for _ in 0..150 {
        let r = exchange(
            &server.addr,
            format!("GET /api/v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    }
}

#[test]
fn token_refuses_a_data_dir_that_trusts_a_jwks_url_unless_forced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut server = Server::spawn_with(|c, addr| {
        c.args(["--data", s(&data), "--listen", addr, "--engine", "sim", "--jwks-url", "http://127.0.0.1:9/jwks.json"]);
    });
    // `/readyz` stays 503 without keys; wait for the process to answer at all.
    let deadline = Instant::now() + Duration::from_secs(20);
    while process::raw_status(&server.addr, "/healthz") != Some(200) {
        assert!(Instant::now() < deadline, "serve did not come up:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    server.stop(Duration::from_secs(15));
    let out = run(&["token", "--data", s(&data), "--sub", "u", "--org", "o", "--role", "owner"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--jwks-url") && err.contains("--force"), "{err}");
    assert!(!data.join("issuer.pk8").exists(), "no issuer key was created");
    let out = run(&["token", "--data", s(&data), "--sub", "u", "--org", "o", "--role", "owner", "--force"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim().split('.').count(), 3);
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_distinct_fat_tokens_cost_little_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--engine", "sim"]);
    // The embedded issuer's own key, as `wa-gateway token` uses it.
    let issuer = wa_gateway::auth::issuer::Issuer::load_or_create(&data).expect("issuer");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let fat = |i: usize| {
        let claims = serde_json::json!({
            "sub": format!("user-{i}"), "iss": "wa-gateway", "iat": now, "exp": now + 3600,
            "org_id": "org_fat", "org_role": "member", "padding": "p".repeat(5600),
        });
        let t = issuer.mint(&claims);
        assert!(t.len() > 7500 && t.len() <= 8192, "{}", t.len());
        t
    };
    let api = server.api();
    for i in 0..200 {
        assert_eq!(api.get("/api/v1/me", Some(&fat(i))).await.0, 200);
    }
    let before = rss_kib(server.pid());
    for i in 200..10_200 {
        assert_eq!(api.get("/api/v1/me", Some(&fat(i))).await.0, 200);
    }
    let grew = rss_kib(server.pid()).saturating_sub(before);
    assert!(grew < 50 * 1024, "RSS grew by {} MiB for 10,000 distinct 8 KiB tokens", grew / 1024);
}
