//! The one host normalizer of every outbound URL the gateway fetches or posts
//! to (media URLs at send, webhook URLs at create, PATCH and every delivery):
//! a URL's host is read the way a browser reads it (the WHATWG URL standard's
//! host parser), so `2130706433`, `0177.0.0.1`, `0x7f.0.0.1`, `127.1` and
//! `127.0.0.1.` are all the address `127.0.0.1`, and `localhost.` is the name
//! `localhost`. The address checks ([`super::addr`]) then judge that one
//! meaning, not one of its spellings.
//!
//! Not supported (refused as a bad URL): non-ASCII (IDNA) names and IPv6
//! zone identifiers.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A URL host after normalization; exists so callers can tell an address
/// literal (checked as it is) from a name (checked after DNS) without
/// re-parsing text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// An IPv4 address, however it was spelled.
    V4(Ipv4Addr),
    /// An IPv6 address (written in brackets in the URL).
    V6(Ipv6Addr),
    /// A domain name: lowercase ASCII, percent-decoded, without its trailing
    /// dot (`example.com.` and `example.com` are one host).
    Name(String),
}

impl Host {
    /// The address, when the host is a literal one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::V4(a) => Some(IpAddr::V4(*a)),
            Host::V6(a) => Some(IpAddr::V6(*a)),
            Host::Name(_) => None,
        }
    }

    /// Whether this is `localhost` or a name under `.localhost` (RFC 6761:
    /// always loopback, whatever DNS says).
    pub fn is_localhost(&self) -> bool {
        matches!(self, Host::Name(n) if n == "localhost" || n.ends_with(".localhost"))
    }

    /// The host as it goes into a URL authority or a `Host` header
    /// (IPv6 in brackets).
    pub fn authority_form(&self) -> String {
        match self {
            Host::V6(a) => format!("[{a}]"),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for Host {
    /// The canonical text: dotted-decimal IPv4, RFC 5952 IPv6 (no brackets),
    /// or the normalized name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "{a}"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

/// Normalizes the host part of a URL authority (`[v6]` with its brackets,
/// anything else as written). The error says why the host is not one.
pub fn normalize(raw: &str) -> Result<Host, String> {
    if let Some(inner) = raw.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or("an unclosed [ in the host")?;
        return inner
            .parse::<Ipv6Addr>()
            .map(Host::V6)
            .map_err(|_| format!("[{inner}] is not an IPv6 address"));
    }
    let decoded = percent_decode(raw).ok_or("the host has a bad percent-escape")?;
    if decoded.is_empty() {
        return Err("no host".into());
    }
    if !decoded.is_ascii() {
        return Err("non-ASCII host names are not supported".into());
    }
    if let Some(c) = decoded.bytes().find(|&b| forbidden_domain_byte(b)) {
        return Err(format!("the host has a forbidden character {:?}", c as char));
    }
    let lower = decoded.to_ascii_lowercase();
    if ends_in_a_number(&lower) {
        return parse_ipv4(&lower).map(Host::V4).ok_or_else(|| format!("{lower} is not an IPv4 address"));
    }
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    if name.is_empty() || name.starts_with('.') || name.contains("..") {
        return Err(format!("{lower} is not a host name"));
    }
    Ok(Host::Name(name.to_owned()))
}

/// WHATWG "forbidden domain code point" (ASCII part): controls, space, DEL
/// and `# % / : < > ? @ [ \ ] ^ |`.
fn forbidden_domain_byte(b: u8) -> bool {
    b <= 0x20 || b == 0x7f || b"#%/:<>?@[\\]^|".contains(&b)
}

/// WHATWG "ends in a number checker": whether the last label (ignoring one
/// trailing dot) is all digits or parses as an IPv4 number (`0x…`).
fn ends_in_a_number(host: &str) -> bool {
    let mut parts: Vec<&str> = host.split('.').collect();
    if parts.last() == Some(&"") {
        if parts.len() == 1 {
            return false;
        }
        parts.pop();
    }
    match parts.last() {
        Some(last) if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) => true,
        Some(last) => parse_ipv4_number(last).is_some(),
        None => false,
    }
}

/// WHATWG "IPv4 parser": one to four dot-separated numbers (decimal, `0`-
/// prefixed octal or `0x`-prefixed hex), the last filling the remaining bytes.
pub fn parse_ipv4(host: &str) -> Option<Ipv4Addr> {
    let mut parts: Vec<&str> = host.split('.').collect();
    if parts.last() == Some(&"") && parts.len() > 1 {
        parts.pop();
    }
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let numbers: Vec<u64> = parts.iter().map(|p| parse_ipv4_number(p)).collect::<Option<_>>()?;
    let (last, init) = numbers.split_last()?;
    if init.iter().any(|&n| n > 255) {
        return None;
    }
    let room = 5 - numbers.len() as u32; // bytes the last number fills
    if *last >= 256u64.pow(room) {
        return None;
    }
    let mut value = *last;
    for (i, n) in init.iter().enumerate() {
        value += n << (8 * (3 - i as u32));
    }
    u32::try_from(value).ok().map(Ipv4Addr::from)
}

/// WHATWG "IPv4 number parser"; `None` on failure (values are capped well
/// above 2^32 so a long digit string cannot overflow).
fn parse_ipv4_number(part: &str) -> Option<u64> {
    if part.is_empty() {
        return None;
    }
    let (digits, radix) = if let Some(h) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
        (h, 16)
    } else if part.len() > 1 && part.starts_with('0') {
        (&part[1..], 8)
    } else {
        (part, 10)
    };
    if digits.is_empty() {
        return Some(0);
    }
    let mut value: u64 = 0;
    for c in digits.chars() {
        let d = c.to_digit(radix)? as u64;
        value = value.saturating_mul(radix as u64).saturating_add(d).min(1 << 40);
    }
    Some(value)
}

/// Decodes `%XX` escapes; `None` when one is malformed or the result is not
/// UTF-8 (also the directory's path segments, `api::directory`).
pub fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_owned());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
#[path = "host_tests.rs"]
mod tests;
