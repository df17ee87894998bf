//! Contacts, number checks, the lookup budget, presence and the profile
//! (CONTRACT §12) over real HTTP with the sim engine and real data files.
//! Bad input, permissions and tenancy are in tests/contacts_access.rs.

mod common;

use common::{sim_working_session as working_session, Http, TestGateway};
use serde_json::{json, Value};
use wa_gateway::config::ServeConfig;

/// A sim gateway, with `f` adjusting its config.
async fn gateway(f: impl FnOnce(&mut ServeConfig)) -> TestGateway {
    TestGateway::start_with(|c| {
        common::sim_engine(c, 20, 80);
        f(c);
    })
    .await
}

async fn outbox(h: &Http, t: &str, id: &str) -> Vec<Value> {
    let r = h.get(&format!("/api/v1/sessions/{id}/sim/outbox"), Some(t)).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    r.json["data"].as_array().cloned().unwrap_or_default()
}

fn kinds<'a>(out: &'a [Value], kind: &str) -> Vec<&'a Value> {
    out.iter().filter(|r| r["kind"] == kind).collect()
}

async fn events(h: &Http, t: &str, id: &str, kind: &str) -> Vec<Value> {
    common::walk(h, &format!("/api/v1/events?type={kind}&sessionId={id}"), t, 200).await
}

async fn put(h: &Http, path: &str, t: &str, body: Value) -> common::Res {
    h.send(hyper::Method::PUT, path, Some(t), Some(bytes::Bytes::from(body.to_string())), &[]).await
}

async fn check(h: &Http, t: &str, id: &str, numbers: &[&str]) -> common::Res {
    h.post(&format!("/api/v1/sessions/{id}/contacts/check"), Some(t), json!({"phoneNumbers": numbers})).await
}

#[tokio::test(flavor = "multi_thread")]
async fn number_checks_answer_from_the_cache_and_spend_the_budget_once() {
    let gw = gateway(|c| c.directory.lookups_per_hour = 5).await;
    let (h, t) = (&gw.http, gw.owner("org_c"));
    let id = working_session(h, &t, json!({})).await;
    let r = check(h, &t, &id, &["6281200000001", "9991234567", "6281200000001", "6281200000002"]).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let data = r.json["data"].as_array().expect("data");
    assert_eq!(data.len(), 3, "duplicates are answered once: {data:?}");
    assert_eq!(data[0]["phoneNumber"], "6281200000001");
    assert_eq!(data[0]["onWhatsApp"], true);
    assert_eq!(data[0]["jid"], "6281200000001@s.whatsapp.net");
    assert_eq!(data[0]["lid"], wa_gateway::engine::sim::lid_for("6281200000001").as_str());
    assert_eq!(data[1]["phoneNumber"], "9991234567");
    assert_eq!((data[1]["onWhatsApp"].clone(), data[1]["jid"].clone()), (json!(false), Value::Null));
    assert_eq!(data[2]["phoneNumber"], "6281200000002");
    assert_eq!(kinds(&outbox(h, &t, &id).await, "lookup").len(), 3);

    // The same numbers again: the cache answers, nothing is looked up or spent.
    let again = check(h, &t, &id, &["6281200000002", "9991234567", "6281200000001"]).await;
    assert_eq!(again.status, 200, "{:?}", again.json);
    assert_eq!(again.json["data"][1]["onWhatsApp"], false);
    assert_eq!(kinds(&outbox(h, &t, &id).await, "lookup").len(), 3);

    // 3 spent of 5: three new numbers would overspend → 429, nothing asked.
    let over = check(h, &t, &id, &["6281200000003", "6281200000004", "6281200000005"]).await;
    assert_eq!(over.status, 429, "{:?}", over.json);
    assert_eq!(over.code(), "rate_limited");
    assert_eq!(over.json["error"]["details"]["limit"], "lookups");
    let secs: i64 = over.headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).expect("Retry-After");
    assert!((3500..=3600).contains(&secs), "Retry-After {secs}");
    assert_eq!(kinds(&outbox(h, &t, &id).await, "lookup").len(), 3);
    // Two fit exactly; a cached one beside them is free.
    let fits = check(h, &t, &id, &["6281200000003", "6281200000001", "6281200000004"]).await;
    assert_eq!(fits.status, 200, "{:?}", fits.json);
    assert_eq!(kinds(&outbox(h, &t, &id).await, "lookup").len(), 5);
    // More than the whole hour's budget never fits.
    let never = check(h, &t, &id, &["6281200000011", "6281200000012", "6281200000013", "6281200000014", "6281200000015", "6281200000016"]).await;
    assert_eq!(never.status, 429, "{:?}", never.json);

    // Numbers on WhatsApp became contacts (not the one that is not).
    let all = common::walk(h, &format!("/api/v1/sessions/{id}/contacts"), &t, 50).await;
    let jids: Vec<&str> = all.iter().filter_map(|c| c["jid"].as_str()).collect();
    assert_eq!(jids, ["6281200000001@s.whatsapp.net", "6281200000002@s.whatsapp.net", "6281200000003@s.whatsapp.net", "6281200000004@s.whatsapp.net"]);
    assert_eq!(all[0]["phoneNumber"], "6281200000001");
    assert_eq!(all[0]["lid"], wa_gateway::engine::sim::lid_for("6281200000001").as_str());

    // The budget is kept in the data file: a restart does not refill it.
    let dir = gw.stop().await;
    let gw = TestGateway::start_in(dir, |c| {
        common::sim_engine(c, 20, 80);
        c.directory.lookups_per_hour = 5;
    })
    .await;
    let h = &gw.http;
    common::wait_status(h, &t, &id, "working").await;
    let after = check(h, &t, &id, &["6281200000009"]).await;
    assert_eq!(after.status, 429, "{:?}", after.json);
    let cached = check(h, &t, &id, &["6281200000001"]).await;
    assert_eq!(cached.status, 200, "{:?}", cached.json);
}

#[tokio::test(flavor = "multi_thread")]
async fn contacts_page_in_jid_order_and_blocking_changes_them_once() {
    let gw = gateway(|_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_c"));
    let id = working_session(h, &t, json!({})).await;
    let phones = ["6281300000007", "6281300000002", "6281300000005", "6281300000001", "6281300000006", "6281300000003", "6281300000004"];
    let book: Vec<Value> = phones.iter().map(|p| json!({"phoneNumber": p, "name": format!("N{p}")})).collect();
    let r = h.post(&format!("/api/v1/sessions/{id}/sim/contacts"), Some(&t), json!({"contacts": book})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let all = common::walk(h, &format!("/api/v1/sessions/{id}/contacts"), &t, 2).await;
    let mut sorted: Vec<String> = phones.iter().map(|p| format!("{p}@s.whatsapp.net")).collect();
    sorted.sort();
    assert_eq!(all.iter().map(|c| c["jid"].as_str().unwrap_or("").to_string()).collect::<Vec<_>>(), sorted);
    assert_eq!(all[0]["name"], "N6281300000001");
    assert_eq!(all[0]["isBlocked"], false);
    assert_eq!(events(h, &t, &id, "contact.updated").await.len(), 7);

    let target = "6281300000004";
    let r = put(h, &format!("/api/v1/sessions/{id}/contacts/{target}/block"), &t, json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["isBlocked"], true);
    assert_eq!(r.json["name"], format!("N{target}"));
    let evs = events(h, &t, &id, "contact.updated").await;
    assert_eq!(evs.len(), 8);
    assert_eq!(evs[7]["data"]["isBlocked"], true);
    assert_eq!(evs[7]["data"]["jid"], format!("{target}@s.whatsapp.net"));
    // Blocking again changes nothing: no event.
    let r = put(h, &format!("/api/v1/sessions/{id}/contacts/{target}%40s.whatsapp.net/block"), &t, json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(events(h, &t, &id, "contact.updated").await.len(), 8);

    let blocked = common::walk(h, &format!("/api/v1/sessions/{id}/contacts?blocked=true"), &t, 1).await;
    assert_eq!(blocked.len(), 1);
    assert_eq!(blocked[0]["jid"], format!("{target}@s.whatsapp.net"));
    assert_eq!(common::walk(h, &format!("/api/v1/sessions/{id}/contacts?blocked=false"), &t, 3).await.len(), 6);
    // A cursor is bound to its filter.
    let p = h.get(&format!("/api/v1/sessions/{id}/contacts?blocked=false&limit=1"), Some(&t)).await;
    let c = p.json["nextCursor"].as_str().expect("cursor").to_string();
    let r = h.get(&format!("/api/v1/sessions/{id}/contacts?blocked=true&cursor={c}"), Some(&t)).await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "invalid_cursor"));

    let r = h.delete(&format!("/api/v1/sessions/{id}/contacts/{target}/block"), Some(&t)).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["isBlocked"], false);
    assert_eq!(events(h, &t, &id, "contact.updated").await.len(), 9);
    let actions: Vec<Value> = kinds(&outbox(h, &t, &id).await, "block").iter().map(|r| r["action"].clone()).collect();
    assert_eq!(actions, [json!("block"), json!("block"), json!("unblock")]);
}

#[tokio::test(flavor = "multi_thread")]
async fn contacts_learned_from_messages_update_only_on_change() {
    let gw = gateway(|_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_c"));
    let id = working_session(h, &t, json!({})).await;
    for _ in 0..3 {
        let r = h.post(&format!("/api/v1/sessions/{id}/sim/incoming"), Some(&t), json!({"from": "6281400000001", "text": "hi", "lid": "4242"})).await;
        assert_eq!(r.status, 202, "{:?}", r.json);
    }
    let evs = events(h, &t, &id, "contact.updated").await;
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_eq!(evs[0]["data"]["pushName"], "Sim Contact");
    // Known by its @lid and by its phone number: one contact.
    for who in ["4242%40lid", "6281400000001"] {
        let r = h.get(&format!("/api/v1/sessions/{id}/contacts/{who}"), Some(&t)).await;
        assert_eq!(r.status, 200, "{:?}", r.json);
        assert_eq!((r.json["jid"].clone(), r.json["lid"].clone()), (json!("6281400000001@s.whatsapp.net"), json!("4242@lid")));
        assert_eq!(r.json["pushName"], "Sim Contact");
    }
    assert_eq!(common::walk(h, &format!("/api/v1/sessions/{id}/contacts"), &t, 10).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn about_and_pictures_come_from_the_network() {
    let gw = gateway(|_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_c"));
    let id = working_session(h, &t, json!({})).await;
    let book = json!({"contacts": [
        {"phoneNumber": "6281500000001", "name": "Pic", "about": "at work", "picture": true, "isBusiness": true},
        {"phoneNumber": "6281500000002", "name": "NoPic"},
    ]});
    assert_eq!(h.post(&format!("/api/v1/sessions/{id}/sim/contacts"), Some(&t), book).await.status, 202);
    let r = h.get(&format!("/api/v1/sessions/{id}/contacts/6281500000001"), Some(&t)).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!((r.json["about"].clone(), r.json["name"].clone(), r.json["isBusiness"].clone()), (json!("at work"), json!("Pic"), json!(true)));
    let r = h.get(&format!("/api/v1/sessions/{id}/contacts/6281500000002"), Some(&t)).await;
    assert_eq!(r.json["about"], Value::Null);
    for size in ["", "?size=preview", "?size=full"] {
        let r = h.get(&format!("/api/v1/sessions/{id}/contacts/6281500000001/picture{size}"), Some(&t)).await;
        assert_eq!(r.status, 200, "{:?}", r.json);
        assert_eq!(r.headers.get("content-type").and_then(|v| v.to_str().ok()), Some("image/jpeg"));
        assert_eq!(&r.body[..3], &[0xFF, 0xD8, 0xFF]);
    }
    let r = h.get(&format!("/api/v1/sessions/{id}/contacts/6281500000002/picture"), Some(&t)).await;
    assert_eq!((r.status.as_u16(), r.code()), (404, "not_found"));
    // A number the session never saw is not a contact.
    let r = h.get(&format!("/api/v1/sessions/{id}/contacts/6281599999999"), Some(&t)).await;
    assert_eq!((r.status.as_u16(), r.code()), (404, "not_found"));
    let r = h.get(&format!("/api/v1/sessions/{id}/contacts/6281599999999/picture"), Some(&t)).await;
    assert_eq!(r.status, 404);

    // Stopped: what is stored still answers (about from the hour's cache), the network does not.
    let r = h.post(&format!("/api/v1/sessions/{id}/stop"), Some(&t), json!({})).await;
    assert!(r.status.is_success(), "{:?}", r.json);
    common::wait_status(h, &t, &id, "stopped").await;
    let r = h.get(&format!("/api/v1/sessions/{id}/contacts/6281500000001"), Some(&t)).await;
    assert_eq!((r.status.as_u16(), r.json["about"].clone()), (200, json!("at work")));
    let r = h.get(&format!("/api/v1/sessions/{id}/contacts/6281500000001/picture?size=full"), Some(&t)).await;
    assert_eq!(r.status, 200, "cached picture: {:?}", r.json);
    assert_eq!(common::walk(h, &format!("/api/v1/sessions/{id}/contacts"), &t, 10).await.len(), 2);
    assert_eq!(h.get(&format!("/api/v1/sessions/{id}/profile"), Some(&t)).await.status, 200);
    for (method, path, body) in [
        ("POST", "contacts/check", json!({"phoneNumbers": ["6281599999998"]})),
        ("PUT", "contacts/6281500000001/block", json!({})),
        ("PUT", "presence", json!({"status": "available"})),
        ("POST", "presence/subscribe", json!({"contact": "6281500000001"})),
        ("PATCH", "profile", json!({"name": "X"})),
        ("GET", "contacts/6281500000002/picture?size=full", Value::Null),
    ] {
        let url = format!("/api/v1/sessions/{id}/{path}");
        let r = match method {
            "POST" => h.post(&url, Some(&t), body).await,
            "PUT" => put(h, &url, &t, body).await,
            "PATCH" => h.patch(&url, Some(&t), body).await,
            _ => h.get(&url, Some(&t)).await,
        };
        assert_eq!((r.status.as_u16(), r.code()), (409, "conflict"), "{method} {path}: {:?}", r.json);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn presence_updates_arrive_only_for_subscribed_contacts() {
    let gw = gateway(|_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_c"));
    let id = working_session(h, &t, json!({})).await;
    let r = h.post(&format!("/api/v1/sessions/{id}/sim/presence"), Some(&t), json!({"from": "6281600000001", "status": "available"})).await;
    assert_eq!((r.status.as_u16(), r.json["delivered"].clone()), (202, json!(false)), "{:?}", r.json);
    assert!(events(h, &t, &id, "presence.update").await.is_empty());

    let r = h.post(&format!("/api/v1/sessions/{id}/presence/subscribe"), Some(&t), json!({"contact": "6281600000001"})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let subs = outbox(h, &t, &id).await;
    assert_eq!(kinds(&subs, "presence_subscribe").len(), 1);
    for status in ["composing", "unavailable"] {
        let r = h.post(&format!("/api/v1/sessions/{id}/sim/presence"), Some(&t), json!({"from": "6281600000001", "status": status})).await;
        assert_eq!((r.status.as_u16(), r.json["delivered"].clone()), (202, json!(true)), "{:?}", r.json);
    }
    // Someone else's presence still does not arrive.
    let r = h.post(&format!("/api/v1/sessions/{id}/sim/presence"), Some(&t), json!({"from": "6281600000002", "status": "available"})).await;
    assert_eq!(r.json["delivered"], false);
    let evs = events(h, &t, &id, "presence.update").await;
    assert_eq!(evs.len(), 2, "{evs:?}");
    let d = &evs[0]["data"];
    assert_eq!(d["contact"]["jid"], "6281600000001@s.whatsapp.net");
    assert_eq!(d["contact"]["lid"], wa_gateway::engine::sim::lid_for("6281600000001").as_str());
    assert_eq!(d["contact"]["phoneNumber"], "6281600000001");
    assert_eq!(d["status"], "composing");
    assert_eq!((d["chatId"].clone(), d["lastSeen"].clone()), (Value::Null, Value::Null));
    assert_eq!(evs[1]["data"]["status"], "unavailable");
    assert!(evs[1]["data"]["lastSeen"].as_i64().is_some());
    // Presence is kept --presence-retention (the janitor's round, run here
    // with none): the presence events go, the others stay.
    let others = common::walk(h, &format!("/api/v1/events?sessionId={id}"), &t, 200).await.len();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let pruned = wa_gateway::directory::tasks::prune_presence(&gw.app().store, std::time::Duration::ZERO).expect("prune");
    assert_eq!(pruned, 2);
    assert!(events(h, &t, &id, "presence.update").await.is_empty());
    assert_eq!(common::walk(h, &format!("/api/v1/events?sessionId={id}"), &t, 200).await.len(), others - 2);

    // The number's own presence.
    for status in ["available", "unavailable"] {
        let r = put(h, &format!("/api/v1/sessions/{id}/presence"), &t, json!({"status": status})).await;
        assert_eq!((r.status.as_u16(), r.json["status"].clone()), (200, json!(status)), "{:?}", r.json);
    }
    let own: Vec<Value> = kinds(&outbox(h, &t, &id).await, "presence").iter().map(|r| r["presence"].clone()).collect();
    assert_eq!(own, [json!("available"), json!("unavailable")]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_profile_is_pushed_then_stored() {
    let gw = gateway(|_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_c"));
    let id = working_session(h, &t, json!({})).await;
    let url = format!("/api/v1/sessions/{id}/profile");
    // The push name the session connected with.
    let mut p = Value::Null;
    for _ in 0..200 {
        p = h.get(&url, Some(&t)).await.json;
        if p["name"] == "Sim Phone" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(p, json!({"name": "Sim Phone", "about": null}));
    let r = h.patch(&url, Some(&t), json!({"name": "Acme Support", "about": "We answer 9-5"})).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json, json!({"name": "Acme Support", "about": "We answer 9-5"}));
    let r = h.patch(&url, Some(&t), json!({"about": ""})).await;
    assert_eq!(r.json, json!({"name": "Acme Support", "about": ""}));
    assert_eq!(h.get(&url, Some(&t)).await.json, json!({"name": "Acme Support", "about": ""}));

    let jpeg = bytes::Bytes::from_static(wa_gateway::engine::sim::SIM_JPEG);
    let r = h.send(hyper::Method::PUT, &format!("{url}/picture"), Some(&t), Some(jpeg), &[("content-type", "image/jpeg")]).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let r = h.delete(&format!("{url}/picture"), Some(&t)).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let prof: Vec<Value> = kinds(&outbox(h, &t, &id).await, "profile").into_iter().cloned().collect();
    assert_eq!(prof.len(), 5, "{prof:?}");
    assert_eq!(prof[0]["name"], "Acme Support");
    assert_eq!(prof[1]["about"], "We answer 9-5");
    assert_eq!(prof[2]["about"], "");
    assert_eq!((prof[3]["picture"].clone(), prof[3]["bytes"].clone()), (json!(true), json!(wa_gateway::engine::sim::SIM_JPEG.len())));
    assert_eq!(prof[4]["picture"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_session_drops_its_directory() {
    let gw = gateway(|_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_c"));
    let id = working_session(h, &t, json!({})).await;
    let book = json!({"contacts": [{"phoneNumber": "6281700000001", "name": "A"}, {"phoneNumber": "6281700000002", "name": "B", "lid": "77"}]});
    assert_eq!(h.post(&format!("/api/v1/sessions/{id}/sim/contacts"), Some(&t), book).await.status, 202);
    assert_eq!(check(h, &t, &id, &["6281700000003"]).await.status, 200);
    assert_eq!(h.patch(&format!("/api/v1/sessions/{id}/profile"), Some(&t), json!({"name": "N"})).await.status, 200);
    let key = u128::from(ulid::Ulid::from_string(&id).expect("ulid"));
    let count = |gw: &TestGateway| {
        let r = gw.app().store.read().expect("read");
        wa_gateway::store::contacts::page(&r, key, None, 100, 1000, |_| true).expect("page").0.len()
    };
    assert_eq!(count(&gw), 3);
    let r = h.delete(&format!("/api/v1/sessions/{id}"), Some(&t)).await;
    assert!(r.status.is_success(), "{:?}", r.json);
    assert_eq!(count(&gw), 0);
    let r = gw.app().store.read().expect("read");
    assert!(wa_gateway::store::contacts::profile(&r, key).expect("profile").is_none());
    assert!(wa_gateway::store::contacts::number_check(&r, key, "6281700000003").expect("check").is_none());
    let report = wa_gateway::store::check::check(&r).expect("check");
    assert!(report.ok(), "{report}");
}

/// The keys of `v` are exactly the documented schema's properties (all
/// required), recursively through `$ref`s to object schemas.
fn assert_shape(doc: &Value, name: &str, v: &Value) {
    let s = &doc["components"]["schemas"][name];
    let props = s["properties"].as_object().unwrap_or_else(|| panic!("schema {name}"));
    let got = v.as_object().unwrap_or_else(|| panic!("{name}: not an object: {v}"));
    let mut want: Vec<&String> = props.keys().collect();
    let mut have: Vec<&String> = got.keys().collect();
    want.sort();
    have.sort();
    assert_eq!(have, want, "{name}: {v}");
    for (k, p) in props {
        if let Some(r) = p["$ref"].as_str() {
            assert_shape(doc, r.rsplit('/').next().unwrap_or(""), &got[k]);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_match_the_documented_schemas() {
    let doc = wa_gateway::ops::openapi::document();
    let gw = gateway(|_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_c"));
    let id = working_session(h, &t, json!({})).await;
    let s = format!("/api/v1/sessions/{id}");
    let r = h.post(&format!("{s}/sim/contacts"), Some(&t), json!({"contacts": [{"phoneNumber": "6281900000001", "name": "A"}]})).await;
    assert_shape(&doc, "SimContactsSet", &r.json);
    let r = check(h, &t, &id, &["6281900000002", "9991900000002"]).await;
    assert_shape(&doc, "NumberCheckList", &r.json);
    for item in r.json["data"].as_array().expect("data") {
        assert_shape(&doc, "NumberCheck", item);
    }
    let r = h.get(&format!("{s}/contacts?limit=1"), Some(&t)).await;
    assert_shape(&doc, "ContactList", &r.json);
    assert_shape(&doc, "Contact", &r.json["data"][0]);
    assert_shape(&doc, "ContactWithAbout", &h.get(&format!("{s}/contacts/6281900000001"), Some(&t)).await.json);
    assert_shape(&doc, "Contact", &put(h, &format!("{s}/contacts/6281900000001/block"), &t, json!({})).await.json);
    assert_shape(&doc, "OwnPresence", &put(h, &format!("{s}/presence"), &t, json!({"status": "available"})).await.json);
    assert_shape(&doc, "PresenceSubscribed", &h.post(&format!("{s}/presence/subscribe"), Some(&t), json!({"contact": "6281900000001"})).await.json);
    assert_shape(&doc, "SimPresenceSent", &h.post(&format!("{s}/sim/presence"), Some(&t), json!({"from": "6281900000001", "status": "paused"})).await.json);
    assert_shape(&doc, "Profile", &h.get(&format!("{s}/profile"), Some(&t)).await.json);
    assert_shape(&doc, "Profile", &h.patch(&format!("{s}/profile"), Some(&t), json!({"name": "Z"})).await.json);
    let ev = events(h, &t, &id, "presence.update").await;
    assert_shape(&doc, "Person", &ev[0]["data"]["contact"]);
}
