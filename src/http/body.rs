//! The response body: fully buffered bytes (every JSON answer) or a live
//! stream (the Server-Sent Events of `GET /api/v1/events`).
//!
//! A stream is fed through [`channel`]: a small bounded queue between the
//! task that produces the stream and hyper, which takes a chunk only when the
//! connection can write it. The producer's [`StreamWriter`] waits when the
//! queue is full and gives up on a client that has not taken anything for the
//! stall timeout: it cuts that connection (the client resumes later, e.g.
//! with `Last-Event-ID`). So a stream holds at most the queue's few chunks
//! (plus hyper's bounded write buffer), however slow its reader.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Frame, SizeHint};
use tokio::sync::mpsc;

use super::conn::ConnState;

/// A response body: buffered, or streamed from a [`StreamWriter`]. Exists so
/// that one response type serves both the JSON answers and the live streams
/// without boxing every buffered answer.
pub enum Body {
    /// The whole body, known up front.
    Full(Full<Bytes>),
    /// Chunks as a producer task writes them; ends when the writer is dropped.
    Stream(mpsc::Receiver<Bytes>),
}

impl Body {
    /// A buffered body.
    pub fn full(bytes: impl Into<Bytes>) -> Body {
        Body::Full(Full::new(bytes.into()))
    }

    /// Whether this body is a live stream (the connection then counts as
    /// streaming, not idle).
    pub fn is_stream(&self) -> bool {
        matches!(self, Body::Stream(_))
    }
}

impl From<Full<Bytes>> for Body {
    fn from(f: Full<Bytes>) -> Body {
        Body::Full(f)
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Full(f) => Pin::new(f).poll_frame(cx),
            Body::Stream(rx) => rx.poll_recv(cx).map(|chunk| chunk.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Full(f) => f.is_end_stream(),
            Body::Stream(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(f) => f.size_hint(),
            Body::Stream(_) => SizeHint::default(),
        }
    }
}

/// Why a stream's writer stopped: typed so that the producer can tell a
/// client that left from one we cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// The client went away (or the connection was cut for another reason).
    Closed,
    /// The client took nothing for the stall timeout: its connection is cut.
    Stalled,
}

/// The producing end of a streamed body. Exists to put the stall timeout,
/// the slow-reader cut-off and the shutdown signal in one place, so that
/// stream producers (the event stream) need not know the connection.
pub struct StreamWriter {
    tx: mpsc::Sender<Bytes>,
    stall: Duration,
    conn: Option<Arc<ConnState>>,
}

/// A streamed body and its writer: at most `capacity` chunks wait between
/// them. `conn` is the connection that serves the stream (`None` when a
/// handler is driven without one: then nothing is cut, the writer just ends).
pub fn channel(capacity: usize, stall: Duration, conn: Option<Arc<ConnState>>) -> (StreamWriter, Body) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (StreamWriter { tx, stall, conn }, Body::Stream(rx))
}

impl StreamWriter {
    /// Queues one chunk; waits while the queue is full, at most the stall
    /// timeout, after which the connection is cut.
    pub async fn send(&self, chunk: Bytes) -> Result<(), StreamEnd> {
        match tokio::time::timeout(self.stall, self.tx.send(chunk)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(StreamEnd::Closed),
            Err(_) => {
                if let Some(c) = &self.conn {
                    c.cut_slow_reader();
                }
                Err(StreamEnd::Stalled)
            }
        }
    }

    /// Resolves when the stream should end without another write: the client
    /// is gone, or the server is shutting down (the stream then ends cleanly,
    /// so graceful shutdown does not wait on it).
    pub async fn ended(&self) {
        match &self.conn {
            Some(c) => tokio::select! {
                _ = self.tx.closed() => {}
                _ = c.draining() => {}
            },
            None => self.tx.closed().await,
        }
    }
}
