//! Groups on the fake network: a registry of groups, the `w:g2` IQs the
//! client sends (answered as WhatsApp does, shapes from wacore 0.7
//! `iq/groups.rs`), `w:gp2` notifications when a fake admin changes a
//! group, and group messages both ways with sender keys.
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

use whatsapp_rust::async_trait;
use whatsapp_rust::buffa::MessageField;
use whatsapp_rust::wacore::libsignal::protocol::error::Result as SignalResult;
use whatsapp_rust::wacore::libsignal::protocol::{
    create_sender_key_distribution_message, group_decrypt, group_encrypt, process_sender_key_distribution_message,
    SenderKeyDistributionMessage, SenderKeyName, SenderKeyRecord, SenderKeyStore,
};
use whatsapp_rust::wacore::messages::{decode_plaintext, MessageUtils};
use whatsapp_rust::wacore::messages::unwrap_device_sent;
use whatsapp_rust::wacore::proto_helpers::MessageBuilderExt as _;
use whatsapp_rust::wacore_binary::builder::NodeBuilder;
use whatsapp_rust::wacore_binary::Node;
use whatsapp_rust::waproto::whatsapp as wa;

use super::messaging::{ack, attr, bytes_of, children, kind_of, party, phone_of, result, split_jid, Received};
use super::signal::address;
use super::stanzas::{Out, SERVER};
use super::{phone_entry, FakeWa, State};

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
}

/// Sender-key records of one phone, by `group:sender`.
#[derive(Default)]
struct SenderKeys(HashMap<String, SenderKeyRecord>);

#[async_trait]
impl SenderKeyStore for SenderKeys {
    async fn store_sender_key(&mut self, name: &SenderKeyName, record: SenderKeyRecord) -> SignalResult<()> {
        self.0.insert(format!("{}:{}", name.group_id(), name.sender_id()), record);
        Ok(())
    }
    async fn load_sender_key(&self, name: &SenderKeyName) -> SignalResult<Option<SenderKeyRecord>> {
        Ok(self.0.get(&format!("{}:{}", name.group_id(), name.sender_id())).cloned())
    }
}

/// The groups half of the fake's state.
#[derive(Default)]
pub struct Groups {
    groups: BTreeMap<String, Group>,
    next: u64,
    /// Each phone's sender keys (received, and its own).
    keys: HashMap<String, SenderKeys>,
    /// Phones whose privacy refuses being added (403 with an invite code).
    private: Vec<String>,
    /// Every `w:g2` IQ received, as `<first child tag> <to>`.
    pub log: Vec<String>,
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Drives a store future that completes at once (see `signal::block_on`).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn pn(phone: &str) -> String {
    format!("{phone}@{SERVER}")
}

fn error(req: &Node, code: &str, text: &str) -> Node {
    NodeBuilder::new("iq")
        .attrs([("from", attr(req, "to").unwrap_or_else(|| "g.us".into())), ("id", attr(req, "id").unwrap_or_default()), ("type", "error".into())])
        .children([NodeBuilder::new("error").attr("code", code).attr("text", text).build()])
        .build()
}

/// The `<group>` node WhatsApp describes a group with.
pub fn group_node(g: &Group) -> Node {
    let user = g.id.trim_end_matches("@g.us").to_string();
    let mut kids: Vec<Node> = g
        .members
        .iter()
        .map(|(p, r)| {
            let b = NodeBuilder::new("participant").attr("jid", pn(p));
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
    NodeBuilder::new("group")
        .attr("id", user)
        .attr("subject", g.subject.clone())
        .attr("creator", pn(&g.creator))
        .attr("creation", g.creation.to_string())
        .attr("size", g.members.len().to_string())
        .children(kids)
        .build()
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
    let g = &mut st.groups;
    match (ty, child.tag.as_ref()) {
        ("set", "create") => {
            g.next += 1;
            let id = format!("120363{:012}@g.us", g.next);
            let mut members = BTreeMap::new();
            members.insert(me.to_string(), Role::SuperAdmin);
            for jid in participants_of(child) {
                let (user, _, _) = split_jid(&jid);
                // Someone not on WhatsApp is left out of the answer.
                if st.phones.contains_key(&user) {
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
            };
            let node = group_node(&group);
            st.groups.groups.insert(id, group);
            result(n).children([node]).build()
        }
        ("get", "participating") => {
            let mine: Vec<Node> = g.groups.values().filter(|x| x.members.contains_key(me)).map(group_node).collect();
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
                let node = group_node(x);
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
    let private = st.groups.private.clone();
    let Some(g) = st.groups.groups.get_mut(to) else { return error(n, "404", "item-not-found") };
    let Some(my_role) = g.members.get(me).copied() else { return error(n, "403", "forbidden") };
    let admin = my_role != Role::Member;
    let tag = child.tag.to_string();
    match (ty, tag.as_str()) {
        ("get", "query") => {
            let node = group_node(g);
            result(n).children([node]).build()
        }
        ("set", "add" | "remove" | "promote" | "demote") => {
            if !admin {
                return error(n, "403", "forbidden");
            }
            let mut answers = Vec::new();
            for jid in participants_of(child) {
                let (user, _, _) = split_jid(&jid);
                let mut b = NodeBuilder::new("participant").attr("jid", pn(&user));
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

/// A message from a linked device to a group: the distributions first, then the skmsg for each member.
fn group_message(st: &mut State, sender: Option<(String, u32)>, n: &Node) -> Node {
    let to = attr(n, "to").unwrap_or_default();
    let id = attr(n, "id").unwrap_or_default();
    let Some((user, device)) = sender else {
        st.unexpected.push(format!("a group message from a connection with no device: {n:?}"));
        return ack(&id, &to);
    };
    let from = address(&user, device);
    let name = SenderKeyName::new(to.clone(), from.as_str().to_string());
    if let Some(ps) = n.get_optional_child("participants") {
        for t in children(ps).iter().filter(|t| t.tag == "to") {
            let (u, dev, _) = split_jid(&attr(t, "jid").unwrap_or_default());
            let Some(phone) = phone_of(st, &u).filter(|_| dev == 0) else { continue };
            for e in children(t).iter().filter(|e| e.tag == "enc") {
                let kind = attr(e, "type").unwrap_or_default();
                let Some(bytes) = bytes_of(e).map(<[u8]>::to_vec) else { continue };
                let Some(p) = party(st, &phone) else { continue };
                let m = match p.decrypt(&from, &kind, &bytes) {
                    Ok(m) => m,
                    Err(err) => {
                        st.unexpected.push(format!("{phone} could not decrypt the distribution {kind} {id}: {err}"));
                        continue;
                    }
                };
                let Some(skdm) = m.sender_key_distribution_message.as_option().and_then(|s| s.axolotl_sender_key_distribution_message.clone()) else {
                    continue;
                };
                let store = st.groups.keys.entry(phone.clone()).or_default();
                let processed = SenderKeyDistributionMessage::try_from(skdm.as_slice())
                    .map_err(|e| e.to_string())
                    .and_then(|d| block_on(process_sender_key_distribution_message(&name, &d, store)).map_err(|e| e.to_string()));
                if let Err(err) = processed {
                    st.unexpected.push(format!("{phone} could not process the distribution of {id}: {err}"));
                }
            }
        }
    }
    let members: Vec<String> = st.groups.groups.get(&to).map(|g| g.members.keys().cloned().collect()).unwrap_or_default();
    let Some(sk) = children(n).iter().find(|e| e.tag == "enc" && attr(e, "type").as_deref() == Some("skmsg")).and_then(bytes_of).map(<[u8]>::to_vec) else {
        st.unexpected.push(format!("a group message with no skmsg: {id}"));
        return ack(&id, &to);
    };
    for phone in members.into_iter().chain(std::iter::once(user.clone())).collect::<std::collections::BTreeSet<_>>() {
        let Some(store) = st.groups.keys.get_mut(&phone) else {
            if phone != user {
                st.unexpected.push(format!("{phone} never got the sender key of {}", from.as_str()));
            }
            continue;
        };
        let plain = match block_on(group_decrypt(&sk, store, &name)) {
            Ok(p) => p,
            Err(err) => {
                if phone != user {
                    st.unexpected.push(format!("{phone} could not decrypt the skmsg {id}: {err}"));
                }
                continue;
            }
        };
        match decode_plaintext(&plain, 2) {
            Ok(m) => {
                let m = unwrap_device_sent(m);
                let (k, text) = kind_of(&m);
                st.net.received.entry(phone).or_default().push(Received {
                    id: id.clone(),
                    from: format!("{user}:{device}@{SERVER}"),
                    to: to.clone(),
                    stanza_type: attr(n, "type").unwrap_or_default(),
                    enc: "skmsg".into(),
                    kind: k,
                    text,
                    message: m,
                });
            }
            Err(err) => st.unexpected.push(format!("{phone} could not decode the skmsg {id}: {err}")),
        }
    }
    ack(&id, &to)
}

impl FakeWa {
    /// A group the fake holds.
    pub fn group(&self, id: &str) -> Option<Group> {
        self.state().groups.groups.get(id).cloned()
    }

    /// Every `w:g2` IQ the fake got, as `<child tag> <to>`.
    pub fn group_log(&self) -> Vec<String> {
        self.state().groups.log.clone()
    }

    /// `phone`'s privacy refuses being added to groups (403 + an invite code).
    pub fn refuse_group_adds(&self, phone: &str) {
        self.state().groups.private.push(phone.to_string());
    }

    /// A group made by `creator` (superadmin) with `members`, without any
    /// client asking (the bench's big groups; a group someone else made).
    pub fn make_group(&self, creator: &str, subject: &str, members: &[String]) -> String {
        let mut st = self.state();
        st.groups.next += 1;
        let id = format!("120363{:012}@g.us", st.groups.next);
        let mut m = BTreeMap::new();
        for p in members {
            phone_entry(&mut st, p);
            m.insert(p.clone(), Role::Member);
        }
        phone_entry(&mut st, creator);
        m.insert(creator.to_string(), Role::SuperAdmin);
        let invite = format!("INV{:08}", st.groups.next);
        st.groups.groups.insert(
            id.clone(),
            Group {
                id: id.clone(),
                subject: subject.into(),
                description: None,
                description_id: None,
                creator: creator.into(),
                creation: now(),
                members: m,
                announce: false,
                locked: false,
                ephemeral: 0,
                approval: false,
                invite,
                requests: Vec::new(),
            },
        );
        id
    }

    /// `n` contacts (`prefix` + a counter), each with its Signal identity,
    /// in a new group `admin` made: the bench's big group. Returns the
    /// group id and the contacts.
    pub fn big_group(&self, admin: &str, prefix: &str, n: usize) -> (String, Vec<String>) {
        let contacts: Vec<String> = (0..n).map(|i| format!("{prefix}{i:04}")).collect();
        for c in &contacts {
            self.contact(c);
        }
        let id = self.make_group(admin, "big", &contacts);
        (id, contacts)
    }

    /// The admin `by` adds `phones` to `group`: the registry changes and
    /// every linked device of a member gets the `w:gp2` notification.
    pub fn admin_add(&self, by: &str, group: &str, phones: &[String]) -> Result<(), String> {
        let action = {
            let mut st = self.state();
            for p in phones {
                phone_entry(&mut st, p);
            }
            let g = st.groups.groups.get_mut(group).ok_or("no such group")?;
            for p in phones {
                g.members.insert(p.clone(), Role::Member);
            }
            let lids: Vec<String> = phones.iter().map(|p| st.phones.get(p).map(|x| x.lid.clone()).unwrap_or_default()).collect();
            let people = phones.iter().zip(lids).map(|(p, lid)| NodeBuilder::new("participant").attr("jid", pn(p)).attr("lid", format!("{lid}@lid")).build());
            NodeBuilder::new("add").children(people).build()
        };
        self.notify_group(by, group, action)
    }

    /// The admin `by` changes `group`'s subject (a `w:gp2` `<subject>`).
    pub fn admin_subject(&self, by: &str, group: &str, subject: &str) -> Result<(), String> {
        self.state().groups.groups.get_mut(group).ok_or("no such group")?.subject = subject.to_string();
        let action = NodeBuilder::new("subject").attr("subject", subject).attr("s_o", pn(by)).attr("s_t", now().to_string()).build();
        self.notify_group(by, group, action)
    }

    /// Sends `<notification type=w:gp2 from=group participant=by>` with
    /// `action` to every linked device of the group's members.
    pub fn notify_group(&self, by: &str, group: &str, action: Node) -> Result<(), String> {
        let devices: Vec<String> = {
            let mut st = self.state();
            let members: Vec<String> = st.groups.groups.get(group).map(|g| g.members.keys().cloned().collect()).unwrap_or_default();
            st.net.next_id += 1;
            st.linked.values().filter(|l| members.contains(&l.user)).map(|l| l.jid()).collect()
        };
        let id = format!("gp2-{}", self.state().net.next_id);
        let node = NodeBuilder::new("notification")
            .attr("from", group.to_string())
            .attr("type", "w:gp2")
            .attr("id", id)
            .attr("participant", pn(by))
            .attr("t", now().to_string())
            .children([action])
            .build();
        for d in &devices {
            self.send_to_device(d, node.clone())?;
        }
        Ok(())
    }

    /// The member `from` writes `text` in `group` to the linked device
    /// `device_jid`: its sender-key distribution (pairwise, `pkmsg` first)
    /// and the `skmsg` in one stanza, as WhatsApp delivers it. Returns its id.
    pub fn deliver_group_text(&self, from: &str, group: &str, device_jid: &str, text: &str) -> Result<String, String> {
        let node = {
            let mut st = self.state();
            let lid = phone_entry(&mut st, from).lid.clone();
            let linked = st.linked.values().find(|l| l.jid() == device_jid).cloned().ok_or_else(|| format!("no linked device {device_jid}"))?;
            let name = SenderKeyName::new(group.to_string(), address(from, 0).as_str().to_string());
            let store = st.groups.keys.entry(from.to_string()).or_default();
            let mut rng = rand::rng();
            let skdm = block_on(create_sender_key_distribution_message(&name, store, &mut rng)).map_err(|e| e.to_string())?;
            let plain = MessageUtils::encode_and_pad(&wa::Message::text(text));
            let skmsg = block_on(group_encrypt(store, &name, &plain, &mut rng)).map_err(|e| e.to_string())?;
            let skmsg = skmsg.serialized().to_vec();
            let wrapper = wa::Message {
                sender_key_distribution_message: MessageField::some(wa::message::SenderKeyDistributionMessage {
                    group_id: Some(group.to_string()),
                    axolotl_sender_key_distribution_message: Some(skdm.serialized().to_vec()),
                }),
                ..Default::default()
            };
            let mut keys = st.net.keys.get(device_jid).cloned();
            st.net.next_id += 1;
            let id = format!("3EB0GR0F{:014X}", st.net.next_id);
            let to = address(&linked.user, linked.device);
            let p = party(&mut st, from).ok_or("no such phone")?;
            let (enc, bytes) = p.encrypt(&to, || keys.as_mut().and_then(|k| k.bundle(linked.device)), &wrapper)?;
            if let Some(k) = keys {
                st.net.keys.insert(device_jid.to_string(), k);
            }
            NodeBuilder::new("message")
                .attr("from", group.to_string())
                .attr("participant", pn(from))
                .attr("participant_lid", format!("{lid}@lid"))
                .attr("addressing_mode", "pn")
                .attr("id", id)
                .attr("type", "text")
                .attr("t", now().to_string())
                .attr("notify", format!("Contact {from}"))
                .children([
                    NodeBuilder::new("enc").attr("v", "2").attr("type", enc).bytes(bytes).build(),
                    NodeBuilder::new("enc").attr("v", "2").attr("type", "skmsg").bytes(skmsg).build(),
                ])
                .build()
        };
        let id = attr(&node, "id").unwrap_or_default();
        self.send_to_device(device_jid, node)?;
        Ok(id)
    }
}

impl FakeWa {
    /// `phone` asks to join `group` (a pending membership request).
    pub fn with_request(&self, group: &str, phone: &str) {
        let mut st = self.state();
        phone_entry(&mut st, phone);
        if let Some(g) = st.groups.groups.get_mut(group) {
            g.requests.push((phone.to_string(), now()));
        }
    }
}
