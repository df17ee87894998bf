//! The `media_ref` this engine hands out with inbound media, and reads back
//! in [`Connection::download`](crate::engine::Connection::download).
//!
//! It holds exactly what the crate needs to fetch and decrypt a file from
//! WhatsApp's CDN (direct path, keys, hashes, length), not the whole protobuf
//! sub-message (thumbnails would bloat every stored message). Encoding: one
//! version byte, then the fields in postcard. The media kind is stored as the
//! engine's own byte, so reordering [`MediaKind`] never breaks stored refs.

use serde::{Deserialize, Serialize};
use whatsapp_rust::download::{Downloadable, MediaType};
use whatsapp_rust::waproto::whatsapp as wa;

use crate::engine::MediaKind;

/// The first byte of an encoded ref.
const VERSION: u8 = 1;

/// Where a received file lives and how to decrypt it: the decoded form of an
/// inbound message's `media_ref`, downloadable by the crate's `Client::download`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct MediaRef {
    /// The engine's byte for the media kind (see [`kind_byte`]).
    kind: u8,
    pub direct_path: String,
    /// Absent for unencrypted (channel) media.
    pub media_key: Option<Vec<u8>>,
    pub file_sha256: Option<Vec<u8>>,
    pub file_enc_sha256: Option<Vec<u8>>,
    pub file_length: Option<u64>,
    /// A ready CDN URL (channel media) used instead of the direct path.
    pub static_url: Option<String>,
}

fn kind_byte(kind: MediaKind) -> u8 {
    match kind {
        MediaKind::Image => 1,
        MediaKind::Video => 2,
        MediaKind::Audio => 3,
        MediaKind::Document => 4,
        MediaKind::Sticker => 5,
    }
}

fn kind_of(byte: u8) -> Option<MediaKind> {
    Some(match byte {
        1 => MediaKind::Image,
        2 => MediaKind::Video,
        3 => MediaKind::Audio,
        4 => MediaKind::Document,
        5 => MediaKind::Sticker,
        _ => return None,
    })
}

/// The crate's media type (it picks the decryption keys and CDN path) for a kind.
pub(super) fn media_type(kind: MediaKind) -> MediaType {
    match kind {
        MediaKind::Image => MediaType::Image,
        MediaKind::Video => MediaType::Video,
        MediaKind::Audio => MediaType::Audio,
        MediaKind::Document => MediaType::Document,
        MediaKind::Sticker => MediaType::Sticker,
    }
}

impl MediaRef {
    /// The ref of any downloadable media sub-message, or `None` without a
    /// place to fetch it from.
    pub(super) fn of(kind: MediaKind, media: &dyn Downloadable) -> Option<MediaRef> {
        let direct_path = media.direct_path().unwrap_or_default().to_string();
        let static_url = media.static_url().map(str::to_string);
        if direct_path.is_empty() && static_url.is_none() {
            return None;
        }
        Some(MediaRef {
            kind: kind_byte(kind),
            direct_path,
            media_key: media.media_key().map(<[u8]>::to_vec),
            file_sha256: media.file_sha256().map(<[u8]>::to_vec),
            file_enc_sha256: media.file_enc_sha256().map(<[u8]>::to_vec),
            file_length: media.file_length(),
            static_url,
        })
    }

    /// The media kind the ref was made for.
    pub(super) fn kind(&self) -> Option<MediaKind> {
        kind_of(self.kind)
    }

    /// The bytes stored with the message.
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION];
        // Serialising owned strings and byte vectors into a Vec cannot fail.
        if let Ok(body) = postcard::to_stdvec(self) {
            out.extend_from_slice(&body);
        }
        out
    }

    /// Reads back [`MediaRef::encode`]'s bytes.
    pub(super) fn decode(bytes: &[u8]) -> Result<MediaRef, String> {
        let Some((&version, body)) = bytes.split_first() else {
            return Err("empty media reference".into());
        };
        if version != VERSION {
            return Err(format!("unknown media reference version {version}"));
        }
        let r: MediaRef = postcard::from_bytes(body).map_err(|e| format!("malformed media reference: {e}"))?;
        if r.kind().is_none() {
            return Err(format!("unknown media kind {} in media reference", r.kind));
        }
        Ok(r)
    }
}

impl Downloadable for MediaRef {
    fn direct_path(&self) -> Option<&str> {
        Some(&self.direct_path).filter(|p| !p.is_empty()).map(String::as_str)
    }
    fn media_key(&self) -> Option<&[u8]> {
        self.media_key.as_deref()
    }
    fn file_enc_sha256(&self) -> Option<&[u8]> {
        self.file_enc_sha256.as_deref()
    }
    fn file_sha256(&self) -> Option<&[u8]> {
        self.file_sha256.as_deref()
    }
    fn file_length(&self) -> Option<u64> {
        self.file_length
    }
    fn app_info(&self) -> MediaType {
        media_type(self.kind().unwrap_or(MediaKind::Document))
    }
    fn static_url(&self) -> Option<&str> {
        self.static_url.as_deref()
    }
}

/// The media sub-message of a (base) message, with its kind.
pub(super) fn media_of(msg: &wa::Message) -> Option<(MediaKind, &dyn Downloadable)> {
    if let Some(m) = msg.image_message.as_option() {
        return Some((MediaKind::Image, m));
    }
    if let Some(m) = msg.video_message.as_option() {
        return Some((MediaKind::Video, m));
    }
    if let Some(m) = msg.audio_message.as_option() {
        return Some((MediaKind::Audio, m));
    }
    if let Some(m) = msg.document_message.as_option() {
        return Some((MediaKind::Document, m));
    }
    if let Some(m) = msg.sticker_message.as_option() {
        return Some((MediaKind::Sticker, m));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use whatsapp_rust::waproto::buffa::MessageField;

    fn image() -> wa::Message {
        wa::Message {
            image_message: MessageField::some(wa::message::ImageMessage {
                direct_path: Some("/v/t62.7118-24/abc".into()),
                media_key: Some(vec![7; 32]),
                file_sha256: Some(vec![1; 32]),
                file_enc_sha256: Some(vec![2; 32]),
                file_length: Some(4096),
                mimetype: Some("image/jpeg".into()),
                jpeg_thumbnail: Some(vec![9; 500]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn media_ref_round_trips_and_downloads_as_the_original() {
        let msg = image();
        let (kind, media) = media_of(&msg).expect("an image");
        assert_eq!(kind, MediaKind::Image);
        let r = MediaRef::of(kind, media).expect("a ref");
        let bytes = r.encode();
        assert_eq!(bytes[0], VERSION);
        assert!(bytes.len() < 200, "no thumbnail in the ref ({} bytes)", bytes.len());
        let back = MediaRef::decode(&bytes).expect("decodes");
        assert_eq!(back, r);
        assert_eq!(back.kind(), Some(MediaKind::Image));
        // What the crate's download reads is what the message carried.
        assert_eq!(back.direct_path(), Some("/v/t62.7118-24/abc"));
        assert_eq!(back.media_key(), Some(&[7u8; 32][..]));
        assert_eq!(back.file_sha256(), Some(&[1u8; 32][..]));
        assert_eq!(back.file_enc_sha256(), Some(&[2u8; 32][..]));
        assert_eq!(back.file_length(), Some(4096));
        assert_eq!(back.app_info(), MediaType::Image);
        assert_eq!(back.static_url(), None);
    }

    #[test]
    fn every_kind_keeps_its_media_type() {
        for kind in [MediaKind::Image, MediaKind::Video, MediaKind::Audio, MediaKind::Document, MediaKind::Sticker] {
            let r = MediaRef {
                kind: kind_byte(kind),
                direct_path: "/d".into(),
                media_key: None,
                file_sha256: None,
                file_enc_sha256: None,
                file_length: None,
                static_url: Some("https://mmg.whatsapp.net/x".into()),
            };
            let back = MediaRef::decode(&r.encode()).expect("decodes");
            assert_eq!(back.kind(), Some(kind));
            assert_eq!(back.app_info(), media_type(kind));
            assert_eq!(back.static_url(), Some("https://mmg.whatsapp.net/x"));
            assert!(!back.is_encrypted());
        }
    }

    #[test]
    fn bad_refs_are_refused() {
        assert!(MediaRef::decode(&[]).is_err());
        assert!(MediaRef::decode(&[2, 0, 0]).is_err());
        assert!(MediaRef::decode(&[VERSION, 0xff]).is_err());
        let mut bad_kind =
            MediaRef::of(MediaKind::Image, image().image_message.as_option().expect("image")).expect("a ref");
        bad_kind.kind = 42;
        assert!(MediaRef::decode(&bad_kind.encode()).is_err());
    }

    #[test]
    fn media_without_a_location_has_no_ref() {
        let empty = wa::message::StickerMessage::default();
        assert!(MediaRef::of(MediaKind::Sticker, &empty).is_none());
    }
}
