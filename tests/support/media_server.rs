//! A loopback server handing out one large medium, shared by the media
//! memory test (`tests/media_memory.rs`) and bench part R
//! (`examples/bench_parts/media_memory.rs`): both need the same 16 MiB of
//! `image/jpeg` at a URL, served without buffering copies per request.

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves `GET /media` with `size` bytes of `image/jpeg` (any other path is
/// 404) on a loopback port; returns the base URL.
pub async fn media_server(size: usize) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let body: Bytes = (0..size).map(|i| (i * 7 + i / 4096) as u8).collect::<Vec<u8>>().into();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else { return };
            let body = body.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let ok = head.starts_with(b"GET /media ");
                let (status, body) = if ok { ("200 OK", body) } else { ("404 Not Found", Bytes::from_static(b"no")) };
                let h = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(h.as_bytes()).await;
                let _ = s.write_all(&body).await;
                let _ = s.shutdown().await;
            });
        }
    });
    format!("http://127.0.0.1:{}", addr.port())
}
