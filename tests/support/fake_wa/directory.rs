//! Contacts, presence, profile and blocking on the fake network (CONTRACT
//! §12): the rules for the stanzas the client sends for them, what the fake
//! records of each, and the control methods tests use.
//!
//! The client's stanzas, from whatsapp-rust / wacore 0.7 (`features/
//! {contacts,presence,profile,blocking}.rs`, `iq/{usync,contacts,profile,
//! blocklist}.rs`):
//! - number check: usync `<query><contact/><lid/><business>…` with
//!   `<user><contact>+digits</contact></user>`: answered by the messaging
//!   rule (`contact type=in|out`, `lid val`); counted here as lookups.
//! - about: usync `<query><business/><status/><picture/><devices/><lid/>`
//!   with `<user jid>`: the messaging rule's answer plus `<status>text</status>`.
//! - picture: `<iq xmlns=w:profile:picture type=get target=JID><picture type=preview|image query=url>`
//!   → `<picture id url direct_path>` (the URL on the media host), or an
//!   error 404 for someone without one. Set: `<iq … type=set [target=group]><picture type=image>JPEG`
//!   (no child: removed) → `<picture id>`.
//! - about set: `<iq xmlns=status type=set><status>text</status>`.
//! - blocklist: `<iq xmlns=blocklist type=set><item action=block|unblock jid=LID [pn_jid]>`; get → `<list><item jid>`.
//! - presence: `<presence type=subscribe to=JID>` (a subscription),
//!   `<presence type=available|unavailable name>` (own presence),
//!   `<presence name>` (a new push name; the crate also syncs it as an
//!   app-state mutation, which the login rules absorb).

use std::collections::BTreeMap;

use base64::Engine as _;
use whatsapp_rust::wacore_binary::builder::NodeBuilder;
use whatsapp_rust::wacore_binary::{Node, NodeContent};

use super::stanzas::{Out, SERVER};
use super::{phone_entry, Command, FakeWa, State};

/// The directory's half of the fake's state.
#[derive(Default)]
pub struct Directory {
    /// Each phone's profile picture (JPEG), by phone user.
    pictures: BTreeMap<String, Vec<u8>>,
    /// Each phone's about text, by phone user.
    abouts: BTreeMap<String, String>,
    /// Numbers (digits) asked about by "is on WhatsApp" queries, in order.
    lookups: Vec<String>,
    /// Presence subscriptions, as the `to` JIDs.
    subscriptions: Vec<String>,
    /// Own presence stanzas: `available <name>`, `unavailable <name>`.
    presences: Vec<String>,
    /// Push names set (`<presence name>` without a type).
    push_names: Vec<String>,
    /// About texts set.
    about_sets: Vec<String>,
    /// Picture changes: `own <n bytes>`, `own removed`, `<group> <n bytes>`, `<group> removed`.
    picture_sets: Vec<String>,
    /// The blocklist: blocked LID JIDs, with the phone JID given beside them.
    blocked: BTreeMap<String, Option<String>>,
    /// Blocklist changes in order: `block <lid> <pn>`, `unblock <lid>`.
    block_log: Vec<String>,
    next_picture: u64,
}

fn attr(n: &Node, k: &str) -> Option<String> {
    n.attrs().optional_string(k).map(|s| s.to_string())
}

fn children(n: &Node) -> &[Node] {
    n.children().unwrap_or(&[])
}

fn result(req: &Node) -> NodeBuilder {
    NodeBuilder::new("iq").attrs([
        ("from", SERVER.to_string()),
        ("id", attr(req, "id").unwrap_or_default()),
        ("type", "result".to_string()),
    ])
}

fn error(req: &Node, code: &str, text: &str) -> Node {
    NodeBuilder::new("iq")
        .attrs([
            ("from", SERVER.to_string()),
            ("id", attr(req, "id").unwrap_or_default()),
            ("type", "error".to_string()),
        ])
        .children([NodeBuilder::new("error").attr("code", code.to_string()).attr("text", text.to_string()).build()])
        .build()
}

/// The user part of `user[:device]@server`.
fn user_of(jid: &str) -> String {
    let left = jid.split_once('@').map_or(jid, |(l, _)| l);
    left.split_once(':').map_or(left, |(u, _)| u).to_string()
}

/// The phone a user part names: its number, or its LID.
fn phone_of(st: &State, user: &str) -> Option<String> {
    if st.phones.contains_key(user) {
        return Some(user.to_string());
    }
    st.phones.values().find(|p| p.lid == user).map(|p| p.user.clone())
}

/// The phone of the device on this connection.
fn own_phone(st: &State, device: Option<[u8; 32]>) -> Option<String> {
    device.and_then(|k| st.linked.get(&k)).map(|l| l.user.clone())
}

/// The answer to `n` when it is one of the directory's stanzas (`None`:
/// not one of these; usync queries fall through to the messaging rule
/// unless they ask for about texts).
pub(super) fn answer(st: &mut State, device: Option<[u8; 32]>, n: &Node) -> Option<Out> {
    let tag = n.tag.as_ref();
    let (ns, ty) = (attr(n, "xmlns"), attr(n, "type"));
    let mut out = Out::default();
    match (tag, ns.as_deref(), ty.as_deref()) {
        ("iq", Some("usync"), Some("get")) => return usync(st, n),
        ("iq", Some("w:profile:picture"), Some("get")) => out.replies.push(picture(st, n)),
        ("iq", Some("w:profile:picture"), Some("set")) => {
            let whose = attr(n, "target").or_else(|| attr(n, "to").filter(|t| t.ends_with("@g.us")));
            let whose = whose.unwrap_or_else(|| "own".into());
            let jpeg = n.get_optional_child("picture").and_then(|p| match &p.content {
                Some(NodeContent::Bytes(b)) if !b.is_empty() => Some(b.to_vec()),
                _ => None,
            });
            st.dir.picture_sets.push(match &jpeg {
                Some(b) => format!("{whose} {} bytes", b.len()),
                None => format!("{whose} removed"),
            });
            if whose == "own" {
                if let Some(me) = own_phone(st, device) {
                    match jpeg {
                        Some(b) => st.dir.pictures.insert(me, b),
                        None => st.dir.pictures.remove(&me),
                    };
                }
            }
            st.dir.next_picture += 1;
            let id = format!("{}", 1_700_000_000 + st.dir.next_picture);
            out.replies.push(result(n).children([NodeBuilder::new("picture").attr("id", id).build()]).build());
        }
        ("iq", Some("status"), Some("set")) => {
            let text = n.get_optional_child("status").and_then(|s| s.content_as_string()).unwrap_or_default().to_string();
            st.dir.about_sets.push(text.clone());
            if let Some(me) = own_phone(st, device) {
                st.dir.abouts.insert(me, text);
            }
            out.replies.push(result(n).build());
        }
        ("iq", Some("blocklist"), Some("set")) => {
            for item in children(n).iter().filter(|c| c.tag == "item") {
                let jid = attr(item, "jid").unwrap_or_default();
                match attr(item, "action").as_deref() {
                    Some("block") => {
                        let pn = attr(item, "pn_jid");
                        st.dir.block_log.push(format!("block {jid} {}", pn.clone().unwrap_or_default()));
                        st.dir.blocked.insert(jid, pn);
                    }
                    Some("unblock") => {
                        st.dir.block_log.push(format!("unblock {jid}"));
                        st.dir.blocked.remove(&jid);
                    }
                    _ => st.unexpected.push(format!("a blocklist item the fake could not read: {item:?}")),
                }
            }
            out.replies.push(result(n).build());
        }
        ("iq", Some("blocklist"), Some("get")) => {
            let items: Vec<Node> =
                st.dir.blocked.keys().map(|jid| NodeBuilder::new("item").attr("jid", jid.clone()).build()).collect();
            out.replies.push(result(n).children([NodeBuilder::new("list").children(items).build()]).build());
        }
        ("presence", ..) => {
            let name = attr(n, "name").unwrap_or_default();
            match ty.as_deref() {
                Some("subscribe") => st.dir.subscriptions.push(attr(n, "to").unwrap_or_default()),
                Some("unsubscribe") => {}
                Some(t @ ("available" | "unavailable")) => st.dir.presences.push(format!("{t} {name}")),
                None if !name.is_empty() => st.dir.push_names.push(name),
                _ => st.unexpected.push(format!("a presence the fake could not read: {n:?}")),
            }
        }
        _ => return None,
    }
    Some(out)
}

/// Usync: "is on WhatsApp" queries are counted (and answered by the
/// messaging rule); about queries get the messaging answer plus `<status>`.
fn usync(st: &mut State, n: &Node) -> Option<Out> {
    let us = n.get_optional_child("usync")?;
    let asked: Vec<String> =
        us.get_optional_child("query").map(|q| children(q).iter().map(|c| c.tag.to_string()).collect()).unwrap_or_default();
    let list = us.get_optional_child("list").map(children).unwrap_or(&[]);
    if asked.iter().any(|a| a == "contact") {
        for u in list.iter().filter(|u| u.tag == "user") {
            let who = match u.get_optional_child("contact").and_then(|c| c.content_as_string()) {
                Some(c) => c.chars().filter(char::is_ascii_digit).collect(),
                None => attr(u, "jid").map(|j| user_of(&j)).unwrap_or_default(),
            };
            st.dir.lookups.push(who);
        }
    }
    if !asked.iter().any(|a| a == "status") {
        return None;
    }
    let mut answer = super::messaging::usync(st, n);
    let users = answer_users(&mut answer)?;
    for user in users.iter_mut() {
        let phone = attr(user, "jid").and_then(|j| phone_of(st, &user_of(&j)));
        let status = match phone.and_then(|p| st.dir.abouts.get(&p).cloned()) {
            Some(text) => NodeBuilder::new("status").attr("t", "1700000000").string_content(text).build(),
            None => NodeBuilder::new("status").build(),
        };
        match &mut user.content {
            Some(NodeContent::Nodes(kids)) => kids.push(status),
            other => *other = Some(NodeContent::Nodes(vec![status])),
        }
    }
    Some(Out { replies: vec![answer], ..Out::default() })
}

/// The `<user>` nodes of a usync answer (`iq > usync > list > user`).
fn answer_users(iq: &mut Node) -> Option<&mut Vec<Node>> {
    let usync = match &mut iq.content {
        Some(NodeContent::Nodes(kids)) => kids.iter_mut().find(|k| k.tag == "usync")?,
        _ => return None,
    };
    let list = match &mut usync.content {
        Some(NodeContent::Nodes(kids)) => kids.iter_mut().find(|k| k.tag == "list")?,
        _ => return None,
    };
    match &mut list.content {
        Some(NodeContent::Nodes(kids)) => Some(kids),
        _ => None,
    }
}

/// A picture query: the picture's URL on the media host, or 404.
fn picture(st: &mut State, n: &Node) -> Node {
    let target = attr(n, "target").unwrap_or_default();
    let phone = phone_of(st, &user_of(&target));
    let Some(jpeg) = phone.and_then(|p| st.dir.pictures.get(&p).cloned()) else {
        return error(n, "404", "item-not-found");
    };
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(ring::digest::digest(&ring::digest::SHA256, &jpeg).as_ref());
    let direct_path = st.media.store("picture", jpeg);
    let url = format!("https://{}{direct_path}?auth={}&token={token}", st.media.host, st.media.auth);
    st.dir.next_picture += 1;
    let id = format!("{}", 1_700_000_000 + st.dir.next_picture);
    result(n)
        .children([NodeBuilder::new("picture").attr("id", id).attr("url", url).attr("direct_path", direct_path).build()])
        .build()
}

impl FakeWa {
    /// Gives `phone` (created on first use) a profile picture, or takes it away.
    pub fn set_picture(&self, phone: &str, jpeg: Option<&[u8]>) {
        let mut st = self.state();
        phone_entry(&mut st, phone);
        match jpeg {
            Some(b) => st.dir.pictures.insert(phone.to_string(), b.to_vec()),
            None => st.dir.pictures.remove(phone),
        };
    }

    /// Sets `phone`'s about text (created on first use).
    pub fn set_about(&self, phone: &str, text: &str) {
        let mut st = self.state();
        phone_entry(&mut st, phone);
        st.dir.abouts.insert(phone.to_string(), text.to_string());
    }

    /// `phone` comes online (`available`) or goes away, as seen by the
    /// linked device `device_jid`: `<presence from type [last]>`.
    pub fn push_presence(&self, device_jid: &str, phone: &str, available: bool, last: Option<u64>) -> Result<(), String> {
        let mut b = NodeBuilder::new("presence")
            .attr("from", format!("{phone}@{SERVER}"))
            .attr("type", if available { "available" } else { "unavailable" });
        if let Some(t) = last {
            b = b.attr("last", t.to_string());
        }
        let node = b.build();
        let st = self.state();
        let mut sent = false;
        for l in st.live.values() {
            let Some(k) = l.device else { continue };
            if st.linked.get(&k).is_some_and(|d| d.jid() == device_jid) {
                sent |= l.tx.send(Command::Send(node.clone())).is_ok();
            }
        }
        sent.then_some(()).ok_or_else(|| format!("{device_jid} is not connected"))
    }

    /// Numbers asked about by "is on WhatsApp" queries, in order.
    pub fn lookups(&self) -> Vec<String> {
        self.state().dir.lookups.clone()
    }

    /// Presence subscriptions (`to` JIDs), in order.
    pub fn subscriptions(&self) -> Vec<String> {
        self.state().dir.subscriptions.clone()
    }

    /// Own presence stanzas, `available <name>` / `unavailable <name>`, in order.
    pub fn own_presences(&self) -> Vec<String> {
        self.state().dir.presences.clone()
    }

    /// Push names the devices set, in order.
    pub fn push_names(&self) -> Vec<String> {
        self.state().dir.push_names.clone()
    }

    /// About texts the devices set, in order.
    pub fn about_sets(&self) -> Vec<String> {
        self.state().dir.about_sets.clone()
    }

    /// Picture changes, in order: `own <n> bytes`, `own removed`, `<group> …`.
    pub fn picture_sets(&self) -> Vec<String> {
        self.state().dir.picture_sets.clone()
    }

    /// The blocklist: blocked LID JIDs with the phone JID given beside them.
    pub fn blocked(&self) -> Vec<(String, Option<String>)> {
        self.state().dir.blocked.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Blocklist changes in order: `block <lid> <pn>`, `unblock <lid>`.
    pub fn block_log(&self) -> Vec<String> {
        self.state().dir.block_log.clone()
    }
}
