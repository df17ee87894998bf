//! A tiny JSON writer for the hot list pages: appends to one buffer with no
//! intermediate values. Strings take a copy-through fast path when nothing
//! needs escaping and fall back to serde_json's escaper otherwise, so the
//! output is always exactly what serde_json would produce.

/// Appends a JSON string (quoted, escaped).
pub fn string(out: &mut Vec<u8>, s: &str) {
    bytes_as_string(out, s.as_bytes());
}

/// Appends stored text as a JSON string. Printable ASCII without `"` or `\`
/// (nearly every id, label and number) is copied through in one pass; anything
/// else is validated as UTF-8 (invalid bytes become U+FFFD) and escaped by serde_json.
pub fn bytes_as_string(out: &mut Vec<u8>, s: &[u8]) {
    // Branch-free over the whole slice, so the compiler can vectorize it.
    let plain = s.iter().fold(true, |ok, &b| ok & (0x20..0x7f).contains(&b) & (b != b'"') & (b != b'\\'));
    if plain {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s);
        out.push(b'"');
    } else {
        // Writing a &str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &String::from_utf8_lossy(s));
    }
}

/// Appends stored text as a JSON string, or `null`.
pub fn opt_bytes_as_string(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => bytes_as_string(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// Appends an integer.
pub fn int(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends an integer or `null`.
pub fn opt_int(out: &mut Vec<u8>, n: Option<i64>) {
    match n {
        Some(n) => int(out, n),
        None => out.extend_from_slice(b"null"),
    }
}

/// Appends `true` or `false`.
pub fn bool(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_match_serde_json_exactly() {
        for s in ["", "plain", "quote\"d", "back\\slash", "tab\there", "nl\n", "\u{1}", "é ünï 😀", "</script>"] {
            let mut out = Vec::new();
            string(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).expect("json"), "{s:?}");
        }
        let mut out = Vec::new();
        int(&mut out, -42i64);
        out.push(b' ');
        opt_int(&mut out, None);
        out.push(b' ');
        bool(&mut out, true);
        opt_bytes_as_string(&mut out, None);
        assert_eq!(out, b"-42 null truenull");
        let mut out = Vec::new();
        bytes_as_string(&mut out, b"bad \xff utf8");
        assert_eq!(out, "\"bad \u{fffd} utf8\"".as_bytes(), "invalid UTF-8 is replaced, never passed through");
    }
}
