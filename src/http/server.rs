//! The accept loop and the life of each connection.
//!
//! - **Accept never stops.** When the cap on open connections is reached,
//!   the connection that has waited longest on its client (idle, stalled in
//!   its headers or body, or not reading our answers) is shed so the new
//!   client is served. Accept errors (`EMFILE` under a low fd limit, say)
//!   shed one too and back off, logging at most once a second.
//! - **Timeouts** (CONTRACT §11): headers, idle keep-alive and blocked writes
//!   are judged by [`conn::verdict`] once a second; the body timeout where
//!   the body is read. A request head that times out gets a 408.
//! - **Refusals before routing** (hyper's own 400/414/431, our 408) get an
//!   access-log line and a metric like any request.
//! - **Lingering close**: a connection closing with a body we did not read
//!   first sends its answer, then discards what the client still sends (up
//!   to 8 MiB or 2 s), so the client reads the answer instead of a reset.
//! - **Shutdown** drains in-flight requests until the deadline, then cuts
//!   what is left, so the process exits on time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::conn::{self, ConnState, Cut, Registry, Tracked};
use super::pipeline::{self, Access};
use crate::app::App;

/// Largest request head (start line and headers); beyond it hyper answers 431.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// How much of an unread body a closing connection discards, and for how long.
const LINGER_BYTES: usize = 8 * 1024 * 1024;
const LINGER_TIME: Duration = Duration::from_secs(2);

/// A running server.
pub struct RunningServer {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningServer {
    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets in-flight requests finish until `deadline`,
    /// then cuts every connection still open and returns.
    pub async fn shutdown(self, deadline: Instant) {
        let _ = self.shutdown.send(true);
        let abort = self.task.abort_handle();
        if tokio::time::timeout_at(deadline.into(), self.task).await.is_err() {
            abort.abort();
        }
    }
}

/// The soft limit on open files, raised to the hard limit (the connection
/// cap follows from it). Returns the limit now in force.
pub fn raise_fd_limit() -> u64 {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
                return 1024;
            }
            if lim.rlim_cur < lim.rlim_max {
                let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    lim.rlim_cur = lim.rlim_max;
                }
            }
        }
        lim.rlim_cur
    }
    #[cfg(not(unix))]
    {
        1024
    }
}

/// The connection cap for an fd limit: half of what is left after 256 fds
/// kept for the data file, engines and DNS, between 16 and 65,536.
pub fn connection_cap(fd_limit: u64) -> usize {
    (fd_limit.saturating_sub(256) / 2).clamp(16, 65_536) as usize
}

/// Starts serving `app` on `listener` in the background.
pub fn start(app: Arc<App>, listener: TcpListener) -> std::io::Result<RunningServer> {
    let addr = listener.local_addr()?;
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(accept_loop(app, listener, rx));
    Ok(RunningServer { addr, shutdown: tx, task })
}

async fn accept_loop(app: Arc<App>, listener: TcpListener, mut stop: watch::Receiver<bool>) {
    let fd_limit = raise_fd_limit();
    let cap = match app.config.max_connections {
        0 => connection_cap(fd_limit),
        n => n,
    };
    tracing::debug!(fd_limit, cap, "connection cap");
    let registry = Arc::new(Registry::default());
    let mut backoff = Duration::from_millis(5);
    let mut last_warn: Option<Instant> = None;
    let mut suppressed = 0u64;
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(s) => {
                backoff = Duration::from_millis(5);
                s
            }
            Err(e) => {
                // Out of fds (or another transient error): make room and
                // back off instead of spinning; say so once a second.
                registry.shed_one();
                app.metrics.accept_errors.inc();
                if last_warn.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                    tracing::warn!(error = %e, suppressed, open = registry.len(), "accept failed; shedding and backing off");
                    last_warn = Some(Instant::now());
                    suppressed = 0;
                } else {
                    suppressed += 1;
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => break,
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        if registry.len() >= cap && registry.shed_one() {
            app.metrics.connections_cut(Cut::Shed);
        }
        let _ = stream.set_nodelay(true);
        let state = Arc::new(ConnState::new(peer));
        let key = registry.add(state.clone());
        let (app, registry, stop) = (app.clone(), registry.clone(), stop.clone());
        tokio::spawn(async move {
            drive(&app, stream, state, stop).await;
            registry.remove(key);
        });
    }
    drop(listener);
    // Drain: every connection finishes its request and closes (see `drive`).
    // If the caller's deadline aborts this task first, dropping the guard
    // cuts every connection still open.
    let guard = CutOnDrop(registry.clone());
    while !registry.is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(guard);
}

/// Cuts every open connection when the accept task ends or is aborted.
struct CutOnDrop(Arc<Registry>);

impl Drop for CutOnDrop {
    fn drop(&mut self) {
        self.0.shed_all();
    }
}

/// One connection, from accept to close.
async fn drive(app: &Arc<App>, stream: tokio::net::TcpStream, state: Arc<ConnState>, mut stop: watch::Receiver<bool>) {
    let svc_app = app.clone();
    let svc_state = state.clone();
    let svc = service_fn(move |req| Box::pin(pipeline::handle(svc_app.clone(), svc_state.clone(), req)));
    let mut conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_header_size(MAX_HEADER_BYTES)
        .max_headers(100)
        .serve_connection(TokioIo::new(Tracked::new(stream, state.clone())), svc);
    let timeouts = app.config.timeouts;
    // Deadlines are checked a few times per the shortest timeout (at most
    // once a second): cheap, and precise enough.
    let shortest = [timeouts.header, timeouts.write, timeouts.idle].into_iter().min().unwrap_or(Duration::from_secs(1));
    let mut tick = tokio::time::interval((shortest / 4).clamp(Duration::from_millis(50), Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut draining = *stop.borrow();
    if draining {
        state.start_draining();
        std::pin::Pin::new(&mut conn).graceful_shutdown();
    }
    let result = loop {
        tokio::select! {
            r = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => break r,
            _ = tick.tick() => {
                if let Some(cut) = conn::verdict(state.snapshot(), conn::mono_now().as_millis() as u64, &timeouts) {
                    app.metrics.connections_cut(cut);
                    if cut == Cut::HeaderTimeout {
                        // A request head that did not arrive in time: 408, logged, closed.
                        let mut io = conn.into_parts().io.into_inner();
                        let answer = b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
                        let _ = tokio::time::timeout(Duration::from_secs(1), io.write_all(answer)).await;
                        Access::unrouted(408, timeouts.header).log(app);
                    }
                    return;
                }
            }
            _ = state.shed() => {
                let cut = if state.cut_for_slow_reader() {
                    Cut::SlowReader
                } else if draining {
                    Cut::Shutdown
                } else {
                    Cut::Shed
                };
                app.metrics.connections_cut(cut);
                return;
            }
            _ = stop.changed(), if !draining => {
                draining = true;
                // Streams end on their own (see `ConnState::draining`), so
                // the graceful close does not wait on them.
                state.start_draining();
                std::pin::Pin::new(&mut conn).graceful_shutdown();
            }
        }
    };
    match result {
        Ok(()) if state.body_left() => {
            let mut io = conn.into_parts().io.into_inner();
            let _ = tokio::time::timeout(LINGER_TIME, linger(&mut io)).await;
        }
        Ok(()) => {}
        Err(e) => refused_by_hyper(app, &e),
    }
}

/// Closes our side, then reads and drops what the client still sends.
async fn linger(io: &mut Tracked) {
    let _ = io.shutdown().await;
    let mut buf = [0u8; 16 * 1024];
    let mut seen = 0;
    while seen < LINGER_BYTES {
        match io.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => seen += n,
        }
    }
}

/// hyper answered (or dropped) a request it could not parse: log it as a request.
fn refused_by_hyper(app: &App, e: &hyper::Error) {
    let status = if e.is_parse_too_large() {
        431
    } else if e.is_parse() {
        // hyper answers 414 for an over-long URI and 400 for the rest.
        if e.to_string().contains("URI") { 414 } else { 400 }
    } else {
        return;
    };
    Access::unrouted(status, Duration::ZERO).log(app);
}
