//! What the fake server says: the stanzas it starts (pair-device,
//! pair-success, success, stream errors) and its answer to each stanza a
//! client sends. Every rule here is one the client was seen to need (see
//! the notes in the module of each); a stanza with no rule is answered as
//! plainly as possible and recorded in `unexpected`.

use whatsapp_rust::wacore_binary::builder::NodeBuilder;
use whatsapp_rust::wacore_binary::Node;

use super::{Inner, Linked};

pub const SERVER: &str = "s.whatsapp.net";

/// What a received stanza makes the server do.
#[derive(Default)]
pub struct Out {
    pub replies: Vec<Node>,
    /// Close the connection after the replies.
    pub close: bool,
    /// A stanza to send (and then close) a moment later.
    pub later: Option<(std::time::Duration, Node)>,
}

fn attr(n: &Node, k: &str) -> Option<String> {
    n.attrs().optional_string(k).map(|s| s.to_string())
}

fn first_child(n: &Node) -> Option<&Node> {
    n.children().and_then(|c| c.first())
}

/// `tag xmlns=… type=… <child>` — how the logs name a stanza.
pub fn summary(n: &Node) -> String {
    let mut s = n.tag.to_string();
    for k in ["xmlns", "type"] {
        if let Some(v) = attr(n, k) {
            s.push_str(&format!(" {k}={v}"));
        }
    }
    if let Some(c) = first_child(n) {
        s.push_str(&format!(" <{}>", c.tag));
    }
    s
}

fn result(req: &Node) -> NodeBuilder {
    NodeBuilder::new("iq").attrs([
        ("from", SERVER.to_string()),
        ("id", attr(req, "id").unwrap_or_default()),
        ("type", "result".to_string()),
    ])
}

/// `<iq type=set xmlns=md><pair-device><ref>…` with six refs (60 s + 5 × 20 s of QR codes).
pub fn pair_device() -> (Vec<String>, Node) {
    let refs: Vec<String> = (0..6).map(|i| format!("2@fake{}{i}", wa_gateway::new_id())).collect();
    let node = NodeBuilder::new("iq")
        .attrs([("from", SERVER), ("type", "set"), ("id", "pair-device-1"), ("xmlns", "md")])
        .children([NodeBuilder::new("pair-device")
            .children(refs.iter().map(|r| NodeBuilder::new("ref").bytes(r.clone().into_bytes()).build()))
            .build()])
        .build();
    (refs, node)
}

/// The phone's `<pair-success>` for `linked`. `<biz name>` gives the device a
/// push name, so later logins skip the first-login app-state bootstrap.
pub fn pair_success(linked: &Linked, device_identity: Vec<u8>) -> Node {
    NodeBuilder::new("iq")
        .attrs([("from", SERVER), ("type", "set"), ("id", "pair-success-1"), ("xmlns", "md")])
        .children([NodeBuilder::new("pair-success")
            .children([
                NodeBuilder::new("device-identity").bytes(device_identity).build(),
                NodeBuilder::new("device").attr("jid", linked.jid()).attr("lid", linked.lid_jid()).build(),
                NodeBuilder::new("platform").attr("name", "android").build(),
                NodeBuilder::new("biz").attr("name", format!("Phone {}", linked.user)).build(),
            ])
            .build()])
        .build()
}

/// `<success>` after a login handshake.
pub fn success(linked: &Linked) -> Node {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    NodeBuilder::new("success").attr("t", t.to_string()).attr("lid", format!("{}@lid", linked.lid)).build()
}

/// `<ib><offline count="0"/></ib>`: nothing was waiting while offline.
pub fn offline_done() -> Node {
    NodeBuilder::new("ib").children([NodeBuilder::new("offline").attr("count", "0").build()]).build()
}

pub fn stream_error(code: &str) -> Node {
    NodeBuilder::new("stream:error").attr("code", code).build()
}

pub fn replaced() -> Node {
    NodeBuilder::new("stream:error").children([NodeBuilder::new("conflict").attr("type", "replaced").build()]).build()
}

pub fn failure_401() -> Node {
    NodeBuilder::new("failure").attr("reason", "401").build()
}

/// The answer to a stanza from connection `conn` (logged in as `device`, or
/// showing QR codes when `None`).
pub fn answer(inner: &Inner, _conn: u64, device: Option<[u8; 32]>, n: &Node) -> Out {
    let mut out = Out::default();
    let s = summary(n);
    let mut st = match inner.state.lock() {
        Ok(s) => s,
        Err(_) => return out,
    };
    st.seen.push(s.clone());
    if let Some(o) = super::groups::answer(&mut st, device, n) {
        return o;
    }
    if let Some(o) = super::directory::answer(&mut st, device, n) {
        return o;
    }
    if let Some(o) = super::messaging::answer(&mut st, device, n) {
        return o;
    }
    if let Some(o) = super::media::answer(&mut st, n) {
        return o;
    }
    let tag = n.tag.as_ref();
    let (ns, ty) = (attr(n, "xmlns"), attr(n, "type"));
    let child = first_child(n).map(|c| c.tag.to_string());
    match (tag, ns.as_deref(), ty.as_deref(), child.as_deref()) {
        // Registration: the QR ack, and the device's signature after pair-success → 515.
        ("iq", None, Some("result"), None) if device.is_none() => {}
        ("iq", None, Some("result"), Some("pair-device-sign")) => {
            // The restart comes a moment later, as WhatsApp's does: the
            // client marks the coming disconnect as expected only after it
            // has sent this, and a 515 faster than that made it end its
            // next login connection at the first frame (one more login).
            out.later = Some((std::time::Duration::from_millis(200), stream_error("515")));
        }
        ("iq", None, Some("error"), _) => st.unexpected.push(format!("client error answer: {n:?}")),
        // Login.
        ("iq", Some("w:p"), Some("get"), _) => out.replies.push(result(n).build()),
        ("iq", Some("passive"), Some("set"), _) => out.replies.push(result(n).build()),
        ("iq", Some("encrypt"), Some("set"), _) => out.replies.push(result(n).build()),
        ("iq", Some("encrypt"), Some("get"), Some("count")) => {
            out.replies.push(result(n).children([NodeBuilder::new("count").attr("value", "50").build()]).build())
        }
        ("iq", Some("encrypt"), Some("get"), Some("digest")) => out.replies.push(result(n).build()),
        ("iq", Some("abt"), Some("get"), _) => {
            out.replies.push(result(n).children([NodeBuilder::new("props").attr("protocol", "1").build()]).build())
        }
        ("iq", Some("privacy"), Some("get"), _) => {
            out.replies.push(result(n).children([NodeBuilder::new("privacy").build()]).build())
        }
        ("iq", Some("blocklist"), Some("get"), _) => out.replies.push(result(n).build()),
        ("iq", Some("usync"), Some("get"), _) => out.replies.push(
            result(n).children([NodeBuilder::new("usync").children([NodeBuilder::new("list").build()]).build()]).build(),
        ),
        ("iq", Some("w:sync:app:state"), Some("set"), _) => {
            // Every requested collection, empty at version 0: synced.
            let names: Vec<Node> = first_child(n)
                .and_then(|sync| sync.children())
                .unwrap_or(&[])
                .iter()
                .filter_map(|c| attr(c, "name"))
                .map(|name| NodeBuilder::new("collection").attr("name", name).build())
                .collect();
            out.replies.push(result(n).children([NodeBuilder::new("sync").children(names).build()]).build());
        }
        ("iq", Some("md"), Some("set"), Some("remove-companion-device")) => {
            let jid = first_child(n).and_then(|c| attr(c, "jid")).unwrap_or_default();
            st.removed.push(jid.clone());
            if let Some(k) = device {
                st.linked.remove(&k);
            }
            out.replies.push(result(n).build());
        }
        ("iq", Some("urn:xmpp:whatsapp:dirty"), Some("set"), _) => out.replies.push(result(n).build()),
        // Fire-and-forget stanzas the client sends.
        ("ib", ..) | ("presence", ..) | ("ack", ..) => {}
        ("iq", _, Some("get" | "set"), _) => {
            st.unexpected.push(s);
            out.replies.push(result(n).build());
        }
        _ => st.unexpected.push(s),
    }
    out
}
