//! Group messages on the fake network, both ways, with sender keys: what
//! a linked device sends to a group (each member phone processes the
//! SenderKeyDistributionMessage it got pairwise, then decrypts the `skmsg`
//! with wacore-libsignal's group cipher), and what a member phone writes
//! in a group to a linked device (its distribution first, as a `pkmsg`,
//! then its `skmsg`, in one stanza).

use std::collections::HashMap;

use whatsapp_rust::async_trait;
use whatsapp_rust::buffa::MessageField;
use whatsapp_rust::wacore::libsignal::protocol::error::Result as SignalResult;
use whatsapp_rust::wacore::libsignal::protocol::{
    create_sender_key_distribution_message, group_decrypt, group_encrypt, process_sender_key_distribution_message,
    SenderKeyDistributionMessage, SenderKeyName, SenderKeyRecord, SenderKeyStore,
};
use whatsapp_rust::wacore::messages::{decode_plaintext, unwrap_device_sent, MessageUtils};
use whatsapp_rust::wacore::proto_helpers::MessageBuilderExt as _;
use whatsapp_rust::wacore_binary::builder::NodeBuilder;
use whatsapp_rust::wacore_binary::Node;
use whatsapp_rust::waproto::whatsapp as wa;

use super::groups::{now, pn};
use super::messaging::{ack, attr, bytes_of, children, kind_of, party, phone_of, split_jid, Received};
use super::signal::address;
use super::stanzas::SERVER;
use super::{phone_entry, FakeWa, State};

/// Sender-key records of one phone, by `group:sender`.
#[derive(Default)]
pub(super) struct SenderKeys(HashMap<String, SenderKeyRecord>);

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


/// A message from a linked device to a group: the distributions first, then the skmsg for each member.
pub(super) fn group_message(st: &mut State, sender: Option<(String, u32)>, n: &Node) -> Node {
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
            let lid_addressed = st.groups.groups.get(group).is_some_and(|g| g.lid);
            let (participant, alt, mode) = if lid_addressed {
                (format!("{lid}@lid"), ("participant_pn", pn(from)), "lid")
            } else {
                (pn(from), ("participant_lid", format!("{lid}@lid")), "pn")
            };
            NodeBuilder::new("message")
                .attr("from", group.to_string())
                .attr("participant", participant)
                .attr(alt.0, alt.1)
                .attr("addressing_mode", mode)
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
