//! Bounded media memory (CONTRACT §11 continued, issue 20 "Memory"): the
//! real binary on loopback (`--engine sim --allow-private-urls`), a loopback
//! server handing out 16 MiB of media. A 200-item batch of 16 MiB URLs and 50
//! concurrent 16 MiB base64 sends, at once, keep the gateway's peak RSS
//! (`VmHWM`) under the media budget plus 100 MiB; every batch item is queued
//! and every send is 202 or 429 with `Retry-After`. And a batch whose item
//! 150 is bad is refused whole, leaving no staged media behind.

mod common;
#[path = "support/media_server.rs"]
mod media_server;
use media_server::media_server;
#[path = "common/process.rs"]
#[allow(dead_code)]
mod process;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use process::Server;
use serde_json::{json, Value};

const MIB: usize = 1024 * 1024;

/// `VmHWM` (peak) and `VmRSS` (now) of process `pid`, in bytes.
fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// POSTs a ready body (no 10 s cap: a 200-item batch of 16 MiB takes a
/// while); returns status, `Retry-After` and the JSON answer.
async fn post_raw(api: &process::Api, path: &str, token: &str, body: Bytes) -> (u16, Option<String>, Value) {
    let req = Request::post(format!("{}{path}", api.base))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Full::new(body))
        .expect("request");
    let resp = tokio::time::timeout(Duration::from_secs(600), api.client.request(req))
        .await
        .expect("answered within 600 s")
        .expect("request");
    let status = resp.status().as_u16();
    let retry = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (status, retry, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// A sim session that is `working` (its queue sends, reading the media).
async fn working_session(api: &process::Api, t: &str) -> String {
    let (st, s) = api.post("/api/v1/sessions", Some(t), json!({"label": "m", "presenceTyping": false, "ratePerMin": 600})).await;
    assert_eq!(st, 201, "{s}");
    let id = s["id"].as_str().expect("id").to_string();
    api.wait_status(t, &id, "scan_qr_code").await;
    let (st, _) = api.post(&format!("/api/v1/sessions/{id}/sim/pair"), Some(t), json!({"phoneNumber": "6281100000009"})).await;
    assert_eq!(st, 200);
    api.wait_status(t, &id, "working").await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_200_item_batch_and_50_base64_sends_stay_under_the_budget_plus_100_mib() {
    let budget: u64 = 256 << 20;
    let url = media_server(16 * MIB).await;
    // The data file takes 3.2 GB of staged media: on the normal disk.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--engine", "sim", "--allow-private-urls", "--rate-limit", "0"]);
    let (api, t) = (Arc::new(server.api()), process::owner_token(&data));
    let id = working_session(&api, &t).await;
    let (hwm0, rss0) = rss(server.pid());
    let started = Instant::now();

    let items: Vec<Value> = (0..200).map(|i| json!({"to": "6281234567890", "text": format!("b{i}"), "media": {"url": format!("{url}/media")}})).collect();
    let batch_body = Bytes::from(json!({"messages": items}).to_string());
    let batch = {
        let (api, t, id) = (api.clone(), t.clone(), id.clone());
        tokio::spawn(async move { post_raw(&api, &format!("/api/v1/sessions/{id}/messages/batch"), &t, batch_body).await })
    };
    // Let the batch start fetching, then 50 base64 sends at once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let media: Vec<u8> = (0..16 * MIB).map(|i| (i % 251) as u8).collect();
    let send_body = Bytes::from(
        json!({"to": "6281234567890", "media": {"data": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &media), "mimetype": "image/png"}}).to_string(),
    );
    drop(media);
    let sends: Vec<_> = (0..50)
        .map(|_| {
            let (api, t, id, body) = (api.clone(), t.clone(), id.clone(), send_body.clone());
            tokio::spawn(async move { post_raw(&api, &format!("/api/v1/sessions/{id}/messages"), &t, body).await })
        })
        .collect();
    let (mut accepted, mut limited) = (0, 0);
    for s in sends {
        let (st, retry, body) = s.await.expect("send task");
        match st {
            202 => accepted += 1,
            429 => {
                assert!(retry.is_some(), "a 429 carries Retry-After: {body}");
                assert_eq!(body["error"]["details"]["limit"], "media_budget", "{body}");
                limited += 1;
            }
            other => panic!("a send answered {other}: {body}"),
        }
    }
    let (st, _, body) = batch.await.expect("batch task");
    assert_eq!(st, 202, "{body}");
    assert_eq!(body["data"].as_array().map(Vec::len), Some(200));
    let took = started.elapsed();
    let (hwm, _) = rss(server.pid());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, rss_after) = rss(server.pid());
    println!(
        "media memory: before {} MiB (peak {} MiB); peak under load {} MiB (bound {} MiB); {} MiB 2 s after; \
         {accepted} sends 202, {limited} sends 429; batch of 200 + 50 sends took {:.1} s",
        rss0 >> 20,
        hwm0 >> 20,
        hwm >> 20,
        (budget >> 20) + 100,
        rss_after >> 20,
        took.as_secs_f64()
    );
    assert!(accepted > 0, "some sends got through");
    assert!(hwm <= budget + (100 << 20), "peak RSS {} MiB over the budget + 100 MiB", hwm >> 20);
    // The queued media is where the sender and `GET …/media` find it.
    let mid = body["data"][0]["id"].as_str().expect("id");
    let (st, m) = api.get(&format!("/api/v1/sessions/{id}/messages/{mid}"), Some(&t)).await;
    assert_eq!(st, 200);
    assert_eq!(m["media"]["sizeBytes"], 16 * MIB as u64, "{m}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_with_a_bad_item_150_queues_nothing_and_leaves_no_staged_media() {
    let url = media_server(MIB).await;
    let gw = common::TestGateway::start_with(|c| {
        common::sim_engine(c, 20, 80);
        c.messaging.allow_private_urls = true;
        c.rate_limit = None;
    })
    .await;
    let (h, t) = (&gw.http, gw.owner("org_m"));
    let id = common::sim_working_session(h, &t, json!({"presenceTyping": false})).await;
    let items: Vec<Value> = (0..200)
        .map(|i| {
            let path = if i == 150 { "missing" } else { "media" };
            json!({"to": "6281234567890", "media": {"url": format!("{url}/{path}")}})
        })
        .collect();
    let r = h.post(&format!("/api/v1/sessions/{id}/messages/batch"), Some(&t), json!({"messages": items})).await;
    assert_eq!(r.status, 400, "{:?}", r.json);
    assert_eq!(r.json["error"]["details"]["index"], 150, "{:?}", r.json);
    let r = h.get(&format!("/api/v1/sessions/{id}/messages"), Some(&t)).await;
    assert_eq!(r.json["data"].as_array().map(Vec::len), Some(0), "nothing queued: {:?}", r.json);
    // The 150 items staged before the bad one are discarded (just after the answer).
    let store = gw.app().store.clone();
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let txn = store.read().expect("read");
        let staged = wa_gateway::store::media::any_staged(&txn).expect("staged");
        let blobs = {
            use redb::ReadableTableMetadata;
            txn.open_table(wa_gateway::store::tables::MEDIA).expect("media").len().expect("len")
        };
        if !staged && blobs == 0 {
            break;
        }
        assert!(Instant::now() < end, "staged media left behind: staged={staged}, blobs={blobs}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report = wa_gateway::store::check::check(&store.read().expect("read")).expect("check");
    assert!(report.ok(), "{report}");
    // A good batch to a stopped session (its queue waits) is queued whole;
    // `GET …/media` reads each item's staged blob; a cancel frees it.
    let stopped = common::create_session(h, &t, "stopped").await["id"].as_str().expect("id").to_string();
    let items: Vec<Value> = (0..3).map(|_| json!({"to": "6281234567890", "media": {"url": format!("{url}/media")}})).collect();
    let r = h.post(&format!("/api/v1/sessions/{stopped}/messages/batch"), Some(&t), json!({"messages": items})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let mid = r.json["data"][1]["id"].as_str().expect("id").to_string();
    let got = h.get(&format!("/api/v1/sessions/{stopped}/messages/{mid}/media"), Some(&t)).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body.len(), MIB);
    assert_eq!(got.body[..8], [0, 7, 14, 21, 28, 35, 42, 49]);
    let report = wa_gateway::store::check::check(&store.read().expect("read")).expect("check");
    assert!(report.ok(), "{report}");
    let r = h.delete(&format!("/api/v1/sessions/{stopped}/messages/{mid}"), Some(&t)).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let got = h.get(&format!("/api/v1/sessions/{stopped}/messages/{mid}/media"), Some(&t)).await;
    assert_eq!(got.status, 404, "a canceled message keeps no media");
    // Deleting the session frees the rest.
    let r = h.delete(&format!("/api/v1/sessions/{stopped}"), Some(&t)).await;
    assert!(r.status.is_success(), "{:?}", r.json);
    let txn = store.read().expect("read");
    let blobs = {
        use redb::ReadableTableMetadata;
        txn.open_table(wa_gateway::store::tables::MEDIA).expect("media").len().expect("len")
    };
    assert_eq!(blobs, 0, "a deleted session keeps no media");
    let report = wa_gateway::store::check::check(&txn).expect("check");
    assert!(report.ok(), "{report}");
}
