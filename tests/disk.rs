//! A filling disk, through the real binary (CONTRACT §11): below
//! `--min-free-disk` writes answer 503 while reads keep working, and writes
//! resume by themselves when space returns; a write that still meets an I/O
//! error (ENOSPC on a full tmpfs) makes the gateway exit with status 74, and
//! no acknowledged write is lost. The tmpfs test needs `mount` (root);
//! where the machine refuses it, that test says so and passes vacuously,
//! and the floor test runs on the temp dir's own disk.

#[path = "common/process.rs"]
mod process;

use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use process::{owner_token, s, Server};
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

impl Tmpfs {
    fn mount(mib: u64) -> Option<Tmpfs> {
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
    let mount = Tmpfs::mount(256);
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

#[tokio::test(flavor = "multi_thread")]
async fn an_io_error_exits_74_and_loses_no_acknowledged_write() {
    let Some(mount) = Tmpfs::mount(64) else {
        eprintln!("skipped: this machine does not let the test mount a tmpfs");
        return;
    };
    let data = mount.path().join("data");
    // No floor: the gateway meets the full disk itself.
    let mut server = Server::start(&data, &["--engine", "sim", "--min-free-disk", "0"]);
    let api = server.api();
    let token = owner_token(&data);
    let mut acked = create_acked(&api, &token, "early", 3).await;
    let fill = mount.path().join("filler.bin");
    fill_up(&fill);
    let label = "x".repeat(120);
    let mut refused = 0;
    for _ in 0..50_000 {
        let (st, body) = create(&api, &token, &label).await;
        match st {
            201 => acked.push(body["id"].as_str().expect("id").to_string()),
            0 => break, // the process is gone
            503 => refused += 1,
            other => panic!("unexpected {other}: {body}\n{}", server.log()),
        }
        if server.child.as_mut().expect("child").try_wait().expect("try_wait").is_some() {
            break;
        }
    }
    let status = server.wait_exit(Duration::from_secs(15)).expect("the gateway exits after an I/O error");
    assert_eq!(status.code(), Some(74), "exit status; log:\n{}", server.log());
    assert!(server.log().contains("exiting with status 74"), "{}", server.log());
    assert!(refused <= 1_000, "it does not keep answering errors: {refused}");

    // Space returns; the service manager starts it again: nothing acknowledged is lost.
    std::fs::remove_file(&fill).expect("remove filler");
    let mut again = Server::start(&data, &["--engine", "sim", "--min-free-disk", "0"]);
    let listed = again.api().walk("/api/v1/sessions", &token).await;
    for id in &acked {
        assert!(listed.iter().any(|s| s["id"] == id.as_str()), "acknowledged {id} lost ({} acked)", acked.len());
    }
    let (st, _) = create(&again.api(), &token, "after").await;
    assert_eq!(st, 201);
    again.stop(Duration::from_secs(15));
}
