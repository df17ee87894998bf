//! Media on the fake network: a plain-HTTP media host (the CDN) on a
//! loopback port, the `media_conn` IQ that names it, and the phones' side of
//! media (a contact decrypts what a linked device uploaded for it, and
//! uploads what it sends).
//!
//! What whatsapp-rust / wacore 0.7 do (`upload.rs`, `download.rs`,
//! `mediaconn.rs`, `wacore/src/iq/mediaconn.rs`):
//! - `<iq xmlns=w:m type=set><media_conn/>` → `<media_conn auth ttl auth_ttl max_buckets><host hostname type=primary/>`;
//!   the client keeps it for the shorter of `ttl` and `auth_ttl`.
//! - upload: `POST https://{hostname}/mms/{image|video|audio|document|…}/{token}?auth={auth}&token={token}`,
//!   body = the encrypted file, `token` = base64url(sha256(body)) (`file_enc_sha256`);
//!   the answer is JSON `{"url", "direct_path"}` (401/403 makes it refresh `media_conn` once).
//! - download: `GET https://{hostname}{direct_path}?auth={auth}&token={file_enc_sha256 b64url}`.
//!
//! The client builds `https://` URLs: a gateway under test is told to speak
//! plain HTTP to [`FakeWa::media_host`] (`WaOptions::plain_http_media_hosts`).
//! Requests the host cannot answer are recorded in `unexpected`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use whatsapp_rust::wacore::download::{DownloadUtils, Downloadable, MediaType};
use whatsapp_rust::wacore::proto_helpers::MessageExt;
use whatsapp_rust::wacore_binary::builder::NodeBuilder;
use whatsapp_rust::wacore_binary::Node;
use whatsapp_rust::waproto::buffa::MessageField;
use whatsapp_rust::waproto::whatsapp as wa;

use super::messaging::Received;
use super::stanzas::{Out, SERVER};
use super::{FakeWa, Inner, State};

/// The media half of the fake's state.
#[derive(Default)]
pub struct Media {
    /// `127.0.0.1:PORT` of the media host (what `media_conn` names).
    pub(super) host: String,
    /// The auth token `media_conn` hands out.
    pub(super) auth: String,
    /// Encrypted files by direct path.
    blobs: HashMap<String, Vec<u8>>,
    next: u64,
    /// Every request the media host got, as `METHOD path status`.
    requests: Vec<String>,
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl Media {
    /// Stores an encrypted file of kind `mms` (the upload path's last part);
    /// returns its direct path.
    pub(super) fn store(&mut self, mms: &str, enc: Vec<u8>) -> String {
        self.next += 1;
        let path = format!("/v/t62.fake-{mms}/{}_{}.enc", self.next, &b64url(&sha256(&enc))[..10]);
        self.blobs.insert(path.clone(), enc);
        path
    }
}

/// Starts the media host on a loopback port (serving until the task is
/// aborted); records its `host:port` in the state.
pub(super) async fn start(inner: Arc<Inner>) -> tokio::task::JoinHandle<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind fake media host");
    let host = listener.local_addr().expect("media host addr").to_string();
    if let Ok(mut st) = inner.state.lock() {
        st.media.host = host;
        st.media.auth = format!("fake-media-auth-{}", wa_gateway::new_id());
    }
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let inner = inner.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let inner = inner.clone();
                    async move { Ok::<_, Infallible>(http(&inner, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), svc).await;
            });
        }
    })
}

fn reply(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// One request to the media host.
async fn http(inner: &Inner, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query: HashMap<String, String> =
        form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()).into_owned().collect();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(e) => return reply(StatusCode::BAD_REQUEST, "text/plain", e.to_string().into_bytes()),
    };
    let Ok(mut st) = inner.state.lock() else {
        return reply(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", Vec::new());
    };
    let m = &mut st.media;
    let authed = query.get("auth") == Some(&m.auth);
    let token = query.get("token").cloned().unwrap_or_default();
    let upload = path.strip_prefix("/mms/").and_then(|p| p.split_once('/'));
    let (status, problem, resp) = match (method.as_str(), upload) {
        ("POST", Some((mms, path_token))) => {
            if !authed {
                (StatusCode::UNAUTHORIZED, None, reply(StatusCode::UNAUTHORIZED, "text/plain", b"bad auth".to_vec()))
            } else if path_token != token || token != b64url(&sha256(&body)) || query.contains_key("resume") {
                let why = format!("media: an upload it could not take: POST {path} {query:?} ({} bytes)", body.len());
                (StatusCode::BAD_REQUEST, Some(why), reply(StatusCode::BAD_REQUEST, "text/plain", Vec::new()))
            } else {
                let direct_path = m.store(mms, body);
                let json = serde_json::json!({
                    "url": format!("https://{}{direct_path}", m.host),
                    "direct_path": direct_path,
                });
                (StatusCode::OK, None, reply(StatusCode::OK, "application/json", json.to_string().into_bytes()))
            }
        }
        ("GET", _) => match m.blobs.get(&path) {
            Some(blob) if authed && token == b64url(&sha256(blob)) => {
                (StatusCode::OK, None, reply(StatusCode::OK, "application/octet-stream", blob.clone()))
            }
            Some(_) if !authed => {
                (StatusCode::UNAUTHORIZED, None, reply(StatusCode::UNAUTHORIZED, "text/plain", b"bad auth".to_vec()))
            }
            _ => {
                let why = format!("media: a download of nothing stored: GET {path} {query:?}");
                (StatusCode::NOT_FOUND, Some(why), reply(StatusCode::NOT_FOUND, "text/plain", Vec::new()))
            }
        },
        _ => {
            let why = format!("media: a request with no rule: {method} {path}");
            (StatusCode::NOT_FOUND, Some(why), reply(StatusCode::NOT_FOUND, "text/plain", Vec::new()))
        }
    };
    m.requests.push(format!("{method} {path} {}", status.as_u16()));
    if let Some(why) = problem {
        st.unexpected.push(why);
    }
    drop(st);
    inner.changed.notify_waiters();
    resp
}

fn attr(n: &Node, k: &str) -> Option<String> {
    n.attrs().optional_string(k).map(|s| s.to_string())
}

/// The answer to `n` when it is a media stanza (`None`: not one of these).
pub(super) fn answer(st: &mut State, n: &Node) -> Option<Out> {
    let first = n.children().and_then(|c| c.first()).map(|c| c.tag.to_string());
    let is_media_conn = n.tag == "iq"
        && attr(n, "xmlns").as_deref() == Some("w:m")
        && attr(n, "type").as_deref() == Some("set")
        && first.as_deref() == Some("media_conn");
    if !is_media_conn {
        return None;
    }
    let conn = NodeBuilder::new("media_conn")
        .attr("auth", st.media.auth.clone())
        .attr("ttl", "3600")
        .attr("auth_ttl", "21600")
        .attr("max_buckets", "12")
        .children([NodeBuilder::new("host").attr("hostname", st.media.host.clone()).attr("type", "primary").build()])
        .build();
    let node = NodeBuilder::new("iq")
        .attrs([
            ("from", SERVER.to_string()),
            ("id", attr(n, "id").unwrap_or_default()),
            ("type", "result".to_string()),
        ])
        .children([conn])
        .build();
    Some(Out { replies: vec![node], ..Out::default() })
}

/// The downloadable media a message carries.
fn downloadable(m: &wa::Message) -> Option<&dyn Downloadable> {
    fn dl<T: Downloadable>(x: &T) -> &dyn Downloadable {
        x
    }
    let m = m.get_base_message();
    (m.image_message.as_option().map(dl))
        .or_else(|| m.video_message.as_option().map(dl))
        .or_else(|| m.audio_message.as_option().map(dl))
        .or_else(|| m.document_message.as_option().map(dl))
        .or_else(|| m.sticker_message.as_option().map(dl))
}

impl FakeWa {
    /// The media host, `127.0.0.1:PORT` (for `WaOptions::plain_http_media_hosts`).
    pub fn media_host(&self) -> String {
        self.state().media.host.clone()
    }

    /// Every request the media host got, as `METHOD path status`.
    pub fn media_requests(&self) -> Vec<String> {
        self.state().media.requests.clone()
    }

    /// The media of a message a contact received, fetched from the media
    /// host and decrypted with the message's key; its hashes and length are
    /// checked as a phone would.
    pub fn media_of(&self, received: &Received) -> Result<Vec<u8>, String> {
        let d = downloadable(&received.message).ok_or_else(|| format!("no media in {}", received.id))?;
        let path = d.direct_path().ok_or("no direct_path")?;
        let key = d.media_key().ok_or("no media_key")?;
        let enc = self.state().media.blobs.get(path).cloned().ok_or_else(|| format!("nothing stored at {path}"))?;
        if d.file_enc_sha256() != Some(&sha256(&enc)[..]) {
            return Err("file_enc_sha256 does not match the stored file".into());
        }
        let plain = DownloadUtils::verify_and_decrypt(&enc, key, d.app_info()).map_err(|e| e.to_string())?;
        if d.file_sha256() != Some(&sha256(&plain)[..]) {
            return Err("file_sha256 does not match the decrypted file".into());
        }
        if d.file_length() != Some(plain.len() as u64) {
            return Err(format!("file_length {:?} but {} bytes", d.file_length(), plain.len()));
        }
        Ok(plain)
    }

    /// The contact `from` sends the image `bytes` (with `caption`) to the
    /// linked device `device_jid`: encrypted with a fresh media key, stored
    /// on the media host, and announced in an ImageMessage. Returns its id.
    pub fn deliver_image(
        &self,
        from: &str,
        device_jid: &str,
        bytes: &[u8],
        mimetype: &str,
        caption: Option<&str>,
    ) -> Result<String, String> {
        let enc = whatsapp_rust::wacore::upload::encrypt_media(bytes, MediaType::Image).map_err(|e| e.to_string())?;
        let (direct_path, host) = {
            let mut st = self.state();
            let path = st.media.store("image", enc.data_to_upload);
            (path, st.media.host.clone())
        };
        let image = wa::message::ImageMessage {
            url: Some(format!("https://{host}{direct_path}")),
            direct_path: Some(direct_path),
            mimetype: Some(mimetype.to_string()),
            caption: caption.map(str::to_string),
            media_key: Some(enc.media_key.to_vec()),
            file_sha256: Some(enc.file_sha256.to_vec()),
            file_enc_sha256: Some(enc.file_enc_sha256.to_vec()),
            file_length: Some(bytes.len() as u64),
            media_key_timestamp: Some(
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64),
            ),
            ..Default::default()
        };
        let message = wa::Message { image_message: MessageField::some(image), ..Default::default() };
        self.deliver(from, device_jid, "media", message)
    }
}
