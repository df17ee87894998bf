//! Signal identities on the fake network: each fake *party* (a contact's
//! phone, or the account's own phone) has an identity key, a signed prekey,
//! one-time prekeys and in-memory stores, and encrypts and decrypts with the
//! crate's own libsignal port. A linked device's uploaded keys
//! ([`DeviceKeys`]) make the bundle a party starts its session with.
//!
//! The stores are plain maps; every call completes at once, so the async
//! store API is driven with `block_on` from the (synchronous) stanza rules.

use std::collections::HashMap;

use whatsapp_rust::async_trait;
use whatsapp_rust::wacore::libsignal::protocol::error::Result as SignalResult;
use whatsapp_rust::wacore::libsignal::protocol::{
    message_decrypt, message_encrypt, process_prekey_bundle, CiphertextMessage, Direction, GenericSignedPreKey,
    IdentityChange, IdentityKey, IdentityKeyPair, IdentityKeyStore, KeyPair, PreKeyBundle, PreKeyId, PreKeyRecord,
    PreKeySignalMessage, PreKeyStore, ProtocolAddress, PublicKey, SessionRecord, SessionStore, SignalMessage,
    SignalProtocolError, SignedPreKeyId, SignedPreKeyRecord, SignedPreKeyStore, Timestamp, UsePQRatchet,
};
use whatsapp_rust::wacore::messages::{decode_plaintext, MessageUtils};
use whatsapp_rust::wacore_binary::{Node, NodeContent};
use whatsapp_rust::waproto::whatsapp as wa;

/// One-time prekeys a party makes up front (each bundle hands one out).
const ONE_TIME_PREKEYS: u32 = 32;

#[derive(Default)]
struct Sessions(HashMap<String, SessionRecord>);

struct Identities {
    pair: IdentityKeyPair,
    reg_id: u32,
    known: HashMap<String, IdentityKey>,
}

#[derive(Default)]
struct PreKeys(HashMap<u32, PreKeyRecord>);

#[derive(Default)]
struct SignedPreKeys(HashMap<u32, SignedPreKeyRecord>);

#[async_trait]
impl SessionStore for Sessions {
    async fn load_session(&self, address: &ProtocolAddress) -> SignalResult<Option<SessionRecord>> {
        Ok(self.0.get(address.as_str()).cloned())
    }
    async fn has_session(&self, address: &ProtocolAddress) -> SignalResult<bool> {
        Ok(self.0.contains_key(address.as_str()))
    }
    async fn store_session(&mut self, address: &ProtocolAddress, record: SessionRecord) -> SignalResult<()> {
        self.0.insert(address.as_str().to_string(), record);
        Ok(())
    }
}

#[async_trait]
impl IdentityKeyStore for Identities {
    async fn get_identity_key_pair(&self) -> SignalResult<IdentityKeyPair> {
        Ok(self.pair.clone())
    }
    async fn get_local_registration_id(&self) -> SignalResult<u32> {
        Ok(self.reg_id)
    }
    async fn save_identity(&mut self, address: &ProtocolAddress, identity: &IdentityKey) -> SignalResult<IdentityChange> {
        let changed = self.known.get(address.as_str()).is_some_and(|k| k != identity);
        self.known.insert(address.as_str().to_string(), *identity);
        Ok(IdentityChange::from_changed(changed))
    }
    async fn is_trusted_identity(&self, _: &ProtocolAddress, _: &IdentityKey, _: Direction) -> SignalResult<bool> {
        Ok(true)
    }
    async fn get_identity(&self, address: &ProtocolAddress) -> SignalResult<Option<IdentityKey>> {
        Ok(self.known.get(address.as_str()).copied())
    }
}

#[async_trait]
impl PreKeyStore for PreKeys {
    async fn get_pre_key(&self, id: PreKeyId) -> SignalResult<PreKeyRecord> {
        self.0.get(&u32::from(id)).cloned().ok_or(SignalProtocolError::InvalidPreKeyId)
    }
    async fn save_pre_key(&mut self, id: PreKeyId, record: &PreKeyRecord) -> SignalResult<()> {
        self.0.insert(u32::from(id), record.clone());
        Ok(())
    }
    async fn remove_pre_key(&mut self, id: PreKeyId) -> SignalResult<()> {
        self.0.remove(&u32::from(id));
        Ok(())
    }
}

#[async_trait]
impl SignedPreKeyStore for SignedPreKeys {
    async fn get_signed_pre_key(&self, id: SignedPreKeyId) -> SignalResult<SignedPreKeyRecord> {
        self.0.get(&u32::from(id)).cloned().ok_or(SignalProtocolError::InvalidSignedPreKeyId)
    }
    async fn save_signed_pre_key(&mut self, id: SignedPreKeyId, record: &SignedPreKeyRecord) -> SignalResult<()> {
        self.0.insert(u32::from(id), record.clone());
        Ok(())
    }
}

/// A fake device with its own Signal identity (device 0 of a phone).
pub struct Party {
    identities: Identities,
    sessions: Sessions,
    prekeys: PreKeys,
    signed: SignedPreKeys,
    signed_id: u32,
    signed_public: PublicKey,
    signed_signature: Vec<u8>,
    /// One-time prekeys not handed out yet.
    unissued: Vec<(u32, PublicKey)>,
}

/// Drives a store future to its end: every store here answers at once, so
/// this never waits (a future that stays pending is a bug, and panics).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for _ in 0..10_000 {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
    panic!("a Signal store call of the fake did not complete");
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Party {
    /// A party whose identity is `identity` (a phone's account key: WhatsApp's
    /// primary device signs its companions with its identity key), or a fresh one.
    pub fn new(identity: Option<&KeyPair>) -> Party {
        let mut rng = rand::rng();
        let pair = match identity {
            Some(k) => IdentityKeyPair::new(IdentityKey::new(k.public_key), k.private_key.clone()),
            None => IdentityKeyPair::generate(&mut rng),
        };
        let reg_id = rand::random::<u32>() & 0x3fff;
        let signed_id = 1u32;
        let signed_pair = KeyPair::generate(&mut rng);
        let signature =
            pair.private_key().calculate_signature(&signed_pair.public_key.serialize(), &mut rng).expect("sign prekey");
        let mut signed = SignedPreKeys::default();
        signed.0.insert(
            signed_id,
            SignedPreKeyRecord::new(signed_id.into(), Timestamp::from_epoch_millis(0), &signed_pair, &signature),
        );
        let mut prekeys = PreKeys::default();
        let mut unissued = Vec::new();
        for id in 1..=ONE_TIME_PREKEYS {
            let k = KeyPair::generate(&mut rng);
            prekeys.0.insert(id, PreKeyRecord::new(id.into(), &k));
            unissued.push((id, k.public_key));
        }
        Party {
            identities: Identities { pair, reg_id, known: HashMap::new() },
            sessions: Sessions::default(),
            prekeys,
            signed,
            signed_id,
            signed_public: signed_pair.public_key,
            signed_signature: signature.to_vec(),
            unissued,
        }
    }

    /// The bundle another device starts a session with (one one-time prekey
    /// each, while they last).
    pub fn bundle(&mut self, device: u32) -> PreKeyBundle {
        let one = self.unissued.pop().map(|(id, k)| (PreKeyId::from(id), k));
        PreKeyBundle::new(
            self.identities.reg_id,
            device.into(),
            one,
            self.signed_id.into(),
            self.signed_public,
            self.signed_signature.clone(),
            *self.identities.pair.identity_key(),
        )
        .expect("a bundle")
    }

    pub fn has_session(&self, with: &ProtocolAddress) -> bool {
        self.sessions.0.contains_key(with.as_str())
    }

    /// Decrypts an `<enc type=pkmsg|msg>` from `from` to the padded plaintext.
    pub fn decrypt_raw(&mut self, from: &ProtocolAddress, kind: &str, bytes: &[u8]) -> Result<Vec<u8>, String> {
        let ct = match kind {
            "pkmsg" => CiphertextMessage::PreKeySignalMessage(PreKeySignalMessage::try_from(bytes).map_err(err)?),
            "msg" => CiphertextMessage::SignalMessage(SignalMessage::try_from(bytes).map_err(err)?),
            other => return Err(format!("enc type {other} is not a pairwise message")),
        };
        let mut rng = rand::rng();
        let out = block_on(message_decrypt(
            &ct,
            from,
            &mut self.sessions,
            &mut self.identities,
            &mut self.prekeys,
            &self.signed,
            &mut rng,
            UsePQRatchet::No,
        ))
        .map_err(err)?;
        if let Some(used) = out.consumed_prekey_id {
            block_on(self.prekeys.remove_pre_key(used)).map_err(err)?;
        }
        Ok(out.plaintext)
    }

    /// Decrypts an `<enc>` and decodes the message (padding v2).
    pub fn decrypt(&mut self, from: &ProtocolAddress, kind: &str, bytes: &[u8]) -> Result<wa::Message, String> {
        let plain = self.decrypt_raw(from, kind, bytes)?;
        decode_plaintext(&plain, 2).map_err(err)
    }

    /// Encrypts `message` for `to`, starting the session from `bundle` when
    /// there is none yet (a `pkmsg` then, `msg` after). Returns the enc type
    /// and the ciphertext.
    pub fn encrypt(
        &mut self,
        to: &ProtocolAddress,
        bundle: impl FnOnce() -> Option<PreKeyBundle>,
        message: &wa::Message,
    ) -> Result<(&'static str, Vec<u8>), String> {
        if !self.has_session(to) {
            let b = bundle().ok_or_else(|| format!("no prekey bundle for {to}"))?;
            let mut rng = rand::rng();
            block_on(process_prekey_bundle(to, &mut self.sessions, &mut self.identities, &b, &mut rng, UsePQRatchet::No))
                .map_err(err)?;
        }
        let plain = MessageUtils::encode_and_pad(message);
        let ct = block_on(message_encrypt(&plain, to, &mut self.sessions, &mut self.identities)).map_err(err)?;
        Ok(match ct {
            CiphertextMessage::PreKeySignalMessage(m) => ("pkmsg", m.serialized().to_vec()),
            CiphertextMessage::SignalMessage(m) => ("msg", m.serialized().to_vec()),
            _ => return Err("unexpected ciphertext kind".into()),
        })
    }
}

/// What a linked device uploaded (`<iq xmlns=encrypt type=set>` with
/// `<registration>`, `<identity>`, `<list><key>…`, `<skey>`).
#[derive(Clone, Debug)]
pub struct DeviceKeys {
    pub registration_id: u32,
    pub identity: [u8; 32],
    pub signed_id: u32,
    pub signed_public: [u8; 32],
    pub signed_signature: Vec<u8>,
    /// One-time prekeys not handed out yet.
    pub prekeys: Vec<(u32, [u8; 32])>,
}

fn bytes_of(n: &Node) -> Option<&[u8]> {
    match &n.content {
        Some(NodeContent::Bytes(b)) => Some(b),
        _ => None,
    }
}

fn child_bytes<'a>(n: &'a Node, tag: &str) -> Option<&'a [u8]> {
    n.get_optional_child(tag).and_then(bytes_of)
}

fn be_u32(b: &[u8]) -> u32 {
    b.iter().fold(0u32, |acc, x| (acc << 8) | u32::from(*x))
}

impl DeviceKeys {
    /// Reads a prekey upload (`None` when it is not one).
    pub fn from_upload(iq: &Node) -> Option<DeviceKeys> {
        let registration_id = be_u32(child_bytes(iq, "registration")?);
        let identity: [u8; 32] = child_bytes(iq, "identity")?.try_into().ok()?;
        let skey = iq.get_optional_child("skey")?;
        let signed_id = be_u32(child_bytes(skey, "id")?);
        let signed_public: [u8; 32] = child_bytes(skey, "value")?.try_into().ok()?;
        let signed_signature = child_bytes(skey, "signature")?.to_vec();
        let mut prekeys = Vec::new();
        for key in iq.get_optional_child("list").map(|l| l.get_children_by_tag("key").collect::<Vec<_>>()).unwrap_or_default() {
            let (Some(id), Some(value)) = (child_bytes(key, "id"), child_bytes(key, "value")) else { continue };
            let Ok(value) = <[u8; 32]>::try_from(value) else { continue };
            prekeys.push((be_u32(id), value));
        }
        prekeys.reverse(); // hand out the lowest ids first (pop from the end)
        Some(DeviceKeys { registration_id, identity, signed_id, signed_public, signed_signature, prekeys })
    }

    /// The device's bundle for device id `device`, with one one-time prekey while they last.
    pub fn bundle(&mut self, device: u32) -> Option<PreKeyBundle> {
        let one = self
            .prekeys
            .pop()
            .and_then(|(id, k)| PublicKey::from_djb_public_key_bytes(&k).ok().map(|k| (PreKeyId::from(id), k)));
        PreKeyBundle::new(
            self.registration_id,
            device.into(),
            one,
            self.signed_id.into(),
            PublicKey::from_djb_public_key_bytes(&self.signed_public).ok()?,
            self.signed_signature.clone(),
            IdentityKey::new(PublicKey::from_djb_public_key_bytes(&self.identity).ok()?),
        )
        .ok()
    }
}

/// The Signal address a party keeps its session with `user`'s device `device` under.
pub fn address(user: &str, device: u32) -> ProtocolAddress {
    ProtocolAddress::new(user, device.into())
}
