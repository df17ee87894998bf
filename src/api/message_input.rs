//! What a send request may say (CONTRACT §9), checked before anything is
//! stored: the recipient, exactly one body, the type, media (fetched or
//! decoded here, at queue time), mentions, `sendAt`. Every refusal names the
//! field; in a batch the caller adds the item's index.

use serde::Deserialize;
use serde_json::Value;

use super::media_answer::{file_name_problem, parse_mimetype};
use crate::http::{ApiError, ErrorCode};
use crate::messaging::media_fetch::{self, FetchPolicy, MediaError, MAX_MEDIA_BYTES};
use crate::store::message_records::{Contact, Location, MessageType};

/// The longest text or caption accepted (WhatsApp's own limit).
pub const MAX_TEXT_CHARS: usize = 65_536;
/// The furthest ahead `sendAt` may be: 30 days.
pub const MAX_SCHEDULE_MS: i64 = 30 * 86_400_000;

/// One send request as the caller wrote it; `media.data` borrows from the
/// request body when it can (no copy of a 21 MiB base64 string).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SendBody<'a> {
    to: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<String>,
    #[serde(borrow)]
    media: Option<MediaBody<'a>>,
    location: Option<LocationBody>,
    contact: Option<ContactBody>,
    reaction: Option<ReactionBody>,
    reply_to: Option<String>,
    mentions: Option<Vec<String>>,
    send_at: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MediaBody<'a> {
    url: Option<String>,
    #[serde(borrow)]
    data: Option<std::borrow::Cow<'a, str>>,
    mimetype: Option<String>,
    file_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LocationBody {
    latitude: f64,
    longitude: f64,
    name: Option<String>,
    address: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ContactBody {
    name: String,
    phone_number: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ReactionBody {
    message_id: String,
    emoji: String,
}

/// A checked send request, media bytes included.
#[derive(Debug)]
pub struct Outgoing {
    pub chat_id: String,
    pub kind: MessageType,
    pub text: Option<String>,
    /// (bytes, mimetype, file name); the bytes are emptied once staged.
    pub media: Option<(bytes::Bytes, String, Option<String>)>,
    /// The staged blob holding the media, and its size (see
    /// [`crate::store::media`]).
    pub staged: Option<(u128, u64)>,
    /// The media budget charged for a fetched URL's bytes, held until staged.
    pub charge: Option<std::sync::Arc<crate::messaging::media_budget::Charge>>,
    pub location: Option<Location>,
    pub contact: Option<Contact>,
    /// (our id of the target, emoji).
    pub reaction: Option<(String, String)>,
    pub reply_to: Option<String>,
    pub mentions: Vec<String>,
    pub send_at: Option<i64>,
}

fn invalid(field: &str, msg: impl Into<String>) -> ApiError {
    ApiError::invalid(field, msg)
}

/// Normalizes a recipient: phone digits, or a `@s.whatsapp.net`, `@lid` or
/// `@g.us` JID.
pub fn normalize_jid(to: &str, field: &str) -> Result<String, ApiError> {
    let digits = |s: &str| (6..=20).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    let bad = || invalid(field, format!("{field} must be phone digits or a @s.whatsapp.net, @lid or @g.us JID"));
    match to.split_once('@') {
        None if digits(to) => Ok(format!("{to}@s.whatsapp.net")),
        Some((user, "s.whatsapp.net")) if digits(user) => Ok(to.to_string()),
        Some((user, "lid")) if !user.is_empty() && user.len() <= 32 && user.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(to.to_string())
        }
        Some((user, "g.us"))
            if !user.is_empty() && user.len() <= 64 && user.bytes().all(|b| b.is_ascii_digit() || b == b'-') =>
        {
            Ok(to.to_string())
        }
        _ => Err(bad()),
    }
}

fn media_type_of(mimetype: &str) -> MessageType {
    match mimetype.split('/').next().unwrap_or("") {
        "image" => MessageType::Image,
        "video" => MessageType::Video,
        "audio" => MessageType::Audio,
        _ => MessageType::Document,
    }
}

fn media_error(e: MediaError, field: &str) -> ApiError {
    match e {
        MediaError::TooLarge { max } => ApiError::new(ErrorCode::PayloadTooLarge, format!("{field}: media exceeds {} MiB", max >> 20))
            .detail("field", field)
            .detail("maxBytes", max as u64),
        MediaError::Busy => ApiError::new(ErrorCode::RateLimited, format!("{field}: too much media is being fetched at once: retry shortly"))
            .detail("field", field)
            .detail("limit", "media_budget")
            .detail("retryAfterSeconds", 1)
            .header("retry-after", "1"),
        other => invalid(field, format!("{field}: {other}")),
    }
}

/// Parses and checks one send request; fetches its media. `now` is the
/// clock `sendAt` is checked against.
pub async fn parse(v: Value, now: i64, policy: &FetchPolicy) -> Result<Outgoing, ApiError> {
    let body: SendBody<'static> = crate::http::request::from_value(v)?;
    parse_body(body, now, policy).await
}

/// [`parse`] of a body already deserialized (borrowing from the request).
pub async fn parse_body(body: SendBody<'_>, now: i64, policy: &FetchPolicy) -> Result<Outgoing, ApiError> {
    let chat_id = normalize_jid(body.to.trim(), "to")?;
    let given: Vec<&str> = [
        body.media.as_ref().map(|_| "media"),
        body.location.as_ref().map(|_| "location"),
        body.contact.as_ref().map(|_| "contact"),
        body.reaction.as_ref().map(|_| "reaction"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if given.len() > 1 {
        return Err(invalid(given[1], format!("give exactly one of text, media, location, contact, reaction (got {})", given.join(" and "))));
    }
    if body.text.is_some() && given.first().is_some_and(|g| *g != "media") {
        return Err(invalid("text", format!("give exactly one of text, media, location, contact, reaction (got text and {})", given[0])));
    }
    if given.is_empty() && body.text.is_none() {
        return Err(invalid("text", "give exactly one of text, media, location, contact, reaction"));
    }
    if let Some(t) = &body.text {
        if t.chars().count() > MAX_TEXT_CHARS {
            return Err(invalid("text", format!("text is longer than {MAX_TEXT_CHARS} characters")));
        }
        if t.is_empty() && given.is_empty() {
            return Err(invalid("text", "text must not be empty"));
        }
    }
    let declared = match body.kind.as_deref() {
        None => None,
        Some(k) => Some(MessageType::parse(k).filter(|t| *t != MessageType::Unsupported).ok_or_else(|| {
            invalid("type", "type must be one of text, image, video, audio, document, sticker, location, contact, reaction")
        })?),
    };
    let mut out = Outgoing {
        chat_id,
        kind: MessageType::Text,
        text: body.text,
        media: None,
        location: None,
        contact: None,
        reaction: None,
        staged: None,
        charge: None,
        reply_to: body.reply_to,
        mentions: Vec::new(),
        send_at: None,
    };
    if let Some(l) = body.location {
        if !(-90.0..=90.0).contains(&l.latitude) || !(-180.0..=180.0).contains(&l.longitude) {
            return Err(invalid("location", "latitude must be within ±90 and longitude within ±180"));
        }
        out.kind = MessageType::Location;
        out.location = Some(Location { latitude: l.latitude, longitude: l.longitude, name: l.name, address: l.address });
    } else if let Some(c) = body.contact {
        let p = c.phone_number.trim_start_matches('+');
        if c.name.trim().is_empty() || !(6..=20).contains(&p.len()) || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("contact", "contact needs a name and a phoneNumber of 6 to 20 digits"));
        }
        out.kind = MessageType::Contact;
        out.contact = Some(Contact { name: c.name, phone_number: Some(p.to_string()) });
    } else if let Some(r) = body.reaction {
        if r.emoji.chars().count() > 16 {
            return Err(invalid("reaction.emoji", "emoji is one emoji, or \"\" to remove the reaction"));
        }
        out.kind = MessageType::Reaction;
        out.reaction = Some((r.message_id, r.emoji));
    } else if let Some(m) = body.media {
        let (bytes, mime_from, name_from): (bytes::Bytes, _, _) = match (m.url, m.data) {
            (Some(_), Some(_)) => return Err(invalid("media", "give media.url or media.data, not both")),
            (None, None) => return Err(invalid("media", "media needs url or data")),
            (Some(url), None) => {
                let f = media_fetch::fetch(&url, policy).await.map_err(|e| media_error(e, "media.url"))?;
                out.charge = f.charge;
                (f.data, f.mimetype, f.file_name)
            }
            (None, Some(data)) => {
                let (bytes, mime) = media_fetch::decode_base64(&data, MAX_MEDIA_BYTES).map_err(|e| media_error(e, "media.data"))?;
                (bytes.into(), mime, None)
            }
        };
        if bytes.is_empty() {
            return Err(invalid("media", "media is empty"));
        }
        // A declared type must be valid; one the server or a data URL gave
        // counts only when valid (else the caller must declare one).
        let mimetype = match m.mimetype {
            Some(t) => parse_mimetype(&t).ok_or_else(|| {
                invalid("media.mimetype", "media.mimetype must be a valid type/subtype (e.g. image/jpeg), optionally with ; name=value parameters")
            })?,
            None => mime_from
                .as_deref()
                .and_then(parse_mimetype)
                .ok_or_else(|| invalid("media.mimetype", "media.mimetype is required (e.g. image/jpeg)"))?,
        }
        .canonical();
        let file_name = match m.file_name {
            Some(n) => match file_name_problem(&n) {
                Some(why) => return Err(invalid("media.fileName", format!("media.fileName {why}"))),
                None => Some(n),
            },
            // A name taken from the URL is already cleaned; a too long one is dropped.
            None => name_from.filter(|n| file_name_problem(n).is_none()),
        };
        out.kind = media_type_of(&mimetype);
        out.media = Some((bytes, mimetype, file_name));
    }
    if let Some(d) = declared {
        let fits = d == out.kind || (out.media.is_some() && d.is_media());
        if !fits {
            return Err(invalid("type", format!("type {} does not fit the body given ({})", d.as_str(), out.kind.as_str())));
        }
        out.kind = d;
    }
    if let Some(ms) = body.mentions {
        if ms.len() > 256 {
            return Err(invalid("mentions", "at most 256 mentions"));
        }
        out.mentions = ms.iter().map(|m| normalize_jid(m, "mentions")).collect::<Result<_, _>>()?;
    }
    if let Some(at) = body.send_at {
        if at <= now {
            return Err(invalid("sendAt", "sendAt is in the past"));
        }
        if at > now + MAX_SCHEDULE_MS {
            return Err(invalid("sendAt", "sendAt is more than 30 days ahead"));
        }
        out.send_at = Some(at);
    }
    Ok(out)
}
