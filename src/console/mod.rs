//! The web console (`GET /console`) and the API reference page (`GET /docs`):
//! a small single-page app served by the gateway itself.
//!
//! - Every file is embedded in the binary ([`include_bytes!`]): no build
//!   step, no npm, nothing from a CDN, so it works on an offline VM.
//! - Files are served by name from the fixed list [`ASSETS`]; anything else
//!   is a 404 in the contract's error envelope.
//! - Every answer carries a strict Content-Security-Policy (no inline
//!   script, no eval, `connect-src 'self'`) and the usual framing, sniffing
//!   and referrer headers. The JavaScript renders data as text only.
//! - The console speaks the public API like any client: the bearer token
//!   stays in the browser (`sessionStorage`); these routes take none.

use std::sync::{Arc, OnceLock};

use hyper::header::{HeaderValue, CACHE_CONTROL, ETAG, IF_NONE_MATCH};

use crate::app::App;
use crate::http::response::{self, Resp};
use crate::http::{ApiError, ErrorCode, Req};

/// The Content-Security-Policy of every console and docs answer.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; \
                       connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One embedded file: why it exists is to be served under `/console/{name}`
/// with a fixed content type, never from the disk.
pub struct Asset {
    /// The file name, the last path segment of its URL.
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $ct:expr) => {
        Asset { name: $name, content_type: $ct, bytes: include_bytes!(concat!("assets/", $name)) }
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every file the console and the docs page are made of.
pub static ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("style.css", CSS),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("ui.js", JS),
    asset!("signin.js", JS),
    asset!("sessions.js", JS),
    asset!("session.js", JS),
    asset!("messages.js", JS),
    asset!("events.js", JS),
    asset!("webhooks.js", JS),
    asset!("keys.js", JS),
    asset!("docs.html", HTML),
    asset!("docs.js", JS),
];

/// An asset by file name.
pub fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// A strong validator per asset (FNV-1a of its bytes), computed once.
fn etag(index: usize) -> &'static str {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let h = a.bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3));
                format!("\"{h:016x}-{}\"", env!("CARGO_PKG_VERSION"))
            })
            .collect()
    });
    tags.get(index).map(String::as_str).unwrap_or("\"\"")
}

/// The headers every console answer carries, success or not.
fn harden(r: &mut Resp) {
    let h = r.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
}

/// Answers asset `name`: 200 with its bytes, 304 when the client's copy is
/// current, 404 (error envelope) when there is no such file.
fn serve(req: &Req, name: &str) -> Result<Resp, ApiError> {
    let Some(index) = ASSETS.iter().position(|a| a.name == name) else {
        let e = ApiError::new(ErrorCode::NotFound, "no such console file").detail("file", name.to_string());
        let mut r = response::error(&e, &req.request_id);
        harden(&mut r);
        return Ok(r);
    };
    let a = &ASSETS[index];
    let tag = etag(index);
    let fresh = req
        .headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut r = if fresh { response::empty(304) } else { response::bytes(200, a.content_type, a.bytes) };
    harden(&mut r);
    let h = r.headers_mut();
    // Revalidate every time (cheap: 304), so an upgraded binary is never
    // mixed with stale files of the previous one.
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(ETAG, v);
    }
    Ok(r)
}

/// `GET /console`: the console's page.
pub async fn index(_app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    serve(&req, "index.html")
}

/// `GET /console/{id}`: one of the console's files, by name.
pub async fn file(_app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    let name = req.id.clone().unwrap_or_default();
    serve(&req, &name)
}

/// `GET /docs`: the API reference, rendered from `/openapi.json` in the browser.
pub async fn docs(_app: Arc<App>, req: Req) -> Result<Resp, ApiError> {
    serve(&req, "docs.html")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_typed_by_extension_and_small() {
        let mut total = 0;
        for a in ASSETS {
            let want = match a.name.rsplit('.').next() {
                Some("html") => HTML,
                Some("js") => JS,
                Some("css") => CSS,
                _ => "",
            };
            assert_eq!(a.content_type, want, "{}", a.name);
            assert!(!a.bytes.is_empty(), "{} is empty", a.name);
            total += a.bytes.len();
        }
        assert!(total < 150 * 1024, "console is {total} bytes");
        assert!(asset("index.html").is_some() && asset("../Cargo.toml").is_none());
    }

    #[test]
    fn no_inline_script_or_style_in_the_pages() {
        for name in ["index.html", "docs.html"] {
            let page = std::str::from_utf8(asset(name).map(|a| a.bytes).unwrap_or_default()).unwrap_or("");
            assert!(!page.contains("<script>") && !page.contains("style=") && !["onclick=", "onload=", "onerror=", "onsubmit="].iter().any(|h| page.contains(h)), "{name}");
        }
    }
}
