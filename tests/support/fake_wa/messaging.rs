//! Messages on the fake network: every phone (a contact, or the primary of a
//! linked account) is device 0 with its own Signal identity ([`Party`]), and
//! a linked device is known by the keys it uploaded ([`DeviceKeys`]). The
//! rules here answer what the client asks to send a message — usync device
//! lists, "is on WhatsApp", LID lookups, prekey bundles — decrypt what it
//! sends (per recipient, kept for the test), ack it as the server does, and
//! absorb the receipts it sends for what the fake delivers.
//!
//! The client's stanzas, from whatsapp-rust / wacore 0.7 (`iq/prekeys.rs`,
//! `iq/usync.rs`, `send/dm.rs`, `client/node_io.rs`):
//! - prekey upload: `<iq xmlns=encrypt type=set><registration/><type/><identity/><list><key>…</key></list><skey/>`
//! - usync: `<iq xmlns=usync type=get><usync><query><devices|contact|lid|business…/></query><list><user jid=…|<contact>+digits</contact>/></list>`;
//!   answer `<usync><list><user jid=…><contact type=in/><lid val=…/><devices><device-list><device id=0/>…`
//! - prekey fetch: `<iq xmlns=encrypt type=get><key><user jid=…/></key>` → `<list><user jid=…>bundle</user></list>`
//! - `<message to id type><participants><to jid><enc v=2 type=pkmsg|msg>` → `<ack class=message id from t>`
//! - tctoken issue after a send: `<iq xmlns=privacy type=set><tokens><token jid t type/>` → the same tokens with bytes
//! - `<receipt>` for what the fake delivered (absorbed; its `<ack>`s are absorbed by the stanza rules)

use std::collections::HashMap;

use whatsapp_rust::buffa::Message as _;
use whatsapp_rust::wacore::iq::prekeys::PreKeyBundleUserNode;
use whatsapp_rust::wacore::messages::unwrap_device_sent;
use whatsapp_rust::wacore::proto_helpers::{MessageBuilderExt, MessageExt};
use whatsapp_rust::wacore::protocol::ProtocolNode;
use whatsapp_rust::wacore_binary::builder::NodeBuilder;
use whatsapp_rust::wacore_binary::{Jid, Node, NodeContent};
use whatsapp_rust::waproto::whatsapp as wa;

use super::signal::{address, DeviceKeys, Party};
use super::stanzas::{Out, SERVER};
use super::{phone_entry, Command, FakeWa, State};

/// A message a fake device received from a linked device, decrypted.
#[derive(Clone, Debug)]
pub struct Received {
    /// The stanza id (the gateway's `waMessageId`).
    pub id: String,
    /// The sending device (`user:device@s.whatsapp.net`).
    pub from: String,
    /// The stanza's `to` (the chat).
    pub to: String,
    /// The stanza's `type` (`text`, `media`, …).
    pub stanza_type: String,
    /// `pkmsg` or `msg`.
    pub enc: String,
    /// `text`, `image`, `video`, `audio`, `document`, `sticker`, `location`, `contact`, `reaction`, `other`.
    pub kind: String,
    /// The body, or the caption.
    pub text: Option<String>,
    /// The message (a phone's own-device copy unwrapped from its DeviceSentMessage).
    pub message: wa::Message,
}

/// A receipt a linked device sent (for a message the fake delivered).
#[derive(Clone, Debug)]
pub struct DeviceReceipt {
    pub from: String,
    pub to: String,
    pub id: String,
    pub kind: String,
}

/// The messaging half of the fake's state.
#[derive(Default)]
pub struct Net {
    /// Device 0 of each phone, by phone user (created on first use).
    parties: HashMap<String, Party>,
    /// The keys each linked device uploaded, by device jid.
    pub(super) keys: HashMap<String, DeviceKeys>,
    /// What each phone received, decrypted, by phone user.
    pub(super) received: HashMap<String, Vec<Received>>,
    /// Receipts linked devices sent.
    receipts: Vec<DeviceReceipt>,
    pub(super) next_id: u64,
    /// What each phone saw from linked devices, in order: `composing`,
    /// `recording`, `paused` (chat presence) and `message <id>`.
    timeline: HashMap<String, Vec<String>>,
    /// Error codes for the next sends, answered as a nack (`<ack error>`).
    refusals: std::collections::VecDeque<String>,
}

pub(super) fn attr(n: &Node, k: &str) -> Option<String> {
    n.attrs().optional_string(k).map(|s| s.to_string())
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

pub(super) fn result(req: &Node) -> NodeBuilder {
    NodeBuilder::new("iq").attrs([
        ("from", SERVER.to_string()),
        ("id", attr(req, "id").unwrap_or_default()),
        ("type", "result".to_string()),
    ])
}

/// `user[:device]@server` → (user, device, server).
pub(super) fn split_jid(jid: &str) -> (String, u32, String) {
    let (left, server) = jid.split_once('@').unwrap_or((jid, SERVER));
    let (user, device) = match left.split_once(':') {
        Some((u, d)) => (u, d.parse().unwrap_or(0)),
        None => (left, 0),
    };
    let user = user.split_once('.').map_or(user, |(u, _)| u); // an agent part (`user.0:1`)
    (user.to_string(), device, server.to_string())
}

/// The phone a user part names: its number, or its LID.
pub(super) fn phone_of(st: &State, user: &str) -> Option<String> {
    if st.phones.contains_key(user) {
        return Some(user.to_string());
    }
    st.phones.values().find(|p| p.lid == user).map(|p| p.user.clone())
}

pub(super) fn party<'a>(st: &'a mut State, phone: &str) -> Option<&'a mut Party> {
    let account = st.phones.get(phone)?.account.clone();
    Some(st.net.parties.entry(phone.to_string()).or_insert_with(|| Party::new(Some(&account))))
}

/// Linked devices of `phone`, by device id.
fn linked_devices(st: &State, phone: &str) -> Vec<u32> {
    let mut d: Vec<u32> = st.linked.values().filter(|l| l.user == phone).map(|l| l.device).collect();
    d.sort_unstable();
    d
}

/// What kind of content a message carries, and its text or caption.
pub(super) fn kind_of(m: &wa::Message) -> (String, Option<String>) {
    let m = m.get_base_message();
    let kind = if m.conversation.is_some() || m.extended_text_message.is_set() {
        "text"
    } else if m.image_message.is_set() {
        "image"
    } else if m.video_message.is_set() {
        "video"
    } else if m.audio_message.is_set() {
        "audio"
    } else if m.document_message.is_set() {
        "document"
    } else if m.sticker_message.is_set() {
        "sticker"
    } else if m.location_message.is_set() {
        "location"
    } else if m.contact_message.is_set() {
        "contact"
    } else if m.reaction_message.is_set() {
        "reaction"
    } else {
        "other"
    };
    let text = m.text_content().or_else(|| m.get_caption()).map(str::to_string);
    (kind.to_string(), text)
}

pub(super) fn bytes_of(n: &Node) -> Option<&[u8]> {
    match &n.content {
        Some(NodeContent::Bytes(b)) => Some(b),
        _ => None,
    }
}

pub(super) fn children(n: &Node) -> &[Node] {
    n.children().unwrap_or(&[])
}

/// The answer to `n` when it is a messaging stanza (`None`: not one of these).
pub(super) fn answer(st: &mut State, device: Option<[u8; 32]>, n: &Node) -> Option<Out> {
    let tag = n.tag.as_ref();
    let ns = attr(n, "xmlns");
    let ty = attr(n, "type");
    let first = n.children().and_then(|c| c.first()).map(|c| c.tag.to_string());
    let mut out = Out::default();
    match (tag, ns.as_deref(), ty.as_deref(), first.as_deref()) {
        ("iq", Some("encrypt"), Some("set"), Some("registration")) => {
            match (device.and_then(|k| st.linked.get(&k).cloned()), super::signal::DeviceKeys::from_upload(n)) {
                (Some(linked), Some(keys)) => {
                    st.net.keys.insert(linked.jid(), keys);
                }
                _ => st.unexpected.push(format!("a prekey upload the fake could not read: {n:?}")),
            }
            out.replies.push(result(n).build());
        }
        ("iq", Some("usync"), Some("get"), Some("usync")) => out.replies.push(usync(st, n)),
        ("iq", Some("encrypt"), Some("get"), Some("key")) => out.replies.push(prekeys(st, n)),
        ("iq", Some("privacy"), Some("set"), Some("tokens")) => out.replies.push(tokens(n)),
        ("message", ..) if attr(n, "to").is_some() => out.replies.push(message(st, device, n)),
        ("receipt", ..) => {
            st.net.receipts.push(DeviceReceipt {
                from: device.and_then(|k| st.linked.get(&k)).map(|l| l.jid()).unwrap_or_default(),
                to: attr(n, "to").unwrap_or_default(),
                id: attr(n, "id").unwrap_or_default(),
                kind: ty.unwrap_or_else(|| "delivery".into()),
            });
        }
        ("chatstate", ..) => {
            // `<chatstate to><composing [media=audio]/>|<paused/></chatstate>`
            let to = attr(n, "to").unwrap_or_default();
            let (user, _, _) = split_jid(&to);
            let state = match n.children().and_then(|c| c.first()) {
                Some(c) if c.tag == "composing" && attr(c, "media").as_deref() == Some("audio") => "recording".to_string(),
                Some(c) => c.tag.to_string(),
                None => "?".to_string(),
            };
            if let Some(phone) = phone_of(st, &user) {
                st.net.timeline.entry(phone).or_default().push(state);
            }
        }
        _ => return None,
    }
    Some(out)
}

/// A usync query, answered for every phone on the network.
pub(super) fn usync(st: &mut State, n: &Node) -> Node {
    let Some(us) = n.get_optional_child("usync") else { return result(n).build() };
    let asked: Vec<String> =
        us.get_optional_child("query").map(|q| children(q).iter().map(|c| c.tag.to_string()).collect()).unwrap_or_default();
    let has = |p: &str| asked.iter().any(|a| a == p);
    let mut users = Vec::new();
    let list = us.get_optional_child("list").map(children).unwrap_or(&[]);
    for u in list.iter().filter(|u| u.tag == "user") {
        let (jid, user, server) = match attr(u, "jid") {
            Some(j) => {
                let (user, _, server) = split_jid(&j);
                (format!("{user}@{server}"), user, server)
            }
            None => {
                let digits: String = u
                    .get_optional_child("contact")
                    .and_then(|c| c.content_as_string())
                    .map(|s| s.chars().filter(char::is_ascii_digit).collect())
                    .unwrap_or_default();
                (format!("{digits}@{SERVER}"), digits, SERVER.to_string())
            }
        };
        let phone = phone_of(st, &user);
        let mut b = NodeBuilder::new("user").attr("jid", jid);
        if server == "lid" {
            if let Some(p) = &phone {
                b = b.attr("pn_jid", format!("{p}@{SERVER}"));
            }
        }
        let mut kids = Vec::new();
        if has("contact") {
            kids.push(NodeBuilder::new("contact").attr("type", if phone.is_some() { "in" } else { "out" }).build());
        }
        if has("lid") {
            if let Some(p) = phone.as_ref().and_then(|p| st.phones.get(p)) {
                kids.push(NodeBuilder::new("lid").attr("val", format!("{}@lid", p.lid)).build());
            }
        }
        if has("devices") {
            let mut devs = Vec::new();
            let mut key_index = None;
            if let Some(p) = &phone {
                devs.push(NodeBuilder::new("device").attr("id", "0").build());
                let linked = linked_devices(st, p);
                for d in &linked {
                    devs.push(NodeBuilder::new("device").attr("id", d.to_string()).attr("key-index", d.to_string()).build());
                }
                if let Some(last) = linked.last() {
                    key_index = Some(key_index_list(*last, &linked));
                }
            }
            let mut dn = vec![NodeBuilder::new("device-list").children(devs).build()];
            dn.extend(key_index);
            kids.push(NodeBuilder::new("devices").children(dn).build());
        }
        users.push(b.children(kids).build());
    }
    result(n).children([NodeBuilder::new("usync").children([NodeBuilder::new("list").children(users).build()]).build()]).build()
}

/// Trusted-contact tokens the client issues after a send: each comes back
/// with token bytes (`<tokens><token jid t type>bytes</token></tokens>`).
fn tokens(n: &Node) -> Node {
    let asked = n.get_optional_child("tokens").map(children).unwrap_or(&[]);
    let issued: Vec<Node> = asked
        .iter()
        .filter(|t| t.tag == "token")
        .map(|t| {
            NodeBuilder::new("token")
                .attr("jid", attr(t, "jid").unwrap_or_default())
                .attr("t", attr(t, "t").unwrap_or_else(|| now().to_string()))
                .attr("type", attr(t, "type").unwrap_or_else(|| "trusted_contact".into()))
                .bytes(rand::random::<[u8; 16]>().to_vec())
                .build()
        })
        .collect();
    result(n).children([NodeBuilder::new("tokens").children(issued).build()]).build()
}

/// `<key-index-list ts>` with an `ADVSignedKeyIndexList` naming `valid` (the
/// client does not check its signature: it came over the noise channel).
fn key_index_list(raw_id: u32, valid: &[u32]) -> Node {
    let details = wa::ADVKeyIndexList {
        raw_id: Some(raw_id),
        timestamp: Some(now()),
        current_index: valid.iter().copied().max(),
        valid_indexes: valid.to_vec(),
        account_type: None,
    }
    .encode_to_vec();
    let signed = wa::ADVSignedKeyIndexList { details: Some(details), account_signature: None, account_signature_key: None }
        .encode_to_vec();
    NodeBuilder::new("key-index-list").attr("ts", now().to_string()).bytes(signed).build()
}

/// Prekey bundles: a phone's device 0 from its party, anything else 404.
fn prekeys(st: &mut State, n: &Node) -> Node {
    let mut users = Vec::new();
    let asked = n.get_optional_child("key").map(children).unwrap_or(&[]);
    for u in asked.iter().filter(|u| u.tag == "user") {
        let jid_s = attr(u, "jid").unwrap_or_default();
        let (user, device, _) = split_jid(&jid_s);
        let bundle = phone_of(st, &user).filter(|_| device == 0).and_then(|p| party(st, &p).map(|party| party.bundle(0)));
        let node = match (bundle, jid_s.parse::<Jid>()) {
            (Some(b), Ok(jid)) => PreKeyBundleUserNode::from_bundle(jid, &b, None).ok().map(|b| b.into_node()),
            _ => None,
        };
        users.push(node.unwrap_or_else(|| {
            NodeBuilder::new("user")
                .attr("jid", jid_s.clone())
                .children([NodeBuilder::new("error").attr("code", "404").attr("text", "item-not-found").build()])
                .build()
        }));
    }
    result(n).children([NodeBuilder::new("list").children(users).build()]).build()
}

/// A message from a linked device: each `<enc>` for a phone is decrypted by
/// that phone's party and kept; the server acks it.
fn message(st: &mut State, device: Option<[u8; 32]>, n: &Node) -> Node {
    let to = attr(n, "to").unwrap_or_default();
    let id = attr(n, "id").unwrap_or_default();
    let stanza_type = attr(n, "type").unwrap_or_default();
    let Some(sender) = device.and_then(|k| st.linked.get(&k).cloned()) else {
        st.unexpected.push(format!("a message from a connection with no device: {n:?}"));
        return ack(&id, &to);
    };
    let from = address(&sender.user, sender.device);
    let mut encs: Vec<(String, Node)> = Vec::new();
    if let Some(ps) = n.get_optional_child("participants") {
        for t in children(ps).iter().filter(|t| t.tag == "to") {
            for e in children(t).iter().filter(|e| e.tag == "enc") {
                encs.push((attr(t, "jid").unwrap_or_default(), e.clone()));
            }
        }
    }
    for e in children(n).iter().filter(|e| e.tag == "enc") {
        encs.push((to.clone(), e.clone()));
    }
    if let Some(code) = st.net.refusals.pop_front() {
        // WhatsApp refuses the message: a nack, and nobody receives it.
        let mut nack = ack(&id, &to);
        nack.attrs.insert("error", code);
        return nack;
    }
    for (jid, enc) in encs {
        let (user, dev, _) = split_jid(&jid);
        let kind = attr(&enc, "type").unwrap_or_default();
        let Some(phone) = phone_of(st, &user).filter(|_| dev == 0) else {
            continue; // another linked device: nobody reads it here
        };
        let Some(bytes) = bytes_of(&enc).map(<[u8]>::to_vec) else { continue };
        let Some(p) = party(st, &phone) else { continue };
        match p.decrypt(&from, &kind, &bytes) {
            Ok(m) => {
                let m = unwrap_device_sent(m);
                let (k, text) = kind_of(&m);
                st.net.timeline.entry(phone.clone()).or_default().push(format!("message {id}"));
                st.net.received.entry(phone).or_default().push(Received {
                    id: id.clone(),
                    from: sender.jid(),
                    to: to.clone(),
                    stanza_type: stanza_type.clone(),
                    enc: kind,
                    kind: k,
                    text,
                    message: m,
                });
            }
            Err(e) => st.unexpected.push(format!("{phone} could not decrypt {kind} {id} from {}: {e}", sender.jid())),
        }
    }
    ack(&id, &to)
}

pub(super) fn ack(id: &str, to: &str) -> Node {
    NodeBuilder::new("ack")
        .attr("class", "message")
        .attr("id", id.to_string())
        .attr("from", to.to_string())
        .attr("t", now().to_string())
        .build()
}

impl FakeWa {
    /// A contact on the network (a phone with device 0 and its own Signal
    /// identity, created on first use); returns its `@lid` user.
    pub fn contact(&self, user: &str) -> String {
        let mut st = self.state();
        let lid = phone_entry(&mut st, user).lid.clone();
        let _ = party(&mut st, user);
        lid
    }

    /// What `phone` (a contact, or an account's own phone) received from
    /// linked devices, decrypted, in order.
    pub fn received(&self, phone: &str) -> Vec<Received> {
        self.state().net.received.get(phone).cloned().unwrap_or_default()
    }

    /// What `phone` saw from linked devices in order: chat presence
    /// (`composing`, `recording`, `paused`) and `message <id>`.
    pub fn timeline(&self, phone: &str) -> Vec<String> {
        self.state().net.timeline.get(phone).cloned().unwrap_or_default()
    }

    /// The next send from a linked device is refused with `code` (e.g. `463`).
    pub fn refuse_next(&self, code: &str) {
        self.state().net.refusals.push_back(code.to_string());
    }

    /// Receipts linked devices sent for what the fake delivered.
    pub fn device_receipts(&self) -> Vec<DeviceReceipt> {
        self.state().net.receipts.clone()
    }

    /// Whether `device_jid` uploaded its prekeys.
    pub fn has_keys(&self, device_jid: &str) -> bool {
        self.state().net.keys.contains_key(device_jid)
    }

    /// Sends `node` on every live connection of `device_jid`.
    pub(super) fn send_to_device(&self, device_jid: &str, node: Node) -> Result<(), String> {
        let st = self.state();
        let mut sent = false;
        for l in st.live.values() {
            let Some(k) = l.device else { continue };
            if st.linked.get(&k).is_some_and(|d| d.jid() == device_jid) {
                sent |= l.tx.send(Command::Send(node.clone())).is_ok();
            }
        }
        if sent {
            Ok(())
        } else {
            Err(format!("{device_jid} is not connected"))
        }
    }

    /// The contact `from` sends the text `text` to the linked device
    /// `device_jid` (encrypted: a `pkmsg` first, `msg` after). Returns its id.
    pub fn deliver_text(&self, from: &str, device_jid: &str, text: &str) -> Result<String, String> {
        self.deliver(from, device_jid, "text", wa::Message::text(text))
    }

    /// The contact `from` sends `message` to the linked device `device_jid`
    /// in a stanza of type `stanza_type`. Returns its id.
    pub fn deliver(&self, from: &str, device_jid: &str, stanza_type: &str, message: wa::Message) -> Result<String, String> {
        let node = {
            let mut st = self.state();
            let lid = phone_entry(&mut st, from).lid.clone();
            let linked = st.linked.values().find(|l| l.jid() == device_jid).cloned();
            let linked = linked.ok_or_else(|| format!("no linked device {device_jid}"))?;
            let mut keys = st.net.keys.get(device_jid).cloned();
            st.net.next_id += 1;
            let id = format!("3EB0FA4E{:014X}", st.net.next_id);
            let to = address(&linked.user, linked.device);
            let p = party(&mut st, from).ok_or("no such phone")?;
            let (enc, bytes) = p.encrypt(&to, || keys.as_mut().and_then(|k| k.bundle(linked.device)), &message)?;
            if let Some(k) = keys {
                st.net.keys.insert(device_jid.to_string(), k); // the one-time prekey is used up
            }
            NodeBuilder::new("message")
                .attr("from", format!("{from}@{SERVER}"))
                .attr("id", id)
                .attr("type", stanza_type.to_string())
                .attr("t", now().to_string())
                .attr("sender_lid", format!("{lid}@lid"))
                .attr("notify", format!("Contact {from}"))
                .children([NodeBuilder::new("enc").attr("v", "2").attr("type", enc).bytes(bytes).build()])
                .build()
        };
        let id = attr(&node, "id").unwrap_or_default();
        self.send_to_device(device_jid, node)?;
        Ok(id)
    }

    /// The contact `from` sends a receipt for `wa_id` to `device_jid`:
    /// `kind` is `delivered` (a plain receipt) or `read`.
    pub fn receipt(&self, from: &str, device_jid: &str, wa_id: &str, kind: &str) -> Result<(), String> {
        let mut b = NodeBuilder::new("receipt")
            .attr("from", format!("{from}@{SERVER}"))
            .attr("id", wa_id.to_string())
            .attr("t", now().to_string());
        match kind {
            "delivered" => {}
            other => b = b.attr("type", other.to_string()),
        }
        self.send_to_device(device_jid, b.build())
    }
}
