//! Groups over real HTTP with the sim engine and real data files (CONTRACT
//! §13): a group's life from creation to leaving with each `group.*` event
//! once and in order, invite links and joining, changes by someone else
//! (`sim/group-event`), reads from the file while the session is stopped,
//! permissions and tenancy, pages, inbound group messages, and bad input
//! that must change nothing.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{sim_working_session as working_session, Http, Res, TestGateway};
use hyper::Method;
use serde_json::{json, Value};

/// The sim session's own number (`common::sim_working_session` pairs it).
const ME: &str = "6281100000001";

async fn gateway() -> TestGateway {
    TestGateway::start_with(|c| common::sim_engine(c, 20, 80)).await
}

fn groups(id: &str) -> String {
    format!("/api/v1/sessions/{id}/groups")
}

fn group(id: &str, gid: &str) -> String {
    format!("/api/v1/sessions/{id}/groups/{gid}")
}

/// The session's `group.*` events, in order.
async fn group_events(h: &Http, t: &str, id: &str) -> Vec<Value> {
    let all = common::walk(h, &format!("/api/v1/events?sessionId={id}"), t, 200).await;
    all.into_iter().filter(|e| e["type"].as_str().is_some_and(|k| k.starts_with("group."))).collect()
}

/// Polls `path` until `pred` holds on the answer (5 s at most).
async fn wait_for(h: &Http, t: &str, path: &str, pred: impl Fn(&Res) -> bool) -> Res {
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let r = h.get(path, Some(t)).await;
        if pred(&r) || Instant::now() > end {
            assert!(pred(&r), "{path} never matched; last: {} {:?}", r.status, r.json);
            return r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn create(h: &Http, t: &str, id: &str, participants: &[&str]) -> Value {
    let r = h.post(&groups(id), Some(t), json!({"subject": "Team", "participants": participants})).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    r.json
}

fn phones(g: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = g["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .map(|p| (p["phoneNumber"].as_str().unwrap_or("").to_string(), p["role"].as_str().unwrap_or("").to_string()))
        .collect();
    v.sort();
    v
}

fn pair(p: &str, r: &str) -> (String, String) {
    (p.to_string(), r.to_string())
}

async fn outbox_groups(h: &Http, t: &str, id: &str) -> Vec<Value> {
    let r = h.get(&format!("/api/v1/sessions/{id}/sim/outbox"), Some(t)).await;
    r.json["data"].as_array().cloned().unwrap_or_default().into_iter().filter(|r| r["kind"] == "group").collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_lives_created_changed_and_left_with_each_event_once_in_order() {
    let gw = gateway().await;
    let (h, t) = (&gw.http, gw.owner("org_g"));
    let id = working_session(h, &t, json!({})).await;
    let made = create(h, &t, &id, &["6281200000001", "6281200000002@s.whatsapp.net", "99912345678"]).await;
    let g = &made["group"];
    let gid = g["id"].as_str().expect("id").to_string();
    assert!(gid.starts_with("120363") && gid.ends_with("@g.us"), "{gid}");
    assert_eq!(g["subject"], "Team");
    assert_eq!(g["owner"], format!("{ME}@s.whatsapp.net"));
    assert_eq!(g["size"], 3);
    assert_eq!(phones(g), vec![pair(ME, "superadmin"), pair("6281200000001", "member"), pair("6281200000002", "member")]);
    assert!(g["participants"][1]["lid"].as_str().is_some_and(|l| l.ends_with("@lid")), "{g}");
    let statuses: Vec<&str> = made["participants"].as_array().expect("p").iter().map(|p| p["status"].as_str().unwrap_or("")).collect();
    assert_eq!(statuses, ["ok", "ok", "not_on_whatsapp"]);
    assert_eq!(made["participants"][1]["contact"], "6281200000002@s.whatsapp.net");
    assert_eq!(made["participants"][0]["person"]["phoneNumber"], "6281200000001");
    assert_eq!(made["participants"][2]["person"], Value::Null);

    // Read from the file; listed.
    let r = h.get(&group(&id, &gid), Some(&t)).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(&r.json, g);
    let list = h.get(&groups(&id), Some(&t)).await;
    assert_eq!(list.json["data"].as_array().map(Vec::len), Some(1));

    // Settings.
    let r = h.patch(&group(&id, &gid), Some(&t), json!({"subject": "Team 2", "ephemeralSeconds": 86400, "announce": true, "description": "d"})).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!((r.json["subject"].clone(), r.json["ephemeralSeconds"].clone(), r.json["announce"].clone()), (json!("Team 2"), json!(86400), json!(true)));
    // The same again changes nothing and tells nothing.
    let again = h.patch(&group(&id, &gid), Some(&t), json!({"subject": "Team 2"})).await;
    assert_eq!(again.status, 200);
    // WhatsApp's notification of our own change, arriving later: no second event.
    let hook = format!("/api/v1/sessions/{id}/sim/group-event");
    let r = h.post(&hook, Some(&t), json!({"groupId": gid, "action": "subject", "subject": "Team 2", "by": ME})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);

    // Participants: add, remove, promote, demote.
    let p = format!("{}/participants", group(&id, &gid));
    let r = h.post(&p, Some(&t), json!({"action": "add", "participants": ["6281200000003", "6281200000001"]})).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["data"][0]["status"], "ok");
    assert_eq!(r.json["data"][1]["status"], "failed", "already in: {:?}", r.json);
    let r = h.post(&p, Some(&t), json!({"action": "remove", "participants": ["6281200000001", "6281299999999"]})).await;
    assert_eq!((r.json["data"][0]["status"].clone(), r.json["data"][1]["status"].clone()), (json!("ok"), json!("not_in_group")));
    let r = h.post(&p, Some(&t), json!({"action": "promote", "participants": ["6281200000002"]})).await;
    assert_eq!(r.json["data"][0]["status"], "ok");
    let g = h.get(&group(&id, &gid), Some(&t)).await.json;
    assert_eq!(phones(&g), vec![pair(ME, "superadmin"), pair("6281200000002", "admin"), pair("6281200000003", "member")]);
    let r = h.post(&p, Some(&t), json!({"action": "demote", "participants": ["6281200000002"]})).await;
    assert_eq!(r.json["data"][0]["status"], "ok");

    // Invite link; revoking makes a new one.
    let inv = h.get(&format!("{}/invite", group(&id, &gid)), Some(&t)).await;
    assert_eq!(inv.status, 200, "{:?}", inv.json);
    let code = inv.json["code"].as_str().expect("code").to_string();
    assert_eq!(code.len(), 22);
    assert_eq!(inv.json["link"], format!("https://chat.whatsapp.com/{code}"));
    let rev = h.post(&format!("{}/invite/revoke", group(&id, &gid)), Some(&t), json!({})).await;
    assert_eq!(rev.status, 200, "{:?}", rev.json);
    assert_ne!(rev.json["code"], json!(code));

    // Leave.
    let r = h.delete(&group(&id, &gid), Some(&t)).await;
    assert_eq!(r.status, 204, "{:?}", r.json);
    assert_eq!(h.get(&group(&id, &gid), Some(&t)).await.status, 404);
    assert_eq!(h.delete(&group(&id, &gid), Some(&t)).await.status, 404);

    let evs = group_events(h, &t, &id).await;
    let kinds: Vec<String> = evs
        .iter()
        .map(|e| match e["data"]["action"].as_str() {
            Some(a) => format!("{}:{a}", e["type"].as_str().unwrap_or("")),
            None => e["type"].as_str().unwrap_or("").to_string(),
        })
        .collect();
    assert_eq!(
        kinds,
        ["group.joined", "group.updated", "group.participants:add", "group.participants:remove", "group.participants:promote", "group.participants:demote", "group.left"]
    );
    assert_eq!(evs[0]["data"]["id"], gid.as_str());
    assert_eq!(evs[0]["data"]["size"], 3);
    assert_eq!(evs[1]["data"]["changes"], json!({"subject": "Team 2", "ephemeralSeconds": 86400, "announce": true, "description": "d"}));
    assert_eq!(evs[1]["data"]["by"]["phoneNumber"], ME);
    assert!(evs[1]["data"]["by"]["lid"].as_str().is_some(), "{}", evs[1]);
    assert_eq!(evs[2]["data"]["participants"].as_array().map(Vec::len), Some(1));
    assert_eq!(evs[2]["data"]["participants"][0]["phoneNumber"], "6281200000003");
    assert_eq!(evs[6]["data"], json!({"groupId": gid, "by": evs[1]["data"]["by"]}));

    let actions: Vec<Value> = outbox_groups(h, &t, &id).await.iter().map(|r| r["action"].clone()).collect();
    assert_eq!(actions, [json!("create"), json!("update"), json!("update"), json!("add"), json!("remove"), json!("promote"), json!("demote"), json!("revoke_invite"), json!("leave")]);
    assert!(outbox_groups(h, &t, &id).await.iter().all(|r| r["groupId"] == gid.as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn joining_by_code_or_link_preview_and_membership_approval() {
    let gw = gateway().await;
    let (h, t) = (&gw.http, gw.owner("org_j"));
    let id = working_session(h, &t, json!({})).await;
    let gid = create(h, &t, &id, &["6281200000001"]).await["group"]["id"].as_str().expect("id").to_string();
    let code = h.get(&format!("{}/invite", group(&id, &gid)), Some(&t)).await.json["code"].as_str().expect("code").to_string();
    let preview = h.get(&format!("{}/invite/{code}", groups(&id)), Some(&t)).await;
    assert_eq!(preview.status, 200, "{:?}", preview.json);
    assert_eq!((preview.json["id"].clone(), preview.json["subject"].clone()), (json!(gid), json!("Team")));
    assert_eq!(h.delete(&group(&id, &gid), Some(&t)).await.status, 204);

    let r = h.post(&format!("{}/join", groups(&id)), Some(&t), json!({"code": code})).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["id"], gid.as_str());
    assert!(phones(&r.json).contains(&pair(ME, "member")), "{:?}", r.json);
    assert_eq!(h.get(&group(&id, &gid), Some(&t)).await.status, 200);

    // A void code: 404; by link, the same.
    let void = "AAAAAAAAAAAAAAAAAAAAAA";
    assert_eq!(h.post(&format!("{}/join", groups(&id)), Some(&t), json!({"code": void})).await.status, 404);
    let link = format!("https://chat.whatsapp.com/{void}");
    assert_eq!(h.post(&format!("{}/join", groups(&id)), Some(&t), json!({"link": link})).await.status, 404);

    // A group that approves members: joining leaves a request (202).
    let other = create(h, &t, &id, &["6281200000009"]).await["group"]["id"].as_str().expect("id").to_string();
    let r = h.patch(&group(&id, &other), Some(&t), json!({"membershipApproval": true})).await;
    assert_eq!(r.json["membershipApproval"], true);
    let code2 = h.get(&format!("{}/invite", group(&id, &other)), Some(&t)).await.json["code"].as_str().expect("code").to_string();
    assert_eq!(h.delete(&group(&id, &other), Some(&t)).await.status, 204);
    let link = format!("https://chat.whatsapp.com/{code2}");
    let r = h.post(&format!("{}/join", groups(&id)), Some(&t), json!({"link": link})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    assert_eq!(r.json, json!({"status": "requested"}));
    assert_eq!(h.get(&group(&id, &other), Some(&t)).await.status, 404);

    let kinds: Vec<String> = group_events(h, &t, &id).await.iter().map(|e| e["type"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(kinds, ["group.joined", "group.left", "group.joined", "group.joined", "group.updated", "group.left"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_by_someone_else_updates_the_stored_group_once() {
    let gw = gateway().await;
    let (h, t) = (&gw.http, gw.owner("org_e"));
    let id = working_session(h, &t, json!({})).await;
    let hook = format!("/api/v1/sessions/{id}/sim/group-event");
    let r = h.post(&hook, Some(&t), json!({"action": "created", "participants": ["6281300000002"], "by": "6281300000001"})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let gid = r.json["groupId"].as_str().expect("groupId").to_string();
    let g = wait_for(h, &t, &group(&id, &gid), |r| r.status == 200).await.json;
    assert_eq!(phones(&g), vec![pair(ME, "member"), pair("6281300000001", "superadmin"), pair("6281300000002", "member")]);

    let r = h.post(&hook, Some(&t), json!({"groupId": gid, "action": "subject", "subject": "New", "by": "6281300000001"})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    wait_for(h, &t, &group(&id, &gid), |r| r.json["subject"] == "New").await;
    // The same change told again (as WhatsApp repeats a notification, or
    // tells of a change already applied) is no second event.
    let r = h.post(&hook, Some(&t), json!({"groupId": gid, "action": "subject", "subject": "New", "by": "6281300000001"})).await;
    assert_eq!(r.status, 202);
    let r = h.post(&hook, Some(&t), json!({"groupId": gid, "action": "add", "participants": ["6281300000003"], "by": "6281300000001"})).await;
    assert_eq!(r.status, 202);
    wait_for(h, &t, &group(&id, &gid), |r| r.json["size"] == 4).await;
    let r = h.post(&hook, Some(&t), json!({"groupId": gid, "action": "promote", "participants": ["6281300000003"], "by": "6281300000001"})).await;
    assert_eq!(r.status, 202);
    wait_for(h, &t, &group(&id, &gid), |r| phones(&r.json).contains(&pair("6281300000003", "admin"))).await;
    let r = h.post(&hook, Some(&t), json!({"groupId": gid, "action": "remove", "participants": [ME], "by": "6281300000001"})).await;
    assert_eq!(r.status, 202);
    wait_for(h, &t, &group(&id, &gid), |r| r.status == 404).await;

    let evs = group_events(h, &t, &id).await;
    let kinds: Vec<&str> = evs.iter().map(|e| e["type"].as_str().unwrap_or("")).collect();
    assert_eq!(kinds, ["group.joined", "group.updated", "group.participants", "group.participants", "group.left"]);
    assert_eq!(evs[0]["data"]["owner"], "6281300000001@s.whatsapp.net");
    assert_eq!(evs[1]["data"]["changes"], json!({"subject": "New"}));
    assert_eq!(evs[1]["data"]["by"]["phoneNumber"], "6281300000001");
    assert_eq!(evs[2]["data"]["action"], "add");
    assert_eq!(evs[3]["data"]["action"], "promote");
    assert_eq!(evs[4]["data"]["groupId"], gid.as_str());
    // An unknown group is the hook's 404.
    let r = h.post(&hook, Some(&t), json!({"groupId": "120363000000000001@g.us", "action": "subject", "subject": "x", "by": "6281300000001"})).await;
    assert_eq!(r.status, 404, "{:?}", r.json);
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_come_from_the_file_and_a_stopped_session_answers_409_for_the_network() {
    let gw = gateway().await;
    let (h, t) = (&gw.http, gw.owner("org_s"));
    let id = working_session(h, &t, json!({})).await;
    let gid = create(h, &t, &id, &["6281200000001"]).await["group"]["id"].as_str().expect("id").to_string();
    let fresh = h.get(&format!("{}?refresh=true", group(&id, &gid)), Some(&t)).await;
    assert_eq!(fresh.status, 200, "{:?}", fresh.json);
    let r = h.post(&format!("/api/v1/sessions/{id}/stop"), Some(&t), json!({})).await;
    assert!(r.status.is_success(), "{:?}", r.json);
    common::wait_status(h, &t, &id, "stopped").await;
    let r = h.get(&group(&id, &gid), Some(&t)).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json, fresh.json);
    assert_eq!(h.get(&groups(&id), Some(&t)).await.status, 200);
    for r in [
        h.get(&format!("{}?refresh=true", group(&id, &gid)), Some(&t)).await,
        h.patch(&group(&id, &gid), Some(&t), json!({"subject": "x"})).await,
        h.post(&groups(&id), Some(&t), json!({"subject": "x", "participants": ["6281200000001"]})).await,
        h.delete(&group(&id, &gid), Some(&t)).await,
        h.get(&format!("{}/invite", group(&id, &gid)), Some(&t)).await,
        h.post(&format!("{}/join", groups(&id)), Some(&t), json!({"code": "AAAAAAAAAAAAAAAAAAAAAA"})).await,
    ] {
        assert_eq!((r.status.as_u16(), r.code()), (409, "conflict"), "{:?}", r.json);
    }
    assert_eq!(h.get(&group(&id, &gid), Some(&t)).await.json, fresh.json);
}

#[tokio::test(flavor = "multi_thread")]
async fn permissions_per_role_and_api_key_and_404_across_organizations() {
    let gw = gateway().await;
    let (h, t) = (&gw.http, gw.owner("org_p"));
    let id = working_session(h, &t, json!({})).await;
    let gid = create(h, &t, &id, &["6281200000001"]).await["group"]["id"].as_str().expect("id").to_string();
    let member = gw.token("m", Some("org_p"), Some("member"), false);
    assert_eq!(h.get(&group(&id, &gid), Some(&member)).await.status, 200);
    assert_eq!(h.get(&groups(&id), Some(&member)).await.status, 200);
    let r = h.patch(&group(&id, &gid), Some(&member), json!({"subject": "x"})).await;
    assert_eq!((r.status.as_u16(), r.code()), (403, "forbidden"));
    assert_eq!(h.post(&groups(&id), Some(&member), json!({"subject": "x", "participants": ["6281200000001"]})).await.status, 403);
    let key = |perms: &'static [&'static str]| {
        let t = t.clone();
        async move {
            let r = h.post("/api/v1/api-keys", Some(&t), json!({"name": "k", "permissions": perms})).await;
            assert_eq!(r.status, 201, "{:?}", r.json);
            r.json["key"].as_str().expect("key").to_string()
        }
    };
    let reader = key(&["contacts:read"]).await;
    let writer = key(&["groups:write"]).await;
    let neither = key(&["messages:read"]).await;
    assert_eq!(h.get(&group(&id, &gid), Some(&reader)).await.status, 200);
    assert_eq!(h.post(&format!("{}/participants", group(&id, &gid)), Some(&reader), json!({"action": "add", "participants": ["6281200000002"]})).await.status, 403);
    assert_eq!(h.get(&group(&id, &gid), Some(&neither)).await.status, 403);
    assert_eq!(h.get(&group(&id, &gid), Some(&writer)).await.status, 403);
    let r = h.patch(&group(&id, &gid), Some(&writer), json!({"locked": true})).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let stranger = gw.owner("org_other");
    for r in [
        h.get(&group(&id, &gid), Some(&stranger)).await,
        h.get(&groups(&id), Some(&stranger)).await,
        h.patch(&group(&id, &gid), Some(&stranger), json!({"subject": "x"})).await,
        h.delete(&group(&id, &gid), Some(&stranger)).await,
    ] {
        assert_eq!((r.status.as_u16(), r.code()), (404, "not_found"), "{:?}", r.json);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_walk_every_group_once_in_id_order() {
    let gw = gateway().await;
    let (h, t) = (&gw.http, gw.owner("org_l"));
    let id = working_session(h, &t, json!({})).await;
    for _ in 0..5 {
        let r = h.post(&format!("/api/v1/sessions/{id}/sim/group-event"), Some(&t), json!({"action": "created", "by": "6281300000001"})).await;
        assert_eq!(r.status, 202);
    }
    wait_for(h, &t, &format!("{}?limit=200", groups(&id)), |r| r.json["data"].as_array().map(Vec::len) == Some(5)).await;
    let all = common::walk(h, &groups(&id), &t, 2).await;
    let ids: Vec<&str> = all.iter().map(|g| g["id"].as_str().unwrap_or("")).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted);
    assert_eq!(ids.len(), 5);
    // A cursor of another list is refused.
    let webhooks = h.get("/api/v1/events?limit=1", Some(&t)).await;
    let foreign = webhooks.json["nextCursor"].as_str().expect("cursor").to_string();
    let r = h.get(&format!("{}?cursor={foreign}", groups(&id)), Some(&t)).await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "invalid_cursor"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_inbound_group_message_names_the_group_and_the_writer() {
    let gw = gateway().await;
    let (h, t) = (&gw.http, gw.owner("org_i"));
    let id = working_session(h, &t, json!({})).await;
    let gid = create(h, &t, &id, &["6281200000001"]).await["group"]["id"].as_str().expect("id").to_string();
    let r = h.post(&format!("/api/v1/sessions/{id}/sim/incoming"), Some(&t), json!({"from": "6281200000001", "text": "hi all", "group": gid})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let list = h.get(&format!("/api/v1/sessions/{id}/messages"), Some(&t)).await;
    let m = list.json["data"].as_array().and_then(|d| d.iter().find(|m| m["text"] == "hi all").cloned()).expect("stored");
    assert_eq!(m["chatId"], gid.as_str());
    assert_eq!(m["senderJid"], "6281200000001@s.whatsapp.net");
    // A writer addressed by its LID (the phone as the alternate address).
    let r = h.post(&format!("/api/v1/sessions/{id}/sim/incoming"), Some(&t), json!({"from": "6281200000002", "lid": "77001", "text": "by lid", "group": gid})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let list = h.get(&format!("/api/v1/sessions/{id}/messages"), Some(&t)).await;
    let m = list.json["data"].as_array().and_then(|d| d.iter().find(|m| m["text"] == "by lid").cloned()).expect("stored");
    assert_eq!((m["chatId"].clone(), m["senderLid"].clone(), m["senderJid"].clone()), (json!(gid), json!("77001@lid"), json!("6281200000002@s.whatsapp.net")));
    // And a send to the group goes out with the group as its chat.
    let r = h.post(&format!("/api/v1/sessions/{id}/messages"), Some(&t), json!({"to": gid, "text": "hello"})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    assert_eq!(r.json["chatId"], gid.as_str());
}

/// Needs part A (`sim/contacts` with `"addable": false`): until the branches
/// merge, `sim/contacts` is a stub and this test FAILS in this branch.
#[tokio::test(flavor = "multi_thread")]
async fn needs_invite_when_privacy_refuses_the_add_needs_part_a_sim_contacts() {
    let gw = gateway().await;
    let (h, t) = (&gw.http, gw.owner("org_n"));
    let id = working_session(h, &t, json!({})).await;
    let r = h.post(&format!("/api/v1/sessions/{id}/sim/contacts"), Some(&t), json!({"contacts": [{"phoneNumber": "6281200000007", "addable": false}]})).await;
    assert!(r.status.is_success(), "sim/contacts (part A): {:?}", r.json);
    let made = create(h, &t, &id, &["6281200000001", "6281200000007", "99900000001"]).await;
    let statuses: Vec<&str> = made["participants"].as_array().expect("p").iter().map(|p| p["status"].as_str().unwrap_or("")).collect();
    assert_eq!(statuses, ["ok", "needs_invite", "not_on_whatsapp"]);
    assert_eq!(made["participants"][1]["code"], "403");
    assert_eq!(made["group"]["size"], 2);
    let gid = made["group"]["id"].as_str().expect("id");
    let r = h.post(&format!("{}/participants", group(&id, gid)), Some(&t), json!({"action": "add", "participants": ["6281200000007"], "invite": true})).await;
    assert_eq!(r.json["data"][0]["status"], "needs_invite");
    let out = h.get(&format!("/api/v1/sessions/{id}/sim/outbox"), Some(&t)).await.json;
    assert!(out["data"].as_array().expect("outbox").iter().any(|r| r["type"] == "group_invite" && r["chatId"] == "6281200000007@s.whatsapp.net"));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_a_4xx_envelope_and_changes_nothing() {
    let gw = gateway().await;
    let (h, t) = (&gw.http, gw.owner("org_b"));
    let id = working_session(h, &t, json!({})).await;
    let gid = create(h, &t, &id, &["6281200000001"]).await["group"]["id"].as_str().expect("id").to_string();
    let before = (h.get(&group(&id, &gid), Some(&t)).await.json, group_events(h, &t, &id).await.len(), outbox_groups(h, &t, &id).await.len());
    let many: Vec<String> = (0..257).map(|i| format!("62812{i:08}")).collect();
    let p = format!("{}/participants", group(&id, &gid));
    let cases: Vec<(Res, u16, &str)> = vec![
        (h.post(&groups(&id), Some(&t), json!({"subject": "x", "participants": []})).await, 400, "participants"),
        (h.post(&groups(&id), Some(&t), json!({"subject": "x", "participants": many})).await, 400, "participants"),
        (h.post(&groups(&id), Some(&t), json!({"subject": "x", "participants": [gid]})).await, 400, "participants"),
        (h.post(&groups(&id), Some(&t), json!({"subject": "", "participants": ["6281200000001"]})).await, 400, "subject"),
        (h.post(&groups(&id), Some(&t), json!({"subject": "x".repeat(101), "participants": ["6281200000001"]})).await, 400, "subject"),
        (h.post(&groups(&id), Some(&t), json!({"subject": "x", "participants": ["6281200000001"], "extra": 1})).await, 400, ""),
        (h.post(&p, Some(&t), json!({"action": "add", "participants": []})).await, 400, "participants"),
        (h.post(&p, Some(&t), json!({"action": "explode", "participants": ["6281200000001"]})).await, 400, "action"),
        (h.post(&p, Some(&t), json!({"action": "add", "participants": ["120363111111111111@g.us"]})).await, 400, "participants"),
        (h.patch(&group(&id, &gid), Some(&t), json!({"ephemeralSeconds": 5})).await, 400, "ephemeralSeconds"),
        (h.patch(&group(&id, &gid), Some(&t), json!({"description": "d".repeat(2049)})).await, 400, "description"),
        (h.patch(&group(&id, &gid), Some(&t), json!({"announce": "yes"})).await, 400, ""),
        (h.get(&group(&id, "6281200000001@s.whatsapp.net"), Some(&t)).await, 400, "groupId"),
        (h.get(&group(&id, "6281200000001"), Some(&t)).await, 400, "groupId"),
        (h.patch(&group(&id, "120363000000000009@g.us"), Some(&t), json!({"subject": "x"})).await, 404, ""),
        (h.get(&group(&id, "120363000000000009@g.us"), Some(&t)).await, 404, ""),
        (h.get(&format!("{}?refresh=maybe", group(&id, &gid)), Some(&t)).await, 400, "refresh"),
        (h.post(&format!("{}/join", groups(&id)), Some(&t), json!({"code": "short"})).await, 400, "code"),
        (h.post(&format!("{}/join", groups(&id)), Some(&t), json!({"code": "AAAAAAAAAAAAAAAAAAAA/A"})).await, 400, "code"),
        (h.post(&format!("{}/join", groups(&id)), Some(&t), json!({"link": "https://evil.example/AAAAAAAAAAAAAAAAAAAAAA"})).await, 400, "link"),
        (h.post(&format!("{}/join", groups(&id)), Some(&t), json!({})).await, 400, "code"),
        (h.get(&format!("{}/invite/bad!code", groups(&id)), Some(&t)).await, 400, "code"),
        (h.post(&format!("{}/requests", group(&id, &gid)), Some(&t), json!({"action": "maybe", "participants": ["6281200000001"]})).await, 400, "action"),
        (h.get(&format!("{}?cursor=xyz", groups(&id)), Some(&t)).await, 400, ""),
    ];
    for (i, (r, status, field)) in cases.iter().enumerate() {
        assert_eq!(r.status.as_u16(), *status, "case {i}: {:?}", r.json);
        assert!(r.json["error"]["code"].is_string(), "case {i}: no envelope: {:?}", r.json);
        if !field.is_empty() {
            assert_eq!(r.json["error"]["details"]["field"], *field, "case {i}: {:?}", r.json);
        }
    }
    // Pictures: the wrong type, bytes that are not the image, too big.
    let pic = format!("{}/picture", group(&id, &gid));
    let put = |ct: &'static str, body: Vec<u8>| {
        let pic = pic.clone();
        let t = t.clone();
        async move { h.send(Method::PUT, &pic, Some(&t), Some(Bytes::from(body)), &[("content-type", ct)]).await }
    };
    assert_eq!(put("text/plain", b"hello".to_vec()).await.status, 415);
    assert_eq!(put("image/png", b"not a png at all".to_vec()).await.status, 400);
    assert_eq!(put("image/jpeg", vec![0x89, b'P', b'N', b'G', 13, 10, 26, 10]).await.status, 400);
    let big = put("image/jpeg", vec![0xFF; 5 * 1024 * 1024 + 1]).await;
    assert_eq!((big.status.as_u16(), big.code()), (413, "payload_too_large"), "{:?}", big.json);
    let after = (h.get(&group(&id, &gid), Some(&t)).await.json, group_events(h, &t, &id).await.len(), outbox_groups(h, &t, &id).await.len());
    assert_eq!(before, after);
}

/// A second working session of `t`'s organization, linked to `phone`.
async fn session_with_phone(h: &Http, t: &str, phone: &str) -> String {
    let r = h.post("/api/v1/sessions", Some(t), json!({"label": "sim2", "start": true})).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let id = r.json["id"].as_str().expect("id").to_string();
    common::wait_status(h, t, &id, "scan_qr_code").await;
    let r = h.post(&format!("/api/v1/sessions/{id}/sim/pair"), Some(t), json!({"phoneNumber": phone})).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    common::wait_status(h, t, &id, "working").await;
    id
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_to_join_is_listed_and_approved_by_the_admin() {
    let gw = gateway().await;
    let (h, t) = (&gw.http, gw.owner("org_r"));
    let admin = working_session(h, &t, json!({})).await;
    let other = session_with_phone(h, &t, "6281500000005").await;
    let gid = create(h, &t, &admin, &["6281200000001"]).await["group"]["id"].as_str().expect("id").to_string();
    h.patch(&group(&admin, &gid), Some(&t), json!({"membershipApproval": true})).await;
    let code = h.get(&format!("{}/invite", group(&admin, &gid)), Some(&t)).await.json["code"].as_str().expect("code").to_string();
    let r = h.post(&format!("{}/join", groups(&other)), Some(&t), json!({"code": code})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let reqs = h.get(&format!("{}/requests", group(&admin, &gid)), Some(&t)).await;
    assert_eq!(reqs.status, 200, "{:?}", reqs.json);
    assert_eq!(reqs.json["data"][0]["person"]["phoneNumber"], "6281500000005");
    let r = h.post(&format!("{}/requests", group(&admin, &gid)), Some(&t), json!({"action": "approve", "participants": ["6281500000005", "6281500000006"]})).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!((r.json["data"][0]["status"].clone(), r.json["data"][1]["status"].clone()), (json!("ok"), json!("not_in_group")));
    let g = h.get(&group(&admin, &gid), Some(&t)).await.json;
    assert!(phones(&g).contains(&pair("6281500000005", "member")), "{g}");
    assert_eq!(h.get(&format!("{}/requests", group(&admin, &gid)), Some(&t)).await.json["data"], json!([]));
    let evs = group_events(h, &t, &admin).await;
    let last = evs.last().expect("events");
    assert_eq!((last["type"].clone(), last["data"]["action"].clone()), (json!("group.participants"), json!("add")));
    // The joiner's preview of the same code (a group of another session).
    let p = h.get(&format!("{}/invite/{code}", groups(&other)), Some(&t)).await;
    assert_eq!((p.status.as_u16(), p.json["id"].clone()), (200, json!(gid)));
}
