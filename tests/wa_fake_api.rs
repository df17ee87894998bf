//! Contacts, presence, profile and groups (CONTRACT §12, §13; issue 21)
//! through the gateway's HTTP API with the default `whatsapp` engine,
//! offline: a session is linked through the API against the fake WhatsApp
//! server of `tests/support/fake_wa`, and from then on every call is a
//! real HTTP request with the owner's token. The fake answers and records
//! each stanza the real whatsapp-rust client sends (its `directory` and
//! `groups` rules), and pushes what other people do (presence, group texts,
//! another admin's changes). `tests/wa_fake_directory.rs` and
//! `tests/wa_fake_groups.rs` prove the engine calls beneath these routes.

mod common;
#[path = "support/fake_wa/mod.rs"]
mod fake_wa;
#[path = "support/fake_wa/flow.rs"]
mod flow;

use std::time::{Duration, Instant};

use common::TestGateway;
use fake_wa::groups::Role;
use fake_wa::FakeWa;
use flow::{gateway_on, get_until, inbound, linked, message_until};
use serde_json::{json, Value};

const PHONE: &str = "6281234567890";
const CONTACT: &str = "6289876543210";
const OTHER: &str = "6285550001111";
/// A number nobody on the fake network has.
const STRANGER: &str = "6287770002222";
const ALICE: &str = "6281111111111";
const BOB: &str = "6282222222222";
const CAROL: &str = "6283333333333";
/// Not a real JPEG: the gateway passes the bytes through as they are served.
const JPEG: &[u8] = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00fake-profile-picture\xff\xd9";

fn pn(phone: &str) -> String {
    format!("{phone}@s.whatsapp.net")
}

fn no_surprises(fake: &FakeWa) {
    assert!(fake.unexpected().is_empty(), "stanzas the fake had no rule for: {:?}", fake.unexpected());
}

/// Polls the organization's events of `kind` until one satisfies `pick`
/// (up to `within`); returns that event's `data`.
async fn event(gw: &TestGateway, token: &str, kind: &str, within: Duration, pick: impl Fn(&Value) -> bool) -> Value {
    let found = |page: &Value| page["data"].as_array().and_then(|d| d.iter().find(|e| e["type"] == json!(kind) && pick(&e["data"])).cloned());
    let page = get_until(gw, token, &format!("/api/v1/events?type={kind}&limit=100"), within, |p| found(p).is_some()).await;
    found(&page).map(|e| e["data"].clone()).unwrap_or(Value::Null)
}

async fn check(gw: &TestGateway, token: &str, sid: &str, phones: &[&str]) -> Value {
    let r = gw.http.post(&format!("/api/v1/sessions/{sid}/contacts/check"), Some(token), json!({"phoneNumbers": phones})).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    r.json
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_pictures_blocking_presence_and_profile_through_the_api() {
    let t = Instant::now();
    let fake = FakeWa::start().await;
    let gw = gateway_on(&fake, None).await;
    let token = gw.owner("org_api_dir");
    let (sid, device) = linked(&gw, &fake, &token, PHONE).await;
    let linked_in = t.elapsed();
    let lid = format!("{}@lid", fake.contact(CONTACT));
    let other_lid = format!("{}@lid", fake.contact(OTHER));
    fake.set_picture(CONTACT, Some(JPEG));
    let base = format!("/api/v1/sessions/{sid}");

    // The check is answered by usync, in the order given.
    let before = fake.lookups().len();
    let got = check(&gw, &token, &sid, &[CONTACT, STRANGER, OTHER]).await;
    let want = json!({"data": [
        {"phoneNumber": CONTACT, "onWhatsApp": true, "jid": pn(CONTACT), "lid": lid, "isBusiness": false},
        {"phoneNumber": STRANGER, "onWhatsApp": false, "jid": null, "lid": null, "isBusiness": false},
        {"phoneNumber": OTHER, "onWhatsApp": true, "jid": pn(OTHER), "lid": other_lid, "isBusiness": false},
    ]});
    assert_eq!(got, want);
    let asked = fake.lookups()[before..].to_vec();
    for p in [CONTACT, STRANGER, OTHER] {
        assert!(asked.contains(&p.to_string()), "{p} was not asked: {asked:?}");
    }
    // Asked again: the cache answers ("not on WhatsApp" too); the fake hears nothing.
    let n = fake.lookups().len();
    assert_eq!(check(&gw, &token, &sid, &[STRANGER, CONTACT]).await["data"], json!([want["data"][1], want["data"][0]]));
    assert_eq!(fake.lookups().len(), n, "a cached answer went to the network: {:?}", fake.lookups());

    // The contact's picture: the bytes the fake serves; none for the other.
    let r = gw.http.get(&format!("{base}/contacts/{CONTACT}/picture"), Some(&token)).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.headers.get("content-type").and_then(|v| v.to_str().ok()), Some("image/jpeg"));
    assert_eq!(&r.body[..], JPEG);
    assert!(fake.media_requests().iter().any(|m| m.starts_with("GET /v/t62.fake-picture/") && m.ends_with(" 200")), "{:?}", fake.media_requests());
    let r = gw.http.get(&format!("{base}/contacts/{}/picture?size=full", pn(OTHER)), Some(&token)).await;
    assert_eq!((r.status.as_u16(), r.code()), (404, "not_found"), "{:?}", r.json);

    // Blocking and unblocking: recorded by the fake; the answer is the Contact.
    let block = format!("{base}/contacts/{CONTACT}/block");
    let r = gw.http.send(hyper::Method::PUT, &block, Some(&token), None, &[]).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!((r.json["isBlocked"].clone(), r.json["jid"].clone(), r.json["lid"].clone()), (json!(true), json!(pn(CONTACT)), json!(lid)), "{}", r.json);
    assert_eq!(fake.blocked(), vec![(lid.clone(), Some(pn(CONTACT)))]);
    let r = gw.http.delete(&block, Some(&token)).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["isBlocked"], json!(false), "{}", r.json);
    assert_eq!(fake.blocked(), vec![]);
    assert_eq!(fake.block_log(), vec![format!("block {lid} {}", pn(CONTACT)), format!("unblock {lid}")]);

    // Presence: subscribed, then the contact comes online.
    let r = gw.http.post(&format!("{base}/presence/subscribe"), Some(&token), json!({"contact": CONTACT})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    assert!(fake.until(Duration::from_secs(5), |f| f.subscriptions().contains(&pn(CONTACT))).await, "{:?}", fake.subscriptions());
    fake.push_presence(&device, CONTACT, true, None).expect("pushed");
    let p = event(&gw, &token, "presence.update", Duration::from_secs(5), |d| d["status"] == "available").await;
    assert_eq!(p["contact"], json!({"jid": pn(CONTACT), "lid": lid, "phoneNumber": CONTACT}), "{p}");

    // Bad input is a 4xx envelope and never reaches the network.
    let (lookups, blocks, subs) = (fake.lookups().len(), fake.block_log().len(), fake.subscriptions().len());
    let r = gw.http.post(&format!("{base}/contacts/check"), Some(&token), json!({"phoneNumbers": ["62 81"]})).await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "invalid_request"), "{:?}", r.json);
    let r = gw.http.send(hyper::Method::PUT, &format!("{base}/contacts/120363000111@g.us/block"), Some(&token), None, &[]).await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "invalid_request"), "{:?}", r.json);
    let r = gw.http.get(&format!("{base}/contacts/{STRANGER}/picture"), Some(&token)).await;
    assert_eq!((r.status.as_u16(), r.code()), (404, "not_found"), "never seen: {:?}", r.json);
    let r = gw.http.post(&format!("{base}/presence/subscribe"), Some(&token), json!({"contact": "120363000111@g.us"})).await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "invalid_request"), "{:?}", r.json);
    assert_eq!((fake.lookups().len(), fake.block_log().len(), fake.subscriptions().len()), (lookups, blocks, subs));

    // The profile: name and about reach the fake.
    let r = gw.http.patch(&format!("{base}/profile"), Some(&token), json!({"name": "Toko Budi", "about": "Buka 24 jam"})).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json, json!({"name": "Toko Budi", "about": "Buka 24 jam"}));
    assert!(fake.until(Duration::from_secs(5), |f| f.push_names() == ["Toko Budi"]).await, "{:?}", fake.push_names());
    assert_eq!(fake.about_sets(), ["Buka 24 jam"]);
    let r = gw.http.get(&format!("{base}/profile"), Some(&token)).await;
    assert_eq!(r.json, json!({"name": "Toko Budi", "about": "Buka 24 jam"}));
    no_surprises(&fake);
    eprintln!("directory through the API: linked in {linked_in:?}, all in {:?}", t.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_created_through_the_api_carries_texts_both_ways_and_another_admin_s_add() {
    let t = Instant::now();
    let fake = FakeWa::start().await;
    let gw = gateway_on(&fake, None).await;
    let token = gw.owner("org_api_grp");
    let (sid, device) = linked(&gw, &fake, &token, PHONE).await;
    let linked_in = t.elapsed();
    let alice_lid = format!("{}@lid", fake.contact(ALICE));
    fake.contact(BOB);
    let carol_lid = format!("{}@lid", fake.contact(CAROL));
    let base = format!("/api/v1/sessions/{sid}");

    // Created with two contacts: 201, held by the fake, a group.joined event.
    let body = json!({"subject": "Tim Gudang", "participants": [ALICE, pn(BOB)], "description": "Stok harian"});
    let r = gw.http.post(&format!("{base}/groups"), Some(&token), body).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let group = r.json["group"]["id"].as_str().expect("a group id").to_string();
    assert!(group.ends_with("@g.us"), "{}", r.json);
    assert_eq!(r.json["group"]["subject"], "Tim Gudang");
    assert_eq!(r.json["group"]["owner"], json!(pn(PHONE)));
    let outcomes: Vec<(Value, Value, Value)> = r.json["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .map(|p| (p["contact"].clone(), p["status"].clone(), p["person"]["jid"].clone()))
        .collect();
    assert_eq!(outcomes, vec![(json!(ALICE), json!("ok"), json!(pn(ALICE))), (json!(pn(BOB)), json!("ok"), json!(pn(BOB)))]);
    let held = fake.group(&group).expect("the fake holds the group");
    assert_eq!((held.subject.as_str(), held.description.as_deref()), ("Tim Gudang", Some("Stok harian")));
    assert_eq!(held.members.get(PHONE), Some(&Role::SuperAdmin));
    assert_eq!(held.members.get(ALICE), Some(&Role::Member));
    assert_eq!(held.members.get(BOB), Some(&Role::Member));
    let joined = event(&gw, &token, "group.joined", Duration::from_secs(5), |d| d["id"] == json!(group)).await;
    assert_eq!(joined["subject"], "Tim Gudang", "{joined}");

    // A text to the group: each member decrypts it off the sender key; `sent`.
    let r = gw.http.post(&format!("{base}/messages"), Some(&token), json!({"to": group, "text": "Halo semua"})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let (mid, wa) = (r.json["id"].as_str().expect("id").to_string(), r.json["waMessageId"].as_str().expect("wa").to_string());
    assert!(
        fake.until(Duration::from_secs(15), |f| [ALICE, BOB].iter().all(|m| f.received(m).iter().any(|x| x.id == wa))).await,
        "the members got nothing; unexpected: {:?}",
        fake.unexpected()
    );
    for member in [ALICE, BOB] {
        let got = fake.received(member);
        assert_eq!(got.len(), 1, "{member}: {got:?}");
        assert_eq!((got[0].text.as_deref(), got[0].enc.as_str(), got[0].to.as_str()), (Some("Halo semua"), "skmsg", group.as_str()));
    }
    let m = message_until(&gw, &token, &sid, &mid, Duration::from_secs(10), |m| m["status"] == "sent").await;
    assert_eq!(m["chatId"], json!(group), "{m}");

    // Alice writes in the group: an inbound message of the group, by her.
    let wa_in = fake.deliver_group_text(ALICE, &group, &device, "Rapat jam 3").expect("delivered");
    let m = inbound(&gw, &token, &sid, &wa_in).await;
    assert_eq!(m["text"], "Rapat jam 3", "{m}");
    assert_eq!(m["chatId"], json!(group), "{m}");
    assert_eq!(m["senderJid"], json!(pn(ALICE)), "{m}");
    assert_eq!(m["senderLid"], json!(alice_lid), "{m}");

    // Made admin through the API, Alice adds Carol herself: the notification
    // is a group.participants event, and the stored group lists Carol.
    let r = gw.http.post(&format!("{base}/groups/{group}/participants"), Some(&token), json!({"action": "promote", "participants": [ALICE]})).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["data"][0]["status"], "ok", "{}", r.json);
    assert_eq!(fake.group(&group).and_then(|g| g.members.get(ALICE).copied()), Some(Role::Admin));
    fake.admin_add(ALICE, &group, &[CAROL.to_string()]).expect("notified");
    let added = event(&gw, &token, "group.participants", Duration::from_secs(10), |d| d["action"] == "add").await;
    assert_eq!(added["groupId"], json!(group), "{added}");
    assert_eq!(added["by"]["jid"], json!(pn(ALICE)), "{added}");
    let people = added["participants"].as_array().expect("participants");
    assert_eq!(people.len(), 1, "{added}");
    assert_eq!(people[0], json!({"jid": pn(CAROL), "lid": carol_lid, "phoneNumber": CAROL}), "{added}");
    let r = gw.http.get(&format!("{base}/groups/{group}"), Some(&token)).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let carol = r.json["participants"].as_array().expect("participants").iter().find(|p| p["jid"] == json!(pn(CAROL))).cloned();
    assert_eq!(carol.map(|c| (c["lid"].clone(), c["role"].clone())), Some((json!(carol_lid), json!("member"))), "{}", r.json);
    assert_eq!(r.json["size"], json!(4), "{}", r.json);
    // Bad input: a 4xx envelope, nothing sent, nothing stored.
    let creates = fake.group_log().iter().filter(|l| l.starts_with("create")).count();
    let r = gw.http.post(&format!("{base}/groups"), Some(&token), json!({"subject": "Kosong", "participants": []})).await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "invalid_request"), "{:?}", r.json);
    let r = gw.http.get(&format!("{base}/groups/{}", pn(ALICE)), Some(&token)).await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "invalid_request"), "a person is not a group: {:?}", r.json);
    assert_eq!(fake.group_log().iter().filter(|l| l.starts_with("create")).count(), creates);
    let r = gw.http.get(&format!("{base}/groups"), Some(&token)).await;
    assert_eq!(r.json["data"].as_array().map(Vec::len), Some(1), "{}", r.json);
    no_surprises(&fake);
    eprintln!("groups through the API: linked in {linked_in:?}, all in {:?}", t.elapsed());
}
