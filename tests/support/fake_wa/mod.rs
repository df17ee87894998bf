//! A fake WhatsApp server and phone, offline, for the real `whatsapp-rust`
//! client inside the gateway (issue 8). Shared by the tests and the bench.
//!
//! - [`wire`]: websocket, framing and the noise handshake (XX, IK) as the
//!   server, then encrypted binary nodes.
//! - [`pair`]: the phone's half of linking (reads the QR, signs the device).
//! - [`signal`] and [`messaging`]: phones as Signal parties (device 0) that
//!   decrypt what a linked device sends them and send it messages and
//!   receipts; the usync, prekey and message rules that takes.
//! - [`media`]: the media host (plain HTTP on loopback), its `media_conn`
//!   IQ, and the phones' side of media (decrypt what they get, upload what
//!   they send).
//! - [`groups`], [`group_messages`], [`group_admin`]: groups (`w:g2` IQs,
//!   sender-key messages both ways, fake admins and their `w:gp2` notifications).
//! - [`stanzas`]: what the server answers to each stanza a client sends, and
//!   the log of the ones it had to learn (anything unexpected is recorded,
//!   never silently dropped: an unanswered IQ stalls the client for 75 s).
//!
//! Tests reach it through the gateway's HTTP API with the flows of
//! `flow.rs` (included by each test beside this module: it needs the tests'
//! `common` harness, which the bench does not have).
//!
//! One [`FakeWa`] serves many sessions. Its control API: [`FakeWa::scan`]
//! (a phone links the device whose QR it is shown), [`FakeWa::kick`] (a
//! stream error or a dropped connection for a linked device), and what it saw.

#![allow(dead_code)]

pub mod directory;
pub mod group_admin;
pub mod group_messages;
pub mod groups;
pub mod media;
pub mod messaging;
pub mod pair;
pub mod signal;
pub mod stanzas;
pub mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};
use whatsapp_rust::wacore::libsignal::protocol::KeyPair;
use whatsapp_rust::wacore_binary::Node;

use wire::{ServerIdentity, Wire};

/// A number on the fake network with its account identity (the key that
/// vouches for its linked devices).
pub struct Phone {
    pub user: String,
    pub lid: String,
    pub account: KeyPair,
    pub next_device: u32,
}

/// A device a phone linked: known by the noise key it logs in with.
#[derive(Clone, Debug)]
pub struct Linked {
    pub user: String,
    pub lid: String,
    pub device: u32,
    pub noise_key: [u8; 32],
    pub identity_key: [u8; 32],
}

impl Linked {
    pub fn jid(&self) -> String {
        format!("{}:{}@s.whatsapp.net", self.user, self.device)
    }
    pub fn lid_jid(&self) -> String {
        format!("{}:{}@lid", self.lid, self.device)
    }
}

/// What the control API asks a live connection to do.
pub enum Command {
    /// Send this node.
    Send(Node),
    /// Send this node, then close the connection.
    SendAndClose(Node),
    /// Drop the connection without a word.
    Drop,
}

/// A live connection, as the control API reaches it.
struct Live {
    tx: mpsc::UnboundedSender<Command>,
    /// The device logged in on it (`None` while it shows QR codes).
    device: Option<[u8; 32]>,
    /// The refs shown as QR codes (registration connections).
    refs: Vec<String>,
}

#[derive(Default)]
struct State {
    phones: HashMap<String, Phone>,
    linked: HashMap<[u8; 32], Linked>,
    live: HashMap<u64, Live>,
    next_conn: u64,
    /// Stanzas the server had no rule for, as text.
    unexpected: Vec<String>,
    /// Every stanza received, as `tag xmlns type child` summaries.
    seen: Vec<String>,
    /// Devices that logged out (remove-companion-device).
    removed: Vec<String>,
    /// Logins completed (`<success>` sent), per device jid.
    logins: HashMap<String, u32>,
    /// Each handshake: `XX registration`, `IK login`, …
    handshakes: Vec<String>,
    /// Signal parties, uploaded keys and what they received (see [`messaging`]).
    net: messaging::Net,
    /// The media host and what it stores (see [`media`]).
    media: media::Media,
    /// Contacts, presence, profile and blocking (see [`directory`]).
    dir: directory::Directory,
    /// Groups and sender keys (see [`groups`]).
    groups: groups::Groups,
}

pub(crate) struct Inner {
    identity: ServerIdentity,
    state: Mutex<State>,
    changed: Notify,
}

/// The fake server (see the module doc). Dropping it stops accepting.
pub struct FakeWa {
    pub url: String,
    inner: Arc<Inner>,
    accept: tokio::task::JoinHandle<()>,
    /// The media host's accept loop.
    media: tokio::task::JoinHandle<()>,
}

impl Drop for FakeWa {
    fn drop(&mut self) {
        self.accept.abort();
        self.media.abort();
    }
}

impl FakeWa {
    /// Starts a fake server on a loopback port.
    pub async fn start() -> FakeWa {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind fake wa");
        let url = format!("ws://{}/ws/chat", listener.local_addr().expect("addr"));
        let inner = Arc::new(Inner { identity: ServerIdentity::new(), state: Mutex::new(State::default()), changed: Notify::new() });
        let media = media::start(inner.clone()).await;
        let i = inner.clone();
        let accept = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let i = i.clone();
                tokio::spawn(async move {
                    // A client closing its side is how connections end.
                    match serve(i, tcp).await {
                        Err(e) if e != "closed" => eprintln!("fake wa: connection ended: {e}"),
                        _ => {}
                    }
                });
            }
        });
        FakeWa { url, inner, accept, media }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().expect("fake state")
    }

    /// A phone number on the network (created on first use) with its `@lid` user.
    pub fn phone(&self, user: &str) -> String {
        let mut st = self.state();
        let lid = phone_entry(&mut st, user).lid.clone();
        lid
    }

    /// The phone `user` scans the QR `text`: the device that shows it is
    /// linked (pair-success), and after its answer the server restarts its
    /// stream (515). Returns the linked device.
    pub async fn scan(&self, user: &str, text: &str) -> Result<Linked, String> {
        let qr = pair::parse_qr(text)?;
        let (tx, node, linked) = {
            let mut st = self.state();
            let conn = st.live.iter().find(|(_, l)| l.refs.contains(&qr.reference)).map(|(_, l)| l.tx.clone());
            let tx = conn.ok_or_else(|| format!("no connection shows the QR ref {}", qr.reference))?;
            let phone = phone_entry(&mut st, user);
            phone.next_device += 1;
            let linked = Linked {
                user: phone.user.clone(),
                lid: phone.lid.clone(),
                device: phone.next_device,
                noise_key: qr.noise_key,
                identity_key: qr.identity_key,
            };
            let identity = pair::device_identity(&phone.account, &qr, linked.device, linked.device);
            let node = stanzas::pair_success(&linked, identity);
            st.linked.insert(qr.noise_key, linked.clone());
            (tx, node, linked)
        };
        tx.send(Command::Send(node)).map_err(|_| "the connection is gone".to_string())?;
        Ok(linked)
    }

    /// Sends `node` on the live connection of `device_jid` (e.g. a stream
    /// error), and closes it after when `close`.
    pub fn kick(&self, device_jid: &str, node: Option<Node>) -> bool {
        let st = self.state();
        let mut done = false;
        for l in st.live.values() {
            let Some(k) = l.device else { continue };
            if st.linked.get(&k).is_some_and(|d| d.jid() == device_jid) {
                let _ = l.tx.send(match &node {
                    Some(n) => Command::SendAndClose(n.clone()),
                    None => Command::Drop,
                });
                done = true;
            }
        }
        done
    }

    /// Stanzas the server had no rule for.
    pub fn unexpected(&self) -> Vec<String> {
        self.state().unexpected.clone()
    }

    /// Summaries of every stanza received.
    pub fn seen(&self) -> Vec<String> {
        self.state().seen.clone()
    }

    /// Completed logins of `device_jid`.
    pub fn logins(&self, device_jid: &str) -> u32 {
        self.state().logins.get(device_jid).copied().unwrap_or(0)
    }

    /// Each handshake in order: `XX registration`, `XX login`, `IK login`.
    pub fn handshakes(&self) -> Vec<String> {
        self.state().handshakes.clone()
    }

    /// Devices removed by a logout.
    pub fn removed(&self) -> Vec<String> {
        self.state().removed.clone()
    }

    /// Waits until `check` holds (re-checked on every change), up to `within`.
    pub async fn until(&self, within: Duration, mut check: impl FnMut(&FakeWa) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let changed = self.inner.changed.notified();
            if check(self) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return check(self);
            }
        }
    }
}

fn phone_entry<'a>(st: &'a mut State, user: &str) -> &'a mut Phone {
    let n = st.phones.len() as u64;
    st.phones.entry(user.to_string()).or_insert_with(|| Phone {
        user: user.to_string(),
        lid: format!("{}", 100_000_000_000_000u64 + n * 7919 + user.len() as u64),
        account: KeyPair::generate(&mut rand::rng()),
        next_device: 0,
    })
}

/// Serves one connection from accept to close.
async fn serve(inner: Arc<Inner>, tcp: tokio::net::TcpStream) -> Result<(), String> {
    let mut wire = Wire::accept(tcp, &inner.identity).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let registering = wire.payload.device_pairing_data.is_set();
    let (id, device) = {
        let mut st = inner.state.lock().map_err(|e| e.to_string())?;
        st.next_conn += 1;
        let id = st.next_conn;
        let kind = if registering { "registration" } else { "login" };
        st.handshakes.push(format!("{} {kind}", wire.pattern));
        let device = if registering {
            None
        } else {
            match st.linked.get(&wire.client_static) {
                Some(d) if Some(d.user.parse::<u64>().unwrap_or(0)) == wire.payload.username && Some(d.device) == wire.payload.device => {
                    Some(wire.client_static)
                }
                _ => None,
            }
        };
        st.live.insert(id, Live { tx: tx.clone(), device, refs: Vec::new() });
        (id, device)
    };
    let result = async {
        if registering {
            let (refs, node) = stanzas::pair_device();
            if let Ok(mut st) = inner.state.lock() {
                if let Some(l) = st.live.get_mut(&id) {
                    l.refs = refs;
                }
            }
            wire.send(&node).await?;
        } else if let Some(key) = device {
            let linked = inner.state.lock().map_err(|e| e.to_string())?.linked.get(&key).cloned();
            let Some(linked) = linked else { return Err("device vanished".to_string()) };
            wire.send(&stanzas::success(&linked)).await?;
            wire.send(&stanzas::offline_done()).await?;
            if let Ok(mut st) = inner.state.lock() {
                *st.logins.entry(linked.jid()).or_default() += 1;
            }
            inner.changed.notify_waiters();
        } else {
            // An unknown device logging in: WhatsApp answers 401.
            wire.send(&stanzas::failure_401()).await?;
            return Ok(());
        }
        loop {
            tokio::select! {
                node = wire.recv() => {
                    let node = node?;
                    let out = stanzas::answer(&inner, id, device, &node);
                    inner.changed.notify_waiters();
                    for n in out.replies {
                        wire.send(&n).await?;
                    }
                    if let Some((after, n)) = out.later {
                        let tx = tx.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(after).await;
                            let _ = tx.send(Command::SendAndClose(n));
                        });
                    }
                    if out.close {
                        return Ok(());
                    }
                }
                cmd = rx.recv() => match cmd {
                    Some(Command::Send(n)) => wire.send(&n).await?,
                    Some(Command::SendAndClose(n)) => { wire.send(&n).await?; return Ok(()); }
                    Some(Command::Drop) | None => return Ok(()),
                },
            }
        }
    }
    .await;
    if let Ok(mut st) = inner.state.lock() {
        st.live.remove(&id);
    }
    inner.changed.notify_waiters();
    wire.close().await;
    result
}
