//! A corpus of malformed requests: each gets the right 4xx envelope, never a
//! 5xx, nothing stored is lost, and the server keeps serving. Also the
//! connection-level limits: header read timeout and the open-connection cap.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{create_session, TestGateway};
use hyper::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// method, path, body, content type, expected status, expected code.
type Case = (Method, String, Option<Vec<u8>>, &'static str, u16, &'static str);

#[tokio::test(flavor = "multi_thread")]
async fn malformed_requests_get_4xx_envelopes() {
    let gw = TestGateway::start().await;
    let t = gw.owner("org_a");
    let kept = create_session(&gw.http, &t, "keep me").await;
    let kept_id = kept["id"].as_str().expect("id").to_string();
    let json = "application/json";
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let corpus: Vec<Case> = vec![
        (Method::POST, "/api/v1/sessions".into(), Some(b"{".to_vec()), json, 400, "invalid_request"),
        (Method::POST, "/api/v1/sessions".into(), Some(b"[]".to_vec()), json, 400, "invalid_request"),
        (Method::POST, "/api/v1/sessions".into(), Some(b"\"x\"".to_vec()), json, 400, "invalid_request"),
        (Method::POST, "/api/v1/sessions".into(), Some(b"null".to_vec()), json, 400, "invalid_request"),
        (Method::POST, "/api/v1/sessions".into(), Some(b"{} {}".to_vec()), json, 400, "invalid_request"),
        (Method::POST, "/api/v1/sessions".into(), Some(b"{\"label\":5}".to_vec()), json, 400, "invalid_request"),
        (Method::POST, "/api/v1/sessions".into(), Some(b"{\"label\":\"a\",\"label\":\"b\"}".to_vec()), json, 400, "invalid_request"),
        (Method::POST, "/api/v1/sessions".into(), Some(b"{\"label\":\"\xff\xfe\"}".to_vec()), json, 400, "invalid_request"),
        (Method::POST, "/api/v1/sessions".into(), Some(deep.into_bytes()), json, 400, "invalid_request"),
        (Method::POST, "/api/v1/sessions".into(), Some(b"{\"ratePerMin\":1e3}".to_vec()), json, 400, "invalid_request"),
        (Method::POST, "/api/v1/sessions".into(), Some(b"{\"ratePerMin\":99999999999}".to_vec()), json, 400, "invalid_request"),
        (Method::POST, "/api/v1/sessions".into(), Some(b"{}".to_vec()), "text/plain", 415, "unsupported_media_type"),
        (Method::POST, "/api/v1/sessions".into(), Some(b"label=x".to_vec()), "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (Method::PATCH, format!("/api/v1/sessions/{kept_id}"), Some(b"{\"label\":null}".to_vec()), json, 400, "invalid_request"),
        (Method::PATCH, format!("/api/v1/sessions/{kept_id}"), Some(b"{\"status\":\"working\"}".to_vec()), json, 400, "invalid_request"),
        (Method::PATCH, format!("/api/v1/sessions/{kept_id}"), Some(b"{\"autoRead\":null}".to_vec()), json, 400, "invalid_request"),
        (Method::POST, "/api/v1/sessions".into(), Some(b"{\"ratePerMin\":null}".to_vec()), json, 400, "invalid_request"),
        (Method::PATCH, format!("/api/v1/sessions/{kept_id}"), Some(b"{\"id\":\"x\"}".to_vec()), json, 400, "invalid_request"),
        (Method::GET, "/api/v1/sessions/not-a-ulid".into(), None, json, 404, "not_found"),
        (Method::GET, "/api/v1/sessions/01J9ZX8K2QHV0M3T6R7P4N5W8".into(), None, json, 404, "not_found"),
        (Method::GET, "/api/v1/sessions/81J9ZX8K2QHV0M3T6R7P4N5W8C".into(), None, json, 404, "not_found"),
        (Method::GET, format!("/api/v1/sessions/{}", "A".repeat(5000)), None, json, 404, "not_found"),
        (Method::GET, "/api/v1/sessions/%00%ff".into(), None, json, 404, "not_found"),
        (Method::DELETE, "/api/v1/api-keys/../../etc".into(), None, json, 404, "not_found"),
        (Method::GET, "/api/v1/sessions?limit=999".into(), None, json, 400, "invalid_request"),
        (Method::PUT, "/api/v1/sessions".into(), None, json, 405, "method_not_allowed"),
        (Method::GET, "/api/v2/sessions".into(), None, json, 404, "not_found"),
        (Method::GET, "/".into(), None, json, 404, "not_found"),
    ];
    for (method, path, body, ct, status, code) in corpus {
        let body = body.map(Bytes::from);
        let r = gw.http.send(method.clone(), &path, Some(&t), body, &[("content-type", ct)]).await;
        let short: String = path.chars().take(60).collect();
        assert_eq!(r.status.as_u16(), status, "{method} {short}: {:?}", r.json);
        assert_eq!(r.code(), code, "{method} {short}");
        assert!(r.json["error"]["message"].is_string());
        assert!(r.json["error"]["details"].is_object());
    }
    // The 405 names what is allowed.
    let r = gw.http.send(Method::PUT, "/api/v1/sessions", Some(&t), None, &[]).await;
    assert_eq!(r.headers["allow"], "HEAD, GET, POST");

    // Nothing stored was lost or changed, and the server still serves.
    let after = gw.http.get(&format!("/api/v1/sessions/{kept_id}"), Some(&t)).await;
    assert_eq!(after.status, 200);
    assert_eq!(after.json, kept);
    assert_eq!(gw.http.get("/healthz", None).await.status, 200);
}

async fn raw(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(bytes).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends `head` then `body` on a raw connection (the write may be cut short
/// when the server answers early) and returns what the server answered.
async fn raw_upload(addr: std::net::SocketAddr, head: String, body: Vec<u8>) -> String {
    let s = TcpStream::connect(addr).await.expect("connect");
    let (mut rd, mut wr) = s.into_split();
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(head.as_bytes()).await;
        let _ = wr.write_all(&body).await;
        wr
    });
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), rd.read_to_end(&mut out)).await;
    drop(writer);
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies_get_413() {
    let gw = TestGateway::start().await;
    let t = gw.owner("org_a");
    let addr = gw.addr();
    // Declared too large: refused, but the body is read and discarded first,
    // so a client that writes its whole body and only then reads (as most
    // HTTP clients do) gets the 413, not a broken pipe or a reset.
    // The same for a body sent to a route that does not exist.
    for (path, size, status) in [
        ("/api/v1/sessions", 2 * 1024 * 1024, "413 "),
        ("/api/v1/sessions", 4 * 1024 * 1024, "413 "),
        ("/api/v1/nowhere", 2 * 1024 * 1024, "404 "),
    ] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\nContent-Type: application/json\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
        );
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(head.as_bytes()).await.expect("head written");
        s.write_all(&vec![b' '; size]).await.expect("the whole body is accepted before the answer");
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
            .await
            .expect("answered")
            .expect("a clean close, not a reset");
        let r = String::from_utf8_lossy(&out);
        assert!(r.starts_with(&format!("HTTP/1.1 {status}")), "{path} {size}: {r}");
    }
    // Chunked, no length: cut off once past 1 MiB.
    let head = format!(
        "POST /api/v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let mut body = Vec::new();
    for _ in 0..20 {
        body.extend_from_slice(format!("{:x}\r\n", 64 * 1024).as_bytes());
        body.extend(std::iter::repeat_n(b' ', 64 * 1024));
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let r = raw_upload(addr, head, body).await;
    assert!(r.starts_with("HTTP/1.1 413"), "{r}");
    assert!(r.contains("payload_too_large"), "{r}");
    // Exactly at the limit is read (and then judged as JSON).
    let mut at_limit = b"{\"label\":\"x\"}".to_vec();
    at_limit.resize(1024 * 1024, b' ');
    let r = gw.http.send(Method::POST, "/api/v1/sessions", Some(&t), Some(Bytes::from(at_limit)), &[]).await;
    assert_eq!(r.status, 201);
    assert_eq!(gw.http.get("/healthz", None).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_http_is_refused_and_the_server_survives() {
    let gw = TestGateway::start_with(|c| c.timeouts.header = Duration::from_millis(500)).await;
    let addr = gw.addr();
    let r = raw(addr, b"NOT HTTP AT ALL\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 4"), "{r}");
    let big_header = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(100 * 1024));
    let r = raw(addr, big_header.as_bytes()).await;
    assert!(r.starts_with("HTTP/1.1 431"), "oversized headers: {r}");
    let r = raw(addr, b"POST /api/v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 413") || r.starts_with("HTTP/1.1 401"), "{r}");

    // A client that never finishes its headers is cut off by the header timeout.
    let mut slow = TcpStream::connect(addr).await.expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.expect("write");
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "connection closed by the header read timeout");
    assert_eq!(gw.http.get("/healthz", None).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn at_the_cap_the_idlest_connection_is_shed_for_a_new_client() {
    let gw = TestGateway::start_with(|c| c.max_connections = 2).await;
    let addr = gw.addr();
    // Two idle connections fill the cap; `a` has waited longest.
    let mut a = TcpStream::connect(addr).await.expect("a");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut b = TcpStream::connect(addr).await.expect("b");
    b.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("b writes");
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A third client is served at once instead of waiting for a free slot.
    let r = tokio::time::timeout(Duration::from_secs(2), raw(addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
        .await
        .expect("a new client is served while the cap is full");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    // ... because `a`, the idlest, was cut.
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(2), a.read(&mut buf)).await.expect("a is closed");
    assert!(matches!(n, Ok(0) | Err(_)), "the idlest connection was shed");
    drop(b);
}
