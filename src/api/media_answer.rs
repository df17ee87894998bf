//! What a message's media may be called and how it is served (CONTRACT
//! §11 continued): a `mimetype` is a valid `type/subtype` (RFC 6838
//! restricted names, optional `; name=value` parameters, no control
//! characters), a `fileName` a plain name; `GET …/media` answers with
//! `X-Content-Type-Options: nosniff`, `Content-Security-Policy: sandbox`, and
//! `Content-Disposition: attachment` unless the type is a plain image, audio
//! or video, so media a sender declared as `text/html` or `image/svg+xml`
//! never runs as a page of the console's origin.
//!
//! Pure functions of their input: the send path checks with them, the media
//! route serves with them (old records that predate the checks included).

use hyper::header::{HeaderValue, CONTENT_DISPOSITION, CONTENT_TYPE};

use crate::http::response::Resp;

/// Longest `mimetype` accepted (type, subtype and parameters).
pub const MAX_MIMETYPE: usize = 255;
/// Longest `fileName` accepted, in characters.
pub const MAX_FILE_NAME: usize = 255;
/// What a stored type that is not a valid one is served as.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// Image subtypes a browser shows as a picture and never runs (SVG, which
/// can carry script, is not one of them).
const PLAIN_IMAGES: &[&str] = &["png", "jpeg", "jpg", "pjpeg", "gif", "webp", "avif", "bmp", "heic", "heif", "tiff", "x-icon"];

/// A checked media type; exists so the check and the canonical text (what is
/// stored and served) come from one parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaType {
    /// `type/subtype`, lowercased.
    pub essence: String,
    /// `name=value` pairs, names lowercased, values as written (tokens or
    /// quoted strings).
    pub params: Vec<(String, String)>,
}

impl MediaType {
    /// `type/subtype[; name=value]…` — what is stored and served.
    pub fn canonical(&self) -> String {
        let mut out = self.essence.clone();
        for (name, value) in &self.params {
            out.push_str("; ");
            out.push_str(name);
            out.push('=');
            out.push_str(value);
        }
        out
    }

    /// Whether a browser may show it inline: a raster image, or audio or
    /// video that is not an XML or `+suffix` type.
    pub fn is_plain_media(&self) -> bool {
        let (top, sub) = self.essence.split_once('/').unwrap_or(("", ""));
        match top {
            "image" => PLAIN_IMAGES.contains(&sub),
            "audio" | "video" => !sub.contains('+') && !sub.contains("xml"),
            _ => false,
        }
    }
}

/// RFC 6838 §4.2 restricted-name: a letter or digit first, then up to 126 of
/// letters, digits and `! # $ & - ^ _ . +`.
fn restricted_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 127
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(c))
}

/// RFC 9110 token characters.
fn token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
}

/// A quoted string of visible ASCII and spaces, without `"` or `\` inside.
fn simple_quoted(s: &str) -> bool {
    s.len() >= 2
        && s.starts_with('"')
        && s.ends_with('"')
        && s[1..s.len() - 1].bytes().all(|c| (0x20..0x7f).contains(&c) && c != b'"' && c != b'\\')
}

/// Parses a media type; `None` unless it is a valid `type/subtype` with
/// valid parameters and at most [`MAX_MIMETYPE`] bytes.
pub fn parse_mimetype(s: &str) -> Option<MediaType> {
    if s.len() > MAX_MIMETYPE || s.bytes().any(|b| b.is_ascii_control() || !b.is_ascii()) {
        return None;
    }
    let mut parts = s.split(';');
    let (top, sub) = parts.next()?.trim().split_once('/')?;
    if !restricted_name(top) || !restricted_name(sub) {
        return None;
    }
    let mut params = Vec::new();
    for p in parts {
        let (name, value) = p.trim().split_once('=')?;
        if !token(name) || !(token(value) || simple_quoted(value)) {
            return None;
        }
        params.push((name.to_ascii_lowercase(), value.to_owned()));
    }
    Some(MediaType { essence: format!("{}/{}", top.to_ascii_lowercase(), sub.to_ascii_lowercase()), params })
}

/// Why a file name is not a plain one; `None` when it is.
pub fn file_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("must not be empty");
    }
    if name.chars().count() > MAX_FILE_NAME {
        return Some("is too long (at most 255 characters)");
    }
    if name.contains(['/', '\\']) {
        return Some("must be a plain name, without / or \\");
    }
    if name.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        return Some("must not contain control characters");
    }
    if name == "." || name == ".." {
        return Some("must not be . or ..");
    }
    None
}

/// Unicode bidirectional overrides and isolates, which make `txt.exe` look
/// like `exe.txt`.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `attachment`, with the file name when there is one: an ASCII fallback
/// (`filename="…"`, anything unsafe as `_`) and the exact name
/// (`filename*=UTF-8''…`, RFC 6266 / RFC 8187).
pub fn attachment(file_name: Option<&str>) -> String {
    let Some(name) = file_name.filter(|n| !n.is_empty()) else {
        return "attachment".into();
    };
    let fallback: String = name
        .chars()
        .map(|c| if (c.is_ascii_graphic() && c != '"' && c != '\\') || c == ' ' { c } else { '_' })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// Sets the headers of a media answer: the type (canonical, or
/// [`OCTET_STREAM`] when the stored one is not valid), nosniff, the sandbox
/// CSP, and `attachment` unless the type is plain media.
pub fn set_headers(resp: &mut Resp, stored_mimetype: &str, file_name: Option<&str>) {
    let parsed = parse_mimetype(stored_mimetype);
    let content_type = parsed.as_ref().map(MediaType::canonical).unwrap_or_else(|| OCTET_STREAM.into());
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(&content_type).unwrap_or(HeaderValue::from_static(OCTET_STREAM)),
    );
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("content-security-policy", HeaderValue::from_static("sandbox"));
    if !parsed.as_ref().is_some_and(MediaType::is_plain_media) {
        let value = HeaderValue::from_str(&attachment(file_name)).unwrap_or(HeaderValue::from_static("attachment"));
        h.insert(CONTENT_DISPOSITION, value);
    }
}

#[cfg(test)]
#[path = "media_answer_tests.rs"]
mod tests;
