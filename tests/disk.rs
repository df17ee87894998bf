//! A filling disk, through the real binary (CONTRACT §11 and "§11
//! (continued)"): below `--min-free-disk` writes answer 503 while reads keep
//! working, and writes resume by themselves when space returns; a write that
//! still meets an I/O error (ENOSPC on a full tmpfs) never ends the process:
//! it keeps serving reads, reports `degraded`, and recovers by itself, also
//! after a restart on a disk that is still full. Sessions that could not
//! start below the floor start by themselves when space returns, and inbound
//! messages and receipts that arrived meanwhile are stored then.
//!
//! The tmpfs tests mount a small tmpfs (`mount`, as root). Where plain
//! `mount` is refused, the test runs itself again inside
//! `unshare --user --map-root-user --mount` (a private mount namespace where
//! it may mount one); if neither works it FAILS, loudly, rather than skip:
//! a disk test that silently passes on CI proves nothing.

#[path = "common/process.rs"]
mod process;
#[path = "common/rng.rs"]
mod rng;

use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use process::{owner_token, s, Api, Server};
use serde_json::{json, Value};

/// Free bytes for unprivileged users under `dir`.
fn free(dir: &Path) -> u64 {
    wa_gateway::store::free_bytes(dir).expect("statvfs")
}

/// A file of `len` bytes, really allocated (not sparse).
fn filler(path: &Path, len: u64) -> std::io::Result<()> {
    let f = std::fs::File::create(path)?;
    // SAFETY: fallocate on an open fd we own, with plain integer arguments.
    let rc = unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, len as libc::off_t) };
    if rc == 0 {
        return f.sync_all();
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ENOSPC) {
        return Err(err);
    }
    use std::io::Write;
    let mut f = f;
    let chunk = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    f.sync_all()
}

/// Fills the filesystem of `dir` completely.
fn fill_up(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).expect("filler");
    let chunk = vec![1u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
}

/// A tmpfs of `mib` MiB mounted on a new temp dir, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

/// Set in the child run of a test inside `unshare` (see [`Tmpfs::mount`]).
const IN_NAMESPACE: &str = "WAG_DISK_TEST_IN_NAMESPACE";

impl Tmpfs {
    /// Mounts a tmpfs for test `test` (its function name). `None` means the
    /// test has just run, and passed, in a child process inside a private
    /// user and mount namespace (plain `mount` was refused here): the
    /// caller returns. Panics when no tmpfs can be had at all.
    fn mount(mib: u64, test: &str) -> Option<Tmpfs> {
        // `WAG_DISK_TEST_FORCE_UNSHARE=1` tries the namespace path even where `mount` works.
        let forced = std::env::var_os("WAG_DISK_TEST_FORCE_UNSHARE").is_some() && std::env::var_os(IN_NAMESPACE).is_none();
        if !forced {
            if let Some(t) = Tmpfs::try_mount(mib) {
                return Some(t);
            }
        }
        assert!(
            std::env::var_os(IN_NAMESPACE).is_none(),
            "cannot mount a tmpfs even inside a private mount namespace: this disk test cannot run here"
        );
        let exe = std::env::current_exe().expect("current_exe");
        let out = std::process::Command::new("unshare")
            .args(["--user", "--map-root-user", "--mount"])
            .arg(&exe)
            .args(["--exact", test, "--nocapture", "--test-threads", "1"])
            .env(IN_NAMESPACE, "1")
            .output();
        eprintln!("ran {test} inside `unshare --user --map-root-user --mount`");
        match out {
            Ok(o) if o.status.success() && String::from_utf8_lossy(&o.stdout).contains("1 passed") => None,
            Ok(o) => panic!(
                "`mount` is refused here, and the run inside `unshare --user --map-root-user --mount` failed ({}):\n{}\n{}",
                o.status,
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => panic!("`mount` is refused here and `unshare` could not run ({e}): this disk test cannot run here"),
        }
    }

    fn try_mount(mib: u64) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs", s(dir.path())])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|st| st.success());
        ok.then_some(Tmpfs { dir })
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Creates a session; status 0 when nothing answered (the process is gone).
async fn create(api: &process::Api, token: &str, label: &str) -> (u16, Value) {
    api.try_send(hyper::Method::POST, "/api/v1/sessions", Some(token), Some(json!({"label": label, "start": false})))
        .await
        .unwrap_or((0, Value::Null))
}

/// Creates `n` sessions that must be acknowledged (201); returns their ids.
async fn create_acked(api: &process::Api, token: &str, prefix: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let (st, body) = create(api, token, &format!("{prefix}-{i}")).await;
        assert_eq!(st, 201, "{body}");
        ids.push(body["id"].as_str().expect("id").to_string());
    }
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn below_min_free_disk_writes_are_refused_reads_work_and_writes_resume() {
    let mount = Tmpfs::try_mount(256);
    let scratch = tempfile::tempdir().expect("tempdir");
    let root = mount.as_ref().map_or(scratch.path().to_path_buf(), Tmpfs::path);
    let data = root.join("data");
    let floor = free(&root).saturating_sub(96 << 20);
    let mut server = Server::start(&data, &["--engine", "sim", "--min-free-disk", &floor.to_string()]);
    let api = server.api();
    let token = owner_token(&data);
    let acked = create_acked(&api, &token, "before", 5).await;
    let (_, health) = api.get("/healthz", None).await;
    assert_eq!(health["store"]["writable"], true, "{health}");

    // The disk fills up (someone else's file): writes pause with 503.
    let fill = root.join("filler.bin");
    filler(&fill, 160 << 20).expect("filler");
    let (st, body) = create(&api, &token, "refused").await;
    assert_eq!(st, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    let (st, health) = api.get("/healthz", None).await;
    assert_eq!(st, 200);
    assert_eq!(health["store"]["writable"], false, "{health}");
    // Reads keep working, and everything acknowledged is there.
    let listed = api.walk("/api/v1/sessions", &token).await;
    for id in &acked {
        assert!(listed.iter().any(|s| s["id"] == id.as_str()), "{id} missing");
        let (st, _) = api.get(&format!("/api/v1/sessions/{id}"), Some(&token)).await;
        assert_eq!(st, 200);
    }

    // Space returns: writes resume without a restart.
    std::fs::remove_file(&fill).expect("remove filler");
    let (st, body) = create(&api, &token, "after").await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(api.get("/healthz", None).await.1["store"]["writable"], true);
    server.stop(Duration::from_secs(15));
}


/// Polls `f` every 100 ms until it holds, for up to `secs` seconds.
async fn eventually<F, Fut>(secs: u64, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let end = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match f().await {
            Ok(()) => return,
            Err(why) if std::time::Instant::now() >= end => panic!("{what} within {secs} s: {why}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Creates a session (started), links it to `phone` on the sim, waits for `working`.
async fn linked_session(api: &Api, token: &str, label: &str, phone: &str) -> String {
    let id = process::create_one(api, token, label).await;
    api.wait_status(token, &id, "scan_qr_code").await;
    let (st, body) = api.post(&format!("/api/v1/sessions/{id}/sim/pair"), Some(token), json!({"phoneNumber": phone})).await;
    assert!(st == 200 || st == 202, "pair: {st} {body}");
    api.wait_status(token, &id, "working").await;
    id
}

/// A sim gateway on a fresh 256 MiB tmpfs with a 64 MiB `--min-free-disk`
/// floor and one linked session: the setup of the tests that push the disk
/// under the floor while messages arrive.
struct FloorServer {
    mount: Tmpfs,
    root: PathBuf,
    server: Server,
    api: Api,
    token: String,
    id: String,
}

impl FloorServer {
    /// `None` where [`Tmpfs::mount`] hands the test to a namespace re-run.
    /// The caller keeps `mount` alive (its drop unmounts).
    async fn start(test: &str, label: &str, phone: &str) -> Option<FloorServer> {
        let mount = Tmpfs::mount(256, test)?;
        let root = mount.path();
        let data = root.join("data");
        let server = Server::start(&data, &["--engine", "sim", "--min-free-disk", &(64u64 << 20).to_string()]);
        let api = server.api();
        let token = owner_token(&data);
        let id = linked_session(&api, &token, label, phone).await;
        Some(FloorServer { mount, root, server, api, token, id })
    }
}


/// Every message of session `id` in `direction`.
async fn messages(api: &Api, token: &str, id: &str, direction: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let url = format!("/api/v1/sessions/{id}/messages?direction={direction}&limit=200{cursor}");
        let (st, body) = api.get(&url, Some(token)).await;
        assert_eq!(st, 200, "{url}: {body}");
        out.extend(body["data"].as_array().expect("data").iter().cloned());
        match body["nextCursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn started_below_the_floor_it_serves_reads_and_its_sessions_and_queues_resume_when_space_returns() {
    let Some(mount) = Tmpfs::mount(256, "started_below_the_floor_it_serves_reads_and_its_sessions_and_queues_resume_when_space_returns") else { return };
    let root = mount.path();
    let data = root.join("data");
    let mut first = Server::start(&data, &["--engine", "sim", "--min-free-disk", "0"]);
    let api = first.api();
    let token = owner_token(&data);
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(linked_session(&api, &token, &format!("s{i}"), &format!("6281100000{i:03}")).await);
    }
    // Messages that fall due while the next gateway runs below the floor.
    let due = wa_gateway::store::now_ms() + 1_500;
    let mut queued = Vec::new();
    for id in &ids {
        for n in 0..2 {
            let (st, body) = api
                .post(&format!("/api/v1/sessions/{id}/messages"), Some(&token), json!({"to": "6281234567890", "text": format!("m{n}"), "sendAt": due}))
                .await;
            assert_eq!(st, 202, "{body}");
            queued.push((id.clone(), body["id"].as_str().expect("id").to_string()));
        }
    }
    first.stop(Duration::from_secs(15));

    // The disk fills up; the gateway starts (as after a restart) below the floor.
    let floor: u64 = 64 << 20;
    let fill = root.join("filler.bin");
    filler(&fill, free(&root) - (32 << 20)).expect("filler");
    let mut server = Server::start(&data, &["--engine", "sim", "--min-free-disk", &floor.to_string()]);
    let api = server.api();
    let (st, health) = api.get("/healthz", None).await;
    assert_eq!((st, &health["status"]), (200, &json!("degraded")), "{health}");
    assert_eq!(health["store"]["writable"], false, "{health}");
    let listed = api.walk("/api/v1/sessions", &token).await;
    assert_eq!(listed.len(), 4, "reads are served below the floor");
    for (id, msg) in &queued {
        let (st, m) = api.get(&format!("/api/v1/sessions/{id}/messages/{msg}"), Some(&token)).await;
        assert_eq!(st, 200, "{m}");
    }
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    assert!(server.child.as_mut().expect("child").try_wait().expect("try_wait").is_none(), "it keeps running");

    // Space returns: with no API call, every session works and its queue drains.
    std::fs::remove_file(&fill).expect("remove filler");
    let freed = std::time::Instant::now();
    eventually(15, "every session working", || {
        let (api, token, ids) = (api.clone(), token.clone(), ids.clone());
        async move {
            for id in &ids {
                let (_, s) = api.get(&format!("/api/v1/sessions/{id}"), Some(&token)).await;
                if s["status"] != "working" {
                    return Err(format!("{id}: {}", s["status"]));
                }
            }
            Ok(())
        }
    })
    .await;
    eventually(15, "every queued message sent", || {
        let (api, token, queued) = (api.clone(), token.clone(), queued.clone());
        async move {
            for (id, msg) in &queued {
                let (_, m) = api.get(&format!("/api/v1/sessions/{id}/messages/{msg}"), Some(&token)).await;
                if m["status"] != "sent" {
                    return Err(format!("{msg}: {}", m["status"]));
                }
            }
            Ok(())
        }
    })
    .await;
    eprintln!("4 sessions working and 8 queued messages sent {:?} after space returned", freed.elapsed());
    assert_eq!(api.get("/healthz", None).await.1["status"], "ok");
    server.stop(Duration::from_secs(15));
}

#[tokio::test(flavor = "multi_thread")]
async fn inbound_messages_and_a_receipt_under_the_floor_are_all_stored_when_space_returns() {
    let Some(FloorServer { mount: _mount, root, mut server, api, token, id }) = FloorServer::start("inbound_messages_and_a_receipt_under_the_floor_are_all_stored_when_space_returns", "in", "6281100000100").await else { return };
    let (st, sent) = api.post(&format!("/api/v1/sessions/{id}/messages"), Some(&token), json!({"to": "6281234567890", "text": "out"})).await;
    assert_eq!(st, 202, "{sent}");
    let msg = sent["id"].as_str().expect("id").to_string();
    let wa = sent["waMessageId"].as_str().expect("waMessageId").to_string();
    eventually(10, "the outbound message sent", || {
        let (api, token, id, msg) = (api.clone(), token.clone(), id.clone(), msg.clone());
        async move {
            let (_, m) = api.get(&format!("/api/v1/sessions/{id}/messages/{msg}"), Some(&token)).await;
            if m["status"] == "sent" { Ok(()) } else { Err(m["status"].to_string()) }
        }
    })
    .await;

    let fill = root.join("filler.bin");
    filler(&fill, free(&root) - (32 << 20)).expect("filler");
    assert_eq!(api.get("/healthz", None).await.1["store"]["writable"], false);
    let mut acked = Vec::new();
    for i in 0..30 {
        let (st, body) = api.post(&format!("/api/v1/sessions/{id}/sim/incoming"), Some(&token), json!({"from": "6281200000001", "text": format!("in {i}")})).await;
        assert_eq!(st, 202, "incoming {i}: {body}");
        acked.push(body["id"].as_str().expect("id").to_string());
    }
    let (st, body) = api.post(&format!("/api/v1/sessions/{id}/sim/receipt"), Some(&token), json!({"waMessageId": wa, "status": "read"})).await;
    assert_eq!(st, 202, "receipt: {body}");
    assert!(messages(&api, &token, &id, "in").await.is_empty(), "nothing can be stored below the floor");

    std::fs::remove_file(&fill).expect("remove filler");
    let freed = std::time::Instant::now();
    eventually(10, "all 30 inbound messages stored, in order, and the receipt applied", || {
        let (api, token, id, msg, acked) = (api.clone(), token.clone(), id.clone(), msg.clone(), acked.clone());
        async move {
            let stored: Vec<String> = messages(&api, &token, &id, "in").await.iter().map(|m| m["waMessageId"].as_str().unwrap_or("").to_string()).collect();
            if stored != acked {
                return Err(format!("{} of {} stored", stored.len(), acked.len()));
            }
            let (_, m) = api.get(&format!("/api/v1/sessions/{id}/messages/{msg}"), Some(&token)).await;
            if m["status"] != "read" {
                return Err(format!("outbound is {}", m["status"]));
            }
            Ok(())
        }
    })
    .await;
    eprintln!("30 held inbound messages and the receipt stored {:?} after space returned", freed.elapsed());
    server.stop(Duration::from_secs(15));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_enospc_and_a_restart_on_the_full_disk_serve_reads_and_recover_when_space_returns() {
    let Some(mount) = Tmpfs::mount(64, "an_enospc_and_a_restart_on_the_full_disk_serve_reads_and_recover_when_space_returns") else { return };
    let data = mount.path().join("data");
    // No floor: the gateway meets the full disk itself.
    let mut server = Server::start(&data, &["--engine", "sim", "--min-free-disk", "0"]);
    let api = server.api();
    let token = owner_token(&data);
    let linked = linked_session(&api, &token, "linked", "6281100000200").await;
    let mut acked = create_acked(&api, &token, "early", 3).await;
    acked.push(linked.clone());
    let fill = mount.path().join("filler.bin");
    fill_up(&fill);
    let label = "x".repeat(120);
    let mut refused = 0;
    for _ in 0..50_000 {
        let (st, body) = create(&api, &token, &label).await;
        match st {
            201 => acked.push(body["id"].as_str().expect("id").to_string()),
            503 => {
                refused += 1;
                if refused >= 20 {
                    break;
                }
            }
            other => panic!("unexpected {other}: {body}\n{}", server.log()),
        }
    }
    assert_eq!(refused, 20, "the disk never filled up");
    // It does not exit: it serves reads and says it is degraded.
    assert!(server.child.as_mut().expect("child").try_wait().expect("try_wait").is_none(), "{}", server.log());
    let (st, health) = api.get("/healthz", None).await;
    assert_eq!((st, &health["status"]), (200, &json!("degraded")), "{health}");
    let listed = api.walk("/api/v1/sessions", &token).await;
    for id in &acked {
        assert!(listed.iter().any(|s| s["id"] == id.as_str()), "acknowledged {id} not readable");
    }

    // A crash, then a restart while the disk is still full: reads, no exit.
    server.kill9();
    let mut again = Server::start(&data, &["--engine", "sim", "--min-free-disk", "0"]);
    let api = again.api();
    let listed = api.walk("/api/v1/sessions", &token).await;
    for id in &acked {
        assert!(listed.iter().any(|s| s["id"] == id.as_str()), "acknowledged {id} lost ({} acked)", acked.len());
    }
    let (st, health) = api.get("/healthz", None).await;
    assert_eq!((st, &health["status"]), (200, &json!("degraded")), "{health}");
    let (st, _) = create(&api, &token, "still-full").await;
    assert_eq!(st, 503);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(again.child.as_mut().expect("child").try_wait().expect("try_wait").is_none(), "{}", again.log());

    // Space returns: writes work and the session is working, with no API call but reads.
    std::fs::remove_file(&fill).expect("remove filler");
    let freed = std::time::Instant::now();
    eventually(15, "writes work and the session works", || {
        let (api, token, linked) = (api.clone(), token.clone(), linked.clone());
        async move {
            let (_, s) = api.get(&format!("/api/v1/sessions/{linked}"), Some(&token)).await;
            let health = api.get("/healthz", None).await.1;
            if s["status"] == "working" && health["status"] == "ok" { Ok(()) } else { Err(format!("{} / {health}", s["status"])) }
        }
    })
    .await;
    eprintln!("after ENOSPC and a restart on the full disk: writable and working {:?} after space returned", freed.elapsed());
    let (st, body) = create(&api, &token, "after").await;
    assert_eq!(st, 201, "{body}");
    again.stop(Duration::from_secs(15));
}

#[tokio::test(flavor = "multi_thread")]
async fn sim_incoming_acknowledged_is_stored_across_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let args = ["--engine", "sim", "--min-free-disk", "0"];
    let mut server = Server::start(&data, &args);
    let token = owner_token(&data);
    let id = linked_session(&server.api(), &token, "in", "6281100000300").await;
    let seed = wa_gateway::store::now_ms() as u64;
    let mut rng = rng::XorShift::new(seed);
    let mut acked: Vec<String> = Vec::new();
    for cycle in 0..5 {
        let api = server.api();
        api.wait_status(&token, &id, "working").await;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut tasks = Vec::new();
        for w in 0..8 {
            let (api, token, id, stop) = (api.clone(), token.clone(), id.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    n += 1;
                    let body = json!({"from": "6281200000002", "text": format!("c{cycle} w{w} n{n}")});
                    match api.try_send(hyper::Method::POST, &format!("/api/v1/sessions/{id}/sim/incoming"), Some(&token), Some(body)).await {
                        Ok((202, b)) => mine.push(b["id"].as_str().expect("id").to_string()),
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
                mine
            }));
        }
        tokio::time::sleep(Duration::from_millis(300 + rng.below(1_200) as u64)).await;
        server.kill9();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for t in tasks {
            acked.extend(t.await.expect("poster"));
        }
        server = Server::start(&data, &args);
    }
    let stored: std::collections::HashSet<String> = messages(&server.api(), &token, &id, "in")
        .await
        .iter()
        .map(|m| m["waMessageId"].as_str().unwrap_or("").to_string())
        .collect();
    let lost: Vec<&String> = acked.iter().filter(|w| !stored.contains(*w)).collect();
    assert!(acked.len() > 100, "too few acknowledged to mean anything: {}", acked.len());
    assert!(lost.is_empty(), "{} of {} acknowledged lost (seed {seed}): {:?}", lost.len(), acked.len(), &lost[..lost.len().min(5)]);
    eprintln!("sim/incoming across 5 kill -9 cycles: {} acknowledged, 0 lost", acked.len());
    server.stop(Duration::from_secs(15));
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_held_bound_the_session_is_disconnected_and_nothing_acknowledged_is_dropped() {
    let Some(FloorServer { mount: _mount, root, mut server, api, token, id }) = FloorServer::start("past_the_held_bound_the_session_is_disconnected_and_nothing_acknowledged_is_dropped", "bound", "6281100000400").await else { return };
    let fill = root.join("filler.bin");
    filler(&fill, free(&root) - (32 << 20)).expect("filler");
    // The buffer holds 10,000 events; one more pushes it past the bound.
    let mut acked = Vec::new();
    let mut refused = 0;
    for i in 0..10_100 {
        let (st, body) = api.post(&format!("/api/v1/sessions/{id}/sim/incoming"), Some(&token), json!({"from": "6281200000003", "text": format!("b{i}")})).await;
        match st {
            202 => acked.push(body["id"].as_str().expect("id").to_string()),
            409 => refused += 1,
            other => panic!("incoming {i}: {other} {body}"),
        }
    }
    assert!(acked.len() > 10_000 && acked.len() < 10_100, "{} acknowledged", acked.len());
    assert_eq!(refused, 10_100 - acked.len(), "the disconnected session refuses the rest");

    std::fs::remove_file(&fill).expect("remove filler");
    let freed = std::time::Instant::now();
    eventually(20, "every acknowledged message stored and the session working again", || {
        let (api, token, id, n) = (api.clone(), token.clone(), id.clone(), acked.len());
        async move {
            let stored = messages(&api, &token, &id, "in").await.len();
            let (_, s) = api.get(&format!("/api/v1/sessions/{id}"), Some(&token)).await;
            if stored == n && s["status"] == "working" { Ok(()) } else { Err(format!("{stored} of {n} stored, {}", s["status"])) }
        }
    })
    .await;
    eprintln!("{} held past the bound stored {:?} after space returned", acked.len(), freed.elapsed());
    let stored: Vec<String> = messages(&api, &token, &id, "in").await.iter().map(|m| m["waMessageId"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(stored, acked, "stored in the order they were acknowledged");
    server.stop(Duration::from_secs(15));
}
