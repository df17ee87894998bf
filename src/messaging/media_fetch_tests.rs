//! Tests of [`super`]: a raw-TCP server on 127.0.0.1 only.

use super::*;
use std::net::IpAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A raw-TCP HTTP/1.1 server on 127.0.0.1 answering by path; returns the port.
async fn serve() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(handle(stream, port));
        }
    });
    port
}

async fn handle(mut stream: TcpStream, port: u16) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        head.extend_from_slice(&buf[..n]);
        if head.first() == Some(&0x16) {
            // A TLS ClientHello: this server speaks plain HTTP only.
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            return;
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
    let host = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("host: ")
                .or_else(|| l.strip_prefix("Host: "))
        })
        .unwrap_or("")
        .to_owned();

    let redirect = |to: String| {
        format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .into_bytes()
    };
    let ok = |ctype: &str, body: &str| {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    let response: Vec<u8> = match path.as_str() {
        "/files/report%20v1.pdf" => ok("Application/PDF; charset=binary", "hello pdf"),
        "/files/a.txt" => ok("text/plain", "target"),
        "/host" => ok("text/plain", &host),
        "/dir/" => ok("text/plain", "dir"),
        "/big" => ok("application/octet-stream", &"x".repeat(1000)),
        "/chunked" => {
            let mut r = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
            for _ in 0..10 {
                r.extend_from_slice(b"8\r\n12345678\r\n");
            }
            r.extend_from_slice(b"0\r\n\r\n");
            r
        }
        "/redirect" => redirect("/files/a.txt".into()),
        "/redirect-relative/x" => redirect("../files/a.txt".into()),
        "/redirect-abs" => redirect(format!("http://127.0.0.1:{port}/files/a.txt")),
        "/redirect-offhost" => redirect(format!("http://localhost:{port}/files/a.txt")),
        "/redirect-ftp" => redirect("ftp://127.0.0.1/x".into()),
        "/redirect-otherport" => redirect(format!("http://127.0.0.1:{}/files/a.txt", port.wrapping_add(1))),
        "/loop" => redirect("/loop".into()),
        "/r1" => redirect("/r2".into()),
        "/r2" => redirect("/r3".into()),
        "/r3" => redirect("/files/a.txt".into()),
        "/missing" => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            return;
        }
        _ => b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
    };
    let _ = stream.write_all(&response).await;
    let _ = stream.shutdown().await;
}

fn private_ok() -> FetchPolicy {
    FetchPolicy {
        allow_private: true,
        ..FetchPolicy::default()
    }
}

#[tokio::test]
async fn fetch_returns_bytes_type_and_name() {
    let port = serve().await;
    let got = fetch(
        &format!("http://127.0.0.1:{port}/files/report%20v1.pdf"),
        &private_ok(),
    )
    .await
    .unwrap();
    assert_eq!(&got.data[..], b"hello pdf");
    assert_eq!(got.mimetype.as_deref(), Some("application/pdf"));
    assert_eq!(got.file_name.as_deref(), Some("report v1.pdf"));
}

#[tokio::test]
async fn host_header_is_the_original_authority() {
    let port = serve().await;
    let got = fetch(&format!("http://127.0.0.1:{port}/host"), &private_ok())
        .await
        .unwrap();
    assert_eq!(&got.data[..], format!("127.0.0.1:{port}").as_bytes());
    assert_eq!(got.file_name.as_deref(), Some("host"));
    let got = fetch(&format!("http://localhost:{port}/host"), &private_ok())
        .await
        .unwrap();
    assert_eq!(&got.data[..], format!("localhost:{port}").as_bytes());
}

#[tokio::test]
async fn path_without_last_segment_has_no_file_name() {
    let port = serve().await;
    let got = fetch(&format!("http://127.0.0.1:{port}/dir/"), &private_ok())
        .await
        .unwrap();
    assert_eq!(&got.data[..], b"dir");
    assert_eq!(got.file_name, None);
}

#[tokio::test]
async fn private_address_refused_by_default() {
    let port = serve().await;
    let url = format!("http://127.0.0.1:{port}/files/report%20v1.pdf");
    let err = fetch(&url, &FetchPolicy::default()).await.unwrap_err();
    assert!(matches!(err, MediaError::PrivateAddress(_)), "{err:?}");
    // A name resolving to loopback is refused the same way.
    let url = format!("http://localhost:{port}/files/a.txt");
    let err = fetch(&url, &FetchPolicy::default()).await.unwrap_err();
    assert!(matches!(err, MediaError::PrivateAddress(_)), "{err:?}");
    // IPv4-mapped IPv6 literal of loopback.
    let err = fetch(
        &format!("http://[::ffff:127.0.0.1]:{port}/"),
        &FetchPolicy::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, MediaError::PrivateAddress(_)), "{err:?}");
}

#[tokio::test]
async fn content_length_over_max_is_too_large() {
    let port = serve().await;
    let policy = FetchPolicy {
        max_bytes: 100,
        ..private_ok()
    };
    let err = fetch(&format!("http://127.0.0.1:{port}/big"), &policy)
        .await
        .unwrap_err();
    assert!(matches!(err, MediaError::TooLarge { max: 100 }), "{err:?}");
}

#[tokio::test]
async fn chunked_body_over_max_is_too_large() {
    let port = serve().await;
    let policy = FetchPolicy {
        max_bytes: 20,
        ..private_ok()
    };
    let err = fetch(&format!("http://127.0.0.1:{port}/chunked"), &policy)
        .await
        .unwrap_err();
    assert!(matches!(err, MediaError::TooLarge { max: 20 }), "{err:?}");
    // Under a large enough cap the same body is read in full.
    let policy = FetchPolicy {
        max_bytes: 80,
        ..private_ok()
    };
    let got = fetch(&format!("http://127.0.0.1:{port}/chunked"), &policy)
        .await
        .unwrap();
    assert_eq!(got.data.len(), 80);
}

#[tokio::test]
async fn same_host_redirects_are_followed() {
    let port = serve().await;
    for path in ["/redirect", "/redirect-abs", "/redirect-relative/x", "/r1"] {
        let got = fetch(&format!("http://127.0.0.1:{port}{path}"), &private_ok())
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(&got.data[..], b"target", "{path}");
        assert_eq!(got.file_name.as_deref(), Some("a.txt"), "{path}");
        assert_eq!(got.mimetype.as_deref(), Some("text/plain"), "{path}");
    }
}

#[tokio::test]
async fn redirect_to_another_host_is_refused() {
    let port = serve().await;
    let err = fetch(
        &format!("http://127.0.0.1:{port}/redirect-offhost"),
        &private_ok(),
    )
    .await
    .unwrap_err();
    match err {
        MediaError::Fetch(m) => assert!(m.contains("localhost"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn redirect_to_non_http_is_a_fetch_error() {
    let port = serve().await;
    let err = fetch(
        &format!("http://127.0.0.1:{port}/redirect-ftp"),
        &private_ok(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, MediaError::Fetch(_)), "{err:?}");
}

#[tokio::test]
async fn too_many_redirects() {
    let port = serve().await;
    let err = fetch(&format!("http://127.0.0.1:{port}/loop"), &private_ok())
        .await
        .unwrap_err();
    match err {
        MediaError::Fetch(m) => assert!(m.contains("too many redirects"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn non_2xx_is_a_fetch_error() {
    let port = serve().await;
    let err = fetch(&format!("http://127.0.0.1:{port}/missing"), &private_ok())
        .await
        .unwrap_err();
    match err {
        MediaError::Fetch(m) => assert!(m.contains("404"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn total_timeout_applies() {
    let port = serve().await;
    let policy = FetchPolicy {
        total_timeout: Duration::from_millis(300),
        ..private_ok()
    };
    let err = fetch(&format!("http://127.0.0.1:{port}/slow"), &policy)
        .await
        .unwrap_err();
    match err {
        MediaError::Fetch(m) => assert!(m.contains("timed out"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn https_to_a_plain_http_server_fails_in_tls() {
    let port = serve().await;
    for host in ["127.0.0.1", "localhost"] {
        let policy = FetchPolicy {
            total_timeout: Duration::from_secs(10),
            ..private_ok()
        };
        let err = fetch(&format!("https://{host}:{port}/files/a.txt"), &policy)
            .await
            .unwrap_err();
        match err {
            MediaError::Fetch(m) => assert!(!m.contains("timed out"), "{host}: {m}"),
            other => panic!("{host}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn connection_refused_is_a_fetch_error() {
    // Bind then drop to get a port nobody listens on.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let err = fetch(&format!("http://127.0.0.1:{port}/"), &private_ok())
        .await
        .unwrap_err();
    assert!(matches!(err, MediaError::Fetch(_)), "{err:?}");
}

#[tokio::test]
async fn bad_urls() {
    for url in [
        "ftp://127.0.0.1/file",
        "file:///etc/passwd",
        "/relative/path",
        "",
        "http://user:pass@127.0.0.1/x",
        "http:///nohost",
        "not a url",
        "http://127.0.0.1:0/x",
    ] {
        let err = fetch(url, &private_ok()).await.unwrap_err();
        assert!(matches!(err, MediaError::BadUrl(_)), "{url}: {err:?}");
    }
}

#[test]
fn parse_url_parts() {
    let t = parse_url("HTTPS://Example.COM/a/b.png?x=1#frag").unwrap();
    assert!(t.https);
    assert_eq!(t.host, "example.com");
    assert_eq!(t.port, 443);
    assert_eq!(t.authority, "Example.COM");
    let t = parse_url("http://[::1]:8080/").unwrap();
    assert_eq!(t.host, "::1");
    assert_eq!(t.port, 8080);
    assert_eq!(t.authority, "[::1]:8080");
}

#[test]
fn location_resolution() {
    let base: Uri = "http://h:81/a/b/c?q=1".parse().unwrap();
    assert_eq!(resolve_location(&base, false, "/x"), "http://h:81/x");
    assert_eq!(resolve_location(&base, false, "d"), "http://h:81/a/b/d");
    assert_eq!(resolve_location(&base, false, "?z"), "http://h:81/a/b/c?z");
    assert_eq!(
        resolve_location(&base, false, "//other/x"),
        "http://other/x"
    );
    assert_eq!(
        resolve_location(&base, false, "https://h/y#f"),
        "https://h/y"
    );
    assert_eq!(
        resolve_location(&base, false, "../x?k=v"),
        "http://h:81/a/x?k=v"
    );
    assert_eq!(resolve_location(&base, false, "./x"), "http://h:81/a/b/x");
    assert_eq!(
        resolve_location(&base, false, "../../../../x"),
        "http://h:81/x"
    );
    assert_eq!(resolve_location(&base, false, ".."), "http://h:81/a/");
}

#[test]
fn redirect_rules() {
    let from = parse_url("http://example.com/a").unwrap();
    assert!(redirect_target(&from, "http://EXAMPLE.com./b").is_ok());
    assert!(redirect_target(&from, "http://example.com:80/b").is_ok());
    // Same origin only: not even an upgrade to https, nor another port.
    assert!(matches!(
        redirect_target(&from, "https://example.com/b"),
        Err(MediaError::Fetch(_))
    ));
    assert!(matches!(
        redirect_target(&from, "http://example.com:8080/b"),
        Err(MediaError::Fetch(_))
    ));
    assert!(matches!(
        redirect_target(&from, "http://evil.test/b"),
        Err(MediaError::Fetch(_))
    ));
    let from = parse_url("https://example.com/a").unwrap();
    assert!(matches!(
        redirect_target(&from, "http://example.com/b"),
        Err(MediaError::Fetch(_))
    ));
}

#[test]
fn file_names() {
    assert_eq!(file_name_of("/a/b%20c.jpg").as_deref(), Some("b c.jpg"));
    assert_eq!(file_name_of("/a/%E2%82%AC.txt").as_deref(), Some("€.txt"));
    assert_eq!(
        file_name_of("/a/..%2Fetc%2Fpasswd").as_deref(),
        Some(".._etc_passwd")
    );
    assert_eq!(file_name_of("/a/bad%zz%4").as_deref(), Some("bad%zz%4"));
    assert_eq!(file_name_of("/a/"), None);
    assert_eq!(file_name_of("/"), None);
    assert_eq!(file_name_of("/a/.."), None);
}

#[test]
fn is_public_table() {
    for (ip, public) in [
        ("10.0.0.1", false),
        ("172.16.0.1", false),
        ("172.31.255.255", false),
        ("192.168.1.1", false),
        ("127.0.0.1", false),
        ("169.254.1.1", false),
        ("::1", false),
        ("::", false),
        ("fe80::1", false),
        ("fc00::1", false),
        ("fd12:3456::1", false),
        ("::ffff:127.0.0.1", false),
        ("::ffff:10.1.2.3", false),
        ("100.64.0.1", false),
        ("0.0.0.0", false),
        ("0.1.2.3", false),
        ("255.255.255.255", false),
        ("224.0.0.1", false),
        ("ff02::1", false),
        ("192.0.2.1", false),
        ("198.51.100.1", false),
        ("203.0.113.1", false),
        ("198.18.0.1", false),
        ("2001:db8::1", false),
        ("64:ff9b::7f00:1", false),
        ("2002:7f00:1::1", false),
        ("2001::1", false),
        ("8.8.8.8", true),
        ("1.1.1.1", true),
        ("172.32.0.1", true),
        ("100.128.0.1", true),
        ("::ffff:8.8.8.8", true),
        ("64:ff9b::808:808", true),
        ("2606:4700::1111", true),
        ("2a00:1450:4001::1", true),
    ] {
        let parsed: IpAddr = ip.parse().unwrap();
        assert_eq!(is_public(parsed), public, "{ip}");
    }
}

#[test]
fn base64_valid_forms() {
    let (d, m) = decode_base64("aGVsbG8=", 100).unwrap();
    assert_eq!((d.as_slice(), m), (&b"hello"[..], None));
    let (d, _) = decode_base64("aGVsbG8", 100).unwrap();
    assert_eq!(d, b"hello");
    // base64url: bytes 0xfb 0xff encode as "-_8" (standard "+/8").
    let (d, _) = decode_base64("-_8", 100).unwrap();
    assert_eq!(d, [0xfb, 0xff]);
    let (d, _) = decode_base64("+/8=", 100).unwrap();
    assert_eq!(d, [0xfb, 0xff]);
    // Line-wrapped.
    let (d, _) = decode_base64("aGVs\r\nbG8=\n", 100).unwrap();
    assert_eq!(d, b"hello");
    let (d, _) = decode_base64("", 100).unwrap();
    assert!(d.is_empty());
}

#[test]
fn base64_data_url() {
    let (d, m) = decode_base64("data:image/PNG;base64,aGVsbG8=", 100).unwrap();
    assert_eq!(d, b"hello");
    assert_eq!(m.as_deref(), Some("image/png"));
    let (d, m) = decode_base64("DATA:text/plain;charset=utf-8;base64,aGVsbG8", 100).unwrap();
    assert_eq!(d, b"hello");
    assert_eq!(m.as_deref(), Some("text/plain"));
    let (_, m) = decode_base64("data:;base64,aGVsbG8=", 100).unwrap();
    assert_eq!(m, None);
    // A data URL that is not base64-encoded.
    assert!(matches!(
        decode_base64("data:text/plain,hello", 100),
        Err(MediaError::BadBase64)
    ));
    assert!(matches!(
        decode_base64("data:text/plain;base64", 100),
        Err(MediaError::BadBase64)
    ));
}

#[test]
fn base64_invalid() {
    for bad in ["!!!!", "aGVsbG8===", "a", "aGV sbG8*", "+-ab"] {
        assert!(
            matches!(decode_base64(bad, 100), Err(MediaError::BadBase64)),
            "{bad}"
        );
    }
}

#[test]
fn base64_oversize() {
    // 8 chars → 6 bytes; 7 chars + '=' → 5 bytes.
    assert!(matches!(
        decode_base64("AAAAAAAA", 5),
        Err(MediaError::TooLarge { max: 5 })
    ));
    assert!(decode_base64("aGVsbG8=", 5).is_ok());
    assert!(matches!(
        decode_base64("aGVsbG8=", 4),
        Err(MediaError::TooLarge { max: 4 })
    ));
    // A huge string is refused on length alone (it is not even valid base64).
    let huge = "!".repeat(8 * 1024 * 1024);
    assert!(matches!(
        decode_base64(&huge, 1024),
        Err(MediaError::TooLarge { .. })
    ));
}

#[test]
fn error_messages() {
    assert_eq!(
        MediaError::TooLarge {
            max: MAX_MEDIA_BYTES
        }
        .to_string(),
        "media is larger than the 16 MiB limit"
    );
    assert!(MediaError::BadUrl("x".into())
        .to_string()
        .contains("bad media URL"));
    assert!(MediaError::BadBase64.to_string().contains("base64"));
}

#[tokio::test]
async fn redirect_to_another_port_of_the_same_host_is_refused() {
    let port = serve().await;
    let err = fetch(&format!("http://127.0.0.1:{port}/redirect-otherport"), &private_ok())
        .await
        .unwrap_err();
    match err {
        MediaError::Fetch(m) => assert!(m.contains("another port"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn other_spellings_of_loopback_are_refused_and_no_error_names_an_address() {
    let port = serve().await;
    for host in ["0x7f.0.0.1", "2130706433", "127.1", "0177.0.0.1", "127.0.0.1.", "localhost", "localhost.", "x.localhost", "[::1]", "[0:0:0:0:0:0:0:1]", "[::ffff:127.0.0.1]"] {
        let err = fetch(&format!("http://{host}:{port}/files/a.txt"), &FetchPolicy::default())
            .await
            .unwrap_err();
        assert!(matches!(err, MediaError::PrivateAddress(_)), "{host}: {err:?}");
        if host.contains("localhost") {
            let text = err.to_string();
            assert!(!text.contains("127.0.0.1") && !text.contains("::1"), "{host}: {text}");
        }
    }
}

#[test]
fn parse_url_normalizes_the_host() {
    let t = parse_url("http://0x7f.1:8080/a").unwrap();
    assert_eq!((t.host.as_str(), t.authority.as_str(), t.port), ("127.0.0.1", "127.0.0.1:8080", 8080));
    let t = parse_url("https://2130706433/x").unwrap();
    assert_eq!((t.host.as_str(), t.authority.as_str()), ("127.0.0.1", "127.0.0.1"));
    let t = parse_url("https://Example.COM./x").unwrap();
    assert_eq!((t.host.as_str(), t.authority.as_str()), ("example.com", "example.com"));
    let t = parse_url("http://[0:0:0:0:0:0:0:1]:81/").unwrap();
    assert_eq!((t.host.as_str(), t.authority.as_str()), ("::1", "[::1]:81"));
    assert!(matches!(parse_url("http://256.1.1.1/"), Err(MediaError::BadUrl(_))));
}
