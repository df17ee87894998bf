//! A tiny JWKS server on 127.0.0.1:0 for tests: counts requests, and its
//! answer (status, body, redirect, delay, chunking) can be changed or stopped.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;


/// What the test server answers.
#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub location: Option<String>,
    pub delay: Duration,
    pub chunked: bool,
}

/// A response body sent as chunks, with no declared length.
pub struct Chunks(VecDeque<Bytes>);

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
    }
}

/// A tiny JWKS server on 127.0.0.1:0 that counts requests.
pub struct Server {
    pub url: String,
    hits: Arc<AtomicUsize>,
    reply: Arc<Mutex<Reply>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub async fn start(body: String) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let reply = Arc::new(Mutex::new(Reply {
            status: 200,
            body,
            location: None,
            delay: Duration::ZERO,
            chunked: false,
        }));
        let (h, r) = (hits.clone(), reply.clone());
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (h, r) = (h.clone(), r.clone());
                conns.spawn(async move {
                    let svc = service_fn(move |_req| {
                        let (h, r) = (h.clone(), r.clone());
                        async move {
                            h.fetch_add(1, Ordering::SeqCst);
                            let rep = r.lock().unwrap().clone();
                            tokio::time::sleep(rep.delay).await;
                            let data = Bytes::from(rep.body.clone());
                            let mut b = hyper::Response::builder().status(rep.status);
                            if let Some(loc) = &rep.location {
                                b = b.header("location", loc);
                            }
                            let chunks: VecDeque<Bytes> = if rep.chunked {
                                data.chunks(100).map(Bytes::copy_from_slice).collect()
                            } else {
                                b = b.header("content-length", data.len());
                                VecDeque::from([data])
                            };
                            Ok::<_, Infallible>(b.body(Chunks(chunks)).unwrap())
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(false)
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Server {
            url,
            hits,
            reply,
            task,
        }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn set(&self, f: impl FnOnce(&mut Reply)) {
        f(&mut self.reply.lock().unwrap());
    }

    pub fn set_body(&self, body: String) {
        self.set(|r| r.body = body);
    }

    /// Closes the listener and every connection.
    pub fn stop(&self) {
        self.task.abort();
    }
}
