//! Groups on the fake network: a registry of groups, the `w:g2` IQs the
//! client sends (answered as WhatsApp does, shapes from wacore 0.7
//! `iq/groups.rs`). What fake admins do (and the `w:gp2` notifications
//! they cause) is in `group_admin`; group messages in `group_messages`.
//!
//! The client's stanzas and the answers (wacore `iq/groups.rs`):
//! - create: `<iq xmlns=w:g2 type=set to=g.us><create subject><participant jid/>…` → `<group id subject creator creation><participant jid type/>…`
//! - metadata: `<iq type=get to=<gid>><query request=interactive/>` → `<group …>`; participating: `to=g.us <participating>` → `<groups><group/>…`
//! - `<add|remove|promote|demote><participant jid/>` → the same tag with `<participant jid [error]>` (a 403 carries `<add_request code expiration>`)
//! - `<subject>`, `<description id [prev] [delete]><body>`, `<locked/>|<unlocked/>|<announcement/>|<not_announcement/>|<ephemeral expiration/>|<not_ephemeral/>`,
//!   `<membership_approval_mode><group_join state/>` → an empty result
//! - leave: `to=g.us <leave><group id/>`; invite code: `to=<gid> <invite/>` (get, or set to reset) → `<invite code/>`
//! - join: `to=g.us set <invite code/>` → `<group jid/>` or `<membership_approval_request jid/>`; preview: `to=g.us get <invite code/>` → `<group …>`
//! - requests: `<membership_approval_requests/>` → `<membership_approval_requests><membership_approval_request jid request_time/>`;
//!   `<membership_requests_action><approve|reject><participant jid/>` → the same with per-participant results
//! - a group message: `<message to=<gid>><participants><to jid><enc pkmsg|msg>` (each carrying a
//!   SenderKeyDistributionMessage) `</participants><enc type=skmsg>`: each phone processes its
//!   distribution, then every member phone holding the sender's key decrypts the skmsg.

use std::collections::{BTreeMap, HashMap};

use whatsapp_rust::wacore_binary::builder::NodeBuilder;
use whatsapp_rust::wacore_binary::{Node, NodeContent};

use super::group_messages::{group_message, SenderKeys};
use super::messaging::{attr, children, result, split_jid};
use super::stanzas::{Out, SERVER};
use super::State;

/// A participant's standing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Member,
    Admin,
    SuperAdmin,
}

/// A group the fake holds.
#[derive(Clone, Debug)]
pub struct Group {
    /// `<id>@g.us`.
    pub id: String,
    pub subject: String,
    pub description: Option<String>,
    pub description_id: Option<String>,
    /// The creator's phone.
    pub creator: String,
    pub creation: u64,
    /// Phone → role.
    pub members: BTreeMap<String, Role>,
    pub announce: bool,
    pub locked: bool,
    pub ephemeral: u32,
    pub approval: bool,
    pub invite: String,
    /// Phones waiting for approval, with when they asked.
    pub requests: Vec<(String, u64)>,
    /// LID-addressed (`addressing_mode="lid"`: participants by `@lid`, with `phone_number`).
    pub lid: bool,
}

/// Each phone's LID user (`phone → lid`) and back (`lid → phone`).
fn ids(st: &State) -> (HashMap<String, String>, HashMap<String, String>) {
    let lids: HashMap<String, String> = st.phones.values().map(|p| (p.user.clone(), p.lid.clone())).collect();
    let phones = lids.iter().map(|(p, l)| (l.clone(), p.clone())).collect();
    (lids, phones)
}

/// How a group names `phone`: its LID in a LID-addressed group (with the
/// phone beside it), else its phone JID.
fn named(g: &Group, lids: &HashMap<String, String>, phone: &str) -> NodeBuilder {
    match lids.get(phone).filter(|_| g.lid) {
        Some(lid) => NodeBuilder::new("participant").attr("jid", format!("{lid}@lid")).attr("phone_number", pn(phone)),
        None => NodeBuilder::new("participant").attr("jid", pn(phone)),
    }
}

/// The groups half of the fake's state.
#[derive(Default)]
pub struct Groups {
    pub(super) groups: BTreeMap<String, Group>,
    pub(super) next: u64,
    /// Each phone's sender keys (received, and its own).
    pub(super) keys: HashMap<String, SenderKeys>,
    /// Phones whose privacy refuses being added (403 with an invite code).
    pub(super) private: Vec<String>,
    /// Every `w:g2` IQ received, as `<first child tag> <to>`.
    pub log: Vec<String>,
}

pub(super) fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

pub(super) fn pn(phone: &str) -> String {
    format!("{phone}@{SERVER}")
}

fn error(req: &Node, code: &str, text: &str) -> Node {
    NodeBuilder::new("iq")
        .attrs([("from", attr(req, "to").unwrap_or_else(|| "g.us".into())), ("id", attr(req, "id").unwrap_or_default()), ("type", "error".into())])
        .children([NodeBuilder::new("error").attr("code", code).attr("text", text).build()])
        .build()
}

/// The `<group>` node WhatsApp describes a group with.
pub fn group_node(g: &Group, lids: &HashMap<String, String>) -> Node {
    let user = g.id.trim_end_matches("@g.us").to_string();
    let mut kids: Vec<Node> = g
        .members
        .iter()
        .map(|(p, r)| {
            let b = named(g, lids, p);
            match r {
                Role::Member => b.build(),
                Role::Admin => b.attr("type", "admin").build(),
                Role::SuperAdmin => b.attr("type", "superadmin").build(),
            }
        })
        .collect();
    if g.locked {
        kids.push(NodeBuilder::new("locked").build());
    }
    if g.announce {
        kids.push(NodeBuilder::new("announcement").build());
    }
    if g.ephemeral > 0 {
        kids.push(NodeBuilder::new("ephemeral").attr("expiration", g.ephemeral.to_string()).build());
    }
    if g.approval {
        kids.push(NodeBuilder::new("membership_approval_mode").children([NodeBuilder::new("group_join").attr("state", "on").build()]).build());
    }
    if let Some(d) = &g.description {
        kids.push(
            NodeBuilder::new("description")
                .attr("id", g.description_id.clone().unwrap_or_else(|| "D0".into()))
                .children([NodeBuilder::new("body").string_content(d.clone()).build()])
                .build(),
        );
    }
    let mut b = NodeBuilder::new("group")
        .attr("id", user)
        .attr("subject", g.subject.clone())
        .attr("creation", g.creation.to_string())
        .attr("size", g.members.len().to_string());
    b = match lids.get(&g.creator).filter(|_| g.lid) {
        Some(lid) => b.attr("addressing_mode", "lid").attr("creator", format!("{lid}@lid")).attr("creator_pn", pn(&g.creator)),
        None => b.attr("creator", pn(&g.creator)),
    };
    b.children(kids).build()
}

fn participants_of(n: &Node) -> Vec<String> {
    children(n).iter().filter(|p| p.tag == "participant").filter_map(|p| attr(p, "jid")).collect()
}

/// The answer to `n` when it is a group stanza (`None`: not one).
pub(super) fn answer(st: &mut State, device: Option<[u8; 32]>, n: &Node) -> Option<Out> {
    let me = device.and_then(|k| st.linked.get(&k).cloned());
    if n.tag == "message" && attr(n, "to").is_some_and(|t| t.ends_with("@g.us")) {
        let mut out = Out::default();
        out.replies.push(group_message(st, me.as_ref().map(|l| (l.user.clone(), l.device)), n));
        return Some(out);
    }
    if n.tag != "iq" || attr(n, "xmlns").as_deref() != Some("w:g2") {
        return None;
    }
    let mut out = Out::default();
    let to = attr(n, "to").unwrap_or_default();
    let ty = attr(n, "type").unwrap_or_default();
    let Some(child) = n.children().and_then(|c| c.first()).cloned() else {
        st.unexpected.push(format!("a w:g2 IQ with no child: {n:?}"));
        out.replies.push(result(n).build());
        return Some(out);
    };
    st.groups.log.push(format!("{} {to}", child.tag));
    let Some(me) = me.map(|l| l.user) else {
        out.replies.push(error(n, "401", "not-authorized"));
        return Some(out);
    };
    let reply = if to == "g.us" { on_server(st, &me, n, &ty, &child) } else { on_group(st, &me, n, &to, &ty, &child) };
    out.replies.push(reply);
    Some(out)
}

/// IQs to `g.us`: create, participating, leave, join and preview by code.
fn on_server(st: &mut State, me: &str, n: &Node, ty: &str, child: &Node) -> Node {
    let (lids, phones) = ids(st);
    let g = &mut st.groups;
    match (ty, child.tag.as_ref()) {
        ("set", "create") => {
            g.next += 1;
            let id = format!("120363{:012}@g.us", g.next);
            let mut members = BTreeMap::new();
            members.insert(me.to_string(), Role::SuperAdmin);
            // Who cannot be added is in the answer with WhatsApp's code
            // (not on WhatsApp 404, privacy 403 with an invite code).
            let mut refused = Vec::new();
            for jid in participants_of(child) {
                let (user, _, _) = split_jid(&jid);
                let user = phones.get(&user).cloned().unwrap_or(user);
                if !st.phones.contains_key(&user) {
                    refused.push(NodeBuilder::new("participant").attr("jid", pn(&user)).attr("error", "404").build());
                } else if g.private.contains(&user) {
                    let request = NodeBuilder::new("add_request").attr("code", format!("V4{user}")).attr("expiration", (now() + 7 * 86400).to_string()).build();
                    refused.push(NodeBuilder::new("participant").attr("jid", pn(&user)).attr("error", "403").children([request]).build());
                } else {
                    members.entry(user).or_insert(Role::Member);
                }
            }
            let description = child.get_optional_child("description").and_then(|d| d.get_optional_child("body")).and_then(|b| b.content_as_string()).map(|s| s.to_string());
            let group = Group {
                id: id.clone(),
                subject: attr(child, "subject").unwrap_or_default(),
                description_id: description.as_ref().map(|_| "D1".to_string()),
                description,
                creator: me.to_string(),
                creation: now(),
                members,
                announce: false,
                locked: false,
                ephemeral: 0,
                approval: false,
                invite: format!("INV{:08}", st.groups.next),
                requests: Vec::new(),
                lid: false,
            };
            let mut node = group_node(&group, &lids);
            if let Some(NodeContent::Nodes(kids)) = &mut node.content {
                kids.extend(refused);
            } else if !refused.is_empty() {
                node.content = Some(NodeContent::Nodes(refused));
            }
            st.groups.groups.insert(id, group);
            result(n).children([node]).build()
        }
        ("get", "participating") => {
            let mine: Vec<Node> = g.groups.values().filter(|x| x.members.contains_key(me)).map(|x| group_node(x, &lids)).collect();
            result(n).children([NodeBuilder::new("groups").children(mine).build()]).build()
        }
        ("set", "leave") => {
            for gid in children(child).iter().filter_map(|c| attr(c, "id")) {
                if let Some(x) = g.groups.get_mut(&gid) {
                    x.members.remove(me);
                }
            }
            result(n).build()
        }
        (_, "invite") => {
            let code = attr(child, "code").unwrap_or_default();
            let Some(x) = g.groups.values_mut().find(|x| x.invite == code) else { return error(n, "404", "item-not-found") };
            if ty == "get" {
                let node = group_node(x, &lids);
                return result(n).children([node]).build();
            }
            if x.approval {
                x.requests.push((me.to_string(), now()));
                let id = x.id.clone();
                return result(n).children([NodeBuilder::new("membership_approval_request").attr("jid", id).build()]).build();
            }
            x.members.entry(me.to_string()).or_insert(Role::Member);
            let id = x.id.clone();
            result(n).children([NodeBuilder::new("group").attr("jid", id).build()]).build()
        }
        _ => {
            st.unexpected.push(format!("w:g2 {ty} <{}> to g.us", child.tag));
            result(n).build()
        }
    }
}

/// IQs to one group.
fn on_group(st: &mut State, me: &str, n: &Node, to: &str, ty: &str, child: &Node) -> Node {
    let known: Vec<String> = st.phones.keys().cloned().collect();
    let (lids, phones) = ids(st);
    let private = st.groups.private.clone();
    let Some(g) = st.groups.groups.get_mut(to) else { return error(n, "404", "item-not-found") };
    let Some(my_role) = g.members.get(me).copied() else { return error(n, "403", "forbidden") };
    let admin = my_role != Role::Member;
    let tag = child.tag.to_string();
    match (ty, tag.as_str()) {
        ("get", "query") => {
            let node = group_node(g, &lids);
            result(n).children([node]).build()
        }
        ("set", "add" | "remove" | "promote" | "demote") => {
            if !admin {
                return error(n, "403", "forbidden");
            }
            let mut answers = Vec::new();
            for jid in participants_of(child) {
                let (user, _, _) = split_jid(&jid);
                let user = phones.get(&user).cloned().unwrap_or(user);
                let mut b = named(g, &lids, &user);
                let in_group = g.members.contains_key(&user);
                let code = match tag.as_str() {
                    "add" if !known.contains(&user) => Some("404"),
                    "add" if in_group => Some("409"),
                    "add" if private.contains(&user) => Some("403"),
                    "add" => {
                        g.members.insert(user.clone(), Role::Member);
                        None
                    }
                    _ if !in_group => Some("404"),
                    "remove" => {
                        g.members.remove(&user);
                        None
                    }
                    "promote" => {
                        g.members.insert(user.clone(), Role::Admin);
                        None
                    }
                    _ => {
                        g.members.insert(user.clone(), Role::Member);
                        None
                    }
                };
                if let Some(c) = code {
                    b = b.attr("error", c);
                    if c == "403" {
                        b = b.children([NodeBuilder::new("add_request").attr("code", format!("V4{user}")).attr("expiration", (now() + 7 * 86400).to_string()).build()]);
                    }
                }
                answers.push(b.build());
            }
            result(n).children([NodeBuilder::new_dynamic(tag).children(answers).build()]).build()
        }
        ("set", _) if g.locked && !admin => error(n, "403", "forbidden"),
        ("set", "subject") => {
            g.subject = child.content_as_string().map(|s| s.to_string()).unwrap_or_default();
            result(n).build()
        }
        ("set", "description") => {
            if attr(child, "delete").as_deref() == Some("true") {
                g.description = None;
                g.description_id = None;
            } else {
                g.description = child.get_optional_child("body").and_then(|b| b.content_as_string()).map(|s| s.to_string());
                g.description_id = attr(child, "id");
            }
            result(n).build()
        }
        ("set", "locked" | "unlocked" | "announcement" | "not_announcement" | "ephemeral" | "not_ephemeral" | "membership_approval_mode") if !admin => {
            error(n, "403", "forbidden")
        }
        ("set", "locked") => {
            g.locked = true;
            result(n).build()
        }
        ("set", "unlocked") => {
            g.locked = false;
            result(n).build()
        }
        ("set", "announcement") => {
            g.announce = true;
            result(n).build()
        }
        ("set", "not_announcement") => {
            g.announce = false;
            result(n).build()
        }
        ("set", "ephemeral") => {
            g.ephemeral = attr(child, "expiration").and_then(|e| e.parse().ok()).unwrap_or(0);
            result(n).build()
        }
        ("set", "not_ephemeral") => {
            g.ephemeral = 0;
            result(n).build()
        }
        ("set", "membership_approval_mode") => {
            g.approval = child.get_optional_child("group_join").and_then(|j| attr(j, "state")).as_deref() == Some("on");
            result(n).build()
        }
        (_, "invite") => {
            if !admin {
                return error(n, "403", "forbidden");
            }
            if ty == "set" {
                g.invite = format!("RST{}{:06}", g.invite.len(), now() % 1_000_000);
            }
            result(n).children([NodeBuilder::new("invite").attr("code", g.invite.clone()).build()]).build()
        }
        ("get", "membership_approval_requests") => {
            let reqs: Vec<Node> = g
                .requests
                .iter()
                .map(|(p, t)| NodeBuilder::new("membership_approval_request").attr("jid", pn(p)).attr("request_time", t.to_string()).build())
                .collect();
            result(n).children([NodeBuilder::new("membership_approval_requests").children(reqs).build()]).build()
        }
        ("set", "membership_requests_action") => {
            let Some(action) = children(child).first().cloned() else { return error(n, "400", "bad-request") };
            let mut answers = Vec::new();
            for jid in participants_of(&action) {
                let (user, _, _) = split_jid(&jid);
                let user = phones.get(&user).cloned().unwrap_or(user);
                let before = g.requests.len();
                g.requests.retain(|(p, _)| *p != user);
                let mut b = NodeBuilder::new("participant").attr("jid", pn(&user));
                if g.requests.len() == before {
                    b = b.attr("error", "404");
                } else if action.tag == "approve" {
                    g.members.insert(user, Role::Member);
                }
                answers.push(b.build());
            }
            let inner = NodeBuilder::new_dynamic(action.tag.to_string()).children(answers).build();
            result(n).children([NodeBuilder::new("membership_requests_action").children([inner]).build()]).build()
        }
        _ => {
            st.unexpected.push(format!("w:g2 {ty} <{tag}> to a group"));
            result(n).build()
        }
    }
}
