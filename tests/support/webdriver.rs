//! A tiny WebDriver client (W3C WebDriver is JSON over HTTP): starts Debian's
//! `chromedriver` on a free port, opens one headless `chromium` session, and
//! speaks the few commands the console tests need. No crate beyond the hyper
//! client the tests already use.
//!
//! If chromedriver or chromium is missing, [`Browser::start`] panics with a
//! clear message (CI installs them: `.ci/run`); browser tests never pass
//! silently without a browser.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

/// The key under which WebDriver returns an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// A WebDriver error answer (`{"value": {"error", "message"}}`).
#[derive(Debug)]
pub struct WdError {
    pub error: String,
    pub message: String,
}

/// An element reference.
#[derive(Clone, Debug)]
pub struct El(pub String);

/// A headless chromium driven through its own chromedriver process.
pub struct Browser {
    driver: Child,
    port: u16,
    base: String,
    session: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl Browser {
    /// Starts chromedriver and a headless chromium session (1280×900).
    pub async fn start() -> Browser {
        Browser::start_with(&[]).await
    }

    /// Like [`Browser::start`], with extra chromium flags.
    pub async fn start_with(extra_args: &[&str]) -> Browser {
        for (path, what) in [(CHROMEDRIVER, "chromedriver"), (CHROMIUM, "chromium")] {
            assert!(
                Path::new(path).exists(),
                "{what} not found at {path}: the console's browser tests need Debian's chromium and its \
                 WebDriver (`apt-get install -y chromium chromium-driver`; .ci/run does this)"
            );
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
        let base = format!("http://127.0.0.1:{port}");
        let client = Client::builder(TokioExecutor::new()).build_http();
        let mut b = Browser { driver, port, base, session: String::new(), client };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(v) = b.raw(Method::GET, "/status", None).await {
                if v["value"]["ready"] == true {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not become ready on port {port}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut args = vec![
            "--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900", "--disable-dev-shm-usage",
            "--enable-precise-memory-info", "--no-first-run", "--disable-extensions", "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ];
        args.extend_from_slice(extra_args);
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
            "unhandledPromptBehavior": "ignore",
        }}});
        let v = b.raw(Method::POST, "/session", Some(caps)).await.unwrap_or_else(|e| panic!("new session: {e:?}"));
        b.session = v["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session id: {v}")).to_string();
        b
    }

    /// chromedriver's process id (its browsers are its descendants).
    pub fn driver_pid(&self) -> u32 {
        self.driver.id()
    }

    async fn raw(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, WdError> {
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(Full::new(body))
            .map_err(|e| WdError { error: "request".into(), message: e.to_string() })?;
        let resp = tokio::time::timeout(Duration::from_secs(60), self.client.request(req))
            .await
            .map_err(|_| WdError { error: "timeout".into(), message: format!("{path} took over 60 s") })?
            .map_err(|e| WdError { error: "http".into(), message: e.to_string() })?;
        let ok = resp.status().is_success();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| WdError { error: "http".into(), message: e.to_string() })?
            .to_bytes();
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if ok {
            Ok(v)
        } else {
            Err(WdError {
                error: v["value"]["error"].as_str().unwrap_or("unknown").to_string(),
                message: v["value"]["message"].as_str().unwrap_or("").chars().take(400).collect(),
            })
        }
    }

    /// A command of this session: `path` after `/session/{id}`; answers `value`.
    pub async fn cmd(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, WdError> {
        let body = body.or_else(|| (method == Method::POST).then(|| json!({})));
        self.raw(method, &format!("/session/{}{path}", self.session), body).await.map(|v| v["value"].clone())
    }

    pub async fn goto(&self, url: &str) {
        self.cmd(Method::POST, "/url", Some(json!({"url": url}))).await.unwrap_or_else(|e| panic!("goto {url}: {e:?}"));
    }

    pub async fn url(&self) -> String {
        self.cmd(Method::GET, "/url", None).await.ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
    }

    /// Runs `script` (a function body; `arguments` are `args`) and answers its return value.
    pub async fn exec(&self, script: &str, args: Vec<Value>) -> Result<Value, WdError> {
        self.cmd(Method::POST, "/execute/sync", Some(json!({"script": script, "args": args}))).await
    }

    /// Like [`Browser::exec`], panicking on a WebDriver error.
    pub async fn js(&self, script: &str) -> Value {
        self.exec(script, vec![]).await.unwrap_or_else(|e| panic!("script failed: {e:?}\n{script}"))
    }

    /// Polls `expr` (a JavaScript expression) until it is truthy; answers
    /// its value. Panics with `what` after `timeout`.
    pub async fn wait(&self, expr: &str, timeout: Duration, what: &str) -> Value {
        let deadline = Instant::now() + timeout;
        let script = format!("try {{ return ({expr}); }} catch (e) {{ return null; }}");
        loop {
            let v = self.exec(&script, vec![]).await.unwrap_or(Value::Null);
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return v;
            }
            if Instant::now() > deadline {
                let body = self.js("return document.getElementById('main') ? document.getElementById('main').innerText.slice(0, 1500) : document.body.innerText.slice(0, 1500)").await;
                panic!("timed out after {timeout:?} waiting for {what} ({expr}); page shows:\n{}", body.as_str().unwrap_or(""));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The first element matching a CSS selector.
    pub async fn find(&self, css: &str) -> Result<El, WdError> {
        let v = self.cmd(Method::POST, "/element", Some(json!({"using": "css selector", "value": css}))).await?;
        v[ELEMENT].as_str().map(|s| El(s.to_string())).ok_or(WdError { error: "no element".into(), message: v.to_string() })
    }

    /// Waits for an element matching `css`, then answers it.
    pub async fn wait_el(&self, css: &str, timeout: Duration) -> El {
        let sel = serde_json::to_string(css).unwrap_or_default();
        self.wait(&format!("document.querySelector({sel})"), timeout, css).await;
        self.find(css).await.unwrap_or_else(|e| panic!("{css}: {e:?}"))
    }

    pub async fn click(&self, el: &El) {
        self.cmd(Method::POST, &format!("/element/{}/click", el.0), None).await.unwrap_or_else(|e| panic!("click: {e:?}"));
    }

    /// Waits for `css`, then clicks it.
    pub async fn click_css(&self, css: &str) {
        let el = self.wait_el(css, Duration::from_secs(5)).await;
        self.click(&el).await;
    }

    /// Types `text` into an element (after clearing it).
    pub async fn type_into(&self, css: &str, text: &str) {
        let el = self.wait_el(css, Duration::from_secs(5)).await;
        let _ = self.cmd(Method::POST, &format!("/element/{}/clear", el.0), None).await;
        self.cmd(Method::POST, &format!("/element/{}/value", el.0), Some(json!({"text": text})))
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e:?}"));
    }

    pub async fn text(&self, el: &El) -> String {
        self.cmd(Method::GET, &format!("/element/{}/text", el.0), None)
            .await
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()
    }

    /// Number of elements matching `css`.
    pub async fn count(&self, css: &str) -> usize {
        let sel = serde_json::to_string(css).unwrap_or_default();
        self.js(&format!("return document.querySelectorAll({sel}).length")).await.as_u64().unwrap_or(0) as usize
    }

    /// The text of an open alert/confirm/prompt, or the WebDriver error
    /// (`no such alert` when none is open).
    pub async fn alert_text(&self) -> Result<String, WdError> {
        self.cmd(Method::GET, "/alert/text", None).await.map(|v| v.as_str().unwrap_or("").to_string())
    }

    /// Saves a PNG screenshot of the viewport to `path`.
    pub async fn screenshot(&self, path: &Path) {
        use base64::Engine;
        let v = self.cmd(Method::GET, "/screenshot", None).await.unwrap_or_else(|e| panic!("screenshot: {e:?}"));
        let png = base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap_or("")).expect("screenshot base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// The browser's console log since the last call (chromedriver's
    /// `goog:loggingPrefs`): `[{"level", "message", "timestamp"}]`.
    pub async fn browser_log(&self) -> Vec<Value> {
        self.cmd(Method::POST, "/se/log", Some(json!({"type": "browser"})))
            .await
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    }

    /// Ends the browser session and chromedriver.
    pub async fn quit(mut self) {
        let _ = self.cmd(Method::DELETE, "", None).await;
        self.session.clear();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A test that panicked still closes its browser: a plain blocking
        // DELETE, then chromedriver (the process this client started) is killed.
        if !self.session.is_empty() {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let req = format!(
                    "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    self.session, self.port
                );
                if s.write_all(req.as_bytes()).is_ok() {
                    let mut sink = Vec::new();
                    let _ = s.read_to_end(&mut sink);
                }
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
