//! Getting a message's media at queue time: from a URL or from base64 (CONTRACT §9).
//!
//! Media is at most 16 MiB and is fetched when the message is queued, not
//! when it is sent, so a bad URL is a 400 on the request that named it. A
//! fetch allows 5 s per connect and 60 s for the whole thing (redirects and
//! body included), speaks http and https only, follows at most three
//! redirects and only to the same origin (scheme, host and port), and refuses
//! hosts that resolve to a private, loopback, link-local or otherwise
//! non-public address unless `--allow-private-urls` is set. A URL's host is
//! normalized first ([`super::host`]: `0x7f.1`, `2130706433` and `localhost.`
//! are loopback), and no error text names an address a host resolved to
//! (that would make the gateway a DNS oracle of the network it runs in).
//!
//! Server-side request forgery is the threat: the host is resolved here, every
//! resolved address is checked, and the connection goes to a checked address
//! (the request URI carries the IP literal; the `Host` header and the TLS
//! server name carry the original host name), so a DNS answer that changes
//! between the check and the connect cannot point the fetch elsewhere.

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HOST, LOCATION, USER_AGENT};
use hyper::{Request, StatusCode, Uri};
use hyper_rustls::{DefaultServerNameResolver, FixedServerNameResolver, HttpsConnector};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::ServerName;

use super::host::{self, Host};

/// Largest media accepted: 16 MiB.
pub const MAX_MEDIA_BYTES: usize = 16 * 1024 * 1024;

/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 3;

/// Longest URL accepted (a sanity bound, not a contract number).
const MAX_URL_LEN: usize = 8 * 1024;

/// The limits one fetch runs under; exists so the server's flags
/// (`--allow-private-urls`) and tests (small caps, short timeouts) can set them.
#[derive(Clone, Debug)]
pub struct FetchPolicy {
    /// Whether hosts resolving to non-public addresses may be fetched.
    pub allow_private: bool,
    /// Time allowed for each TCP connect.
    pub connect_timeout: Duration,
    /// Time allowed for the whole fetch: resolving, connecting, TLS,
    /// redirects and the body.
    pub total_timeout: Duration,
    /// Largest body accepted, in bytes.
    pub max_bytes: usize,
    /// The media budget a fetch charges before reading the response body,
    /// and how long it waits for room (`None`: not charged).
    pub budget: Option<(super::media_budget::MediaBudget, Duration)>,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        FetchPolicy {
            allow_private: false,
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(60),
            max_bytes: MAX_MEDIA_BYTES,
            budget: None,
        }
    }
}

/// Why media could not be had; exists so the caller can map each case to its
/// HTTP status (413 for [`MediaError::TooLarge`], 400 for the rest).
#[derive(Debug)]
#[non_exhaustive]
pub enum MediaError {
    /// Over the size cap (HTTP 413 for the caller).
    TooLarge { max: usize },
    /// The URL is not http(s), has no host, has credentials, etc. (400)
    BadUrl(String),
    /// The host resolves to a private/loopback/link-local/unspecified/multicast/…
    /// address and private URLs are not allowed (400).
    PrivateAddress(String),
    /// DNS, connect, TLS, timeout, non-2xx status, too many redirects, redirect
    /// to another host (400 — the caller's URL is bad).
    Fetch(String),
    /// `data` is not valid base64 (400).
    BadBase64,
    /// The media budget stayed full for the whole wait (429).
    Busy,
}

impl fmt::Display for MediaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MediaError::TooLarge { max } => {
                if *max >= 1024 * 1024 && max % (1024 * 1024) == 0 {
                    write!(f, "media is larger than the {} MiB limit", max / (1024 * 1024))
                } else {
                    write!(f, "media is larger than the {max}-byte limit")
                }
            }
            MediaError::BadUrl(why) => write!(f, "bad media URL: {why}"),
            MediaError::PrivateAddress(why) => write!(
                f,
                "media URL refused: {why}; private, loopback and link-local addresses are not allowed"
            ),
            MediaError::Fetch(why) => write!(f, "fetching media failed: {why}"),
            MediaError::BadBase64 => f.write_str("media data is not valid base64"),
            MediaError::Busy => f.write_str("too much media is being fetched at once"),
        }
    }
}

impl std::error::Error for MediaError {}

/// What a fetch produced; exists so the caller gets the bytes together with
/// what the server said about them (type) and what the URL said (name).
#[derive(Clone, Debug)]
pub struct Fetched {
    /// The body.
    pub data: Bytes,
    /// `Content-Type` without parameters, lowercased; `None` when absent.
    pub mimetype: Option<String>,
    /// The last path segment, percent-decoded (of the final URL after
    /// redirects, else of the original one); `None` when the path ends in `/`.
    pub file_name: Option<String>,
    /// The media budget charged for these bytes (twice their size: they and
    /// the data file's copy of them when staged); the caller holds it until
    /// the bytes are staged and dropped.
    pub charge: Option<Arc<super::media_budget::Charge>>,
}

/// A checked http(s) URL, split into what the fetch needs; exists so the
/// initial URL and every redirect target go through the same checks.
/// (Webhook URLs go through the same checks: `api/webhooks.rs`.)
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) uri: Uri,
    pub(crate) https: bool,
    /// Host after normalization ([`super::host::normalize`]), in canonical
    /// text without IPv6 brackets: `0x7f.1` is `127.0.0.1`, `Example.COM.`
    /// is `example.com`.
    pub(crate) host: String,
    /// The same host, typed.
    pub(crate) parsed: Host,
    pub(crate) port: u16,
    /// `host[:port]` for the `Host` header: as written, unless the host was
    /// spelled in a non-canonical way (then the canonical host).
    pub(crate) authority: String,
}

/// Fetches `url` under `policy`. See the module documentation for the rules.
pub async fn fetch(url: &str, policy: &FetchPolicy) -> Result<Fetched, MediaError> {
    let target = parse_url(url)?;
    match tokio::time::timeout(policy.total_timeout, fetch_inner(target, policy)).await {
        Ok(result) => result,
        Err(_) => Err(MediaError::Fetch(format!(
            "timed out after {}",
            human_duration(policy.total_timeout)
        ))),
    }
}

async fn fetch_inner(first: Target, policy: &FetchPolicy) -> Result<Fetched, MediaError> {
    let tls = tls_config()?;
    let mut target = first.clone();
    let mut redirects = 0usize;
    loop {
        let addrs = resolve_checked(&target, policy.allow_private).await?;
        let response = send(&target, &addrs, &tls, policy).await?;
        let status = response.status();

        if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
            let location = response
                .headers()
                .get(LOCATION)
                .ok_or_else(|| MediaError::Fetch(format!("HTTP {status} without a Location")))?
                .to_str()
                .map_err(|_| MediaError::Fetch("redirect Location is not valid ASCII".into()))?
                .to_owned();
            drop(response);
            if redirects == MAX_REDIRECTS {
                return Err(MediaError::Fetch(format!(
                    "too many redirects (more than {MAX_REDIRECTS})"
                )));
            }
            redirects += 1;
            target = redirect_target(&target, &location)?;
            continue;
        }
        if !status.is_success() {
            return Err(MediaError::Fetch(format!(
                "the server answered HTTP {status}"
            )));
        }

        if let Some(len) = response.headers().get(CONTENT_LENGTH) {
            let len = len
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| MediaError::Fetch("invalid Content-Length".into()))?;
            if len > policy.max_bytes as u64 {
                return Err(MediaError::TooLarge {
                    max: policy.max_bytes,
                });
            }
        }
        let mimetype = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(mime_without_params);
        let capacity = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0)
            .min(policy.max_bytes);

        // Charged before one byte of the body is read: the declared length
        // (or the cap when none is declared), twice — the bytes, and the
        // data file's copy of them while they are staged.
        let charge = match &policy.budget {
            Some((budget, wait)) => {
                let expect = if capacity > 0 { capacity } else { policy.max_bytes } as u64;
                Some(Arc::new(budget.charge(expect * 2, *wait).await.map_err(|_| MediaError::Busy)?))
            }
            None => None,
        };
        let mut body = response.into_body();
        let mut data: Vec<u8> = Vec::with_capacity(capacity);
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| MediaError::Fetch(format!("reading the body: {}", chain(&e))))?;
            if let Ok(chunk) = frame.into_data() {
                if data.len().saturating_add(chunk.len()) > policy.max_bytes {
                    return Err(MediaError::TooLarge {
                        max: policy.max_bytes,
                    });
                }
                data.extend_from_slice(&chunk);
            }
        }

        let file_name = file_name_of(target.uri.path()).or_else(|| file_name_of(first.uri.path()));
        return Ok(Fetched {
            data: Bytes::from(data),
            mimetype,
            file_name,
            charge,
        });
    }
}

/// Sends one GET to the first of `addrs` that accepts a connection.
async fn send(
    target: &Target,
    addrs: &[SocketAddr],
    tls: &Arc<rustls::ClientConfig>,
    policy: &FetchPolicy,
) -> Result<hyper::Response<hyper::body::Incoming>, MediaError> {
    let path_and_query = target
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let path_and_query = if path_and_query.is_empty() {
        "/"
    } else {
        path_and_query
    };
    let scheme = if target.https { "https" } else { "http" };

    let server_name: Arc<dyn hyper_rustls::ResolveServerName + Send + Sync> = if target.https {
        let name = ServerName::try_from(target.host.clone()).map_err(|e| {
            MediaError::BadUrl(format!(
                "host {:?} is not a valid TLS server name: {e}",
                target.host
            ))
        })?;
        Arc::new(FixedServerNameResolver::new(name))
    } else {
        Arc::new(DefaultServerNameResolver::default())
    };

    let mut last_error = String::from("no address to connect to");
    for addr in addrs {
        let ip_authority = match addr {
            SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
            SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        };
        let uri: Uri = format!("{scheme}://{ip_authority}{path_and_query}")
            .parse()
            .map_err(|e| MediaError::BadUrl(format!("cannot rebuild the URL: {e}")))?;
        let request = Request::get(uri)
            .header(HOST, target.authority.as_str())
            .header(
                USER_AGENT,
                concat!("wa-gateway/", env!("CARGO_PKG_VERSION")),
            )
            .header(ACCEPT, "*/*")
            .body(Empty::<Bytes>::new())
            .map_err(|e| MediaError::BadUrl(format!("cannot build the request: {e}")))?;

        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(policy.connect_timeout));
        http.set_nodelay(true);
        let connector = HttpsConnector::new(http, tls.clone(), false, server_name.clone());
        let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(connector);

        match client.request(request).await {
            Ok(response) => return Ok(response),
            Err(e) if e.is_connect() => {
                last_error = format!("connecting to {}: {}", target.host, chain(&e));
            }
            Err(e) => {
                return Err(MediaError::Fetch(format!(
                    "requesting from {}: {}",
                    target.host,
                    chain(&e)
                )))
            }
        }
    }
    Err(MediaError::Fetch(last_error))
}

/// Resolves the target's host (or takes its IP literal) and checks every
/// address; returns them with the target's port.
pub(crate) async fn resolve_checked(
    target: &Target,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, MediaError> {
    if !allow_private && target.parsed.is_localhost() {
        return Err(private_host(target));
    }
    let mut addrs: Vec<SocketAddr> = if let Some(ip) = target.parsed.ip() {
        vec![SocketAddr::new(ip, target.port)]
    } else {
        tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|e| MediaError::Fetch(format!("resolving {}: {e}", target.host)))?
            .collect()
    };
    let mut seen = std::collections::HashSet::new();
    addrs.retain(|a| seen.insert(*a));
    if addrs.is_empty() {
        return Err(MediaError::Fetch(format!(
            "{} has no addresses",
            target.host
        )));
    }
    if !allow_private {
        // Never the address a name resolved to: only that it is refused.
        if addrs.iter().any(|a| !is_public(a.ip())) {
            return Err(private_host(target));
        }
    }
    Ok(addrs)
}

/// The refusal of a non-public host: an address literal is named (it is the
/// caller's own), a name only as a name.
fn private_host(target: &Target) -> MediaError {
    MediaError::PrivateAddress(match target.parsed {
        Host::Name(_) => format!("host {} is not allowed (not a public address)", target.host),
        _ => format!("{} is not a public address", target.host),
    })
}

/// Checks a URL: http(s), a host (normalized), no credentials, a usable port.
pub(crate) fn parse_url(url: &str) -> Result<Target, MediaError> {
    let url = url.trim();
    if url.is_empty() {
        return Err(MediaError::BadUrl("empty".into()));
    }
    if url.len() > MAX_URL_LEN {
        return Err(MediaError::BadUrl(format!(
            "longer than {MAX_URL_LEN} characters"
        )));
    }
    let uri: Uri = url
        .parse()
        .map_err(|e| MediaError::BadUrl(format!("{e}")))?;
    let https = match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("https") => true,
        Some(s) if s.eq_ignore_ascii_case("http") => false,
        Some(s) => {
            return Err(MediaError::BadUrl(format!(
                "scheme {s:?} is not http or https"
            )))
        }
        None => return Err(MediaError::BadUrl("not an absolute http(s) URL".into())),
    };
    let authority = uri
        .authority()
        .ok_or_else(|| MediaError::BadUrl("no host".into()))?;
    if authority.as_str().contains('@') {
        return Err(MediaError::BadUrl(
            "credentials in the URL are not allowed".into(),
        ));
    }
    let written = authority.host();
    if written.is_empty() {
        return Err(MediaError::BadUrl("no host".into()));
    }
    let parsed = host::normalize(written).map_err(MediaError::BadUrl)?;
    let host = parsed.to_string();
    let port = match authority.port_u16() {
        Some(0) => return Err(MediaError::BadUrl("port 0".into())),
        Some(p) => p,
        None if authority.as_str().ends_with(':') => {
            return Err(MediaError::BadUrl("empty port".into()))
        }
        None if https => 443,
        None => 80,
    };
    let authority = if parsed.authority_form().eq_ignore_ascii_case(written) {
        authority.as_str().to_owned()
    } else {
        match authority.port_u16() {
            Some(p) => format!("{}:{p}", parsed.authority_form()),
            None => parsed.authority_form(),
        }
    };
    Ok(Target {
        authority,
        uri,
        https,
        host,
        parsed,
        port,
    })
}

/// The next target after a redirect from `from` to `location`: checked like
/// any URL, same origin only (scheme, host and port).
fn redirect_target(from: &Target, location: &str) -> Result<Target, MediaError> {
    let absolute = resolve_location(&from.uri, from.https, location);
    let next = parse_url(&absolute).map_err(|e| match e {
        MediaError::BadUrl(why) => MediaError::Fetch(format!("redirect to a bad URL ({why})")),
        other => other,
    })?;
    if next.host != from.host {
        return Err(MediaError::Fetch(format!(
            "redirect to another host ({}) refused",
            next.host
        )));
    }
    if from.https != next.https {
        return Err(MediaError::Fetch(
            "redirect to another scheme refused".into(),
        ));
    }
    if from.port != next.port {
        return Err(MediaError::Fetch(format!(
            "redirect to another port ({}) refused",
            next.port
        )));
    }
    Ok(next)
}

/// Makes a `Location` value absolute against the URL that returned it.
fn resolve_location(base: &Uri, https: bool, location: &str) -> String {
    let location = location.trim();
    let location = location.split('#').next().unwrap_or("");
    let scheme = if https { "https" } else { "http" };
    let authority = base.authority().map(|a| a.as_str()).unwrap_or("");
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{scheme}://{rest}");
    }
    if has_scheme(location) {
        return location.to_owned();
    }
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}");
    }
    let base_path = base.path();
    let dir = match base_path.rfind('/') {
        Some(i) => &base_path[..=i],
        None => "/",
    };
    if location.is_empty() {
        return format!(
            "{scheme}://{authority}{}",
            base.path_and_query().map(|p| p.as_str()).unwrap_or("/")
        );
    }
    if location.starts_with('?') {
        return format!("{scheme}://{authority}{base_path}{location}");
    }
    let (rel_path, query) = match location.find('?') {
        Some(i) => location.split_at(i),
        None => (location, ""),
    };
    let merged = remove_dot_segments(&format!("{dir}{rel_path}"));
    format!("{scheme}://{authority}{merged}{query}")
}

/// RFC 3986 §5.2.4 on an absolute path: `.` and `..` segments resolved,
/// never above the root.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "." | ".." => {
                if *segment == ".." {
                    out.pop();
                }
                // A trailing `.` or `..` leaves a directory: keep the slash.
                if i == last {
                    out.push("");
                }
            }
            other => out.push(other),
        }
    }
    format!("/{}", out.join("/"))
}

/// Whether a URL reference starts with `scheme:` (RFC 3986 §3.1).
fn has_scheme(s: &str) -> bool {
    let Some(colon) = s.find(':') else {
        return false;
    };
    let scheme = &s[..colon];
    let mut chars = scheme.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// `type/subtype` of a `Content-Type`, lowercased; `None` when empty.
fn mime_without_params(value: &str) -> Option<String> {
    let mime = value.split(';').next().unwrap_or("").trim();
    if mime.is_empty() {
        None
    } else {
        Some(mime.to_ascii_lowercase())
    }
}

/// The last segment of a URL path, percent-decoded, with path separators and
/// control characters replaced by `_`; `None` when there is none.
fn file_name_of(path: &str) -> Option<String> {
    let segment = path.rsplit('/').next().unwrap_or("");
    if segment.is_empty() {
        return None;
    }
    let decoded = percent_decode(segment);
    let cleaned: String = decoded
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        None
    } else {
        Some(cleaned.to_owned())
    }
}

/// Decodes `%XX` escapes (malformed ones are kept as written); invalid UTF-8
/// becomes U+FFFD.
fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The TLS client configuration (ring, webpki roots), built once.
pub(crate) fn tls_config() -> Result<Arc<rustls::ClientConfig>, MediaError> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    if let Some(config) = CONFIG.get() {
        return Ok(config.clone());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| MediaError::Fetch(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let config = Arc::new(config);
    Ok(CONFIG.get_or_init(|| config).clone())
}

/// An error and its sources, `: `-joined (hyper's own messages are terse).
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

fn human_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// Standard base64 (with or without padding; also accept base64url); also
/// accepts a `data:<mime>;base64,` prefix and returns its mime. Decoded size
/// over `max` → TooLarge (check the encoded length first so a 100 MiB string is
/// refused without decoding).
///
/// ASCII whitespace inside the payload (line-wrapped base64) is ignored.
pub fn decode_base64(s: &str, max: usize) -> Result<(Vec<u8>, Option<String>), MediaError> {
    let s = s.trim();
    let (payload, mime) = match split_data_url(s)? {
        Some((payload, mime)) => (payload, mime),
        None => (s, None),
    };

    // Size from the encoded length, before any decoding or copying.
    let significant = payload.bytes().filter(|b| !b.is_ascii_whitespace()).count();
    let padding = payload
        .bytes()
        .rev()
        .filter(|b| !b.is_ascii_whitespace())
        .take(2)
        .take_while(|&b| b == b'=')
        .count();
    let decoded_len = (significant - padding) / 4 * 3 + ((significant - padding) % 4) * 3 / 4;
    if decoded_len > max {
        return Err(MediaError::TooLarge { max });
    }

    let payload: Cow<'_, str> = if payload.bytes().any(|b| b.is_ascii_whitespace()) {
        Cow::Owned(
            payload
                .chars()
                .filter(|c| !c.is_ascii_whitespace())
                .collect(),
        )
    } else {
        Cow::Borrowed(payload)
    };
    let url_safe = payload.bytes().any(|b| b == b'-' || b == b'_');
    let config = base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent);
    let engine = if url_safe {
        base64::engine::GeneralPurpose::new(&base64::alphabet::URL_SAFE, config)
    } else {
        base64::engine::GeneralPurpose::new(&base64::alphabet::STANDARD, config)
    };
    let data = engine
        .decode(payload.as_bytes())
        .map_err(|_| MediaError::BadBase64)?;
    if data.len() > max {
        return Err(MediaError::TooLarge { max });
    }
    Ok((data, mime))
}

/// Splits `data:<mime>[;params];base64,<payload>`; `Ok(None)` when `s` is not
/// a data URL, `BadBase64` when it is one but not a base64 one.
fn split_data_url(s: &str) -> Result<Option<(&str, Option<String>)>, MediaError> {
    let is_data = s.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("data:"));
    if !is_data {
        return Ok(None);
    }
    let rest = &s[5..];
    let comma = rest.find(',').ok_or(MediaError::BadBase64)?;
    let meta = &rest[..comma];
    let payload = &rest[comma + 1..];
    let is_base64 = meta
        .rsplit(';')
        .next()
        .is_some_and(|last| last.trim().eq_ignore_ascii_case("base64"))
        && meta.contains(';');
    if !is_base64 {
        return Err(MediaError::BadBase64);
    }
    let mime = meta.split(';').next().and_then(mime_without_params);
    Ok(Some((payload, mime)))
}

pub use super::addr::is_public;

#[cfg(test)]
#[path = "media_fetch_tests.rs"]
mod tests;
