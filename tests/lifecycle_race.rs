//! Lifecycle calls racing on one session, over real HTTP with the sim engine.
//!
//! Each round fires a random subset of start / stop / restart / logout /
//! delete / sim pair / sim disconnect at one session at once (seeded, so a
//! failure replays), then waits until the system settles into the
//! manager's invariant: the stored status is `starting`, `scan_qr_code` or
//! `working` exactly while the manager holds a connection task for the
//! session (and a `scan_qr_code` session has a QR to show). Every so often,
//! a settled non-running session is started again, which must work.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::rng::XorShift;
use common::{Http, TestGateway};
use serde_json::json;
use ulid::Ulid;
use wa_gateway::config::ServeConfig;

const ROUNDS: usize = 200;
/// The default seed; `RACE_SEED=<u64>` replays or explores another.
const SEED: u64 = 0x005e_ed0f_1ace_2024;

fn seed() -> u64 {
    std::env::var("RACE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(SEED)
}

fn sim(c: &mut ServeConfig) {
    common::sim_engine(c, 5, 20);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Start,
    Stop,
    Restart,
    Logout,
    Delete,
    Pair,
    Disconnect,
}

/// Ops with their weights (delete rarer: it ends the session).
const OPS: &[(Op, usize)] = &[
    (Op::Start, 3),
    (Op::Stop, 3),
    (Op::Restart, 3),
    (Op::Logout, 2),
    (Op::Pair, 2),
    (Op::Disconnect, 1),
    (Op::Delete, 1),
];

fn pick(rng: &mut XorShift) -> Op {
    let total: usize = OPS.iter().map(|(_, w)| w).sum();
    let mut r = rng.below(total);
    for (op, w) in OPS {
        if r < *w {
            return *op;
        }
        r -= w;
    }
    Op::Start
}

fn running(status: &str) -> bool {
    matches!(status, "starting" | "scan_qr_code" | "working")
}

async fn create(h: &Http, t: &str, start: bool) -> String {
    let r = h.post("/api/v1/sessions", Some(t), json!({"label": "race", "start": start})).await;
    assert_eq!(r.status, 201, "create: {:?}", r.json);
    r.json["id"].as_str().expect("id").to_string()
}

/// Fires one op; returns its HTTP status.
async fn fire(h: &Http, t: &str, id: &str, op: Op, phone: &str) -> u16 {
    let path = |a: &str| format!("/api/v1/sessions/{id}/{a}");
    let r = match op {
        Op::Start => h.post(&path("start"), Some(t), json!({})).await,
        Op::Stop => h.post(&path("stop"), Some(t), json!({})).await,
        Op::Restart => h.post(&path("restart"), Some(t), json!({})).await,
        Op::Logout => h.post(&path("logout"), Some(t), json!({})).await,
        Op::Pair => h.post(&path("sim/pair"), Some(t), json!({"phoneNumber": phone})).await,
        Op::Disconnect => h.post(&path("sim/disconnect"), Some(t), json!({})).await,
        Op::Delete => h.delete(&format!("/api/v1/sessions/{id}"), Some(t)).await,
    };
    let code = r.status.as_u16();
    assert!(matches!(code, 200 | 204 | 404 | 409), "{op:?} answered {code}: {:?}", r.json);
    code
}

/// Polls (2 s at most) until the stored status and the manager agree, three
/// reads in a row; returns the settled status (`None`: the session is gone).
async fn settle(gw: &TestGateway, t: &str, id: &str, what: &str) -> Option<String> {
    let ulid = Ulid::from_string(id).expect("ulid");
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut agreed = 0;
    loop {
        let r = gw.http.get(&format!("/api/v1/sessions/{id}"), Some(t)).await;
        let task = gw.app().engine.has_connection_task(ulid);
        let (status, ok) = match r.status.as_u16() {
            404 => (None, !task),
            200 => {
                let st = r.json["status"].as_str().expect("status").to_string();
                let mut ok = running(&st) == task;
                if ok && st == "scan_qr_code" {
                    ok = gw.http.get(&format!("/api/v1/sessions/{id}/qr"), Some(t)).await.status == 200;
                }
                (Some(st), ok)
            }
            other => panic!("{what}: GET answered {other}"),
        };
        agreed = if ok { agreed + 1 } else { 0 };
        if agreed >= 3 {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: never settled: status {status:?}, connection task {task} (invariant: running status ⇔ connection task)"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_lifecycle_calls_on_one_session_always_settle_consistently() {
    let t0 = Instant::now();
    let gw = TestGateway::start_with(sim).await;
    let t = gw.owner("org_race");
    let seed = seed();
    let mut rng = XorShift::new(seed);
    let mut id = create(&gw.http, &t, false).await;
    let mut settled: BTreeMap<String, usize> = BTreeMap::new();
    let mut answers: BTreeMap<(String, u16), usize> = BTreeMap::new();
    let mut restarts_from = BTreeMap::<String, usize>::new();
    for round in 0..ROUNDS {
        // Sometimes link the phone first, so rounds also start from `working`.
        if rng.below(3) == 0 {
            let phone = format!("62811{:06}", rng.below(1_000_000));
            fire(&gw.http, &t, &id, Op::Pair, &phone).await;
        }
        let n = 2 + rng.below(4);
        let ops: Vec<Op> = (0..n).map(|_| pick(&mut rng)).collect();
        let what = format!("seed {seed} round {round} {ops:?} on {id}");
        let calls: Vec<_> = ops
            .iter()
            .map(|op| {
                let (h, t, id, op) = (gw.http.clone(), t.clone(), id.clone(), *op);
                let phone = format!("62812{:06}", rng.below(1_000_000));
                tokio::spawn(async move { (op, fire(&h, &t, &id, op, &phone).await) })
            })
            .collect();
        for c in calls {
            let (op, code) = c.await.expect("call");
            *answers.entry((format!("{op:?}"), code)).or_default() += 1;
        }
        match settle(&gw, &t, &id, &what).await {
            None => {
                // Deleted: nothing of it may run; a fresh one takes its place
                // (sometimes created started, i.e. a create that starts).
                *settled.entry("deleted".into()).or_default() += 1;
                id = create(&gw.http, &t, rng.below(2) == 0).await;
                settle(&gw, &t, &id, &format!("{what}, recreated")).await;
            }
            Some(status) => {
                *settled.entry(status.clone()).or_default() += 1;
                if !running(&status) && rng.below(2) == 0 {
                    let r = gw.http.post(&format!("/api/v1/sessions/{id}/start"), Some(&t), json!({})).await;
                    assert_eq!(r.status, 200, "{what}: start from settled {status}: {:?}", r.json);
                    let after = settle(&gw, &t, &id, &format!("{what}, started from {status}")).await;
                    assert!(after.as_deref().is_some_and(running), "{what}: started from {status}, settled {after:?}");
                    *restarts_from.entry(status).or_default() += 1;
                }
            }
        }
    }
    eprintln!("settled: {settled:?}\nstarted again from: {restarts_from:?}\nanswers: {answers:?}\n{:?}", t0.elapsed());
    assert!(settled.get("working").copied().unwrap_or(0) > 0, "rounds reached working: {settled:?}");
    assert!(settled.keys().filter(|s| !running(s)).count() >= 2, "rounds settled in several non-running states: {settled:?}");
    assert!(t0.elapsed() < Duration::from_secs(60), "took {:?}", t0.elapsed());
}

/// The two reported races, head on: `restart` with `stop`, and `logout` with
/// `restart`, fired together many times on one linked session.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_against_stop_and_logout_against_restart() {
    let gw = TestGateway::start_with(sim).await;
    let t = gw.owner("org_race2");
    let id = create(&gw.http, &t, true).await;
    for round in 0..60 {
        let (a, b) = if round % 2 == 0 { (Op::Restart, Op::Stop) } else { (Op::Logout, Op::Restart) };
        if round % 3 == 0 {
            settle(&gw, &t, &id, "before pairing").await;
            fire(&gw.http, &t, &id, Op::Pair, "628123456789").await;
        }
        let (h1, h2, t1, t2, i1, i2) = (gw.http.clone(), gw.http.clone(), t.clone(), t.clone(), id.clone(), id.clone());
        let x = tokio::spawn(async move { fire(&h1, &t1, &i1, a, "").await });
        let y = tokio::spawn(async move { fire(&h2, &t2, &i2, b, "").await });
        let (x, y) = (x.await.expect("a"), y.await.expect("b"));
        let what = format!("round {round}: {a:?} ({x}) with {b:?} ({y})");
        let status = settle(&gw, &t, &id, &what).await.expect("not deleted");
        if !running(&status) {
            let r = gw.http.post(&format!("/api/v1/sessions/{id}/start"), Some(&t), json!({})).await;
            assert_eq!(r.status, 200, "{what}: start from {status}: {:?}", r.json);
        }
    }
}
