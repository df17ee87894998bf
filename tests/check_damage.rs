//! `check` and `backup` on damaged, crashed and live data files, through the
//! real binary (CONTRACT §7/§11):
//!
//! * 500 randomly corrupted copies of a real data file: `check` never panics
//!   (exit 0 or 1), reports every flip inside a stored value, and never
//!   changes the bytes of the file it checks;
//! * a crashed (kill -9) file and a byte copy of a live one are checked without
//!   being written; `check --repair` (and `WAG_REPAIR`) repairs in place;
//! * `backup --out` refuses a directory, a trailing slash and an existing file
//!   before writing anything, and leaves no temporary file behind.

#[path = "common/process.rs"]
mod process;
#[path = "common/rng.rs"]
mod rng;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use process::*;
use rng::XorShift;
use redb::ReadableTable;
use serde_json::json;

/// The gateway id every fixture session carries: a distinctive byte string
/// to find inside stored values.
const GATEWAY_ID: &str = "gw-dmg-4f2a9c71";
const API_KEY_NAME: &str = "dmg-apikey-name-91c3e8";

fn label(i: usize) -> String {
    format!("dmg-label-{i:02}-7b1e5d")
}

/// Runs `f` on a fresh two-thread runtime (the HTTP client needs one).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Creates `n` sessions with the distinctive labels (not started) and one
/// api-key, through the API of the running `server`.
fn populate(server: &Server, data: &Path, n: usize) {
    let token = owner_token(data);
    let api = server.api();
    block_on(async {
        for i in 0..n {
            let (st, body) = api
                .post(
                    "/api/v1/sessions",
                    Some(&token),
                    json!({"label": label(i), "start": false}),
                )
                .await;
            assert_eq!(st, 201, "create session: {body}");
            assert_eq!(body["gatewayId"], json!(GATEWAY_ID), "{body}");
        }
        let (st, body) = api
            .post(
                "/api/v1/api-keys",
                Some(&token),
                json!({"name": API_KEY_NAME, "permissions": ["sessions:read"]}),
            )
            .await;
        assert_eq!(st, 201, "create api-key: {body}");
    });
}

/// A real data file: the server (sim engine) creates `sessions` sessions and
/// an api-key, then stops cleanly.
fn fixture(data: &Path, sessions: usize) -> PathBuf {
    let mut server = Server::start(data, &["--engine", "sim", "--gateway-id", GATEWAY_ID]);
    populate(&server, data, sessions);
    server.stop(Duration::from_secs(10));
    data_file(data)
}

/// Every stored row of the tables that hold the distinctive values, as bytes:
/// what the gateway reads from the file.
fn dump(path: &Path) -> Vec<u8> {
    use wa_gateway::store::tables::{API_KEYS, ORGS, SESSIONS};
    let db = wa_gateway::store::open_read_only(path).expect("open");
    let txn = db.begin_read().expect("read");
    let mut out = Vec::new();
    for row in txn
        .open_table(SESSIONS)
        .expect("sessions")
        .iter()
        .expect("iter")
    {
        let (k, v) = row.expect("row");
        out.extend_from_slice(&k.value().to_be_bytes());
        out.extend_from_slice(v.value());
    }
    for row in txn
        .open_table(API_KEYS)
        .expect("api_keys")
        .iter()
        .expect("iter")
    {
        let (k, v) = row.expect("row");
        out.extend_from_slice(&k.value().to_be_bytes());
        out.extend_from_slice(v.value());
    }
    for row in txn.open_table(ORGS).expect("orgs").iter().expect("iter") {
        let (k, v) = row.expect("row");
        out.extend_from_slice(k.value().as_bytes());
        out.extend_from_slice(v.value());
    }
    out
}

/// Byte ranges of the file that lie inside a stored value: every occurrence
/// of a distinctive string whose change changes what the gateway reads (the
/// others are stale copies in pages no commit refers to any more).
fn value_ranges(
    file: &Path,
    bytes: &[u8],
    sessions: usize,
    scratch: &Path,
) -> Vec<std::ops::Range<usize>> {
    let mut needles: Vec<String> = (0..sessions).map(label).collect();
    needles.push(GATEWAY_ID.into());
    needles.push(API_KEY_NAME.into());
    let original = dump(file);
    let probe = scratch.join("probe.redb");
    let mut live = Vec::new();
    let mut stale = 0;
    for needle in &needles {
        let n = needle.as_bytes();
        let mut at = 0;
        while let Some(i) = bytes[at..].windows(n.len()).position(|w| w == n) {
            let start = at + i;
            at = start + 1;
            let mut changed = bytes.to_vec();
            changed[start + n.len() / 2] ^= 0x20;
            std::fs::write(&probe, &changed).expect("write probe");
            if dump(&probe) != original {
                live.push(start..start + n.len());
            } else {
                stale += 1;
            }
        }
    }
    let _ = std::fs::remove_file(&probe);
    eprintln!(
        "{} bytes; {} occurrences of the distinctive strings inside stored values, {stale} stale copies",
        bytes.len(),
        live.len()
    );
    live
}

/// 500 corrupted copies: 250 single-byte flips anywhere, 250 inside stored
/// values. Every check exits 0 or 1 (never 101 or a signal), every flip inside
/// a value is reported, and no check changes the file it checks.
#[test]
fn check_survives_and_reports_random_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // CHECK_DAMAGE_SESSIONS makes a bigger file (deeper trees); the default is 12.
    let sessions: usize = std::env::var("CHECK_DAMAGE_SESSIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(12);
    let file = fixture(&data, sessions);
    let bytes = std::fs::read(&file).expect("read fixture");
    let (code, out, err) = check(&[s(&file)]);
    assert_eq!(code, Some(0), "the fixture itself must pass:\n{out}\n{err}");
    assert!(out.contains(&format!("sessions: {sessions}")), "{out}");

    let ranges = value_ranges(&file, &bytes, sessions, dir.path());
    // Every label and the api-key name, and the gateway id of every session.
    assert!(
        ranges.len() > 2 * sessions,
        "expected every distinctive string inside stored values: {} found",
        ranges.len()
    );

    // The flips: (offset, mask, inside a stored value).
    let seed = std::env::var("CHECK_DAMAGE_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0x5eed_c0de_d00d_f00d);
    let mut rng = XorShift::new(seed);
    // CHECK_DAMAGE_FLIPS runs a longer campaign (the default is 500).
    let total: usize = std::env::var("CHECK_DAMAGE_FLIPS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500);
    let mut flips = Vec::new();
    for i in 0..total {
        if i % 2 == 0 {
            flips.push((rng.below(bytes.len()), rng.mask(), false));
        } else {
            let r = &ranges[rng.below(ranges.len())];
            flips.push((r.start + rng.below(r.len()), rng.mask(), true));
        }
    }

    let copies = dir.path().join("copies");
    std::fs::create_dir(&copies).expect("mkdir");
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::<String>::new());
    let tally = Mutex::new([0usize; 3]); // exit 0, exit 1, caught storage-layer panics
    let panics = Mutex::new(Vec::<String>::new());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(&(offset, mask, in_value)) = flips.get(i) else {
                    break;
                };
                let mut corrupt = bytes.clone();
                corrupt[offset] ^= mask;
                let path = copies.join(format!("copy-{i}.redb"));
                std::fs::write(&path, &corrupt).expect("write copy");
                let (code, out, err) = check(&[s(&path)]);
                let after = std::fs::read(&path).expect("read copy");
                let _ = std::fs::remove_file(&path);
                let what = format!(
                    "flip #{i} at {offset} (^{mask:#04x}, {}): exit {code:?}\n{out}{err}",
                    if in_value {
                        "inside a stored value"
                    } else {
                        "anywhere"
                    }
                );
                let mut bad = Vec::new();
                if !matches!(code, Some(0) | Some(1)) {
                    bad.push("exit code is not 0 or 1");
                }
                if err.contains("panicked at") || err.contains("RUST_BACKTRACE") {
                    bad.push("a panic reached stderr");
                }
                if in_value && code != Some(1) {
                    bad.push("a flip inside a stored value was not reported");
                }
                if after != corrupt {
                    bad.push("check changed the bytes of the file it checked");
                }
                if !bad.is_empty() {
                    failures
                        .lock()
                        .expect("lock")
                        .push(format!("{}: {what}", bad.join(", ")));
                }
                let mut t = tally.lock().expect("lock");
                match code {
                    Some(0) => t[0] += 1,
                    Some(1) => t[1] += 1,
                    _ => {}
                }
                if out.contains("panicked in the storage layer") {
                    t[2] += 1;
                    let line = out
                        .lines()
                        .find(|l| l.contains("panicked"))
                        .unwrap_or_default();
                    panics
                        .lock()
                        .expect("lock")
                        .push(format!("flip #{i} at {offset}: {}", line.trim()));
                }
            });
        }
    });
    let elapsed = started.elapsed();
    let t = *tally.lock().expect("lock");
    eprintln!(
        "{total} corrupted copies checked in {elapsed:?}: {} ok, {} reported; {} storage-layer panics caught",
        t[0], t[1], t[2]
    );
    for p in panics.into_inner().expect("lock").iter().take(5) {
        eprintln!("  caught: {p}");
    }
    let failures = failures.into_inner().expect("lock");
    assert!(
        failures.is_empty(),
        "{} of {total} checks misbehaved; the first ones:\n{}",
        failures.len(),
        failures
            .iter()
            .take(8)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    if total == 500 {
        assert!(
            elapsed < Duration::from_secs(120),
            "500 checks took {elapsed:?}"
        );
    }
}

/// A file left unclean by kill -9, and a byte copy of a live server's file:
/// `check` reads them without writing (with a note), `check --repair` and
/// `WAG_REPAIR` repair in place, after which no note is shown. `--repair` is
/// refused while a server holds the file, and `backup` of a crashed file does
/// not write it either.
#[test]
fn unclean_files_are_checked_untouched_and_repaired_on_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let file = data_file(&data);
    let mut server = Server::start(&data, &["--engine", "sim", "--gateway-id", GATEWAY_ID]);
    populate(&server, &data, 3);
    server.kill9();

    let crashed = std::fs::read(&file).expect("read");
    let spare = dir.path().join("spare.redb");
    std::fs::write(&spare, &crashed).expect("write spare");
    for args in [vec!["--data", s(&data)], vec![s(&file)]] {
        let (code, out, err) = check(&args);
        assert_eq!(
            code,
            Some(0),
            "check {args:?} of a crashed file:\n{out}\n{err}"
        );
        assert!(
            err.contains("not closed cleanly"),
            "the crash is noted: {err}"
        );
        assert!(out.contains("sessions: 3"), "{out}");
        assert!(
            std::fs::read(&file).expect("read") == crashed,
            "check {args:?} wrote to the crashed file"
        );
    }

    // backup reads a crashed file without writing it, and its snapshot is sound.
    let snap = dir.path().join("crashed-snap.redb");
    let out = run(&["backup", "--data", s(&data), "--out", s(&snap)]);
    assert!(
        out.status.success(),
        "backup of a crashed file: {}",
        text(&out.stderr)
    );
    assert!(
        std::fs::read(&file).expect("read") == crashed,
        "backup wrote to the crashed file"
    );
    let (code, out, err) = check(&[s(&snap)]);
    assert_eq!(
        code,
        Some(0),
        "the snapshot of a crashed file:\n{out}\n{err}"
    );
    assert!(out.contains("sessions: 3"), "{out}");

    // --repair writes: afterwards the file is clean.
    let (code, out, err) = check(&["--repair", "--data", s(&data)]);
    assert_eq!(code, Some(0), "check --repair:\n{out}\n{err}");
    assert!(
        std::fs::read(&file).expect("read") != crashed,
        "--repair did not write"
    );
    let (code, out, err) = check(&["--data", s(&data)]);
    assert_eq!(code, Some(0), "check after --repair:\n{out}\n{err}");
    assert!(
        !err.contains("not closed cleanly"),
        "still unclean after --repair: {err}"
    );
    assert!(out.contains("sessions: 3"), "{out}");

    // WAG_REPAIR does the same.
    let out = run_in(None, &[("WAG_REPAIR", "true")], &["check", s(&spare)]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "WAG_REPAIR=true check:\n{}",
        text(&out.stderr)
    );
    let (code, _, err) = check(&[s(&spare)]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        !err.contains("not closed cleanly"),
        "WAG_REPAIR did not repair: {err}"
    );

    // A byte copy of a live server's file is unclean too; check reads it as is.
    let mut server = Server::start(&data, &["--engine", "sim", "--gateway-id", GATEWAY_ID]);
    populate(&server, &data, 1);
    let live_copy = dir.path().join("live-copy.redb");
    std::fs::copy(&file, &live_copy).expect("copy live file");
    let copied = std::fs::read(&live_copy).expect("read");
    let (code, out, err) = check(&[s(&live_copy)]);
    assert_eq!(code, Some(0), "check of a live file's copy:\n{out}\n{err}");
    assert!(err.contains("not closed cleanly"), "{err}");
    assert!(
        std::fs::read(&live_copy).expect("read") == copied,
        "check wrote to the copy"
    );

    // Beside the server: a plain check works (with a note), --repair is refused.
    let (code, out, err) = check(&["--data", s(&data)]);
    assert_eq!(code, Some(0), "check beside the server:\n{out}\n{err}");
    assert!(err.contains("running server"), "{err}");
    assert!(out.contains("sessions: 4"), "{out}");
    let (code, out, err) = check(&["--repair", "--data", s(&data)]);
    assert_eq!(
        code,
        Some(2),
        "--repair beside the server must be refused:\n{out}\n{err}"
    );
    assert!(err.contains("running server"), "{err}");
    server.stop(Duration::from_secs(10));
    let (code, out, err) = check(&["--data", s(&data)]);
    assert_eq!(
        code,
        Some(0),
        "check after the server stopped:\n{out}\n{err}"
    );
    assert!(
        err.trim().is_empty(),
        "no note for a cleanly closed file: {err}"
    );
}

/// Names in a directory.
fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

/// `backup --out` refuses a directory, a path with a trailing slash and an
/// existing file (exit 2, nothing created or changed, no temporary file
/// left); a good backup passes `check` and leaves only itself behind.
#[test]
fn backup_refuses_bad_targets_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let file = fixture(&data, 12);
    let before = std::fs::read(&file).expect("read");
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).expect("mkdir");
    let existing_dir = out_dir.join("existing");
    std::fs::create_dir(&existing_dir).expect("mkdir");
    let existing_file = out_dir.join("existing.redb");
    std::fs::write(&existing_file, "keep me").expect("write");
    let listing = names(&out_dir);

    let new_with_slash = format!("{}/", out_dir.join("new").display());
    let existing_with_slash = format!("{}/", existing_dir.display());
    let dot = format!("{}/.", existing_dir.display());
    for (target, says) in [
        (s(&existing_dir), "directory"),
        (existing_with_slash.as_str(), "directory"),
        (new_with_slash.as_str(), "directory"),
        (dot.as_str(), "directory"),
        (s(&existing_file), "exists"),
    ] {
        let out = run(&["backup", "--data", s(&data), "--out", target]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "backup --out {target}: {err}");
        assert!(
            err.contains(says),
            "backup --out {target}: no clear message: {err}"
        );
        assert_eq!(
            names(&out_dir),
            listing,
            "backup --out {target} left files behind"
        );
        assert!(
            names(&existing_dir).is_empty(),
            "backup --out {target} wrote into the directory"
        );
        assert_eq!(
            std::fs::read(&existing_file).expect("read"),
            b"keep me",
            "backup --out {target} changed a file"
        );
    }
    assert!(
        !out_dir.join("new").exists(),
        "a refused backup created a directory"
    );

    let snap = out_dir.join("snap.redb");
    let out = run(&["backup", "--data", s(&data), "--out", s(&snap)]);
    assert!(out.status.success(), "backup: {}", text(&out.stderr));
    let mut want = listing.clone();
    want.insert("snap.redb".into());
    assert_eq!(names(&out_dir), want, "only the snapshot is added");
    let (code, out, err) = check(&[s(&snap)]);
    assert_eq!(code, Some(0), "check of a good backup:\n{out}\n{err}");
    assert!(
        out.contains("sessions: 12") && out.contains("api_keys: 1"),
        "{out}"
    );
    assert!(
        std::fs::read(&file).expect("read") == before,
        "backup changed the data file"
    );

    // The same target a second time: refused, the snapshot untouched.
    let snap_bytes = std::fs::read(&snap).expect("read");
    let out = run(&["backup", "--data", s(&data), "--out", s(&snap)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(std::fs::read(&snap).expect("read") == snap_bytes);
    assert_eq!(names(&out_dir), want, "a refused backup left files behind");
}
