//! Durability across process boundaries: the real `wa-gateway` binary is
//! started, killed (SIGKILL), stopped (SIGTERM), backed up and checked while
//! it serves, and the data file is then read back.
//!
//! Every child process is owned by a [`Server`] whose `Drop` kills it, so a
//! failing assertion never leaves a gateway running.

#[path = "common/process.rs"]
mod process;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::Method;
use process::*;
use serde_json::{json, Value};

/// Clients creating sessions as fast as they can until told to stop or the
/// server goes away. Every id that got a 201 is recorded, in order.
struct Stream {
    acked: Arc<Mutex<Vec<String>>>,
    /// Answers other than 201 (never expected), as "status body".
    unexpected: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Option<String>>>,
}

impl Stream {
    fn start(api: &Api, token: &str, clients: usize) -> Stream {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let unexpected = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..clients)
            .map(|c| {
                // One client (and connection pool) per task, like independent callers.
                let api = Api::new(api.base.clone());
                let token = token.to_string();
                let (acked, unexpected, stop) = (acked.clone(), unexpected.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while !stop.load(Ordering::SeqCst) {
                        n += 1;
                        let body = json!({"label": format!("stream-{c}-{n}")});
                        match api
                            .try_send(Method::POST, "/api/v1/sessions", Some(&token), Some(body))
                            .await
                        {
                            Ok((201, v)) => acked
                                .lock()
                                .unwrap()
                                .push(v["id"].as_str().expect("id").to_string()),
                            Ok((st, v)) => unexpected.lock().unwrap().push(format!("{st} {v}")),
                            // The server went away (killed or shutting down): this client is done.
                            Err(e) => return Some(e),
                        }
                    }
                    None
                })
            })
            .collect();
        Stream {
            acked,
            unexpected,
            stop,
            tasks,
        }
    }

    fn acked_now(&self) -> Vec<String> {
        self.acked.lock().unwrap().clone()
    }

    /// Stops the clients; returns (acked ids, how many clients ended on a transport error).
    async fn finish(self) -> (Vec<String>, usize) {
        self.stop.store(true, Ordering::SeqCst);
        let mut errored = 0;
        for t in self.tasks {
            let r = tokio::time::timeout(Duration::from_secs(15), t)
                .await
                .expect("stream client hung")
                .expect("join");
            errored += usize::from(r.is_some());
        }
        let unexpected = self.unexpected.lock().unwrap().clone();
        assert!(
            unexpected.is_empty(),
            "creates answered something other than 201: {unexpected:?}"
        );
        let acked = self.acked.lock().unwrap().clone();
        (acked, errored)
    }
}

/// Opens a data file or snapshot with the library and asserts every id is a session of `org`.
fn assert_file_has(path: &Path, ids: &[String], org: &str) {
    let db = wa_gateway::store::open_read_only(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let txn = db.begin_read().expect("begin_read");
    let mut missing = Vec::new();
    for id in ids {
        let ulid = ulid::Ulid::from_string(id).expect("ulid");
        match wa_gateway::store::sessions::get(&txn, ulid).expect("sessions::get") {
            Some(s) => assert_eq!(
                s.organization_id, org,
                "session {id} in the wrong organization"
            ),
            None => missing.push(id.clone()),
        }
    }
    assert!(
        missing.is_empty(),
        "{}: {} of {} acknowledged sessions missing: {:?}",
        path.display(),
        missing.len(),
        ids.len(),
        &missing[..missing.len().min(10)]
    );
}



// ---------------------------------------------------------------- tests

/// SIGKILL mid-stream: every create that was acknowledged survives, the file
/// reopens, and `check` passes both beside the running server and after it stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_creates_loses_no_acknowledged_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let mut server = Server::start(data, &[]);
    let token = owner_token(data);
    let api = server.api();
    let first = create_one(&api, &token, "before-stream").await;

    let stream = Stream::start(&api, &token, 4);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before_kill = stream.acked_now().len();
    server.kill9(); // creates are still being sent: the clients never pause
    let (mut acked, errored) = stream.finish().await;
    assert!(
        before_kill >= 20,
        "only {before_kill} creates acknowledged in 1.5 s: the stream did not run"
    );
    assert_eq!(
        errored, 4,
        "every client should have been cut off by the kill, not stopped by the flag"
    );
    acked.push(first);
    let unique: BTreeSet<&String> = acked.iter().collect();
    assert_eq!(unique.len(), acked.len(), "an id was acknowledged twice");

    // Restart on the same data directory: redb recovers the file.
    // With no server running, `check` checks a recovered private copy of the
    // unclean file (the file itself is not written) and passes; so would `backup`.
    let (code, out, err) = check(&["--data", s(data)]);
    assert_eq!(code, Some(0), "check after kill -9 with the server down:\n{out}\n{err}");
    assert!(err.contains("not closed cleanly"), "the repair is announced: {err}");

    let mut server = Server::start(data, &[]);
    let api = server.api();
    for id in &acked {
        let (st, body) = api
            .get(&format!("/api/v1/sessions/{id}"), Some(&token))
            .await;
        assert_eq!(
            st, 200,
            "acknowledged session {id} lost after SIGKILL: {body}"
        );
        assert_eq!(body["id"], json!(id));
        assert_eq!(body["organizationId"], json!("org_a"));
    }
    let listed = api.walk("/api/v1/sessions", &token).await;
    let listed_ids: BTreeSet<String> = listed
        .iter()
        .map(|v| v["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(
        listed_ids.len(),
        listed.len(),
        "the list walk repeated an item"
    );
    let missing: Vec<&String> = acked
        .iter()
        .filter(|id| !listed_ids.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged sessions missing from the list walk: {missing:?}"
    );

    // The file still accepts writes after recovery.
    create_one(&api, &token, "after-restart").await;

    // check beside the running server (read-only open in another process).
    let (code, out, err) = check(&["--data", s(data)]);
    assert_eq!(code, Some(0), "check while serving failed:\n{out}\n{err}");
    let count: usize = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("sessions: "))
        .unwrap_or_else(|| panic!("no `sessions: N` in check output:\n{out}"))
        .parse()
        .expect("count");
    assert!(
        count > acked.len(),
        "check counts {count} sessions, {} were created",
        acked.len() + 1
    );

    server.stop(Duration::from_secs(10));
    let (code, out, err) = check(&["--data", s(data)]);
    assert_eq!(code, Some(0), "check after SIGTERM failed:\n{out}\n{err}");
    assert_file_has(&data_file(data), &acked, "org_a");
}

/// Snapshots taken under load, through the API and the CLI, are complete and valid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_under_load_hold_every_acknowledged_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let out_dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(&data, &[]);
    let owner = owner_token(&data);
    let root = super_token(&data);
    let api = server.api();
    let mut seeded = Vec::new();
    for i in 0..10 {
        seeded.push(create_one(&api, &owner, &format!("seed-{i}")).await);
    }

    let stream = Stream::start(&api, &owner, 3);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // (a) the admin API.
    let mut before_api = seeded.clone();
    before_api.extend(stream.acked_now());
    let (st, body) = api
        .post("/api/v1/admin/backup", Some(&root), json!({}))
        .await;
    assert_eq!(st, 201, "admin backup: {body}");
    let api_path = PathBuf::from(body["path"].as_str().expect("path"));
    let file = body["file"].as_str().expect("file");
    assert_eq!(
        api_path.file_name().and_then(|f| f.to_str()),
        Some(file),
        "{body}"
    );
    let backups = data.join("backups");
    assert_eq!(
        api_path.parent().map(|p| p.canonicalize().expect("canon")),
        Some(backups.canonicalize().expect("data/backups exists")),
        "backup not written into <data>/backups: {body}"
    );
    let meta = std::fs::metadata(&api_path).expect("backup file exists");
    assert_eq!(body["sizeBytes"], json!(meta.len()), "{body}");
    let api_sessions = body["sessions"].as_u64().expect("sessions");
    assert!(
        api_sessions as usize >= before_api.len(),
        "snapshot says {api_sessions} sessions, {} acknowledged before: {body}",
        before_api.len()
    );
    assert!(
        body["createdAt"]
            .as_i64()
            .is_some_and(|t| t > 1_600_000_000_000),
        "createdAt in ms: {body}"
    );

    // (b) the CLI, in another process, while the server keeps writing.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cli_path = out_dir.path().join("snap.redb");
    let mut before_cli = seeded.clone();
    before_cli.extend(stream.acked_now());
    let args = ["backup", "--data", s(&data), "--out", s(&cli_path)].map(str::to_string);
    let out = tokio::task::spawn_blocking(move || run(&args.each_ref().map(String::as_str)))
        .await
        .expect("join");
    assert!(
        out.status.success(),
        "backup CLI while serving: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let acked_at_cli = stream.acked_now().len();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (acked, _) = stream.finish().await;
    assert!(
        acked.len() > acked_at_cli,
        "creates stalled after the CLI backup ({} then {})",
        acked_at_cli,
        acked.len()
    );

    for (path, ids) in [(&api_path, &before_api), (&cli_path, &before_cli)] {
        let (code, out, err) = check(&[s(path)]);
        assert_eq!(code, Some(0), "check {}:\n{out}\n{err}", path.display());
        assert_file_has(path, ids, "org_a");
    }
    // Only finished snapshots are left behind.
    let names: Vec<String> = std::fs::read_dir(&backups)
        .expect("read backups")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec![file.to_string()],
        "unexpected files in data/backups"
    );

    // The CLI refuses to overwrite an existing snapshot, and leaves it as it was.
    let before = std::fs::read(&cli_path).expect("read snapshot");
    let out = run(&["backup", "--data", s(&data), "--out", s(&cli_path)]);
    assert!(
        !out.status.success(),
        "backup overwrote {}: {}",
        cli_path.display(),
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("exists"),
        "no clear message: {}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read(&cli_path).expect("read snapshot"),
        before,
        "existing snapshot was modified"
    );
    let leftovers: Vec<_> = std::fs::read_dir(out_dir.path())
        .expect("read")
        .map(|e| e.expect("e").file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "temporary files left beside the snapshot: {leftovers:?}"
    );

    // A snapshot is a working data directory of its own.
    let restore = tempfile::tempdir().expect("tempdir");
    std::fs::copy(&cli_path, data_file(restore.path())).expect("copy snapshot");
    std::fs::copy(data.join("issuer.pk8"), restore.path().join("issuer.pk8")).expect("copy key");
    let restored = Server::start(restore.path(), &[]);
    let rapi = restored.api();
    for id in before_cli.iter().step_by(7) {
        let (st, body) = rapi
            .get(&format!("/api/v1/sessions/{id}"), Some(&owner))
            .await;
        assert_eq!(st, 200, "restored gateway lacks {id}: {body}");
    }
    drop(restored);
    server.stop(Duration::from_secs(10));
}

/// SIGTERM drains: a request whose body is still arriving completes, the
/// process exits 0 promptly, and the file is closed cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_and_exits_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let mut server = Server::start(data, &[]);
    let token = owner_token(data);
    let api = server.api();
    create_one(&api, &token, "warm-up").await;

    // A request in flight: headers and half of the body sent, the rest after SIGTERM.
    let body = json!({"label": "slow-request-in-flight"}).to_string();
    let (head, tail) = body.split_at(body.len() / 2);
    let mut slow = TcpStream::connect(&server.addr).expect("connect");
    slow.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    write!(
        slow,
        "POST /api/v1/sessions HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{head}",
        server.addr,
        body.len()
    )
    .expect("write head");
    slow.flush().expect("flush");

    let stream = Stream::start(&api, &token, 3);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let signalled = Instant::now();
    server.sigterm();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let still_running = server
        .child
        .as_mut()
        .expect("child")
        .try_wait()
        .expect("try_wait")
        .is_none();
    assert!(
        still_running,
        "serve exited while a request was still in flight:\n{}",
        server.log()
    );
    slow.write_all(tail.as_bytes()).expect("write tail");
    let mut resp = Vec::new();
    let _ = slow.read_to_end(&mut resp);
    let resp = text(&resp);
    assert!(
        resp.starts_with("HTTP/1.1 201"),
        "in-flight request was not completed:\n{resp}\n{}",
        server.log()
    );
    let resp_body: Value =
        serde_json::from_str(resp.split("\r\n\r\n").nth(1).unwrap_or("")).expect("json body");
    let slow_id = resp_body["id"].as_str().expect("id").to_string();

    let status = tokio::task::block_in_place(|| server.wait_exit(Duration::from_secs(8)));
    let took = signalled.elapsed();
    let status = status.unwrap_or_else(|| {
        panic!(
            "serve did not exit within 8 s of SIGTERM:\n{}",
            server.log()
        )
    });
    assert!(
        status.success(),
        "serve exited with {status} after SIGTERM:\n{}",
        server.log()
    );
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    let (mut acked, errored) = stream.finish().await;
    assert!(
        errored > 0,
        "the stream clients never saw the server go away"
    );
    assert!(!acked.is_empty(), "the stream acknowledged nothing");
    let log = server.log();
    assert!(
        log.contains("closed cleanly"),
        "no clean-close line in the log:\n{log}"
    );
    assert!(!log.contains("panicked"), "{log}");

    let (code, out, err) = check(&["--data", s(data)]);
    assert_eq!(
        code,
        Some(0),
        "check after graceful shutdown:\n{out}\n{err}"
    );
    acked.push(slow_id);
    assert_file_has(&data_file(data), &acked, "org_a");
}

/// A second `serve` on a data directory in use fails fast and says why.
#[test]
fn second_server_on_same_data_dir_fails_fast() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_path_buf();
    let first = Server::start(&data, &[]);

    let started = Instant::now();
    let mut second = Server::spawn_with(|c, addr| {
        c.arg("--data").arg(&data).arg("--listen").arg(addr);
    });
    let status = second.wait_exit(Duration::from_secs(10));
    let log = second.log();
    let status =
        status.unwrap_or_else(|| panic!("second serve still running after 10 s (hang?):\n{log}"));
    assert!(!status.success(), "second serve exited 0:\n{log}");
    assert!(
        status.code().is_some(),
        "second serve died by a signal ({status}):\n{log}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?} to fail",
        started.elapsed()
    );
    assert!(!log.contains("panicked"), "second serve panicked:\n{log}");
    let lower = log.to_lowercase();
    assert!(
        lower.contains("already open") || lower.contains("lock") || lower.contains("in use"),
        "message does not say the data file is in use:\n{log}"
    );
    assert_eq!(
        raw_status(&second.addr, "/healthz"),
        None,
        "the failed server left a listener behind"
    );

    // The first server is unaffected.
    assert_eq!(raw_status(&first.addr, "/readyz"), Some(200));
    let (code, out, err) = check(&["--data", s(&data)]);
    assert_eq!(code, Some(0), "{out}\n{err}");
}
