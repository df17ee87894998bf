//! Tests of [`super`]: the type and name rules, the served headers.

use super::*;

#[test]
fn valid_types_and_their_canonical_text() {
    for (raw, canonical) in [
        ("image/png", "image/png"),
        ("Image/PNG", "image/png"),
        ("audio/ogg; codecs=opus", "audio/ogg; codecs=opus"),
        ("audio/ogg;codecs=opus", "audio/ogg; codecs=opus"),
        ("text/plain; charset=\"utf-8\"", "text/plain; charset=\"utf-8\""),
        ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("image/svg+xml", "image/svg+xml"),
    ] {
        assert_eq!(parse_mimetype(raw).map(|m| m.canonical()).as_deref(), Some(canonical), "{raw}");
    }
}

#[test]
fn invalid_types_are_refused() {
    for raw in [
        "",
        "image",
        "image/",
        "/png",
        "image/png\r\nX-Evil: 1",
        "image/png\n",
        "text/html\u{0}",
        "image/p ng",
        "image/png; charset",
        "image/png; a=\"b\"c\"",
        "image/png; a=\"b\\\"",
        "ima<ge/png",
        "image/pñg",
        "a/b/c",
    ] {
        assert_eq!(parse_mimetype(raw), None, "{raw:?}");
    }
    assert_eq!(parse_mimetype(&format!("image/{}", "a".repeat(300))), None);
}

#[test]
fn plain_media_is_raster_images_audio_and_video_only() {
    for (raw, plain) in [
        ("image/png", true),
        ("image/jpeg", true),
        ("image/webp", true),
        ("audio/ogg; codecs=opus", true),
        ("video/mp4", true),
        ("image/svg+xml", false),
        ("text/html", false),
        ("application/xhtml+xml", false),
        ("text/xml", false),
        ("application/pdf", false),
        ("video/vnd.x+xml", false),
        ("image/x-unknown", false),
    ] {
        assert_eq!(parse_mimetype(raw).map(|m| m.is_plain_media()), Some(plain), "{raw}");
    }
}

#[test]
fn file_names_must_be_plain() {
    for ok in ["a.txt", "report v1.pdf", "€.txt", ".hidden", "..."] {
        assert_eq!(file_name_problem(ok), None, "{ok}");
    }
    for bad in ["", ".", "..", "a/b", "..\\x", "../etc/passwd", "a\r\nb", "a\tb", "a\u{7f}", "a\u{85}b", "gpj.\u{202e}exe", &"x".repeat(256)] {
        assert!(file_name_problem(bad).is_some(), "{bad:?}");
    }
}

#[test]
fn attachment_names_are_quoted_and_encoded() {
    assert_eq!(attachment(None), "attachment");
    assert_eq!(attachment(Some("a.txt")), "attachment; filename=\"a.txt\"; filename*=UTF-8''a.txt");
    assert_eq!(
        attachment(Some("r\"e\\p ort€.pdf")),
        "attachment; filename=\"r_e_p ort_.pdf\"; filename*=UTF-8''r%22e%5Cp%20ort%E2%82%AC.pdf"
    );
    // An old record with CR/LF in its name still gives a valid header value.
    assert!(HeaderValue::from_str(&attachment(Some("a\r\nSet-Cookie: x"))).is_ok());
}

#[test]
fn served_headers() {
    let serve = |mime: &str, name: Option<&str>| {
        let mut r = crate::http::response::bytes(200, OCTET_STREAM, "x");
        set_headers(&mut r, mime, name);
        let get = |h: &str| r.headers().get(h).and_then(|v| v.to_str().ok()).map(str::to_owned);
        (get("content-type"), get("content-disposition"), get("x-content-type-options"), get("content-security-policy"))
    };
    let nosniff = Some("nosniff".to_string());
    let sandbox = Some("sandbox".to_string());
    assert_eq!(serve("image/png", None), (Some("image/png".into()), None, nosniff.clone(), sandbox.clone()));
    assert_eq!(serve("text/html", Some("x.html")).1.as_deref(), Some("attachment; filename=\"x.html\"; filename*=UTF-8''x.html"));
    assert_eq!(serve("image/svg+xml", None).1.as_deref(), Some("attachment"));
    assert_eq!(serve("text/html\r\nX: y", None).0.as_deref(), Some(OCTET_STREAM));
    assert_eq!(serve("nonsense", None), (Some(OCTET_STREAM.into()), Some("attachment".into()), nosniff, sandbox));
}
