//! Media answers and outbound URLs over real HTTP on loopback (CONTRACT §11
//! continued, issue 20 point 6): the headers of `GET …/media`, `mimetype` and
//! `fileName` checked at send, URLs normalized before they are checked (at
//! webhook create and PATCH as at delivery), same-origin redirects only, and
//! no error text that names what a host resolved to.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use common::{Http, Res, TestGateway};
use serde_json::{json, Value};

/// `<script>alert(1)</script>`
const HTML: &str = "PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==";
/// `<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`
const SVG: &str = "PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciIG9ubG9hZD0iYWxlcnQoMSkiLz4=";
/// Eight bytes of a PNG signature.
const PNG: &str = "iVBORw0KGgo=";

async fn send(h: &Http, t: &str, id: &str, body: Value) -> Res {
    h.post(&format!("/api/v1/sessions/{id}/messages"), Some(t), body).await
}

fn header(r: &Res, name: &str) -> Option<String> {
    r.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// A plain-HTTP server on 127.0.0.1 answering every request with `reply`
/// (`{port}` in it is replaced by `port_of_reply`); returns its address.
fn server(reply: impl Fn() -> String + Send + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let _ = s.write_all(reply().as_bytes());
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn media_is_served_with_nosniff_and_csp_and_as_an_attachment_unless_plain() {
    let gw = TestGateway::start().await;
    let (h, t) = (&gw.http, gw.owner("org_media"));
    // A session that is not working keeps its queue, and with it the media.
    let id = common::create_session(h, &t, "stopped").await["id"].as_str().expect("id").to_string();
    let cases = [
        ("text/html", HTML, Some("page.html"), Some("attachment; filename=\"page.html\"; filename*=UTF-8''page.html")),
        ("image/svg+xml", SVG, None, Some("attachment")),
        ("image/png", PNG, Some("cat.png"), None),
    ];
    for (mimetype, data, name, disposition) in cases {
        let mut media = json!({"data": data, "mimetype": mimetype});
        if let Some(n) = name {
            media["fileName"] = json!(n);
        }
        let r = send(h, &t, &id, json!({"to": "6281234567890", "type": "document", "media": media})).await;
        assert_eq!(r.status, 202, "{mimetype}: {:?}", r.json);
        let mid = r.json["id"].as_str().expect("id");
        let m = h.get(&format!("/api/v1/sessions/{id}/messages/{mid}/media"), Some(&t)).await;
        assert_eq!(m.status, 200, "{mimetype}");
        assert_eq!(header(&m, "content-type").as_deref(), Some(mimetype));
        assert_eq!(header(&m, "x-content-type-options").as_deref(), Some("nosniff"), "{mimetype}");
        assert_eq!(header(&m, "content-security-policy").as_deref(), Some("sandbox"), "{mimetype}");
        assert_eq!(header(&m, "content-disposition").as_deref(), disposition, "{mimetype}");
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_mimetype_or_file_name_is_refused_naming_the_field() {
    let gw = TestGateway::start().await;
    let (h, t) = (&gw.http, gw.owner("org_names"));
    let id = common::create_session(h, &t, "stopped").await["id"].as_str().expect("id").to_string();
    let bad = [
        (json!({"data": PNG, "mimetype": "image/png\r\nX-Evil: 1"}), "media.mimetype"),
        (json!({"data": PNG, "mimetype": "text/html\n"}), "media.mimetype"),
        (json!({"data": PNG, "mimetype": "png"}), "media.mimetype"),
        (json!({"data": PNG, "mimetype": "image/png", "fileName": "../etc/passwd"}), "media.fileName"),
        (json!({"data": PNG, "mimetype": "image/png", "fileName": "a/b.png"}), "media.fileName"),
        (json!({"data": PNG, "mimetype": "image/png", "fileName": "a\\b.png"}), "media.fileName"),
        (json!({"data": PNG, "mimetype": "image/png", "fileName": ".."}), "media.fileName"),
        (json!({"data": PNG, "mimetype": "image/png", "fileName": "a.png\r\nSet-Cookie: x=1"}), "media.fileName"),
        (json!({"data": PNG, "mimetype": "image/png", "fileName": "x".repeat(300)}), "media.fileName"),
    ];
    for (media, field) in &bad {
        let r = send(h, &t, &id, json!({"to": "6281234567890", "media": media})).await;
        assert_eq!((r.status.as_u16(), r.code()), (400, "invalid_request"), "{media}: {:?}", r.json);
        assert_eq!(r.json["error"]["details"]["field"], json!(field), "{media}: {:?}", r.json);
    }
    // In a batch: the item's index and the same field.
    let items = json!([
        {"to": "6281234567890", "text": "fine"},
        {"to": "6281234567890", "media": {"data": PNG, "mimetype": "image/png", "fileName": "a\nb"}},
    ]);
    let r = h.post(&format!("/api/v1/sessions/{id}/messages/batch"), Some(&t), json!({"messages": items})).await;
    assert_eq!(r.status, 400, "{:?}", r.json);
    assert_eq!((r.json["error"]["details"]["index"].as_u64(), r.json["error"]["details"]["field"].as_str()), (Some(1), Some("media.fileName")));
    // Parameters are allowed (a voice note's type has one).
    let r = send(h, &t, &id, json!({"to": "6281234567890", "media": {"data": PNG, "mimetype": "audio/ogg; codecs=opus", "fileName": "note.ogg"}})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    assert_eq!(r.json["media"]["mimetype"], "audio/ogg; codecs=opus");
    let listed = common::walk(h, &format!("/api/v1/sessions/{id}/messages"), &t, 50).await;
    assert_eq!(listed.len(), 1, "nothing else was stored: {listed:?}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_media_redirect_to_another_port_of_the_same_host_is_not_followed() {
    let png = "\u{89}PNG".to_string();
    let target = server(move || format!("HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{png}", png.len()));
    let redirector = server(move || {
        format!("HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{}/cat.png\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", target.port())
    });
    let gw = TestGateway::start_with(|c| c.messaging.allow_private_urls = true).await;
    let (h, t) = (&gw.http, gw.owner("org_redirect"));
    let id = common::create_session(h, &t, "stopped").await["id"].as_str().expect("id").to_string();
    // The target itself is fine (loopback is allowed here) ...
    let r = send(h, &t, &id, json!({"to": "6281234567890", "media": {"url": format!("http://{target}/cat.png")}})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    // ... but not through a redirect from another port.
    let r = send(h, &t, &id, json!({"to": "6281234567890", "media": {"url": format!("http://{redirector}/cat.png")}})).await;
    assert_eq!((r.status.as_u16(), r.json["error"]["details"]["field"].as_str()), (400, Some("media.url")), "{:?}", r.json);
    assert!(r.json["error"]["message"].as_str().is_some_and(|m| m.contains("another port")), "{:?}", r.json);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_media_host_does_not_say_what_it_resolved_to() {
    let open = server(|| "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx".into());
    let gw = TestGateway::start().await;
    let (h, t) = (&gw.http, gw.owner("org_oracle"));
    let id = common::create_session(h, &t, "stopped").await["id"].as_str().expect("id").to_string();
    for host in ["localhost", "localhost.", "0x7f.0.0.1", "2130706433", "127.1"] {
        let r = send(h, &t, &id, json!({"to": "6281234567890", "media": {"url": format!("http://{host}:{}/x.png", open.port())}})).await;
        assert_eq!((r.status.as_u16(), r.json["error"]["details"]["field"].as_str()), (400, Some("media.url")), "{host}: {:?}", r.json);
        if host.starts_with("localhost") {
            let text = r.json["error"]["message"].as_str().unwrap_or_default();
            assert!(!text.contains("127.0.0.1") && !text.contains("::1"), "{host}: {text}");
        }
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn other_spellings_of_private_hosts_are_refused_at_webhook_create_and_patch() {
    let gw = TestGateway::start().await;
    let (h, t) = (&gw.http, gw.owner("org_hooks"));
    for url in [
        "https://2130706433/x",
        "https://0x7f.0.0.1/x",
        "https://127.1/x",
        "https://localhost./x",
        "https://0177.0.0.1/x",
        "https://127.0.0.1./x",
        "https://0xa9fea9fe/latest",
        "https://10.258/x",
        "https://[::ffff:127.0.0.1]/x",
        "https://[0:0:0:0:0:0:0:1]/x",
        "https://x.localhost/x",
    ] {
        let r = h.post("/api/v1/webhooks", Some(&t), json!({"url": url, "events": ["*"]})).await;
        assert_eq!((r.status.as_u16(), r.code()), (400, "invalid_request"), "{url}: {:?}", r.json);
        assert_eq!(r.json["error"]["details"]["field"], "url", "{url}");
    }
    assert!(common::walk(h, "/api/v1/webhooks", &t, 50).await.is_empty(), "nothing stored");
    let r = h.post("/api/v1/webhooks", Some(&t), json!({"url": "https://hooks.example.com/x", "events": ["*"]})).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let hook = r.json["webhook"]["id"].as_str().expect("id").to_string();
    let r = h.patch(&format!("/api/v1/webhooks/{hook}"), Some(&t), json!({"url": "https://127.1/x"})).await;
    assert_eq!((r.status.as_u16(), r.json["error"]["details"]["field"].as_str()), (400, Some("url")), "{:?}", r.json);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_deliveries_log_does_not_say_what_a_refused_host_resolved_to() {
    let receiver = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = receiver.local_addr().expect("addr").port();
    // Created while private URLs are allowed, delivered after they no longer are.
    let gw = TestGateway::start_with(|c| c.messaging.allow_private_urls = true).await;
    let t = gw.owner("org_log");
    let r = gw.http.post("/api/v1/webhooks", Some(&t), json!({"url": format!("http://localhost:{port}/hook"), "events": ["*"]})).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let hook = r.json["webhook"]["id"].as_str().expect("id").to_string();
    let dir = gw.stop().await;
    let gw = TestGateway::start_in(dir, |c| c.delivery.retry_schedule = vec![Duration::from_secs(60)]).await;
    let h = &gw.http;
    assert_eq!(h.post(&format!("/api/v1/webhooks/{hook}/test"), Some(&t), json!({})).await.status, 202);
    let end = Instant::now() + Duration::from_secs(5);
    let log = loop {
        let log = common::walk(h, &format!("/api/v1/webhooks/{hook}/deliveries"), &t, 10).await;
        if !log.is_empty() || Instant::now() > end {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let error = log.first().and_then(|a| a["error"].as_str()).unwrap_or_default().to_string();
    assert!(error.contains("refused") && error.contains("localhost"), "{log:?}");
    assert!(!error.contains("127.0.0.1") && !error.contains("::1"), "{error}");
    drop(receiver);
    gw.stop().await;
}
