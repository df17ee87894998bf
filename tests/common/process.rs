//! Driving the real `wa-gateway` binary from tests: a clean-environment
//! command, CLI runs with timeouts, a `Server` child process that is killed on
//! drop, free ports, token minting through `wa-gateway token`, and a small
//! HTTP client that reports a dead server as a value instead of panicking.
#![allow(dead_code)]
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_wa-gateway");
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------- processes

/// A `wa-gateway` command with a clean environment (no inherited `WAG_*`
/// or `RUST_LOG`, which would change what the binary does).
pub fn wag() -> Command {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("WAG_") {
            c.env_remove(k);
        }
    }
    c.env_remove("RUST_LOG");
    c.stdin(Stdio::null());
    c
}

/// Runs a `wa-gateway` subcommand to completion (with a timeout).
pub fn run(args: &[&str]) -> Output {
    run_in(None, &[], args)
}

/// Like [`run`], in a working directory and with extra environment variables.
pub fn run_in(cwd: Option<&Path>, envs: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = wag();
    if let Some(d) = cwd {
        c.current_dir(d);
    }
    c.envs(envs.iter().copied());
    c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = c.spawn().expect("spawn wa-gateway");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(out) => out.expect("wait wa-gateway"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("wa-gateway {args:?} did not finish within 20 s");
        }
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `wa-gateway check <args>`, returning (exit code, stdout, stderr).
pub fn check(args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    let out = run(&all);
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// Mints a login JWT with the binary's `token` subcommand.
pub fn mint(data: &Path, extra: &[&str]) -> String {
    let d = data.to_str().expect("utf-8 path");
    let mut args = vec!["token", "--data", d];
    args.extend_from_slice(extra);
    let out = run(&args);
    assert!(
        out.status.success(),
        "token {extra:?} failed: {}",
        text(&out.stderr)
    );
    let t = text(&out.stdout).trim().to_string();
    assert_eq!(t.split('.').count(), 3, "not a compact JWS: {t}");
    t
}

pub fn owner_token(data: &Path) -> String {
    mint(data, &["--sub", "u1", "--org", "org_a", "--role", "owner"])
}

pub fn super_token(data: &Path) -> String {
    mint(data, &["--sub", "root", "--super-admin"])
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind :0")
        .local_addr()
        .expect("addr")
        .port()
}

/// One plain `GET` over a fresh connection; `None` if nothing answered.
pub fn raw_status(addr: &str, path: &str) -> Option<u16> {
    let sock: std::net::SocketAddr = addr.parse().ok()?;
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let head = String::from_utf8_lossy(&buf);
    head.split_whitespace().nth(1)?.parse().ok()
}

/// A `wa-gateway serve` child process. Killed on drop.
pub struct Server {
    pub child: Option<Child>,
    pub addr: String,
    pub log: PathBuf,
    pub _logs: TempDir,
}

impl Server {
    /// `serve --data DATA --listen 127.0.0.1:<free port> EXTRA...`, ready.
    pub fn start(data: &Path, extra: &[&str]) -> Server {
        let data = data.to_path_buf();
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        Server::start_with(move |c, addr| {
            c.arg("--data")
                .arg(&data)
                .arg("--listen")
                .arg(addr)
                .args(&extra);
        })
    }

    /// `serve` configured by `f(command, listen address)`, waited until `/readyz` is 200.
    /// Retries with another port if the chosen one was taken meanwhile.
    pub fn start_with(f: impl Fn(&mut Command, &str)) -> Server {
        for _ in 0..5 {
            let mut s = Server::spawn_with(&f);
            match s.wait_ready(READY_TIMEOUT) {
                Ok(()) => return s,
                Err(log) if log.contains("cannot listen") => continue,
                Err(log) => panic!("serve did not become ready:\n{log}"),
            }
        }
        panic!("serve could not find a free port");
    }

    /// Spawns `serve` without waiting for it.
    pub fn spawn_with(f: impl Fn(&mut Command, &str)) -> Server {
        let logs = tempfile::tempdir().expect("tempdir");
        let log = logs.path().join("serve.log");
        let file = std::fs::File::create(&log).expect("log file");
        let addr = format!("127.0.0.1:{}", free_port());
        let mut c = wag();
        c.arg("serve");
        // Rate limits off unless the test passes `--rate-limit` (a flag
        // overrides the variable): suites outrun any principal's budget.
        c.env("WAG_RATE_LIMIT", "0");
        f(&mut c, &addr);
        c.stdout(file.try_clone().expect("dup")).stderr(file);
        let child = c.spawn().expect("spawn serve");
        Server {
            child: Some(child),
            addr,
            log,
            _logs: logs,
        }
    }

    pub fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .expect("child")
                .try_wait()
                .expect("try_wait")
            {
                return Err(format!("serve exited with {status}:\n{}", self.log()));
            }
            if raw_status(&self.addr, "/readyz") == Some(200) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "/readyz not 200 within {timeout:?}:\n{}",
            self.log()
        ))
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn api(&self) -> Api {
        Api::new(self.base())
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Everything the server wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `kill -TERM <pid>`.
    pub fn sigterm(&self) {
        let st = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(st.success(), "kill -TERM failed");
    }

    /// `kill -9` (std's `Child::kill` sends SIGKILL on unix), then reaps.
    pub fn kill9(&mut self) {
        let mut c = self.child.take().expect("running");
        c.kill().expect("SIGKILL");
        let st = c.wait().expect("wait");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&st),
            Some(9),
            "not killed by SIGKILL: {st}"
        );
    }

    /// Waits for the process to exit; `None` if it is still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut().expect("child");
            if let Some(st) = child.try_wait().expect("try_wait") {
                self.child = None;
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then asserts a clean exit (0) within `timeout`.
    pub fn stop(&mut self, timeout: Duration) {
        self.sigterm();
        match self.wait_exit(timeout) {
            Some(st) => assert!(
                st.success(),
                "serve exited with {st} after SIGTERM:\n{}",
                self.log()
            ),
            None => panic!(
                "serve still running {timeout:?} after SIGTERM:\n{}",
                self.log()
            ),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// ---------------------------------------------------------------- http

/// A small HTTP/1.1 client whose errors are values (a killed server is expected here).
#[derive(Clone)]
pub struct Api {
    pub client: Client<HttpConnector, Full<Bytes>>,
    pub base: String,
}

impl Api {
    pub fn new(base: String) -> Api {
        Api {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base,
        }
    }

    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<(u16, Value), String> {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path));
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        if body.is_some() {
            b = b.header("content-type", "application/json");
        }
        let body = body.map(|v| Bytes::from(v.to_string())).unwrap_or_default();
        let req = b.body(Full::new(body)).map_err(|e| e.to_string())?;
        let fut = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| format!("request: {e}"))?;
            let status = resp.status().as_u16();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("body: {e}"))?
                .to_bytes();
            Ok((
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            ))
        };
        tokio::time::timeout(Duration::from_secs(10), fut)
            .await
            .map_err(|_| "timed out".to_string())?
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.try_send(Method::GET, path, token, None)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        self.try_send(Method::POST, path, token, Some(body))
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    /// Waits (up to 10 s) until session `id` shows `want` as its status.
    pub async fn wait_status(&self, token: &str, id: &str, want: &str) {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if self.get(&format!("/api/v1/sessions/{id}"), Some(token)).await.1["status"] == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("session {id} never reached {want}");
    }

    /// Every item of a paged list.
    pub async fn walk(&self, path: &str, token: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let url = match &cursor {
                Some(c) => format!("{path}?limit=200&cursor={c}"),
                None => format!("{path}?limit=200"),
            };
            let (st, body) = self.get(&url, Some(token)).await;
            assert_eq!(st, 200, "{url}: {body}");
            out.extend(body["data"].as_array().expect("data").iter().cloned());
            match body["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return out,
            }
        }
    }
}

/// Creates one session and asserts 201 (with a readable hint when auth is what failed).
pub async fn create_one(api: &Api, token: &str, label: &str) -> String {
    let (st, body) = api
        .post("/api/v1/sessions", Some(token), json!({"label": label}))
        .await;
    assert_eq!(
        st, 201,
        "create session as owner (is login-JWT verification in place?): {body}"
    );
    body["id"].as_str().expect("id").to_string()
}

pub fn data_file(dir: &Path) -> PathBuf {
    dir.join("gateway.redb")
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
