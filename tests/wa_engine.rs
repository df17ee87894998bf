//! The whatsapp engine, offline: the real `whatsapp-rust` connect path against
//! loopback endpoints that refuse or never answer, and (with the default
//! endpoints) against a machine with no route out. Completed handshakes, QR
//! codes, logins and messages are covered against the fake WhatsApp server in
//! `tests/wa_fake*.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use ulid::Ulid;
use wa_gateway::engine::manager::{Manager, ManagerConfig};
use wa_gateway::engine::wa_client::{format_pair_code, WaOptions, WhatsappEngine};
use wa_gateway::engine::{Connection, Engine, EngineError, EngineEvent, EventSink, StartInfo};
use wa_gateway::store::records::SessionStatus;
use wa_gateway::store::Store;

const VERSION: Option<(u32, u32, u32)> = Some((2, 3000, 1_000_000_000));

fn store() -> (tempfile::TempDir, Arc<Store>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("data.redb"), 1 << 20).expect("open store");
    (dir, Arc::new(store))
}

fn sink(session: Ulid) -> (EventSink, mpsc::UnboundedReceiver<(Ulid, u64, EngineEvent)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (EventSink::new(session, 1, tx), rx)
}

fn info(session: Ulid) -> StartInfo {
    StartInfo { session, linked_jid: None, linked_lid: None }
}

fn engine(store: Arc<Store>, url: String, connect_timeout: Duration) -> WhatsappEngine {
    WhatsappEngine::new(
        store,
        WaOptions { connect_timeout, ws_url: Some(url), version: VERSION, ..WaOptions::default() },
    )
}

/// A loopback port nothing listens on.
async fn closed_port_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    format!("ws://{addr}/ws/chat")
}

/// A loopback server that accepts and never answers; reports each accepted
/// connection (`true`) and its close by the client (`false`).
async fn silent_server() -> (String, mpsc::UnboundedReceiver<bool>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = l.accept().await {
            let tx = tx.clone();
            let _ = tx.send(true);
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                // Bounded: a test never waits longer than this for the close.
                let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
                while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, sock.read(&mut buf)).await {
                    if n == 0 {
                        let _ = tx.send(false);
                        return;
                    }
                }
            });
        }
    });
    (format!("ws://{addr}/ws/chat"), rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<bool>, within: Duration) -> Option<bool> {
    tokio::time::timeout(within, rx.recv()).await.ok().flatten()
}

#[tokio::test]
async fn constructs_with_defaults() {
    let (_dir, store) = store();
    let e = WhatsappEngine::new(store, WaOptions::default());
    assert_eq!(e.name(), "whatsapp");
    assert_eq!(e.options().connect_timeout, Duration::from_secs(20));
    assert!(e.options().ws_url.is_none() && e.options().version.is_none());
    e.forget(Ulid::generate()); // nothing kept yet: a no-op
    assert_eq!(format_pair_code("abcdefgh"), "ABCD-EFGH");
}

#[tokio::test]
async fn refused_connect_fails_fast_with_the_reason() {
    let (_dir, store) = store();
    let e = engine(store, closed_port_url().await, Duration::from_secs(10));
    let id = Ulid::generate();
    let (sink, mut events) = sink(id);
    let t = Instant::now();
    let err = e.start(info(id), sink).await.err().expect("no server: start must fail");
    assert!(t.elapsed() < Duration::from_secs(5), "took {:?}", t.elapsed());
    match &err {
        EngineError::Connect(m) => {
            eprintln!("refused: {m}");
            assert!(m.contains("WebSocket connect failed"), "unclear message: {m}")
        }
        other => panic!("expected a connect error, got {other:?}"),
    }
    assert!(err.to_string().starts_with("connect: "));
    assert!(events.try_recv().is_err(), "a failed start reports through its result only");
}

#[tokio::test]
async fn silent_server_times_out_and_the_socket_is_closed() {
    let (_dir, store) = store();
    let (url, mut conns) = silent_server().await;
    let e = engine(store, url, Duration::from_millis(1500));
    let id = Ulid::generate();
    let (sink, _events) = sink(id);
    let t = Instant::now();
    let err = e.start(info(id), sink).await.err().expect("a server that never answers: start must fail");
    let took = t.elapsed();
    assert!(matches!(&err, EngineError::Connect(m) if m.contains("timed out")), "{err:?}");
    assert!(took >= Duration::from_millis(1400) && took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(next(&mut conns, Duration::from_secs(1)).await, Some(true), "the client dialled the server");
    assert_eq!(next(&mut conns, Duration::from_secs(5)).await, Some(false), "the abandoned socket is closed");
}

#[tokio::test]
async fn cancelling_a_pending_start_closes_the_socket() {
    let (_dir, store) = store();
    let (url, mut conns) = silent_server().await;
    let e = engine(store, url, Duration::from_secs(30));
    let id = Ulid::generate();
    let (sink, _events) = sink(id);
    let pending = tokio::time::timeout(Duration::from_millis(700), e.start(info(id), sink)).await;
    assert!(pending.is_err(), "the handshake cannot complete");
    assert_eq!(next(&mut conns, Duration::from_secs(1)).await, Some(true));
    assert_eq!(next(&mut conns, Duration::from_secs(5)).await, Some(false), "cancelled start leaves no socket");
}

#[tokio::test]
async fn default_endpoints_without_a_route_fail_within_the_timeout() {
    // The real WhatsApp Web endpoints and version fetch; this machine has no route out.
    let (_dir, store) = store();
    let e = WhatsappEngine::new(store, WaOptions { connect_timeout: Duration::from_secs(3), ..WaOptions::default() });
    let id = Ulid::generate();
    let (sink, _events) = sink(id);
    let t = Instant::now();
    match e.start(info(id), sink).await {
        Err(EngineError::Connect(m)) => {
            assert!(t.elapsed() < Duration::from_secs(5), "took {:?}", t.elapsed());
            eprintln!("no route: {m}");
            assert!(!m.is_empty());
        }
        Err(other) => panic!("expected a connect error, got {other:?}"),
        Ok(conn) => {
            // A network after all: stopping must still be prompt.
            let t = Instant::now();
            conn.stop().await;
            assert!(t.elapsed() < Duration::from_secs(12));
        }
    }
}

#[tokio::test]
async fn concurrent_sessions_fail_independently() {
    let (_dir, store) = store();
    let e = Arc::new(engine(store, closed_port_url().await, Duration::from_secs(5)));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let e = e.clone();
        tasks.push(tokio::spawn(async move {
            let id = Ulid::generate();
            let (sink, _events) = sink(id);
            matches!(e.start(info(id), sink).await, Err(EngineError::Connect(_)))
        }));
    }
    for t in tasks {
        assert!(t.await.expect("no panic"));
    }
}

fn new_session(store: &Store) -> Ulid {
    use wa_gateway::api::sessions::{new_session, CreateSession};
    let body: CreateSession = serde_json::from_value(serde_json::json!({"label": "wa engine"})).expect("create body");
    let s = new_session(body, "org_wa".into(), "user_1".into(), "gw-test".into(), false).expect("valid session");
    let id = Ulid::generate();
    store.create_session(id, &s).expect("create session");
    id
}

#[tokio::test]
async fn manager_stop_wins_over_a_pending_connect() {
    let (_dir, store) = store();
    let (url, mut conns) = silent_server().await;
    let engine: Arc<dyn Engine> = Arc::new(engine(store.clone(), url, Duration::from_secs(2)));
    let m = Manager::new(engine, store.clone(), ManagerConfig::default());
    let id = new_session(&store);
    let started = m.start(id).await.expect("start");
    assert_eq!(started.status, SessionStatus::Starting);
    assert_eq!(next(&mut conns, Duration::from_secs(2)).await, Some(true), "connecting");
    let t = Instant::now();
    let stopped = m.stop(id).await.expect("stop");
    assert!(t.elapsed() < Duration::from_millis(500), "stop took {:?}", t.elapsed());
    assert_eq!(stopped.status, SessionStatus::Stopped);
    // The pending connect times out; its failure belongs to an old generation.
    assert_eq!(next(&mut conns, Duration::from_secs(6)).await, Some(false), "socket closed");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = store.get_session(id, None).expect("session");
    assert_eq!(s.status, SessionStatus::Stopped);
    assert!(!s.desired_running && s.last_error.is_none(), "{s:?}");
    m.shutdown().await;
}

#[tokio::test]
async fn manager_records_the_connect_error_and_retries() {
    let (_dir, store) = store();
    let engine: Arc<dyn Engine> = Arc::new(engine(store.clone(), closed_port_url().await, Duration::from_secs(3)));
    let config = ManagerConfig {
        max_attempts: 2,
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_millis(100),
        ..ManagerConfig::default()
    };
    let m = Manager::new(engine, store.clone(), config);
    let id = new_session(&store);
    m.start(id).await.expect("start");
    let deadline = Instant::now() + Duration::from_secs(10);
    let s = loop {
        let s = store.get_session(id, None).expect("session");
        if s.status == SessionStatus::Failed || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(s.status, SessionStatus::Failed, "{s:?}");
    let err = s.last_error.unwrap_or_default();
    assert!(err.starts_with("connect: could not connect to WhatsApp"), "{err}");
    assert!(m.counters.errors.get() >= 2);
}

#[tokio::test]
async fn manager_caps_connects_in_flight_and_stop_releases_a_queued_one() {
    let (_dir, store) = store();
    let (url, mut accepted) = silent_server().await;
    let engine: Arc<dyn Engine> = Arc::new(engine(store.clone(), url, Duration::from_millis(1500)));
    let config = ManagerConfig { max_attempts: 1, max_concurrent_connects: 2, ..ManagerConfig::default() };
    let m = Manager::new(engine, store.clone(), config);
    let ids: Vec<Ulid> = (0..5).map(|_| new_session(&store)).collect();
    for id in &ids {
        m.start(*id).await.expect("start");
    }
    // Two connects reach the server; the other three wait their turn.
    let mut opened = 0;
    while let Some(open) = next(&mut accepted, Duration::from_millis(700)).await {
        opened += usize::from(open);
    }
    assert_eq!(opened, 2, "at most two connects in flight");
    // A queued session can be stopped while it waits.
    let stopped = m.stop(ids[4]).await.expect("stop");
    assert_eq!(stopped.status, SessionStatus::Stopped);
    // When the first two time out, the next two go (never the stopped one).
    let mut later = 0;
    let deadline = Instant::now() + Duration::from_secs(6);
    while Instant::now() < deadline {
        if let Some(true) = next(&mut accepted, Duration::from_millis(200)).await {
            later += 1;
        }
    }
    assert_eq!(later, 2, "the two remaining queued sessions connected after the first two");
    for id in &ids[..4] {
        let _ = m.stop(*id).await;
    }
}

#[allow(dead_code)]
fn connection_is_object_safe(c: Box<dyn Connection>) -> Box<dyn Connection> {
    c
}
