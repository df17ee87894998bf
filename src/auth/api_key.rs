//! Api-key format: `wa_` + 43 base62 characters (256 random bits) + 6 base62
//! characters of checksum (the first 4 bytes of SHA-256 of the body), as
//! GitHub's tokens do: a typo is refused before any lookup, and secret
//! scanners can recognise the shape. Only the SHA-256 of the whole key is stored.

use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Every api-key starts with this.
pub const PREFIX: &str = "wa_";
const BODY_LEN: usize = 43;
const CHECK_LEN: usize = 6;
/// Total length of a key.
pub const KEY_LEN: usize = PREFIX.len() + BODY_LEN + CHECK_LEN;
/// How many leading characters are kept for display.
pub const DISPLAY_PREFIX_LEN: usize = 12;

/// Encodes big-endian bytes as exactly `width` base62 digits.
fn base62(bytes: &[u8], width: usize) -> String {
    let mut num = bytes.to_vec();
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        let mut rem = 0u32;
        for b in num.iter_mut() {
            let acc = (rem << 8) | u32::from(*b);
            *b = (acc / 62) as u8;
            rem = acc % 62;
        }
        *slot = ALPHABET[rem as usize];
    }
    String::from_utf8(out).unwrap_or_default()
}

fn checksum(body: &str) -> String {
    base62(&digest(&SHA256, body.as_bytes()).as_ref()[..4], CHECK_LEN)
}

/// A freshly generated key: shown once, then only its hash is kept.
pub struct NewKey {
    pub key: String,
    pub hash: [u8; 32],
    pub prefix: String,
}

/// Generates a new random key.
pub fn generate() -> Result<NewKey, ring::error::Unspecified> {
    let mut raw = [0u8; 32];
    SystemRandom::new().fill(&mut raw)?;
    let body = base62(&raw, BODY_LEN);
    let key = format!("{PREFIX}{body}{}", checksum(&body));
    Ok(NewKey { hash: hash(&key), prefix: key[..DISPLAY_PREFIX_LEN].to_string(), key })
}

/// Whether `key` has the api-key shape and a valid checksum (no lookup).
pub fn well_formed(key: &str) -> bool {
    if key.len() != KEY_LEN || !key.starts_with(PREFIX) {
        return false;
    }
    let rest = &key[PREFIX.len()..];
    if !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (body, check) = rest.split_at(BODY_LEN);
    constant_time_eq(checksum(body).as_bytes(), check.as_bytes())
}

/// SHA-256 of the whole key, the only thing stored.
pub fn hash(key: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, key.as_bytes()).as_ref());
    out
}

/// Compares without an early exit.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_well_formed_and_typos_are_caught() {
        let k = generate().expect("rng");
        assert_eq!(k.key.len(), KEY_LEN);
        assert!(k.key.starts_with("wa_"));
        assert!(well_formed(&k.key));
        assert_eq!(k.prefix, &k.key[..12]);
        assert_eq!(k.hash, hash(&k.key));
        // Flip each character of the body: every typo is caught by the checksum.
        let bytes = k.key.as_bytes();
        for i in 3..KEY_LEN {
            let mut typo = bytes.to_vec();
            typo[i] = if typo[i] == b'a' { b'b' } else { b'a' };
            assert!(!well_formed(std::str::from_utf8(&typo).expect("ascii")), "typo at {i}");
        }
        assert!(!well_formed("wa_short"));
        assert!(!well_formed(&k.key.replace("wa_", "xx_")));
    }

    #[test]
    fn base62_is_fixed_width_and_big_endian() {
        assert_eq!(base62(&[0], 3), "000");
        assert_eq!(base62(&[61], 2), "0z");
        assert_eq!(base62(&[1, 0], 3), "048"); // 256 = 4*62 + 8
        assert_eq!(base62(&[0xff; 32], BODY_LEN).len(), BODY_LEN);
    }
}
